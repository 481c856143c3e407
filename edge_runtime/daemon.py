"""The node daemon: wires the MQTT client to the NLU cascade and owns the lifecycle.

Threads: paho's network thread only queues inbound messages (bounded queue);
the main thread is the single worker that validates, recognizes and
publishes, so requests are answered in the order they came. Bad input of any
kind becomes an event on `edge/<node>/error` and the loop goes on. SIGTERM or
SIGINT stops intake, answers what is already queued, publishes the retained
`offline` status and disconnects: no request that was accepted is lost.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

from edge_runtime import __version__
from edge_runtime.mesh import hermes
from edge_runtime.mesh.client import Inbound, LastWill, MqttClient
from edge_runtime.mesh.topics import (
    HERMES_NLU_QUERY,
    STATUS_OFFLINE,
    STATUS_ONLINE,
    NodeTopics,
)
from edge_runtime.messages import (
    BadRequest,
    ErrorEvent,
    Recognition,
    TextRequest,
    dumps,
)
from edge_runtime.nlu.cascade import Cascade
from edge_runtime.runtime import Runtime

log = logging.getLogger(__name__)

POLL_S = 0.2
DRAIN_LIMIT_S = 10.0
BROKER_PATIENCE_S = 3.0
LATENCY_WINDOW = 200


@dataclass(frozen=True)
class LocalRequest:
    """A command typed at the daemon's own console; the answer goes to `reply` and to MQTT."""

    text: str
    reply: Callable[[Recognition], None]


class Daemon:
    """One node: answers typed commands and Hermes queries over MQTT until stopped."""

    def __init__(self, runtime: Runtime, cascade: Cascade) -> None:
        self.runtime = runtime
        self.config = runtime.config
        self.cascade = cascade
        self.topics = NodeTopics(self.config.topic_prefix, self.config.node_id)
        self.inbox: queue.Queue[Inbound | LocalRequest] = queue.Queue(
            maxsize=self.config.limits.queue_size
        )
        self.stopping = threading.Event()
        self.latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self.client = MqttClient(
            self.config.broker,
            self.config.client_id,
            self.inbox,
            self._subscriptions(),
            LastWill(self.topics.status, STATUS_OFFLINE),
            on_online=self._publish_presence,
            on_overflow=self._refuse_overflow,
        )
        self._handlers: dict[str, Callable[[Inbound], None]] = {
            self.topics.text: self._handle_text,
            HERMES_NLU_QUERY: self._handle_hermes_query,
        }

    def _subscriptions(self) -> list[str]:
        topics = [self.topics.text]
        if self.config.hermes.enabled:
            topics.append(HERMES_NLU_QUERY)
        return topics

    # --- lifecycle ---

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; return the process exit code."""
        self._install_signal_handlers()
        log.info(
            "node %s starting: profile %s, tiers %s, home %s, broker %s:%s",
            self.config.node_id,
            self.runtime.profile_id,
            ",".join(self.cascade.tier_names),
            self.runtime.home_label,
            self.config.broker.host,
            self.config.broker.port,
        )
        self.client.start()
        started = time.monotonic()
        warned = False
        while not self.stopping.is_set():
            self._serve_one(POLL_S)
            waited = time.monotonic() - started
            if not warned and waited > BROKER_PATIENCE_S and not self.client.connected.is_set():
                warned = True
                log.warning(
                    "broker %s:%s is not reachable; retrying in the background",
                    self.config.broker.host,
                    self.config.broker.port,
                )
        self._drain()
        self.client.stop(final=(self.topics.status, STATUS_OFFLINE))
        log.info("node %s stopped", self.config.node_id)
        return 0

    def _install_signal_handlers(self) -> None:
        def request_stop(signum: int, _frame: FrameType | None) -> None:
            log.info("received %s; finishing queued requests", signal.Signals(signum).name)
            self.stopping.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)

    def _drain(self) -> None:
        """Answer what was accepted before the stop, within a bounded time."""
        deadline = time.monotonic() + DRAIN_LIMIT_S
        while not self.inbox.empty() and time.monotonic() < deadline:
            self._serve_one(0)
        if not self.inbox.empty():
            log.warning("stopping with %d requests unanswered", self.inbox.qsize())

    def _serve_one(self, timeout: float) -> None:
        try:
            message = self.inbox.get(timeout=timeout) if timeout else self.inbox.get_nowait()
        except queue.Empty:
            return
        if isinstance(message, LocalRequest):
            self._serve_local(message)
            return
        handler = self._handlers.get(message.topic)
        if handler is None:
            return
        try:
            handler(message)
        except BadRequest as exc:
            self._report(ErrorEvent(str(exc), message.topic, self.config.node_id, exc.request_id))
        except Exception as exc:  # the loop boundary: report, log, keep serving
            log.exception("internal error on %s", message.topic)
            self._report(ErrorEvent(f"internal error: {exc}", message.topic, self.config.node_id))

    # --- handlers (worker thread) ---

    def _recognize(self, request: TextRequest) -> Recognition:
        recognition = self.cascade.recognize(request)
        self.latencies.append(recognition.latency_ms)
        intent = recognition.intent
        log.info(
            "id=%s text=%r -> %s (%s, %.1f ms)",
            request.id,
            request.text,
            intent.name if intent else "not understood",
            intent.tier if intent else "-",
            recognition.latency_ms,
        )
        return recognition

    def submit_local(self, text: str, reply: Callable[[Recognition], None]) -> None:
        """Queue a command typed at the console (any thread); answered in order with the rest."""
        self.inbox.put(LocalRequest(text, reply))

    def _serve_local(self, local: LocalRequest) -> None:
        try:
            request = TextRequest.build(
                local.text, None, "console", None, self.config.limits.max_text_chars
            )
        except BadRequest as exc:
            log.warning("console: %s", exc)
            return
        recognition = self._recognize(request)
        local.reply(recognition)
        self.client.publish(self.topics.intent, dumps(recognition.to_event()))

    def _handle_text(self, message: Inbound) -> None:
        limits = self.config.limits
        request = TextRequest.from_payload(
            message.payload, limits.max_payload_bytes, limits.max_text_chars
        )
        recognition = self._recognize(request)
        self.client.publish(self.topics.intent, dumps(recognition.to_event()))

    def _handle_hermes_query(self, message: Inbound) -> None:
        limits = self.config.limits
        query = hermes.HermesQuery.from_payload(
            message.payload, limits.max_payload_bytes, limits.max_text_chars
        )
        site_ids = self.config.hermes.site_ids
        if site_ids and query.request.site_id not in site_ids:
            return
        topic, payload = hermes.answer(query, self._recognize(query.request))
        self.client.publish(topic, dumps(payload))

    # --- outbound (any thread) ---

    def _report(self, event: ErrorEvent) -> None:
        log.warning("bad input on %s (id=%s): %s", event.topic, event.request_id, event.error)
        self.client.publish(self.topics.error, dumps(event.to_json()))

    def _refuse_overflow(self, message: Inbound) -> None:
        self._report(
            ErrorEvent(
                f"queue full ({self.inbox.maxsize} waiting); request refused, send it again later",
                message.topic,
                self.config.node_id,
            )
        )

    def capabilities(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        p95 = ordered[int(0.95 * (len(ordered) - 1))] if ordered else None
        return {
            "v": 1,
            "node": self.config.node_id,
            "profile": self.runtime.profile_id,
            "version": __version__,
            "tiers": self.cascade.tier_names,
            "languages": [self.config.language],
            "domains": sorted(self.runtime.home.domains),
            "hermes": self.config.hermes.enabled,
            "load": {"queue": self.inbox.qsize(), "p95_ms": round(p95, 2) if p95 else None},
        }

    def _publish_presence(self) -> None:
        self.client.publish(self.topics.status, STATUS_ONLINE, retain=True)
        self.client.publish(self.topics.capabilities, dumps(self.capabilities()), retain=True)
