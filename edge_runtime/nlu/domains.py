"""Which domain an intent acts on, so a node can serve some domains and route the rest.

An entity's intent acts on the entity's HA domain (`light`, `lock` ...): from the
`domain` slot, or the domain of the entity named. Intents that act on no entity
belong to a domain of their own family: timers, lists, media, weather, time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edge_runtime.home import Home
from edge_runtime.messages import Intent

FAMILIES: tuple[tuple[str, str], ...] = (
    ("Timer", "timer"),
    ("ShoppingList", "todo"),
    ("ListAddItem", "todo"),
    ("ListCompleteItem", "todo"),
    ("ListRemoveItem", "todo"),
    ("Vacuum", "vacuum"),
    ("LawnMower", "lawn_mower"),
    ("Climate", "climate"),
    ("Fan", "fan"),
    ("Media", "media_player"),
    ("Volume", "media_player"),
    ("Weather", "weather"),
    ("CurrentTime", "time"),
    ("CurrentDate", "time"),
    ("Broadcast", "assist_satellite"),
)
"""Part of an intent's name -> the domain of intents that name no entity."""
TARGET_SLOTS = frozenset({"name", "area", "floor", "domain", "device_class"})
"""The slots that pick the entities an intent acts on."""
CONVERSATION = "conversation"
"""Everything else (`HassNevermind`, `HassRespond`): served wherever it is understood."""


def family_domains() -> set[str]:
    return {domain for _part, domain in FAMILIES} | {CONVERSATION}


def intent_domain(intent: Intent, home: Home) -> str:
    """The domain `intent` acts on (see the module docstring)."""
    slot = intent.slots.get("domain")
    if slot is not None:
        value = slot.value
        return str(value[0] if isinstance(value, list) and value else value)
    name = intent.slots.get("name")
    if name is not None:
        for entity in home.entities:
            if entity.name.casefold() == str(name.value).casefold():
                return entity.domain
    return next((domain for part, domain in FAMILIES if part in intent.name), CONVERSATION)


def all_domains(home: Home) -> list[str]:
    """What a node serves when its config names no domains: everything."""
    return sorted(home.domains | family_domains())


def targeted_entities(home: Home, intent: str, slots: Mapping[str, Any]) -> frozenset[str]:
    """The exposed entities an intent's target slots pick out, the way HA narrows them (a
    name or alias; then domain, device class, area, floor); an intent of one family
    (climate, media …) picks only that family's domain. Empty: the slots name no target.
    Two readings that pick the same entities do the same thing: "the lamp in the living
    room" read as the lights of a Living Room whose one light is its lamp."""
    if not TARGET_SLOTS & set(slots):
        return frozenset()
    family = next((domain for part, domain in FAMILIES if part in intent), None)
    picked = []
    for entity in home.entities:
        if not entity.is_exposed or (family and "domain" not in slots and entity.domain != family):
            continue
        area = home.area_by_id.get(entity.area or "")
        floor = home.floor_by_id.get(area.floor or "") if area else None
        known = {
            "name": (entity.name, *entity.aliases),
            "domain": (entity.domain,),
            "device_class": (str(entity.attributes.get("device_class", "")),),
            "area": (area.name,) if area else (),
            "floor": (floor.name,) if floor else (),
        }
        if all(_one_of(slots[slot], words) for slot, words in known.items() if slot in slots):
            picked.append(entity.id)
    return frozenset(picked)


def _one_of(value: Any, words: tuple[str, ...]) -> bool:
    """A slot's value (or any of a list of them) is one of the words, ignoring case and runs
    of spaces."""
    wanted = {" ".join(str(w).split()).casefold() for w in words}
    values = value if isinstance(value, list | tuple | set | frozenset) else (value,)
    return any(" ".join(str(v).split()).casefold() in wanted for v in values)
