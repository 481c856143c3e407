"""Rhasspy/Snips Hermes compatibility for NLU: `hermes/nlu/query` in, `hermes/intent/<name>` out.

Payloads follow the Hermes protocol as Rhasspy implements it (rhasspy-hermes
`NluQuery`, `NluIntent`, `NluIntentNotRecognized`): camelCase keys, `siteId`,
`sessionId`, `id` and `customData` echoed back unchanged, slots as a list with
`entity`, `slotName`, `rawValue`, `value: {kind, value}` and a character
`range` in the input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edge_runtime.mesh.topics import HERMES_NOT_RECOGNIZED, HERMES_TEXT_CAPTURED, hermes_intent
from edge_runtime.messages import (
    BadRequest,
    Recognition,
    TextRequest,
    decode_json_object,
    optional_str,
)


@dataclass(frozen=True)
class HermesQuery:
    """A parsed `hermes/nlu/query`."""

    request: TextRequest
    intent_filter: tuple[str, ...] | None
    custom_data: Any
    lang: str | None

    @classmethod
    def from_payload(cls, payload: bytes, max_bytes: int, max_chars: int) -> HermesQuery:
        data = decode_json_object(payload, max_bytes)
        text = data.get("input")
        request_id = data.get("id") if isinstance(data.get("id"), str) else None
        if not isinstance(text, str):
            problem = "missing field 'input'" if text is None else "field 'input' must be a string"
            raise BadRequest(problem, request_id)
        site_id = optional_str(data, "siteId", request_id) if "siteId" in data else "default"
        session_id = optional_str(data, "sessionId", request_id)
        intent_filter = data.get("intentFilter")
        if intent_filter is not None and (
            not isinstance(intent_filter, list)
            or not all(isinstance(i, str) for i in intent_filter)
        ):
            raise BadRequest("field 'intentFilter' must be a list of intent names", request_id)
        request = TextRequest.build(text, request_id, site_id, session_id, max_chars)
        return cls(
            request,
            tuple(intent_filter) if intent_filter else None,
            data.get("customData"),
            data.get("lang") if isinstance(data.get("lang"), str) else None,
        )

    def allows(self, intent_name: str) -> bool:
        return self.intent_filter is None or intent_name in self.intent_filter


def _slot_list(recognition: Recognition) -> list[dict[str, Any]]:
    assert recognition.intent is not None
    text = recognition.request.text
    lowered = text.lower()
    slots = []
    for name, slot in recognition.intent.slots.items():
        start = lowered.find(slot.text.lower()) if slot.text else -1
        span = (start, start + len(slot.text)) if start >= 0 else (0, 0)
        slots.append(
            {
                "entity": name,
                "slotName": name,
                "rawValue": text[span[0] : span[1]] if start >= 0 else slot.text,
                "value": {"kind": "Unknown", "value": slot.value},
                "confidence": recognition.intent.confidence,
                "range": {"start": span[0], "end": span[1], "rawStart": span[0], "rawEnd": span[1]},
            }
        )
    return slots


def _common(query: HermesQuery) -> dict[str, Any]:
    request = query.request
    return {
        "input": request.text,
        "id": request.id,
        "siteId": request.site_id or "default",
        "sessionId": request.session_id,
        "customData": query.custom_data,
    }


def answer(query: HermesQuery, recognition: Recognition) -> tuple[str, dict[str, Any]]:
    """The Hermes topic and payload that answer a query."""
    intent = recognition.intent
    if intent is None or not query.allows(intent.name):
        return HERMES_NOT_RECOGNIZED, _common(query)
    return hermes_intent(intent.name), {
        **_common(query),
        "intent": {"intentName": intent.name, "confidenceScore": intent.confidence},
        "slots": _slot_list(recognition),
        "rawInput": query.request.text,
        "asrTokens": [],
        "asrConfidence": None,
        "wakewordId": None,
        "lang": query.lang,
    }


def text_captured(
    text: str, confidence: float, audio_s: float, site_id: str, lang: str
) -> tuple[str, dict[str, Any]]:
    """`hermes/asr/textCaptured` for an utterance speech to text understood (rhasspy-hermes
    `AsrTextCaptured`): a Rhasspy dialogue manager takes it from here as from its own ASR."""
    return HERMES_TEXT_CAPTURED, {
        "text": text,
        "likelihood": confidence,
        "seconds": round(audio_s, 3),
        "siteId": site_id,
        "sessionId": None,
        "wakewordId": None,
        "asrTokens": None,
        "lang": lang,
    }
