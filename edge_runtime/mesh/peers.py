"""The live table of peers, kept from their retained `status` and `capabilities` topics.

A peer is live while its status is `online` and its capabilities are fresh:
republished within `STALE_AFTER` of its own refresh interval. The Last Will
(`offline`) removes a peer that dies; staleness removes one whose broker lost
the will (a broker restart) or that hangs without closing its connection.
The table is owned by one thread (the daemon's worker, or `edge-runtime peers`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from edge_runtime.mesh.topics import STATUS_OFFLINE, STATUS_ONLINE
from edge_runtime.messages import BadRequest, decode_json_object

STALE_AFTER = 3.0
"""A peer not heard of for this many of its own refresh intervals has left."""
MAX_CAPABILITIES_BYTES = 16_384


@dataclass(frozen=True)
class Load:
    queue: int = 0
    """Requests waiting at the node."""
    p95_ms: float | None = None
    """p95 latency of its recent answers."""


@dataclass(frozen=True)
class Capabilities:
    """What a node says it can do (`<prefix>/<node>/capabilities`, retained)."""

    node: str
    profile: str
    version: str
    tiers: tuple[str, ...]
    models: tuple[str, ...]
    """Catalog ids of the models behind those tiers."""
    languages: tuple[str, ...]
    domains: tuple[str, ...]
    pools: tuple[str, ...]
    load: Load
    interval_s: float
    sent_at: float
    """Wall-clock time of publishing (for display; freshness uses the receiver's clock)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "v": 1,
            "node": self.node,
            "profile": self.profile,
            "version": self.version,
            "tiers": list(self.tiers),
            "models": list(self.models),
            "languages": list(self.languages),
            "domains": list(self.domains),
            "pools": list(self.pools),
            "load": {"queue": self.load.queue, "p95_ms": self.load.p95_ms},
            "interval_s": self.interval_s,
            "sent_at": round(self.sent_at, 3),
        }

    @classmethod
    def from_payload(cls, payload: bytes) -> Capabilities:
        data = decode_json_object(payload, MAX_CAPABILITIES_BYTES)
        load = data.get("load") or {}
        try:
            return cls(
                node=_text(data, "node"),
                profile=_text(data, "profile"),
                version=_text(data, "version"),
                tiers=_texts(data, "tiers"),
                models=_texts(data, "models"),
                languages=_texts(data, "languages"),
                domains=_texts(data, "domains"),
                pools=_texts(data, "pools"),
                load=Load(int(load.get("queue") or 0), _optional_float(load.get("p95_ms"))),
                interval_s=float(data.get("interval_s") or 30.0),
                sent_at=float(data.get("sent_at") or 0.0),
            )
        except (TypeError, ValueError, AttributeError) as exc:
            raise BadRequest(f"capabilities: {exc}") from None


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise BadRequest(f"capabilities: field {key!r} must be a string")
    return value


def _texts(data: dict[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(f"capabilities: field {key!r} must be a list of strings")
    return tuple(value)


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass
class Peer:
    node: str
    online: bool = False
    capabilities: Capabilities | None = None
    heard_at: float = 0.0
    """Receiver's monotonic clock when the capabilities last came."""

    def live(self, now: float) -> bool:
        caps = self.capabilities
        return (
            self.online
            and caps is not None
            and now - self.heard_at <= STALE_AFTER * max(caps.interval_s, 1.0)
        )


class PeerTable:
    """Peers by node id; `live()` gives the ones a request may be routed to."""

    def __init__(self, own_node: str | None = None) -> None:
        self.own_node = own_node
        self.peers: dict[str, Peer] = {}

    def _peer(self, node: str) -> Peer:
        return self.peers.setdefault(node, Peer(node))

    def on_status(self, node: str, payload: bytes) -> bool:
        """Record `online`/`offline`; True when the peer just went away."""
        if node == self.own_node:
            return False
        status = payload.strip()
        if status not in (STATUS_ONLINE, STATUS_OFFLINE, b""):  # empty: the retained one cleared
            raise BadRequest(f"status of {node} must be online or offline")
        peer = self._peer(node)
        was_online = peer.online
        peer.online = status == STATUS_ONLINE
        return was_online and not peer.online

    def on_capabilities(self, node: str, payload: bytes, now: float | None = None) -> None:
        if node == self.own_node:
            return
        peer = self._peer(node)
        if not payload:  # a retained message cleared: the node was removed
            peer.capabilities = None
            return
        caps = Capabilities.from_payload(payload)
        if caps.node != node:
            raise BadRequest(f"capabilities on the topic of {node} name node {caps.node!r}")
        peer.capabilities = caps
        peer.heard_at = time.monotonic() if now is None else now

    def live(self, now: float | None = None) -> list[Capabilities]:
        moment = time.monotonic() if now is None else now
        return [
            p.capabilities
            for p in self.peers.values()
            if p.capabilities is not None and p.live(moment)
        ]

    def gone(self, now: float | None = None) -> list[str]:
        """Peers that were known but are not live now (offline or stale)."""
        moment = time.monotonic() if now is None else now
        return [p.node for p in self.peers.values() if not p.live(moment)]
