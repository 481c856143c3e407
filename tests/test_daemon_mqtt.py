"""The daemon as a real process on a real Mosquitto, driven only over MQTT."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable

from conftest import Broker, Node, Probe, Received


def _intent_for(request_id: str) -> Callable[[Received], bool]:
    return lambda m: m.json().get("id") == request_id


def _wait_online(probe: Probe, node: Node) -> None:
    probe.wait_for(f"edge/{node.node_id}/status", lambda m: m.payload == b"online")


def test_typed_command_is_answered_with_an_intent_event(
    start_node: Callable[..., Node], probe_factory: Callable[..., Probe]
) -> None:
    node = start_node()
    probe = probe_factory([f"edge/{node.node_id}/#"])
    _wait_online(probe, node)
    probe.publish(f"edge/{node.node_id}/text", {"text": "turn on the kitchen lights", "id": "r-1"})
    event = probe.wait_for(f"edge/{node.node_id}/intent", _intent_for("r-1")).json()
    assert event["intent"] == "HassTurnOn"
    assert event["slots"] == {"area": "Kitchen", "domain": "light"}
    assert event["tier"] == "rules"
    assert event["node"] == node.node_id
    assert event["confidence"] == 1.0
    assert event["latency_ms"] > 0


def test_status_and_capabilities_are_retained(
    start_node: Callable[..., Node], probe_factory: Callable[..., Probe]
) -> None:
    node = start_node()
    first = probe_factory([f"edge/{node.node_id}/status", f"edge/{node.node_id}/capabilities"])
    _wait_online(first, node)
    first.wait_for(f"edge/{node.node_id}/capabilities")  # both are at the broker now
    # A client that subscribes later still learns the node's state from the retained messages.
    late = probe_factory([f"edge/{node.node_id}/status", f"edge/{node.node_id}/capabilities"])
    assert late.wait_for(f"edge/{node.node_id}/status").retain
    capabilities = late.wait_for(f"edge/{node.node_id}/capabilities")
    assert capabilities.retain
    document = capabilities.json()
    assert document["node"] == node.node_id
    assert document["tiers"] == ["rules", "encoder", "generator"]  # the x86-64 profile hosts all
    assert document["models"] == ["edge-intent-minilm-int8", "edge-intent-slm-int4"]
    assert document["version"] and document["profile"] == "x86-64"
    assert document["languages"] == ["en"]
    assert "light" in document["domains"]


def test_a_paraphrase_is_answered_by_the_encoder_tier(
    start_node: Callable[..., Node], probe_factory: Callable[..., Probe]
) -> None:
    node = start_node()
    probe = probe_factory([f"edge/{node.node_id}/#"])
    _wait_online(probe, node)
    probe.publish(f"edge/{node.node_id}/text", {"text": "kill the garage light", "id": "p-1"})
    event = probe.wait_for(f"edge/{node.node_id}/intent", _intent_for("p-1")).json()
    assert (event["intent"], event["slots"], event["tier"]) == (
        "HassTurnOff",
        {"name": "Garage Light"},
        "encoder",
    )
    assert 0.5 <= event["confidence"] <= 1.0


def test_unknown_sentence_is_published_as_not_understood(
    start_node: Callable[..., Node], probe_factory: Callable[..., Probe]
) -> None:
    node = start_node()
    probe = probe_factory([f"edge/{node.node_id}/#"])
    _wait_online(probe, node)
    probe.publish(f"edge/{node.node_id}/text", {"text": "sing me a sea shanty", "id": "r-2"})
    event = probe.wait_for(f"edge/{node.node_id}/intent", _intent_for("r-2")).json()
    assert event["intent"] is None
    assert event["slots"] == {}
    assert event["tier"] is None


def test_hermes_query_is_answered_with_a_hermes_intent(
    start_node: Callable[..., Node], probe_factory: Callable[..., Probe]
) -> None:
    node = start_node()
    probe = probe_factory([f"edge/{node.node_id}/status", "hermes/intent/#", "hermes/nlu/#"])
    _wait_online(probe, node)
    query = {
        "input": "set the bedside lamp to 30 percent",
        "siteId": "bedroom",
        "sessionId": "s-7",
        "id": "h-1",
        "customData": "keep me",
    }
    probe.publish("hermes/nlu/query", query)
    answer = probe.wait_for("hermes/intent/HassLightSet").json()
    assert answer["intent"] == {"intentName": "HassLightSet", "confidenceScore": 1.0}
    assert (answer["siteId"], answer["sessionId"], answer["id"]) == ("bedroom", "s-7", "h-1")
    assert answer["customData"] == "keep me"
    assert answer["input"] == query["input"]
    slots = {slot["slotName"]: slot for slot in answer["slots"]}
    assert slots["name"]["value"] == {"kind": "Unknown", "value": "Bedside Lamp"}
    assert slots["name"]["rawValue"] == "bedside lamp"
    assert query["input"][slots["name"]["range"]["start"] : slots["name"]["range"]["end"]] == (
        "bedside lamp"
    )
    assert slots["brightness"]["value"]["value"] == 30


def test_hermes_query_that_matches_nothing_is_not_recognized(
    start_node: Callable[..., Node], probe_factory: Callable[..., Probe]
) -> None:
    node = start_node()
    probe = probe_factory([f"edge/{node.node_id}/status", "hermes/nlu/intentNotRecognized"])
    _wait_online(probe, node)
    probe.publish(
        "hermes/nlu/query",
        {"input": "what is love", "siteId": "hall", "sessionId": "s-8", "id": "h-2"},
    )
    answer = probe.wait_for("hermes/nlu/intentNotRecognized", _intent_for("h-2")).json()
    assert (answer["input"], answer["siteId"], answer["sessionId"]) == (
        "what is love",
        "hall",
        "s-8",
    )


BAD_INPUTS: list[tuple[bytes, str]] = [
    (b"turn on the lights", "payload is not JSON"),
    (b"\xff\xfe\x00\x81garbage", "payload is not UTF-8 text"),
    (b'["turn on the lights"]', "payload must be a JSON object, not list"),
    (b'{"id": "b-4"}', "missing field 'text'"),
    (b'{"text": 42, "id": "b-5"}', "field 'text' must be a string, not int"),
    (b'{"text": "   ", "id": "b-6"}', "field 'text' is empty"),
    (json.dumps({"text": "turn on the light " * 10}).encode(), "more than the limit of 100"),
    (json.dumps({"text": "x", "pad": "y" * 5000}).encode(), "over the limit of 4096"),
    (b'{"text": "lights on", "site_id": 7}', "field 'site_id' must be a string"),
]


def test_every_kind_of_bad_input_is_reported_and_the_next_command_still_answered(
    start_node: Callable[..., Node], probe_factory: Callable[..., Probe]
) -> None:
    node = start_node(limits={"max_text_chars": 100, "max_payload_bytes": 4096})
    text_topic = f"edge/{node.node_id}/text"
    probe = probe_factory([f"edge/{node.node_id}/#"])
    _wait_online(probe, node)
    for payload, expected in BAD_INPUTS:
        probe.publish(text_topic, payload)
        error = probe.wait_for(f"edge/{node.node_id}/error").json()
        assert expected in error["error"], (payload, error)
        assert error["topic"] == text_topic
    probe.publish("hermes/nlu/query", b"{not json")
    assert probe.wait_for(f"edge/{node.node_id}/error").json()["topic"] == "hermes/nlu/query"
    probe.publish(text_topic, {"text": "lock the front door", "id": "after-bad"})
    event = probe.wait_for(f"edge/{node.node_id}/intent", _intent_for("after-bad")).json()
    assert event["intent"] == "HassTurnOn"
    assert node.process.poll() is None


def test_a_burst_of_commands_is_answered_once_each(
    start_node: Callable[..., Node], probe_factory: Callable[..., Probe]
) -> None:
    node = start_node()
    probe = probe_factory([f"edge/{node.node_id}/#"])
    _wait_online(probe, node)
    ids = [f"burst-{i}" for i in range(60)]
    for request_id in ids:
        probe.publish(
            f"edge/{node.node_id}/text", {"text": "turn off the floor lamp", "id": request_id}
        )
    answered = [probe.wait_for(f"edge/{node.node_id}/intent").json()["id"] for _ in ids]
    assert sorted(answered) == sorted(ids)


def test_node_reconnects_after_the_broker_restarts(
    start_node: Callable[..., Node], own_broker: Broker, probe_factory: Callable[..., Probe]
) -> None:
    node = start_node(port=own_broker.port)
    probe = probe_factory([f"edge/{node.node_id}/#"], port=own_broker.port)
    _wait_online(probe, node)
    probe.close()
    own_broker.stop()
    own_broker.start()
    probe = probe_factory([f"edge/{node.node_id}/#"], port=own_broker.port)
    # The restarted broker kept nothing: "online" can only come from the node reconnecting.
    _wait_online(probe, node)
    probe.publish(
        f"edge/{node.node_id}/text", {"text": "open the garage door", "id": "after-restart"}
    )
    event = probe.wait_for(f"edge/{node.node_id}/intent", _intent_for("after-restart")).json()
    assert event["intent"] == "HassTurnOn"
    assert event["slots"] == {"name": "Garage Door"}


def test_sigterm_publishes_offline_and_exits_without_a_traceback(
    start_node: Callable[..., Node], probe_factory: Callable[..., Probe]
) -> None:
    node = start_node()
    probe = probe_factory([f"edge/{node.node_id}/status"])
    _wait_online(probe, node)
    assert node.stop(signal.SIGTERM) == 0
    late = probe_factory([f"edge/{node.node_id}/status"])
    status = late.wait_for(f"edge/{node.node_id}/status")
    assert (status.payload, status.retain) == (b"offline", True)
    assert "Traceback" not in node.log()
    assert "stopped" in node.log()


def test_a_killed_node_is_marked_offline_by_its_last_will(
    start_node: Callable[..., Node], probe_factory: Callable[..., Probe]
) -> None:
    node = start_node(broker={"host": "127.0.0.1", "keepalive_s": 5})
    probe = probe_factory([f"edge/{node.node_id}/status"])
    _wait_online(probe, node)
    node.stop(signal.SIGKILL)
    status = probe.wait_for(f"edge/{node.node_id}/status", timeout=15)
    assert status.payload == b"offline"


def test_a_sentence_of_two_commands_is_answered_with_two_intent_events(
    start_node: Callable[..., Node], probe_factory: Callable[..., Probe]
) -> None:
    node = start_node()
    probe = probe_factory([f"edge/{node.node_id}/#"])
    _wait_online(probe, node)
    text = "turn off the kitchen ceiling light and lock the front door"
    probe.publish(f"edge/{node.node_id}/text", {"text": text, "id": "two-1"})
    first = probe.wait_for(f"edge/{node.node_id}/intent", _intent_for("two-1")).json()
    second = probe.wait_for(f"edge/{node.node_id}/intent", _intent_for("two-1")).json()
    assert [(e["index"], e["count"]) for e in (first, second)] == [(0, 2), (1, 2)]
    assert (first["intent"], first["slots"]) == ("HassTurnOff", {"name": "Kitchen Ceiling Light"})
    assert (second["intent"], second["slots"]) == ("HassTurnOn", {"name": "Front Door"})
    assert first["text"] == second["text"] == text


def test_a_negation_is_not_acted_on(
    start_node: Callable[..., Node], probe_factory: Callable[..., Probe]
) -> None:
    node = start_node()
    probe = probe_factory([f"edge/{node.node_id}/#"])
    _wait_online(probe, node)
    probe.publish(f"edge/{node.node_id}/text", {"text": "don't unlock the front door", "id": "n-1"})
    event = probe.wait_for(f"edge/{node.node_id}/intent", _intent_for("n-1")).json()
    assert (event["intent"], event["count"]) == (None, 0)
