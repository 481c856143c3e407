"""Encoder-family ONNX models of the catalog, per execution provider: load time, peak memory,
latency percentiles of one sentence, and throughput in batches.

Each model and provider is measured in a child process (`child`): its peak resident memory
is then the model's own, and a provider whose libraries are missing fails that child, not
the run. A provider that onnxruntime lists but cannot start silently falls back to the CPU;
that is detected (`session.get_providers()`) and reported instead of CPU figures under the
wrong name. Sessions are made as the node makes them: the profile's threads, graph
optimisation and arena (`inference.session.session_options`), after the sha256 check.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from edge_runtime.bench.child import Job, PeakMeter, Unavailable, child_main
from edge_runtime.bench.plan import BATCH, COMMANDS, Context, Step, in_child, skipped
from edge_runtime.bench.results import Better, Figure, Finding, Group
from edge_runtime.bench.stats import percentile
from edge_runtime.inference.catalog import (
    CatalogModel,
    ModelIntegrityError,
    load_catalog,
    models_dir,
    verify_model,
)
from edge_runtime.inference.encoder import load_tokenizer, model_inputs
from edge_runtime.inference.session import session_options
from edge_runtime.profiles import load_profiles

ENCODER_TASKS = ("sentence-embedding", "token-classification", "sequence-classification")
CPU = "CPUExecutionProvider"
NOT_COMPUTE = frozenset({"AzureExecutionProvider"})
"""Listed by onnxruntime, but they run no graph on this machine."""
PREFERRED = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
WARM_UP_CALLS = 5


def bench_providers(available: list[str]) -> list[str]:
    """The providers to measure: GPU ones first, the CPU last, non-compute ones left out."""
    usable = [p for p in available if p not in NOT_COMPUTE]
    first = [p for p in PREFERRED if p in usable]
    rest = [p for p in usable if p not in first and p != CPU]
    return first + rest + ([CPU] if CPU in usable else [])


def short(provider: str) -> str:
    return provider.removesuffix("ExecutionProvider")


def subject(model_id: str, provider: str) -> str:
    return f"{model_id} ({short(provider)})"


def fits(model: CatalogModel, context: Context) -> str | None:
    """Why the model is not measured here, or None when it fits in the free RAM."""
    free = context.machine.ram_available_mb
    if free and model.min_ram_mb > free:
        return f"needs {model.min_ram_mb} MB, {free} MB free"
    return None


def steps(context: Context, providers: list[str]) -> list[Step]:
    def job(model: CatalogModel, provider: str) -> Job:
        return {
            "model": model.id,
            "provider": provider,
            "profile": context.profile.id,
            "calls": context.settings.encoder_calls,
            "batches": context.settings.encoder_batches,
            "cache_dir": str(context.cache_dir),
        }

    chosen = [m for m in load_catalog().models if m.task in ENCODER_TASKS]
    return catalog_steps(context, "encoder", chosen, providers, __name__, job, _figures)


def catalog_steps(
    context: Context,
    group: Group,
    chosen: list[CatalogModel],
    providers: list[str],
    module: str,
    job: Callable[[CatalogModel, str], Job],
    figures_of: Callable[[str], Callable[[Job], list[Finding]]],
    why_not: Callable[[str], str | None] = lambda provider: None,
) -> list[Step]:
    """A child step per model and provider; a row that says why where one cannot run here."""
    found = []
    for model in chosen:
        too_big = fits(model, context)
        for provider in providers:
            label = f"{group} {model.id} on {provider}"
            name = subject(model.id, provider)
            why = too_big or why_not(provider)
            timeout = context.settings.child_timeout_s
            found.append(
                skipped(label, group, name, why)
                if why
                else in_child(
                    label, group, name, module, timeout, job(model, provider), figures_of(name)
                )
            )
    return found


def _figures(name: str) -> Callable[[Job], list[Finding]]:
    return lambda result: figures(name, result)


def figures(name: str, r: Job) -> list[Finding]:
    def figure(metric: str, label: str, unit: str, better: Better) -> Figure:
        return Figure("encoder", name, metric, label, r[metric], unit, better)

    return [
        figure("load_s", "load s", "s", "lower"),
        figure("peak_mb", "peak MB", "MB", "lower"),
        figure("p50_ms", "p50 ms", "ms", "lower"),
        figure("p95_ms", "p95 ms", "ms", "lower"),
        figure("p99_ms", "p99 ms", "ms", "lower"),
        figure("sentences_per_s", f"sent/s @{BATCH}", "sentences/s", "higher"),
    ]


def provider_options(provider: str, cache_dir: Path) -> dict[str, str]:
    """TensorRT builds an engine per model on first use; keep it, as a node would."""
    if provider == "TensorrtExecutionProvider":
        engines = cache_dir / "tensorrt"
        engines.mkdir(parents=True, exist_ok=True)
        return {"trt_engine_cache_enable": "True", "trt_engine_cache_path": str(engines)}
    return {}


# --------------------------------------------------------------------------- the child


def measure(job: Job) -> Job:
    """In the child: load one model on one provider, time it, report the figures."""
    model = load_catalog().get(job["model"])
    profile = load_profiles()[job["profile"]]
    provider = job["provider"]
    try:
        verify_model(model)
    except ModelIntegrityError as exc:
        raise Unavailable(str(exc)) from None
    directory = models_dir()
    meter = PeakMeter()
    meter.start()
    started = time.perf_counter()
    providers: list[Any] = [(provider, provider_options(provider, Path(job["cache_dir"])))]
    if provider != CPU:
        providers.append(CPU)  # operators the provider lacks run on the CPU, as in the node
    session = ort.InferenceSession(
        str(directory / model.file("model.onnx").path),
        sess_options=session_options(profile),
        providers=providers,
    )
    tokenizer = load_tokenizer(directory / model.file("tokenizer.json").path)
    load_s = time.perf_counter() - started
    used = session.get_providers()
    if used[0] != provider:
        raise Unavailable(
            f"{provider} did not start and onnxruntime fell back to {used[0]} "
            "(the provider's libraries are missing or do not match this onnxruntime build)"
        )
    names = {i.name for i in session.get_inputs()}

    def feeds(texts: list[str]) -> dict[str, Any]:
        encodings = tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        return model_inputs(ids, mask, names)

    singles = [feeds([s]) for s in COMMANDS]
    for i in range(WARM_UP_CALLS):
        session.run(None, singles[i % len(singles)])
    latencies = []
    for i in range(job["calls"]):
        begun = time.perf_counter()
        session.run(None, singles[i % len(singles)])
        latencies.append((time.perf_counter() - begun) * 1000)
    batch = feeds([COMMANDS[i % len(COMMANDS)] for i in range(BATCH)])
    session.run(None, batch)
    begun = time.perf_counter()
    for _ in range(job["batches"]):
        session.run(None, batch)
    batch_s = time.perf_counter() - begun
    return {
        "load_s": load_s,
        "peak_mb": meter.added_mb(),
        "p50_ms": percentile(latencies, 0.50),
        "p95_ms": percentile(latencies, 0.95),
        "p99_ms": percentile(latencies, 0.99),
        "sentences_per_s": job["batches"] * BATCH / batch_s,
    }


if __name__ == "__main__":
    sys.exit(child_main(measure))
