"""The generator tier's training data: reproducible, labelled exactly as the rules tier
answers, and about many different homes (real hassil and home-assistant-intents)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from edge_runtime.home import Home, demo_home
from edge_runtime.nlu.cascade import Cascade
from edge_runtime.nlu.generator_format import HERE, PLACE_SLOTS, prompt_text
from edge_runtime.nlu.words import language_resources, normalize
from training.generator_data import (
    NO_ACTION,
    Example,
    generate,
    load_phrases,
    number_words,
    rules_cascade,
    rules_label,
)
from training.synthetic_homes import synthetic_home, synthetic_homes

SEED, HOMES, PER_HOME = 1, 4, 60
FREE_NAMES = ("Timer",)
"""Intents whose `name` slot is free text (a timer's name), not a thing of the home."""


@pytest.fixture(scope="module")
def examples() -> list[Example]:
    return list(generate(SEED, HOMES, PER_HOME))


@pytest.fixture(scope="module")
def homes() -> list[Home]:
    return synthetic_homes(SEED, HOMES)


@pytest.fixture(scope="module")
def cascades(homes: list[Home]) -> list[Cascade]:
    return [rules_cascade(home) for home in homes]


def test_the_same_seed_gives_the_same_rows_and_another_seed_others() -> None:
    first = [e.to_json() for e in generate(seed=1, homes=3, per_home=20)]
    again = [e.to_json() for e in generate(seed=1, homes=3, per_home=20)]
    other = [e.to_json() for e in generate(seed=2, homes=3, per_home=20)]
    assert first == again
    assert len(first) == 3 * 20
    assert first != other


def test_workers_do_not_change_the_rows() -> None:
    alone = [e.to_json() for e in generate(seed=3, homes=3, per_home=10)]
    shared = [e.to_json() for e in generate(seed=3, homes=3, per_home=10, workers=2)]
    assert alone == shared


def test_a_row_is_one_json_line_with_text_intents_target_kind_and_home(
    examples: list[Example],
) -> None:
    for example in examples:
        line = example.to_json()
        assert "\n" not in line
        row = json.loads(line)
        assert set(row) == {"text", "intents", "target", "kind", "home"}
        assert row["text"].strip() == row["text"] and row["text"]
        assert "\x01" not in row["text"] and "\x02" not in row["text"]
        assert all(set(i) == {"intent", "slots"} for i in row["intents"])
        target = json.loads(row["target"])
        assert [t["intent"] for t in target] == [i["intent"] for i in row["intents"]]


def test_the_target_copies_places_as_said_and_marks_the_context_area(
    examples: list[Example],
) -> None:
    """The model copies words: a place in the target is words of the sentence, the node's own
    area (@here), or, where a rewrite lost the words, the canonical name."""
    seen_here = seen_said = 0
    for example in examples:
        said = f" {prompt_text(example.text)} "
        target = json.loads(example.to_json())["target"]
        for written, label in zip(json.loads(target), example.intents, strict=True):
            assert set(written["slots"]) == set(label.slots), example
            for slot in PLACE_SLOTS:
                value = written["slots"].get(slot)
                if not isinstance(value, str):
                    continue
                canonical = prompt_text(str(label.slots[slot]))
                assert value in (HERE, canonical) or f" {value} " in said, (example, slot)
                seen_here += value == HERE
                seen_said += f" {value} " in said
    assert seen_here > 0 and seen_said > 0


def test_a_single_command_carries_the_rules_tiers_answer_in_its_home(
    examples: list[Example], cascades: list[Cascade]
) -> None:
    singles = [e for e in examples if len(e.intents) == 1]
    assert {e.kind for e in singles} == {"template", "augmented"}
    for example in singles:
        (source,) = example.sources
        assert rules_label(cascades[example.home], source) == example.intents[0], example
        if example.kind == "template":
            assert example.text == source


def test_each_part_of_a_multi_command_row_is_the_rules_tiers_answer_to_that_part(
    examples: list[Example], cascades: list[Cascade]
) -> None:
    multi = [e for e in examples if e.kind == "multi"]
    assert multi
    for example in multi:
        assert 2 <= len(example.intents) <= 3
        assert len(example.sources) == len(example.intents)
        for source, label in zip(example.sources, example.intents, strict=True):
            assert rules_label(cascades[example.home], source) == label, example


def test_every_named_thing_exists_in_the_rows_home(
    examples: list[Example], homes: list[Home]
) -> None:
    for example in examples:
        home = homes[example.home]
        entities = {e.name for e in home.entities}
        areas = {a.name for a in home.areas}
        floors = {f.name for f in home.floors}
        for label in example.intents:
            slots = label.slots
            if "name" in slots and not any(word in label.intent for word in FREE_NAMES):
                assert slots["name"] in entities, example
            assert slots.get("area", next(iter(areas))) in areas, example
            assert slots.get("floor", next(iter(floors))) in floors, example


def test_negations_statements_and_chatter_do_nothing_for_any_tier(
    examples: list[Example], cascades: list[Cascade]
) -> None:
    kinds = Counter(e.kind for e in examples)
    assert kinds["negation"] and kinds["statement"] and kinds["unknown"]
    for example in examples:
        assert (example.kind in NO_ACTION) == (example.intents == ()), example
        if example.kind in NO_ACTION:
            assert rules_label(cascades[example.home], example.text) is None, example


def test_the_mix_has_enough_multi_command_and_no_action_rows(examples: list[Example]) -> None:
    kinds = Counter(e.kind for e in examples)
    total = sum(kinds.values())
    assert total == HOMES * PER_HOME
    assert kinds["multi"] / total >= 0.15
    assert 0.12 <= sum(kinds[k] for k in NO_ACTION) / total <= 0.25


def test_homes_have_their_own_names_so_none_can_be_learnt_by_heart() -> None:
    homes = synthetic_homes(SEED, 12)
    assert homes[0] == demo_home()
    name_sets = [frozenset(e.name for e in home.entities) for home in homes]
    assert len(set(name_sets)) == len(homes)
    everything = set().union(*name_sets)
    assert len(everything) > 0.8 * sum(map(len, name_sets))
    area_sets = {frozenset(a.name for a in home.areas) for home in homes}
    assert len(area_sets) == len(homes)
    assert synthetic_home(SEED, 5) == homes[5]
    assert synthetic_home(SEED + 1, 5) != homes[5]


def test_synthetic_homes_are_well_formed_and_varied() -> None:
    homes = synthetic_homes(SEED, 30)[1:]
    for home in homes:
        assert 2 <= len(home.floors) <= 4
        assert 4 <= len(home.areas) <= 10
        assert 10 <= len(home.entities) <= 40
        area_ids = {a.id for a in home.areas}
        assert {a.floor for a in home.areas} == {f.id for f in home.floors}
        assert all(e.area is None or e.area in area_ids for e in home.entities)
        assert len({e.id for e in home.entities}) == len(home.entities)
        assert home.context_area is None or home.context_area in area_ids
        assert {"light", "todo"} <= home.domains
    assert any(home.context_area for home in homes)
    assert any(home.context_area is None for home in homes)
    assert any(e.aliases for home in homes for e in home.entities)
    assert len(set().union(*(home.domains for home in homes))) >= 12


def test_numbers_said_as_words_read_back_as_the_same_digits() -> None:
    words = number_words("en")
    res = language_resources("en")
    assert words[42] == "forty two"
    assert words[305] == "three hundred five"
    for number, spoken in words.items():
        assert normalize(spoken, res) == [str(number)], spoken


def test_the_state_wanted_and_a_reason_before_a_command_keep_the_commands_label() -> None:
    """Generator-only variants: "i want the den blinds closed" and "it's dark in here, turn
    on the lamp" are labelled with the command's intent; a reason said alone is no action."""
    phrases = load_phrases("en")
    close = [p for p, _ in phrases.rewrites["HassTurnOff"] if p.search("close \x010\x02")]
    assert close, "the generator's own rewrites are merged with the encoder's"
    assert set(phrases.data["reasons"]) <= set(phrases.chatter)
    rows = list(generate(seed=5, homes=6, per_home=120))
    reasoned = [e for e in rows if e.intents and any(e.text.lower().startswith(r) for r in REASONS)]
    assert reasoned, "some commands come after a reason"
    for example in reasoned:
        assert example.kind in ("augmented", "multi"), example
    alone = [e for e in rows if e.text.lower().rstrip(".!") in REASONS]
    assert all(e.intents == () for e in alone)


REASONS = tuple(load_phrases("en").data["reasons"])
