"""From audio to words: end-pointing and speech to text for one stream at a time.

A `SiteListener` holds the utterance state of one stream (the node's own
microphone, a WAV file, or one satellite site): its own end-pointer over the
Silero detector, and the decoding of the utterance in progress. Feed it audio;
it returns an `Heard` for every utterance that ended. Listeners share the
speech engine (the engine pools its decoders), never their state, so one node
serves several sites at once.

This module knows audio and speech engines, not MQTT or the NLU: the daemon
and the `listen` command take a `Heard` to the cascade themselves.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edge_runtime.audio.vad import (
    EndpointConfig,
    Endpointer,
    EndpointEvent,
    SpeechAudio,
    SpeechDetector,
    SpeechEnded,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
)
from edge_runtime.messages import PROTOCOL_VERSION
from edge_runtime.stt.base import Decoding, SpeechToText, Transcript

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Heard:
    """One utterance and what the engine made of it."""

    site: str
    transcript: Transcript
    speech_start_s: float
    """Seconds from the start of the stream to the start of speech."""
    speech_end_s: float
    ended_by: str
    """`silence`, `max_length`, `end_of_stream` (or `end`: the satellite said so)."""
    ended_at: float
    """`time.monotonic()` when the end of the utterance was known: latency is counted from it."""

    def to_json(self) -> dict[str, Any]:
        return {
            "site": self.site,
            **self.transcript.to_json(),
            "speech_start_s": round(self.speech_start_s, 3),
            "speech_end_s": round(self.speech_end_s, 3),
            "ended_by": self.ended_by,
        }

    def to_event(self, request_id: str, node: str) -> dict[str, Any]:
        """The `edge/<node>/transcript` event; its id is the id of the intent event after it."""
        return {"v": PROTOCOL_VERSION, "id": request_id, "node": node, **self.to_json()}


class SiteListener:
    """End-pointing and decoding of one audio stream."""

    def __init__(
        self,
        site: str,
        engine: SpeechToText,
        detector: SpeechDetector,
        config: EndpointConfig,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.site = site
        self.engine = engine
        self.endpointer = Endpointer(detector, config, label=f"site {site}")
        self.clock = clock
        self._decoding: Decoding | None = None
        self._started_s = 0.0

    @property
    def in_speech(self) -> bool:
        return self._decoding is not None

    def feed(self, pcm: bytes) -> list[Heard]:
        """Standard PCM in; the utterances that ended in it out."""
        return self._handle(self.endpointer.feed(pcm))

    def finish(self) -> list[Heard]:
        """End of the stream (or the satellite said the utterance is over)."""
        return self._handle(self.endpointer.finish())

    def _handle(self, events: list[EndpointEvent]) -> list[Heard]:
        heard = []
        for event in events:
            if isinstance(event, SpeechStarted):
                self._decoding = self.engine.start()
                self._started_s = event.at_s
                self._decoding.feed(event.pcm)
            elif self._decoding is None:
                continue
            elif isinstance(event, SpeechAudio):
                self._decoding.feed(event.pcm)
            elif isinstance(event, SpeechPaused):
                self._decoding.pause()
            elif isinstance(event, SpeechResumed):
                self._decoding.resume()
            elif isinstance(event, SpeechEnded):
                heard.append(self._finish(event))
        return heard

    def _finish(self, event: SpeechEnded) -> Heard:
        ended_at = self.clock()
        decoding, self._decoding = self._decoding, None
        assert decoding is not None
        transcript = decoding.finish()
        log.info(
            "site=%s heard %r (%s, %.2f s of audio, decoded in %.1f ms)%s",
            self.site,
            transcript.text,
            transcript.engine,
            transcript.audio_s,
            transcript.decode_ms,
            "" if transcript.understood else f": not understood, {transcript.reason}",
        )
        return Heard(self.site, transcript, self._started_s, event.at_s, event.reason, ended_at)
