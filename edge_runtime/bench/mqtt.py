"""MQTT: the round trip to the configured broker, from publishing to receiving it back.

The node's own client class (`mesh.client.MqttClient`: TCP_NODELAY, TLS and credentials
from the config) subscribes to a topic of its own and publishes to it, one ping at a time.
It connects under a client id of its own with a clean session that expires at once, so a
running node on the same broker is never disturbed and nothing is left on the broker. A
broker that does not answer is recorded as unavailable, not an error.
"""

from __future__ import annotations

import queue
import time
import uuid
from collections.abc import Callable

from edge_runtime.bench.plan import Context, Step
from edge_runtime.bench.results import Figure, Finding, Note
from edge_runtime.bench.stats import percentile
from edge_runtime.mesh.client import Inbound, MqttClient

SUBJECT = "broker"
ANSWER_S = 2.0
WARM_UP = 2


def steps(context: Context) -> list[Step]:
    broker = context.config.broker
    label = f"MQTT round trip to {broker.host}:{broker.port}"
    return [Step(label, "mqtt", lambda: measure(context))]


def measure(context: Context) -> list[Finding]:
    config = context.config.broker
    where = f"{config.host}:{config.port}"
    broker = config.model_copy(update={"clean_start": True, "session_expiry_s": 0})
    client_id = f"edge-runtime-bench-{uuid.uuid4().hex[:8]}"
    topic = f"{context.config.topic_prefix}/{client_id}/ping"
    arrived: queue.SimpleQueue[tuple[bytes, float]] = queue.SimpleQueue()
    client = MqttClient(
        broker, client_id, _stamp(arrived), [topic], will=None, on_online=lambda: None
    )
    started = time.perf_counter()
    client.start()
    wait_s = context.settings.mqtt_connect_s
    try:
        if not client.connected.wait(wait_s):
            why = f"unavailable: no connection to {where} within {wait_s:g} s"
            return [Note("mqtt", SUBJECT, why, skipped=True)]
        connect_ms = (time.perf_counter() - started) * 1000
        rtts = _pings(client, topic, arrived, WARM_UP + context.settings.mqtt_pings)[WARM_UP:]
    finally:
        client.stop()
    lost = context.settings.mqtt_pings - len(rtts)
    p50, p95 = (percentile(rtts, q) if rtts else None for q in (0.50, 0.95))
    return [
        Figure("mqtt", SUBJECT, "connect_ms", "connect ms", connect_ms, "ms", "lower"),
        Figure("mqtt", SUBJECT, "rtt_p50_ms", "RTT p50 ms", p50, "ms", "lower"),
        Figure("mqtt", SUBJECT, "rtt_p95_ms", "RTT p95 ms", p95, "ms", "lower"),
        Note("mqtt", SUBJECT, f"{where}, {len(rtts)} QoS 1 pings, {lost} lost"),
    ]


def _stamp(arrived: queue.SimpleQueue[tuple[bytes, float]]) -> Callable[[Inbound], None]:
    """paho's network thread only notes the arrival time; the bench thread does the rest."""
    return lambda message: arrived.put((message.payload, time.perf_counter()))


def _pings(
    client: MqttClient, topic: str, arrived: queue.SimpleQueue[tuple[bytes, float]], count: int
) -> list[float]:
    """Round trips in ms, one ping at a time; a ping not back within ANSWER_S is lost."""
    rtts = []
    for number in range(count):
        payload = f"ping {number}".encode()
        sent = time.perf_counter()
        client.publish(topic, payload)
        deadline = sent + ANSWER_S
        while (left := deadline - time.perf_counter()) > 0:
            try:
                got, at = arrived.get(timeout=left)
            except queue.Empty:
                break
            if got == payload:
                rtts.append((at - sent) * 1000)
                break
    return rtts
