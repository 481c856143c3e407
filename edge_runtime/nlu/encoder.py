"""Tier 2, encoder: understand paraphrases by nearest template, then let hassil fill the slots.

How one sentence is understood (docs/cascade.md has worked examples):

1. The lexicon finds what the sentence refers to: entities, areas, floors
   (tolerating folded nouns, missing words and speech-recognition slips),
   numbers (spelled or not) and the templates' listed values (colours …).
2. Those words are replaced by placeholders ("kill the garage lamp" becomes
   "kill the reading light") and the int8 MiniLM encoder embeds the result.
3. The nearest examples of the bank (template sentences about placeholder
   things) are tried in order: each is re-bound to the sentence's own names and
   numbers ("turn off the Garage Light"), and hassil matches that rebuilt
   sentence against the example's intent only. The first that matches wins.
   An example that would drop something the person said, or that needs
   something they did not say, is skipped: it would act on the wrong thing.
4. The confidence is a logistic calibration of the similarity and its margin
   over the best example of another intent (docs/cascade.md: how it was fit).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from hassil import Intents, RangeSlotList, RecognizeResult, TextSlotList
from hassil.sample import sample_expression

from edge_runtime.inference.catalog import load_catalog, models_dir, verify_file
from edge_runtime.inference.encoder import SentenceEncoder, load_tokenizer
from edge_runtime.inference.session import create_session
from edge_runtime.messages import Intent, TextRequest
from edge_runtime.nlu import bank as bank_module
from edge_runtime.nlu.base import NluContext, NluError, register_tier
from edge_runtime.nlu.lexicon import Lexicon, Phrase, Reading, Span, tokenize
from edge_runtime.nlu.rules import HomeMatcher, to_intent
from edge_runtime.nlu.templates import fill_marks

log = logging.getLogger(__name__)

NEIGHBOURS = 32
CANDIDATES = 4
"""Examples that fit (bind and match) looked at before deciding."""
OVERLAP_WEIGHT = 0.1
UNEXPLAINED_WEIGHT = 0.2
MAX_MARGIN = 0.3
MATCH_CACHE = 4096
CONTENT_LISTS = frozenset(
    {"color", "cover_classes", "color_temperature_names", "media_class", "brightness_level"}
)
"""Listed values that carry meaning: an example may not drop them (HA list names are universal)."""
PLACES = ("area", "floor")
NOT_A_COMMAND = "NotACommand"
"""Our examples of statements, negations and chit-chat: the nearest being one means "no action"."""
CALIBRATION = (14.0, 6.0, -6.0, -11.2)
"""Logistic weights on similarity, margin and unexplained words, and the bias."""


@dataclass
class Binding:
    """The person's words that an example's slot marks are bound to."""

    reading: Reading
    used: set[int] = field(default_factory=set)
    next_number: int = 0

    def take(self, kind: str, accept: str | None = None) -> Span | None:
        for index, span in enumerate(self.reading.spans):
            if index in self.used or span.kind != kind:
                continue
            if accept is not None and accept != span.phrase.value:
                continue
            self.used.add(index)
            return span
        return None

    def complete(self) -> bool:
        """Everything meaningful the person said found a place in the example."""
        spoken = {
            i
            for i, span in enumerate(self.reading.spans)
            if not span.soft and (span.kind in ("name", *PLACES) or span.kind in CONTENT_LISTS)
        }
        return spoken <= self.used and self.next_number == len(self.reading.numbers)


class EncoderTier:
    """Paraphrases by similarity to the expanded templates; slots from the home's lists."""

    name = "encoder"

    def __init__(self, context: NluContext, model_id: str, cache_dir: Path) -> None:
        self.node_id = context.node_id
        extra_yaml = bank_module.paraphrase_templates(context.language)
        self.matcher = HomeMatcher(context.home, context.language, extra_yaml)
        intents = self.matcher.intents
        self.range_lists = {
            name for name, sl in intents.slot_lists.items() if isinstance(sl, RangeSlotList)
        }
        self.list_variants = _list_variants(intents)
        self.lexicon = Lexicon(context.home, context.language, self._content_phrases())
        self.placeholders = self.lexicon.res.placeholders
        self.device_class = {
            e.name: e.attributes.get("device_class") for e in context.home.entities
        }
        model = load_catalog().get(model_id)
        session = create_session(model, context.profile).session
        tokenizer = load_tokenizer(verify_file(models_dir(), model.file("tokenizer.json")))
        self.encoder = SentenceEncoder(session, tokenizer)
        self._matches: dict[tuple[str, str], RecognizeResult | None] = {}
        key = bank_module.cache_key(
            context.language, model.file("model.onnx").sha256, self.lexicon.res, extra_yaml
        )
        self.bank = bank_module.load_or_build(
            cache_dir / f"encoder-bank-{key}.npz",
            lambda: bank_module.draw_examples(intents, self.lexicon.res),
            self.encoder,
        )

    def _content_phrases(self) -> Iterable[Phrase]:
        for list_name, variants in self.list_variants.items():
            if list_name in CONTENT_LISTS:
                for said in variants:
                    yield Phrase(list_name, tuple(tokenize(said)), said)

    # --- recognition ---

    def delexicalize(self, reading: Reading) -> str:
        """The sentence with its names replaced by the bank's placeholders."""
        words = list(reading.tokens)
        for span in sorted(reading.spans, key=lambda s: -s.start):
            if not span.soft:  # "the tv" stays as said: examples say such words themselves
                words[span.start : span.end] = [self._placeholder(span)]
        return " ".join(words)

    def unexplained(self, reading: Reading, rebuilt: str) -> float:
        """Share of the person's meaningful words that the rebuilt sentence does not say.

        "turn on the christmas tree lights" rebuilt as "turn on the lights" leaves
        "christmas tree" unexplained: the example is about something else.
        """
        res = self.lexicon.res
        in_spans = {i for s in reading.spans if not s.soft for i in range(s.start, s.end)}
        content = [
            t
            for i, t in enumerate(reading.tokens)
            if i not in in_spans
            and not t[0].isdigit()
            and t not in res.stop_words
            and t not in res.fillers
        ]
        said_back = set(self.lexicon.fold(tokenize(rebuilt)))
        missing = [t for t in self.lexicon.fold(content) if t not in said_back]
        return len(missing) / max(1, len(content))

    def _placeholder(self, span: Span) -> str:
        if span.kind == "name":
            domain = span.phrase.domain or ""
            device_class = self.device_class.get(span.phrase.value)
            key = f"{domain}.{device_class}" if device_class else domain
            return self.placeholders.get(key) or self.placeholders.get(domain, "device")
        if span.kind in PLACES:
            return self.placeholders[span.kind]
        return " ".join(span.phrase.tokens)

    def rebind(self, example: bank_module.Example, reading: Reading) -> str | None:
        """The example's template sentence about the person's own things, or None."""
        binding = Binding(reading)
        texts: list[str] = []
        for list_name, fill in zip(example.lists, example.fills, strict=True):
            text = self._bind_one(binding, list_name, fill)
            if text is None:
                return None
            texts.append(text)
        if not binding.complete():
            return None
        rebuilt = fill_marks(example.marked, texts)
        return rebuilt if self._units_kept(reading, rebuilt) else None

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

    def _bind_one(self, binding: Binding, list_name: str, fill: str) -> str | None:
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

    def contradicts(self, said: set[str], example_text: str) -> bool:
        """The example says one side of an opposite pair, the person only the other side."""
        words = set(tokenize(example_text))
        for side_a, side_b in self.lexicon.res.opposites:
            for ours, theirs in ((side_a, side_b), (side_b, side_a)):
                if said & ours and not said & theirs and words & theirs and not words & ours:
                    return True
        return False

    def recognize(self, request: TextRequest) -> Intent | None:
        reading = self.lexicon.read(request.text)
        if reading.negated or reading.ambiguous:
            log.debug("encoder: %r is negated or ambiguous; no action", request.text)
            return None
        said = self.delexicalize(reading)
        said_words = set(said.split())
        neighbours = self.bank.nearest(self.encoder.embed([said])[0], NEIGHBOURS)
        candidates: list[Candidate] = []
        for similarity, example in neighbours:
            text = fill_marks(example.marked, example.fills)
            if example.intent == NOT_A_COMMAND:
                if not candidates:
                    log.debug("encoder: %r is nearest a non-command: %r", request.text, text)
                    return None
                candidates.append(Candidate(similarity, similarity, example, None, 0.0))
                continue
            if self.contradicts(said_words, text):
                continue
            rebuilt = self.rebind(example, reading)
            result = self._match(rebuilt, example.intent) if rebuilt else None
            if result is None:
                continue
            unexplained = self.unexplained(reading, rebuilt or "")
            score = (
                similarity
                + OVERLAP_WEIGHT * _overlap(said_words, set(tokenize(text)))
                - UNEXPLAINED_WEIGHT * unexplained
            )
            candidates.append(Candidate(score, similarity, example, result, unexplained))
            if len(candidates) >= CANDIDATES:
                break
        return self._decide(request, candidates)

    def _match(self, rebuilt: str, intent_name: str) -> RecognizeResult | None:
        key = (rebuilt, intent_name)
        if key not in self._matches:
            if len(self._matches) > MATCH_CACHE:
                self._matches.clear()
            self._matches[key] = self.matcher.match(rebuilt, intent_name)
        return self._matches[key]

    def _decide(self, request: TextRequest, candidates: list[Candidate]) -> Intent | None:
        """The best-scored candidate, its confidence from the margin over a different answer."""
        answers = [c for c in candidates if c.result is not None]
        if not answers:
            return None
        best = max(answers, key=lambda c: c.score)
        assert best.result is not None
        intent = to_intent(best.result, 0.0, self.name, self.node_id)
        rivals = [
            c.similarity
            for c in candidates
            if c.result is None or _answer(c.result) != _answer(best.result)
        ]
        margin = best.similarity - max(rivals, default=best.similarity - MAX_MARGIN)
        confidence = calibrate(best.similarity, margin, best.unexplained)
        log.debug(
            "encoder: %r -> %s %s (similarity %.3f, margin %.3f, confidence %.2f)",
            request.text,
            intent.name,
            intent.slot_values(),
            best.similarity,
            margin,
            confidence,
        )
        return dataclasses.replace(intent, confidence=confidence)


@dataclass(frozen=True)
class Candidate:
    score: float
    similarity: float
    example: bank_module.Example
    result: RecognizeResult | None
    """None for an example of a non-command."""
    unexplained: float


def _answer(result: RecognizeResult) -> tuple[str, tuple[tuple[str, str], ...]]:
    slots = tuple(sorted((name, str(e.value)) for name, e in result.entities.items()))
    return result.intent.name, slots


def _overlap(said: set[str], example: set[str]) -> float:
    """Share of words in common: among equally close examples, prefer the one worded alike."""
    return len(said & example) / max(1, len(said | example))


def calibrate(similarity: float, margin: float, unexplained: float) -> float:
    """Probability that the answer is right, from a logistic fit (see docs/cascade.md)."""
    w_similarity, w_margin, w_unexplained, bias = CALIBRATION
    z = w_similarity * similarity + w_margin * margin + w_unexplained * unexplained + bias
    return 1.0 / (1.0 + math.exp(-z))


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


def default_cache_dir() -> Path:
    base = os.environ.get("EDGE_RUNTIME_CACHE") or os.environ.get("XDG_CACHE_HOME")
    return Path(base) / "edge-runtime" if base else Path.home() / ".cache" / "edge-runtime"


@register_tier("encoder")
def _build_encoder(context: NluContext) -> EncoderTier:
    model_id = context.profile.tiers.encoder.model
    if model_id is None:
        raise NluError(f"profile {context.profile.id} enables the encoder tier but names no model")
    return EncoderTier(context, model_id, context.cache_dir or default_cache_dir())
