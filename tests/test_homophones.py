"""Names heard as words that sound alike, with the CMU dictionary the pocketsphinx wheel ships."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import EVAL_FIXTURES

from edge_runtime.home import load_home
from edge_runtime.messages import TextRequest
from edge_runtime.nlu.base import NluContext
from edge_runtime.nlu.encoder import EncoderTier
from edge_runtime.nlu.homophones import Homophones, dictionary_path, read_dictionary
from edge_runtime.profiles import load_profiles


@pytest.fixture(scope="module")
def pronounced() -> dict[str, list[str]]:
    path = dictionary_path()
    assert path is not None, "pocketsphinx ships the CMU dictionary"
    return read_dictionary(path)


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> EncoderTier:
    cache = tmp_path_factory.mktemp("cache")
    context = NluContext(load_home(EVAL_FIXTURES), "en", "n1", load_profiles()["x86-64"], cache)
    return EncoderTier(context, "edge-intent-minilm-int8", cache)


@pytest.mark.parametrize(
    ("text", "intent", "slots"),
    [
        (
            "set the sealing fan to 40%",
            "HassFanSetSpeed",
            {"name": "Ceiling Fan", "percentage": 40},
        ),
        ("start row ver", "HassVacuumStart", {"name": "Rover"}),
        # a word no template uses, heard as a command word: read so when nothing else fits
        ("paws the tv", "HassMediaPause", {"name": "TV"}),
        # a word of its own ("whether", not "weather") is read as written first
        (
            "tell me whether the garage light is on",
            "HassGetState",
            {"name": "Garage Light", "state": "on"},
        ),
    ],
)
def test_a_name_heard_as_words_that_sound_alike_is_read_as_the_name(
    encoder: EncoderTier, text: str, intent: str, slots: dict[str, Any]
) -> None:
    answer = encoder.recognize(TextRequest(text))
    assert answer is not None, text
    assert (answer.name, answer.slot_values()) == (intent, slots)


def test_one_word_or_two_become_the_name_word_they_sound_like(
    pronounced: dict[str, list[str]],
) -> None:
    homophones = Homophones.build(
        {"ceiling", "rover", "guest"}, frozenset({"the", "set"}), pronounced
    )
    assert homophones.rewrite(["set", "the", "sealing", "fan"]) == ["set", "the", "ceiling", "fan"]
    assert homophones.rewrite(["start", "row", "ver"]) == ["start", "rover"]
    assert homophones.rewrite(["the", "guessed", "room"]) == ["the", "guest", "room"]


def test_a_t_or_d_between_vowels_sounds_the_same_either_way(
    pronounced: dict[str, list[str]],
) -> None:
    homophones = Homophones.build({"sliding", "metal"}, frozenset({"lock", "the"}), pronounced)
    assert homophones.rewrite(["lock", "the", "slighting", "doors"]) == [
        *("lock", "the", "sliding", "doors")
    ]
    assert homophones.rewrite(["medal"]) == ["metal"]
    # only between vowels: "slider" is no flap away from anything, "sliding" stays itself
    assert homophones.rewrite(["slider", "sliding"]) == ["slider", "sliding"]


def test_a_word_the_templates_use_is_never_replaced(pronounced: dict[str, list[str]]) -> None:
    homophones = Homophones.build(
        {"four", "pause"}, frozenset({"for", "set", "a", "timer"}), pronounced
    )
    said = ["set", "a", "timer", "for", "10", "minutes"]
    assert homophones.rewrite(said) == said
    assert homophones.rewrite(["paws"]) == ["pause"]  # not known, so it may be read as the name


def test_a_sound_two_name_words_share_is_left_alone(pronounced: dict[str, list[str]]) -> None:
    homophones = Homophones.build({"pause", "paws"}, frozenset(), pronounced)
    assert homophones.single == {}  # P AO Z could be either: no word is read as one of them


def test_a_language_without_a_pronouncing_dictionary_rewrites_nothing(tmp_path: Path) -> None:
    assert Homophones.for_language("de", {"decke"}, frozenset(), tmp_path) is None


def test_the_rewriter_is_built_once_and_read_back_from_the_cache(tmp_path: Path) -> None:
    made = Homophones.for_language("en", {"ceiling", "rover"}, frozenset(), tmp_path)
    (cached,) = tmp_path.glob("homophones-*.json")
    again = Homophones.for_language("en", {"ceiling", "rover"}, frozenset(), tmp_path)
    assert made is not None and again is not None
    assert (again.single, again.pairs) == (made.single, made.pairs)
    assert again.rewrite(["start", "row", "ver"]) == ["start", "rover"]
    cached.write_text("{not json", encoding="utf-8")  # a damaged cache is built again
    rebuilt = Homophones.for_language("en", {"ceiling", "rover"}, frozenset(), tmp_path)
    assert rebuilt is not None and rebuilt.single == made.single
