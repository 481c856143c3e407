"""Plugins by name: what NLU tiers and speech engines use to be chosen by their profile name.

A module registers its factory with a decorator when it is imported; the
caller asks for a name and never writes `if engine == ...` chains (STYLE.md,
simonw/llm's plugins).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

F = TypeVar("F", bound=Callable[..., object])


class Registry(Generic[F]):
    """Factories of one kind of plugin, by name."""

    def __init__(self) -> None:
        self._factories: dict[str, F] = {}

    def register(self, name: str) -> Callable[[F], F]:
        """Class or function decorator: make the plugin constructible by `name`."""

        def decorate(factory: F) -> F:
            self._factories[name] = factory
            return factory

        return decorate

    def get(self, name: str) -> F | None:
        return self._factories.get(name)

    def names(self) -> list[str]:
        return sorted(self._factories)
