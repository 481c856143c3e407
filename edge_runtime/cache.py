"""Where edge-runtime keeps what it prepares once (example banks, grammars), and how it writes it.

A cache file is written beside its final name and renamed into place, so a
reader (or a node started while another writes) sees the old file or the new
one, never half of one.
"""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """`$EDGE_RUNTIME_CACHE`, else `$XDG_CACHE_HOME/edge-runtime`, else ~/.cache/edge-runtime."""
    override = os.environ.get("EDGE_RUNTIME_CACHE")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME")
    return Path(base) / "edge-runtime" if base else Path.home() / ".cache" / "edge-runtime"


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file and a rename; OSError on failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)
