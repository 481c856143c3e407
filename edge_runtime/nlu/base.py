"""The interface every NLU tier implements, and the registry that finds tiers by name.

A tier is built once from an `NluContext` (home, language, node, device
profile) and then answers `recognize(request)` many times. It returns its best
`Intent` with a calibrated confidence, or `None` when it has nothing. It never
decides what the threshold is: that is the cascade's job.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from edge_runtime.home import Home
from edge_runtime.inference.catalog import CatalogModel, Task, load_catalog
from edge_runtime.messages import Intent, TextRequest
from edge_runtime.profiles import DeviceProfile
from edge_runtime.registry import Registry


class NluError(Exception):
    """A tier cannot be built (missing language, unloadable model …)."""


@dataclass(frozen=True)
class NluContext:
    """What a tier needs to build itself."""

    home: Home
    language: str
    node_id: str
    profile: DeviceProfile
    cache_dir: Path | None = None
    """Where tiers keep what they prepare once (example banks); a per-user cache when unset."""


class Tier(Protocol):
    name: str
    intent_names: frozenset[str]
    """Every intent this tier can answer (Home Assistant's names)."""

    def recognize(self, request: TextRequest) -> Intent | None:
        """Best intent for the request, or None; never raises on odd text."""
        ...


@runtime_checkable
class MultiTier(Tier, Protocol):
    """A tier that can read several commands in one sentence (the generator)."""

    def recognize_all(self, request: TextRequest) -> list[Intent]:
        """Every command said, in order; empty when none or not understood."""
        ...

    @property
    def answers_freely(self) -> bool:
        """Whether `answer_freely` can answer at all (an instruct model)."""
        ...

    def answer_freely(self, request: TextRequest) -> str | None:
        """A short answer in words to a free question, or None."""
        ...


@runtime_checkable
class SecondOpinion(Protocol):
    """A tier that can check another tier's answer it could not give itself."""

    def agrees(self, request: TextRequest, intent: Intent) -> bool:
        """Whether this tier's own model reads the request as `intent` too."""
        ...

    def covers(self, request: TextRequest, intents: Sequence[Intent]) -> bool:
        """Whether the intents, together, leave out nothing the request names."""
        ...


TierFactory = Callable[[NluContext], Tier]
_TIERS: Registry[TierFactory] = Registry()
register_tier = _TIERS.register
"""Class or function decorator: make a tier constructible by its profile name."""
tier_factory = _TIERS.get


def catalog_model(model_id: str, task: Task, role: str) -> CatalogModel:
    """The catalog entry of a tier's model, refused unless it does the tier's task."""
    try:
        model = load_catalog().get(model_id)
    except KeyError as exc:
        raise NluError(str(exc.args[0])) from None
    if model.task != task:
        raise NluError(f"model {model_id} is a {model.task} model, not {role}")
    return model
