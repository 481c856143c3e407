"""One bench run: plan the steps, run them one by one with a progress line each, and
assemble the report with the machine, the software versions and the recommendation.

A step that fails for a reason nobody foresaw becomes a note on its row, never the end of
the run: on a new machine (a GPU box, a board with an odd provider) the other figures are
still worth having.
"""

from __future__ import annotations

import datetime
import logging
import platform
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import onnxruntime as ort

from edge_runtime import __version__
from edge_runtime.bench import generator, hardware, models, mqtt, nlu, stt
from edge_runtime.bench.plan import Context, Settings, Step
from edge_runtime.bench.recommend import recommend
from edge_runtime.bench.results import (
    Figure,
    Finding,
    Machine,
    Note,
    Report,
    Software,
)
from edge_runtime.cache import default_cache_dir
from edge_runtime.config import load_config
from edge_runtime.profiles import MachineFacts, Selection, load_profiles, select_profile

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


def run_bench(
    settings: Settings,
    config_path: Path | None = None,
    profile: str | None = None,
    progress: Progress = lambda line: None,
) -> Report:
    """Measure everything this machine has; ConfigError for a bad config or profile name."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edge-runtime-bench-") as workdir:
        context, selection = make_context(settings, config_path, profile, Path(workdir))
        findings = run_steps(plan(context), progress)
    machine = context.machine
    figures = [f for f in findings if isinstance(f, Figure)]
    notes = [f for f in findings if isinstance(f, Note)]
    return Report(
        schema_version=1,
        date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        mode="quick" if settings.quick else "default",
        duration_s=round(time.perf_counter() - started, 2),
        machine=machine,
        software=describe_software(),
        figures=figures,
        notes=notes,
        recommendation=recommend(figures, notes, selection, machine.ram_total_mb),
    )


def make_context(
    settings: Settings, config_path: Path | None, profile: str | None, workdir: Path
) -> tuple[Context, Selection]:
    """The node config, this machine and its profile (the one asked for, or the match)."""
    config = load_config(config_path)
    selection = select_profile(load_profiles(), MachineFacts.probe(), profile or config.profile)
    cache_dir = config.cache_dir or default_cache_dir()
    machine = hardware.describe_machine()
    return Context(settings, machine, selection.profile, config, cache_dir, workdir), selection


def plan(context: Context) -> list[Step]:
    """Every step in the order they run: cheap and in-process first, then the children."""
    providers = models.bench_providers(ort.get_available_providers())
    return [
        _hardware_step(context.machine, context.settings.bandwidth_repeats),
        *models.steps(context, providers),
        *generator.steps(context, providers),
        *stt.steps(context),
        *nlu.steps(context),
        *mqtt.steps(context),
    ]


def _hardware_step(machine: Machine, repeats: int) -> Step:
    label = f"hardware: {machine.cpu_model}, {machine.cores} cores, memory bandwidth"
    providers = ort.get_available_providers()

    def measure() -> list[Finding]:
        return [*hardware.measure_bandwidth(machine, repeats), *gpu_unused(machine, providers)]

    return Step(label, "hardware", measure)


def gpu_unused(machine: Machine, providers: list[str]) -> list[Note]:
    """A note when the machine has an NVIDIA GPU that this onnxruntime cannot use: every model
    then runs on the CPU, and the figures say nothing about the GPU."""
    if not machine.gpus or any(p in providers for p in models.PREFERRED):
        return []
    text = (
        "an NVIDIA GPU is here, but this onnxruntime has no CUDA or TensorRT provider, so "
        "every model runs on the CPU: install onnxruntime-gpu in its place "
        "(Jetson: systemd/install.sh does, docs/service.md) and run the bench again"
    )
    return [Note("hardware", "gpu", text, skipped=True)]


def run_steps(steps: list[Step], progress: Progress) -> list[Finding]:
    found: list[Finding] = []
    for number, step in enumerate(steps, 1):
        progress(f"[{number}/{len(steps)}] {step.label} …")
        try:
            found += step.run()
        except Exception as exc:  # one broken step must not cost the others' figures
            log.exception("bench step %r failed", step.label)
            why = f"failed: {type(exc).__name__}: {exc}"
            found.append(Note(step.group, step.label, why, skipped=True))
    return found


def describe_software() -> Software:
    return Software(
        python=platform.python_version(),
        edge_runtime=__version__,
        onnxruntime=ort.__version__,
        providers=list(ort.get_available_providers()),
        numpy=_version("numpy") or "?",
        pocketsphinx=_version("pocketsphinx"),
        vosk=_version("vosk"),
        onnxruntime_genai=_version("onnxruntime-genai") or _version("onnxruntime-genai-cuda"),
        espeak_ng=_espeak_version(),
    )


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _espeak_version() -> str | None:
    binary = shutil.which("espeak-ng")
    if binary is None:
        return None
    try:
        done = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"(\d+\.\d+(?:\.\d+)?)", done.stdout)
    return found.group(1) if found else None
