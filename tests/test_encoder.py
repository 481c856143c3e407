"""The encoder tier with the shipped int8 model: paraphrases understood, doubtful ones refused."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from edge_runtime.home import Home, demo_home
from edge_runtime.messages import Intent, SlotValue, TextRequest
from edge_runtime.nlu.base import NluContext
from edge_runtime.nlu.cascade import build_cascade
from edge_runtime.nlu.encoder import EncoderTier
from edge_runtime.profiles import load_profiles

MODEL = "edge-intent-minilm-int8"


def tier_for(home: Home, cache: Path) -> EncoderTier:
    context = NluContext(home, "en", "n1", load_profiles()["x86-64"], cache)
    return EncoderTier(context, MODEL, cache)


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> EncoderTier:
    return tier_for(demo_home(), tmp_path_factory.mktemp("cache"))


PARAPHRASES: list[tuple[str, str, dict[str, Any]]] = [
    ("kill the garage light", "HassTurnOff", {"name": "Garage Light"}),
    ("could you fire up the coffee maker", "HassTurnOn", {"name": "Coffee Maker"}),
    ("garage door, close it please", "HassTurnOff", {"name": "Garage Door"}),
    ("um set a timer for ten minutes", "HassStartTimer", {"minutes": 10}),
    (
        "dim the bedside lamp to thirty percent",
        "HassLightSet",
        {"name": "Bedside Lamp", "brightness": 30},
    ),
    ("put milk on the shopping list", "HassShoppingListAddItem", {"item": "milk"}),
    (
        "bump the heat up to 70",
        "HassClimateSetTemperature",
        {"temperature": 70, "area": "Living Room"},
    ),
]


@pytest.mark.parametrize(("text", "intent", "slots"), PARAPHRASES)
def test_a_paraphrase_the_templates_do_not_list_is_understood_with_home_assistants_slots(
    encoder: EncoderTier, text: str, intent: str, slots: dict[str, Any]
) -> None:
    answer = encoder.recognize(TextRequest(text))

    assert answer is not None, text
    assert (answer.name, answer.slot_values()) == (intent, slots)
    assert answer.tier == "encoder"
    assert 0.5 <= answer.confidence <= 1.0


@pytest.mark.parametrize(
    "text",
    [
        "don't unlock the front door",  # a negation
        "never turn on the garage light",
        "i already added milk to the shopping list",  # done: a report, not a request
        "turn on the sauna",  # a device the home does not have
        "what is the capital of france",  # not about the home
        "set the bedside lamp to -5 percent",  # a minus no template takes, never 5 percent
        "set a timer for 1,5 hours",  # a fraction the timer cannot take, never 1 hour
        "un",  # nothing that ties the sentence to any example
        "paws the zebra",  # "pause" by its sound, but of nothing the home has
        "lock the garage door",  # a cover: "lock" never opens or closes one
        "set a timer four 10 minutes",  # "four" said without a unit is no 4-hour timer
        "pause the tee vee",  # a name it cannot read is not the whole room
    ],
)
def test_what_must_not_act_gets_no_confident_intent(encoder: EncoderTier, text: str) -> None:
    answer = encoder.recognize(TextRequest(text))

    assert answer is None or answer.confidence < 0.5, (text, answer)


def test_a_name_two_things_share_is_refused_unless_the_room_tells_them_apart(
    tmp_path: Path,
) -> None:
    home = Home.model_validate(
        {
            "areas": [{"id": "office", "name": "Office"}, {"id": "den", "name": "Den"}],
            "entities": [
                {"id": "light.office_reading", "name": "Reading Light", "area": "office"},
                {"id": "light.den_reading", "name": "Reading Light", "area": "den"},
            ],
        }
    )
    tier = tier_for(home, tmp_path)

    assert tier.recognize(TextRequest("kill the reading light")) is None
    answer = tier.recognize(TextRequest("kill the reading light in the den"))
    assert answer is not None
    assert answer.name == "HassTurnOff"


def test_a_unit_is_never_changed_to_fit_an_example(encoder: EncoderTier) -> None:
    answer = encoder.recognize(TextRequest("set a timer for ten seconds please"))

    assert answer is not None
    assert answer.slot_values() == {"seconds": 10}


def test_the_cascade_asks_the_encoder_only_when_the_rules_have_nothing(tmp_path: Path) -> None:
    context = NluContext(demo_home(), "en", "n1", load_profiles()["x86-64"], tmp_path)
    cascade = build_cascade(context, ["rules", "encoder"], threshold=0.5)

    template = cascade.recognize(TextRequest("turn on the kitchen lights"))
    paraphrase = cascade.recognize(TextRequest("kill the garage light"))

    assert template.intent is not None and template.intent.tier == "rules"
    assert paraphrase.intent is not None and paraphrase.intent.tier == "encoder"


def test_examples_are_drawn_once_and_cached_on_disk(tmp_path: Path) -> None:
    tier_for(demo_home(), tmp_path)
    cached = list(tmp_path.glob("examples-*.json"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns

    tier_for(demo_home(), tmp_path)

    assert cached[0].stat().st_mtime_ns == stamp


def test_a_corrupt_model_leaves_the_tier_out_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    models = tmp_path / "models"
    shutil.copytree(Path(__file__).resolve().parents[1] / "models", models)
    onnx = models / "edge-intent-minilm-int8" / "model.onnx"
    with onnx.open("r+b") as handle:
        handle.truncate(1000)
    monkeypatch.setenv("EDGE_RUNTIME_MODELS", str(models))
    context = NluContext(demo_home(), "en", "n1", load_profiles()["x86-64"], tmp_path)

    cascade = build_cascade(context, ["rules", "encoder"], threshold=0.9)

    assert cascade.tier_names == ["rules"]  # the node still answers what the rules know
    assert f"{onnx}: truncated: 1000 bytes" in caplog.text
    assert cascade.recognize(TextRequest("turn on the kitchen lights")).intent is not None


def answer(intent: str, **slots: Any) -> Intent:
    """Another tier's answer, for the encoder to second or not."""
    return Intent(
        intent, {k: SlotValue(v, str(v)) for k, v in slots.items()}, 0.99, "generator", "n1"
    )


fan_on = answer("HassTurnOn", name="Ceiling Fan")


@pytest.mark.parametrize(
    ("text", "intent", "agreed"),
    [
        ("kill the garage light", answer("HassTurnOff", name="Garage Light"), True),
        # the lights of the garage are its one light: the same action by other words
        ("kill the garage light", answer("HassTurnOff", area="Garage", domain="light"), True),
        # the model reads the intent, but the answer drops a thing or a number the person said
        (
            "kill the kitchen ceiling light",
            answer("HassTurnOff", name="Kitchen Ceiling Light"),
            True,
        ),
        (
            "kill the kitchen ceiling light",
            answer("HassTurnOff", area="Kitchen", domain="light"),
            False,
        ),
        ("set a timer for ten minutes", answer("HassStartTimer", minutes=10), True),
        ("set a timer for ten minutes", answer("HassStartTimer", minutes=15), False),
        ("set a timer for ten minutes", answer("HassStartTimer", hours=4, minutes=10), False),
        # another intent than the model's first
        ("kill the garage light", answer("HassTurnOn", name="Garage Light"), False),
        # the lock's own verb decides, not "off"
        ("i'm off to bed, lock the front door", answer("HassTurnOff", name="Front Door"), False),
        ("don't unlock the front door", answer("HassTurnOff", name="Front Door"), False),
        # a reason, then the command: the model reads the whole as none, the command clause
        # as the answer's intent
        ("it's boiling in here, switch the ceiling fan on", fan_on, True),
        ("it's boiling in here, don't switch the ceiling fan on", fan_on, False),
        # the node's own room stands in for a thing the home does not have
        ("pause the zebra", answer("HassMediaPause", area="Living Room"), False),
        ("pause the music", answer("HassMediaPause", area="Living Room"), True),
    ],
)
def test_a_second_opinion_needs_the_same_intent_and_everything_said(
    encoder: EncoderTier, text: str, intent: Intent, agreed: bool
) -> None:
    assert encoder.agrees(TextRequest(text), intent) is agreed


def test_several_commands_must_leave_out_nothing_the_sentence_names(encoder: EncoderTier) -> None:
    request = TextRequest("turn off the kitchen ceiling light and set the thermostat to 21")
    heat = answer("HassClimateSetTemperature", name="Thermostat", temperature=21)
    ceiling = answer("HassTurnOff", name="Kitchen Ceiling Light")

    assert encoder.covers(request, [ceiling, heat])
    lights_of_the_room = answer("HassTurnOff", area="Kitchen", domain="light")  # two of them
    assert not encoder.covers(request, [lights_of_the_room, heat])
    other_number = answer("HassClimateSetTemperature", name="Thermostat", temperature=12)
    assert not encoder.covers(request, [ceiling, other_number])
    garage = TextRequest("turn off the garage light and set the thermostat to 21")
    its_one_light = answer("HassTurnOff", area="Garage", domain="light")
    assert encoder.covers(garage, [its_one_light, heat])
