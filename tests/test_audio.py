"""The audio package on real audio: espeak-ng speech, sox conversions and noise, real Silero,
real PortAudio. Nothing is mocked; sox is the reference every conversion is held against."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from audio_fixtures import add_noise, samples, sox, speak

from edge_runtime.audio.format import (
    BYTES_PER_SECOND,
    STANDARD,
    AudioError,
    AudioFormat,
    Converter,
    to_standard,
)
from edge_runtime.audio.pitch import median_pitch_hz
from edge_runtime.audio.satellite import encode_audio_payload, parse_audio_payload
from edge_runtime.audio.sources import MicrophoneSource, WavSource, input_devices, read_wav
from edge_runtime.audio.vad import (
    EndpointConfig,
    Endpointer,
    EndpointEvent,
    SileroOnnxDetector,
    SpeechAudio,
    SpeechDetector,
    SpeechEnded,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    load_detector,
    silero_onnx_path,
)
from edge_runtime.stt.pocketsphinx_engine import HIGH_VOICE_HZ

FIRST = "turn on the kitchen light"
SECOND = "what is the weather like tomorrow"


@dataclass(frozen=True)
class Speech:
    """Two spoken commands as espeak-ng wrote them, and as standard PCM."""

    first_wav: Path
    second_wav: Path
    first: bytes
    second: bytes


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Speech:
    directory = tmp_path_factory.mktemp("speech")
    first_wav = speak(FIRST, directory / "first.wav")
    second_wav = speak(SECOND, directory / "second.wav")
    return Speech(first_wav, second_wav, read_wav(first_wav), read_wav(second_wav))


def raw(path: Path) -> bytes:
    """The file's samples exactly as stored (sox keeps the encoding when none is asked for)."""
    return sox(path, "-t", "raw", "-")


def floats(pcm: bytes) -> npt.NDArray[np.float64]:
    return np.frombuffer(pcm, "<i2").astype(np.float64)


def correlation(pcm: bytes, reference: bytes) -> float:
    length = min(len(pcm), len(reference)) // 2
    return float(np.corrcoef(floats(pcm)[:length], floats(reference)[:length])[0, 1])


def silence(seconds: float) -> bytes:
    return bytes(int(seconds * BYTES_PER_SECOND) // 2 * 2)


def speech_bounds(pcm: bytes) -> tuple[float, float]:
    """First and last sample louder than 2 % of the peak, in seconds: where the voice is."""
    level = np.abs(floats(pcm))
    loud = np.nonzero(level > 0.02 * level.max())[0]
    return loud[0] / 16000, (loud[-1] + 1) / 16000


# Converter ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sox_options", "fmt"),
    [
        pytest.param(("-r", "44100", "-c", "2"), AudioFormat(44100, 2, 2), id="44.1kHz-stereo"),
        pytest.param(("-r", "48000", "-b", "24"), AudioFormat(48000, 3, 1), id="48kHz-24-bit"),
    ],
)
def test_a_recording_converts_to_what_sox_makes_of_its_original(
    speech: Speech, tmp_path: Path, sox_options: tuple[str, ...], fmt: AudioFormat
) -> None:
    recording = tmp_path / "recording.wav"
    sox(speech.first_wav, *sox_options, recording)
    converted = to_standard(raw(recording), fmt)
    reference = sox(speech.first_wav, "-r", "16000", "-t", "raw", "-")
    assert abs(len(converted) - len(reference)) <= 4
    assert correlation(converted, reference) > 0.99


def test_channels_are_averaged_so_a_silent_channel_halves_the_level(
    speech: Speech, tmp_path: Path
) -> None:
    left_only = tmp_path / "left.wav"
    sox(speech.first_wav, "-r", "16000", left_only, "remix", "1", "0")
    converted = to_standard(raw(left_only), AudioFormat(16000, 2, 2))
    level = np.std(floats(converted)) / np.std(floats(speech.first))
    assert level == pytest.approx(0.5, abs=0.01)


def test_8_khz_unsigned_8_bit_converts_like_sox(speech: Speech, tmp_path: Path) -> None:
    narrow = tmp_path / "u8.wav"
    sox(speech.first_wav, "-r", "8000", "-b", "8", "-e", "unsigned-integer", narrow)
    converted = to_standard(raw(narrow), AudioFormat(8000, 1, 1))
    reference = sox(narrow, "-r", "16000", "-b", "16", "-e", "signed-integer", "-t", "raw", "-")
    assert abs(float(np.mean(floats(converted)))) < 100, "8-bit WAV samples are unsigned"
    assert correlation(converted, reference) > 0.99


def test_chunked_conversion_equals_one_shot_conversion(speech: Speech, tmp_path: Path) -> None:
    deep = tmp_path / "deep.wav"
    sox(speech.first_wav, "-r", "48000", "-b", "24", "-c", "2", deep)
    pcm = raw(deep)
    fmt = AudioFormat(48000, 3, 2)
    converter = Converter(fmt)
    sizes = [6, 600, 4806, 96, 1542]
    pieces, start = [], 0
    for size in itertools.cycle(sizes):
        if start >= len(pcm):
            break
        pieces.append(converter.convert(pcm[start : start + size]))
        start += size
    chunked = b"".join(pieces) + converter.flush()
    one_shot = to_standard(pcm, fmt)
    assert len(chunked) == len(one_shot)
    assert np.max(np.abs(floats(chunked) - floats(one_shot))) <= 1


def test_a_converter_starts_a_new_stream_after_flush(speech: Speech) -> None:
    fmt = AudioFormat(22050, 2, 1)
    pcm = raw(speech.first_wav)
    converter = Converter(fmt)
    first = converter.convert(pcm) + converter.flush()
    assert converter.convert(pcm) + converter.flush() == first


def test_a_chunk_that_splits_a_frame_is_refused_with_its_length() -> None:
    with pytest.raises(AudioError, match=r"1001 bytes is not a whole number of 4-byte frames"):
        Converter(AudioFormat(44100, 2, 2)).convert(bytes(1001))


def test_standard_pcm_passes_through_unchanged_and_uncopied(speech: Speech) -> None:
    converter = Converter(STANDARD)
    assert converter.convert(speech.first) is speech.first
    assert converter.flush() == b""


@pytest.mark.parametrize(
    ("rate", "width", "channels", "message"),
    [
        (0, 2, 1, "rate 0 Hz is not supported"),
        (16000, 5, 1, r"sample width 5 bytes is not supported \(1, 2, 3 or 4\)"),
        (16000, 2, 9, "channels 9 is not supported"),
        (16000.0, 2, 1, "rate must be an integer, not float"),
    ],
)
def test_a_format_out_of_range_names_the_field(
    rate: int, width: int, channels: int, message: str
) -> None:
    with pytest.raises(AudioError, match=message):
        AudioFormat(rate, width, channels)


# Files ----------------------------------------------------------------------------------


def test_espeak_output_at_22050_hz_reads_as_16_khz_of_the_same_length(speech: Speech) -> None:
    with wave.open(str(speech.first_wav)) as original:
        seconds = original.getnframes() / original.getframerate()
    assert len(speech.first) / BYTES_PER_SECOND == pytest.approx(seconds, abs=0.001)
    assert correlation(speech.first, sox(speech.first_wav, "-r", "16000", "-t", "raw", "-")) > 0.99


def test_the_24_bit_extensible_wav_that_sox_writes_is_read(speech: Speech, tmp_path: Path) -> None:
    deep = tmp_path / "deep.wav"
    sox(speech.first_wav, "-r", "48000", "-b", "24", "-c", "2", deep)
    assert correlation(read_wav(deep), speech.first) > 0.99


def test_a_text_file_named_wav_is_not_a_wav_file(tmp_path: Path) -> None:
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n")
    with pytest.raises(AudioError, match=r"notes\.wav: not a WAV file \(starts with b'this'\)"):
        read_wav(text)


def test_a_truncated_wav_says_how_much_data_is_missing(speech: Speech, tmp_path: Path) -> None:
    whole = speech.first_wav.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole[:1244])
    declared = len(whole) - 44
    with pytest.raises(AudioError, match=f"truncated WAV: header says {declared} data bytes, "):
        read_wav(cut)
    with pytest.raises(AudioError, match=r"file has 1200$"):
        read_wav(cut)


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.touch()
    with pytest.raises(AudioError, match="empty file"):
        read_wav(empty)


def test_a_float_wav_is_refused_with_the_command_that_converts_it(
    speech: Speech, tmp_path: Path
) -> None:
    floating = tmp_path / "float.wav"
    sox(speech.first_wav, "-e", "floating-point", floating)
    with pytest.raises(AudioError, match=r"format 3 \(IEEE float\) is not supported.*sox"):
        read_wav(floating)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.wav"
    with pytest.raises(AudioError, match=f"cannot read {missing}: No such file"):
        read_wav(missing)


def test_a_file_over_max_seconds_gives_its_length_and_the_limit(speech: Speech) -> None:
    with pytest.raises(AudioError, match=r"audio is 1\.\d s long, more than the limit of 1 s"):
        read_wav(speech.first_wav, max_seconds=1)
    assert read_wav(speech.first_wav, max_seconds=10) == speech.first


def test_a_wav_source_yields_the_file_in_chunks_of_32_ms(speech: Speech) -> None:
    source = WavSource(speech.first_wav)
    chunks = list(source.chunks())
    source.close()
    assert {len(chunk) for chunk in chunks[:-1]} == {1024}
    assert b"".join(chunks) == speech.first


# Microphone -----------------------------------------------------------------------------


def test_a_missing_microphone_is_named_with_the_input_devices_that_exist() -> None:
    with pytest.raises(AudioError) as refused:
        MicrophoneSource(device="no such device xyz")
    message = str(refused.value)
    assert "'no such device xyz'" in message
    assert "input devices" in message


def test_the_default_microphone_captures_standard_pcm() -> None:
    if not input_devices():
        pytest.skip("no sound card on this machine: microphone capture not tested")
    source = MicrophoneSource()
    try:
        captured = bytearray()
        for chunk in source.chunks():
            captured += chunk
            if len(captured) >= BYTES_PER_SECOND // 4:
                break
    finally:
        source.close()
    assert len(captured) % 2 == 0


NULL_MICROPHONE = """
import time
from edge_runtime.audio.sources import MicrophoneSource, input_devices
print(input_devices())
source = MicrophoneSource("default")
chunks = source.chunks()
first = [next(chunks) for _ in range(10)]
time.sleep(0.3)
next(chunks)
source.close()
print({len(chunk) for chunk in first}, source.dropped > 0)
"""


def test_capture_from_alsa_null_device_is_standard_pcm_and_drops_when_behind(
    tmp_path: Path,
) -> None:
    """ALSA's null device delivers blocks as fast as they are read: a real PortAudio stream on
    a machine without a sound card, and a consumer that is always behind."""
    config = tmp_path / "asound.conf"
    config.write_text("pcm.!default { type null }\n")
    environment = {**os.environ, "ALSA_CONFIG_PATH": str(config)}
    done = subprocess.run(
        [sys.executable, "-c", NULL_MICROPHONE],
        env=environment,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    devices, captured = done.stdout.splitlines()
    assert "'default'" in devices
    assert captured == "{1024} True", "32 ms chunks, and blocks dropped rather than waited for"
    assert "microphone audio dropped: the consumer is falling behind" in done.stderr


# Satellite payloads ---------------------------------------------------------------------


def test_a_header_and_pcm_payload_round_trips(speech: Speech) -> None:
    chunk = parse_audio_payload(encode_audio_payload(speech.first[:2048]), max_bytes=65536)
    assert chunk.fmt == STANDARD
    assert chunk.pcm == speech.first[:2048]
    assert (chunk.end, chunk.request_id) == (False, None)


def test_the_end_flag_and_request_id_round_trip_without_pcm() -> None:
    payload = encode_audio_payload(b"", AudioFormat(44100, 2, 2), end=True, request_id="kit-42")
    chunk = parse_audio_payload(payload, max_bytes=1024)
    assert (chunk.fmt, chunk.pcm, chunk.end, chunk.request_id) == (
        AudioFormat(44100, 2, 2),
        b"",
        True,
        "kit-42",
    )


def test_a_wav_file_payload_gives_its_format_and_samples(speech: Speech) -> None:
    chunk = parse_audio_payload(speech.first_wav.read_bytes(), max_bytes=1 << 20)
    assert chunk.fmt == AudioFormat(22050, 2, 1)
    assert chunk.pcm == raw(speech.first_wav)
    assert not chunk.end


def header(**fields: object) -> bytes:
    return json.dumps({"rate": 16000, "width": 2, "channels": 1, **fields}).encode() + b"\n"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        pytest.param(
            header() + bytes(2000), "payload is 2043 bytes, more than the limit of 2000", id="big"
        ),
        pytest.param(bytes(600), "no header line", id="no-newline"),
        pytest.param(b"{rate: 16000}\n", "header is not JSON", id="not-json"),
        pytest.param(b"\xff\xfe\n", "header is not JSON", id="not-utf8"),
        pytest.param(b"[16000, 2, 1]\n", "must be a JSON object, not list", id="list"),
        pytest.param(b'{"width": 2, "channels": 1}\n', "lacks 'rate'", id="no-rate"),
        pytest.param(header(rate="16000"), "'rate' must be an integer, not '16000'", id="str"),
        pytest.param(header(width=True), "'width' must be an integer, not True", id="bool"),
        pytest.param(header(rate=1), "rate 1 Hz is not supported", id="low-rate"),
        pytest.param(header(volume=3), r"unknown audio header keys \['volume'\]", id="unknown"),
        pytest.param(header(end="yes"), "'end' must be true or false", id="end"),
        pytest.param(header(id=""), "'id' must be a non-empty string", id="empty-id"),
        pytest.param(header(id="x" * 129), "129 characters, more than the limit", id="long-id"),
        pytest.param(header(channels=2) + bytes(6), "PCM of 6 bytes is not a whole", id="split"),
        pytest.param(b"RIFF\x24\x00\x00\x00AVI ", r"RIFF type b'AVI '", id="not-wave"),
        pytest.param(b"RIFF\x24\x00\x00\x00WAVEfmt ", "truncated WAV", id="cut-wav"),
    ],
)
def test_a_malformed_satellite_payload_is_refused_with_a_clear_message(
    payload: bytes, message: str
) -> None:
    with pytest.raises(AudioError, match=message):
        parse_audio_payload(payload, max_bytes=2000)


# End-pointing ---------------------------------------------------------------------------


def endpoint(
    stream: bytes,
    config: EndpointConfig | None = None,
    chunk_bytes: int = 4000,
    detector: SpeechDetector | None = None,
) -> list[EndpointEvent]:
    endpointer = Endpointer(detector or load_detector(), config)
    events: list[EndpointEvent] = []
    for start in range(0, len(stream), chunk_bytes):
        events += endpointer.feed(stream[start : start + chunk_bytes])
    return events + endpointer.finish()


def marks(events: list[EndpointEvent]) -> list[SpeechStarted | SpeechEnded]:
    return [event for event in events if isinstance(event, SpeechStarted | SpeechEnded)]


def test_speech_padded_with_silence_is_one_utterance_at_the_right_times(speech: Speech) -> None:
    events = endpoint(silence(1.0) + speech.first + silence(1.5))
    started, ended = marks(events)
    voice_start, voice_end = speech_bounds(speech.first)
    assert isinstance(started, SpeechStarted)
    assert isinstance(ended, SpeechEnded)
    assert started.at_s == pytest.approx(1.0 + voice_start, abs=0.3)
    assert ended.at_s == pytest.approx(1.0 + voice_end, abs=0.3)
    assert ended.reason == "silence"


def test_the_utterance_is_the_stream_from_the_pre_roll_on_without_gaps(speech: Speech) -> None:
    stream = silence(1.0) + speech.first + silence(1.5)
    events = endpoint(stream)
    started = events[0]
    assert isinstance(started, SpeechStarted)
    first_byte = round(started.at_s * BYTES_PER_SECOND) - 10 * 1024  # 320 ms of pre-roll
    audio = b"".join(
        event.pcm for event in events if isinstance(event, SpeechStarted | SpeechAudio)
    )
    assert audio == stream[first_byte : first_byte + len(audio)]


def test_two_commands_a_second_and_a_half_apart_are_two_utterances(speech: Speech) -> None:
    events = endpoint(silence(0.5) + speech.first + silence(1.5) + speech.second + silence(1.0))
    assert [type(event) for event in marks(events)] == [SpeechStarted, SpeechEnded] * 2
    second_start = marks(events)[2].at_s
    expected = 0.5 + len(speech.first) / BYTES_PER_SECOND + 1.5 + speech_bounds(speech.second)[0]
    assert second_start == pytest.approx(expected, abs=0.3)


def test_a_pause_is_reported_before_the_silence_ends_the_utterance(speech: Speech) -> None:
    events = endpoint(silence(0.5) + speech.first + silence(1.5))
    pauses = [event for event in events if isinstance(event, SpeechPaused)]
    ended = marks(events)[-1]
    assert len(pauses) == 1
    assert events.index(pauses[0]) < events.index(ended)
    assert isinstance(ended, SpeechEnded)
    assert pauses[0].at_s == ended.at_s, "both name the end of the last frame of speech"


def test_speech_after_a_pause_resumes_the_same_utterance(speech: Speech) -> None:
    # 500 ms between the voices: longer than pause_ms (300), shorter than silence_ms (700).
    first_end, second_start = speech_bounds(speech.first)[1], speech_bounds(speech.second)[0]
    first = speech.first[: round(first_end * 16000) * 2]
    second = speech.second[round(second_start * 16000) * 2 :]
    events = endpoint(silence(0.5) + first + silence(0.5) + second + silence(1.5))
    kinds = [type(event) for event in events if not isinstance(event, SpeechAudio)]
    assert kinds == [SpeechStarted, SpeechPaused, SpeechResumed, SpeechPaused, SpeechEnded]


def test_no_pause_is_reported_when_pause_ms_is_not_below_silence_ms(speech: Speech) -> None:
    events = endpoint(speech.first + silence(1.5), EndpointConfig(pause_ms=700, silence_ms=700))
    assert not [event for event in events if isinstance(event, SpeechPaused | SpeechResumed)]


def test_silence_alone_starts_no_utterance() -> None:
    assert endpoint(silence(3.0)) == []


def test_white_noise_alone_starts_no_utterance(tmp_path: Path) -> None:
    noise = tmp_path / "noise.wav"
    sox("-r", "16000", "-n", "-b", "16", noise, "synth", "3", "whitenoise", "vol", "0.3")
    assert endpoint(read_wav(noise)) == []


def test_speech_in_noise_at_10_db_is_still_one_utterance(speech: Speech, tmp_path: Path) -> None:
    padded = tmp_path / "padded.wav"
    sox(speech.first_wav, padded, "pad", "1", "1.5")
    noisy = add_noise(padded, tmp_path / "noisy.wav", snr_db=10)
    started, ended = marks(endpoint(read_wav(noisy)))
    assert isinstance(started, SpeechStarted)
    assert started.at_s == pytest.approx(1.0 + speech_bounds(speech.first)[0], abs=0.3)
    assert isinstance(ended, SpeechEnded)


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 20.0])
def test_add_noise_mixes_at_the_requested_signal_to_noise_ratio(
    speech: Speech, tmp_path: Path, snr_db: float
) -> None:
    noisy = add_noise(speech.first_wav, tmp_path / "noisy.wav", snr_db)
    clean, mixed = samples(speech.first_wav), samples(noisy)
    measured = 20 * np.log10(np.std(clean) / np.std(mixed - clean))
    assert measured == pytest.approx(snr_db, abs=0.1)
    assert list(tmp_path.iterdir()) == [noisy], "the noise file is removed"


def test_a_long_stream_of_speech_is_cut_at_max_utterance_s(speech: Speech) -> None:
    talk = (speech.first + speech.second) * 11  # about 40 s, pauses well under 700 ms
    assert len(talk) / BYTES_PER_SECOND > 40
    events = marks(endpoint(talk, EndpointConfig(max_utterance_s=5.0)))
    started, ended = events[0], events[1]
    assert isinstance(started, SpeechStarted)
    assert isinstance(ended, SpeechEnded)
    assert ended.reason == "max_length"
    assert ended.at_s - started.at_s == pytest.approx(5.0, abs=0.04)
    assert isinstance(events[2], SpeechStarted), "speech after a cut starts a new utterance"


def test_the_end_of_the_stream_ends_an_open_utterance(speech: Speech) -> None:
    stream = silence(0.5) + speech.first[: len(speech.first) // 2]
    ended = marks(endpoint(stream))[-1]
    assert ended == SpeechEnded(len(stream) / BYTES_PER_SECOND, "end_of_stream")


def test_chunks_of_100_or_8000_bytes_give_the_same_events(speech: Speech) -> None:
    stream = silence(0.5) + speech.first + silence(1.0) + speech.second + silence(1.0)
    small, large = endpoint(stream, chunk_bytes=100), endpoint(stream, chunk_bytes=8000)
    assert marks(small) == marks(large)
    assert joined_audio(small) == joined_audio(large)


def joined_audio(events: list[EndpointEvent]) -> list[bytes]:
    """Each utterance's audio in one piece: how it is split follows the chunks fed."""
    utterances: list[bytes] = []
    for event in events:
        if isinstance(event, SpeechStarted):
            utterances.append(event.pcm)
        elif isinstance(event, SpeechAudio):
            utterances[-1] += event.pcm
    return utterances


def test_silero_runs_from_its_onnx_model_where_bootstrap_installed_it() -> None:
    """script/bootstrap installs the `silero-vad` wheel's model: the fast build is the one used."""
    assert silero_onnx_path() is not None
    assert isinstance(load_detector(), SileroOnnxDetector)


def test_the_onnx_and_ggml_builds_of_silero_mark_the_same_speech(speech: Speech) -> None:
    """Two runtimes of one network: the frames each calls speech agree, and so do the marks."""
    stream = silence(1.0) + speech.first + silence(1.0) + speech.second + silence(1.0)
    onnx, ggml = load_detector("silero"), load_detector("silero-ggml")
    frames = [stream[i : i + 1024] for i in range(0, len(stream) - 1023, 1024)]
    voiced = np.array([[d.probability(f) >= 0.5 for d in (onnx, ggml)] for f in frames])
    assert voiced[:, 0].sum() > len(frames) / 3  # speech found at all
    assert np.mean(voiced[:, 0] == voiced[:, 1]) > 0.97
    onnx.reset()
    ggml.reset()
    marks_of = [marks(endpoint(stream, detector=d)) for d in (onnx, ggml)]
    assert [type(m) for m in marks_of[0]] == [type(m) for m in marks_of[1]]
    for one, other in zip(*marks_of, strict=True):
        assert one.at_s == pytest.approx(other.at_s, abs=0.1)


def test_an_unknown_detector_is_refused_with_the_known_ones() -> None:
    with pytest.raises(
        AudioError, match=r"unknown speech detector 'webrtc' \(known: silero, silero-ggml\)"
    ):
        load_detector("webrtc")


@pytest.mark.parametrize(("voice", "high"), [("en-us", False), ("en-us+f3", True)])
def test_a_high_voice_is_told_from_a_low_one_by_its_pitch(
    tmp_path: Path, voice: str, high: bool
) -> None:
    pcm = read_wav(speak("turn on the bedroom lamp", tmp_path / "voice.wav", voice=voice))
    pitch = median_pitch_hz(pcm)
    assert pitch is not None and (pitch > HIGH_VOICE_HZ) == high, pitch


def test_silence_and_noise_have_no_pitch(tmp_path: Path) -> None:
    assert median_pitch_hz(bytes(32000)) is None
    noise = tmp_path / "noise.wav"
    sox("-r", "16000", "-c", "1", "-n", "-b", "16", noise, "synth", "1", "whitenoise", "vol", "0.3")
    assert median_pitch_hz(read_wav(noise)) is None
