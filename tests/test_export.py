"""`edge-runtime models export` end to end, offline, on tiny randomly initialised BERTs.

The test builds its own WordPiece tokenizer and two 2-layer BERTs (an encoder
and a token classifier), saves them as Hugging Face directories and runs the
real CLI in subprocesses with HF_HUB_OFFLINE=1: optimum exports, onnxruntime
quantizes, and the results are opened again through the runtime's own
`create_session`, `SentenceEncoder` and `IntentTagger`. Four exports of about
four seconds each run once per module.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

from edge_runtime.inference.catalog import CatalogModel, load_catalog, sha256_of, verify_model
from edge_runtime.inference.classifier import IntentTagger, labels_of
from edge_runtime.inference.encoder import SentenceEncoder, load_tokenizer
from edge_runtime.inference.export import CHECK_SENTENCES, OPSET
from edge_runtime.inference.session import create_session
from edge_runtime.profiles import DeviceProfile, load_profiles

pytestmark = pytest.mark.slow

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORD_LIST = (
    "turn on off the kitchen light lights lamp bedroom garage front door is locked set a timer "
    "for ten minutes could you please dim to thirty percent kill open close living room what "
    "time it how play music stop lock unlock fan heater up down switch all"
)
WORDS = WORD_LIST.split()
VOCAB = SPECIAL_TOKENS + WORDS + ["##s", "##ing", "##ed"]
LABELS = {0: "HassTurnOn", 1: "HassTurnOff", 2: "O", 3: "B-W"}
TAG_LABELS = {"O", "B-W"}
INTENT_LABELS = {"HassTurnOn", "HassTurnOff"}
README = "---\nlicense: apache-2.0\nlanguage: en\n---\n\n# A tiny random BERT for tests\n"
DEVIATION_LINE = re.compile(r"^max deviation from fp32: (\d+\.\d{4}) \((.+) (\d+\.\d{4})\)$", re.M)

ENCODER_ID = "tiny-encoder"
TAGGER_ID = "tiny-tagger"
TAGGER_FP32_ID = "tiny-tagger-fp32"


def wordpiece_tokenizer() -> Tokenizer:
    """A BERT-style uncased WordPiece tokenizer over VOCAB, built with `tokenizers` only."""
    vocab = {token: index for index, token in enumerate(VOCAB)}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tokenizer.decoder = decoders.WordPiece()
    return tokenizer


def write_sources(root: Path) -> tuple[Path, Path, int]:
    """Hugging Face directories (encoder, tagger) and the encoder's torch parameter count."""
    import torch
    from transformers import (
        BertConfig,
        BertForTokenClassification,
        BertModel,
        PreTrainedTokenizerFast,
    )

    torch.manual_seed(0)
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=wordpiece_tokenizer(),
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    shape = {
        "vocab_size": len(VOCAB),
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": 64,
    }
    encoder_dir, tagger_dir = root / "tiny-encoder-src", root / "tiny-tagger-src"
    encoder = BertModel(BertConfig(**shape))  # type: ignore[no-untyped-call]
    tagger_config = BertConfig(  # type: ignore[no-untyped-call]
        **shape,
        num_labels=len(LABELS),
        id2label=LABELS,
        label2id={label: index for index, label in LABELS.items()},
    )
    tagger = BertForTokenClassification(tagger_config)  # type: ignore[no-untyped-call]
    for directory, model in ((encoder_dir, encoder), (tagger_dir, tagger)):
        model.eval()  # type: ignore[no-untyped-call]
        model.save_pretrained(directory)
        tokenizer.save_pretrained(directory)
        (directory / "README.md").write_text(README)
    return encoder_dir, tagger_dir, int(sum(p.numel() for p in encoder.parameters()))


def offline_env(root: Path, models_dir: Path | None = None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "EDGE_RUNTIME_MODELS"}
    env |= {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HOME": str(root / "hf-home"),
        "PYTHONWARNINGS": "ignore",
    }
    if models_dir is not None:
        env["EDGE_RUNTIME_MODELS"] = str(models_dir)
    return env


def cli(root: Path, *args: str, models_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge_runtime", *args],
        capture_output=True,
        text=True,
        env=offline_env(root, models_dir),
        cwd=root,
        timeout=180,
        check=False,
    )


def export(
    root: Path, source: Path, task: str, quantize: str, model_id: str, models_dir: Path
) -> subprocess.CompletedProcess[str]:
    return cli(
        root,
        *("models", "export", str(source), "--task", task, "--quantize", quantize),
        *("--id", model_id, "--models-dir", str(models_dir)),
    )


@dataclass(frozen=True)
class Exports:
    root: Path
    models: Path
    encoder_source: Path
    tagger_source: Path
    encoder_torch_parameters: int
    runs: dict[str, subprocess.CompletedProcess[str]]
    """Keyed "<id>" for the final export of each id, "<id>@first" for an earlier one."""
    first_encoder_entry: CatalogModel
    """The encoder's catalog entry after its first (fp32) export, before it was replaced."""

    def entry(self, model_id: str) -> CatalogModel:
        return load_catalog(self.models).get(model_id)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exports:
    """Four real exports into one models directory.

    The encoder is exported twice under one id (fp32, then int8) so that the
    second replaces the first; the tagger once as int8 and once as fp32.
    """
    root = tmp_path_factory.mktemp("export")
    models_dir = root / "models"
    encoder_src, tagger_src, encoder_parameters = write_sources(root)
    runs = {
        f"{ENCODER_ID}@first": export(
            root, encoder_src, "sentence-embedding", "none", ENCODER_ID, models_dir
        )
    }
    first = runs[f"{ENCODER_ID}@first"]
    assert first.returncode == 0, first.stderr
    first_entry = load_catalog(models_dir).get(ENCODER_ID)
    runs[TAGGER_ID] = export(
        root, tagger_src, "token-classification", "arm64", TAGGER_ID, models_dir
    )
    runs[TAGGER_FP32_ID] = export(
        root, tagger_src, "token-classification", "none", TAGGER_FP32_ID, models_dir
    )
    runs[ENCODER_ID] = export(
        root, encoder_src, "sentence-embedding", "arm64", ENCODER_ID, models_dir
    )
    return Exports(root, models_dir, encoder_src, tagger_src, encoder_parameters, runs, first_entry)


@pytest.fixture
def x86_profile() -> DeviceProfile:
    return load_profiles()["x86-64"]


def deviation_of(run: subprocess.CompletedProcess[str]) -> tuple[float, str, float]:
    found = DEVIATION_LINE.search(run.stdout)
    assert found, run.stdout
    return float(found.group(1)), found.group(2), float(found.group(3))


def op_types(path: Path) -> set[str]:
    return {node.op_type for node in onnx.load(str(path)).graph.node}


def default_opset(path: Path) -> int:
    imports = onnx.load(str(path), load_external_data=False).opset_import
    return next(int(o.version) for o in imports if o.domain in ("", "ai.onnx"))


# The command itself


@pytest.mark.parametrize("key", [f"{ENCODER_ID}@first", ENCODER_ID, TAGGER_ID, TAGGER_FP32_ID])
def test_every_export_exits_0_and_says_where_it_wrote(exported: Exports, key: str) -> None:
    run = exported.runs[key]
    assert run.returncode == 0, run.stderr
    model_id = key.split("@", maxsplit=1)[0]
    assert f"wrote {exported.models / model_id} and its catalog entry (" in run.stdout
    assert "exporting " in run.stderr
    assert re.search(r"comparing (int8|int4|fp32) with fp32 outputs: done in ", run.stderr)


def test_an_int8_encoder_export_prints_its_deviation_and_embedding_agreement(
    exported: Exports,
) -> None:
    deviation, agreement_kind, agreement = deviation_of(exported.runs[ENCODER_ID])
    assert agreement_kind == "min cosine of sentence embeddings"
    assert 0.0 < deviation < 0.5
    assert 0.9 < agreement <= 1.0
    assert "quantizing to int8 for arm64 (dynamic, per channel): done in " in (
        exported.runs[ENCODER_ID].stderr
    )


def test_an_int8_tagger_export_prints_its_deviation_and_label_agreement(
    exported: Exports,
) -> None:
    deviation, agreement_kind, agreement = deviation_of(exported.runs[TAGGER_ID])
    assert agreement_kind == "same label as fp32 on check sentences"
    assert 0.0 < deviation < 0.5
    assert 0.0 <= agreement <= 1.0


def test_an_fp32_export_deviates_from_itself_by_nothing(exported: Exports) -> None:
    for key in (TAGGER_FP32_ID, f"{ENCODER_ID}@first"):
        deviation, _kind, agreement = deviation_of(exported.runs[key])
        assert deviation == 0.0
        assert agreement == 1.0
        assert "quantizing" not in exported.runs[key].stderr


# Files and catalog


@pytest.mark.parametrize("model_id", [ENCODER_ID, TAGGER_ID, TAGGER_FP32_ID])
def test_the_model_folder_holds_the_graph_the_tokenizer_and_the_config(
    exported: Exports, model_id: str
) -> None:
    folder = exported.models / model_id
    names = {p.name for p in folder.iterdir()}
    assert {"model.onnx", "tokenizer.json", "config.json"} <= names
    assert names <= {
        "model.onnx",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "config.json",
    }


@pytest.mark.parametrize("model_id", [ENCODER_ID, TAGGER_ID, TAGGER_FP32_ID])
def test_the_catalog_entry_lists_every_written_file_with_its_sha256_and_size(
    exported: Exports, model_id: str
) -> None:
    entry = exported.entry(model_id)
    folder = exported.models / model_id
    assert sorted(f.path for f in entry.files) == sorted(
        f"{model_id}/{p.name}" for p in folder.iterdir()
    )
    for file in entry.files:
        path = exported.models / file.path
        assert file.sha256 == sha256_of(path)
        assert file.size == path.stat().st_size
    assert verify_model(entry, exported.models)


def test_the_catalog_entry_of_an_int8_export_carries_its_provenance(exported: Exports) -> None:
    entry = exported.entry(TAGGER_ID)
    assert entry.task == "token-classification"
    assert entry.quantization == "int8-dynamic"
    assert entry.opset == OPSET
    assert entry.license == "apache-2.0"
    assert entry.source == str(exported.tagger_source)
    assert entry.parameters > 0
    assert entry.min_ram_mb >= 64
    assert entry.languages == ("en",)
    assert "--task token-classification --quantize arm64 --id tiny-tagger" in entry.recipe


def test_the_catalog_on_disk_is_plain_yaml_with_the_entry_and_its_hashes(
    exported: Exports,
) -> None:
    data = yaml.safe_load((exported.models / "catalog.yaml").read_text())
    entries = {m["id"]: m for m in data["models"]}
    tagger = entries[TAGGER_ID]
    onnx_file = next(f for f in tagger["files"] if f["path"] == f"{TAGGER_ID}/model.onnx")
    path = exported.models / onnx_file["path"]
    assert onnx_file["sha256"] == sha256_of(path)
    assert onnx_file["size"] == path.stat().st_size
    assert tagger["quantization"] == "int8-dynamic"
    assert tagger["opset"] == OPSET
    assert tagger["license"] == "apache-2.0"


def test_the_parameter_count_is_positive_and_never_more_than_torchs(exported: Exports) -> None:
    encoder = exported.entry(ENCODER_ID)
    assert 0 < encoder.parameters <= exported.encoder_torch_parameters
    # The token head adds hidden_size * labels weights and one bias per label.
    tagger = exported.entry(TAGGER_ID)
    assert tagger.parameters - encoder.parameters == 32 * len(LABELS) + len(LABELS)


def test_an_fp32_export_is_cataloged_as_fp32_and_is_larger_than_int8(exported: Exports) -> None:
    fp32 = exported.entry(TAGGER_FP32_ID)
    int8 = exported.entry(TAGGER_ID)
    assert fp32.quantization == "fp32"
    assert fp32.parameters == int8.parameters
    assert fp32.file("model.onnx").size > int8.file("model.onnx").size
    # the tokenizer and config are the same bytes whatever the quantization
    assert fp32.file("tokenizer.json").sha256 == int8.file("tokenizer.json").sha256
    assert fp32.file("config.json").sha256 == int8.file("config.json").sha256


def test_the_int8_graph_uses_integer_kernels_and_the_fp32_graph_does_not(
    exported: Exports,
) -> None:
    int8_ops = op_types(exported.models / TAGGER_ID / "model.onnx")
    fp32_ops = op_types(exported.models / TAGGER_FP32_ID / "model.onnx")
    assert "DynamicQuantizeLinear" in int8_ops
    assert int8_ops & {"MatMulInteger", "DynamicQuantizeMatMul", "MatMulIntegerToFloat"}
    assert not fp32_ops & {"DynamicQuantizeLinear", "MatMulInteger", "QuantizeLinear"}


@pytest.mark.parametrize("model_id", [ENCODER_ID, TAGGER_ID, TAGGER_FP32_ID])
def test_the_cataloged_opset_is_the_graphs_own(exported: Exports, model_id: str) -> None:
    entry = exported.entry(model_id)
    assert default_opset(exported.models / model_id / "model.onnx") == entry.opset == OPSET


def test_re_exporting_an_id_replaces_its_entry_in_place_and_keeps_the_others(
    exported: Exports,
) -> None:
    catalog = load_catalog(exported.models)
    assert [m.id for m in catalog.models] == [ENCODER_ID, TAGGER_ID, TAGGER_FP32_ID]
    first, final = exported.first_encoder_entry, catalog.get(ENCODER_ID)
    assert first.quantization == "fp32"
    assert final.quantization == "int8-dynamic"
    assert final.file("model.onnx").sha256 != first.file("model.onnx").sha256


def test_the_exported_tokenizer_is_the_sources(exported: Exports) -> None:
    tokenizer = load_tokenizer(exported.models / TAGGER_ID / "tokenizer.json")
    assert tokenizer.encode("Turn on the kitchen lights").tokens == [
        "[CLS]",
        "turn",
        "on",
        "the",
        "kitchen",
        "lights",
        "[SEP]",
    ]
    for sentence in CHECK_SENTENCES:
        assert tokenizer.token_to_id("[UNK]") not in tokenizer.encode(sentence).ids


def test_the_exported_config_keeps_the_taggers_labels(exported: Exports) -> None:
    config = json.loads((exported.models / TAGGER_ID / "config.json").read_text())
    assert config["id2label"] == {str(k): v for k, v in LABELS.items()}
    assert labels_of(exported.models / TAGGER_ID / "config.json") == list(LABELS.values())


# The CLI reads what it wrote


def test_models_verify_passes_on_the_exported_directory(exported: Exports) -> None:
    run = cli(exported.root, "models", "verify", models_dir=exported.models)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.splitlines() == [
        f"ok    {m.id} ({len(m.files)} files)" for m in load_catalog(exported.models).models
    ]


def test_models_list_json_shows_the_exported_models(exported: Exports) -> None:
    run = cli(exported.root, "models", "list", "--json", models_dir=exported.models)
    assert run.returncode == 0, run.stderr
    entries = {e["id"]: e for e in json.loads(run.stdout) if e["task"] != "speech-to-text"}
    assert set(entries) == {ENCODER_ID, TAGGER_ID, TAGGER_FP32_ID}
    assert entries[TAGGER_ID]["quantization"] == "int8-dynamic"
    assert entries[TAGGER_FP32_ID]["quantization"] == "fp32"
    assert entries[TAGGER_ID]["size"] == sum(f["size"] for f in entries[TAGGER_ID]["files"])


# The runtime runs what was exported


def test_the_exported_encoder_gives_unit_norm_embeddings_through_create_session(
    exported: Exports, x86_profile: DeviceProfile
) -> None:
    model = exported.entry(ENCODER_ID)
    loaded = create_session(model, x86_profile, directory=exported.models)
    assert loaded.providers[-1] == "CPUExecutionProvider"
    tokenizer = load_tokenizer(exported.models / ENCODER_ID / "tokenizer.json")
    encoder = SentenceEncoder(loaded.session, tokenizer)
    assert encoder.dimension == 32
    sentences = ["turn on the kitchen light", *CHECK_SENTENCES]
    embeddings = encoder.embed(sentences)
    assert embeddings.shape == (len(sentences), 32)
    assert embeddings.dtype == np.float32
    assert np.all(np.isfinite(embeddings))
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    # Padding is masked out of the mean; what is left is int8 noise, because dynamic
    # quantization picks one activation scale per batch, so batch-mates shift it slightly.
    alone = encoder.embed(["turn on the kitchen light"])
    assert float(alone[0] @ embeddings[0]) > 0.9999
    np.testing.assert_allclose(alone[0], embeddings[0], atol=1e-3)


def test_the_exported_tagger_gives_intents_and_a_tag_per_word_through_create_session(
    exported: Exports, x86_profile: DeviceProfile
) -> None:
    model = exported.entry(TAGGER_ID)
    loaded = create_session(model, x86_profile, directory=exported.models)
    folder = exported.models / TAGGER_ID
    tagger = IntentTagger(
        loaded.session, load_tokenizer(folder / "tokenizer.json"), labels_of(folder / "config.json")
    )
    words = ["turn", "on", "the", "kitchen", "lights"]
    analysis = tagger.analyze(words)
    assert {name for name, _ in analysis.intents} == INTENT_LABELS
    probabilities = [p for _, p in analysis.intents]
    assert probabilities == sorted(probabilities, reverse=True)
    assert sum(probabilities) == pytest.approx(1.0)
    assert len(analysis.tags) == len(words)
    assert set(analysis.tags) <= TAG_LABELS


def test_the_int8_and_fp32_taggers_give_close_intent_probabilities(
    exported: Exports, x86_profile: DeviceProfile
) -> None:
    sentence = "could you please dim the bedroom lamp to thirty percent"
    words = sentence.split()
    results = {}
    for model_id in (TAGGER_ID, TAGGER_FP32_ID):
        folder = exported.models / model_id
        loaded = create_session(exported.entry(model_id), x86_profile, directory=exported.models)
        tagger = IntentTagger(
            loaded.session,
            load_tokenizer(folder / "tokenizer.json"),
            labels_of(folder / "config.json"),
        )
        results[model_id] = dict(tagger.analyze(words).intents)
    for label in INTENT_LABELS:
        assert results[TAGGER_ID][label] == pytest.approx(results[TAGGER_FP32_ID][label], abs=0.05)


# Refusals


def test_exporting_a_directory_without_config_json_fails_with_a_clear_error(
    exported: Exports, tmp_path: Path
) -> None:
    source = tmp_path / "not-a-model"
    source.mkdir()
    (source / "README.md").write_text(README)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (source / name).write_bytes((exported.tagger_source / name).read_bytes())
    models_dir = tmp_path / "models"
    run = export(tmp_path, source, "token-classification", "arm64", "broken", models_dir)
    assert run.returncode == 2
    assert run.stderr == f"error: {source}: not a Hugging Face model directory (no config.json)\n"
    assert "Traceback" not in run.stderr
    assert run.stdout == ""
    assert not models_dir.exists()


def test_exporting_a_source_that_does_not_exist_fails_before_anything_is_written(
    tmp_path: Path,
) -> None:
    models_dir = tmp_path / "models"
    run = export(tmp_path, tmp_path / "nowhere", "sentence-embedding", "arm64", "x", models_dir)
    assert run.returncode == 2
    assert "does not exist" in run.stderr
    assert not models_dir.exists()


def test_an_unknown_quantize_target_is_refused_by_the_command_line(tmp_path: Path) -> None:
    run = export(tmp_path, tmp_path, "sentence-embedding", "int3", "x", tmp_path / "models")
    assert run.returncode == 2
    assert "'int3' is not one of" in run.stderr


@pytest.mark.parametrize("bad_id", [".", "..", "../outside", "Upper"])
def test_an_id_that_is_not_a_plain_folder_name_is_refused_before_anything_is_written(
    exported: Exports, bad_id: str
) -> None:
    """An id like "." once made the export replace the whole models directory."""
    before = sorted(p.name for p in exported.models.iterdir())

    run = export(
        exported.root,
        exported.tagger_source,
        "token-classification",
        "arm64",
        bad_id,
        exported.models,
    )

    assert run.returncode == 2
    assert f"model id {bad_id!r} must be lower-case letters" in run.stderr
    assert sorted(p.name for p in exported.models.iterdir()) == before


def test_a_source_without_a_tokenizer_is_refused_with_a_message_naming_it(
    exported: Exports, tmp_path: Path
) -> None:
    source = tmp_path / "no-tokenizer"
    source.mkdir()
    (source / "config.json").write_text((exported.tagger_source / "config.json").read_text())

    run = export(exported.root, source, "token-classification", "arm64", "x", tmp_path / "m")

    assert run.returncode == 2
    assert f"error: {source}: no tokenizer.json" in run.stderr
