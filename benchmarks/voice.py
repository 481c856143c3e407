"""Speech to intent on generated speech: accuracy, wrong actions, latency and cost per engine.

What is measured
----------------
Our own sentences (`benchmarks/data/voice.yaml`), spoken by espeak-ng, against
the home of `_fixtures.yaml` with the node standing in the Living Room, go
through what a node does with its microphone: the Silero end-pointer and the
speech engine (`SiteListener`), then the NLU cascade (rules, plus the encoder
where its model loads) on every transcript the engine accepts.

Configurations: pocketsphinx with the home's grammar, pocketsphinx with its
open vocabulary, and Vosk with its one model (Korean, open vocabulary; timing
only: espeak's Korean voice is too poor to score). Each runs in a fresh child
process of its own, so engines do not inflate each other's memory.

Conditions: *clean* (every command in two voices), *noisy* (every command in
one voice with white noise at 10 dB SNR, seeded) and *rejection* (sentences
that must lead to no action). The expected intent of a command is never
written by hand: it is the cascade's answer to the exact text, so the figures
measure the speech part. A command the cascade does not understand as text,
or a rejection it acts on, is dropped with a warning.

Per configuration and condition: word error rate (commands; numbers as the
grammar says them; a rejected transcript counts as saying nothing), intent
full match (intent and exactly the expected slots), wrong intents (acted, but
not as meant; "not understood" is not wrong), not understood, real-time
factor (end-pointer plus engine over the audio's length), the engine's load
time and resident memory, end-of-audio to intent latency and decoding time
(p50/p95). Audio is fed as fast as it goes, but latency is counted on the
clock of a node that hears it live (see `Listening.listen`): pocketsphinx
decodes while the end-pointer waits out the final silence, and a fast feed
alone would hide a decoding that outlasts that wait. For the grammar, the
precision of accepted transcripts: the share of transcripts the engine
accepted that led to the right outcome, which is what `ACCEPTED_CONFIDENCE`
in `edge_runtime/stt/pocketsphinx_engine.py` says.

    .venv/bin/python benchmarks/voice.py [--engines pocketsphinx,vosk] [--only CONFIG]
        [--stt-option KEY=VALUE ...] [--sweep KEY=V1,V2,...] [--quick] [--json FILE]

`--stt-option` goes to every configuration run (narrow with `--engines`/`--only`).
`--sweep` runs only the pocketsphinx grammar configuration, once per value
(how the rejection weight is tuned). A full run takes about six minutes on two
cores, a sweep about 70 s per value. espeak-ng and sox must be installed.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import subprocess
import sys
import tempfile
import time
import wave
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nlu
import nlu_accuracy as na
import numpy as np
import yaml
from common import fmt
from hassil.numbers import get_rbnf_engine

from edge_runtime.audio.sources import read_wav
from edge_runtime.audio.vad import EndpointConfig, load_detector
from edge_runtime.bench import stats
from edge_runtime.config import NluConfig
from edge_runtime.home import Home, load_home
from edge_runtime.messages import TextRequest
from edge_runtime.nlu.cascade import Cascade
from edge_runtime.stt.base import SpeechToText, SttContext, build_engine
from edge_runtime.stt.grammar import spoken_words
from edge_runtime.stt.pocketsphinx_engine import ACCEPTED_CONFIDENCE
from edge_runtime.voice import Heard, SiteListener

SENTENCES = nlu.BENCHMARKS / "data" / "voice.yaml"
SITE = "benchmark"
SAMPLE_RATE = 16_000
BYTES_PER_SECOND = SAMPLE_RATE * 2
PAD_BEFORE_S, PAD_AFTER_S = 0.3, 1.0
"""Silence around the speech, so the end-pointer hears a real end of the utterance."""
SNR_DB = 10.0
CLEAN, NOISY, REJECT, KOREAN = "clean", f"noisy {SNR_DB:g} dB", "rejection", "clean (ko)"
GRAMMAR, OPEN, VOSK = "pocketsphinx+grammar", "pocketsphinx open", "vosk-ko open"
PROGRESS_EVERY = 25
CHILD_TIMEOUT_S = 3600

# Targets of the issue (pocketsphinx with the home grammar, on a 2-core machine).
CLEAN_FULL_MIN, NOISY_FULL_MIN, WRONG_MAX = 92.0, 80.0, 2.0
LATENCY_P95_MAX_MS, RTF_MAX = 150.0, 0.1

# --------------------------------------------------------------------------- sentences and audio


@dataclass(frozen=True)
class Voice:
    """An espeak-ng voice (with variant) and speed in words per minute."""

    name: str
    speed: int

    @property
    def label(self) -> str:
        return f"{self.name}@{self.speed}"


CLEAN_VOICES = (Voice("en-us", 160), Voice("en-us+f3", 190))
"""Two speakers for clean commands; the first also speaks the noisy ones and the rejections, so
clean and noisy differ by the noise alone."""
KOREAN_VOICES = (Voice("ko", 150), Voice("ko", 180))


@dataclass(frozen=True)
class Utterance:
    """One generated WAV and the outcome it must lead to."""

    uid: str
    text: str
    kind: str
    condition: str
    voice: str
    wav: str
    want_intent: str | None = None
    """None for rejections (no action) and Korean (not scored)."""
    want_slots: dict[str, Any] = field(default_factory=dict)

    @property
    def scored(self) -> bool:
        return self.condition != KOREAN

    @property
    def command(self) -> bool:
        return self.condition in (CLEAN, NOISY)


def load_sentences(path: Path, section: str, quick: bool) -> list[tuple[str, str]]:
    """(text, kind) of one section; `--quick` keeps every fifth, for a smoke run."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    found = [(s["text"], s.get("kind", "")) for s in data[section]]
    return found[::5] if quick else found


def run_tool(*command: str) -> None:
    """espeak-ng or sox; a failure shows the tool's own message."""
    done = subprocess.run(command, capture_output=True, check=False)
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip()
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {message}")


def speak(text: str, path: Path, voice: Voice) -> Path:
    """espeak-ng's speech as standard PCM (16 kHz mono), padded with silence on both sides."""
    raw = path.with_suffix(".espeak.wav")
    run_tool("espeak-ng", "-v", voice.name, "-s", str(voice.speed), "-w", str(raw), text)
    pad = ("pad", str(PAD_BEFORE_S), str(PAD_AFTER_S))
    # -D: no dither, so the same text always gives the same file.
    run_tool("sox", "-D", str(raw), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(path), *pad)
    raw.unlink()
    return path


def add_noise(src: Path, dst: Path, snr_db: float, seed: int) -> Path:
    """White noise over the whole file, at `snr_db` below the RMS of the speech (not the pads)."""
    samples = np.frombuffer(read_wav(src), "<i2").astype(np.float64)
    speech = samples[int(PAD_BEFORE_S * SAMPLE_RATE) : -int(PAD_AFTER_S * SAMPLE_RATE)]
    rms = float(np.sqrt(np.mean(np.square(speech))))
    noise = np.random.default_rng(seed).normal(0.0, rms / 10 ** (snr_db / 20), samples.size)
    mixed = np.clip(np.rint(samples + noise), -32768, 32767).astype("<i2")
    with wave.open(str(dst), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(mixed.tobytes())
    return dst


def generate(utterance: Utterance, voice: Voice) -> None:
    """The utterance's WAV; noisy ones are the clean recording with noise mixed in."""
    path = Path(utterance.wav)
    if utterance.condition != NOISY:
        speak(utterance.text, path, voice)
        return
    clean = speak(utterance.text, path.with_suffix(".clean.wav"), voice)
    add_noise(clean, path, SNR_DB, zlib.crc32(utterance.text.encode()))
    clean.unlink()


# --------------------------------------------------------------------------- references


@dataclass
class Corpus:
    """Every utterance of the run, and what was left out of it and why."""

    utterances: list[Utterance] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def warn(corpus: Corpus, message: str) -> None:
    """At once on stderr (the run takes minutes) and again in the report."""
    corpus.warnings.append(message)
    print(f"warning: {message}", file=sys.stderr, flush=True)


def expected(cascade: Cascade, text: str, corpus: Corpus) -> na.Answer | None:
    """The cascade's answer to the exact text: the reference the speech must reach."""
    answer = nlu.answer(cascade, text)
    if answer.intent is None:
        warn(corpus, f"command dropped, the cascade does not understand its text: {text!r}")
        return None
    if answer.tier != "rules":
        warn(corpus, f"{text!r} is understood by the {answer.tier} tier only: no grammar says it")
    return answer


def add_commands(corpus: Corpus, cascade: Cascade, workdir: Path, quick: bool) -> None:
    """Each understood command in the clean voices, and once more in noise."""
    for index, (text, kind) in enumerate(load_sentences(SENTENCES, "commands", quick)):
        answer = expected(cascade, text, corpus)
        if answer is None:
            continue
        takes = [(CLEAN, v) for v in CLEAN_VOICES] + [(NOISY, CLEAN_VOICES[0])]
        for take, (condition, voice) in enumerate(takes):
            wav = str(workdir / f"c{index:03d}-{take}.wav")
            uid = f"c{index:03d}-{take}"
            corpus.utterances.append(
                Utterance(uid, text, kind, condition, voice.label, wav, answer.intent, answer.slots)
            )


def add_rejections(corpus: Corpus, cascade: Cascade, workdir: Path, quick: bool) -> None:
    """Non-commands; one the cascade acts on as text would measure the NLU, not speech."""
    for index, (text, kind) in enumerate(load_sentences(SENTENCES, "rejections", quick)):
        answer = nlu.answer(cascade, text)
        if answer.intent is not None:
            warn(corpus, f"rejection dropped, the cascade acts on its text: {text!r}")
            continue
        voice = CLEAN_VOICES[0]
        wav = str(workdir / f"r{index:03d}.wav")
        corpus.utterances.append(Utterance(f"r{index:03d}", text, kind, REJECT, voice.label, wav))


def add_korean(corpus: Corpus, workdir: Path, quick: bool) -> None:
    """Korean for Vosk: timing only."""
    sentences = load_sentences(SENTENCES, "korean", quick)
    for index, (text, kind) in enumerate(sentences):
        for take, voice in enumerate(KOREAN_VOICES):
            uid = f"k{index:03d}-{take}"
            corpus.utterances.append(
                Utterance(uid, text, kind, KOREAN, voice.label, str(workdir / f"{uid}.wav"))
            )


def voice_of(label: str) -> Voice:
    """The voice back from its label (utterances carry labels, to stay plain JSON)."""
    name, _, speed = label.rpartition("@")
    return Voice(name, int(speed))


def build_corpus(cascade: Cascade, workdir: Path, quick: bool, korean: bool) -> Corpus:
    """Sentences with their references, and their audio (two espeak/sox jobs at a time)."""
    corpus = Corpus()
    add_commands(corpus, cascade, workdir, quick)
    add_rejections(corpus, cascade, workdir, quick)
    if korean:
        add_korean(corpus, workdir, quick)
    with ThreadPoolExecutor(max_workers=2) as pool:
        jobs = [pool.submit(generate, u, voice_of(u.voice)) for u in corpus.utterances]
        for job in jobs:
            job.result()
    return corpus


# --------------------------------------------------------------------------- configurations


@dataclass(frozen=True)
class Config:
    """One engine set up one way, run in a child process of its own."""

    name: str
    engine: str
    language: str
    grammar: bool
    options: dict[str, Any]
    conditions: tuple[str, ...]


def parse_value(text: str) -> Any:
    """A number where it reads as one (rejection=0.01), the text otherwise."""
    with contextlib.suppress(ValueError):
        return int(text)
    with contextlib.suppress(ValueError):
        return float(text)
    return text


def parse_options(pairs: Sequence[str]) -> dict[str, Any]:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            sys.exit(f"error: --stt-option {pair!r} is not KEY=VALUE")
        options[key] = parse_value(value)
    return options


def configs(args: argparse.Namespace) -> list[Config]:
    """The configurations this run measures, in the table's order."""
    options = parse_options(args.stt_option)
    english = (CLEAN, NOISY, REJECT)
    if args.sweep:
        key, _, values = args.sweep.partition("=")
        return [
            Config(f"{GRAMMAR} {key}={v}", "pocketsphinx", "en", True, options | {key: v}, english)
            for v in (parse_value(v) for v in values.split(","))
        ]
    found = [
        Config(GRAMMAR, "pocketsphinx", "en", True, options, english),
        Config(OPEN, "pocketsphinx", "en", False, options, english),
        Config(VOSK, "vosk", "ko", False, options, (KOREAN,)),
    ]
    engines = set(args.engines.split(","))
    return [c for c in found if c.engine in engines and args.only in (None, c.name)]


# --------------------------------------------------------------------------- the child: one engine


def rss_mib() -> float:
    """This process's resident memory now."""
    rss = stats.proc_memory().rss_mb
    return math.nan if rss is None else rss


@dataclass
class Listening:
    """One engine with its end-pointer and cascade, as a node runs them."""

    engine: SpeechToText
    cascade: Cascade
    detector: Any

    def respond(self, heard: Heard) -> dict[str, Any]:
        """What the node would do with one utterance: the cascade, unless the engine rejected it.

        `known_ms` is counted from `Heard.ended_at`, when the listener knew the end.
        """
        transcript = heard.transcript
        recognition = None
        if transcript.understood and transcript.text:
            request = TextRequest.build(transcript.text, None, heard.site, None, nlu.MAX_CHARS)
            recognition = self.cascade.recognize(request)
        return {
            "transcript": transcript.to_json(),
            "answer": recognition.to_jsonl() if recognition else None,
            "known_ms": (time.monotonic() - heard.ended_at) * 1000,
        }

    def listen(self, wav: Path) -> dict[str, Any]:
        """Feed the file as fast as it goes, keeping the clock of a node that hears it live.

        `now` is where a node on one thread would be, in seconds since the stream began:
        each chunk is handled once it has arrived and the work before it is done. So a
        decoding that runs long while the speaker pauses (pocketsphinx decodes then) delays
        the end as it would live, which the wall clock of a fast feed hides. Latency runs
        from the arrival of the chunk that ended the utterance to the cascade's answer.
        Only end-pointing and decoding count for the real-time factor.
        """
        pcm = read_wav(wav)
        listener = SiteListener(SITE, self.engine, self.detector, EndpointConfig())
        heard: list[dict[str, Any]] = []
        busy_s = now = 0.0
        for chunk, arrived in timed_chunks(pcm):
            now = max(now, arrived)
            started = time.perf_counter()
            ended = listener.feed(chunk) if chunk else listener.finish()
            busy_s += time.perf_counter() - started
            for item in ended:
                heard.append(self.respond(item))
                waited_s = now - arrived + time.perf_counter() - started
                heard[-1]["latency_ms"] = waited_s * 1000
            now += time.perf_counter() - started
        return {"heard": heard, "busy_s": busy_s, "audio_s": len(pcm) / BYTES_PER_SECOND}


def timed_chunks(pcm: bytes) -> Iterator[tuple[bytes, float]]:
    """32 ms chunks with the stream time at which each has arrived; b"" for the end."""
    step = BYTES_PER_SECOND * 32 // 1000
    for start in range(0, len(pcm), step):
        chunk = pcm[start : start + step]
        yield chunk, (start + len(chunk)) / BYTES_PER_SECOND
    yield b"", len(pcm) / BYTES_PER_SECOND


def load(config: Config, home: Home, cache_dir: Path) -> tuple[Listening, dict[str, float]]:
    """The engine first, alone, so its load time and memory are its own; then the rest."""
    before = rss_mib()
    started = time.perf_counter()
    context = SttContext(
        home, config.language, None, config.grammar, cache_dir, dict(config.options)
    )
    engine = build_engine(config.engine, context)
    load_s = time.perf_counter() - started
    after = rss_mib()
    cascade = nlu.build(nlu.System("cascade", tiers()), home, NluConfig().threshold)
    figures = {"load_s": load_s, "rss_mib": after, "engine_mib": after - before}
    return Listening(engine, cascade, load_detector()), figures


def run_child(manifest_path: Path) -> int:
    """`--child MANIFEST`: one configuration on its utterances, results to the manifest's file."""
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    config = Config(**{**manifest["config"], "conditions": tuple(manifest["config"]["conditions"])})
    home = load_home(Path(manifest["home"]))
    listening, figures = load(config, home, Path(manifest["cache_dir"]))
    wavs = [Path(u["wav"]) for u in manifest["utterances"]]
    started = time.perf_counter()
    listening.listen(wavs[0])  # first decode pays lazy set-up; a node pays it once
    figures["first_ms"] = (time.perf_counter() - started) * 1000
    results = {}
    for done, (utterance, wav) in enumerate(zip(manifest["utterances"], wavs, strict=True), 1):
        results[utterance["uid"]] = listening.listen(wav)
        if done % PROGRESS_EVERY == 0 or done == len(wavs):
            print(f"{config.name}: {done}/{len(wavs)}", file=sys.stderr, flush=True)
    out = {"figures": figures, "results": results}
    Path(manifest["result"]).write_text(json.dumps(out, ensure_ascii=False), encoding="utf-8")
    return 0


def tiers() -> tuple[str, ...]:
    """The x86-64 profile's tiers, as benchmarks/nlu.py builds its cascade."""
    return tuple(nlu.x86_profile().tiers.enabled())


def measure(config: Config, corpus: Corpus, home_path: Path, workdir: Path) -> dict[str, Any]:
    """Run one configuration in a fresh Python process and read its results back."""
    slug = "".join(c if c.isalnum() else "-" for c in config.name)
    manifest: dict[str, Any] = {
        "config": dataclasses.asdict(config),
        "home": str(home_path),
        "cache_dir": str(workdir / "cache"),
        "result": str(workdir / f"{slug}.result.json"),
        "utterances": [
            dataclasses.asdict(u) for u in corpus.utterances if u.condition in config.conditions
        ],
    }
    path = workdir / f"{slug}.manifest.json"
    path.write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(path)]
    subprocess.run(command, check=True, timeout=CHILD_TIMEOUT_S)
    result: dict[str, Any] = json.loads(Path(manifest["result"]).read_text(encoding="utf-8"))
    return result


def warm_grammar_cache(home: Home, workdir: Path) -> float:
    """Build the grammar once, so every configuration loads it as a restarted node does."""
    started = time.perf_counter()
    build_engine("pocketsphinx", SttContext(home, "en", cache_dir=workdir / "cache"))
    return time.perf_counter() - started


# --------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class Scored:
    """One utterance through one configuration."""

    utterance: Utterance
    said: str
    """What the engine accepted (utterances joined), "" when it rejected everything."""
    reasons: str
    answer: na.Answer
    full_ok: bool
    problem: str
    accepted: bool
    heard: int
    latency_ms: float
    """From the arrival of the audio that ended the utterance to the answer (`listen`)."""
    known_ms: float
    """From `Heard.ended_at` to the answer, on the wall clock of the fast feed."""
    decode_ms: float
    busy_s: float
    audio_s: float
    edits: int
    ref_words: int

    @property
    def wrong(self) -> bool:
        """Acted, but not as meant (any action on a rejection)."""
        return self.answer.intent is not None and not self.full_ok

    @property
    def not_understood(self) -> bool:
        return self.answer.intent is None and self.utterance.command


NOTHING = na.Answer(None, {}, math.nan)


@dataclass(frozen=True)
class Words:
    """Numbers as the grammar says them: 50 -> "fifty", 21 -> "twenty one"."""

    numbers: Any = field(default_factory=lambda: get_rbnf_engine("en"))

    def __call__(self, text: str) -> list[str]:
        words = []
        for word in spoken_words(text):
            said = word
            if word.isdigit():
                spelled = self.numbers.format_number(int(word)).text_by_ruleset
                said = spelled["spellout-cardinal"].replace("-", " ")
            words += said.split()
        return words


def edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    """Word-level Levenshtein distance (substitutions, insertions, deletions)."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        diagonal, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (r != h))
    return row[-1]


def first_action(heard: Sequence[dict[str, Any]]) -> na.Answer:
    """The first intent among the utterances heard; not understood when none acted."""
    for item in heard:
        if item["answer"] and item["answer"]["intent"]:
            return na.parse_jsonl_answer(json.dumps(item["answer"]))
    return NOTHING


def score(utterance: Utterance, result: dict[str, Any], words: Words) -> Scored:
    """Compare with the text's own answer, by benchmarks/nlu.py's slot rules."""
    heard = result["heard"]
    transcripts = [h["transcript"] for h in heard]
    said = " ".join(t["text"] for t in transcripts if t["understood"])
    answer = first_action(heard)
    want = (utterance.want_intent, utterance.want_slots)
    judged = nlu.score_dev(nlu.DevCase(utterance.condition, utterance.text, *want, ""), answer)
    ref = words(utterance.text)
    return Scored(
        utterance=utterance,
        said=said,
        reasons="; ".join(t.get("reason", "") for t in transcripts if not t["understood"]),
        answer=answer,
        full_ok=judged.full_ok and utterance.scored,
        problem=judged.problem if heard else "nothing heard",
        accepted=any(t["understood"] for t in transcripts),
        heard=len(heard),
        latency_ms=heard[-1]["latency_ms"] if heard else math.nan,
        known_ms=heard[-1]["known_ms"] if heard else math.nan,
        decode_ms=transcripts[-1]["decode_ms"] if heard else math.nan,
        busy_s=result["busy_s"],
        audio_s=result["audio_s"],
        edits=edit_distance(ref, words(said)) if utterance.command else 0,
        ref_words=len(ref) if utterance.command else 0,
    )


# --------------------------------------------------------------------------- figures


@dataclass(frozen=True)
class Row:
    """The figures of one configuration in one condition."""

    config: str
    condition: str
    utterances: int
    wer_pct: float
    full_pct: float
    wrong_pct: float
    not_understood_pct: float
    rtf: float
    load_s: float
    rss_mib: float
    """The whole process right after the engine loaded (before the NLU is built)."""
    engine_mib: float
    """What loading the engine added to the process."""
    latency_p50_ms: float
    latency_p95_ms: float
    decode_p50_ms: float
    decode_p95_ms: float
    known_p50_ms: float
    known_p95_ms: float
    precision_pct: float
    """Accepted transcripts that led to the right outcome (grammar only)."""
    accepted: int
    split: int
    """Utterances the end-pointer heard as none or several."""


def pct(part: int, whole: int, scored: bool = True) -> float:
    """NaN (printed "-") where the figure does not apply, not a misleading 0."""
    return na.pct(part, whole) if scored and whole else math.nan


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest rank over what was measured (nothing heard has no latency)."""
    found = [v for v in values if not math.isnan(v)]
    return stats.percentile(found, q)


def precision(scored: Sequence[Scored]) -> float:
    """Of the transcripts the engine accepted, the share that led to the right outcome."""
    accepted = [s for s in scored if s.accepted]
    return pct(sum(s.full_ok for s in accepted), len(accepted))


def summarize(
    config: Config, condition: str, scored: list[Scored], figures: dict[str, float]
) -> Row:
    """One row of the table; WER on commands only, accuracy nowhere for Korean."""
    n = len(scored)
    commands = condition in (CLEAN, NOISY)
    accuracy = condition != KOREAN
    ref_words = sum(s.ref_words for s in scored)
    return Row(
        config=config.name,
        condition=condition,
        utterances=n,
        wer_pct=pct(sum(s.edits for s in scored), ref_words, commands and accuracy),
        full_pct=pct(sum(s.full_ok for s in scored), n, accuracy),
        wrong_pct=pct(sum(s.wrong for s in scored), n, accuracy),
        not_understood_pct=pct(sum(s.not_understood for s in scored), n, commands),
        rtf=sum(s.busy_s for s in scored) / max(sum(s.audio_s for s in scored), 1e-9),
        load_s=figures["load_s"],
        rss_mib=figures["rss_mib"],
        engine_mib=figures["engine_mib"],
        latency_p50_ms=percentile([s.latency_ms for s in scored], 0.50),
        latency_p95_ms=percentile([s.latency_ms for s in scored], 0.95),
        decode_p50_ms=percentile([s.decode_ms for s in scored], 0.50),
        decode_p95_ms=percentile([s.decode_ms for s in scored], 0.95),
        known_p50_ms=percentile([s.known_ms for s in scored], 0.50),
        known_p95_ms=percentile([s.known_ms for s in scored], 0.95),
        precision_pct=precision(scored) if config.grammar and accuracy else math.nan,
        accepted=sum(s.accepted for s in scored),
        split=sum(s.heard != 1 for s in scored),
    )


@dataclass
class Run:
    """One configuration: its rows, every scored utterance, and its one-off figures."""

    config: Config
    rows: list[Row]
    scored: list[Scored]
    figures: dict[str, float]


def evaluate(config: Config, corpus: Corpus, result: dict[str, Any]) -> Run:
    """Score a child's raw results here, so children only measure."""
    words = Words()
    mine = [u for u in corpus.utterances if u.condition in config.conditions]
    scored = [score(u, result["results"][u.uid], words) for u in mine]
    rows = [
        summarize(config, c, [s for s in scored if s.utterance.condition == c], result["figures"])
        for c in config.conditions
    ]
    return Run(config, rows, scored, result["figures"])


@dataclass(frozen=True)
class Target:
    name: str
    detail: str
    ok: bool


def targets(run: Run) -> list[Target]:
    """The issue's targets for one grammar configuration."""
    by = {r.condition: r for r in run.rows}
    everything = run.scored
    wrong = pct(sum(s.wrong for s in everything), len(everything))
    latency = percentile([s.latency_ms for s in everything], 0.95)
    rtf = sum(s.busy_s for s in everything) / sum(s.audio_s for s in everything)
    clean, noisy = by[CLEAN].full_pct, by[NOISY].full_pct
    found = [
        (f"clean full match >= {CLEAN_FULL_MIN:.0f} %", clean, "%", clean >= CLEAN_FULL_MIN),
        (f"noisy full match >= {NOISY_FULL_MIN:.0f} %", noisy, "%", noisy >= NOISY_FULL_MIN),
        (f"wrong intents <= {WRONG_MAX:.0f} % (all conditions)", wrong, "%", wrong <= WRONG_MAX),
        (
            f"end of audio -> intent p95 < {LATENCY_P95_MAX_MS:.0f} ms",
            latency,
            "ms",
            latency < LATENCY_P95_MAX_MS,
        ),
        (f"real-time factor < {RTF_MAX}", rtf, "", rtf < RTF_MAX),
    ]
    return [Target(name, f"{value:.3g} {unit}".strip(), ok) for name, value, unit, ok in found]


# --------------------------------------------------------------------------- report


def print_rows(runs: Sequence[Run]) -> None:
    print(
        f"\n{'configuration':<38}{'condition':<13}{'utts':>5}{'WER %':>7}{'full %':>8}"
        f"{'wrong %':>8}{'not u %':>8}{'RTF':>7}{'load s':>7}{'RSS MiB':>8}{'+eng MiB':>9}"
        f"{'e2i p50':>8}{'e2i p95':>8}{'dec p50':>8}{'dec p95':>8}"
    )
    for r in (row for run in runs for row in run.rows):
        print(
            f"{r.config:<38}{r.condition:<13}{r.utterances:>5}{fmt(r.wer_pct):>7}"
            f"{fmt(r.full_pct):>8}{fmt(r.wrong_pct):>8}{fmt(r.not_understood_pct):>8}"
            f"{r.rtf:>7.3f}{r.load_s:>7.2f}{fmt(r.rss_mib, 0):>8}{fmt(r.engine_mib, 0):>9}"
            f"{fmt(r.latency_p50_ms, 0):>8}{fmt(r.latency_p95_ms, 0):>8}"
            f"{fmt(r.decode_p50_ms, 0):>8}{fmt(r.decode_p95_ms, 0):>8}"
        )
    print(
        "  full: intent and exactly the slots the text itself gets; wrong: acted, not as meant "
        "(on rejections: any action);\n  not u: commands not understood (no action); RTF: "
        "end-pointer + engine time over the audio (with 1.3 s of pads);\n  load s, RSS MiB: "
        "engine load and process VmRSS right after it, +eng MiB: what the engine added;\n  "
        "e2i: ms from the arrival of the audio that ends the utterance (silence_ms after the "
        "speech) to the intent\n  (or not understood), for a node hearing it live on one thread;"
        " dec: the engine's decoding, ms (pocketsphinx decodes\n  when the speaker pauses, before "
        "the end is known); '-': not measured. Vosk's Korean is timed only: espeak's\n  Korean "
        "voice is too poor to score, and the English cascade gets Korean text (it answers "
        "nothing)."
    )


def print_precision(runs: Sequence[Run]) -> None:
    """Calibrates ACCEPTED_CONFIDENCE: what an accepted grammar transcript is worth."""
    for run in (r for r in runs if r.config.grammar):
        parts = [f"{r.condition} {fmt(r.precision_pct)} % of {r.accepted}" for r in run.rows]
        spoken = [s for s in run.scored if s.utterance.command]
        print(
            f"\nPrecision of accepted transcripts, {run.config.name}: "
            f"clean+noisy {fmt(precision(spoken), 2)} %, all {fmt(precision(run.scored), 2)} % "
            f"({'; '.join(parts)}); ACCEPTED_CONFIDENCE is {ACCEPTED_CONFIDENCE}"
        )


def print_by_voice(runs: Sequence[Run]) -> None:
    """Commands heard right and wrong per voice and condition: the acoustic model matches some
    of espeak-ng's voices far better than others, which the averages hide."""
    for run in (r for r in runs if r.config.grammar):
        groups: dict[tuple[str, str], list[Scored]] = {}
        for s in (s for s in run.scored if s.utterance.command):
            groups.setdefault((s.utterance.condition, s.utterance.voice), []).append(s)
        parts = [
            f"{condition} {voice}: {sum(s.full_ok for s in group)}/{len(group)} right, "
            f"{sum(s.wrong for s in group)} wrong"
            for (condition, voice), group in sorted(groups.items())
        ]
        print(f"\nBy voice, {run.config.name}: " + "; ".join(parts))


def describe(s: Scored) -> str:
    got = f"{s.answer.intent} {json.dumps(s.answer.slots, default=str)}"
    want = f"{s.utterance.want_intent} {json.dumps(s.utterance.want_slots, default=str)}"
    heard = repr(s.said) if s.accepted else f"(rejected: {s.reasons or 'nothing heard'})"
    return (
        f"  [{s.utterance.condition}, {s.utterance.voice}] {s.utterance.text!r}\n"
        f"      heard {heard} -> {got if s.answer.intent else 'no action'}"
        + ("" if s.utterance.want_intent is None else f"; want {want}")
    )


def print_findings(runs: Sequence[Run], limit: int) -> None:
    """Wrong actions first (the worst outcome), then what was not understood."""
    for run in runs:
        if not any(r.condition != KOREAN for r in run.rows):
            continue
        for title, found in findings(run).items():
            print(f"\n{run.config.name}, {title}: {len(found)}")
            for s in found[:limit]:
                print(describe(s))
            if len(found) > limit:
                print(f"  ... {len(found) - limit} more (all of them with --json)")


def findings(run: Run) -> dict[str, list[Scored]]:
    """The utterances worth a look, by what went wrong."""
    return {
        "wrong intents (acted, not as meant)": [s for s in run.scored if s.wrong],
        "commands not understood": [s for s in run.scored if s.not_understood],
    }


def print_targets(runs: Sequence[Run]) -> None:
    for run in (r for r in runs if r.config.grammar):
        print(f"\nTargets, {run.config.name}:")
        for t in targets(run):
            print(f"  {'PASS' if t.ok else 'FAIL':<5} {t.name:<44} {t.detail}")


@dataclass(frozen=True)
class Report:
    runs: list[Run]
    warnings: list[str]
    grammar_build_s: float
    total_s: float
    quick: bool


def print_report(report: Report, examples: int) -> None:
    if report.warnings:
        print("\nWarnings:\n" + "\n".join(f"  {w}" for w in report.warnings))
    print_rows(report.runs)
    for run in report.runs:
        split = sum(r.split for r in run.rows)
        known = percentile([s.known_ms for s in run.scored], 0.95)
        print(
            f"  {run.config.name}: first utterance (warm-up, unscored) "
            f"{run.figures['first_ms']:.0f} ms; Heard.ended_at -> intent p95 {fmt(known, 0)} ms"
            f" (wall clock, fast feed); heard as none or several: {split}"
        )
    print_precision(report.runs)
    print_by_voice(report.runs)
    print_findings(report.runs, examples)
    print_targets(report.runs)
    if not math.isnan(report.grammar_build_s):
        print(
            f"\ngrammar built from the templates once in {report.grammar_build_s:.2f} s (cached;"
            " the load times above read the cache, as a restarted node does)"
        )
    print(f"total run time: {report.total_s:.1f} s{' (--quick)' if report.quick else ''}")


def scored_json(s: Scored) -> dict[str, Any]:
    return {
        **{k: v for k, v in dataclasses.asdict(s.utterance).items() if k != "wav"},
        "heard": s.said,
        "accepted": s.accepted,
        "reasons": s.reasons,
        "intent": s.answer.intent,
        "slots": s.answer.slots,
        "full_ok": s.full_ok,
        "wrong": s.wrong,
        "problem": s.problem,
        "latency_ms": s.latency_ms,
        "known_ms": s.known_ms,
        "decode_ms": s.decode_ms,
        "rtf": s.busy_s / s.audio_s,
    }


def write_json(path: Path, report: Report) -> None:
    data = {
        "total_run_s": round(report.total_s, 2),
        "quick": report.quick,
        "warnings": report.warnings,
        "grammar_build_s": report.grammar_build_s,
        "rows": [dataclasses.asdict(r) for run in report.runs for r in run.rows],
        "configurations": {
            run.config.name: {
                "config": dataclasses.asdict(run.config),
                "figures": run.figures,
                "precision_clean_noisy_pct": precision(
                    [s for s in run.scored if s.utterance.command]
                ),
                "targets": [
                    dataclasses.asdict(t) for t in (targets(run) if run.config.grammar else [])
                ],
                "utterances": [scored_json(s) for s in run.scored],
            }
            for run in report.runs
        },
    }
    path.write_text(json.dumps(data, indent=2, default=str, ensure_ascii=False), "utf-8")


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--json", type=Path, help="also write all figures to this JSON file")
    parser.add_argument("--engines", default="pocketsphinx,vosk", help="comma-separated")
    parser.add_argument("--only", help=f"one configuration: {GRAMMAR!r}, {OPEN!r} or {VOSK!r}")
    parser.add_argument(
        "--stt-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="engine option (SttContext.options), e.g. rejection=0.01; repeatable",
    )
    parser.add_argument(
        "--sweep", metavar="KEY=V1,V2", help="only the grammar configuration, once per value"
    )
    parser.add_argument("--quick", action="store_true", help="every fifth sentence (smoke run)")
    parser.add_argument("--examples", type=int, default=12, help="utterances shown per finding")
    parser.add_argument(
        "--eval-dir", type=Path, default=na.DEFAULT_EVAL_DIR, help="where _fixtures.yaml is"
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="voice-benchmark-") as tmp:
        yield Path(tmp)


def main(argv: Sequence[str] | None = None) -> int:
    """Generate the audio, run every configuration in its own process, print the table."""
    args = parse_args(argv)
    if args.child is not None:
        return run_child(args.child)
    chosen = configs(args)
    if not chosen:
        sys.exit("error: no configuration left to run (see --engines and --only)")
    started = time.perf_counter()
    with workdir() as tmp:
        home_path = nlu.dev_home_file(tmp, args.eval_dir)
        home = load_home(home_path)
        cascade = nlu.build(nlu.System("cascade", tiers()), home, NluConfig().threshold)
        korean = any(KOREAN in c.conditions for c in chosen)
        corpus = build_corpus(cascade, tmp, args.quick, korean)
        grammar_s = warm_grammar_cache(home, tmp) if any(c.grammar for c in chosen) else math.nan
        runs = [evaluate(c, corpus, measure(c, corpus, home_path, tmp)) for c in chosen]
    report = Report(runs, corpus.warnings, grammar_s, time.perf_counter() - started, args.quick)
    print_report(report, args.examples)
    if args.json:
        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
