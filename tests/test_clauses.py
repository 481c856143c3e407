"""Several commands in one sentence: where it is cut, and what the cascade makes of the cuts.

Real hassil templates and the rules tier on the demo home; the cuts are only proposals, so
the tests hold both halves: a real two- or three-command sentence gives one intent per
command in the order said, and a sentence of one command with "and" in it stays one.
"""

from __future__ import annotations

import pytest

from edge_runtime.home import demo_home
from edge_runtime.messages import TextRequest
from edge_runtime.nlu.base import NluContext
from edge_runtime.nlu.cascade import Cascade, build_cascade
from edge_runtime.nlu.clauses import groupings, may_hold_several
from edge_runtime.profiles import load_profiles


@pytest.fixture(scope="module")
def rules() -> Cascade:
    context = NluContext(demo_home(), "en", "n1", load_profiles()["x86-64"])
    return build_cascade(context, ["rules"], 0.9)


def test_cuts_come_most_clauses_first_and_keep_uncut_joiners() -> None:
    cuts = list(groupings("turn off the lamp and lock the door, then start the vacuum", "en"))
    assert cuts[0] == ["turn off the lamp", "lock the door", "start the vacuum"]
    assert ["turn off the lamp and lock the door", "start the vacuum"] in cuts
    assert len(cuts) == 3


def test_a_clause_that_starts_with_its_object_borrows_the_verb_before_it() -> None:
    first = next(groupings("lock the back door and the side door", "en"))
    assert first == ["lock the back door", "lock the side door"]


def test_nothing_to_cut_without_a_joiner_or_in_a_language_without_joiners() -> None:
    assert not may_hold_several("turn on the kitchen lights", "en")
    assert list(groupings("turn on the kitchen lights", "en")) == []
    assert list(groupings("schalte das licht an und sperre die tür", "de")) == []


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        (
            "turn off the kitchen ceiling light and lock the front door",
            [
                ("HassTurnOff", {"name": "Kitchen Ceiling Light"}),
                ("HassTurnOn", {"name": "Front Door"}),
            ],
        ),
        (
            "switch off the desk lamp, close the garage door and then start the robot vacuum",
            [
                ("HassTurnOff", {"name": "Desk Lamp"}),
                ("HassTurnOff", {"name": "Garage Door"}),
                ("HassVacuumStart", {"name": "Robot Vacuum"}),
            ],
        ),
        (
            "turn off the desk lamp and the hallway light",
            [("HassTurnOff", {"name": "Desk Lamp"}), ("HassTurnOff", {"name": "Hallway Light"})],
        ),
    ],
)
def test_each_command_of_a_sentence_is_one_intent_in_the_order_said(
    rules: Cascade, sentence: str, expected: list[tuple[str, dict[str, str]]]
) -> None:
    recognition = rules.recognize(TextRequest(sentence, "m-1"))
    assert [(i.name, i.slot_values()) for i in recognition.intents] == expected
    events = recognition.to_events()
    assert [(e["id"], e["index"], e["count"]) for e in events] == [
        ("m-1", index, len(expected)) for index in range(len(expected))
    ]


def test_one_command_with_and_in_it_stays_one(rules: Cascade) -> None:
    recognition = rules.recognize(TextRequest("turn on the kitchen and living room lights"))
    assert len(recognition.intents) <= 1


@pytest.mark.parametrize(
    "sentence",
    ["don't unlock the front door and the back door", "the garage light is broken and sad"],
)
def test_a_negation_or_a_statement_with_a_joiner_does_nothing(
    rules: Cascade, sentence: str
) -> None:
    assert rules.recognize(TextRequest(sentence)).intents == ()
