"""What the generator reads and writes: one definition for training and for the tier.

The model reads the utterance folded to lower case with single spaces, and
writes a compact JSON list of intents in Home Assistant's schema:

    turn off the den lamp and lock the back door
    [{"intent":"HassTurnOff","slots":{"name":"den lamp"}},{"intent":"HassTurnOn",...}]

Names, areas and floors are written **as said** ("den lamp", "lounge",
"downstairs"), not as the home's canonical names: the model learns to copy
words from the sentence, which works in any home, and the tier maps what was
copied to the home's entity, area or floor (an alias included). An area that
the sentence does not say but the node's own area supplies, as Home
Assistant's satellites do for "turn off the lights", is written `@here`: the
tier fills in the node's `context_area`, and a node without one never allows it.
"""

from __future__ import annotations

import json
from typing import Any

PLACE_SLOTS = ("name", "area", "floor")
"""Slots whose values are home names: written as said, mapped back by the tier."""
INTENT_SEP = "<sep>"
"""Ends the utterance in the prompt `<s>utterance<sep>`; the model writes the intents after it."""
HERE = "@here"
"""The area a command gets from where the node stands, not from its words."""


def prompt_text(text: str) -> str:
    """The utterance as the model reads it: lower case, single spaces."""
    return " ".join(text.lower().split())


def said_slots(values: dict[str, Any], words: dict[str, str], text: str) -> dict[str, Any]:
    """Slots (`Intent.slot_values`, `Intent.slot_words`) the way the model writes them for
    `text`, the sentence they were said in.

    A place whose words occur in the sentence is written as said. An area with no
    words of its own (its words are its value, and the sentence lacks them) is the
    context area, `HERE`. Any other place is written as its value in lower case: a
    rewrite of the sentence lost the words, and the value is the best guess left.
    """
    said = f" {prompt_text(text)} "
    slots: dict[str, Any] = {}
    for name, value in sorted(values.items()):
        if name not in PLACE_SLOTS:
            slots[name] = value
            continue
        spoken = prompt_text(words.get(name, str(value)))
        if spoken and f" {spoken} " in said:
            slots[name] = spoken
        elif name == "area" and spoken == prompt_text(str(value)):
            slots[name] = HERE
        else:
            slots[name] = prompt_text(str(value))
    return slots


def target_json(intents: list[dict[str, Any]]) -> str:
    """The one serialisation of a list of intents: compact, keys in a fixed order."""
    ordered = [{"intent": i["intent"], "slots": i.get("slots", {})} for i in intents]
    return json.dumps(ordered, ensure_ascii=False, separators=(",", ":"))
