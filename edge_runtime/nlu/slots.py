"""From an intent back to Home Assistant's slots: template examples re-bound to what was said.

The encoder tier knows *what* is asked (the model's intent) and *what about*
(the lexicon's names, numbers, listed values, the model's free text). This
module finds, among the intent's template examples, the one that can say
exactly that, rebuilds it with the person's own names ("turn off the Garage
Light") and lets hassil match it, so that domains, device classes and the
node's area come out exactly as Home Assistant's. An example is never used
when it would drop something said, needs something not said, contradicts the
sentence ("on" for "off"), changes a unit, names a kind of device nobody
mentioned, or when hassil reads it otherwise than meant.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from hassil import Intents, RangeSlotList, RecognizeResult, TextSlotList
from hassil.sample import sample_expression

from edge_runtime.nlu.examples import Example, ExampleIndex, wildcard_lists
from edge_runtime.nlu.lexicon import Lexicon, Reading, Span, word_similarity
from edge_runtime.nlu.rules import HomeMatcher
from edge_runtime.nlu.templates import MARKS, fill_marks
from edge_runtime.nlu.words import is_number, tokenize

log = logging.getLogger(__name__)

TIME_UNITS = frozenset({"hour", "minute", "second"})

CONTENT_LISTS = frozenset({"color", "cover_classes", "color_temperature_names", "brightness_level"})
"""Listed values that carry meaning: an example may not drop them (HA list names are universal)."""
PLACES = ("area", "floor")
EXAMPLES_PER_STRUCTURE = 16
"""Examples re-bound per intent and slot structure, those sharing most words first."""
EXAMPLES_TRIED = 6
"""Rebuilt sentences matched with hassil per intent, best first."""
MATCH_CACHE = 4096
SIMILAR_WORD = 0.8


@dataclass
class Binding:
    """The person's words that an example's slot marks are bound to."""

    reading: Reading
    free_text: list[str] = field(default_factory=list)
    """Free text the model tagged (a list item, a timer's name), in order."""
    used: set[int] = field(default_factory=set)
    next_number: int = 0
    next_free_text: int = 0

    def take(self, kind: str, domains: tuple[str, ...] = ()) -> Span | None:
        """The next unbound span of a kind; for a name, one of the domains the template accepts."""
        for index, span in enumerate(self.reading.spans):
            if index in self.used or span.kind != kind:
                continue
            if domains and span.phrase.domain not in domains:
                continue
            self.used.add(index)
            return span
        return None

    def complete(self, literal: frozenset[str] = frozenset()) -> bool:
        """Everything meaningful the person said found a place in the example.

        A span the example says in its own words counts as placed: the home's to-do
        list called "Shopping List" is what "add milk to the shopping list" says.
        """
        spoken = {
            i
            for i, span in enumerate(self.reading.spans)
            if not span.soft and _counts(span) and not set(span.phrase.tokens) <= literal
        }
        return (
            spoken <= self.used
            and self.next_number == len(self.reading.numbers)
            and self.next_free_text == len(self.free_text)
        )


def _counts(span: Span) -> bool:
    return span.kind in ("name", *PLACES) or span.kind in CONTENT_LISTS


@dataclass(frozen=True)
class Rebuilt:
    """An example re-bound to the person's words, and what it bound names and places to."""

    text: str
    places: dict[str, list[str]]
    bound: int
    """How much of what the person said it uses; an area already said by a name
    ("the ceiling light in the kitchen") does not count, it adds nothing."""
    redundant: int
    """Such areas bound again: fewer is better, the name already says them."""


class SlotFiller:
    """Hassil's slots for an intent and a reading, through the intent's template examples."""

    def __init__(
        self,
        matcher: HomeMatcher,
        lexicon: Lexicon,
        examples: ExampleIndex,
        context_area: str | None,
        variants: dict[str, list[str]],
    ) -> None:
        self.matcher = matcher
        self.lexicon = lexicon
        self.examples = examples
        self.context_area = context_area
        intents = matcher.intents
        self.range_lists = {
            n for n, sl in intents.slot_lists.items() if isinstance(sl, RangeSlotList)
        }
        self.free_lists = wildcard_lists(intents)
        self.list_variants = variants
        """Every way each listed value can be said (see list_variants)."""
        self._matches: dict[tuple[str, str], RecognizeResult | None] = {}
        self._literal_cache: dict[str, frozenset[str]] = {}

    def rebind(self, example: Example, reading: Reading, free_text: list[str]) -> Rebuilt | None:
        """The example's template sentence about the person's own things, or None."""
        binding = Binding(reading, free_text)
        texts: list[str] = []
        for list_name in example.lists:
            text = self._bind_one(binding, list_name, example.name_domains)
            if text is None:
                return None
            texts.append(text)
        if not binding.complete(self._literal_words(example)):
            return None
        rebuilt = fill_marks(example.marked, texts)
        if not self._units_kept(reading, rebuilt):
            return None
        places = {
            kind: [t for lst, t in zip(example.lists, texts, strict=True) if lst == kind]
            for kind in ("name", *PLACES)
        }
        redundant = sum(
            1 for i in binding.used if reading.spans[i].soft and reading.spans[i].kind in PLACES
        )
        return Rebuilt(rebuilt, places, len(example.lists) - redundant, redundant)

    def faithful(self, result: RecognizeResult, rebuilt: Rebuilt) -> bool:
        """hassil read the rebuilt sentence as meant: "the Bedroom lamp" stays an area and a lamp,
        not the entity "Bedroom Lamp"; only the node's own area may appear unasked."""
        for kind, bound in rebuilt.places.items():
            entity = result.entities.get(kind)
            if entity is not None and entity.is_wildcard:
                entity = None  # a timer's free-text "name" is not a home name
            if entity is None:
                if bound:
                    return False
                continue
            value = str(entity.value)
            if bound and value not in bound:
                return False
            if not bound and not (kind == "area" and value == self.context_area):
                return False
        return True

    def _literal_words(self, example: Example) -> frozenset[str]:
        """The words the example says itself, outside its slots (folded)."""
        if example.marked not in self._literal_cache:
            words = self.lexicon.fold(tokenize(MARKS.sub(" ", example.marked)))
            self._literal_cache[example.marked] = frozenset(words)
        return self._literal_cache[example.marked]

    def _literal_generic_words(self, example: Example) -> frozenset[str]:
        """Device words the example says itself ("turn on the lights in {area}": light)."""
        return self._literal_words(example) & self.lexicon.res.generic_words

    def _bind_one(
        self, binding: Binding, list_name: str, name_domains: tuple[str, ...]
    ) -> str | None:
        if list_name == "name" or list_name in PLACES or list_name in CONTENT_LISTS:
            span = binding.take(list_name, name_domains if list_name == "name" else ())
            return span.phrase.value if span else None
        if list_name in self.range_lists:
            if binding.next_number >= len(binding.reading.numbers):
                return None
            binding.next_number += 1
            return binding.reading.numbers[binding.next_number - 1]
        if list_name in self.free_lists:
            if binding.next_free_text >= len(binding.free_text):
                return None
            binding.next_free_text += 1
            return binding.free_text[binding.next_free_text - 1]
        said = f" {' '.join(binding.reading.tokens)} "
        variants = self.list_variants.get(list_name, ())
        exact = next((v for v in variants if f" {v} " in said), None)
        if exact is not None:
            return exact
        # "did I lock the door": a state said in another form of the word
        return next(
            (
                v
                for v in variants
                if " " not in v
                and any(word_similarity(w, v) >= SIMILAR_WORD for w in binding.reading.tokens)
            ),
            None,
        )

    def _units_kept(self, reading: Reading, rebuilt: str) -> bool:
        """ "10 minutes" must not come back as "10 seconds": every said unit follows its number,
        and a number said without a unit does not become a duration ("a timer four 10 minutes"
        is no 4-hour timer)."""
        tokens = tokenize(rebuilt)
        for number, unit in zip(reading.numbers, reading.units, strict=True):
            positions = [i for i, t in enumerate(tokens) if t == str(number)]
            units_there = {self.lexicon.unit_after(tokens, i) for i in positions}
            if unit is not None and unit not in units_there:
                return False
            if unit is None and positions and units_there <= TIME_UNITS:
                return False
        return True

    def _fits(self, signature: tuple[str, ...], reading: Reading, free_text: list[str]) -> bool:
        """Could examples needing these lists use everything the person said? (cheap pre-check)"""
        needed = Counter(signature)
        spans = Counter(s.kind for s in reading.spans if _counts(s))
        hard = Counter(s.kind for s in reading.spans if _counts(s) and not s.soft)
        numbers = sum(n for kind, n in needed.items() if kind in self.range_lists)
        free = sum(n for kind, n in needed.items() if kind in self.free_lists)
        for kind in ("name", *PLACES, *CONTENT_LISTS):
            if needed[kind] > spans[kind]:
                return False
            if hard[kind] > needed[kind] and kind not in ("name", *CONTENT_LISTS):
                return False  # names and listed values may be said by the example itself
        return numbers == len(reading.numbers) and free == len(free_text)

    def fill(
        self, intent: str, reading: Reading, words: list[str], free_text: list[str]
    ) -> RecognizeResult | None:
        """Hassil's slots for `intent`, from the examples of it that fit the sentence best.

        Examples are ranked by how many of the person's words they say (folded:
        "lamps" says "light"); one that contradicts the person ("on" for "off")
        or leaves most of what they said unexplained is never used.
        """
        said_words = set(self.lexicon.fold(words))
        own_words = self.lexicon.res.intent_polarity.get(intent, (frozenset(), frozenset()))[0]
        free_words = {w for text in free_text for w in text.split()}
        content = [w for w in self._content_words(reading) if w not in free_words]
        # The examples of each slot structure that share most words with the sentence, so that
        # "is the curtain open" meets the examples that bind the state, not only the many
        # that merely share "is the".
        fitting = [
            example
            for signature, group in self.examples.groups(intent).items()
            if self._fits(signature, reading, free_text)
            for example in sorted(group, key=lambda e: self._says(said_words, e), reverse=True)[
                :EXAMPLES_PER_STRUCTURE
            ]
        ]
        ranked: list[tuple[int, int, int, int, Rebuilt]] = []
        seen: set[str] = set()
        for example in fitting:
            if not self._literal_generic_words(example) <= said_words:
                continue  # the example names a kind of device the person never mentioned
            rebuilt = self.rebind(example, reading, free_text)
            if (
                rebuilt is None
                or rebuilt.text in seen
                or self.contradicts(said_words, rebuilt.text)
            ):
                continue
            seen.add(rebuilt.text)
            explained = self._explained(content, rebuilt.text)
            if not (rebuilt.bound or explained or set(content) & own_words):
                continue  # nothing the person said ties them to this example ("un" alone)
            # Most of what the person said bound first, then most of their words said back.
            says = self._says(said_words, example)
            ranked.append((rebuilt.bound, -rebuilt.redundant, explained, says, rebuilt))
        ranked.sort(key=lambda r: r[:4], reverse=True)
        for *_rank, rebuilt in ranked[:EXAMPLES_TRIED]:
            result = self._match(rebuilt.text, intent)
            if result is not None and self.faithful(result, rebuilt):
                log.debug("encoder: rebuilt %r", rebuilt.text)
                return result
        return None

    def _says(self, said_words: set[str], example: Example) -> int:
        return len(said_words & set(self.lexicon.fold(example.words)))

    def _content_words(self, reading: Reading) -> list[str]:
        """The person's meaningful words outside names and numbers, folded."""
        res = self.lexicon.res
        in_names = {
            i
            for s in reading.spans
            if not (s.soft and s.kind == "name")
            for i in range(s.start, s.end)
        }
        return list(
            self.lexicon.fold(
                [
                    t
                    for i, t in enumerate(reading.tokens)
                    if i not in in_names and not is_number(t) and t not in res.stop_words
                ]
            )
        )

    def _explained(self, content: list[str], rebuilt: str) -> int:
        said_back = set(self.lexicon.fold(tokenize(rebuilt)))
        return sum(word in said_back for word in content)

    def contradicts(self, said: set[str], rebuilt: str) -> bool:
        """The example says one side of an opposite pair, the person only the other side."""
        words = set(tokenize(rebuilt))
        for side_a, side_b in self.lexicon.res.opposites:
            for ours, theirs in ((side_a, side_b), (side_b, side_a)):
                if said & ours and not said & theirs and words & theirs and not words & ours:
                    return True
        return False

    def _match(self, rebuilt: str, intent_name: str) -> RecognizeResult | None:
        key = (rebuilt, intent_name)
        if key not in self._matches:
            if len(self._matches) > MATCH_CACHE:
                self._matches.clear()
            self._matches[key] = self.matcher.match(rebuilt, intent_name)
        return self._matches[key]


def list_variants(intents: Intents) -> dict[str, list[str]]:
    """Every way a listed value can be said ("blind", "blinds" …), longest first."""
    variants: dict[str, list[str]] = {}
    for name, slot_list in intents.slot_lists.items():
        if isinstance(slot_list, TextSlotList):
            said = {
                " ".join(tokenize(text))
                for value in slot_list.values
                for text in sample_expression(value.text_in)
            }
            variants[name] = sorted((s for s in said if s), key=len, reverse=True)
    return variants
