"""Routing: hand a request this node cannot serve well to the best live peer, with failover.

The router belongs to the daemon's worker thread, which feeds it replies and
peer departures from the inbox and asks it for the next deadline, so nothing
here needs a lock and nothing ever blocks: a request waiting for a peer does
not hold up the requests behind it.

A route tries peers one at a time, best first (shortest queue, then lowest p95
latency, then node id, so the choice is stable). It fails over to the next
peer when the deadline passes, when the peer goes offline, or when the peer
answers "not understood" (another peer may hold a tier that understands).
When no peer is left the request is answered "not understood". Each route
finishes exactly once: a late reply from a peer that was given up on is
dropped, because its correlation data is no longer pending.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from edge_runtime.mesh.peers import Capabilities, PeerTable
from edge_runtime.messages import (
    BadRequest,
    Intent,
    RoutedRequest,
    TextRequest,
    decode_json_object,
    dumps,
    intents_of_reply,
)

log = logging.getLogger(__name__)

MAX_REPLY_BYTES = 65_536
SUSPECT_S = 30.0
"""A peer that let a deadline pass is asked last for this long (or until it answers again):
a hung peer still looks online and fresh, and must not cost every request a full deadline."""


@dataclass(frozen=True)
class Need:
    """What a peer must offer to be worth asking."""

    language: str
    domain: str | None = None
    """A domain this node does not serve: the peer must serve it."""
    tiers_here: tuple[str, ...] = ()
    """Without a domain: this node's own tiers found nothing, so the peer needs another one."""

    def met_by(self, peer: Capabilities) -> bool:
        if self.language not in peer.languages:
            return False
        if self.domain is not None:
            return self.domain in peer.domains
        return any(tier not in self.tiers_here for tier in peer.tiers)


def ranked(peers: Iterable[Capabilities], need: Need) -> list[Capabilities]:
    """The peers that meet `need`, best first: least loaded, then fastest."""
    fitting = [p for p in peers if need.met_by(p)]
    return sorted(
        fitting,
        key=lambda p: (p.load.queue, math.inf if p.load.p95_ms is None else p.load.p95_ms, p.node),
    )


Finish = Callable[[tuple[Intent, ...]], None]
"""Called once per routed request with the peer's intents (empty: not understood)."""
Send = Callable[[str, bytes, bytes, float], None]
"""send(peer, payload, correlation data, deadline in seconds)."""


@dataclass
class Route:
    request: TextRequest
    need: Need
    finish: Finish
    tried: list[str] = field(default_factory=list)
    deadline: float = 0.0


class Router:
    def __init__(
        self,
        node_id: str,
        peers: PeerTable,
        send: Send,
        deadline_s: float,
        max_peers_tried: int,
    ) -> None:
        self.node_id = node_id
        self.peers = peers
        self.send = send
        self.deadline_s = deadline_s
        self.max_peers_tried = max_peers_tried
        self.pending: dict[bytes, Route] = {}
        self.suspects: dict[str, float] = {}
        """Peer -> until when it is asked only after every other peer."""

    def route(self, request: TextRequest, need: Need, finish: Finish) -> bool:
        """Send `request` to the best peer; False (and nothing sent) when no peer meets `need`."""
        return self._ask_next(Route(request, need, finish))

    def _ask_next(self, route: Route) -> bool:
        if len(route.tried) >= self.max_peers_tried:
            return False
        now = time.monotonic()
        candidates = [p for p in ranked(self.peers.live(), route.need) if p.node not in route.tried]
        if not candidates:
            return False
        candidates.sort(key=lambda p: self.suspects.get(p.node, 0.0) > now)  # stable: rank kept
        peer = candidates[0].node
        route.tried.append(peer)
        route.deadline = time.monotonic() + self.deadline_s
        correlation = uuid.uuid4().bytes
        self.pending[correlation] = route
        deadline_ms = round(self.deadline_s * 1000)
        payload = RoutedRequest(route.request, self.node_id, None, deadline_ms).to_json()
        log.info("id=%s routed to %s (%s)", route.request.id, peer, _why(route.need))
        self.send(peer, dumps(payload), correlation, self.deadline_s)
        return True

    def _fail_over(self, route: Route, reason: str) -> None:
        log.info("id=%s: %s; trying the next peer", route.request.id, reason)
        if not self._ask_next(route):
            log.info("id=%s: no peer left to ask; not understood", route.request.id)
            route.finish(())

    # --- what the worker feeds in ---

    def on_reply(self, correlation: bytes | None, payload: bytes) -> None:
        route = self.pending.pop(correlation or b"", None)
        if route is None:
            log.debug("a reply for no pending route (late, or answered already); dropped")
            return
        peer = route.tried[-1]
        self.suspects.pop(peer, None)
        try:
            intents = intents_of_reply(decode_json_object(payload, MAX_REPLY_BYTES))
        except BadRequest as exc:
            self._fail_over(route, f"{peer} sent an unreadable reply ({exc})")
            return
        if not intents:
            self._fail_over(route, f"{peer} did not understand it either")
            return
        route.finish(intents)

    def on_peer_gone(self, node: str) -> None:
        for correlation, route in list(self.pending.items()):
            if route.tried[-1] == node:
                del self.pending[correlation]
                self._fail_over(route, f"{node} went offline")

    def expire(self, now: float | None = None) -> None:
        moment = time.monotonic() if now is None else now
        for correlation, route in list(self.pending.items()):
            if route.deadline <= moment:
                del self.pending[correlation]
                self.suspects[route.tried[-1]] = moment + SUSPECT_S
                self._fail_over(route, f"{route.tried[-1]} did not answer in time")

    def next_deadline(self) -> float | None:
        return min((r.deadline for r in self.pending.values()), default=None)


def _why(need: Need) -> str:
    return f"domain {need.domain}" if need.domain else "a tier this node lacks"
