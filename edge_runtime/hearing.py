"""The daemon's ears: satellites' audio over MQTT and the node's own microphone.

Threads: paho's network thread only hands audio messages to `Hearing.submit`
(a bounded queue, counted in seconds of audio); one *voice thread* parses,
converts, end-points and decodes them, one `SiteStream` per site, so each
satellite has its own utterance state. An utterance that ends goes to
`on_heard` (the daemon publishes the transcript and queues the text for its
worker, which answers it like a typed command). The voice thread never touches
the NLU or the routing state. An optional *microphone thread* reads the sound
card and queues its audio like a satellite's, under the site `microphone`.

Bad audio (a payload that does not parse, a queue that is full) goes to
`on_bad_audio` and the stream goes on; one bad chunk never ends an utterance
in progress. A satellite that falls silent mid-utterance is finished after
`stream_timeout_s`, so its words are decoded rather than held forever.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from edge_runtime.audio.format import BYTES_PER_SECOND, AudioError, AudioFormat, Converter
from edge_runtime.audio.satellite import parse_audio_payload
from edge_runtime.audio.sources import MicrophoneSource
from edge_runtime.audio.vad import EndpointConfig, SpeechDetector, load_detector
from edge_runtime.messages import new_request_id
from edge_runtime.stt.base import SpeechToText, Transcript
from edge_runtime.voice import Heard, SiteListener

log = logging.getLogger(__name__)

MICROPHONE_SITE = "microphone"
POLL_S = 0.25
MICROPHONE_RETRY_S = 10.0
NO_SPEECH = "no speech"


@dataclass(frozen=True)
class SatelliteAudio:
    """One MQTT message of a satellite's stream, parsed on the voice thread (not paho's)."""

    site: str
    topic: str
    payload: bytes

    @property
    def seconds(self) -> float:
        """What the message weighs in the queue (the header is negligible)."""
        return len(self.payload) / BYTES_PER_SECOND


@dataclass(frozen=True)
class MicrophoneAudio:
    site: str
    pcm: bytes
    """Standard PCM, converted by the source."""

    @property
    def seconds(self) -> float:
        return len(self.pcm) / BYTES_PER_SECOND


AudioItem = SatelliteAudio | MicrophoneAudio
HeardCallback = Callable[[Heard, str], None]
"""An utterance that ended, with the request id its answers carry."""
BadAudioCallback = Callable[[str, str, str | None], None]
"""(problem, topic, request id) of audio that cannot be used."""


@dataclass
class SiteStream:
    """The state of one site: its end-pointer and decoding, its format, its request id."""

    listener: SiteListener
    converter: Converter | None = None
    request_id: str | None = None
    """Chosen by the satellite (header `id`): it names the utterance in progress or the next."""
    last_audio: float = field(default_factory=time.monotonic)
    heard_since_end: bool = False
    """Whether an utterance ended since the satellite last said `end`."""

    def convert(self, fmt: AudioFormat, pcm: bytes) -> bytes:
        if self.converter is None or self.converter.fmt != fmt:
            tail = self.converter.flush() if self.converter is not None else b""
            self.converter = Converter(fmt)
            return tail + self.converter.convert(pcm)
        return self.converter.convert(pcm)

    def finish(self) -> list[Heard]:
        """End the stream: the resampler's last samples, then what the end-pointer holds."""
        tail = self.converter.flush() if self.converter is not None else b""
        return self.listener.feed(tail) + self.listener.finish()

    def take_request_id(self) -> str:
        request_id, self.request_id = self.request_id or new_request_id(), None
        return request_id


class AudioQueue:
    """FIFO of audio items bounded by the seconds of audio they hold, not by their count."""

    def __init__(self, max_seconds: float) -> None:
        self.max_seconds = max_seconds
        self._items: deque[AudioItem] = deque()
        self._seconds = 0.0
        self._ready = threading.Condition()

    def put(self, item: AudioItem) -> bool:
        """False (and nothing queued) when the item would exceed the bound."""
        with self._ready:
            if self._items and self._seconds + item.seconds > self.max_seconds:
                return False
            self._items.append(item)
            self._seconds += item.seconds
            self._ready.notify()
            return True

    def get(self, timeout: float) -> AudioItem | None:
        with self._ready:
            if not self._items:
                self._ready.wait(timeout)
            if not self._items:
                return None
            item = self._items.popleft()
            self._seconds -= item.seconds
            return item


class Hearing:
    """Audio of every site in, utterances out, on the voice thread."""

    def __init__(
        self,
        engine: SpeechToText,
        endpoint: EndpointConfig,
        on_heard: HeardCallback,
        on_bad_audio: BadAudioCallback,
        *,
        max_chunk_bytes: int,
        queue_seconds: float,
        stream_timeout_s: float,
        microphone: str | int | None = None,
        detector_factory: Callable[[], SpeechDetector] = load_detector,
    ) -> None:
        self.engine = engine
        self.endpoint = endpoint
        self.on_heard = on_heard
        self.on_bad_audio = on_bad_audio
        self.max_chunk_bytes = max_chunk_bytes
        self.stream_timeout_s = stream_timeout_s
        self.microphone = microphone
        self.detector_factory = detector_factory
        self.queue = AudioQueue(queue_seconds)
        self.sites: dict[str, SiteStream] = {}
        self._stopping = threading.Event()
        self._voice = threading.Thread(target=self._serve, name="voice", daemon=True)
        self._mic = threading.Thread(target=self._listen_to_microphone, name="mic", daemon=True)
        self._mic_source: MicrophoneSource | None = None

    # --- lifecycle (the daemon's main thread) ---

    def start(self) -> None:
        self._voice.start()
        if self.microphone is not None:
            self._mic.start()

    def stop(self, timeout: float) -> None:
        """Stop the microphone, decode the audio already queued and every open utterance."""
        self._stopping.set()
        source = self._mic_source
        if source is not None:
            source.close()
        self._voice.join(timeout)
        if self._voice.is_alive():
            log.warning("voice thread still busy after %.0f s; stopping without it", timeout)

    # --- intake (paho's network thread, or the microphone thread) ---

    def submit(self, item: AudioItem) -> bool:
        """Queue audio; False when the queue is full (the caller reports it)."""
        return self.queue.put(item)

    # --- the voice thread ---

    def _serve(self) -> None:
        while True:
            item = self.queue.get(POLL_S)
            if item is None and self._stopping.is_set():
                break
            if item is not None:
                self._guarded(self._take, item)
            self._finish_stale_streams()
        for site in list(self.sites):
            self._guarded(self._close_site, site)

    def _guarded(self, work: Callable[..., None], *args: object) -> None:
        """The voice thread's boundary: a failure is logged and the thread goes on."""
        try:
            work(*args)
        except Exception:  # one bad utterance must not deafen the node
            log.exception("voice thread: internal error")

    def _take(self, item: AudioItem) -> None:
        if isinstance(item, MicrophoneAudio):
            stream = self._stream(item.site)
            self._deliver(stream, stream.listener.feed(item.pcm))
            return
        try:
            chunk = parse_audio_payload(item.payload, self.max_chunk_bytes)
        except AudioError as exc:
            self.on_bad_audio(str(exc), item.topic, None)
            return
        stream = self._stream(item.site)
        stream.request_id = chunk.request_id or stream.request_id
        try:
            pcm = stream.convert(chunk.fmt, chunk.pcm)
        except AudioError as exc:
            self.on_bad_audio(str(exc), item.topic, chunk.request_id)
            return
        self._deliver(stream, stream.listener.feed(pcm))
        if chunk.end:
            self._end_utterance(item.site, stream)

    def _stream(self, site: str) -> SiteStream:
        """The site's stream (new for a site not heard lately), marked as heard from now."""
        stream = self.sites.get(site)
        if stream is None:
            listener = SiteListener(site, self.engine, self.detector_factory(), self.endpoint)
            stream = self.sites[site] = SiteStream(listener)
            log.info("site %s: new audio stream", site)
        stream.last_audio = time.monotonic()
        return stream

    def _deliver(self, stream: SiteStream, heard: list[Heard]) -> None:
        for utterance in heard:
            stream.heard_since_end = True
            self.on_heard(utterance, stream.take_request_id())

    def _end_utterance(self, site: str, stream: SiteStream) -> None:
        """The satellite says the utterance is over: decode it now, or say nothing was heard."""
        heard = stream.finish()
        if not heard and not stream.heard_since_end:
            heard = [self._nothing_heard(site)]
        self._deliver(stream, heard)
        stream.heard_since_end = False

    def _nothing_heard(self, site: str) -> Heard:
        transcript = Transcript("", 0.0, self.engine.engine, False, 0.0, 0.0, reason=NO_SPEECH)
        return Heard(site, transcript, 0.0, 0.0, "end", time.monotonic())

    def _finish_stale_streams(self) -> None:
        """A satellite that stopped sending: decode what it said, then forget the site."""
        now = time.monotonic()
        for site, stream in list(self.sites.items()):
            if now - stream.last_audio > self.stream_timeout_s:
                self._close_site(site)

    def _close_site(self, site: str) -> None:
        stream = self.sites.pop(site)
        if stream.listener.in_speech:
            log.info("site %s: no audio for %.0f s; decoding it", site, self.stream_timeout_s)
        self._deliver(stream, stream.finish())

    # --- the microphone thread ---

    def _listen_to_microphone(self) -> None:
        """Read the sound card until stopped; a missing device is retried, not fatal."""
        while not self._stopping.is_set():
            try:
                self._mic_source = MicrophoneSource(self.microphone)
            except AudioError as exc:
                log.error("microphone: %s; trying again in %.0f s", exc, MICROPHONE_RETRY_S)
                self._stopping.wait(MICROPHONE_RETRY_S)
                continue
            try:
                self._pump(self._mic_source)
            except AudioError as exc:
                log.error("microphone: %s; reopening it", exc)
            finally:
                self._mic_source.close()

    def _pump(self, source: MicrophoneSource) -> None:
        for pcm in source.chunks():
            if self._stopping.is_set():
                return
            if not self.submit(MicrophoneAudio(MICROPHONE_SITE, pcm)):
                log.warning("microphone audio dropped: the voice thread is behind")
