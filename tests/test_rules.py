"""The rules tier (hassil + home-assistant-intents) on the demo home, and the cascade around it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from edge_runtime.config import load_config
from edge_runtime.home import Home, demo_home, load_home
from edge_runtime.messages import Intent, SlotValue, TextRequest
from edge_runtime.nlu.base import NluContext, NluError, Tier
from edge_runtime.nlu.cascade import Cascade, build_cascade
from edge_runtime.nlu.rules import RulesTier
from edge_runtime.profiles import DeviceProfile, load_profiles
from edge_runtime.yamlload import ConfigError

# Sentences written for these tests (not taken from any evaluation set), with what the demo
# home (edge_runtime/data/home.yaml, context area Living Room) must make of them.
COMMANDS: list[tuple[str, str, dict[str, Any]]] = [
    # lights
    ("turn on the kitchen lights", "HassTurnOn", {"area": "Kitchen", "domain": "light"}),
    ("switch off the lights in the bedroom", "HassTurnOff", {"area": "Bedroom", "domain": "light"}),
    ("turn off the desk lamp", "HassTurnOff", {"name": "Desk Lamp"}),
    ("turn on the upstairs lights", "HassTurnOn", {"floor": "First Floor", "domain": "light"}),
    (
        "set the brightness in the kitchen to 50%",
        "HassLightSet",
        {"area": "Kitchen", "brightness": 50, "domain": "light"},
    ),
    (
        "set the desk lamp brightness to 30%",
        "HassLightSet",
        {"name": "Desk Lamp", "brightness": 30},
    ),
    (
        "set the kitchen ceiling light to red",
        "HassLightSet",
        {"name": "Kitchen Ceiling Light", "color": "red"},
    ),
    # switches and fans
    ("switch on the coffee maker", "HassTurnOn", {"name": "Coffee Maker"}),
    (
        "set the ceiling fan speed to 50%",
        "HassFanSetSpeed",
        {"name": "Ceiling Fan", "percentage": 50},
    ),
    # covers
    ("open the bedroom curtains", "HassTurnOn", {"name": "Bedroom Curtains"}),
    ("shut the garage door", "HassTurnOff", {"name": "Garage Door"}),
    (
        "close the curtains in the bedroom",
        "HassTurnOff",
        {"device_class": "curtain", "area": "Bedroom", "domain": "cover"},
    ),
    ("is the garage door closed", "HassGetState", {"name": "Garage Door", "state": "closed"}),
    # locks (HA models lock/unlock as turn on/off of a lock)
    ("lock the front door", "HassTurnOn", {"name": "Front Door"}),
    ("unlock the back door", "HassTurnOff", {"name": "Back Door"}),
    ("is the back door unlocked", "HassGetState", {"name": "Back Door", "state": "unlocked"}),
    # climate
    (
        "set the temperature in the bedroom to 18 degrees",
        "HassClimateSetTemperature",
        {"area": "Bedroom", "temperature": 18},
    ),
    (
        "set the thermostat to 19",
        "HassClimateSetTemperature",
        {"name": "Thermostat", "temperature": 19},
    ),
    ("how warm is it in the bedroom", "HassClimateGetTemperature", {"area": "Bedroom"}),
    # media
    ("pause the tv", "HassMediaPause", {"name": "TV"}),
    ("resume the kitchen speaker", "HassMediaUnpause", {"name": "Kitchen Speaker"}),
    ("skip this track on the kitchen speaker", "HassMediaNext", {"name": "Kitchen Speaker"}),
    ("set the tv volume to 30", "HassSetVolume", {"name": "TV", "volume_level": 30}),
    ("mute the kitchen speaker", "HassMediaPlayerMute", {"name": "Kitchen Speaker"}),
    # timers
    ("set a timer for 10 minutes", "HassStartTimer", {"minutes": 10}),
    ("set a timer for 2 hours called laundry", "HassStartTimer", {"hours": 2, "name": "laundry"}),
    ("set a timer for one hour and thirty minutes", "HassStartTimer", {"hours": 1, "minutes": 30}),
    ("cancel the laundry timer", "HassCancelTimer", {"name": "laundry"}),
    ("how much time is left on my timer", "HassTimerStatus", {}),
    # lists
    (
        "add oat milk to my shopping list",
        "HassListAddItem",
        {"item": "oat milk", "name": "Shopping List"},
    ),
    (
        "add bread and butter to the shopping list",
        "HassListAddItem",
        {"item": "bread and butter", "name": "Shopping List"},
    ),
    # vacuum
    ("start the robot vacuum", "HassVacuumStart", {"name": "Robot Vacuum"}),
]

NOT_UNDERSTOOD = [
    "blargh flibber wobble",
    "kill the garage light",  # a paraphrase no template lists
    "turn on the lights in the attic",  # no such area
    "turn on the jacuzzi",  # no such entity
]

# The demo home plus an entity with an alias, and one that is not exposed to voice.
EXTRA_ENTITIES = """\
  - id: light.reading
    name: Reading Lamp
    area: office
    aliases: [book light]
  - id: light.safe_room
    name: Panic Room Light
    area: office
    is_exposed: false
    aliases: [secret light]
"""


@pytest.fixture(scope="module")
def rules() -> RulesTier:
    return RulesTier(demo_home(), "en", "n1")


@pytest.fixture(scope="module")
def profile() -> DeviceProfile:
    return load_profiles()["x86-64"]


def recognize(tier: RulesTier, text: str) -> Intent | None:
    return tier.recognize(TextRequest(text))


def home_with_extra_entities(tmp_path: Path, exposed: bool = False) -> Home:
    """The demo home with EXTRA_ENTITIES; `exposed=True` exposes the panic room light too, to
    show what the exposure flag prevents."""
    extra = EXTRA_ENTITIES if not exposed else EXTRA_ENTITIES.replace("is_exposed: false", "")
    return home_with(tmp_path, extra)


def home_with(tmp_path: Path, entities: str) -> Home:
    """The demo home file with `entities` (YAML list items) appended, loaded from disk."""
    demo = Path(__file__).parents[1] / "edge_runtime" / "data" / "home.yaml"
    text = demo.read_text(encoding="utf-8").rstrip("\n") + "\n" + entities
    path = tmp_path / "home.yaml"
    path.write_text(text, encoding="utf-8")
    return load_home(path)


@dataclass
class FixedTier:
    """A tier of our own NLU interface that always gives the same answer and records its calls."""

    name: str
    answer: Intent | None
    asked: list[str] = field(default_factory=list)
    intent_names: frozenset[str] = frozenset({"HassTurnOn"})

    def recognize(self, request: TextRequest) -> Intent | None:
        self.asked.append(request.text)
        return self.answer


def intent(name: str, confidence: float, tier: str) -> Intent:
    return Intent(name, {"name": SlotValue("Desk Lamp", "desk lamp")}, confidence, tier, "n1")


# --- sentences on the demo home ---------------------------------------------------------------


@pytest.mark.parametrize(("text", "name", "slots"), COMMANDS, ids=[c[0] for c in COMMANDS])
def test_command_on_the_demo_home_gives_intent_and_slots(
    rules: RulesTier, text: str, name: str, slots: dict[str, Any]
) -> None:
    result = recognize(rules, text)

    assert result is not None
    assert (result.name, result.slot_values()) == (name, slots)
    assert result.confidence == 1.0
    assert result.tier == "rules"
    assert result.node == "n1"


def test_slot_text_keeps_the_words_that_were_said(rules: RulesTier) -> None:
    result = recognize(rules, "set the desk lamp brightness to 30%")

    assert result is not None
    assert result.slots["name"] == SlotValue("Desk Lamp", "desk lamp")
    assert result.slots["brightness"] == SlotValue(30, "30")


def test_matching_ignores_case_and_surrounding_punctuation(rules: RulesTier) -> None:
    result = recognize(rules, "Turn OFF the Desk Lamp!")

    assert result is not None
    assert (result.name, result.slot_values()) == ("HassTurnOff", {"name": "Desk Lamp"})


@pytest.mark.parametrize("text", NOT_UNDERSTOOD)
def test_text_no_template_covers_gives_none(rules: RulesTier, text: str) -> None:
    assert recognize(rules, text) is None


# --- context area -----------------------------------------------------------------------------


def test_lights_without_an_area_fill_the_context_area(rules: RulesTier) -> None:
    result = recognize(rules, "turn on the lights")

    assert result is not None
    assert result.name == "HassTurnOn"
    assert result.slot_values() == {"domain": "light", "area": "Living Room"}


def test_other_area_less_commands_also_fill_the_context_area(rules: RulesTier) -> None:
    blinds = recognize(rules, "close the blinds")
    heat = recognize(rules, "set the temperature to 22 degrees")

    assert blinds is not None
    assert blinds.slot_values() == {
        "device_class": "blind",
        "domain": "cover",
        "area": "Living Room",
    }
    assert heat is not None
    assert heat.name == "HassClimateSetTemperature"
    assert heat.slot_values() == {"temperature": 22, "area": "Living Room"}


def test_lights_without_an_area_are_not_understood_without_a_context_area() -> None:
    home = demo_home().model_copy(update={"context_area": None})
    tier = RulesTier(home, "en", "n1")

    assert tier.recognize(TextRequest("turn on the lights")) is None
    # A command that names its area does not need the context.
    named = tier.recognize(TextRequest("turn on the lights in the kitchen"))
    assert named is not None
    assert named.slot_values() == {"area": "Kitchen", "domain": "light"}


def test_context_area_given_by_name_fills_the_canonical_area_name() -> None:
    home = demo_home().model_copy(update={"context_area": "bedroom"})
    tier = RulesTier(home, "en", "n1")

    result = tier.recognize(TextRequest("turn off the lights"))

    assert result is not None
    assert result.slot_values() == {"domain": "light", "area": "Bedroom"}


# --- aliases and exposure ---------------------------------------------------------------------


def test_area_alias_resolves_to_the_canonical_area_name(rules: RulesTier) -> None:
    result = recognize(rules, "turn off the lights in the lounge")

    assert result is not None
    assert result.name == "HassTurnOff"
    assert result.slot_values() == {"area": "Living Room", "domain": "light"}
    assert result.slots["area"].text == "lounge"


def test_floor_alias_resolves_to_the_canonical_floor_name(rules: RulesTier) -> None:
    result = recognize(rules, "turn off the lights downstairs")

    assert result is not None
    assert result.slot_values() == {"floor": "Ground Floor", "domain": "light"}


def test_entity_alias_resolves_to_the_entity_name(tmp_path: Path) -> None:
    tier = RulesTier(home_with_extra_entities(tmp_path), "en", "n1")

    result = tier.recognize(TextRequest("turn on the book light"))

    assert result is not None
    assert result.name == "HassTurnOn"
    assert result.slots["name"] == SlotValue("Reading Lamp", "book light")


PANIC_ROOM_SENTENCES = [
    "turn on the panic room light",
    "turn on the secret light",
    "is the panic room light on",
]


@pytest.mark.parametrize("text", PANIC_ROOM_SENTENCES)
def test_unexposed_entity_is_never_matched_by_name_or_alias(tmp_path: Path, text: str) -> None:
    tier = RulesTier(home_with_extra_entities(tmp_path), "en", "n1")

    assert tier.recognize(TextRequest(text)) is None


@pytest.mark.parametrize("text", PANIC_ROOM_SENTENCES)
def test_same_entity_once_exposed_is_matched_by_name_or_alias(tmp_path: Path, text: str) -> None:
    tier = RulesTier(home_with_extra_entities(tmp_path, exposed=True), "en", "n1")

    result = tier.recognize(TextRequest(text))

    assert result is not None
    assert result.slot_values()["name"] == "Panic Room Light"


def test_exposed_neighbour_of_an_unexposed_entity_is_still_matched(tmp_path: Path) -> None:
    tier = RulesTier(home_with_extra_entities(tmp_path), "en", "n1")

    result = tier.recognize(TextRequest("turn off the reading lamp"))

    assert result is not None
    assert result.slot_values() == {"name": "Reading Lamp"}


# --- the cascade ------------------------------------------------------------------------------


def test_cascade_of_the_rules_tier_answers_with_a_recognition(profile: DeviceProfile) -> None:
    cascade = build_cascade(NluContext(demo_home(), "en", "n1", profile), ["rules"], 0.5)

    recognition = cascade.recognize(TextRequest("unlock the back door", id="req-1"))

    assert cascade.tier_names == ["rules"]
    assert recognition.intent is not None
    assert recognition.intent.name == "HassTurnOff"
    assert recognition.to_jsonl()["slots"] == {"name": "Back Door"}
    assert recognition.node == "n1"
    assert recognition.request.id == "req-1"
    assert recognition.latency_ms >= 0


@pytest.mark.parametrize("text", NOT_UNDERSTOOD)
def test_cascade_says_not_understood_for_text_no_template_covers(
    profile: DeviceProfile, text: str
) -> None:
    cascade = build_cascade(NluContext(demo_home(), "en", "n1", profile), ["rules"], 0.5)

    recognition = cascade.recognize(TextRequest(text))

    assert recognition.intent is None
    assert recognition.to_jsonl()["intent"] is None
    assert recognition.to_jsonl()["confidence"] == 0.0


def test_threshold_above_one_is_rejected_by_the_config(tmp_path: Path) -> None:
    path = tmp_path / "node.yaml"
    path.write_text("node_id: n1\nnlu:\n  threshold: 1.5\n")

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert caught.value.problems == [
        f"{path}:3: nlu.threshold: Input should be less than or equal to 1"
    ]


def test_below_threshold_answer_is_not_understood() -> None:
    unsure = FixedTier("unsure", intent("HassTurnOn", 0.3, "unsure"))
    cascade = Cascade([unsure], threshold=0.5, node_id="n1")

    recognition = cascade.recognize(TextRequest("turn on the desk lamp maybe"))

    assert recognition.intent is None
    assert unsure.asked == ["turn on the desk lamp maybe"]


def test_below_threshold_answer_makes_the_cascade_ask_the_next_tier() -> None:
    unsure = FixedTier("unsure", intent("HassTurnOn", 0.3, "unsure"))
    sure = FixedTier("sure", intent("HassTurnOff", 0.9, "sure"))
    tiers: list[Tier] = [unsure, sure]
    cascade = Cascade(tiers, threshold=0.5, node_id="n1")

    recognition = cascade.recognize(TextRequest("desk lamp off"))

    assert recognition.intent is not None
    assert (recognition.intent.name, recognition.intent.tier) == ("HassTurnOff", "sure")
    assert unsure.asked == sure.asked == ["desk lamp off"]


def test_answer_exactly_at_the_threshold_is_accepted() -> None:
    edge = FixedTier("edge", intent("HassTurnOn", 0.5, "edge"))

    result = Cascade([edge], threshold=0.5, node_id="n1").best(TextRequest("desk lamp on"))

    assert result is not None
    assert result.confidence == 0.5


def test_tier_with_nothing_passes_the_request_on() -> None:
    empty = FixedTier("empty", None)
    sure = FixedTier("sure", intent("HassTurnOn", 0.8, "sure"))
    tiers: list[Tier] = [empty, sure]

    result = Cascade(tiers, threshold=0.5, node_id="n1").best(TextRequest("desk lamp on"))

    assert result is not None
    assert result.tier == "sure"
    assert empty.asked == ["desk lamp on"]


def test_confident_rules_answer_means_later_tiers_are_not_asked() -> None:
    backup = FixedTier("backup", intent("HassNevermind", 0.99, "backup"))
    tiers: list[Tier] = [RulesTier(demo_home(), "en", "n1"), backup]
    cascade = Cascade(tiers, threshold=0.5, node_id="n1")

    understood = cascade.recognize(TextRequest("pause the tv"))
    paraphrase = cascade.recognize(TextRequest("kill the garage light"))

    assert understood.intent is not None
    assert understood.intent.tier == "rules"
    assert paraphrase.intent is not None
    assert paraphrase.intent.tier == "backup"
    assert backup.asked == ["kill the garage light"]


def test_cascade_without_tiers_is_an_error() -> None:
    with pytest.raises(NluError, match=r"^the cascade needs at least one tier$"):
        Cascade([], threshold=0.5, node_id="n1")


def test_unknown_tier_name_raises_nlu_error_naming_it(profile: DeviceProfile) -> None:
    context = NluContext(demo_home(), "en", "n1", profile)

    with pytest.raises(NluError) as caught:
        build_cascade(context, ["rules", "telepathy"], 0.5)

    assert str(caught.value) == "NLU tier 'telepathy' is not available in this build"


def test_language_without_templates_raises_nlu_error_naming_it() -> None:
    with pytest.raises(NluError) as caught:
        RulesTier(demo_home(), "xx", "n1")

    message = str(caught.value)
    assert message.startswith("home-assistant-intents has no templates for language 'xx' (")
    assert ", en, " in message


def test_language_without_templates_fails_the_cascade_build(profile: DeviceProfile) -> None:
    context = NluContext(demo_home(), "xx", "n1", profile)

    with pytest.raises(NluError, match="no templates for language 'xx'"):
        build_cascade(context, ["rules"], 0.5)


SPACING_HOME = {
    "context_area": "living_room",
    "areas": [{"id": "kitchen", "name": "Kitchen"}, {"id": "living_room", "name": "Living Room"}],
    "entities": [
        {"id": "light.kitchen_light", "name": "Kitchen Light", "area": "kitchen"},
        {"id": "light.moms_lamp", "name": "Mom's Lamp"},
    ],
}


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("turn on the kitchen  light", "Kitchen Light"),
        ("turn on the kitchen\tlight", "Kitchen Light"),
        ("turn on the kitchen-light", "Kitchen Light"),
        ("turn on mom\u2019s lamp", "Mom's Lamp"),
    ],
)
def test_names_are_found_however_the_text_is_spaced_or_punctuated(text: str, name: str) -> None:
    """The name pre-filter sees the text as hassil does; otherwise one lamp becomes a whole room."""
    tier = RulesTier(Home.model_validate(SPACING_HOME), "en", "n1")

    intent = tier.recognize(TextRequest(text))

    assert intent is not None
    assert intent.slot_values() == {"name": name}


PEOPLE = """\
  - id: person.ada
    name: Ada
    state: home
  - id: person.lin
    name: Lin
    state: Gym
  - id: zone.school
    name: School
"""


@pytest.mark.parametrize(
    ("text", "zone"),
    [
        ("is ada at home", "home"),
        ("is lin at the gym", "gym"),
        ("is ada at school", "school"),
        # words said after the zone are not part of it
        ("is ada at home right now", "home"),
        ("is lin at the gym at the moment please", "gym"),
    ],
)
def test_a_zone_the_home_knows_is_asked_about(tmp_path: Path, text: str, zone: str) -> None:
    tier = RulesTier(home_with(tmp_path, PEOPLE), "en", "n1")

    result = tier.recognize(TextRequest(text))

    assert result is not None
    assert result.slot_values()["state"].casefold() == zone


@pytest.mark.parametrize(
    "text", ["is ada at home base", "is lin at the moon", "is lin at the moon right now"]
)
def test_a_zone_wildcard_that_names_no_zone_is_not_understood(tmp_path: Path, text: str) -> None:
    """HA's zone is a wildcard to the end of the sentence; "home base" is no zone, and
    answering "no" while Ada is home would be wrong."""
    tier = RulesTier(home_with(tmp_path, PEOPLE), "en", "n1")

    assert tier.recognize(TextRequest(text)) is None
