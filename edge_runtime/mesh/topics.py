"""Every MQTT topic edge-runtime uses, in one place (see docs/mqtt.md for the payloads)."""

from __future__ import annotations

from dataclasses import dataclass

HERMES_NLU_QUERY = "hermes/nlu/query"
HERMES_NOT_RECOGNIZED = "hermes/nlu/intentNotRecognized"
HERMES_INTENT_PREFIX = "hermes/intent/"
HERMES_TEXT_CAPTURED = "hermes/asr/textCaptured"

STATUS_ONLINE = b"online"
STATUS_OFFLINE = b"offline"


def hermes_intent(intent_name: str) -> str:
    return HERMES_INTENT_PREFIX + intent_name


STATUS_LEAF = "status"
CAPABILITIES_LEAF = "capabilities"
PRESENCE_LEAVES = (STATUS_LEAF, CAPABILITIES_LEAF)
"""What each node publishes retained about itself, and every node reads of the others."""

POOL_LEVEL = "pool"
"""`<prefix>/pool/<name>/request`: a node id may therefore not be `pool`."""


def peer_status_filter(prefix: str) -> str:
    return f"{prefix}/+/{STATUS_LEAF}"


def peer_capabilities_filter(prefix: str) -> str:
    return f"{prefix}/+/{CAPABILITIES_LEAF}"


def pool_request(prefix: str, pool: str) -> str:
    """Where a client sends a request for any one node of a pool."""
    return f"{prefix}/{POOL_LEVEL}/{pool}/request"


def pool_subscription(prefix: str, pool: str) -> str:
    """The shared subscription of a pool's members: the broker gives each request to one."""
    return f"$share/{prefix}/{pool_request(prefix, pool)}"


def peer_of(prefix: str, topic: str) -> tuple[str, str] | None:
    """(`node`, `leaf`) of a topic `<prefix>/<node>/<leaf>`, or None for any other topic."""
    head, _, rest = topic.partition("/")
    node, _, leaf = rest.partition("/")
    if head != prefix or not node or not leaf or "/" in leaf or node == POOL_LEVEL:
        return None
    return node, leaf


@dataclass(frozen=True)
class NodeTopics:
    """The topics of one node under a prefix (default `edge`)."""

    prefix: str
    node: str

    def _topic(self, leaf: str) -> str:
        return f"{self.prefix}/{self.node}/{leaf}"

    @property
    def status(self) -> str:
        """Retained `online`/`offline`; `offline` is the node's Last Will."""
        return self._topic(STATUS_LEAF)

    @property
    def capabilities(self) -> str:
        """Retained JSON: profile, tiers, languages, domains, load."""
        return self._topic(CAPABILITIES_LEAF)

    @property
    def text(self) -> str:
        """Inbound typed commands `{"text": ..., "id": ...}`."""
        return self._topic("text")

    @property
    def intent(self) -> str:
        """Outbound intent events, one per request."""
        return self._topic("intent")

    @property
    def transcript(self) -> str:
        """Outbound: what speech to text heard in each utterance, before its intent event."""
        return self._topic("transcript")

    def audio_topic(self, site: str) -> str:
        """Inbound: the audio a satellite at `site` streams (docs/voice.md for the payload)."""
        return self._topic(f"audio/{site}")

    @property
    def audio_filter(self) -> str:
        """Every site's audio topic."""
        return self.audio_topic("+")

    def audio_site(self, topic: str) -> str | None:
        """The site of an audio topic of this node, or None for any other topic."""
        head = self.audio_topic("")
        site = topic[len(head) :] if topic.startswith(head) else ""
        return site if site and "/" not in site else None

    @property
    def error(self) -> str:
        """Outbound reports of bad input; the node keeps serving."""
        return self._topic("error")

    @property
    def request(self) -> str:
        """Inbound requests routed here by peers; answered on their MQTT 5 response topic."""
        return self._topic("request")

    @property
    def responses(self) -> str:
        """Where peers answer the requests this node routed to them (the MQTT 5 response topic)."""
        return self._topic("responses")

    @property
    def reply(self) -> str:
        """Outbound answers in words to free questions ("what can you do?"), from a generator."""
        return self._topic("reply")
