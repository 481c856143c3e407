"""The lexicon: which words of a sentence name a thing of the home, with slips tolerated."""

from __future__ import annotations

import pytest

from edge_runtime.home import Home
from edge_runtime.nlu.lexicon import Lexicon

HOME = Home.model_validate(
    {
        "language": "en",
        "areas": [
            {"id": "living_room", "name": "Living Room"},
            {"id": "bedroom", "name": "Bedroom"},
        ],
        "entities": [
            {"id": "vacuum.rover", "name": "Rover", "area": "living_room"},
            {"id": "fan.ceiling", "name": "Ceiling Fan", "area": "bedroom"},
            {"id": "cover.curtain", "name": "Bedroom Curtain", "area": "bedroom"},
            {"id": "light.lamp", "name": "Living Room Lamp", "area": "living_room"},
        ],
    }
)


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    return Lexicon(HOME, "en")


def names(lexicon: Lexicon, text: str) -> list[str]:
    return [span.phrase.value for span in lexicon.read(text).of_kind("name")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("start rover", ["Rover"]),
        ("turn on the ceiling van", ["Ceiling Fan"]),  # a slip inside a name of two words
        ("close the bed room curtin", ["Bedroom Curtain"]),  # a word split, a letter lost
        ("switch the lights over to blue", []),  # "over" is a word, not a slip of "Rover"
    ],
)
def test_names_are_found_through_slips_but_a_common_word_is_not_a_name(
    lexicon: Lexicon, text: str, expected: list[str]
) -> None:
    assert names(lexicon, text) == expected
