"""A look at the live network from outside: what `edge-runtime peers` shows.

It connects as its own short-lived client (no Last Will: it is nobody's
status), lets the broker hand over the retained `status` and `capabilities`
of every node, and builds the same `PeerTable` the nodes route with.
"""

from __future__ import annotations

import logging
import os
import queue
import time
from dataclasses import dataclass
from typing import Any

from edge_runtime.config import NodeConfig
from edge_runtime.mesh.client import Inbound, MqttClient
from edge_runtime.mesh.peers import STALE_AFTER, PeerTable
from edge_runtime.mesh.topics import (
    CAPABILITIES_LEAF,
    STATUS_LEAF,
    peer_capabilities_filter,
    peer_of,
    peer_status_filter,
)
from edge_runtime.messages import BadRequest

log = logging.getLogger(__name__)


class BrokerUnreachable(Exception):
    pass


@dataclass(frozen=True)
class PeerRow:
    node: str
    status: str
    """`online`, `offline`, or `stale` (online, but its capabilities are overdue)."""
    capabilities: dict[str, Any] | None
    seen_s_ago: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "status": self.status,
            "seen_s_ago": None if self.seen_s_ago is None else round(self.seen_s_ago, 1),
            "capabilities": self.capabilities,
        }


def snapshot(config: NodeConfig, listen_s: float = 1.0, connect_s: float = 5.0) -> list[PeerRow]:
    """Every node the broker holds retained state for, after listening for `listen_s`."""
    inbound: queue.SimpleQueue[Inbound] = queue.SimpleQueue()
    prefix = config.topic_prefix
    client = MqttClient(
        config.broker,
        f"{config.client_id}-peers-{os.getpid()}",
        inbound.put,
        [peer_status_filter(prefix), peer_capabilities_filter(prefix)],
        None,
        on_online=lambda: None,
    )
    client.start()
    try:
        if not client.connected.wait(connect_s):
            broker = config.broker
            raise BrokerUnreachable(f"no answer from broker {broker.host}:{broker.port}")
        time.sleep(listen_s)
    finally:
        client.stop()
    return _rows(_table(prefix, inbound))


def _table(prefix: str, inbound: queue.SimpleQueue[Inbound]) -> PeerTable:
    table = PeerTable()
    while not inbound.empty():
        message = inbound.get()
        found = peer_of(prefix, message.topic)
        if found is None:
            continue
        node, leaf = found
        try:
            if leaf == STATUS_LEAF:
                table.on_status(node, message.payload)
            elif leaf == CAPABILITIES_LEAF:
                table.on_capabilities(node, message.payload)
        except BadRequest as exc:
            log.warning("%s: %s", message.topic, exc)
    return table


def _rows(table: PeerTable) -> list[PeerRow]:
    rows = []
    now = time.time()
    for node in sorted(table.peers):
        peer = table.peers[node]
        caps = peer.capabilities
        seen = None if caps is None else max(0.0, now - caps.sent_at)
        status = "online" if peer.online else "offline"
        if peer.online and (caps is None or (seen or 0) > STALE_AFTER * caps.interval_s):
            status = "stale"
        rows.append(PeerRow(node, status, caps.to_json() if caps else None, seen))
    return rows


def table_lines(rows: list[PeerRow]) -> list[str]:
    """The rows as an aligned text table."""
    header = ("NODE", "STATUS", "PROFILE", "TIERS", "DOMAINS", "QUEUE", "P95 MS", "SEEN")
    lines = [header]
    for row in rows:
        caps = row.capabilities or {}
        load = caps.get("load") or {}
        domains = caps.get("domains") or []
        p95 = load.get("p95_ms")
        lines.append(
            (
                row.node,
                row.status,
                caps.get("profile", "-"),
                ",".join(caps.get("tiers") or []) or "-",
                _domains(domains),
                str(load.get("queue", "-")),
                "-" if p95 is None else f"{p95:.1f}",
                "-" if row.seen_s_ago is None else f"{row.seen_s_ago:.0f} s ago",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    ]


def _domains(domains: list[str]) -> str:
    shown = ",".join(domains[:4])
    return f"{shown},+{len(domains) - 4}" if len(domains) > 4 else (shown or "-")
