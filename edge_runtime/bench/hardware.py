"""The machine: CPU model and the flags that pick int8 kernels, cores, RAM, GPUs, and the
memory bandwidth a model's weights stream at, measured.

Detection reuses `profiles.MachineFacts` (the same facts a profile is matched on). The
bandwidth is a numpy copy over a buffer larger than the last-level cache (so it measures
RAM, not cache), best of a few runs, counting bytes read and written as STREAM's Copy does.
"""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np

from edge_runtime.bench.results import Figure, Finding, Machine, Note
from edge_runtime.profiles import MachineFacts

INT8_FLAGS = (
    # x86: the int8 paths onnxruntime's MLAS takes, best last
    "sse4_1",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx_vnni",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_int8",
    "amx_bf16",
    # Arm: NEON (asimd on aarch64), dot product (asimddp), int8 matrix multiply (i8mm)
    "neon",
    "asimd",
    "asimdhp",
    "asimddp",
    "i8mm",
    "bf16",
    "sve",
    "sve2",
)
MIN_BUFFER_MB = 64
MAX_BUFFER_MB = 512
CACHE_MULTIPLE = 2
"""The copy buffer is this many times the largest cache (within the bounds above)."""


def describe_machine(root: Path = Path("/")) -> Machine:
    facts = MachineFacts.probe(root)
    return Machine(
        arch=facts.arch,
        cpu_model=facts.cpu_model,
        cores=facts.cores,
        cpu_flags=[flag for flag in INT8_FLAGS if flag in facts.cpu_flags],
        ram_total_mb=facts.ram_mb,
        ram_available_mb=available_ram_mb(root),
        device_tree_model=facts.device_tree_model,
        nv_tegra_release=facts.nv_tegra_release,
        gpus=nvidia_gpus(),
        kernel=platform.release(),
    )


def available_ram_mb(root: Path = Path("/")) -> int:
    """MemAvailable: what can be had without swapping; 0 when unknown."""
    try:
        meminfo = (root / "proc/meminfo").read_text()
    except OSError:
        return 0
    found = re.search(r"^MemAvailable:\s+(\d+)\s+kB", meminfo, re.M)
    return int(found.group(1)) // 1024 if found else 0


def nvidia_gpus() -> list[str]:
    """`name, memory` per GPU from nvidia-smi; none when it is missing or fails."""
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return []
    query = ("--query-gpu=name,memory.total", "--format=csv,noheader")
    try:
        done = subprocess.run(
            [binary, *query], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in done.stdout.splitlines() if line.strip()]


def largest_cache_mb(root: Path = Path("/")) -> float:
    """The biggest cache of CPU 0 in MB (the last level); 0 when sysfs does not say."""
    sizes = []
    for size_file in (root / "sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        text = size_file.read_text().strip()
        found = re.fullmatch(r"(\d+)([KMG]?)", text)
        if found:
            scale = {"": 1 / 2**20, "K": 1 / 1024, "M": 1.0, "G": 1024.0}[found.group(2)]
            sizes.append(int(found.group(1)) * scale)
    return max(sizes, default=0.0)


def buffer_mb(available_mb: int, cache_mb: float) -> int:
    """Larger than the cache, within bounds, and never more than an eighth of the free RAM."""
    wanted = min(max(CACHE_MULTIPLE * cache_mb, MIN_BUFFER_MB), MAX_BUFFER_MB)
    if available_mb:
        wanted = min(wanted, available_mb / 8)
    return max(8, int(wanted))


def copy_bandwidth_gbps(size_mb: int, repeats: int) -> float:
    """Best-of-`repeats` numpy copy, in GB/s (10^9 bytes) read plus written."""
    source = np.ones(size_mb * 2**20 // 8, dtype=np.float64)
    target = np.empty_like(source)
    np.copyto(target, source)  # first touch: page faults are not bandwidth
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        np.copyto(target, source)
        best = min(best, time.perf_counter() - started)
    return 2 * source.nbytes / best / 1e9


def measure_bandwidth(machine: Machine, repeats: int) -> list[Finding]:
    cache = largest_cache_mb()
    size = buffer_mb(machine.ram_available_mb, cache)
    gbps = copy_bandwidth_gbps(size, repeats)
    return [
        Figure("hardware", "memory", "copy_gbps", "copy GB/s", gbps, "GB/s", "higher"),
        Note(
            "hardware",
            "memory",
            f"numpy copy of {size} MB (largest cache {cache:.0f} MB), "
            f"best of {repeats}, read + written",
        ),
    ]
