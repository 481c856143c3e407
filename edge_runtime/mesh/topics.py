"""Every MQTT topic edge-runtime uses, in one place (see docs/mqtt.md for the payloads)."""

from __future__ import annotations

from dataclasses import dataclass

HERMES_NLU_QUERY = "hermes/nlu/query"
HERMES_NOT_RECOGNIZED = "hermes/nlu/intentNotRecognized"
HERMES_INTENT_PREFIX = "hermes/intent/"

STATUS_ONLINE = b"online"
STATUS_OFFLINE = b"offline"


def hermes_intent(intent_name: str) -> str:
    return HERMES_INTENT_PREFIX + intent_name


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
        return self._topic("status")

    @property
    def capabilities(self) -> str:
        """Retained JSON: profile, tiers, languages, domains, load."""
        return self._topic("capabilities")

    @property
    def text(self) -> str:
        """Inbound typed commands `{"text": ..., "id": ...}`."""
        return self._topic("text")

    @property
    def intent(self) -> str:
        """Outbound intent events, one per request."""
        return self._topic("intent")

    @property
    def error(self) -> str:
        """Outbound reports of bad input; the node keeps serving."""
        return self._topic("error")
