"""What a valid answer of the generator is, read off Home Assistant's own templates.

For each intent: which sets of slots its sentences can fill (the slot
combinations, as hassil would produce them, including a slot that a template
fixes and the area a satellite's context supplies), and for each slot the
values it may take: the values of the lists its templates reference, a number
range, the template's fixed values, or free text where a template has a
wildcard. `generator_grammar` turns this, with one home's names, into the Lark
grammar that constrains decoding, so whatever the weights, the output parses,
names a known intent with slots it accepts, and names only places that exist.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hassil import Intents
from hassil.expression import (
    Alternative,
    Expression,
    Group,
    ListReference,
    RuleReference,
    Sentence,
    TextChunk,
)
from hassil.intents import IntentData, RangeSlotList, SlotList, TextSlotList, WildcardSlotList

from edge_runtime.nlu.generator_format import HERE, PLACE_SLOTS

MAX_COMBINATIONS = 256
"""Per template: more would mean a template of many independent optional slots."""
MAX_ENUMERATED = 1000
"""A number range with more values than this is a digit pattern, checked after parsing."""


@dataclass
class SlotValues:
    """What one slot of one intent may hold."""

    values: set[Any] = field(default_factory=set)
    ranges: set[tuple[int, int, int, float]] = field(default_factory=set)
    """(start, stop, step, multiplier) of number lists."""
    free_text: bool = False

    def allows(self, value: Any) -> bool:
        if value in self.values:
            return True
        if isinstance(value, str):
            return self.free_text
        if isinstance(value, int | float) and not isinstance(value, bool):
            return any(_in_range(value, r) for r in self.ranges)
        return False


@dataclass
class IntentSchema:
    name: str
    combinations: set[frozenset[str]] = field(default_factory=set)
    slots: dict[str, SlotValues] = field(default_factory=dict)
    context_area: bool = False
    """Some sentence takes its area from the satellite's context."""

    def accepts(self, slots: dict[str, Any]) -> bool:
        """Whether these slots (places already checked by the caller) are a valid answer."""
        if frozenset(slots) not in self.combinations:
            return False
        return all(
            name in PLACE_SLOTS or self.slots[name].allows(value) for name, value in slots.items()
        )


def intent_schemas(intents: Intents, lists: dict[str, SlotList]) -> dict[str, IntentSchema]:
    """Every intent of the templates, with its slot combinations and values."""
    all_lists = {**intents.slot_lists, **lists}
    schemas: dict[str, IntentSchema] = {}
    for intent in intents.intents.values():
        schema = schemas.setdefault(intent.name, IntentSchema(intent.name))
        for data in intent.data:
            _add_block(schema, data, intents, all_lists)
    return schemas


def _add_block(
    schema: IntentSchema, data: IntentData, intents: Intents, lists: dict[str, SlotList]
) -> None:
    rules = {**intents.expansion_rules, **data.expansion_rules}
    block_lists = {**lists, **data.slot_lists}
    walker = _Walker(rules)
    fixed = {name: _as_values(value) for name, value in (data.slots or {}).items()}
    context_area = _takes_context_area(data)
    schema.context_area |= context_area
    for sentence in data.sentences:
        for combination in walker.combinations(sentence.expression):
            slots = set(combination) | set(fixed)
            if context_area and "area" not in slots:
                slots.add("area")
            schema.combinations.add(frozenset(slots))
    for ref in walker.references:
        values = schema.slots.setdefault(ref.slot_name, SlotValues())
        _add_list(values, block_lists.get(ref.list_name), ref.slot_name in data.wildcard_list_names)
    for name, values_of in fixed.items():
        schema.slots.setdefault(name, SlotValues()).values.update(values_of)
    if context_area:
        schema.slots.setdefault("area", SlotValues())


def _takes_context_area(data: IntentData) -> bool:
    wanted = (data.requires_context or {}).get("area")
    return isinstance(wanted, dict) and bool(wanted.get("slot"))


def _as_values(value: Any) -> set[Any]:
    if isinstance(value, list | tuple | set):
        return {v for v in value if isinstance(v, str | int | float)}
    return {value} if isinstance(value, str | int | float) else set()


def _add_list(values: SlotValues, slot_list: SlotList | None, wildcard: bool) -> None:
    if wildcard or isinstance(slot_list, WildcardSlotList):
        values.free_text = True
    elif isinstance(slot_list, RangeSlotList):
        multiplier = float(slot_list.multiplier) if slot_list.multiplier else 1.0
        values.ranges.add((slot_list.start, slot_list.stop, slot_list.step or 1, multiplier))
    elif isinstance(slot_list, TextSlotList):
        for value in slot_list.values:
            out = value.value_out
            if isinstance(out, float) and out.is_integer():
                out = int(out)
            if isinstance(out, str | int | float):
                values.values.add(out)


def _in_range(value: float, spec: tuple[int, int, int, float]) -> bool:
    start, stop, step, multiplier = spec
    number = value / multiplier
    return (
        float(number).is_integer() and start <= number <= stop and (int(number) - start) % step == 0
    )


class _Walker:
    """The sets of slots one template expression can fill, and the lists it references."""

    def __init__(self, rules: dict[str, Sentence]) -> None:
        self.rules = rules
        self.references: list[ListReference] = []
        self._rule_cache: dict[str, set[frozenset[str]]] = {}

    def combinations(self, expr: Expression) -> set[frozenset[str]]:
        if isinstance(expr, TextChunk):
            return {frozenset()}
        if isinstance(expr, ListReference):
            self.references.append(expr)
            return {frozenset([expr.slot_name])}
        if isinstance(expr, RuleReference):
            return self._rule(expr.rule_name)
        if isinstance(expr, Alternative):
            found = set().union(*(self.combinations(item) for item in expr.items))
            return found | ({frozenset()} if expr.is_optional else set())
        if isinstance(expr, Group):  # a sequence or a permutation: every item, in some order
            found = {frozenset()}
            for item in expr.items:
                options = self.combinations(item)
                found = {a | b for a, b in itertools.product(found, options)}
                if len(found) > MAX_COMBINATIONS:
                    found = set(itertools.islice(found, MAX_COMBINATIONS))
            return found
        raise TypeError(f"unexpected template expression {expr!r}")

    def _rule(self, name: str) -> set[frozenset[str]]:
        if name not in self._rule_cache:
            self._rule_cache[name] = {frozenset()}  # a rule that refers to itself adds nothing
            rule = self.rules.get(name)
            if rule is not None:
                self._rule_cache[name] = self.combinations(rule.expression)
        return self._rule_cache[name]


# --------------------------------------------------------------------------- grammar


def lark_literal(text: str) -> str:
    """A Lark string literal matching exactly `text`."""
    return json.dumps(text, ensure_ascii=False)


def json_literal(value: Any) -> str:
    """A Lark literal matching the compact JSON of `value`."""
    return lark_literal(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


FREE_TEXT = r'/"[^"\\\x00-\x1f]{1,80}"/'


def generator_grammar(
    schemas: dict[str, IntentSchema],
    places: dict[str, Iterable[str]],
    context_area: bool,
    max_intents: int = 3,
) -> str:
    """The Lark grammar of every valid answer: a JSON list of up to `max_intents` intents.

    `places` holds the spoken forms (generator_format.prompt_text) of the home's
    names, areas and floors; `context_area` whether the node has an area of its own.
    """
    rules: dict[str, str] = {}
    for kind in PLACE_SLOTS:
        forms = sorted(set(places.get(kind, ())))
        if kind == "area" and context_area:
            forms.append(HERE)
        rules[f"place_{kind}"] = " | ".join(json_literal(f) for f in forms) or '"\\"\\""'
    rules["free_text"] = FREE_TEXT
    intent_rules: list[str] = []
    for schema in sorted(schemas.values(), key=lambda s: s.name):
        body = _intent_rule(schema, rules, context_area)
        if body:
            rule = f"intent_{len(intent_rules)}"
            rules[rule] = body
            intent_rules.append(rule)
    rules["intent"] = " | ".join(intent_rules)
    more = " ".join(f'("," intent{")?" if i else ""}' for i in range(max_intents - 1))
    closing = ")?" * (max_intents - 2) if max_intents > 1 else ""
    items = f"intent ({more}{closing})?" if max_intents > 1 else "intent"
    lines = [f'start: "[" ({items})? "]"']
    lines += [f"{name}: {body}" for name, body in rules.items()]
    return "\n".join(lines) + "\n"


def _intent_rule(schema: IntentSchema, rules: dict[str, str], context_area: bool) -> str:
    head = lark_literal(f'{{"intent":{json.dumps(schema.name)},"slots":{{')
    alternatives = []
    for combination in sorted(schema.combinations, key=sorted):
        parts = []
        for index, slot in enumerate(sorted(combination)):
            key = lark_literal(("," if index else "") + json.dumps(slot) + ":")
            parts.append(f"{key} ({_value_rule(schema, slot, rules, context_area)})")
        alternatives.append(" ".join([head, *parts, lark_literal("}}")]))
    return " | ".join(f"({a})" for a in alternatives)


def _value_rule(schema: IntentSchema, slot: str, rules: dict[str, str], context_area: bool) -> str:
    values = schema.slots.get(slot, SlotValues(free_text=True))
    options = []
    if slot in PLACE_SLOTS:
        options.append(f"place_{slot}")
        if values.free_text and slot == "name":
            options.append("free_text")
        return " | ".join(options)
    if values.free_text:
        options.append("free_text")
    literals = sorted({json_literal(v) for v in values.values} | _range_literals(values))
    if literals:
        rule = f"values_{len(rules)}"
        rules[rule] = " | ".join(literals)
        options.append(rule)
    if any(_range_size(r) > MAX_ENUMERATED for r in values.ranges):
        options.append(r"/-?[0-9]{1,6}/")
    return " | ".join(options) or "free_text"


def _range_size(spec: tuple[int, int, int, float]) -> int:
    start, stop, step, _multiplier = spec
    return (stop - start) // step + 1


def _range_literals(values: SlotValues) -> set[str]:
    literals: set[str] = set()
    for spec in values.ranges:
        if _range_size(spec) > MAX_ENUMERATED:
            continue
        start, stop, step, multiplier = spec
        for number in range(start, stop + 1, step):
            value = number * multiplier
            literals.add(json_literal(int(value) if float(value).is_integer() else value))
    return literals
