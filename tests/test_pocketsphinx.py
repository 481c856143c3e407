"""pocketsphinx with the home's grammar, on speech that espeak-ng makes in the test.

Accuracy over many voices, speeds and noise is measured by benchmarks/voice.py;
here each case is one the engine must get right every time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from audio_fixtures import sox, speak
from conftest import EVAL_FIXTURES

from edge_runtime.audio.sources import read_wav
from edge_runtime.home import load_home
from edge_runtime.stt.base import SttContext, SttError
from edge_runtime.stt.pocketsphinx_engine import PocketsphinxEngine, prepare, warp_order


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> PocketsphinxEngine:
    cache = tmp_path_factory.mktemp("cache")
    return PocketsphinxEngine(SttContext(load_home(EVAL_FIXTURES), "en", cache_dir=cache))


def transcribe(engine: PocketsphinxEngine, pcm: bytes, chunk: int = 1024) -> tuple[str, str]:
    decoding = engine.start()
    for start in range(0, len(pcm), chunk):
        decoding.feed(pcm[start : start + chunk])
    transcript = decoding.finish()
    assert transcript.engine == "pocketsphinx" and transcript.grammar
    assert transcript.audio_s == pytest.approx(len(pcm) / 32000)
    return transcript.text, transcript.reason


@pytest.mark.parametrize(
    "command",
    [
        "turn on the bedroom lamp",
        "close the garage door",
        "lock the front door",
        "set the thermostat to twenty one degrees",
    ],
)
def test_a_command_of_the_home_is_heard_word_for_word(
    engine: PocketsphinxEngine, tmp_path: Path, command: str
) -> None:
    pcm = read_wav(speak(command, tmp_path / "command.wav"))
    assert transcribe(engine, pcm) == (command, "")


def test_speech_that_is_no_command_is_not_understood(
    engine: PocketsphinxEngine, tmp_path: Path
) -> None:
    pcm = read_wav(speak("hello how are you today", tmp_path / "chat.wav"))
    text, reason = transcribe(engine, pcm)
    assert text == "" and reason in {"outside the grammar", "nothing recognized"}


@pytest.mark.parametrize(
    ("cut_short", "voice", "reason"),
    [
        ("switch on", "en-us", "outside the grammar"),
        ("turn on the", "en-us+f3", "last word too short: a command cut short"),
        ("turn on the", "en-us+f2", "last word too short: a command cut short"),
    ],
)
def test_a_command_cut_short_is_not_completed_into_one(
    engine: PocketsphinxEngine, tmp_path: Path, cut_short: str, voice: str, reason: str
) -> None:
    """The grammar's search ends in a whole sentence: "turn on the" came out as "turn on the
    fan", its last word squeezed into the silence after it."""
    pcm = read_wav(speak(cut_short, tmp_path / "short.wav", voice=voice))
    assert transcribe(engine, pcm) == ("", reason)


def test_silence_is_nothing_recognized(engine: PocketsphinxEngine) -> None:
    for _ in range(3):  # each time on another of the pool's decoders
        text, reason = transcribe(engine, bytes(32000))
        assert text == "" and reason


@pytest.mark.parametrize("color", ["white", "pink", "brown"])
def test_a_burst_of_noise_is_not_heard_as_a_short_command(
    engine: PocketsphinxEngine, tmp_path: Path, color: str
) -> None:
    burst = tmp_path / "burst.wav"
    sox("-r", "16000", "-n", "-b", "16", burst, "synth", "0.4", f"{color}noise", "vol", "0.5")
    text, reason = transcribe(engine, read_wav(burst))
    assert text == "" and reason, "noise must not become 'mow' or 'pause'"


def test_the_same_audio_decodes_the_same_whatever_came_before(
    engine: PocketsphinxEngine, tmp_path: Path
) -> None:
    lamp = read_wav(speak("turn on the bedroom lamp", tmp_path / "lamp.wav"))
    first = transcribe(engine, bytes(32000))
    transcribe(engine, lamp)
    assert transcribe(engine, bytes(32000)) == first


def test_padding_with_digital_silence_does_not_change_the_answer(
    engine: PocketsphinxEngine, tmp_path: Path
) -> None:
    pcm = read_wav(speak("open the garage door", tmp_path / "door.wav"))
    padded = bytes(11_200) + pcm + bytes(22_400)
    assert transcribe(engine, padded) == transcribe(engine, pcm) == ("open the garage door", "")
    assert prepare(padded) == prepare(padded)  # the added noise floor is fixed


def test_a_pause_decodes_early_and_the_audio_after_it_is_left_out(
    engine: PocketsphinxEngine, tmp_path: Path
) -> None:
    pcm = read_wav(speak("lock the front door", tmp_path / "lock.wav"))
    decoding = engine.start()
    decoding.feed(pcm)
    decoding.pause()
    decoding.feed(read_wav(speak("and open the garage door", tmp_path / "more.wav")))
    early = decoding.finish()
    assert early.text == "lock the front door", "what came after the pause is not decoded"
    assert early.audio_s == pytest.approx(len(pcm) / 32000)


def test_speech_after_a_pause_is_decoded_with_the_rest(
    engine: PocketsphinxEngine, tmp_path: Path
) -> None:
    decoding = engine.start()
    decoding.feed(read_wav(speak("turn on the", tmp_path / "head.wav")))
    decoding.pause()
    decoding.resume()
    decoding.feed(read_wav(speak("bedroom lamp", tmp_path / "tail.wav")))
    transcript = decoding.finish()
    assert (transcript.text, transcript.understood) == ("turn on the bedroom lamp", True)


def test_two_utterances_decode_at_once(engine: PocketsphinxEngine, tmp_path: Path) -> None:
    first = engine.start()
    second = engine.start()
    first.feed(read_wav(speak("lock the front door", tmp_path / "a.wav")))
    second.feed(read_wav(speak("open the garage door", tmp_path / "b.wav")))
    assert second.finish().text == "open the garage door"
    assert first.finish().text == "lock the front door"


def test_an_unknown_option_is_refused_with_the_known_ones(tmp_path: Path) -> None:
    context = SttContext(load_home(EVAL_FIXTURES), "en", cache_dir=tmp_path, options={"beem": 1})
    with pytest.raises(SttError, match=r"unknown pocketsphinx option\(s\) beem; known: beam, "):
        PocketsphinxEngine(context)


@pytest.mark.parametrize("command", ["close the garage door", "lock the side door"])
def test_a_high_voice_the_model_misses_is_heard_with_its_spectrum_squeezed(
    engine: PocketsphinxEngine, tmp_path: Path, command: str
) -> None:
    pcm = read_wav(speak(command, tmp_path / "high.wav", voice="en-us+f3", speed=190))
    options = {"warps": "1.0"}
    unwarped = PocketsphinxEngine(
        SttContext(load_home(EVAL_FIXTURES), "en", cache_dir=tmp_path, options=options)
    )
    assert transcribe(unwarped, pcm) == ("", "outside the grammar")
    assert transcribe(engine, pcm) == (command, "")


def test_a_high_voice_keeps_its_s_when_only_the_band_below_the_cutoff_is_squeezed(
    engine: PocketsphinxEngine, tmp_path: Path
) -> None:
    """Squeezed up to 8 kHz, the hiss of the female voice's s reads as th or f: "set" is lost
    and the command rejected; squeezed below 5 kHz only, it is heard."""
    command = "set the bedroom lamp to seventy percent"
    pcm = read_wav(speak(command, tmp_path / "high.wav", voice="en-us+f3", speed=190))
    options = {"warp_cutoff_hz": 7999}
    whole_band = PocketsphinxEngine(
        SttContext(load_home(EVAL_FIXTURES), "en", cache_dir=tmp_path, options=options)
    )
    assert transcribe(whole_band, pcm) == ("", "outside the grammar")
    assert transcribe(engine, pcm) == (command, "")


def test_a_high_voice_is_decoded_squeezed_first_and_a_low_one_unwarped() -> None:
    assert warp_order((1.0, 1.2, 0.9), 210.0) == [1.2, 1.0, 0.9]
    assert warp_order((1.0, 1.2, 0.9), 100.0) == [1.0, 0.9, 1.2]
    assert warp_order((1.0, 1.2, 0.9), None) == [1.0, 0.9, 1.2]
    assert warp_order((1.0,), 210.0) == [1.0]


@pytest.mark.parametrize(
    ("option", "value", "problem"),
    [
        ("warps", "", r"warps='': give factors between 0\.5 and 2\.0"),
        ("warps", "fast", "warps='fast': give factors"),
        ("warps", "1.0 3", "warps='1.0 3': give factors"),
        ("warps", 0.1, "warps=0.1: give factors"),
        ("warp_passes", 0, "warp_passes=0: give a whole number, 1 or more"),
        ("warp_passes", 1.5, "warp_passes=1.5: give a whole number"),
        ("warp_cutoff_hz", 8000, "warp_cutoff_hz=8000: give Hz from 1000 to 7999"),
        ("warp_cutoff_hz", "high", "warp_cutoff_hz='high': give Hz"),
        ("garbage_before", "lots", "garbage_before='lots': give a number"),
        ("rejection", None, "rejection=None: give a number"),
    ],
)
def test_a_bad_engine_setting_is_refused_naming_it(
    tmp_path: Path, option: str, value: object, problem: str
) -> None:
    options = {option: value}
    context = SttContext(load_home(EVAL_FIXTURES), "en", cache_dir=tmp_path, options=options)
    with pytest.raises(SttError, match=problem):
        PocketsphinxEngine(context)


def test_a_weight_written_as_yaml_reads_it_is_taken(tmp_path: Path) -> None:
    """YAML reads 1e-33 (no dot) as text: the engine takes it as the number."""
    options = {"garbage_before": "1e-33"}
    context = SttContext(load_home(EVAL_FIXTURES), "en", cache_dir=tmp_path, options=options)
    assert PocketsphinxEngine(context).garbage_before == 1e-33


def test_a_language_without_a_model_is_refused_with_what_to_do() -> None:
    with pytest.raises(SttError, match="vosk"):
        PocketsphinxEngine(SttContext(load_home(EVAL_FIXTURES), "de"))


def test_listen_prints_each_utterance_and_its_intent(tmp_path: Path) -> None:
    one = speak("turn on the bedroom lamp", tmp_path / "one.wav")
    two = speak("lock the front door", tmp_path / "two.wav")
    silence = tmp_path / "silence.wav"
    subprocess.run(
        ["sox", "-n", "-r", "22050", "-c", "1", str(silence), "trim", "0", "1"], check=True
    )
    both = tmp_path / "both.wav"
    subprocess.run(["sox", silence, one, silence, silence, two, silence, both], check=True)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge_runtime",
            "listen",
            "--home",
            str(EVAL_FIXTURES),
            "--wav",
            str(both),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env={"EDGE_RUNTIME_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"},
    )
    heard = [json.loads(line) for line in done.stdout.splitlines()]
    assert [h["text"] for h in heard] == ["turn on the bedroom lamp", "lock the front door"]
    assert [h["intent"]["intent"] for h in heard] == ["HassTurnOn", "HassTurnOn"]
    assert heard[0]["intent"]["slots"] == {"name": "Bedroom Lamp"}
    assert 0.8 < heard[0]["speech_start_s"] < 1.4 and heard[0]["ended_by"] == "silence"
    # Decoded during the pause before the end: the intent comes sooner than a decode takes.
    assert all(h["decode_ms"] > 0 and h["end_to_intent_ms"] > 0 for h in heard)


def test_listen_says_what_is_wrong_with_a_file_that_is_no_wav(tmp_path: Path) -> None:
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio at all", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "edge_runtime", "listen", "--wav", str(bad)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={"EDGE_RUNTIME_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 2
    assert "WAV" in done.stderr and "Traceback" not in done.stderr
