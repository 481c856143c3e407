"""Tier 1, rules: Home Assistant's own matcher (hassil) with the `home-assistant-intents` templates.

Slot lists are built from the home the way HA's own test harness does
(OHF-Voice/intents `tests/test_language_sentences.py` and
`test_slot_combinations.py`): a `name` list whose items carry their entity's
domain as context (templates require e.g. `domain: light` for "turn on the
{name} light"), and `area`/`floor` lists of names. Before each match the name
list is cut down to the names that occur in the sentence (a trie), so the cost
does not grow with the size of the home. A template match is exact, so its
confidence is 1.0; anything else is left to the next tier.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

import yaml
from hassil import (
    Intents,
    RecognizeResult,
    SlotList,
    TextChunk,
    TextSlotList,
    Trie,
    merge_dict,
    recognize_best,
)
from hassil.models import MatchEntity
from hassil.util import normalize_for_matching
from home_assistant_intents import get_intents, get_languages

from edge_runtime.home import Entity, Home
from edge_runtime.messages import Intent, SlotValue, TextRequest
from edge_runtime.nlu.base import NluContext, NluError, register_tier
from edge_runtime.nlu.words import language_resources

log = logging.getLogger(__name__)

RULES_CONFIDENCE = 1.0
WARM_UP = (
    "set a timer for 5 hours 5 minutes and 5 seconds",
    "add 5 minutes to my timer",
    "set the brightness to 50 percent",
    "set the temperature to 21 degrees",
    "set the fan speed to 50 percent",
    "set the volume to 50",
    "turn the volume up by 10",
    "open the blinds to 50 percent",
)


@lru_cache(maxsize=4)
def load_language(language: str, extra_yaml: str = "") -> Intents:
    """The shipped templates of one language, plus our own (YAML text) when given."""
    data = get_intents(language)
    if data is None:
        known = ", ".join(sorted(get_languages()))
        raise NluError(
            f"home-assistant-intents has no templates for language {language!r} ({known})"
        )
    if extra_yaml:
        data = copy.deepcopy(data)
        merge_dict(data, yaml.safe_load(extra_yaml))
    return Intents.from_dict(data)


def _entity_names(entity: Entity) -> Iterable[str]:
    yield entity.name
    yield from entity.aliases


def name_list_values(home: Home) -> list[Any]:
    """One hassil value per spoken name of every exposed entity (aliases resolve to the name)."""
    tuples = [
        (
            spoken,
            entity.name,
            {"domain": entity.domain},
            {"entity_id": entity.id, "domain": entity.domain, "area": entity.area},
        )
        for entity in home.entities
        if entity.is_exposed
        for spoken in _entity_names(entity)
    ]
    return TextSlotList.from_tuples(tuples, allow_template=False, name="name").values


def place_list(name: str, places: Iterable[tuple[str, tuple[str, ...]]]) -> TextSlotList:
    """Area or floor list: every name and alias says the place's name."""
    tuples = [(spoken, main) for main, aliases in places for spoken in (main, *aliases)]
    return TextSlotList.from_tuples(tuples, allow_template=False, name=name)


def home_slot_lists(home: Home) -> dict[str, SlotList]:
    return {
        "area": place_list("area", ((a.name, a.aliases) for a in home.areas)),
        "floor": place_list("floor", ((f.name, f.aliases) for f in home.floors)),
    }


def for_lookup(text: str) -> str:
    """The form hassil matches in (whitespace, apostrophes, dashes normalised), case-folded.

    The name pre-filter must see text exactly as hassil will, or "turn on the
    kitchen  light" (two spaces) would lose its entity and match a whole area.
    """
    return str(normalize_for_matching(text).text).casefold()


def build_name_trie(values: Iterable[Any]) -> Trie:
    trie = Trie()
    for value in values:
        assert isinstance(value.text_in, TextChunk)
        trie.insert(for_lookup(value.text_in.text), value)
    return trie


def slot_value(entity: MatchEntity) -> SlotValue:
    value = entity.value
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # "50 percent" is brightness 50, as HA's tests write it
    return SlotValue(value=value, text=entity.text_clean or str(value))


class HomeMatcher:
    """hassil over one language's templates with one home's slot lists.

    The rules tier matches what people said; the encoder tier matches the
    template sentence it rebuilt, restricted to the intent it chose.
    """

    def __init__(self, home: Home, language: str, extra_yaml: str = "") -> None:
        self.intents = load_language(language, extra_yaml)
        self.slot_lists = home_slot_lists(home)
        self.name_trie = build_name_trie(name_list_values(home))
        area = home.context_area_name
        self.intent_context: dict[str, Any] = {"area": area} if area else {}
        self._single: dict[str, Intents] = {}

    def compile_all(self) -> None:
        """hassil parses templates on first use; parse them all now, so that no command pays it."""
        for intent in self.intents.intents.values():
            for data in intent.data:
                _ = data.sentences
        # Number ranges build their spoken-number tables on first use, one range at a time.
        for sentence in WARM_UP:
            self.match(sentence)

    def _slot_lists_for(self, text: str) -> dict[str, SlotList]:
        # Over-approximate: a name too many costs a little time, a name too few a wrong answer.
        found = {
            id(value): value
            for variant in {for_lookup(text), for_lookup(text.replace("-", " "))}
            for _end, _text, value in self.name_trie.find(variant)
        }
        names = list(found.values())
        return {**self.slot_lists, "name": TextSlotList(name="name", values=names)}

    def only(self, intent_name: str) -> Intents:
        """The templates of one intent, for matching a sentence known to be about it."""
        if intent_name not in self._single:
            single = {intent_name: self.intents.intents[intent_name]}
            self._single[intent_name] = dataclasses.replace(self.intents, intents=single)
        return self._single[intent_name]

    def match(self, text: str, intent_name: str | None = None) -> RecognizeResult | None:
        return recognize_best(
            text,
            self.only(intent_name) if intent_name else self.intents,
            slot_lists=self._slot_lists_for(text),
            intent_context=self.intent_context,
            best_slot_name="name",
        )


def to_intent(result: RecognizeResult, confidence: float, tier: str, node: str) -> Intent:
    slots = {name: slot_value(entity) for name, entity in result.entities.items()}
    return Intent(result.intent.name, slots, confidence, tier, node)


class RulesTier:
    """Exact template matching; microseconds to a few milliseconds per sentence."""

    name = "rules"

    def __init__(self, home: Home, language: str, node_id: str) -> None:
        self.matcher = HomeMatcher(home, language)
        self.intent_names = frozenset(self.matcher.intents.intents)
        self.node_id = node_id
        self.zone_names = home.zone_names
        self.trailing_words = language_resources(language).trailing_words
        self.matcher.compile_all()

    def recognize(self, request: TextRequest) -> Intent | None:
        result = self.matcher.match(request.text)
        if result is None:
            return None
        intent = to_intent(result, RULES_CONFIDENCE, self.name, self.node_id)
        state = result.entities.get("state")
        if state is None or not state.is_wildcard:
            return intent
        zone = zone_said(state.text_clean, self.zone_names, self.trailing_words)
        if zone is None:
            log.debug("rules: %r names no place a person can be here", state.text_clean)
            return None
        said = " ".join(state.text_clean.split()[: len(zone.split())])
        slots = {**intent.slots, "state": SlotValue(said, said)}
        return dataclasses.replace(intent, slots=slots)


def zone_said(words: str, zones: frozenset[str], trailing: Sequence[tuple[str, ...]]) -> str | None:
    """The zone of the home that the words of a `{zone:state}` wildcard name, once the words
    said after it ("right now") are left out; None when they name none.

    HA's templates leave the zone a wildcard, which runs to the end of the sentence: "is
    joseph at home right now" asks whether Joseph is in a zone called "home right now", and
    HA answers "no" while he is home. A state only a wildcard can fill is a zone, and the home
    knows its zones, so words that name none are not understood rather than answered wrongly.
    """
    said = words.casefold().split()
    while said:
        if " ".join(said) in zones:
            return " ".join(said)
        tail = next(
            (t for t in trailing if len(t) < len(said) and tuple(said[-len(t) :]) == t), None
        )
        if tail is None:
            return None
        said = said[: -len(tail)]
    return None


@register_tier("rules")
def _build_rules(context: NluContext) -> RulesTier:
    return RulesTier(context.home, context.language, context.node_id)
