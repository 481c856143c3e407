"""Tier 2, encoder: a fine-tuned int8 MiniLM says what is asked; hassil fills the slots.

How one sentence is understood (docs/cascade.md has worked examples):

1. The lexicon finds what the sentence refers to: entities, areas, floors
   (tolerating folded nouns, missing words and speech-recognition slips),
   numbers (spelled or not) and the templates' listed values (colours …).
   A negated or ambiguous sentence stops here: no action.
2. Those words become placeholders ("kill the garage lamp" -> "kill the
   reading light") and the classifier, all-MiniLM-L6-v2 fine-tuned on template
   sentences, our rewrites and non-commands (training/), gives a probability
   per intent and for `none`.
3. For the likely intents, the template examples of that intent are re-bound
   to the sentence's own names and numbers ("turn off the Garage Light") and
   hassil matches the rebuilt sentence against that intent only, so the slots
   are exactly Home Assistant's. An example that would drop something the
   person said, or needs something they did not say, is never used.
4. The confidence is the classifier's probability; below the cascade's
   threshold the answer is "not understood".
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from hassil import Intents, RangeSlotList, RecognizeResult, TextSlotList
from hassil.sample import sample_expression

from edge_runtime.inference.catalog import load_catalog, models_dir, verify_file
from edge_runtime.inference.classifier import TextClassifier, labels_of
from edge_runtime.inference.encoder import load_tokenizer
from edge_runtime.inference.session import create_session
from edge_runtime.messages import Intent, TextRequest
from edge_runtime.nlu import examples as examples_module
from edge_runtime.nlu.base import NluContext, NluError, register_tier
from edge_runtime.nlu.examples import Example, ExampleIndex
from edge_runtime.nlu.lexicon import Lexicon, Phrase, Reading, Span, tokenize
from edge_runtime.nlu.rules import HomeMatcher, to_intent
from edge_runtime.nlu.templates import fill_marks

log = logging.getLogger(__name__)

NONE = "none"
"""The classifier's label for what is not a command."""
NOT_A_COMMAND = "NotACommand"
"""Our templates of statements, negations and chit-chat (trained as `none`)."""
CONTENT_LISTS = frozenset(
    {"color", "cover_classes", "color_temperature_names", "media_class", "brightness_level"}
)
"""Listed values that carry meaning: an example may not drop them (HA list names are universal)."""
PLACES = ("area", "floor")
INTENTS_TRIED = 3
MIN_INTENT_PROBABILITY = 0.05
EXAMPLES_RANKED = 60
"""Examples re-bound per intent, the ones sharing most words with the sentence first."""
EXAMPLES_TRIED = 6
"""Rebuilt sentences matched with hassil per intent, best explained first."""
MIN_EXPLAINED = 0.0
"""Share of the person's meaningful words the rebuilt sentence must say ("paws the tv" is not
"turn on the lights")."""
MATCH_CACHE = 4096


@dataclass
class Binding:
    """The person's words that an example's slot marks are bound to."""

    reading: Reading
    used: set[int] = field(default_factory=set)
    next_number: int = 0

    def take(self, kind: str) -> Span | None:
        for index, span in enumerate(self.reading.spans):
            if index not in self.used and span.kind == kind:
                self.used.add(index)
                return span
        return None

    def complete(self) -> bool:
        """Everything meaningful the person said found a place in the example."""
        spoken = {i for i, span in enumerate(self.reading.spans) if not span.soft and _counts(span)}
        return spoken <= self.used and self.next_number == len(self.reading.numbers)


def _counts(span: Span) -> bool:
    return span.kind in ("name", *PLACES) or span.kind in CONTENT_LISTS


class EncoderTier:
    """Paraphrases: intent from the fine-tuned encoder, slots from the home's lists via hassil."""

    name = "encoder"

    def __init__(self, context: NluContext, model_id: str, cache_dir: Path) -> None:
        self.node_id = context.node_id
        paraphrases = examples_module.paraphrase_templates(context.language)
        self.matcher = HomeMatcher(context.home, context.language, paraphrases)
        intents = self.matcher.intents
        self.range_lists = {
            n for n, sl in intents.slot_lists.items() if isinstance(sl, RangeSlotList)
        }
        self.list_variants = _list_variants(intents)
        self.lexicon = Lexicon(context.home, context.language, self._content_phrases())
        self.device_class = {
            e.name: e.attributes.get("device_class") for e in context.home.entities
        }
        self.classifier = _load_classifier(model_id, context)
        key = examples_module.cache_key(context.language, self.lexicon.res, paraphrases)
        self.examples: ExampleIndex = examples_module.load_or_draw(
            cache_dir / f"examples-{key}.json", intents, self.lexicon.res
        )
        self._matches: dict[tuple[str, str], RecognizeResult | None] = {}

    def _content_phrases(self) -> Iterable[Phrase]:
        for list_name, variants in self.list_variants.items():
            if list_name in CONTENT_LISTS:
                for said in variants:
                    yield Phrase(list_name, tuple(tokenize(said)), said)

    # --- from the person's words to the classifier's input ---

    def delexicalize(self, reading: Reading) -> str:
        """The sentence with its names replaced by the placeholders the classifier learnt."""
        words = list(reading.tokens)
        for span in sorted(reading.spans, key=lambda s: -s.start):
            if not span.soft:  # "the tv" stays as said: templates say such words themselves
                words[span.start : span.end] = [self._placeholder(span)]
        return " ".join(words)

    def _placeholder(self, span: Span) -> str:
        placeholders = self.lexicon.res.placeholders
        if span.kind == "name":
            domain = span.phrase.domain or ""
            device_class = self.device_class.get(span.phrase.value)
            key = f"{domain}.{device_class}" if device_class else domain
            return placeholders.get(key) or placeholders.get(domain, "device")
        if span.kind in PLACES:
            return placeholders[span.kind]
        return " ".join(span.phrase.tokens)

    # --- from an intent back to Home Assistant's slots ---

    def rebind(self, example: Example, reading: Reading) -> str | None:
        """The example's template sentence about the person's own things, or None."""
        binding = Binding(reading)
        texts: list[str] = []
        for list_name in example.lists:
            text = self._bind_one(binding, list_name)
            if text is None:
                return None
            texts.append(text)
        if not binding.complete():
            return None
        rebuilt = fill_marks(example.marked, texts)
        return rebuilt if self._units_kept(reading, rebuilt) else None

    def _bind_one(self, binding: Binding, list_name: str) -> str | None:
        if list_name == "name" or list_name in PLACES or list_name in CONTENT_LISTS:
            # Any name the person said: hassil checks that its domain suits the template.
            span = binding.take(list_name)
            return span.phrase.value if span else None
        if list_name in self.range_lists:
            if binding.next_number >= len(binding.reading.numbers):
                return None
            binding.next_number += 1
            return str(binding.reading.numbers[binding.next_number - 1])
        said = f" {' '.join(binding.reading.tokens)} "
        variants = self.list_variants.get(list_name, ())
        return next((v for v in variants if f" {v} " in said), None)

    def _units_kept(self, reading: Reading, rebuilt: str) -> bool:
        """ "10 minutes" must not come back as "10 seconds": every said unit follows its number."""
        tokens = tokenize(rebuilt)
        for number, unit in zip(reading.numbers, reading.units, strict=True):
            if unit is None:
                continue
            positions = [i for i, t in enumerate(tokens) if t == str(number)]
            if not any(self.lexicon.unit_after(tokens, i) == unit for i in positions):
                return False
        return True

    def _fits(self, signature: tuple[str, ...], reading: Reading) -> bool:
        """Could examples needing these lists use everything the person said? (cheap pre-check)"""
        needed = Counter(signature)
        spans = Counter(s.kind for s in reading.spans if _counts(s))
        hard = Counter(s.kind for s in reading.spans if _counts(s) and not s.soft)
        numbers = sum(n for kind, n in needed.items() if kind in self.range_lists)
        for kind in ("name", *PLACES, *CONTENT_LISTS):
            if not hard[kind] <= needed[kind] <= spans[kind]:
                return False
        return numbers == len(reading.numbers)

    def fill(self, intent: str, reading: Reading, said: str) -> RecognizeResult | None:
        """Hassil's slots for `intent`, from the examples of it that fit the sentence best.

        Examples are ranked by how many of the person's words they say (folded:
        "lamps" says "light"); one that contradicts the person ("on" for "off")
        or leaves most of what they said unexplained is never used.
        """
        said_words = set(self.lexicon.fold(said.split()))
        content = self._content_words(reading)
        fitting = [
            e
            for signature, group in self.examples.groups(intent).items()
            if self._fits(signature, reading)
            for e in group
        ]
        fitting.sort(key=lambda e: self._says(said_words, e), reverse=True)
        ranked: list[tuple[int, float, str]] = []
        seen: set[str] = set()
        for example in fitting[:EXAMPLES_RANKED]:
            rebuilt = self.rebind(example, reading)
            if rebuilt is None or rebuilt in seen or self.contradicts(said_words, rebuilt):
                continue
            seen.add(rebuilt)
            explained = self._explained(content, rebuilt)
            if explained < MIN_EXPLAINED * len(content):
                continue
            ranked.append((explained, self._says(said_words, example), rebuilt))
        for _explained, _says, rebuilt in sorted(ranked, reverse=True)[:EXAMPLES_TRIED]:
            result = self._match(rebuilt, intent)
            if result is not None:
                log.debug("encoder: rebuilt %r", rebuilt)
                return result
        return None

    def _says(self, said_words: set[str], example: Example) -> int:
        return len(said_words & set(self.lexicon.fold(example.words)))

    def _content_words(self, reading: Reading) -> list[str]:
        """The person's meaningful words outside names and numbers, folded."""
        res = self.lexicon.res
        in_names = {i for s in reading.spans if not s.soft for i in range(s.start, s.end)}
        return list(
            self.lexicon.fold(
                [
                    t
                    for i, t in enumerate(reading.tokens)
                    if i not in in_names and not t[0].isdigit() and t not in res.stop_words
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

    def recognize(self, request: TextRequest) -> Intent | None:
        reading = self.lexicon.read(request.text)
        if reading.negated or reading.ambiguous:
            log.debug("encoder: %r is negated or ambiguous; no action", request.text)
            return None
        said = self.delexicalize(reading)
        ranked = self.classifier.probabilities(said)
        log.debug("encoder: %r -> %r -> %s", request.text, said, ranked[:3])
        for label, probability in ranked[:INTENTS_TRIED]:
            if label == NONE or probability < MIN_INTENT_PROBABILITY:
                return None
            result = self.fill(label, reading, said)
            if result is not None:
                intent = to_intent(result, probability, self.name, self.node_id)
                return dataclasses.replace(intent, confidence=probability)
        return None


def _list_variants(intents: Intents) -> dict[str, list[str]]:
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


def _load_classifier(model_id: str, context: NluContext) -> TextClassifier:
    catalog = load_catalog()
    try:
        model = catalog.get(model_id)
    except KeyError as exc:
        raise NluError(str(exc.args[0])) from None
    if model.task != "sequence-classification":
        raise NluError(f"model {model_id} is a {model.task} model, not an intent classifier")
    session = create_session(model, context.profile).session
    directory = models_dir()
    tokenizer = load_tokenizer(verify_file(directory, model.file("tokenizer.json")))
    labels = labels_of(verify_file(directory, model.file("config.json")))
    return TextClassifier(session, tokenizer, labels)


def default_cache_dir() -> Path:
    base = os.environ.get("EDGE_RUNTIME_CACHE") or os.environ.get("XDG_CACHE_HOME")
    return Path(base) / "edge-runtime" if base else Path.home() / ".cache" / "edge-runtime"


@register_tier("encoder")
def _build_encoder(context: NluContext) -> EncoderTier:
    model_id = context.profile.tiers.encoder.model
    if model_id is None:
        raise NluError(f"profile {context.profile.id} enables the encoder tier but names no model")
    return EncoderTier(context, model_id, context.cache_dir or default_cache_dir())
