"""The daemon's inbox: requests wait in order, control messages jump the queue.

Requests (typed commands, Hermes queries, requests from peers) are bounded:
beyond `capacity` a new one is refused, never dropped silently. Control
messages (peers' replies, status and capabilities, "connected") are few and
must not wait behind a thousand requests, or a routed request would miss its
deadline while its answer sits in the queue; they are served first.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Inbox(Generic[T]):
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._requests: deque[T] = deque()
        self._control: deque[T] = deque()
        self._ready = threading.Condition()

    def put(self, item: T) -> None:
        """Queue a request; `queue.Full` when `capacity` are already waiting."""
        with self._ready:
            if len(self._requests) >= self.capacity:
                raise queue.Full
            self._requests.append(item)
            self._ready.notify()

    def put_control(self, item: T) -> None:
        with self._ready:
            self._control.append(item)
            self._ready.notify()

    def get(self, timeout: float) -> T | None:
        """The next control message, else the next request; None after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._ready:
            while not (self._control or self._requests):
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._ready.wait(left)
            return (self._control or self._requests).popleft()

    def requests_waiting(self) -> int:
        return len(self._requests)

    def empty(self) -> bool:
        return not (self._control or self._requests)
