"""Speech to text: the real-time factor of every engine this machine has, on speech that
espeak-ng makes here (decode time over audio time; below 1 keeps up with a speaker).

pocketsphinx is always measured (it ships in the wheel), with the closed vocabulary of the
embedded demo home as a node uses it; Vosk is measured when the `vosk` package and a Vosk
model are installed (or the profile names one), on speech in the model's language. Each
engine loads in a child process (`child`), so its load time and peak memory are its own.
Without espeak-ng there is no speech to time: the rows say so.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from edge_runtime.audio.format import AudioError
from edge_runtime.audio.sources import read_wav
from edge_runtime.bench.child import Job, PeakMeter, Unavailable, child_main
from edge_runtime.bench.plan import COMMANDS, Context, Step, in_child, skipped
from edge_runtime.bench.results import Figure, Finding, Note
from edge_runtime.home import demo_home
from edge_runtime.stt.base import SttContext, SttError, build_engine
from edge_runtime.stt.models import speech_models

BYTES_PER_SECOND = 32_000
"""16 kHz mono 16-bit, the standard PCM every engine takes."""
CHUNK_BYTES = BYTES_PER_SECOND * 32 // 1000
"""Audio is fed in 32 ms chunks, as the node gets it from a microphone or a satellite."""
SPEECH = {
    "en": ("en-us", COMMANDS),
    "ko": ("ko", ("불 켜 줘", "거실 불 켜 줘", "현관문 잠가 줘", "커튼 열어 줘", "음악 멈춰 줘")),
}
"""Per language: the espeak-ng voice and what it says (Korean from benchmarks/data/voice.yaml)."""


def steps(context: Context) -> list[Step]:
    engines = [("pocketsphinx", "en", _profile_model(context, "pocketsphinx"), True)]
    vosk_models = _vosk_models(context)
    if shutil.which("espeak-ng") is None:
        why = "espeak-ng is not installed (apt-get install espeak-ng): no speech to time"
        names = ["pocketsphinx", *(f"vosk {m}" for m, _ in vosk_models)]
        return [skipped(f"speech to text {n}", "stt", n, why) for n in names]
    found = [_step(context, *engine) for engine in engines]
    if importlib.util.find_spec("vosk") is None:
        found.append(
            skipped("speech to text vosk", "stt", "vosk", "not installed (pip install vosk)")
        )
    elif not vosk_models:
        why = "no Vosk model installed or named in the profile"
        found.append(skipped("speech to text vosk", "stt", "vosk", why))
    for model, language in vosk_models:
        name = f"vosk {model}"
        if not context.settings.vosk:
            why = "skipped with --quick (the model takes seconds to load)"
            found.append(skipped(f"speech to text {name}", "stt", name, why))
        else:
            found.append(_step(context, "vosk", language, model, False))
    return found


def _profile_model(context: Context, engine: str) -> str | None:
    return context.profile.stt.model if context.profile.stt.engine == engine else None


def _vosk_models(context: Context) -> list[tuple[str, str]]:
    """(model, language) of the Vosk models to time: the profile's, or every one installed."""
    named = _profile_model(context, "vosk")
    installed = [(m.id, m.language) for m in speech_models() if m.engine == "vosk"]
    if named is not None:
        language = next((lang for m, lang in installed if m == named), context.config.language)
        return [(named, language)]
    return installed


def _step(context: Context, engine: str, language: str, model: str | None, grammar: bool) -> Step:
    name = engine if model is None else f"{engine} {model}"
    voice, texts = SPEECH.get(language, SPEECH["en"])
    texts = texts[: context.settings.stt_utterances]
    options = context.config.voice.stt_options if engine == context.profile.stt.engine else {}

    def job() -> Job:
        try:
            wavs = [
                speak(t, context.workdir / f"{engine}{i}.wav", voice) for i, t in enumerate(texts)
            ]
        except RuntimeError as exc:
            raise Unavailable(f"no speech: {exc}") from None
        return {
            "engine": engine,
            "language": language,
            "model": model,
            "grammar": grammar,
            "options": dict(options),
            "cache_dir": str(context.cache_dir),
            "wavs": [str(w) for w in wavs],
        }

    def findings(r: Job) -> list[Finding]:
        how = "closed vocabulary of the demo home" if r["grammar"] else "open vocabulary"
        said = f"{len(texts)} utterances ({r['audio_s']:.1f} s) of espeak-ng {voice}, {how}"
        return [
            Figure("stt", name, "load_s", "load s", r["load_s"], "s", "lower"),
            Figure("stt", name, "peak_mb", "peak MB", r["peak_mb"], "MB", "lower"),
            Figure("stt", name, "rtf", "RTF", r["rtf"], "", "lower"),
            Note("stt", name, said),
        ]

    timeout = context.settings.child_timeout_s
    return in_child(f"speech to text {name}", "stt", name, __name__, timeout, job, findings)


def speak(text: str, path: Path, voice: str) -> Path:
    """espeak-ng's WAV of `text`; RuntimeError with espeak-ng's message when it fails."""
    done = subprocess.run(
        ["espeak-ng", "-v", voice, "-w", str(path), text], capture_output=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.decode(errors="replace").strip() or "espeak-ng failed")
    return path


# --------------------------------------------------------------------------- the child


def measure(job: Job) -> Job:
    """In the child: build the engine, decode every utterance (the first once untimed)."""
    try:
        audio = [read_wav(Path(w)) for w in job["wavs"]]
    except AudioError as exc:
        raise Unavailable(str(exc)) from None
    context = SttContext(
        demo_home(),
        job["language"],
        job["model"],
        job["grammar"],
        Path(job["cache_dir"]),
        job["options"],
    )
    meter = PeakMeter()
    meter.start()
    started = time.perf_counter()
    try:
        engine = build_engine(job["engine"], context)
    except SttError as exc:
        raise Unavailable(str(exc)) from None
    load_s = time.perf_counter() - started
    _decode(engine, audio[0])  # engines set up lazily; a running node has done so
    busy_s = sum(_decode(engine, pcm) for pcm in audio)
    audio_s = sum(len(pcm) for pcm in audio) / BYTES_PER_SECOND
    return {
        "load_s": load_s,
        "peak_mb": meter.added_mb(),
        "rtf": busy_s / audio_s,
        "audio_s": audio_s,
        "grammar": getattr(engine, "grammar", None) is not None,
    }


def _decode(engine: Any, pcm: bytes) -> float:
    """Seconds spent feeding one utterance in chunks and finishing it."""
    started = time.perf_counter()
    decoding = engine.start()
    for offset in range(0, len(pcm), CHUNK_BYTES):
        decoding.feed(pcm[offset : offset + CHUNK_BYTES])
    decoding.finish()
    return time.perf_counter() - started


if __name__ == "__main__":
    sys.exit(child_main(measure))
