"""The model catalog: shipped models verify; damaged copies are refused, saying which file and why.

Every test that damages a file works on a copy of `models/` under tmp_path; the
repository's own models are only read. The CLI runs as a real subprocess with
EDGE_RUNTIME_MODELS pointing at the copy. No onnxruntime mocks: the session
tests open the real files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import onnx
import onnxruntime as ort
import pytest

from edge_runtime.inference.catalog import (
    CatalogModel,
    ModelIntegrityError,
    load_catalog,
    models_dir,
    verify_file,
    verify_model,
)
from edge_runtime.inference.session import create_session
from edge_runtime.profiles import DeviceProfile, load_profiles
from edge_runtime.yamlload import ConfigError

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "models"
SHIPPED_IDS = [m.id for m in load_catalog(SHIPPED).models]
DAMAGED_ID = SHIPPED_IDS[0]
"""The model whose copy the damage tests break."""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def copy_models(target: Path) -> Path:
    """A private copy of the shipped catalog and every model folder (real copies, no links)."""
    target.mkdir(parents=True)
    shutil.copy2(SHIPPED / "catalog.yaml", target / "catalog.yaml")
    for model_id in SHIPPED_IDS:
        shutil.copytree(SHIPPED / model_id, target / model_id)
    return target


def flip_one_weight_byte(path: Path) -> int:
    """Flip one bit in the middle of the largest weight tensor, leaving the protobuf parseable."""
    graph = onnx.load(str(path)).graph
    largest = max(graph.initializer, key=lambda tensor: len(tensor.raw_data))
    start = path.read_bytes().find(largest.raw_data)
    assert start > 0, "the largest initializer's bytes were not found in the file"
    offset = start + len(largest.raw_data) // 2
    with path.open("r+b") as handle:
        handle.seek(offset)
        original = handle.read(1)[0]
        handle.seek(offset)
        handle.write(bytes([original ^ 0x01]))
    return offset


def cli(*args: str, models: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "EDGE_RUNTIME_MODELS"}
    if models is not None:
        env["EDGE_RUNTIME_MODELS"] = str(models)
    return subprocess.run(
        [sys.executable, "-m", "edge_runtime", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.fixture
def models_copy(tmp_path: Path) -> Path:
    return copy_models(tmp_path / "models")


@pytest.fixture
def damaged(models_copy: Path) -> CatalogModel:
    """The catalog entry of the model whose copy a test is about to damage."""
    return load_catalog(models_copy).get(DAMAGED_ID)


@pytest.fixture
def x86_profile() -> DeviceProfile:
    return load_profiles()["x86-64"]


# The shipped catalog


def test_the_shipped_catalog_lists_at_least_one_model_and_no_id_twice() -> None:
    assert SHIPPED_IDS
    assert len(set(SHIPPED_IDS)) == len(SHIPPED_IDS)


@pytest.mark.parametrize("model_id", SHIPPED_IDS)
def test_every_shipped_model_keeps_its_files_in_its_own_folder(model_id: str) -> None:
    model = load_catalog(SHIPPED).get(model_id)
    assert {f.path.split("/", 1)[0] for f in model.files} == {model_id}
    assert model.file("model.onnx").path == f"{model_id}/model.onnx"
    assert model.size == sum(f.size for f in model.files) > 0


@pytest.mark.parametrize("model_id", SHIPPED_IDS)
def test_every_shipped_model_passes_verification(model_id: str) -> None:
    model = load_catalog(SHIPPED).get(model_id)
    paths = verify_model(model, SHIPPED)
    assert paths == [SHIPPED / f.path for f in model.files]
    for path, entry in zip(paths, model.files, strict=True):
        assert path.stat().st_size == entry.size


def test_the_models_directory_is_the_repositorys_unless_edge_runtime_models_overrides_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("EDGE_RUNTIME_MODELS", raising=False)
    assert models_dir().resolve() == SHIPPED
    monkeypatch.setenv("EDGE_RUNTIME_MODELS", str(tmp_path))
    assert models_dir() == tmp_path
    # A directory without a catalog is a mistake to report, not an empty catalog to trust.
    with pytest.raises(ConfigError, match="no model catalog here"):
        load_catalog()


def test_verify_model_uses_the_overridden_directory_when_none_is_given(
    monkeypatch: pytest.MonkeyPatch, models_copy: Path, damaged: CatalogModel
) -> None:
    monkeypatch.setenv("EDGE_RUNTIME_MODELS", str(models_copy))
    flip_one_weight_byte(models_copy / damaged.file("model.onnx").path)
    with pytest.raises(ModelIntegrityError, match="sha256 mismatch"):
        verify_model(damaged)


# Damaged copies


def test_a_flipped_byte_is_refused_naming_the_file_and_both_hashes(
    models_copy: Path, damaged: CatalogModel
) -> None:
    entry = damaged.file("model.onnx")
    path = models_copy / entry.path
    flip_one_weight_byte(path)
    actual = sha256(path)
    assert actual != entry.sha256
    with pytest.raises(ModelIntegrityError) as raised:
        verify_model(damaged, models_copy)
    assert str(raised.value) == f"{path}: sha256 mismatch: expected {entry.sha256}, got {actual}"


def test_a_corrupted_tokenizer_is_refused_as_well_as_a_corrupted_graph(
    models_copy: Path, damaged: CatalogModel
) -> None:
    entry = damaged.file("tokenizer.json")
    path = models_copy / entry.path
    text = path.read_bytes()
    path.write_bytes(text.replace(b"[UNK]", b"[UNX]", 1))
    assert path.stat().st_size == entry.size
    with pytest.raises(ModelIntegrityError) as raised:
        verify_model(damaged, models_copy)
    assert str(raised.value) == (
        f"{path}: sha256 mismatch: expected {entry.sha256}, got {sha256(path)}"
    )


def test_a_truncated_file_is_refused_with_its_size_and_the_expected_size(
    models_copy: Path, damaged: CatalogModel
) -> None:
    entry = damaged.file("model.onnx")
    path = models_copy / entry.path
    os.truncate(path, entry.size - 1000)
    with pytest.raises(ModelIntegrityError) as raised:
        verify_file(models_copy, entry)
    assert str(raised.value) == (
        f"{path}: truncated: {entry.size - 1000} bytes, expected {entry.size} "
        f"(expected sha256 {entry.sha256})"
    )


def test_a_file_with_bytes_appended_is_refused_as_too_large(
    models_copy: Path, damaged: CatalogModel
) -> None:
    entry = damaged.file("model.onnx")
    path = models_copy / entry.path
    with path.open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ModelIntegrityError) as raised:
        verify_file(models_copy, entry)
    assert str(raised.value) == (
        f"{path}: too large: {entry.size + 1} bytes, expected {entry.size} "
        f"(expected sha256 {entry.sha256})"
    )


def test_a_missing_file_is_refused_naming_the_file_and_its_expected_hash(
    models_copy: Path, damaged: CatalogModel
) -> None:
    entry = damaged.file("model.onnx")
    path = models_copy / entry.path
    path.unlink()
    with pytest.raises(ModelIntegrityError) as raised:
        verify_model(damaged, models_copy)
    assert str(raised.value) == f"{path}: missing (expected sha256 {entry.sha256})"


def test_a_directory_in_place_of_the_file_counts_as_missing(
    models_copy: Path, damaged: CatalogModel
) -> None:
    entry = damaged.file("model.onnx")
    path = models_copy / entry.path
    path.unlink()
    path.mkdir()
    with pytest.raises(ModelIntegrityError, match=r": missing \(expected sha256 "):
        verify_file(models_copy, entry)


# Sessions see only verified files


def test_onnxruntime_alone_would_load_the_file_with_a_flipped_weight_byte(
    models_copy: Path, damaged: CatalogModel
) -> None:
    """Why the hash matters: the damage is silent to onnxruntime, it only changes the answers."""
    path = models_copy / damaged.file("model.onnx").path
    flip_one_weight_byte(path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()


def test_create_session_refuses_a_file_with_a_flipped_byte(
    models_copy: Path,
    damaged: CatalogModel,
    x86_profile: DeviceProfile,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="edge_runtime.inference.session")
    entry = damaged.file("model.onnx")
    path = models_copy / entry.path
    flip_one_weight_byte(path)
    with pytest.raises(ModelIntegrityError) as raised:
        create_session(damaged, x86_profile, directory=models_copy)
    assert str(raised.value) == (
        f"{path}: sha256 mismatch: expected {entry.sha256}, got {sha256(path)}"
    )
    assert not [r for r in caplog.records if r.getMessage().startswith("loaded ")]


def test_create_session_refuses_garbage_before_onnxruntime_tries_to_parse_it(
    models_copy: Path, damaged: CatalogModel, x86_profile: DeviceProfile
) -> None:
    """Same-size garbage would make onnxruntime fail; the hash check refuses it first."""
    entry = damaged.file("model.onnx")
    path = models_copy / entry.path
    path.write_bytes(b"\xff" * entry.size)
    with pytest.raises(Exception, match=r"Protobuf parsing failed|INVALID_PROTOBUF"):
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with pytest.raises(ModelIntegrityError, match="sha256 mismatch"):
        create_session(damaged, x86_profile, directory=models_copy)


def test_create_session_refuses_a_truncated_file(
    models_copy: Path, damaged: CatalogModel, x86_profile: DeviceProfile
) -> None:
    entry = damaged.file("model.onnx")
    os.truncate(models_copy / entry.path, entry.size // 2)
    with pytest.raises(ModelIntegrityError, match=rf"truncated: {entry.size // 2} bytes"):
        create_session(damaged, x86_profile, directory=models_copy)


def test_create_session_opens_the_untouched_copy(
    models_copy: Path, damaged: CatalogModel, x86_profile: DeviceProfile
) -> None:
    loaded = create_session(damaged, x86_profile, directory=models_copy)
    assert loaded.path == models_copy / damaged.file("model.onnx").path
    assert loaded.providers[-1] == "CPUExecutionProvider"
    assert {i.name for i in loaded.session.get_inputs()} >= {"input_ids", "attention_mask"}


# The CLI, as a real process


def test_models_verify_prints_ok_for_every_model_of_an_untouched_copy(models_copy: Path) -> None:
    result = cli("models", "verify", models=models_copy)
    assert result.returncode == 0, result.stderr
    catalog = load_catalog(models_copy)
    assert result.stdout.splitlines() == [
        f"ok    {m.id} ({len(m.files)} files)" for m in catalog.models
    ]
    assert result.stderr == ""


def test_models_verify_exits_2_and_names_the_corrupted_file(
    models_copy: Path, damaged: CatalogModel
) -> None:
    entry = damaged.file("model.onnx")
    path = models_copy / entry.path
    flip_one_weight_byte(path)
    result = cli("models", "verify", models=models_copy)
    assert result.returncode == 2
    expected = (
        f"BAD   {damaged.id}: {path}: sha256 mismatch: expected {entry.sha256}, got {sha256(path)}"
    )
    assert expected in result.stdout.splitlines()
    assert result.stderr == "error: 1 model(s) failed verification; they will not be loaded\n"
    others = [m for m in load_catalog(models_copy).models if m.id != damaged.id]
    for model in others:
        assert f"ok    {model.id} ({len(model.files)} files)" in result.stdout.splitlines()


def test_models_verify_names_a_truncated_file_and_its_sizes(
    models_copy: Path, damaged: CatalogModel
) -> None:
    entry = damaged.file("model.onnx")
    path = models_copy / entry.path
    os.truncate(path, 1234)
    result = cli("models", "verify", models=models_copy)
    assert result.returncode == 2
    assert f"{path}: truncated: 1234 bytes, expected {entry.size}" in result.stdout


def test_models_verify_names_a_missing_file(models_copy: Path, damaged: CatalogModel) -> None:
    entry = damaged.file("tokenizer.json")
    path = models_copy / entry.path
    path.unlink()
    result = cli("models", "verify", models=models_copy)
    assert result.returncode == 2
    assert f"BAD   {damaged.id}: {path}: missing (expected sha256 {entry.sha256})" in (
        result.stdout.splitlines()
    )


def test_models_verify_checks_only_the_models_it_is_given(
    models_copy: Path, damaged: CatalogModel
) -> None:
    flip_one_weight_byte(models_copy / damaged.file("model.onnx").path)
    others = [m for m in load_catalog(models_copy).models if m.id != damaged.id]
    if not others:
        pytest.skip("the catalog ships a single model")
    result = cli("models", "verify", *(m.id for m in others), models=models_copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [f"ok    {m.id} ({len(m.files)} files)" for m in others]
    result = cli("models", "verify", damaged.id, models=models_copy)
    assert result.returncode == 2
    assert result.stdout.startswith(f"BAD   {damaged.id}: ")


def test_models_list_json_prints_every_model_with_its_files_hashes_and_size(
    models_copy: Path,
) -> None:
    result = cli("models", "list", "--json", models=models_copy)
    assert result.returncode == 0, result.stderr
    everything = json.loads(result.stdout)
    entries = [e for e in everything if e["task"] != "speech-to-text"]
    speech = [e for e in everything if e["task"] == "speech-to-text"]
    catalog = load_catalog(models_copy)
    assert [e["id"] for e in entries] == [m.id for m in catalog.models]
    assert "pocketsphinx-en-us" in [e["id"] for e in speech]
    assert all(e["size"] > 1_000_000 and e["engine"] and e["languages"] for e in speech)
    for entry, model in zip(entries, catalog.models, strict=True):
        assert entry["task"] == model.task
        assert entry["quantization"] == model.quantization
        assert entry["license"] == model.license
        assert entry["files"] == [
            {"path": f.path, "sha256": f.sha256, "size": f.size} for f in model.files
        ]
        assert entry["size"] == sum(f["size"] for f in entry["files"]) == model.size
        for file in entry["files"]:
            assert file["sha256"] == sha256(models_copy / file["path"])


def test_models_list_json_reads_the_catalog_of_edge_runtime_models(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    catalog = (SHIPPED / "catalog.yaml").read_text()
    (models / "catalog.yaml").write_text(catalog.replace(f"id: {DAMAGED_ID}\n", "id: renamed\n"))
    result = cli("models", "list", "--json", models=models)
    assert result.returncode == 0, result.stderr
    assert "renamed" in [e["id"] for e in json.loads(result.stdout)]


def test_models_list_prints_a_header_and_one_line_per_model(models_copy: Path) -> None:
    result = cli("models", "list", models=models_copy)
    assert result.returncode == 0, result.stderr
    language, speech = result.stdout.split("\n\n")
    header, *lines = language.splitlines()
    assert header.split()[:2] == ["id", "task"]
    assert [line.split()[0] for line in lines] == SHIPPED_IDS
    speech_header, *speech_lines = speech.splitlines()
    assert speech_header.split()[:2] == ["speech", "model"]
    assert "pocketsphinx-en-us" in [line.split()[0] for line in speech_lines]


def test_verifying_an_unknown_model_says_which_ones_exist(models_copy: Path) -> None:
    run = cli("models", "verify", "no-such-model", models=models_copy)

    assert run.returncode == 2
    assert "no model 'no-such-model' in the catalog (known: " in run.stderr
    assert "Traceback" not in run.stderr
