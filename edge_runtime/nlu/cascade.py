"""The cascade: ask the tiers in order, keep the first answer at or above the threshold.

Small models first, bigger ones only when needed: rules answer in
milliseconds; a tier is asked only when every tier before it had nothing
confident enough. Below the threshold the answer is "not understood" (a
`Recognition` without intent), because a wrong action is worse than none.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from edge_runtime.messages import Intent, Recognition, TextRequest
from edge_runtime.nlu import encoder as _encoder  # noqa: F401  (registers the encoder tier)
from edge_runtime.nlu import rules as _rules  # noqa: F401  (registers the rules tier)
from edge_runtime.nlu.base import NluContext, NluError, Tier, tier_factory

log = logging.getLogger(__name__)


class Cascade:
    """Tiers in order of cost, with one confidence threshold for all of them."""

    def __init__(self, tiers: Sequence[Tier], threshold: float, node_id: str) -> None:
        if not tiers:
            raise NluError("the cascade needs at least one tier")
        self.tiers = list(tiers)
        self.threshold = threshold
        self.node_id = node_id

    @property
    def tier_names(self) -> list[str]:
        return [tier.name for tier in self.tiers]

    def intent_names(self) -> list[str]:
        """Every intent some tier can answer, sorted."""
        return sorted(set().union(*(tier.intent_names for tier in self.tiers)))

    def best(self, request: TextRequest) -> Intent | None:
        """First intent at or above threshold, or None."""
        for tier in self.tiers:
            intent = tier.recognize(request)
            if intent is None:
                log.debug("tier %s: nothing for %r", tier.name, request.text)
                continue
            if intent.confidence >= self.threshold:
                return intent
            log.debug(
                "tier %s: %s at %.2f is below threshold %.2f",
                tier.name,
                intent.name,
                intent.confidence,
                self.threshold,
            )
        return None

    def recognize(self, request: TextRequest) -> Recognition:
        started = time.perf_counter()
        intent = self.best(request)
        latency_ms = (time.perf_counter() - started) * 1000
        return Recognition(request, intent, latency_ms, self.node_id)


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
    return Cascade(tiers, threshold, context.node_id)
