"""Which domain an intent acts on, so a node can serve some domains and route the rest.

An entity's intent acts on the entity's HA domain (`light`, `lock` ...): from the
`domain` slot, or the domain of the entity named. Intents that act on no entity
belong to a domain of their own family: timers, lists, media, weather, time.
"""

from __future__ import annotations

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
