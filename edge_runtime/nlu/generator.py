"""Tier 3: a small causal language model writes the intents, under a grammar of the home.

Asked when the cheaper tiers have nothing confident, or when a sentence may
hold several commands (`Cascade`). The model reads the utterance and writes a
JSON list of intents (generator_format); decoding is constrained by a Lark
grammar built from Home Assistant's templates and this home's names
(intent_schema), so the answer always parses, names a known intent with slots
it accepts, and names only things that exist. The tier then maps the names as
said to the home's own (an alias to its entity, `@here` to the node's area)
and checks every value once more.

Confidence: the probability the model gave its own answer, token by token,
before the grammar's mask (`Generation.probability`). A model that wanted to
write something the grammar forbids ends with a low figure, so a constrained
but unlikely answer is not mistaken for a sure one. Every call is bounded by a
token budget and a deadline; an answer cut short is "not understood".
"""

from __future__ import annotations

import json
import logging
import time
import zlib
from dataclasses import dataclass
from typing import Any

from edge_runtime.home import Home
from edge_runtime.inference.catalog import models_dir
from edge_runtime.inference.generator import (
    Budget,
    Generation,
    GenerationError,
    Guidance,
    TextGenerator,
)
from edge_runtime.messages import Intent, SlotValue, TextRequest
from edge_runtime.nlu.base import NluContext, NluError, catalog_model, register_tier
from edge_runtime.nlu.generator_format import HERE, PLACE_SLOTS, prompt_text
from edge_runtime.nlu.intent_schema import IntentSchema, generator_grammar, intent_schemas
from edge_runtime.nlu.rules import home_slot_lists, load_language

log = logging.getLogger(__name__)

MAX_INTENTS = 3
"""Commands in one sentence; more is rare in speech and costs tokens."""
MAX_NEW_TOKENS = 160
DEADLINE_S = 1.0
INTENT_INSTRUCTIONS = (
    "Write the smart-home commands of the user's sentence as a JSON list of Home Assistant "
    'intents, [{"intent": ..., "slots": {...}}], names as the user said them; [] when the '
    "sentence commands nothing."
)
"""The system turn of an instruct model asked for intents (the grammar holds the format)."""
ANSWER_INSTRUCTIONS = (
    "You are the voice assistant of a home, running offline on a small device. "
    "Answer the user in one or two short sentences."
)
ANSWER_BUDGET = Budget(max_new_tokens=64, deadline_s=3.0, stop=("\n\n",))
ANSWER_TOP_P = 0.9
"""Words are sampled (greedy decoding of a small model loops), seeded by the request id, so
the same request gets the same answer."""


@dataclass(frozen=True)
class Places:
    """The home's names as said (lower case) -> the name Home Assistant knows, per slot."""

    spoken: dict[str, dict[str, str]]
    context_area: str | None

    @classmethod
    def of(cls, home: Home) -> Places:
        spoken: dict[str, dict[str, str]] = {"name": {}, "area": {}, "floor": {}}
        for entity in home.entities:
            if entity.is_exposed:
                for said in (entity.name, *entity.aliases):
                    spoken["name"].setdefault(prompt_text(said), entity.name)
        for area in home.areas:
            for said in (area.name, *area.aliases):
                spoken["area"].setdefault(prompt_text(said), area.name)
        for floor in home.floors:
            for said in (floor.name, *floor.aliases):
                spoken["floor"].setdefault(prompt_text(said), floor.name)
        return cls(spoken, home.context_area_name)

    def resolve(self, slot: str, said: str, free_text: bool) -> tuple[str, str] | None:
        """(value, words) for a place as the model wrote it, or None if it names nothing here."""
        if slot == "area" and said == HERE:
            return (self.context_area, "") if self.context_area else None
        known = self.spoken[slot].get(said)
        if known is not None:
            return known, said
        return (said, said) if free_text else None


class GeneratorTier:
    """Utterance -> up to MAX_INTENTS intents, valid by construction."""

    name = "generator"

    def __init__(self, context: NluContext, generator: TextGenerator) -> None:
        intents = load_language(context.language)
        self.schemas = intent_schemas(intents, home_slot_lists(context.home))
        self.intent_names = frozenset(self.schemas)
        self.places = Places.of(context.home)
        self.grammar = generator_grammar(
            self.schemas,
            {slot: list(forms) for slot, forms in self.places.spoken.items()},
            context_area=self.places.context_area is not None,
            max_intents=MAX_INTENTS,
        )
        self.generator = generator
        self.node_id = context.node_id
        self.budget = Budget(MAX_NEW_TOKENS, DEADLINE_S)
        self._warm_up()

    def _warm_up(self) -> None:
        """llguidance compiles the grammar on its first use (~150 ms here): pay it now, not
        on the first command."""
        started = time.perf_counter()
        prompt = self.generator.prompt("turn on the lights", INTENT_INSTRUCTIONS)
        guidance = Guidance("lark_grammar", self.grammar)
        try:
            self.generator.generate(prompt, Budget(max_new_tokens=2), guidance)
        except GenerationError as exc:
            raise NluError(f"the generator refuses this home's grammar: {exc}") from None
        log.info(
            "generator %s ready: grammar of %d intents, %d characters, compiled in %.0f ms",
            self.generator.folder.name,
            len(self.schemas),
            len(self.grammar),
            (time.perf_counter() - started) * 1000,
        )

    def recognize(self, request: TextRequest) -> Intent | None:
        intents = self.recognize_all(request)
        return intents[0] if intents else None

    def recognize_all(self, request: TextRequest) -> list[Intent]:
        """Every command the sentence gives, in order; empty when none or not understood."""
        prompt = self.generator.prompt(request.text, INTENT_INSTRUCTIONS)
        try:
            generation = self.generator.generate(
                prompt, self.budget, Guidance("lark_grammar", self.grammar)
            )
        except GenerationError as exc:
            log.error("generator: %s", exc)
            return []
        log.debug(
            "generator: %r -> %s (%s, p=%.3f, %d tokens, %.1f+%.1f ms)",
            request.text,
            generation.text,
            generation.finish,
            generation.probability,
            generation.tokens,
            generation.prefill_ms,
            generation.decode_ms,
        )
        return self.read(generation, request.text)

    @property
    def answers_freely(self) -> bool:
        """An instruct model (not our intent model) can answer a free question in words."""
        return self.generator.chat_model

    def answer_freely(self, request: TextRequest) -> str | None:
        """A short answer in words to a question no intent covers, or None."""
        if not self.answers_freely:
            return None
        prompt = self.generator.prompt(request.text, ANSWER_INSTRUCTIONS)
        try:
            seed = zlib.crc32(request.id.encode()) % 2**31  # genai takes a 32-bit seed
            generation = self.generator.generate(
                prompt, ANSWER_BUDGET, sample_seed=seed, top_p=ANSWER_TOP_P
            )
        except GenerationError as exc:
            log.error("generator: %s", exc)
            return None
        return generation.text.strip() or None

    def read(self, generation: Generation, text: str | None = None) -> list[Intent]:
        """The intents of a complete answer; an answer cut short, naming nothing here, or
        (given the sentence `text`) writing words the sentence does not say, is none."""
        if generation.finish != "eos":
            return []
        if text is not None and not copied_from(generation.text, prompt_text(text)):
            log.debug("generator: %s writes words %r does not say", generation.text, text)
            return []
        try:
            written = json.loads(generation.text)
        except json.JSONDecodeError:
            return []
        intents = [self._intent(item, generation.probability) for item in written]
        if any(intent is None for intent in intents):
            return []
        return [intent for intent in intents if intent is not None]

    def _intent(self, item: Any, confidence: float) -> Intent | None:
        if not isinstance(item, dict) or not isinstance(item.get("slots"), dict):
            return None
        schema: IntentSchema | None = self.schemas.get(str(item.get("intent")))
        if schema is None or not schema.accepts(item["slots"]):
            return None
        slots: dict[str, SlotValue] = {}
        for name, value in item["slots"].items():
            if name in PLACE_SLOTS:
                free = schema.slots.get(name) is not None and schema.slots[name].free_text
                place = self.places.resolve(name, str(value), free)
                if place is None:
                    return None
                slots[name] = SlotValue(place[0], place[1] or place[0])
            else:
                slots[name] = SlotValue(value, str(value))
        return Intent(schema.name, slots, confidence, self.name, self.node_id)


def copied_from(answer: str, said: str) -> bool:
    """Whether every string the answer writes is words of the sentence (`@here` aside).

    The model copies names and free text; one it did not copy is a guess. The check also
    covers list values such as a domain or device class ("light" is in "lights"): where the
    sentence does not say one, the model inferred it, and on our paraphrases that is where
    it errs. Checking only names and free text lets 1.4 % more paraphrases through and makes
    the generator alone wrong on 16.8 % of them instead of 7.8 % (benchmarks/generator.py).
    A domain is said by the device class said with it ("curtain" is a cover's class).
    """
    try:
        written = json.loads(answer)
    except json.JSONDecodeError:
        return False
    for item in written if isinstance(written, list) else []:
        slots = item.get("slots") or {}
        for slot, value in slots.items():
            if not isinstance(value, str) or value == HERE or value in said:
                continue
            if slot == "domain" and str(slots.get("device_class", "\x00")) in said:
                continue  # "the curtains" says the domain too: a curtain is a cover
            return False
    return True


def load_generator(model_id: str, threads: int | None) -> TextGenerator:
    model = catalog_model(model_id, "text-generation", "a generator")
    try:
        return TextGenerator.from_catalog(model, models_dir(), threads)
    except GenerationError as exc:
        raise NluError(f"generator model {model_id}: {exc}") from None


@register_tier("generator")
def _build_generator(context: NluContext) -> GeneratorTier:
    model_id = context.profile.tiers.generator.model
    if model_id is None:
        raise NluError(
            f"profile {context.profile.id} enables the generator tier but names no model"
        )
    generator = load_generator(model_id, context.profile.threads.intra_op)
    return GeneratorTier(context, generator)


__all__ = ["GeneratorTier", "Places", "load_generator"]
