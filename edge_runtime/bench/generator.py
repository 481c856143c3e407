"""Generator models of the catalog (`task: text-generation`), in the style of llama-bench:
prompt processing (`pp64`: one prompt of 64 tokens, prefilled at once) and token generation
(`tg32`: 32 tokens decoded one by one after it), in tokens per second.

The model folder is what onnxruntime-genai runs (`genai_config.json`, `model.onnx`, the
tokenizer files); `onnxruntime_genai` is optional and imported only in the child that
measures, so a machine without it gets a "not installed" row. Each model and provider runs
in a child process (`child`), as the encoder models do, with the profile's thread count.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime.bench.child import Job, PeakMeter, Unavailable, child_main
from edge_runtime.bench.models import catalog_steps, short
from edge_runtime.bench.plan import (
    GENERATED_TOKENS,
    PROMPT_TOKENS,
    Context,
    Step,
    skipped,
)
from edge_runtime.bench.results import Figure, Finding
from edge_runtime.inference.catalog import (
    CatalogModel,
    ModelIntegrityError,
    load_catalog,
    models_dir,
    verify_model,
)
from edge_runtime.profiles import load_profiles

TASK = "text-generation"
PACKAGE = "onnxruntime_genai"
CONFIG_FILE = "genai_config.json"
GENAI_PROVIDERS = {
    "CPUExecutionProvider": None,
    "CUDAExecutionProvider": "cuda",
    "DmlExecutionProvider": "dml",
    "OpenVINOExecutionProvider": "OpenVINO",
    "QNNExecutionProvider": "QNN",
    "WebGpuExecutionProvider": "WebGPU",
}
"""onnxruntime's provider names and onnxruntime-genai's for the same thing (None: default)."""
PROMPT = "turn off the lights in the kitchen and set the bedroom lamp to 40 percent "
WARM_UP_TOKENS = (8, 4)


def genai_installed() -> bool:
    return importlib.util.find_spec(PACKAGE) is not None


def steps(context: Context, providers: list[str]) -> list[Step]:
    models = [m for m in load_catalog().models if m.task == TASK]
    if not models:
        none = "the catalog has no text-generation model"
        return [skipped("generator: none in the catalog", "generator", "no model", none)]

    def job(model: CatalogModel, provider: str) -> Job:
        return {
            "model": model.id,
            "provider": provider,
            "profile": context.profile.id,
            "repeats": context.settings.generator_repeats,
        }

    return catalog_steps(
        context, "generator", models, providers, __name__, job, _figures, _unsupported
    )


def _unsupported(provider: str) -> str | None:
    if not genai_installed():
        return "not installed (pip install onnxruntime-genai)"
    if provider not in GENAI_PROVIDERS:
        return f"onnxruntime-genai has no {short(provider)} provider"
    return None


def _figures(name: str) -> Callable[[Job], list[Finding]]:
    pp, tg = f"pp{PROMPT_TOKENS}", f"tg{GENERATED_TOKENS}"
    return lambda r: [
        Figure("generator", name, "load_s", "load s", r["load_s"], "s", "lower"),
        Figure("generator", name, "peak_mb", "peak MB", r["peak_mb"], "MB", "lower"),
        Figure("generator", name, pp, f"{pp} t/s", r["pp"], "tokens/s", "higher"),
        Figure("generator", name, tg, f"{tg} t/s", r["tg"], "tokens/s", "higher"),
    ]


# --------------------------------------------------------------------------- the child


def measure(job: Job) -> Job:
    """In the child: load the model with onnxruntime-genai, then prefill and decode."""
    try:
        import onnxruntime_genai as og  # noqa: PLC0415  (optional: the child finds out)
    except ImportError:
        raise Unavailable("not installed (pip install onnxruntime-genai)") from None
    model = load_catalog().get(job["model"])
    try:
        verify_model(model)
    except ModelIntegrityError as exc:
        raise Unavailable(str(exc)) from None
    folder = (models_dir() / model.file(CONFIG_FILE).path).parent
    context_length = json.loads((folder / CONFIG_FILE).read_text())["model"]["context_length"]
    needed = PROMPT_TOKENS + 1 + GENERATED_TOKENS
    if context_length < needed:
        raise Unavailable(f"context length {context_length} < {needed} tokens")
    meter = PeakMeter()
    meter.start()
    started = time.perf_counter()
    genai = og.Model(_config(og, folder, job))
    tokenizer = og.Tokenizer(genai)
    load_s = time.perf_counter() - started
    prompt = prompt_ids(tokenizer, PROMPT_TOKENS)
    prefill_decode(og, genai, prompt[: WARM_UP_TOKENS[0]], WARM_UP_TOKENS[1])
    runs = [prefill_decode(og, genai, prompt, GENERATED_TOKENS) for _ in range(job["repeats"])]
    return {
        "load_s": load_s,
        "peak_mb": meter.added_mb(),
        "pp": float(np.mean([r.pp for r in runs])),
        "tg": float(np.mean([r.tg for r in runs])),
    }


def _config(og: Any, folder: Path, job: Job) -> Any:
    """The model's config on the provider measured, with the profile's thread count."""
    config = og.Config(str(folder))
    config.clear_providers()
    name = GENAI_PROVIDERS[job["provider"]]
    if name == "cuda" and not og.is_cuda_available():
        raise Unavailable("this onnxruntime-genai has no CUDA (pip install onnxruntime-genai-cuda)")
    if name is not None:
        config.append_provider(name)
    threads = load_profiles()[job["profile"]].threads
    options = {"intra_op_num_threads": threads.intra_op, "inter_op_num_threads": threads.inter_op}
    config.overlay(json.dumps({"model": {"decoder": {"session_options": options}}}))
    return config


def prompt_ids(tokenizer: Any, count: int) -> Any:
    """`count` real tokens of a command (repeated as needed), as onnxruntime-genai takes them."""
    ids = tokenizer.encode(PROMPT)
    return np.resize(np.asarray(ids, dtype=np.int32), count)


@dataclass(frozen=True)
class PrefillDecode:
    """One llama-bench style run of a fresh generator (also used by benchmarks/generator.py)."""

    prompt_tokens: int
    prefill_s: float
    decoded: int
    """Tokens decoded after the first, counted in the sequence genai holds at the end."""
    decode_s: float

    @property
    def pp(self) -> float:
        """Prefill tokens per second."""
        return self.prompt_tokens / self.prefill_s

    @property
    def tg(self) -> float:
        """Decode tokens per second."""
        return self.decoded / self.decode_s


def prefill_decode(og: Any, genai: Any, prompt: Any, generate: int) -> PrefillDecode:
    """Prefill `prompt` at once, then decode `generate` tokens one by one, greedily.

    The first token comes from the prefill's logits without a forward pass, so it is taken
    before the clock starts; each of the `generate` tokens timed after it costs one pass.
    `min_length` keeps an end-of-sequence token from stopping the decode early, so every
    run decodes exactly `generate` tokens, as llama-bench's tg does (`decoded` says so).
    """
    total = len(prompt) + 1 + generate
    params = og.GeneratorParams(genai)
    params.set_search_options(max_length=total, min_length=total, do_sample=False)
    generator = og.Generator(genai, params)
    started = time.perf_counter()
    generator.append_tokens(prompt)  # runs the prefill
    prefill_s = time.perf_counter() - started
    generator.generate_next_token()
    started = time.perf_counter()
    steps = 0
    while steps < generate and not generator.is_done():
        generator.generate_next_token()
        steps += 1
    decode_s = time.perf_counter() - started
    decoded = len(generator.get_sequence(0)) - len(prompt) - 1
    return PrefillDecode(len(prompt), prefill_s, decoded, decode_s)


if __name__ == "__main__":
    sys.exit(child_main(measure))
