"""The one place that makes onnxruntime sessions, from a catalog model and a device profile.

Execution providers are taken in the profile's order; one that this
onnxruntime build lacks (CUDA on a Pi, TensorRT without the libraries) is
skipped with a logged reason, and the CPU provider is always the last resort.
Threads, graph optimisation and the memory arena come from the profile. The
file is verified against its catalog sha256 before onnxruntime sees it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort

from edge_runtime.inference.catalog import CatalogModel, models_dir, verify_file
from edge_runtime.profiles import DeviceProfile

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
_OPTIMIZATION = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


class ModelLoadError(Exception):
    """onnxruntime could not load a (verified) model file."""


def choose_providers(wanted: tuple[str, ...], available: list[str]) -> list[str]:
    """The profile's providers that this build has, in order, always ending with the CPU."""
    chosen = []
    for provider in wanted:
        if provider in available:
            chosen.append(provider)
        else:
            log.info(
                "execution provider %s is not in this onnxruntime build (it has %s); skipping it",
                provider,
                ", ".join(available),
            )
    if CPU not in chosen:
        chosen.append(CPU)
    return chosen


def session_options(profile: DeviceProfile) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = profile.threads.intra_op
    options.inter_op_num_threads = profile.threads.inter_op
    options.graph_optimization_level = _OPTIMIZATION[profile.graph_optimization]
    options.enable_cpu_mem_arena = profile.memory_arena
    options.log_severity_level = 3  # warnings from onnxruntime's C++ side are noise here
    return options


@dataclass(frozen=True)
class LoadedSession:
    session: ort.InferenceSession
    path: Path
    providers: list[str]


def create_session(
    model: CatalogModel,
    profile: DeviceProfile,
    file_name: str = "model.onnx",
    directory: Path | None = None,
) -> LoadedSession:
    """Verify the model file, then open it with the profile's providers and threads."""
    path = verify_file(directory or models_dir(), model.file(file_name))
    providers = choose_providers(profile.execution_providers, ort.get_available_providers())
    try:
        session = ort.InferenceSession(
            str(path), sess_options=session_options(profile), providers=providers
        )
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelLoadError(f"{path}: onnxruntime cannot load it: {exc}") from exc
    log.info("loaded %s (%s) with %s", model.id, path.name, ", ".join(session.get_providers()))
    return LoadedSession(session, path, session.get_providers())
