"""`edge-runtime models export`: a Hugging Face model directory to int8 ONNX, in the catalog.

Steps: optimum exports the fp32 graph; onnxruntime's dynamic quantizer (through
optimum's `ORTQuantizer`, per-channel weights) makes the int8 one; both run on
a few sentences and the largest deviation is printed, so a quantization that
broke the model is seen before it ships; the files and their sha256 go into
`models/<id>/` and `models/catalog.yaml`. Needs the `export` extra (optimum,
torch); the daemon never imports this module.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnxruntime as ort

from edge_runtime.inference.catalog import (
    CatalogModel,
    Quantization,
    Task,
    describe_files,
    write_entry,
)
from edge_runtime.inference.encoder import SentenceEncoder, load_tokenizer
from edge_runtime.inference.genai_export import (
    DEFAULT_BLOCK,
    GenaiExportError,
    GenerationQuantize,
    quantize_decoder,
    write_genai_config,
)
from edge_runtime.inference.generator import Budget, TextGenerator

QuantizeTarget = Literal["arm64", "avx2", "avx512_vnni", "int4", "int8", "none"]
ENCODER_QUANTIZE = ("arm64", "avx2", "avx512_vnni", "none")
"""int8 kernels of an encoder or classifier: activations quantized at run time too."""
GENERATOR_QUANTIZE = ("int4", "int8", "none")
"""A generator's weight-only modes (see genai_export)."""
OPSET = 18
MODEL_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
COMPANION_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "config.json",  # a classifier's labels live here
    "genai_config.json",  # how onnxruntime-genai runs a generator
)
_OPTIMUM_TASKS: dict[str, str] = {
    "sentence-embedding": "feature-extraction",
    "token-classification": "token-classification",
    "sequence-classification": "text-classification",
    "text-generation": "text-generation-with-past",
}
CHECK_SENTENCES = (
    "turn on the kitchen lights",
    "could you please dim the bedroom lamp to thirty percent",
    "kill the garage light",
    "is the front door locked",
    "set a timer for ten minutes",
)

Progress = Callable[[str], None]


class ExportError(Exception):
    """The source cannot be exported (missing files, unsupported task, missing extra)."""


@dataclass(frozen=True)
class ExportResult:
    model: CatalogModel
    max_deviation: float
    """Largest absolute difference between the fp32 and the shipped outputs."""
    agreement: float
    """Smallest fp32/shipped embedding cosine, or a classifier's share of equal labels."""
    directory: Path


def _step(progress: Progress, message: str) -> Callable[[], None]:
    started = time.monotonic()
    progress(f"{message} ...")
    return lambda: progress(f"{message}: done in {time.monotonic() - started:.1f} s")


def _onnx_export(source: Path, task: Task, out: Path) -> Path:
    try:
        from optimum.exporters.onnx import main_export
    except ImportError as exc:
        raise ExportError("export needs the extra: pip install 'edge-runtime[export]'") from exc
    if task not in _OPTIMUM_TASKS:
        raise ExportError(f"task {task!r} is not exported by this command yet")
    main_export(
        str(source),
        out,
        task=_OPTIMUM_TASKS[task],
        opset=OPSET,
        device="cpu",
        local_files_only=True,
        library_name="transformers",
        do_validation=False,
    )
    return out / "model.onnx"


def _quantize(fp32: Path, target: QuantizeTarget, out: Path) -> Path:
    from optimum.onnxruntime import ORTQuantizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    config = getattr(AutoQuantizationConfig, target)(is_static=False, per_channel=True)
    quantizer = ORTQuantizer.from_pretrained(fp32.parent, file_name=fp32.name)
    quantizer.quantize(quantization_config=config, save_dir=out, file_suffix=None)
    return out / fp32.name


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def compare_outputs(fp32: Path, shipped: Path, tokenizer: Path, task: Task) -> tuple[float, float]:
    """(max abs deviation of the first output, agreement).

    Agreement is the smallest cosine between fp32 and shipped sentence embeddings,
    or, for a classifier, the share of sentences given the same label.
    """
    tok = load_tokenizer(tokenizer)
    reference = SentenceEncoder(_session(fp32), tok)
    candidate = SentenceEncoder(_session(shipped), tok)
    sentences = list(CHECK_SENTENCES)
    feeds = reference.feeds(sentences)
    expected = np.asarray(reference.session.run(None, feeds)[0])
    actual = np.asarray(candidate.session.run(None, feeds)[0])
    deviation = float(np.max(np.abs(expected - actual)))
    if task == "sentence-embedding":
        cosine = np.sum(reference.embed(sentences) * candidate.embed(sentences), 1)
        return deviation, float(cosine.min())
    return deviation, float(np.mean(expected.argmax(-1) == actual.argmax(-1)))


def _parameters(path: Path) -> int:
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path), load_external_data=False).graph
    return int(sum(numpy_helper.to_array(t).size for t in graph.initializer))


def _licence(source: Path) -> str:
    readme = source / "README.md"
    if readme.exists():
        found = re.search(r"^license:\s*(\S+)", readme.read_text(errors="replace"), re.M)
        if found:
            return found.group(1)
    return "unknown"


def export(
    source: Path,
    task: Task,
    quantize: QuantizeTarget,
    model_id: str,
    models_dir: Path,
    progress: Progress,
    source_note: str | None = None,
    licence: str | None = None,
    block_size: int | None = None,
) -> ExportResult:
    """Export, quantize, check and catalog one model; returns what was written. `block_size`
    (weights per scale) applies to a quantized generator only; None takes DEFAULT_BLOCK."""
    if not (source / "config.json").exists():
        raise ExportError(f"{source}: not a Hugging Face model directory (no config.json)")
    if not (source / "tokenizer.json").exists():
        raise ExportError(f"{source}: no tokenizer.json (save the tokenizer beside the model)")
    if not MODEL_ID.match(model_id):
        raise ExportError(
            f"model id {model_id!r} must be lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (it names a folder under the models directory)"
        )
    generating = task == "text-generation"
    allowed = GENERATOR_QUANTIZE if generating else ENCODER_QUANTIZE
    if quantize not in allowed:
        raise ExportError(
            f"--quantize {quantize} does not apply to {task} (choose {', '.join(allowed)})"
        )
    if block_size is not None and not (generating and quantize != "none"):
        raise ExportError("--block-size applies to a text-generation model quantized to int4/int8")
    block = block_size or DEFAULT_BLOCK
    target = models_dir / model_id
    with tempfile.TemporaryDirectory(prefix="edge-export-") as tmp:
        done = _step(progress, f"exporting {source} to ONNX (opset {OPSET})")
        fp32 = _onnx_export(source, task, Path(tmp) / "fp32")
        if generating:
            write_genai_config(fp32.parent, fp32.parent / "config.json", fp32.name)
        done()
        shipped = fp32
        if quantize != "none":
            what = (
                f"{quantize} (weight-only, the MatMuls, blocks of {block})"
                if generating
                else f"int8 for {quantize} (dynamic, per channel)"
            )
            done = _step(progress, f"quantizing to {what}")
            shipped = (
                _quantize_generator(fp32, quantize, Path(tmp) / "quantized", block)  # type: ignore[arg-type]
                if generating
                else _quantize(fp32, quantize, Path(tmp) / "int8")
            )
            done()
        shipped_kind = "fp32" if quantize == "none" else quantize if generating else "int8"
        done = _step(progress, f"comparing {shipped_kind} with fp32 outputs")
        if generating:
            deviation, agreement = compare_generations(fp32.parent, shipped.parent)
        else:
            tokenizer = fp32.parent / "tokenizer.json"
            deviation, agreement = compare_outputs(fp32, shipped, tokenizer, task)
        done()
        parameters = _parameters(fp32)
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        written = [Path(shutil.copy2(shipped, target / "model.onnx"))]
        written += [
            Path(shutil.copy2(fp32.parent / name, target / name))
            for name in COMPANION_FILES
            if (fp32.parent / name).exists()
        ]
    model = CatalogModel(
        id=model_id,
        task=task,
        files=tuple(describe_files(models_dir, written)),
        parameters=parameters,
        quantization=_quantization(quantize),
        opset=OPSET,
        license=licence or _licence(source),
        source=source_note or str(source),
        min_ram_mb=_min_ram_mb(written),
        languages=("en",),
        recipe=(
            f"edge-runtime models export SOURCE --task {task} --quantize {quantize} --id {model_id}"
            + (f" --block-size {block}" if generating and quantize != "none" else "")
        ),
    )
    write_entry(model, models_dir)
    return ExportResult(model, deviation, agreement, target)


def _quantization(quantize: QuantizeTarget) -> Quantization:
    return {"none": "fp32", "int4": "int4", "int8": "int8-weights"}.get(quantize, "int8-dynamic")  # type: ignore[return-value]


def _quantize_generator(fp32: Path, mode: GenerationQuantize, out: Path, block: int) -> Path:
    """The quantized decoder in a folder of its own, with the companions genai loads it with."""
    try:
        shipped = quantize_decoder(fp32, mode, out / fp32.name, block)
    except GenaiExportError as exc:
        raise ExportError(str(exc)) from exc
    for name in COMPANION_FILES:
        if (fp32.parent / name).exists():
            shutil.copy2(fp32.parent / name, out / name)
    return shipped


def compare_generations(fp32: Path, shipped: Path) -> tuple[float, float]:
    """(max abs deviation of the first step's logits, share of equal greedy answers) on the
    check sentences, each prompted the way the model was trained (`TextGenerator.prompt`)."""
    reference, candidate = TextGenerator(fp32), TextGenerator(shipped)
    budget = Budget(max_new_tokens=32)
    deviation, same = 0.0, 0
    for sentence in CHECK_SENTENCES:
        prompt = reference.prompt(sentence)
        deviation = max(deviation, reference.first_logits_gap(candidate, prompt))
        same += reference.generate(prompt, budget).text == candidate.generate(prompt, budget).text
    return deviation, same / len(CHECK_SENTENCES)


def _min_ram_mb(files: list[Path]) -> int:
    """Weights once in the file cache and once in the session, plus working memory."""
    size_mb = sum(p.stat().st_size for p in files) / 2**20
    return int(2 * size_mb + 64)


__all__: list[Any] = ["ExportError", "ExportResult", "export"]
