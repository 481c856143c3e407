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

import logging
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from hassil import Intents, SlotList, TextChunk, TextSlotList, Trie, recognize_best
from hassil.models import MatchEntity
from home_assistant_intents import get_intents, get_languages

from edge_runtime.home import Entity, Home
from edge_runtime.messages import Intent, SlotValue, TextRequest
from edge_runtime.nlu.base import NluContext, NluError, register_tier

log = logging.getLogger(__name__)

RULES_CONFIDENCE = 1.0


@lru_cache(maxsize=4)
def load_language(language: str) -> Intents:
    """Parse the shipped templates of one language (about a second; done once per process)."""
    data = get_intents(language)
    if data is None:
        known = ", ".join(sorted(get_languages()))
        raise NluError(
            f"home-assistant-intents has no templates for language {language!r} ({known})"
        )
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


def build_name_trie(values: Iterable[Any]) -> Trie:
    trie = Trie()
    for value in values:
        assert isinstance(value.text_in, TextChunk)
        trie.insert(value.text_in.text.strip().lower(), value)
    return trie


def slot_value(entity: MatchEntity) -> SlotValue:
    value = entity.value
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # "50 percent" is brightness 50, as HA's tests write it
    return SlotValue(value=value, text=entity.text_clean or str(value))


class RulesTier:
    """Exact template matching; microseconds to a few milliseconds per sentence."""

    name = "rules"

    def __init__(self, home: Home, language: str, node_id: str) -> None:
        self.intents = load_language(language)
        self.node_id = node_id
        self.slot_lists = home_slot_lists(home)
        self.name_trie = build_name_trie(name_list_values(home))
        area = home.context_area_name
        self.intent_context: dict[str, Any] = {"area": area} if area else {}
        # hassil compiles templates lazily; pay that (~0.1 s) at start-up, not on the first command.
        self.recognize(TextRequest("warm up the matcher"))

    def _slot_lists_for(self, text: str) -> dict[str, SlotList]:
        names = [value for _end, _text, value in self.name_trie.find(text.lower())]
        return {**self.slot_lists, "name": TextSlotList(name="name", values=names)}

    def recognize(self, request: TextRequest) -> Intent | None:
        result = recognize_best(
            request.text,
            self.intents,
            slot_lists=self._slot_lists_for(request.text),
            intent_context=self.intent_context,
            best_slot_name="name",
        )
        if result is None:
            return None
        slots = {name: slot_value(entity) for name, entity in result.entities.items()}
        return Intent(result.intent.name, slots, RULES_CONFIDENCE, self.name, self.node_id)


@register_tier("rules")
def _build_rules(context: NluContext) -> RulesTier:
    return RulesTier(context.home, context.language, context.node_id)
