"""The model catalog (`models/catalog.yaml`): every shipped model, its files and their sha256.

A model file is loaded only after its size and sha256 match the catalog: a
truncated download, a flipped bit on an SD card or a swapped file is refused
with a message naming the file and the expected hash, never half-loaded.
This module knows files and hashes; it never creates an onnxruntime session.
"""

from __future__ import annotations

import hashlib
import os
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field

from edge_runtime.yamlload import ConfigError, StrictModel, load_model

Task = Literal[
    "sentence-embedding",
    "token-classification",
    "sequence-classification",
    "text-generation",
    "speech-to-text",
    "voice-activity",
]
Quantization = Literal["int8-dynamic", "int8-static", "int8-weights", "int4", "fp32", "none"]
"""int8-dynamic: weights and activations (encoders); int8-weights and int4: weights only,
the MatMuls of a generator."""
HASH_CHUNK = 1 << 20


class ModelIntegrityError(Exception):
    """A model file is missing, truncated or differs from its catalog hash."""


class ModelFile(StrictModel):
    path: str
    """Relative to the models directory."""
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class CatalogModel(StrictModel):
    id: str
    task: Task
    files: tuple[ModelFile, ...]
    parameters: int = Field(ge=0)
    quantization: Quantization
    opset: int | None = None
    """ONNX opset of the graph (None for non-ONNX speech models)."""
    license: str
    source: str
    """Where the weights came from, so anyone can check the licence and provenance."""
    min_ram_mb: int = Field(ge=0)
    languages: tuple[str, ...] = ()
    recipe: str = ""
    """The command that rebuilds the files."""

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def file(self, name: str) -> ModelFile:
        """The file called `name` (e.g. `model.onnx`), wherever it lies in the model's folder."""
        for model_file in self.files:
            if model_file.path.rsplit("/", 1)[-1] == name:
                return model_file
        raise KeyError(f"model {self.id} has no file {name!r}")


class Catalog(StrictModel):
    models: tuple[CatalogModel, ...] = ()

    def get(self, model_id: str) -> CatalogModel:
        for model in self.models:
            if model.id == model_id:
                return model
        known = ", ".join(m.id for m in self.models) or "none"
        raise KeyError(f"no model {model_id!r} in the catalog (known: {known})")


def models_dir() -> Path:
    """`$EDGE_RUNTIME_MODELS`, else the shipped models (in the package, or the repository's)."""
    override = os.environ.get("EDGE_RUNTIME_MODELS")
    if override:
        return Path(override)
    shipped = Path(str(resources.files("edge_runtime"))) / "_shipped" / "models"
    if shipped.is_dir():
        return shipped
    return Path(__file__).resolve().parents[2] / "models"


def catalog_path(directory: Path | None = None) -> Path:
    return (directory or models_dir()) / "catalog.yaml"


def load_catalog(directory: Path | None = None) -> Catalog:
    """The catalog of a models directory; a missing catalog is an error naming where it looked."""
    path = catalog_path(directory)
    if not path.exists():
        raise ConfigError(path, [f"{path}: no model catalog here (is EDGE_RUNTIME_MODELS right?)"])
    return load_model(path, Catalog)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(directory: Path, model_file: ModelFile) -> Path:
    """The file's path once size and sha256 match; ModelIntegrityError otherwise."""
    path = directory / model_file.path
    if not path.is_file():
        raise ModelIntegrityError(f"{path}: missing (expected sha256 {model_file.sha256})")
    size = path.stat().st_size
    if size != model_file.size:
        kind = "truncated" if size < model_file.size else "too large"
        raise ModelIntegrityError(
            f"{path}: {kind}: {size} bytes, expected {model_file.size} "
            f"(expected sha256 {model_file.sha256})"
        )
    actual = sha256_of(path)
    if actual != model_file.sha256:
        raise ModelIntegrityError(
            f"{path}: sha256 mismatch: expected {model_file.sha256}, got {actual}"
        )
    return path


def verify_model(model: CatalogModel, directory: Path | None = None) -> list[Path]:
    """Verify every file of a model; the first bad file raises."""
    directory = directory or models_dir()
    return [verify_file(directory, f) for f in model.files]


def describe_files(directory: Path, paths: list[Path]) -> list[ModelFile]:
    """Catalog entries (path, sha256, size) for freshly written files."""
    return [
        ModelFile(
            path=p.relative_to(directory).as_posix(), sha256=sha256_of(p), size=p.stat().st_size
        )
        for p in paths
    ]


def write_entry(model: CatalogModel, directory: Path | None = None) -> Path:
    """Add or replace one model's entry, keeping the others and their order."""
    path = catalog_path(directory)
    catalog = load_catalog(directory) if path.exists() else Catalog()
    models = [m for m in catalog.models if m.id != model.id]
    index = next((i for i, m in enumerate(catalog.models) if m.id == model.id), len(models))
    models.insert(index, model)
    data = {"models": [m.model_dump(mode="json", exclude_defaults=True) for m in models]}
    header = "# Shipped models. Files are verified against sha256 and size before loading.\n"
    path.write_text(header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path
