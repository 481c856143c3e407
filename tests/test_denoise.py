"""RNNoise before pocketsphinx: speech in noise, on espeak-ng speech with seeded white noise.

How much it brings over many commands is measured by benchmarks/voice.py; here each case
is one it must get right every time.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from audio_fixtures import add_noise, speak
from conftest import EVAL_FIXTURES

from edge_runtime.audio.denoise import (
    DenoiseError,
    NoiseSuppressor,
    needs_cleaning,
    snr_db,
)
from edge_runtime.audio.sources import read_wav
from edge_runtime.home import load_home
from edge_runtime.stt.base import SttContext, SttError
from edge_runtime.stt.pocketsphinx_engine import PocketsphinxEngine


def utterance(pcm: bytes, noise_db: float | None, seed: int = 0) -> np.ndarray:
    """Speech as the end-pointer hands it over (half a second before, 0.75 s after), with
    white noise `noise_db` under the speech's RMS, or a quiet room's floor (-56 dBFS)."""
    speech = np.frombuffer(pcm, "<i2").astype(np.float64)
    padded = np.concatenate([np.zeros(8000), speech, np.zeros(12000)])
    loudness = np.sqrt(np.mean(speech[np.abs(speech) > 64] ** 2))
    sigma = 50.0 if noise_db is None else loudness / 10 ** (noise_db / 20)
    noise = np.random.default_rng(seed).normal(0.0, sigma, padded.size)
    return np.clip(np.rint(padded + noise), -32768, 32767).astype("<i2")


@pytest.fixture(scope="module")
def suppressor() -> NoiseSuppressor:
    return NoiseSuppressor()


@pytest.fixture(scope="module")
def lamp(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return read_wav(
        speak("set the bedroom lamp to fifty percent", tmp_path_factory.mktemp("s") / "l.wav")
    )


def test_speech_in_noise_needs_cleaning_and_speech_in_a_quiet_room_does_not(lamp: bytes) -> None:
    assert snr_db(utterance(lamp, 10.0).tobytes()) < 20 < snr_db(utterance(lamp, None).tobytes())
    assert needs_cleaning(utterance(lamp, 10.0).tobytes())
    assert not needs_cleaning(utterance(lamp, None).tobytes())
    assert snr_db(bytes(64_000)) == float("inf"), "digital silence has no noise to remove"


def test_suppression_takes_most_of_the_noise_out_and_keeps_the_speech_in_time(
    lamp: bytes, suppressor: NoiseSuppressor
) -> None:
    clean = utterance(lamp, float("inf")).astype(np.float64)
    noisy = utterance(lamp, 10.0)
    cleaned = np.frombuffer(suppressor.suppress(noisy.tobytes()), "<i2").astype(np.float64)
    assert cleaned.size == noisy.size
    error_before = np.sqrt(np.mean((noisy - clean) ** 2))
    error_after = np.sqrt(np.mean((cleaned - clean) ** 2))
    assert error_after < 0.7 * error_before
    window = slice(8000, 24000)
    lags = np.correlate(cleaned[window], clean[window], "full")
    assert abs(int(np.argmax(lags)) - (16000 - 1)) <= 2, "the cleaned speech is not delayed"


def test_each_utterance_starts_with_a_fresh_network(
    lamp: bytes, suppressor: NoiseSuppressor
) -> None:
    noisy = utterance(lamp, 10.0).tobytes()
    first = suppressor.suppress(noisy)
    suppressor.suppress(utterance(lamp, 0.0, seed=5).tobytes())
    assert suppressor.suppress(noisy) == first
    assert suppressor.suppress(b"") == b""


def test_cleaning_as_the_audio_comes_gives_what_cleaning_at_the_end_gives(
    lamp: bytes, suppressor: NoiseSuppressor
) -> None:
    """Sample for sample, but for the last few milliseconds (still inside the resamplers and
    the network when asked for, cleaned afresh), and the stream goes on after."""
    noisy = utterance(lamp, 10.0).tobytes()
    half = len(noisy) // 4 * 2
    stream = suppressor.stream()
    for start in range(0, half, 1024):
        stream.feed(noisy[start : min(start + 1024, half)])
    early = stream.cleaned(noisy[:half])
    stream.feed(noisy[half:])
    late = stream.cleaned(noisy)
    tail = 2 * 1600  # bytes of the last 100 ms
    assert len(early) == half and len(late) == len(noisy)
    assert early[:-tail] == suppressor.suppress(noisy[:half])[:-tail]
    assert late[:-tail] == suppressor.suppress(noisy)[:-tail]


def test_a_missing_library_is_an_error_that_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(DenoiseError, match="pip install --no-deps pyrnnoise"):
        NoiseSuppressor(tmp_path / "librnnoise.so")


@pytest.mark.parametrize("command", ["close the garage door", "open the garage door"])
def test_a_command_in_noise_that_pocketsphinx_misses_is_heard_after_suppression(
    tmp_path: Path, command: str
) -> None:
    home = load_home(EVAL_FIXTURES)
    noisy = utterance(read_wav(speak(command, tmp_path / "c.wav")), 10.0).tobytes()
    heard = {}
    for mode in ("off", "auto"):
        context = SttContext(home, "en", cache_dir=tmp_path, options={"denoise": mode})
        decoding = PocketsphinxEngine(context).start()
        decoding.feed(noisy)
        heard[mode] = decoding.finish().text
    assert heard == {"off": "", "auto": command}


def test_a_bad_denoise_setting_is_refused_naming_the_choices(tmp_path: Path) -> None:
    context = SttContext(
        load_home(EVAL_FIXTURES), "en", cache_dir=tmp_path, options={"denoise": "yes"}
    )
    with pytest.raises(SttError, match="denoise='yes': give one of auto, always, off"):
        PocketsphinxEngine(context)


def test_a_bare_yaml_off_turns_suppression_off(tmp_path: Path) -> None:
    """YAML reads `denoise: off` as false."""
    context = SttContext(
        load_home(EVAL_FIXTURES), "en", cache_dir=tmp_path, options={"denoise": False}
    )
    engine = PocketsphinxEngine(context)
    assert (engine.denoise, engine.suppressor) == ("off", None)


def test_a_library_that_is_not_rnnoise_is_refused(tmp_path: Path) -> None:
    libc = Path("/lib") / f"{os.uname().machine}-linux-gnu" / "libc.so.6"
    with pytest.raises(DenoiseError, match="is not RNNoise's library"):
        NoiseSuppressor(libc)


def test_noise_is_cleaned_up_to_where_rnnoise_stops_helping(tmp_path: Path) -> None:
    """White noise 10 dB under the whole file's RMS, pads included (about 13 dB under the
    speech), is cleaned: on the voice benchmark's commands RNNoise heard more there and acted
    wrongly less often. 30 dB under it, pocketsphinx hears better alone."""
    clean = speak("turn on the bedroom lamp", tmp_path / "lamp.wav")
    noisy = read_wav(add_noise(clean, tmp_path / "noisy.wav", snr_db=10))
    mild = read_wav(add_noise(clean, tmp_path / "mild.wav", snr_db=30))
    assert needs_cleaning(noisy)
    assert not needs_cleaning(mild)
