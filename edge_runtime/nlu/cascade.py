"""The cascade: ask the tiers in order, keep the first answer at or above the threshold.

Small models first, bigger ones only when needed: rules answer in
milliseconds; a tier is asked only when every tier before it had nothing
confident enough. Below the threshold the answer is "not understood" (a
`Recognition` without intent), because a wrong action is worse than none.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Sequence

from edge_runtime.messages import Intent, Recognition, TextRequest
from edge_runtime.nlu import encoder as _encoder  # noqa: F401  (registers the encoder tier)
from edge_runtime.nlu import generator as _generator  # noqa: F401  (registers the generator tier)
from edge_runtime.nlu import rules as _rules  # noqa: F401  (registers the rules tier)
from edge_runtime.nlu.base import (
    MultiTier,
    NluContext,
    NluError,
    SecondOpinion,
    Tier,
    tier_factory,
)
from edge_runtime.nlu.clauses import groupings, may_hold_several

log = logging.getLogger(__name__)


class Cascade:
    """Tiers in order of cost, with one confidence threshold for all of them."""

    def __init__(
        self, tiers: Sequence[Tier], threshold: float, node_id: str, language: str = "en"
    ) -> None:
        if not tiers:
            raise NluError("the cascade needs at least one tier")
        self.tiers = list(tiers)
        self.threshold = threshold
        self.node_id = node_id
        self.language = language

    @property
    def tier_names(self) -> list[str]:
        return [tier.name for tier in self.tiers]

    def intent_names(self) -> list[str]:
        """Every intent some tier can answer, sorted."""
        return sorted(set().union(*(tier.intent_names for tier in self.tiers)))

    def best(self, request: TextRequest) -> Intent | None:
        """First intent at or above threshold, or None."""
        intents = self.answer(request)
        return intents[0] if intents else None

    def answer(self, request: TextRequest) -> tuple[Intent, ...]:
        """The commands of the request, each at or above threshold; empty: not understood.

        1. A sentence that may hold several commands ("... and lock the door") is
           cut into clauses (`clauses.groupings`, the most clauses first); the
           first cut whose every clause a single-command tier understands with
           confidence is the answer.
        2. Otherwise the single-command tiers (rules, encoder) are asked in order
           for the whole sentence, until one is confident.
        3. A tier that reads several commands at once (the generator) is asked
           last: for a sentence the others did not understand, or one that may
           hold several; its answer counts only when every intent is confident,
           several commands only when they leave out nothing the sentence names
           (`_covered`), one command only when another tier seconds it (`_seconded`),
           and it replaces a single answer only when it found more than one command.
        """
        several = may_hold_several(request.text, self.language)
        if several:
            clauses = self._clauses(request)
            if clauses:
                return clauses
        single, heard = self._single(request)
        for tier in self._multi_tiers:
            if single is not None and not several:
                break
            intents = tier.recognize_all(request)
            if not self._confident(tier.name, intents):
                continue
            if len(intents) > 1 and self._covered(request, intents):
                return tuple(intents)
            if len(intents) == 1 and single is None:
                if self._seconded(request, intents[0], heard):
                    return tuple(intents)
                backed = self._backed(request, intents[0], heard)
                if backed is not None:
                    return (backed,)
        return (single,) if single else ()

    def _seconded(self, request: TextRequest, intent: Intent, heard: list[Intent]) -> bool:
        """A generator's single answer stands only where another tier, however unsure, read
        the same intent with the same slots, or (`SecondOpinion.agrees`) its model ranks the
        same intent first and the answer names all the sentence names: the generator is sure
        of its mistakes too (on paraphrases, "lock the front door" as HassTurnOff at 0.98;
        "get rover to vacuum the office" without the vacuum's name), and two different models
        rarely share one. A cascade of the generator alone has no second opinion to ask."""
        if len(self._multi_tiers) == len(self.tiers):
            return True
        if any(_same_reading(other, intent) for other in heard):
            return True
        if any(isinstance(t, SecondOpinion) and t.agrees(request, intent) for t in self.tiers):
            return True
        log.debug("generator: %s is not seconded by any other tier", intent.name)
        return False

    def _backed(self, request: TextRequest, intent: Intent, heard: list[Intent]) -> Intent | None:
        """An unsure answer of another tier that the generator's confident one backs: the same
        intent, every slot the generator filled filled too, and everything the sentence names
        named ("can you get rover to vacuum the office": the encoder, unsure, read Rover and
        the office; the generator, sure, the office alone). Two models read the intent; the
        slots are the ones that leave nothing out. Its confidence is the generator's."""
        for other in heard:
            if (
                other.name == intent.name
                and set(intent.slots) <= set(other.slots)
                and self._covered(request, [other])
            ):
                log.debug("generator: %s backs the %s tier's reading", intent.name, other.tier)
                return dataclasses.replace(other, confidence=intent.confidence)
        return None

    def _covered(self, request: TextRequest, intents: list[Intent]) -> bool:
        """Several commands stand only where they leave out nothing the sentence names (a
        name, an area, a number): "close the curtain on the left" read as every curtain of
        the room drops the curtain named."""
        if all(t.covers(request, intents) for t in self.tiers if isinstance(t, SecondOpinion)):
            return True
        log.debug("generator: %s leave out something said", [i.name for i in intents])
        return False

    def answer_freely(self, request: TextRequest) -> str | None:
        """An answer in words to a free question, from a tier that can give one, or None."""
        if not is_question(request.text, self.language):
            return None
        for tier in self._multi_tiers:
            if tier.answers_freely:
                return tier.answer_freely(request)
        return None

    @property
    def _multi_tiers(self) -> list[MultiTier]:
        return [tier for tier in self.tiers if isinstance(tier, MultiTier)]

    def _single(self, request: TextRequest) -> tuple[Intent | None, list[Intent]]:
        """The first confident answer of a single-command tier (or None), and every answer
        heard on the way, confident or not."""
        heard: list[Intent] = []
        for tier in self.tiers:
            if isinstance(tier, MultiTier):
                continue
            intent = tier.recognize(request)
            if intent is not None:
                heard.append(intent)
            if self._confident(tier.name, [intent] if intent else []):
                return intent, heard
        return None, heard

    def _clauses(self, request: TextRequest) -> tuple[Intent, ...]:
        """One confident intent per clause, for the first cut where every clause has one."""
        known: dict[str, Intent | None] = {}
        for clauses in groupings(request.text, self.language):
            for clause in clauses:
                if clause not in known:
                    known[clause] = self._clause(dataclasses.replace(request, text=clause))
                if known[clause] is None:
                    break
            else:
                return tuple(intent for clause in clauses if (intent := known[clause]))
        return ()

    def _clause(self, request: TextRequest) -> Intent | None:
        """A clause's confident intent; a clause of fewer than MIN_CLAUSE_WORDS words only the
        encoder understood does not count: "hold on, pause the tv" would pause twice."""
        intent = self._single(request)[0]
        short = len(request.text.split()) < MIN_CLAUSE_WORDS
        return None if intent is not None and short and intent.tier != "rules" else intent

    def _confident(self, tier: str, intents: list[Intent]) -> bool:
        if not intents:
            log.debug("tier %s: nothing", tier)
            return False
        low = [i for i in intents if i.confidence < self.threshold]
        for intent in low:
            log.debug(
                "tier %s: %s at %.2f is below threshold %.2f",
                tier,
                intent.name,
                intent.confidence,
                self.threshold,
            )
        return not low

    def recognize(self, request: TextRequest) -> Recognition:
        started = time.perf_counter()
        intents = self.answer(request)
        latency_ms = (time.perf_counter() - started) * 1000
        first, more = (intents[0], intents[1:]) if intents else (None, ())
        return Recognition(request, first, latency_ms, self.node_id, more)


def _same_reading(one: Intent, other: Intent) -> bool:
    """The same intent with the same slots filled (their values may differ)."""
    return one.name == other.name and set(one.slots) == set(other.slots)


MIN_CLAUSE_WORDS = 3
"""Fewer words than this, and a clause is a command only if a template says it exactly."""

QUESTIONS = {
    "en": re.compile(
        r"\?\s*$|^\s*(?:what|who|whom|whose|why|how|when|where|which|tell me|do you|"
        r"are you|can you tell|could you tell)\b",
        re.IGNORECASE,
    )
}
"""A free question, per language: only these get an answer in words."""


def is_question(text: str, language: str) -> bool:
    pattern = QUESTIONS.get(language.split("-", maxsplit=1)[0])
    return pattern is not None and pattern.search(text) is not None


def build_cascade(context: NluContext, tier_names: Sequence[str], threshold: float) -> Cascade:
    """Build the named tiers. One that cannot be built (a corrupt model file …) is left out
    with an error in the log, so the node still serves with the others; none at all is an
    error. A name without an implementation is always an error naming it."""
    tiers: list[Tier] = []
    problems: list[str] = []
    for name in tier_names:
        factory = tier_factory(name)
        if factory is None:
            raise NluError(f"NLU tier {name!r} is not available in this build")
        try:
            tiers.append(factory(context))
        except NluError as exc:
            log.error("NLU tier %s is left out: %s", name, exc)
            problems.append(f"{name}: {exc}")
    if not tiers:
        raise NluError("no NLU tier could be built (" + "; ".join(problems) + ")")
    return Cascade(tiers, threshold, context.node_id, context.language)
