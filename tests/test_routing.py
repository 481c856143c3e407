"""The routing logic on its own: which peer is asked, failover, and what is remembered.

The network tests (test_network.py) prove the same with real processes; these
pin down the choices that are hard to provoke there (ties, stale peers, ages).
"""

from __future__ import annotations

import json
import time

import pytest

from edge_runtime.mesh.peers import Capabilities, Load, PeerTable
from edge_runtime.mesh.recent import Recent
from edge_runtime.mesh.router import Need, Router, ranked
from edge_runtime.mesh.topics import peer_of
from edge_runtime.messages import BadRequest, Intent, Recognition, SlotValue, TextRequest, dumps


def caps(
    node: str,
    tiers: tuple[str, ...] = ("rules", "encoder"),
    domains: tuple[str, ...] = ("light",),
    queue: int = 0,
    p95: float | None = None,
) -> Capabilities:
    return Capabilities(
        node, "x86-64", "0.1.0", tiers, (), ("en",), domains, (), Load(queue, p95), 10.0, 0.0
    )


def table(*peers: Capabilities, now: float | None = None) -> PeerTable:
    """Peers heard of `now` (by default just now, as the router's clock sees it)."""
    found = PeerTable("me")
    for peer in peers:
        found.on_status(peer.node, b"online")
        found.on_capabilities(peer.node, dumps(peer.to_json()), now=now)
    return found


class Sent:
    def __init__(self) -> None:
        self.to: list[tuple[str, bytes]] = []

    def __call__(self, peer: str, _payload: bytes, correlation: bytes, _expiry: float) -> None:
        self.to.append((peer, correlation))


def reply_from(node: str, name: str | None) -> bytes:
    intent = (
        Intent(name, {"name": SlotValue("Lamp", "lamp")}, 0.95, "encoder", node) if name else None
    )
    return dumps(Recognition(TextRequest("x", "id1"), intent, 3.0, node).to_event())


def test_peers_are_ranked_by_load_then_latency_then_name() -> None:
    peers = [caps("c", p95=5.0), caps("b", queue=2), caps("a", p95=9.0), caps("d")]
    assert [p.node for p in ranked(peers, Need("en", tiers_here=("rules",)))] == [
        "c",
        "a",
        "d",
        "b",
    ]


def test_a_peer_must_offer_what_is_needed() -> None:
    rules_only = caps("r", tiers=("rules",), domains=("lock",))
    encoder = caps("e", domains=("light",))
    assert ranked([rules_only, encoder], Need("en", tiers_here=("rules",))) == [encoder]
    assert ranked([rules_only, encoder], Need("en", domain="lock")) == [rules_only]
    assert ranked([rules_only, encoder], Need("de", domain="lock")) == []


def test_a_stale_or_offline_peer_leaves_the_table() -> None:
    peers = table(caps("a"), caps("b"), now=100.0)
    assert {p.node for p in peers.live(now=110.0)} == {"a", "b"}
    assert {p.node for p in peers.live(now=100.0 + 3 * 10.0 + 1)} == set()  # 3 intervals
    assert peers.on_status("a", b"offline") is True
    assert {p.node for p in peers.live(now=110.0)} == {"b"}


def test_capabilities_that_lie_about_their_node_are_refused() -> None:
    with pytest.raises(BadRequest, match="name node 'b'"):
        PeerTable("me").on_capabilities("a", dumps(caps("b").to_json()))
    with pytest.raises(BadRequest, match="not JSON"):
        PeerTable("me").on_capabilities("a", b"{nope")


def route_one(router: Router) -> list[tuple[Intent, ...]]:
    finished: list[tuple[Intent, ...]] = []
    assert router.route(TextRequest("x", "id1"), Need("en", tiers_here=("rules",)), finished.append)
    return finished


def test_a_route_fails_over_on_deadline_and_on_departure_and_finishes_once() -> None:
    sent = Sent()
    router = Router("me", table(caps("a"), caps("b"), caps("c")), sent, 1.0, 3)
    finished = route_one(router)
    assert [peer for peer, _ in sent.to] == ["a"]

    router.expire(now=float("inf"))  # a missed its deadline
    router.on_peer_gone("b")  # b went offline while holding it
    assert [peer for peer, _ in sent.to] == ["a", "b", "c"]
    assert finished == []

    router.on_reply(sent.to[0][1], reply_from("a", "HassTurnOn"))  # too late: dropped
    assert finished == []
    router.on_reply(sent.to[2][1], reply_from("c", "HassTurnOn"))
    router.on_reply(sent.to[2][1], reply_from("c", "HassTurnOn"))  # a duplicate delivery
    assert [[(i.name, i.node) for i in intents] for intents in finished] == [[("HassTurnOn", "c")]]
    assert router.pending == {}


def test_a_peer_that_missed_a_deadline_is_asked_last_until_it_answers_again() -> None:
    sent = Sent()
    router = Router("me", table(caps("a"), caps("b")), sent, 1.0, 3)
    route_one(router)
    router.expire(now=time.monotonic() + 1.5)  # a hangs: the request fails over to b
    router.on_reply(sent.to[1][1], reply_from("b", "HassTurnOn"))
    route_one(router)  # the next request goes to b first, though a still ranks first
    assert [peer for peer, _ in sent.to] == ["a", "b", "b"]
    router.on_reply(sent.to[2][1], reply_from("b", None))  # b did not understand: a again
    assert [peer for peer, _ in sent.to] == ["a", "b", "b", "a"]
    router.on_reply(sent.to[3][1], reply_from("a", "HassTurnOn"))  # a answers: trusted again
    route_one(router)
    assert sent.to[-1][0] == "a"


def test_not_understood_by_every_peer_is_not_understood() -> None:
    sent = Sent()
    router = Router("me", table(caps("a"), caps("b")), sent, 1.0, 3)
    finished = route_one(router)
    router.on_reply(sent.to[0][1], reply_from("a", None))
    router.on_reply(sent.to[1][1], b"\xff not json")
    assert finished == [()]


def test_no_peer_means_no_route() -> None:
    router = Router("me", table(caps("a", tiers=("rules",))), Sent(), 1.0, 3)
    assert not router.route(TextRequest("x"), Need("en", tiers_here=("rules",)), print)


def test_recent_ids_are_forgotten_by_age_and_by_number() -> None:
    now = [0.0]
    recent: Recent[str, int] = Recent(capacity=3, ttl_s=10.0, clock=lambda: now[0])
    for i in range(4):
        recent.put(f"id{i}", i)
    assert recent.get("id0") is None and recent.get("id3") == 3  # the oldest made room
    now[0] = 10.5
    recent.put("new", 9)
    assert (recent.get("id1"), recent.get("new"), len(recent)) == (None, 9, 1)


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("edge/kitchen/status", ("kitchen", "status")),
        ("edge/pool/lights/request", None),
        ("other/kitchen/status", None),
        ("edge/kitchen/a/b", None),
    ],
)
def test_peer_topics_are_told_apart(topic: str, expected: tuple[str, str] | None) -> None:
    assert peer_of("edge", topic) == expected


def test_the_routed_request_names_its_origin_and_deadline() -> None:
    payloads: list[bytes] = []
    router = Router(
        "me", table(caps("a")), lambda _p, payload, _c, _e: payloads.append(payload), 1.5, 3
    )
    route_one(router)
    sent = json.loads(payloads[0])
    assert (sent["id"], sent["origin"], sent["deadline_ms"]) == ("id1", "me", 1500)
