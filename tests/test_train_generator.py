"""The generator's training script in its tiny CPU configuration: it learns, saves, reloads.

Real torch, transformers and tokenizers; the data are a few rows written here (the data
generator has its own tests), so this stays fast and independent of the templates.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer, LlamaForCausalLM

from edge_runtime.nlu.generator_format import target_json
from training import train_generator as tg

ROWS = [
    ("turn on the den lamp", [{"intent": "HassTurnOn", "slots": {"name": "Den Lamp"}}]),
    ("turn off the den lamp", [{"intent": "HassTurnOff", "slots": {"name": "Den Lamp"}}]),
    ("lock the back door", [{"intent": "HassTurnOn", "slots": {"name": "Back Door"}}]),
    (
        "turn off the attic light and lock the back door",
        [
            {"intent": "HassTurnOff", "slots": {"name": "Attic Light"}},
            {"intent": "HassTurnOn", "slots": {"name": "Back Door"}},
        ],
    ),
    ("don't unlock the back door", []),
    ("the attic light is broken", []),
]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "rows.jsonl"
    lines = [json.dumps({"text": t, "intents": i}) for t, i in ROWS * 10]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def train(data: Path, out: Path, seed: int = 1, steps: int = 40) -> dict[str, object]:
    options = {"--data": data, "--out": out, "--size": "tiny", "--seed": seed, "--steps": steps}
    args = tg.parse_args(
        ["--cpu", "--eval-examples", "3", *(f"{k}={v}" for k, v in options.items())]
    )
    return tg.run(args)


def test_the_tiny_model_learns_and_its_folder_loads_with_transformers(
    data: Path, tmp_path: Path
) -> None:
    report = train(data, tmp_path / "model")
    assert isinstance(report["last_loss"], float) and isinstance(report["first_loss"], float)
    assert report["last_loss"] < report["first_loss"] / 3
    model = LlamaForCausalLM.from_pretrained(tmp_path / "model")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "model")  # type: ignore[no-untyped-call]
    assert tokenizer.sep_token == tg.SEP and tokenizer.eos_token == tg.EOS
    assert model.config.vocab_size == len(tokenizer)
    tokenizer_config = json.loads((tmp_path / "model" / "tokenizer_config.json").read_text())
    assert tokenizer_config["tokenizer_class"] == "PreTrainedTokenizerFast"
    saved = json.loads((tmp_path / "model" / "training.json").read_text())
    assert saved["data_sha256"] == tg.file_digest(data) and saved["steps"] == 40


def test_the_same_seed_trains_the_same_model(data: Path, tmp_path: Path) -> None:
    first = train(data, tmp_path / "a", steps=5)
    again = train(data, tmp_path / "b", steps=5)
    other = train(data, tmp_path / "c", seed=2, steps=5)
    assert first["last_loss"] == again["last_loss"]
    assert first["last_loss"] != other["last_loss"]


def test_targets_are_one_compact_json_with_intent_before_slots() -> None:
    intents = [{"slots": {"name": "Den Lamp"}, "intent": "HassTurnOn"}]
    assert target_json(intents) == '[{"intent":"HassTurnOn","slots":{"name":"Den Lamp"}}]'
    assert target_json([]) == "[]"


def test_a_row_without_intents_is_refused_with_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "hello"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.jsonl:1: a row needs 'text' and 'intents'"):
        tg.load_examples(bad)


def test_the_learning_rate_decays_with_the_clock_as_with_the_steps() -> None:
    """A run the clock stops ends at a low rate, not cut off at its peak."""
    assert tg.warmup_cosine(0, 0.0, 100) == pytest.approx(0.01)
    assert tg.warmup_cosine(500, 0.5, 100) == pytest.approx(0.5)
    assert tg.warmup_cosine(500, 1.0, 100) == pytest.approx(0.0)
    assert tg.warmup_cosine(500, 1.7, 100) == pytest.approx(0.0)
