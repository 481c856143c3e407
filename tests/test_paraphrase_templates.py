"""Our own paraphrase templates must say exactly what Home Assistant's blocks say.

Each block of `edge_runtime/nlu/lang/<lang>_paraphrases.yaml` claims a slot
combination of an HA intent; hassil gives the rebuilt sentence's slots from
the block's `slots` and `requires_context`, so those must equal the HA block's
of the same combination, or the encoder tier would answer in a dialect of its own.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from home_assistant_intents import get_intents

from edge_runtime.nlu.encoder import NOT_A_COMMAND
from edge_runtime.nlu.examples import paraphrase_templates


def _domains(value: Any) -> set[str]:
    if value is None:
        return set()
    return {value} if isinstance(value, str) else set(value)


def _shape(block: dict[str, Any]) -> tuple[str, str, str]:
    """What decides the slots: fixed slots, the context it needs (minus domain), its combination."""
    context = dict(block.get("requires_context") or {})
    context.pop("domain", None)
    return (
        str(sorted((block.get("slots") or {}).items())),
        str(sorted(context.items())),
        str((block.get("metadata") or {}).get("slot_combination")),
    )


def _our_blocks(language: str) -> list[tuple[str, dict[str, Any]]]:
    data = yaml.safe_load(paraphrase_templates(language))
    return [
        (intent, block)
        for intent, body in data["intents"].items()
        if intent != NOT_A_COMMAND
        for block in body["data"]
    ]


@pytest.mark.parametrize(("intent", "block"), _our_blocks("en"))
def test_each_paraphrase_block_mirrors_a_home_assistant_block(
    intent: str, block: dict[str, Any]
) -> None:
    language = get_intents("en")
    assert language is not None
    theirs = language["intents"][intent]["data"]
    same_shape = [b for b in theirs if _shape(b) == _shape(block)]

    assert same_shape, f"{intent} {block['metadata']} has no HA block with the same slots"
    ours = _domains((block.get("requires_context") or {}).get("domain"))
    allowed = set().union(
        *(_domains((b.get("requires_context") or {}).get("domain")) for b in same_shape)
    )
    assert ours <= allowed, f"{intent}: domains {ours - allowed} are not accepted by HA's blocks"
