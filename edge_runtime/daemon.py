"""The node daemon: wires the MQTT client to the NLU cascade and owns the lifecycle.

Threads: paho's network thread only queues inbound messages (`Inbox`: bounded
requests, and control messages that jump the queue); the main thread is the
single worker that validates, recognizes, routes and publishes, so requests
are answered in the order they came and the routing state needs no locks.
Bad input of any kind becomes an event on `edge/<node>/error` and the loop
goes on. SIGTERM or SIGINT stops intake, answers what is already queued (and
waits for requests out at peers, within their deadline), publishes the
retained `offline` status and disconnects: no accepted request is lost.

The network (docs/mqtt.md): what the local cascade cannot serve (nothing above
threshold, or a domain this node does not serve) goes to a peer through the
`Router`; requests from peers and pools are answered on their response topic.
Every request id is remembered for a while, so a repeat is never executed
twice: the origin drops it, a serving peer sends its stored reply again.

Speech (docs/voice.md): satellites' audio and the microphone are heard on the
voice thread (`Hearing`); each utterance's transcript is published from there,
and its text joins the inbox as a `SpeechRequest`, answered like a typed command.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from edge_runtime import __version__
from edge_runtime.hearing import Hearing, SatelliteAudio
from edge_runtime.inbox import Inbox
from edge_runtime.mesh import discovery, hermes
from edge_runtime.mesh.client import Inbound, LastWill, MqttClient
from edge_runtime.mesh.peers import Capabilities, Load, PeerTable
from edge_runtime.mesh.recent import Recent
from edge_runtime.mesh.router import Need, Router
from edge_runtime.mesh.topics import (
    CAPABILITIES_LEAF,
    HERMES_NLU_QUERY,
    PRESENCE_LEAVES,
    STATUS_LEAF,
    STATUS_OFFLINE,
    STATUS_ONLINE,
    NodeTopics,
    peer_capabilities_filter,
    peer_of,
    peer_status_filter,
    pool_request,
    pool_subscription,
)
from edge_runtime.messages import (
    PROTOCOL_VERSION,
    BadRequest,
    ErrorEvent,
    Intent,
    Recognition,
    RoutedRequest,
    TextRequest,
    dumps,
)
from edge_runtime.nlu.cascade import Cascade
from edge_runtime.nlu.domains import all_domains, intent_domain
from edge_runtime.runtime import Runtime
from edge_runtime.service import Notifier
from edge_runtime.stt.base import SpeechToText
from edge_runtime.voice import Heard

log = logging.getLogger(__name__)

POLL_S = 0.2
DRAIN_LIMIT_S = 10.0
BROKER_PATIENCE_S = 3.0
LATENCY_WINDOW = 200
CAPABILITIES_MIN_GAP_S = 1.0
"""Load changes republish the capabilities, but not more often than this."""


@dataclass(frozen=True)
class LocalRequest:
    """A command typed at the daemon's own console; the answer goes to `reply` and to MQTT."""

    text: str
    reply: Callable[[Recognition], None]


@dataclass(frozen=True)
class Connected:
    """The client (re)connected: publish presence, capabilities and discovery again."""


@dataclass(frozen=True)
class SpeechRequest:
    """An utterance heard on the voice thread, to be answered in turn like a typed command."""

    heard: Heard
    request_id: str


Item = Inbound | LocalRequest | Connected | SpeechRequest
Deliver = Callable[[Recognition], None]


class Daemon:
    """One node: answers typed commands, Hermes queries and peers' requests until stopped."""

    def __init__(
        self,
        runtime: Runtime,
        cascade: Cascade,
        speech: SpeechToText | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.runtime = runtime
        self.config = runtime.config
        self.network = self.config.network
        self.cascade = cascade
        self.topics = NodeTopics(self.config.topic_prefix, self.config.node_id)
        self.inbox: Inbox[Item] = Inbox(self.config.limits.queue_size)
        self.stopping = threading.Event()
        self.latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self.domains = list(self.network.domains or all_domains(runtime.home))
        self.peers = PeerTable(self.config.node_id)
        self.router = Router(
            self.config.node_id,
            self.peers,
            self._send_to_peer,
            self.network.deadline_ms / 1000,
            self.network.max_peers_tried,
        )
        self.answered: Recent[str, bool] = Recent(
            self.network.remembered_ids, self.network.remember_s
        )
        self.replies: Recent[tuple[str, str], bytes] = Recent(
            self.network.remembered_ids, self.network.remember_s
        )
        self.hearing = self._hearing(speech)
        self.notifier = notifier or Notifier.from_environment()
        self._service_connected: bool | None = None
        self._published_load: tuple[int, float | None] | None = None
        self._published_at = -1e9
        self.client = MqttClient(
            self.config.broker,
            self.config.client_id,
            self._accept,
            self._subscriptions(),
            LastWill(self.topics.status, STATUS_OFFLINE),
            on_online=lambda: self.inbox.put_control(Connected()),
        )
        self._handlers: dict[str, Callable[[Inbound], None]] = {
            self.topics.text: self._handle_text,
            HERMES_NLU_QUERY: self._handle_hermes_query,
            self.topics.request: self._handle_peer_request,
            self.topics.responses: self._handle_reply,
            **{
                pool_request(self.config.topic_prefix, pool): self._handle_peer_request
                for pool in self.network.pools
            },
        }

    def _hearing(self, speech: SpeechToText | None) -> Hearing | None:
        voice = self.config.voice
        if speech is None or not voice.enabled:
            return None
        return Hearing(
            speech,
            self.runtime.endpoint_config(),
            self._on_heard,
            self._on_bad_audio,
            max_chunk_bytes=voice.max_chunk_bytes,
            queue_seconds=voice.queue_seconds,
            stream_timeout_s=voice.stream_timeout_s,
            microphone=voice.microphone,
        )

    def _subscriptions(self) -> list[str]:
        prefix = self.config.topic_prefix
        topics = [self.topics.text]
        if self.hearing is not None:
            topics.append(self.topics.audio_filter)
        if self.config.hermes.enabled:
            topics.append(HERMES_NLU_QUERY)
        if self.network.enabled:
            topics += [self.topics.request, self.topics.responses]
            topics += [peer_status_filter(prefix), peer_capabilities_filter(prefix)]
            topics += [pool_subscription(prefix, pool) for pool in self.network.pools]
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
        broker = f"{self.config.broker.host}:{self.config.broker.port}"
        self.notifier.status(f"connecting to broker {broker}")
        self.client.start()
        if self.hearing is not None:
            self.hearing.start()
        started = time.monotonic()
        warned = False
        while not self.stopping.is_set():
            self._serve_one(self._wait_s())
            self.notifier.keep_alive()  # from this loop only: a blocked loop stops the pings
            waited = time.monotonic() - started
            self._report_to_service(broker, waited)
            if not warned and waited > BROKER_PATIENCE_S and not self.client.connected.is_set():
                warned = True
                log.warning(
                    "broker %s:%s is not reachable; retrying in the background",
                    self.config.broker.host,
                    self.config.broker.port,
                )
        queued = self.inbox.requests_waiting() + len(self.router.pending)
        self.notifier.stopping(f"stopping: answering {queued} queued requests")
        if self.hearing is not None:
            self.hearing.stop(DRAIN_LIMIT_S)  # what was said before the stop is answered too
        self._drain()
        self.client.stop(final=(self.topics.status, STATUS_OFFLINE))
        log.info("node %s stopped", self.config.node_id)
        return 0

    def _report_to_service(self, broker: str, waited: float) -> None:
        """READY=1 once the broker is connected, or offline after `service.ready_without_broker_s`;
        afterwards a STATUS line whenever the connection comes or goes."""
        connected = self.client.connected.is_set()
        if connected == self._service_connected:
            return
        if connected:
            text = f"serving: connected to broker {broker}"
        else:
            patience = self.config.service.ready_without_broker_s
            if not self.notifier.is_ready and (patience is None or waited < patience):
                return
            text = f"serving offline: broker {broker} unreachable, reconnecting"
        self._service_connected = connected
        if self.notifier.is_ready:
            self.notifier.status(text)
        else:
            self.notifier.ready(text)

    def _install_signal_handlers(self) -> None:
        def request_stop(signum: int, _frame: FrameType | None) -> None:
            log.info("received %s; finishing queued requests", signal.Signals(signum).name)
            self.stopping.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)

    def _wait_s(self) -> float:
        """Sleep until the next message, route deadline or capabilities refresh, at most POLL_S."""
        deadline = self.router.next_deadline()
        if deadline is None:
            return POLL_S
        return min(POLL_S, max(0.0, deadline - time.monotonic()))

    def _drain(self) -> None:
        """Answer what was accepted before the stop, and what is out at peers, in bounded time."""
        deadline = time.monotonic() + DRAIN_LIMIT_S
        while (not self.inbox.empty() or self.router.pending) and time.monotonic() < deadline:
            self._serve_one(self._wait_s() if self.router.pending else 0.0)
        if not self.inbox.empty() or self.router.pending:
            log.warning(
                "stopping with %d requests unanswered",
                self.inbox.requests_waiting() + len(self.router.pending),
            )

    def _serve_one(self, timeout: float) -> None:
        item = self.inbox.get(timeout)
        self.router.expire()
        if item is not None:
            self._dispatch(item)
        self._refresh_capabilities()

    def _dispatch(self, item: Item) -> None:
        if isinstance(item, Connected):
            self._publish_presence()
            return
        if isinstance(item, LocalRequest):
            self._serve_local(item)
            return
        if isinstance(item, SpeechRequest):
            self._serve_speech(item)
            return
        try:
            self._handle(item)
        except BadRequest as exc:
            self._report(ErrorEvent(str(exc), item.topic, self.config.node_id, exc.request_id))
        except Exception as exc:  # the loop boundary: report, log, keep serving
            log.exception("internal error on %s", item.topic)
            self._report(ErrorEvent(f"internal error: {exc}", item.topic, self.config.node_id))

    def _handle(self, message: Inbound) -> None:
        handler = self._handlers.get(message.topic)
        if handler is not None:
            handler(message)
            return
        peer = peer_of(self.config.topic_prefix, message.topic)
        if peer is None:
            return
        node, leaf = peer
        if leaf == STATUS_LEAF and self.peers.on_status(node, message.payload):
            self.router.on_peer_gone(node)
        elif leaf == CAPABILITIES_LEAF:
            self.peers.on_capabilities(node, message.payload)

    # --- inbound (paho's network thread): queue and return ---

    def _accept(self, message: Inbound) -> None:
        """Replies and peers' status/capabilities jump the queue; requests wait their turn;
        audio goes to the voice thread."""
        site = self.topics.audio_site(message.topic)
        if site is not None:
            self._accept_audio(site, message)
            return
        peer = peer_of(self.config.topic_prefix, message.topic)
        if message.topic == self.topics.responses or (
            peer is not None and peer[1] in PRESENCE_LEAVES
        ):
            self.inbox.put_control(message)
            return
        try:
            self.inbox.put(message)
        except queue.Full:
            self._report(
                ErrorEvent(
                    f"queue full ({self.inbox.capacity} waiting); request refused, "
                    "send it again later",
                    message.topic,
                    self.config.node_id,
                )
            )

    def _accept_audio(self, site: str, message: Inbound) -> None:
        assert self.hearing is not None  # the audio topic is subscribed only with hearing
        if not self.hearing.submit(SatelliteAudio(site, message.topic, message.payload)):
            limit = self.config.voice.queue_seconds
            self._on_bad_audio(
                f"audio queue full ({limit:.0f} s of audio waiting); chunk refused",
                message.topic,
                None,
            )

    # --- speech (the voice thread) ---

    def _on_heard(self, heard: Heard, request_id: str) -> None:
        """Publish the transcript now; the text waits in the inbox for the worker."""
        transcript = heard.transcript
        event = heard.to_event(request_id, self.config.node_id)
        self.client.publish(self.topics.transcript, dumps(event))
        if self.config.hermes.enabled and transcript.understood:
            topic, payload = hermes.text_captured(
                transcript.text,
                transcript.confidence,
                transcript.audio_s,
                heard.site,
                self.config.language,
            )
            self.client.publish(topic, dumps(payload))
        try:
            self.inbox.put(SpeechRequest(heard, request_id))
        except queue.Full:
            self._on_bad_audio(
                f"queue full ({self.inbox.capacity} waiting); utterance not answered",
                self.topics.audio_topic(heard.site),
                request_id,
            )

    def _on_bad_audio(self, problem: str, topic: str, request_id: str | None) -> None:
        self._report(ErrorEvent(problem, topic, self.config.node_id, request_id))

    # --- requests (worker thread) ---

    def _recognize(self, request: TextRequest) -> Recognition:
        recognition = self.cascade.recognize(request)
        self.latencies.append(recognition.latency_ms)
        intents = recognition.intents
        log.info(
            "id=%s text=%r -> %s (%s, %.1f ms)",
            request.id,
            request.text,
            " + ".join(intent.name for intent in intents) or "not understood",
            intents[0].tier if intents else "-",
            recognition.latency_ms,
        )
        return recognition

    def _served_here(self, intent: Intent | None) -> bool:
        return intent is None or intent_domain(intent, self.runtime.home) in self.domains

    def _need(self, intents: tuple[Intent, ...]) -> Need | None:
        """What to ask a peer for, or None when the local answer stands."""
        if not self.network.enabled:
            return None
        if not intents:
            return Need(self.config.language, tiers_here=tuple(self.cascade.tier_names))
        elsewhere = [intent_domain(i, self.runtime.home) for i in intents]
        domain = next((d for d in elsewhere if d not in self.domains), None)
        return None if domain is None else Need(self.config.language, domain=domain)

    def _answer(self, request: TextRequest, deliver: Deliver) -> None:
        """Recognize here or at a peer; `deliver` is called exactly once per request id."""
        if self.answered.get(request.id):
            log.info("id=%s was answered already; the repeat is dropped", request.id)
            return
        self.answered.put(request.id, True)
        started = time.monotonic()
        recognition = self._recognize(request)
        if not recognition.intents and self._reply_in_words(request):
            deliver(recognition)  # a question, answered in words: no action, nothing to route
            return
        need = self._need(recognition.intents)
        if need is None:
            deliver(recognition)
            return

        def finish(intents: tuple[Intent, ...]) -> None:
            latency_ms = (time.monotonic() - started) * 1000
            first, more = (intents[0], intents[1:]) if intents else (None, ())
            deliver(Recognition(request, first, latency_ms, self.config.node_id, more))

        if not self.router.route(request, need, finish):
            log.info("id=%s: no live peer serves it; not understood", request.id)
            finish(())

    def _reply_in_words(self, request: TextRequest) -> bool:
        """Answer a free question on `reply` when a tier here can (an instruct generator)."""
        started = time.perf_counter()
        answer = self.cascade.answer_freely(request)
        if answer is None:
            return False
        reply = {
            "v": PROTOCOL_VERSION,
            "id": request.id,
            "text": request.text,
            "answer": answer,
            "node": self.config.node_id,
            "site_id": request.site_id,
            "latency_ms": round((time.perf_counter() - started) * 1000, 3),
        }
        self.client.publish(self.topics.reply, dumps(reply))
        log.info("id=%s: answered in words (%d characters)", request.id, len(answer))
        return True

    def _publish_intent(self, recognition: Recognition) -> None:
        for event in recognition.to_events():  # one per command said, in order
            self.client.publish(self.topics.intent, dumps(event))

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

        def deliver(recognition: Recognition) -> None:
            local.reply(recognition)
            self._publish_intent(recognition)

        self._answer(request, deliver)

    def _serve_speech(self, item: SpeechRequest) -> None:
        """Answer an utterance as a typed command; one not understood gets an empty answer."""
        heard, transcript = item.heard, item.heard.transcript
        max_chars = self.config.limits.max_text_chars

        def deliver(recognition: Recognition) -> None:
            self._publish_intent(recognition)
            log.info(
                "id=%s site=%s: intent %.1f ms after the end of speech",
                item.request_id,
                heard.site,
                (time.monotonic() - heard.ended_at) * 1000,
            )

        if transcript.understood and transcript.text:
            request = TextRequest.build(
                transcript.text, item.request_id, heard.site, None, max_chars
            )
            self._answer(request, deliver)
            return
        unheard = TextRequest(transcript.text, item.request_id, heard.site)
        deliver(Recognition(unheard, None, 0.0, self.config.node_id))

    def _handle_text(self, message: Inbound) -> None:
        limits = self.config.limits
        request = TextRequest.from_payload(
            message.payload, limits.max_payload_bytes, limits.max_text_chars
        )
        self._answer(request, self._publish_intent)

    def _handle_hermes_query(self, message: Inbound) -> None:
        limits = self.config.limits
        query = hermes.HermesQuery.from_payload(
            message.payload, limits.max_payload_bytes, limits.max_text_chars
        )
        site_ids = self.config.hermes.site_ids
        if site_ids and query.request.site_id not in site_ids:
            return

        def deliver(recognition: Recognition) -> None:
            topic, payload = hermes.answer(query, recognition)
            self.client.publish(topic, dumps(payload))

        self._answer(query.request, deliver)

    def _handle_peer_request(self, message: Inbound) -> None:
        """A request from a peer or a pool client: answer here, never route it on."""
        limits = self.config.limits
        routed = RoutedRequest.from_payload(
            message.payload, limits.max_payload_bytes, limits.max_text_chars, message.response_topic
        )
        assert routed.reply_to is not None  # from_payload refuses a request with no way back
        key = (routed.origin or "", routed.request.id)
        stored = self.replies.get(key)
        if stored is None:
            recognition = self._recognize(routed.request)
            if not all(self._served_here(intent) for intent in recognition.intents):
                recognition = dataclasses.replace(recognition, intent=None, more=())
            stored = dumps(recognition.to_reply())
            self.replies.put(key, stored)
        else:
            log.info("id=%s from %s was answered already; same reply again", *key[::-1])
        self.client.publish_reply(routed.reply_to, stored, message.correlation_data)

    def _handle_reply(self, message: Inbound) -> None:
        self.router.on_reply(message.correlation_data, message.payload)

    def _send_to_peer(self, peer: str, payload: bytes, correlation: bytes, expiry_s: float) -> None:
        topic = NodeTopics(self.config.topic_prefix, peer).request
        self.client.publish_request(topic, payload, self.topics.responses, correlation, expiry_s)

    # --- outbound ---

    def _report(self, event: ErrorEvent) -> None:
        log.warning("bad input on %s (id=%s): %s", event.topic, event.request_id, event.error)
        self.client.publish(self.topics.error, dumps(event.to_json()))

    def _load(self) -> Load:
        ordered = sorted(self.latencies)
        p95 = ordered[int(0.95 * (len(ordered) - 1))] if ordered else None
        waiting = self.inbox.requests_waiting() + len(self.router.pending)
        return Load(waiting, round(p95, 2) if p95 is not None else None)

    def _models(self) -> tuple[str, ...]:
        """The models of the tiers that loaded (a tier left out serves none)."""
        tiers = self.runtime.selection.profile.tiers
        found = (getattr(tiers, name).model for name in self.cascade.tier_names)
        return tuple(model for model in found if model)

    def capabilities(self) -> Capabilities:
        return Capabilities(
            node=self.config.node_id,
            profile=self.runtime.profile_id,
            version=__version__,
            tiers=tuple(self.cascade.tier_names),
            models=self._models(),
            languages=(self.config.language,),
            domains=tuple(self.domains),
            pools=self.network.pools,
            load=self._load(),
            interval_s=self.network.capabilities_interval_s,
            sent_at=time.time(),
        )

    def _publish_capabilities(self) -> None:
        caps = self.capabilities()
        speech = self.hearing.engine.engine if self.hearing is not None else None
        document = {**caps.to_json(), "hermes": self.config.hermes.enabled, "speech": speech}
        self.client.publish(self.topics.capabilities, dumps(document), retain=True)
        self._published_load = _load_signature(caps.load)
        self._published_at = time.monotonic()

    def _refresh_capabilities(self) -> None:
        """Republish on a load change (at most once a second) and at the configured interval."""
        if not self.client.connected.is_set():
            return
        since = time.monotonic() - self._published_at
        if since < CAPABILITIES_MIN_GAP_S:
            return  # the usual case on the request path: no need to look at the load
        if (
            since >= self.network.capabilities_interval_s
            or _load_signature(self._load()) != self._published_load
        ):
            self._publish_capabilities()

    def _publish_presence(self) -> None:
        self.client.publish(self.topics.status, STATUS_ONLINE, retain=True)
        self._publish_capabilities()
        if self.config.discovery.enabled:
            device = discovery.NodeDevice(
                self.config.node_id,
                self.runtime.profile_id,
                __version__,
                self.topics.status,
                self.topics.intent,
            )
            for topic, payload in discovery.discovery_messages(
                device, self.cascade.intent_names(), self.config.discovery.prefix
            ):
                self.client.publish(topic, payload, retain=True)


def _load_signature(load: Load) -> tuple[int, float | None]:
    """Load rounded so that noise does not republish: queue by decade, p95 to 2 digits."""
    queue_class = 0 if load.queue == 0 else len(str(load.queue))
    p95 = None if load.p95_ms is None else float(f"{load.p95_ms:.2g}")
    return queue_class, p95
