"""Several real nodes on a real Mosquitto: routing, failover, pools, exactly-once, presence."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Broker, Node, Probe, Received
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

RULES_ONLY = "raspberry-pi-4"
WITH_ENCODER = "x86-64"
PARAPHRASE = "could you fire up the coffee maker"  # the rules tier has no template for it
DEADLINE_MS = 1000


def rules_node(start_node: Callable[..., Node], node_id: str, **network: Any) -> Node:
    return start_node(
        node_id,
        profile=RULES_ONLY,
        network={"deadline_ms": DEADLINE_MS, **network},
        discovery={"enabled": False},
    )


def encoder_node(start_node: Callable[..., Node], node_id: str, **network: Any) -> Node:
    return start_node(
        node_id,
        profile=WITH_ENCODER,
        network={"deadline_ms": DEADLINE_MS, **network},
        discovery={"enabled": False},
    )


def wait_serving(probe: Probe, *nodes: Node) -> None:
    """Each node is online and has published its capabilities (so every peer knows it)."""
    for node in nodes:
        probe.wait_for(f"edge/{node.node_id}/capabilities", timeout=60)


def events_for(probe: Probe, topic: str, request_id: str, seconds: float) -> list[dict[str, Any]]:
    return [
        m.json()
        for m in probe.drain(seconds)
        if m.topic == topic and m.json().get("id") == request_id
    ]


def ask(probe: Probe, node: Node, text: str) -> str:
    request_id = uuid.uuid4().hex[:8]
    probe.publish(f"edge/{node.node_id}/text", {"text": text, "id": request_id})
    return request_id


def test_a_rules_only_node_gets_a_paraphrase_answered_by_an_encoder_peer(
    start_node: Callable[..., Node], probe_factory: Callable[..., Probe]
) -> None:
    probe = probe_factory(["edge/+/capabilities", "edge/+/intent"])
    origin = rules_node(start_node, "kitchen")
    helper = encoder_node(start_node, "office")
    wait_serving(probe, origin, helper)

    request_id = ask(probe, origin, PARAPHRASE)
    event = probe.wait_for("edge/kitchen/intent", lambda m: m.json()["id"] == request_id).json()

    assert (event["intent"], event["slots"]) == ("HassTurnOn", {"name": "Coffee Maker"})
    assert (event["node"], event["tier"], event["origin"]) == ("office", "encoder", "kitchen")
    assert events_for(probe, "edge/kitchen/intent", request_id, 1.0) == []  # exactly one
    assert "routed to office" in origin.log()


def test_a_domain_served_elsewhere_goes_to_the_peer_that_serves_it(
    start_node: Callable[..., Node], probe_factory: Callable[..., Probe]
) -> None:
    probe = probe_factory(["edge/+/capabilities", "edge/+/intent"])
    origin = rules_node(start_node, "hall", domains=["light"])
    locks = rules_node(start_node, "porch", domains=["lock"])
    wait_serving(probe, origin, locks)

    locked = ask(probe, origin, "lock the front door")
    event = probe.wait_for("edge/hall/intent", lambda m: m.json()["id"] == locked).json()
    assert (event["intent"], event["node"]) == ("HassTurnOn", "porch")

    lit = ask(probe, origin, "turn on the garage light")
    event = probe.wait_for("edge/hall/intent", lambda m: m.json()["id"] == lit).json()
    assert (event["intent"], event["node"]) == ("HassTurnOn", "hall")


def test_a_peer_killed_mid_request_fails_over_to_the_next_and_then_to_not_understood(
    start_node: Callable[..., Node], probe_factory: Callable[..., Probe]
) -> None:
    probe = probe_factory(["edge/+/capabilities", "edge/+/intent", "edge/+/request"])
    origin = rules_node(start_node, "origin")
    first, second = encoder_node(start_node, "enc-a"), encoder_node(start_node, "enc-b")
    wait_serving(probe, origin, first, second)

    # enc-a (first by name at equal load) hangs, then dies while it holds the request.
    first.process.send_signal(signal.SIGSTOP)
    sent = time.monotonic()
    request_id = ask(probe, origin, PARAPHRASE)
    probe.wait_for("edge/enc-a/request", lambda m: m.json()["id"] == request_id)
    first.process.kill()
    event = probe.wait_for("edge/origin/intent", lambda m: m.json()["id"] == request_id).json()
    took_s = time.monotonic() - sent

    assert (event["intent"], event["node"]) == ("HassTurnOn", "enc-b")
    assert took_s < DEADLINE_MS / 1000 + 1.0
    assert events_for(probe, "edge/origin/intent", request_id, 1.0) == []

    # enc-b hangs too: its deadline passes, nobody is left, the answer is "not understood".
    second.process.send_signal(signal.SIGSTOP)
    try:
        lost = ask(probe, origin, PARAPHRASE)
        event = probe.wait_for("edge/origin/intent", lambda m: m.json()["id"] == lost).json()
        assert event["intent"] is None
        assert events_for(probe, "edge/origin/intent", lost, 1.0) == []
    finally:
        second.process.send_signal(signal.SIGCONT)


def test_a_repeated_request_id_is_answered_once(
    start_node: Callable[..., Node], probe_factory: Callable[..., Probe]
) -> None:
    probe = probe_factory(["edge/+/capabilities", "edge/+/intent"])
    node = rules_node(start_node, "once")
    wait_serving(probe, node)

    for _ in range(3):  # a client retrying after a reconnect sends the same id again
        probe.publish("edge/once/text", {"text": "turn on the garage light", "id": "same-id"})

    assert len(events_for(probe, "edge/once/intent", "same-id", 2.0)) == 1


def test_every_request_is_answered_exactly_once_across_a_broker_restart(
    own_broker: Broker,
    start_node: Callable[..., Node],
    probe_factory: Callable[..., Probe],
) -> None:
    own_broker.stop()
    own_broker.persistent = True
    own_broker.start()
    probe = probe_factory(["edge/+/capabilities", "edge/+/intent"], own_broker.port, True)
    node = start_node("survivor", own_broker.port, profile=RULES_ONLY)
    wait_serving(probe, node)

    ids = [f"r{i}" for i in range(60)]
    for i, request_id in enumerate(ids):
        text = "turn on the garage light" if i % 2 else "turn off the kitchen lights"
        probe.publish("edge/survivor/text", {"text": text, "id": request_id}, wait=False)
        if i == 30:
            own_broker.stop()  # requests in flight, answers queued on both sides
            own_broker.start()

    answers = Counter(
        m.json()["id"] for m in probe.drain(15.0) if m.topic == "edge/survivor/intent"
    )
    assert set(answers) == set(ids), f"unanswered: {sorted(set(ids) - set(answers))}"
    assert set(answers.values()) == {1}, f"answered twice: {answers.most_common(3)}"


def test_a_pool_of_two_nodes_shares_a_thousand_requests_and_answers_each_once(
    start_node: Callable[..., Node], probe_factory: Callable[..., Probe]
) -> None:
    probe = probe_factory(["edge/+/capabilities", "test/pool/replies"])
    members = [rules_node(start_node, name, pools=["lights"]) for name in ("pool-a", "pool-b")]
    wait_serving(probe, *members)

    total = 1000
    for i in range(total):
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.ResponseTopic = "test/pool/replies"
        properties.CorrelationData = f"c{i}".encode()
        request = {"text": "turn on the garage light", "id": f"p{i}"}
        probe.publish("edge/pool/lights/request", request, wait=False, properties=properties)

    replies: list[Received] = []
    deadline = time.monotonic() + 60
    while len(replies) < total and time.monotonic() < deadline:
        replies += [m for m in probe.drain(0.5) if m.topic == "test/pool/replies"]

    ids = Counter(m.json()["id"] for m in replies)
    assert len(ids) == total and set(ids.values()) == {1}
    correlations = {m.properties.CorrelationData for m in replies}
    assert correlations == {f"c{i}".encode() for i in range(total)}
    served = Counter(m.json()["node"] for m in replies)
    assert set(served) == {"pool-a", "pool-b"}
    assert min(served.values()) > total * 0.2, served  # the broker balanced the load


def test_presence_is_retained_after_a_restart_and_the_last_will_marks_a_killed_node(
    start_node: Callable[..., Node], probe_factory: Callable[..., Probe]
) -> None:
    watcher = probe_factory(["edge/phoenix/status"])
    node = rules_node(start_node, "phoenix")
    watcher.wait_for("edge/phoenix/status", lambda m: m.payload == b"online", timeout=60)

    node.process.kill()
    watcher.wait_for("edge/phoenix/status", lambda m: m.payload == b"offline")

    restarted = rules_node(start_node, "phoenix")
    watcher.wait_for("edge/phoenix/status", lambda m: m.payload == b"online", timeout=60)
    late = probe_factory(["edge/phoenix/status", "edge/phoenix/capabilities"])
    status = late.wait_for("edge/phoenix/status")
    capabilities = late.wait_for("edge/phoenix/capabilities")
    assert (status.payload, status.retain) == (b"online", True)
    document = capabilities.json()
    assert capabilities.retain and document["node"] == "phoenix"
    assert document["tiers"] == ["rules"] and document["profile"] == RULES_ONLY
    assert time.time() - document["sent_at"] < 30  # the restarted node's, not a stale copy
    assert restarted.stop() == 0


def test_peers_lists_the_live_network(
    broker: Broker,
    tmp_path: Path,
    start_node: Callable[..., Node],
    probe_factory: Callable[..., Probe],
) -> None:
    probe = probe_factory(["edge/+/capabilities"])
    rules_node(start_node, "lister-a")
    gone = rules_node(start_node, "lister-b")
    wait_serving(probe, gone)
    probe.wait_for("edge/lister-a/capabilities", timeout=60)
    gone.stop()
    config = tmp_path / "peers.yaml"
    config.write_text(f"node_id: cli\nbroker: {{host: 127.0.0.1, port: {broker.port}}}\n")

    found = subprocess.run(
        [sys.executable, "-m", "edge_runtime", "peers", "--config", str(config), "--json"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    rows = {row["node"]: row for row in json.loads(found.stdout)}
    assert rows["lister-a"]["status"] == "online"
    assert rows["lister-a"]["capabilities"]["tiers"] == ["rules"]
    assert rows["lister-b"]["status"] == "offline"

    table = subprocess.run(
        [sys.executable, "-m", "edge_runtime", "peers", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert table.splitlines()[0].split()[:3] == ["NODE", "STATUS", "PROFILE"]
    assert any(
        line.split()[:3] == ["lister-a", "online", RULES_ONLY] for line in table.splitlines()
    )


@pytest.mark.parametrize("enabled", [True, False])
def test_home_assistant_discovery_is_published_unless_switched_off(
    start_node: Callable[..., Node], probe_factory: Callable[..., Probe], enabled: bool
) -> None:
    node_id = f"disco-{int(enabled)}"
    probe = probe_factory(["homeassistant/+/+/+/config", f"edge/{node_id}/capabilities"])
    start_node(node_id, profile=RULES_ONLY, discovery={"enabled": enabled})
    probe.wait_for(f"edge/{node_id}/capabilities", timeout=60)
    configs = [m for m in probe.drain(1.0) if f"/{node_id}/" in m.topic]
    if not enabled:
        assert configs == []
        return
    by_component = {m.topic.split("/")[1]: m.json() for m in configs}
    assert set(by_component) == {"event", "sensor"}
    event = by_component["event"]
    assert event["availability"][0]["topic"] == f"edge/{node_id}/status"
    assert event["state_topic"] == f"edge/{node_id}/intent"
    assert "HassTurnOn" in event["event_types"] and "not_recognized" in event["event_types"]
    late = probe_factory([f"homeassistant/+/{node_id}/+/config"])  # HA starting after the node
    retained = [late.wait_for(f"homeassistant/+/{node_id}/+/config") for _ in range(2)]
    assert all(m.retain for m in retained)
