"""Measuring helpers shared by the bench and the scripts under `benchmarks/`.

Nearest-rank percentiles, a dash for what was not measured, and this process's resident
memory as the kernel counts it (`/proc/<pid>/status`). Nothing here imports more than the
standard library, so any script can use it.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

KIB_PER_MB = 1024.0
"""`/proc` counts kB (KiB); figures are in MB of 1024 KiB, as the device profiles are."""


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile, `q` in 0..1; NaN when nothing was measured."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def fmt(value: float | None, digits: int = 1) -> str:
    """A dash for what was not measured."""
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"


@dataclass(frozen=True)
class Memory:
    """Resident memory of a process in MB: now, and the peak since start (or the last reset)."""

    rss_mb: float | None
    peak_mb: float | None


def proc_memory(pid: int | str = "self") -> Memory:
    """VmRSS and VmHWM of a process; None for what cannot be read (the process is gone)."""
    values: dict[str, float] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = float(rest.split()[0]) / KIB_PER_MB
    return Memory(values.get("VmRSS"), values.get("VmHWM"))


def reset_peak() -> bool:
    """Start this process's VmHWM again from its current RSS (Linux 4.0+, `clear_refs` 5).

    Imports and start-up may have peaked higher than the work measured next; without a
    reset their peak would be counted as the work's. False where the kernel refuses.
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True
