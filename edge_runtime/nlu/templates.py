"""Random, labelled sentences from hassil templates: the raw material of the learned tiers.

hassil's own sampler enumerates every expansion (thousands per template once
ranges are expanded); we draw a few random expansions per template instead,
and record for each one the intent, the slots it fills (the `value_out` that
hassil would return) and the text each slot list produced. The encoder tier
builds its example bank from these; training scripts build data sets from
them. Slot lists come from whatever home the caller passes, so a synthetic
home of invented names yields data that teaches copying names, not one home.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hassil import Intents
from hassil.expression import (
    Alternative,
    Expression,
    ListReference,
    Permutation,
    RuleReference,
    Sentence,
    TextChunk,
)
from hassil.expression import Sequence as Seq
from hassil.intents import IntentData, RangeSlotList, SlotList, TextSlotList, TextSlotValue
from hassil.util import normalize_whitespace

DEFAULT_WILDCARDS: dict[str, tuple[str, ...]] = {
    "item": ("milk", "eggs", "paper towels", "apples", "dog food"),
    "search_query": ("jazz", "the beatles", "my morning playlist", "the news"),
    "message": ("dinner is ready", "time to go", "the laundry is done"),
    "timer_name": ("pizza", "tea", "laundry"),
    "conversation_command": ("check the oven", "take out the trash"),
    "zone": ("work", "school", "the gym"),
}


@dataclass(frozen=True)
class FilledSlot:
    """One `{list}` of a template as it was filled."""

    list_name: str
    slot_name: str
    text: str
    """The words the sample says for it."""
    value: Any
    """What hassil returns as the slot's value for those words."""


@dataclass(frozen=True)
class Sample:
    text: str
    intent: str
    marked: str
    """`text` with each filled slot written as `\x01<index into filled>\x02`."""
    combination: str | None
    """HA's slot combination of the template block (`name_area`, `domain_only` …)."""
    fixed_slots: Mapping[str, Any]
    """Slots the block sets without words (`domain: light`)."""
    filled: tuple[FilledSlot, ...]
    name_domains: tuple[str, ...] = ()
    """Domains the block's `{name}` must have (its requires_context); empty: any."""

    @property
    def slots(self) -> dict[str, Any]:
        """The slots hassil would return (context-area slots excepted)."""
        return {**self.fixed_slots, **{f.slot_name: f.value for f in self.filled}}


@dataclass
class _Draw:
    filled: list[FilledSlot] = field(default_factory=list)


class TemplateSampler:
    """Draws random expansions of every template block of a language."""

    def __init__(
        self,
        intents: Intents,
        slot_lists: Mapping[str, SlotList],
        rng: random.Random,
        wildcards: Mapping[str, Sequence[str]] = DEFAULT_WILDCARDS,
        cycled_lists: frozenset[str] = frozenset(),
    ) -> None:
        self.intents = intents
        self.slot_lists = {**intents.slot_lists, **slot_lists}
        self.rng = rng
        self.wildcards = wildcards
        self.cycled_lists = cycled_lists
        """Lists whose values are taken in turn, draw after draw, so each gets its share."""
        self._draw_index = 0

    def samples(self, per_template: int, intent_names: set[str] | None = None) -> Iterator[Sample]:
        """`per_template` draws of each template sentence (duplicates included)."""
        for intent_name, intent in self.intents.intents.items():
            if intent_names is not None and intent_name not in intent_names:
                continue
            for data in intent.data:
                lists = block_lists(data, self.slot_lists)
                if lists is None:
                    continue  # the home has nothing this block can talk about
                for sentence in data.sentences:
                    for draw_index in range(per_template):
                        self._draw_index = draw_index
                        yield self._draw(intent_name, data, sentence, lists)

    def _draw(
        self, intent: str, data: IntentData, sentence: Sentence, lists: dict[str, SlotList]
    ) -> Sample:
        draw = _Draw()
        rules = {**self.intents.expansion_rules, **data.expansion_rules}
        marked = normalize_whitespace(self._expand(sentence.expression, lists, rules, draw)).strip()
        text = fill_marks(marked, [f.text for f in draw.filled])
        combination = (data.metadata or {}).get("slot_combination")
        domains = tuple(sorted(_as_set(data.requires_context.get("domain") or ())))
        return Sample(
            text, intent, marked, combination, dict(data.slots), tuple(draw.filled), domains
        )

    def _expand(
        self,
        expr: Expression,
        lists: dict[str, SlotList],
        rules: dict[str, Sentence],
        draw: _Draw,
    ) -> str:
        if isinstance(expr, TextChunk):
            return expr.original_text or expr.text
        if isinstance(expr, Alternative):
            return self._expand(self.rng.choice(expr.items), lists, rules, draw)
        if isinstance(expr, Permutation):
            items = list(expr.items)
            self.rng.shuffle(items)
            return " ".join(self._expand(i, lists, rules, draw) for i in items)
        if isinstance(expr, Seq):
            return "".join(self._expand(i, lists, rules, draw) for i in expr.items)
        if isinstance(expr, RuleReference):
            return self._expand(rules[expr.rule_name].expression, lists, rules, draw)
        if isinstance(expr, ListReference):
            return self._fill(expr, lists, rules, draw)
        raise TypeError(f"unexpected template expression {expr!r}")

    def _fill(
        self,
        ref: ListReference,
        lists: dict[str, SlotList],
        rules: dict[str, Sentence],
        draw: _Draw,
    ) -> str:
        slot_list = lists.get(ref.list_name)
        if isinstance(slot_list, RangeSlotList):
            number = self.rng.randrange(slot_list.start, slot_list.stop + 1, slot_list.step)
            value: Any = number * slot_list.multiplier if slot_list.multiplier else number
            text = str(number)
        elif isinstance(slot_list, TextSlotList) and slot_list.values:
            values = slot_list.values
            if ref.list_name in self.cycled_lists:
                choice: TextSlotValue = values[self._draw_index % len(values)]
            else:
                choice = self.rng.choice(values)
            text = normalize_whitespace(self._expand(choice.text_in, lists, rules, draw)).strip()
            value = choice.value_out if choice.value_out is not None else text
        else:  # a wildcard, or a list the caller left empty
            pool = self.wildcards.get(ref.list_name) or self.wildcards.get(ref.slot_name)
            text = self.rng.choice(pool or ("something",))
            value = text
        draw.filled.append(FilledSlot(ref.list_name, ref.slot_name, text, value))
        return f"{MARK_START}{len(draw.filled) - 1}{MARK_END}"


def block_lists(data: IntentData, slot_lists: Mapping[str, SlotList]) -> dict[str, SlotList] | None:
    """Slot lists for one template block: `{name}` offers only the entities the block accepts.

    None when the block talks about a `{name}` and no entity of the home fits it.
    """
    lists = {**slot_lists, **data.slot_lists}
    names = lists.get("name")
    if isinstance(names, TextSlotList):
        accepted = [v for v in names.values if _context_fits(v, data)]
        if not accepted and _mentions(data, "name"):
            return None
        lists["name"] = TextSlotList(name="name", values=accepted)
    return lists


MARK_START, MARK_END = "\x01", "\x02"
MARKS = re.compile("\x01(\\d+)\x02")


def fill_marks(marked: str, texts: Sequence[str]) -> str:
    """Put `texts[i]` where `marked` has slot mark i."""
    return MARKS.sub(lambda m: texts[int(m.group(1))], marked)


def _mentions(data: IntentData, list_name: str) -> bool:
    return any(f"{{{list_name}" in text for text in data.sentence_texts)


def _as_set(value: Any) -> set[Any]:
    if isinstance(value, list | set | tuple):
        return set(value)
    return {value}


def _context_fits(value: TextSlotValue, data: IntentData) -> bool:
    """Does a `{name}` value satisfy the block's requires/excludes_context, as hassil checks?"""
    context = value.context or {}
    for key, wanted in data.requires_context.items():
        if isinstance(wanted, dict):  # {"slot": true}: filled from the intent context, not the name
            continue
        if key in context and not (_as_set(context[key]) & _as_set(wanted)):
            return False
        if key not in context:
            return False
    for key, unwanted in data.excludes_context.items():
        if key in context and (_as_set(context[key]) & _as_set(unwanted)):
            return False
    return True
