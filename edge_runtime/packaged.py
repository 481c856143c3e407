"""Files that installed packages ship (a model, a native library), found without importing
the package: some packages' `__init__` imports dependencies we leave out (torch for
`silero-vad`, an audio stack for `pyrnnoise`)."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def package_file(package: str, relative: str | Path) -> Path | None:
    """`relative` inside the installed top-level `package`, or None where either is missing."""
    spec = importlib.util.find_spec(package)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / relative
        if path.is_file():
            return path
    return None
