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

from edge_runtime.inference.catalog import CatalogModel, Task, describe_files, write_entry
from edge_runtime.inference.encoder import SentenceEncoder, load_tokenizer

QuantizeTarget = Literal["arm64", "avx2", "avx512_vnni", "none"]
OPSET = 18
MODEL_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
COMPANION_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "config.json",  # a classifier's labels live here
)
_OPTIMUM_TASKS: dict[str, str] = {
    "sentence-embedding": "feature-extraction",
    "token-classification": "token-classification",
    "sequence-classification": "text-classification",
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
) -> ExportResult:
    """Export, quantize, check and catalog one model; returns what was written."""
    if not (source / "config.json").exists():
        raise ExportError(f"{source}: not a Hugging Face model directory (no config.json)")
    if not (source / "tokenizer.json").exists():
        raise ExportError(f"{source}: no tokenizer.json (save the tokenizer beside the model)")
    if not MODEL_ID.match(model_id):
        raise ExportError(
            f"model id {model_id!r} must be lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (it names a folder under the models directory)"
        )
    target = models_dir / model_id
    with tempfile.TemporaryDirectory(prefix="edge-export-") as tmp:
        done = _step(progress, f"exporting {source} to ONNX (opset {OPSET})")
        fp32 = _onnx_export(source, task, Path(tmp) / "fp32")
        done()
        shipped = fp32
        if quantize != "none":
            done = _step(progress, f"quantizing to int8 for {quantize} (dynamic, per channel)")
            shipped = _quantize(fp32, quantize, Path(tmp) / "int8")
            done()
        done = _step(progress, "comparing int8 with fp32 outputs")
        deviation, agreement = compare_outputs(fp32, shipped, fp32.parent / "tokenizer.json", task)
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
        quantization="fp32" if quantize == "none" else "int8-dynamic",
        opset=OPSET,
        license=licence or _licence(source),
        source=source_note or str(source),
        min_ram_mb=_min_ram_mb(written),
        languages=("en",),
        recipe=(
            f"edge-runtime models export SOURCE --task {task} --quantize {quantize} --id {model_id}"
        ),
    )
    write_entry(model, models_dir)
    return ExportResult(model, deviation, agreement, target)


def _min_ram_mb(files: list[Path]) -> int:
    """Weights once in the file cache and once in the session, plus working memory."""
    size_mb = sum(p.stat().st_size for p in files) / 2**20
    return int(2 * size_mb + 64)


__all__: list[Any] = ["ExportError", "ExportResult", "export"]
