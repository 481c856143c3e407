"""The typed messages that flow between stages, and their JSON forms.

`TextRequest` comes in (typed command, or later a transcript), `Recognition`
goes out (an `Intent`, or none when nothing was understood well enough), and
`ErrorEvent` reports bad input. Incoming bytes are validated here, in
`TextRequest.from_payload`, with errors that name the problem; nothing else
parses payloads. Every JSON form carries a `v` version field.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

PROTOCOL_VERSION = 1


class BadRequest(ValueError):
    """An incoming payload that cannot be served; the message says why."""

    def __init__(self, message: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id


def new_request_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class TextRequest:
    """A command or question as text, from an automation, a person or speech to text."""

    text: str
    id: str = field(default_factory=new_request_id)
    """Request id: echoed in every answer; a repeated id is never executed twice."""
    site_id: str | None = None
    """Where the request came from (a satellite or room), when known."""
    session_id: str | None = None
    """Hermes dialogue session, echoed back unchanged."""

    @classmethod
    def from_payload(cls, payload: bytes, max_bytes: int, max_chars: int) -> TextRequest:
        """Validate an MQTT payload `{"text": ..., "id": ..., "site_id": ...}`."""
        return cls.from_json(decode_json_object(payload, max_bytes), max_chars)

    @classmethod
    def from_json(cls, data: dict[str, Any], max_chars: int) -> TextRequest:
        request_id = optional_str(data, "id")
        text = data.get("text")
        if text is None:
            raise BadRequest("missing field 'text'", request_id)
        if not isinstance(text, str):
            raise BadRequest(
                f"field 'text' must be a string, not {type(text).__name__}", request_id
            )
        return cls.build(
            text,
            request_id,
            optional_str(data, "site_id", request_id),
            optional_str(data, "session_id", request_id),
            max_chars,
        )

    @classmethod
    def build(
        cls,
        text: str,
        request_id: str | None,
        site_id: str | None,
        session_id: str | None,
        max_chars: int,
    ) -> TextRequest:
        """Check the text itself: not blank, not over the configured length."""
        text = text.strip()
        if not text:
            raise BadRequest("field 'text' is empty", request_id)
        if len(text) > max_chars:
            raise BadRequest(
                f"field 'text' has {len(text)} characters, more than the limit of {max_chars}",
                request_id,
            )
        return cls(text, request_id or new_request_id(), site_id, session_id)


@dataclass(frozen=True)
class RoutedRequest:
    """A request one node hands to another (or a client to a pool), with its way back.

    The way back is the MQTT 5 response topic and correlation data; `reply_to` in the
    payload serves clients limited to MQTT 3.1.1. `origin` and the request id together
    name the request across the network, so a repeat is never run twice.
    """

    request: TextRequest
    origin: str | None
    reply_to: str | None
    deadline_ms: int | None = None

    @classmethod
    def from_payload(
        cls, payload: bytes, max_bytes: int, max_chars: int, response_topic: str | None
    ) -> RoutedRequest:
        data = decode_json_object(payload, max_bytes)
        request = TextRequest.from_json(data, max_chars)
        reply_to = response_topic or optional_str(data, "reply_to", request.id)
        if not reply_to:
            raise BadRequest(
                "a request needs a way back: an MQTT 5 response topic or a 'reply_to' field",
                request.id,
            )
        deadline = data.get("deadline_ms")
        return cls(
            request,
            optional_str(data, "origin", request.id),
            reply_to,
            deadline if isinstance(deadline, int) else None,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "v": PROTOCOL_VERSION,
            "id": self.request.id,
            "text": self.request.text,
            "site_id": self.request.site_id,
            "session_id": self.request.session_id,
            "origin": self.origin,
            "deadline_ms": self.deadline_ms,
        }


def decode_json_object(payload: bytes, max_bytes: int) -> dict[str, Any]:
    """Bytes to a JSON object, refusing oversized, non-UTF-8 and non-object payloads."""
    if len(payload) > max_bytes:
        raise BadRequest(f"payload of {len(payload)} bytes is over the limit of {max_bytes}")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"payload is not UTF-8 text (byte {exc.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"payload is not JSON: {exc.msg} at character {exc.pos}") from None
    if not isinstance(data, dict):
        raise BadRequest(f"payload must be a JSON object, not {type(data).__name__}")
    return data


def optional_str(data: dict[str, Any], key: str, request_id: str | None = None) -> str | None:
    """A field that is absent, null or a string; anything else is bad input naming the field."""
    value = data.get(key)
    if value is None or isinstance(value, str):
        return value
    kind = type(value).__name__
    raise BadRequest(f"field {key!r} must be a string, not {kind}", request_id)


@dataclass(frozen=True)
class SlotValue:
    """One filled slot: the value in HA's schema and the words it came from."""

    value: Any
    text: str
    """The words of the request that produced the value ("half" for brightness 50)."""


@dataclass(frozen=True)
class Intent:
    """A recognized intent in Home Assistant's schema (`HassTurnOn`, slots `name`, `area` …)."""

    name: str
    slots: dict[str, SlotValue]
    confidence: float
    """Calibrated probability that name and every slot are right."""
    tier: str
    """Which tier of the cascade produced it: rules, encoder or generator."""
    node: str
    """Which node produced it (a peer, when the request was routed)."""

    def slot_values(self) -> dict[str, Any]:
        return {name: slot.value for name, slot in self.slots.items()}

    def slot_words(self) -> dict[str, str]:
        return {name: slot.text for name, slot in self.slots.items()}

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> Intent | None:
        """The intent of an event another node published (`to_event`), or None if it has none."""
        name = event.get("intent")
        if name is None:
            return None
        slots, words = event.get("slots"), event.get("slot_words") or {}
        confidence, tier, node = event.get("confidence"), event.get("tier"), event.get("node")
        if not (
            isinstance(name, str)
            and isinstance(slots, dict)
            and isinstance(words, dict)
            and isinstance(confidence, int | float)
            and isinstance(tier, str)
            and isinstance(node, str)
        ):
            raise BadRequest("an intent event needs intent, slots, confidence, tier and node")
        return cls(
            name,
            {key: SlotValue(value, str(words.get(key, value))) for key, value in slots.items()},
            float(confidence),
            tier,
            node,
        )


@dataclass(frozen=True)
class Recognition:
    """The answer to one TextRequest: an intent, or `None` for "not understood".

    A sentence of several commands ("turn off the kitchen lights and lock the
    front door") has its first intent in `intent` and the others in `more`, in
    the order said; each is published as its own event with the same request id
    and its `index`.
    """

    request: TextRequest
    intent: Intent | None
    latency_ms: float
    node: str
    more: tuple[Intent, ...] = ()

    @property
    def intents(self) -> tuple[Intent, ...]:
        return (self.intent, *self.more) if self.intent else ()

    def to_jsonl(self) -> dict[str, Any]:
        """The compact form of `edge-runtime nlu --jsonl`."""
        line = {
            "text": self.request.text,
            **_intent_fields(self.intent),
            "latency_ms": round(self.latency_ms, 3),
        }
        if self.more:
            line["more"] = [_intent_fields(intent) for intent in self.more]
        return line

    def to_event(self, index: int = 0) -> dict[str, Any]:
        """The `edge/<node>/intent` event of the `index`-th command: the JSON line's fields plus
        ids, the producing node, and `index`/`count` (count 0: nothing understood)."""
        intents = self.intents
        intent = intents[index] if index < len(intents) else None
        return {
            "v": PROTOCOL_VERSION,
            "id": self.request.id,
            "text": self.request.text,
            **_intent_fields(intent),
            "latency_ms": round(self.latency_ms, 3),
            "slot_words": intent.slot_words() if intent else {},
            "node": intent.node if intent else self.node,
            "origin": self.node,
            "site_id": self.request.site_id,
            "index": index,
            "count": len(intents),
        }

    def to_events(self) -> list[dict[str, Any]]:
        """One event per command said; one event without intent when nothing was understood."""
        return [self.to_event(index) for index in range(max(1, len(self.intents)))]

    def to_reply(self) -> dict[str, Any]:
        """What a serving peer sends back: the first event, the others under `more`."""
        first, *others = self.to_events()
        return {**first, "more": others} if others else first


def _intent_fields(intent: Intent | None) -> dict[str, Any]:
    return {
        "intent": intent.name if intent else None,
        "slots": intent.slot_values() if intent else {},
        "confidence": round(intent.confidence, 4) if intent else 0.0,
        "tier": intent.tier if intent else None,
    }


def intents_of_reply(reply: dict[str, Any]) -> tuple[Intent, ...]:
    """The intents of a peer's reply (`Recognition.to_reply`), in order; empty: none."""
    first = Intent.from_event(reply)
    if first is None:
        return ()
    more = reply.get("more") or []
    if not isinstance(more, list) or not all(isinstance(event, dict) for event in more):
        raise BadRequest("'more' of a reply must be a list of intent events")
    others = [Intent.from_event(event) for event in more]
    return (first, *(intent for intent in others if intent is not None))


@dataclass(frozen=True)
class ErrorEvent:
    """Bad input reported on `edge/<node>/error`; the daemon goes on serving."""

    error: str
    topic: str
    node: str
    request_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "v": PROTOCOL_VERSION,
            "error": self.error,
            "topic": self.topic,
            "node": self.node,
            "id": self.request_id,
        }


def dumps(data: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON, the one wire encoding of every payload we publish."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str).encode()
