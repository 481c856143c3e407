"""The payload of the audio that satellites stream over MQTT (`edge/<node>/audio/<site>`).

A satellite (a Pi Zero with a microphone, a phone, another node) publishes each chunk of an
utterance as one message, in either of two forms:

1. A JSON header line, a newline, then raw PCM, in the spirit of Wyoming's `audio-chunk`:

       {"rate": 16000, "width": 2, "channels": 1}\\n<PCM bytes>
       {"rate": 16000, "width": 2, "channels": 1, "end": true, "id": "kitchen-42"}\\n

   `rate` (Hz), `width` (bytes per sample: 1 unsigned, 2 to 4 signed little-endian) and
   `channels` (interleaved) are required. `"end": true` says the utterance is over (push to
   talk released) and may come with or without PCM; without it, the node's end-pointer
   decides. `"id"` (at most 128 characters) becomes the request id of the resulting
   command. Any other key is refused, so a typo is an error rather than ignored. The header
   line must end within the first 512 bytes.
2. A complete WAV file (starts with `RIFF`), like Hermes `audioFrame`: integer PCM, no end
   flag and no id.

Standard PCM (16 kHz, 2 bytes, mono) is what satellites should send; anything else is
converted on the node. This module only parses and builds payloads: topics are built in
`edge_runtime.mesh.topics`, and it never touches MQTT.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any, Final

from edge_runtime.audio.format import STANDARD, AudioError, AudioFormat, scan_wav

MAX_HEADER_BYTES: Final = 512
MAX_ID_CHARS: Final = 128
_FORMAT_KEYS: Final = ("rate", "width", "channels")
_KNOWN_KEYS: Final = frozenset((*_FORMAT_KEYS, "end", "id"))


@dataclass(frozen=True)
class SatelliteChunk:
    """One message of a satellite's audio stream."""

    fmt: AudioFormat
    pcm: bytes
    """Raw PCM in `fmt`, a whole number of frames; may be empty when `end` is set."""
    end: bool = False
    """The satellite says the utterance is over."""
    request_id: str | None = None
    """The id the resulting command carries, when the satellite chose one."""


def parse_audio_payload(payload: bytes, max_bytes: int) -> SatelliteChunk:
    """Validate a payload in either form; every refusal says what is wrong with it."""
    if len(payload) > max_bytes:
        raise AudioError(
            f"audio payload is {len(payload)} bytes, more than the limit of {max_bytes}"
        )
    if payload.startswith(b"RIFF"):
        return _parse_wav(payload)
    newline = payload.find(b"\n", 0, MAX_HEADER_BYTES)
    if newline < 0:
        raise AudioError(
            "audio payload has no header line: send a JSON header, a newline and PCM, "
            f"or a WAV file (the header must end within {MAX_HEADER_BYTES} bytes)"
        )
    header = _parse_header(payload[:newline])
    fmt = AudioFormat(*(_required_int(header, key) for key in _FORMAT_KEYS))
    pcm = payload[newline + 1 :]
    fmt.check_whole_frames(len(pcm), "PCM")
    return SatelliteChunk(fmt, pcm, _end_flag(header), _request_id(header))


def encode_audio_payload(
    pcm: bytes,
    fmt: AudioFormat = STANDARD,
    end: bool = False,
    request_id: str | None = None,
) -> bytes:
    """The header form of a payload; refuses what `parse_audio_payload` would refuse."""
    fmt.check_whole_frames(len(pcm), "PCM")
    header: dict[str, Any] = {"rate": fmt.rate, "width": fmt.width, "channels": fmt.channels}
    if end:
        header["end"] = True
    if request_id is not None:
        header["id"] = _request_id({"id": request_id})
    return json.dumps(header, separators=(",", ":")).encode() + b"\n" + pcm


def _parse_wav(payload: bytes) -> SatelliteChunk:
    layout = scan_wav(io.BytesIO(payload), len(payload))
    end = layout.data_offset + layout.data_bytes
    return SatelliteChunk(layout.fmt, payload[layout.data_offset : end])


def _parse_header(line: bytes) -> dict[str, Any]:
    try:
        header = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AudioError(f"audio header is not JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise AudioError(f"audio header must be a JSON object, not {type(header).__name__}")
    unknown = sorted(set(header) - _KNOWN_KEYS)
    if unknown:
        known = ", ".join(sorted(_KNOWN_KEYS))
        raise AudioError(f"unknown audio header keys {unknown} (known: {known})")
    return header


def _required_int(header: dict[str, Any], key: str) -> int:
    value = header.get(key)
    if value is None:
        raise AudioError(f"audio header lacks {key!r}")
    if not isinstance(value, int) or isinstance(value, bool):
        raise AudioError(f"audio header field {key!r} must be an integer, not {value!r}")
    return value


def _end_flag(header: dict[str, Any]) -> bool:
    end = header.get("end", False)
    if not isinstance(end, bool):
        raise AudioError(f"audio header field 'end' must be true or false, not {end!r}")
    return end


def _request_id(header: dict[str, Any]) -> str | None:
    request_id = header.get("id")
    if request_id is None:
        return None
    if not isinstance(request_id, str) or not request_id:
        raise AudioError(f"audio header field 'id' must be a non-empty string, not {request_id!r}")
    if len(request_id) > MAX_ID_CHARS:
        raise AudioError(
            f"audio header field 'id' has {len(request_id)} characters, "
            f"more than the limit of {MAX_ID_CHARS}"
        )
    return request_id
