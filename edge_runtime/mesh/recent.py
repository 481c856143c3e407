"""Recently seen request ids, bounded in number and age: the memory behind exactly-once.

MQTT QoS 1 delivers at least once, and a client retries after a reconnect, so the
same request can arrive twice. A node answers each id once and remembers what it
answered, so a repeat is recognised (and a peer can send its stored reply again
instead of running the request a second time).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Recent(Generic[K, V]):
    """At most `capacity` entries, each forgotten `ttl_s` seconds after it was stored."""

    def __init__(
        self, capacity: int, ttl_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.capacity = capacity
        self.ttl_s = ttl_s
        self.clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def _forget_old(self) -> None:
        oldest_kept = self.clock() - self.ttl_s
        while self._entries:
            stored_at, _value = next(iter(self._entries.values()))
            if stored_at > oldest_kept and len(self._entries) <= self.capacity:
                break
            self._entries.popitem(last=False)

    def get(self, key: K) -> V | None:
        self._forget_old()
        entry = self._entries.get(key)
        return None if entry is None else entry[1]

    def put(self, key: K, value: V) -> None:
        self._entries[key] = (self.clock(), value)
        self._entries.move_to_end(key)
        self._forget_old()

    def __len__(self) -> int:
        return len(self._entries)
