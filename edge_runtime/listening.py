"""`edge-runtime listen`: speech to intent at the terminal, from the microphone or a WAV file.

What the daemon does for every utterance, without MQTT: end-pointing, speech
to text, then the cascade, printed with the timings a person tuning a room
wants to see (where speech started and ended, how long decoding took).
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import click

from edge_runtime.audio.format import AudioError
from edge_runtime.audio.sources import AudioSource, MicrophoneSource, WavSource, input_devices
from edge_runtime.audio.vad import load_detector
from edge_runtime.messages import Recognition, TextRequest
from edge_runtime.nlu.cascade import Cascade
from edge_runtime.runtime import Runtime
from edge_runtime.stt.base import SttError
from edge_runtime.voice import Heard, SiteListener

WAV_SITE = "wav"
MIC_SITE = "microphone"


class ListenError(Exception):
    """The audio or the speech engine cannot be used; the message says why."""


def print_devices() -> None:
    try:
        devices = input_devices()
    except AudioError as exc:
        raise ListenError(str(exc)) from None
    if not devices:
        click.echo("no input devices (no sound card, or PortAudio sees none)")
    for index, name, rate in devices:
        click.echo(f"{index:3d}  {name}  ({rate} Hz)")


def listen(
    runtime: Runtime, cascade: Cascade, wav: Path | None, device: str | None, as_json: bool
) -> None:
    """Print every utterance heard and its intent until the file ends or Ctrl-C."""
    try:
        engine = runtime.build_speech()
        listener = SiteListener(
            WAV_SITE if wav else MIC_SITE, engine, load_detector(), runtime.endpoint_config()
        )
        source = _open_source(runtime, wav, device)
    except (AudioError, SttError) as exc:
        raise ListenError(str(exc)) from None
    if wav is None:
        click.echo("Listening; speak a command (Ctrl-C stops).", err=True)
    heard_any = False
    try:
        for heard in _utterances(listener, source):
            heard_any = True
            recognition = _recognize(cascade, heard, runtime.config.limits.max_text_chars)
            click.echo(_report(heard, recognition, as_json))
    except AudioError as exc:
        raise ListenError(str(exc)) from None
    finally:
        source.close()
    if not heard_any and not as_json:
        click.echo("nothing heard: no speech in the audio", err=True)


def _open_source(runtime: Runtime, wav: Path | None, device: str | None) -> AudioSource:
    if wav is not None:
        return WavSource(wav)
    chosen: str | int | None = device if device is not None else runtime.config.voice.microphone
    if isinstance(chosen, str) and chosen.isdigit():
        chosen = int(chosen)
    return MicrophoneSource(chosen)


def _utterances(listener: SiteListener, source: AudioSource) -> Iterator[Heard]:
    """The utterances of the source; Ctrl-C ends the stream (and decodes what was said)."""
    stop = threading.Event()

    def on_interrupt(_signum: int, _frame: FrameType | None) -> None:
        stop.set()
        source.close()

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        for chunk in source.chunks():
            yield from listener.feed(chunk)
            if stop.is_set():
                break
        yield from listener.finish()
    finally:
        signal.signal(signal.SIGINT, previous)


def _recognize(cascade: Cascade, heard: Heard, max_chars: int) -> Recognition | None:
    if not heard.transcript.understood or not heard.transcript.text:
        return None
    request = TextRequest.build(heard.transcript.text, None, heard.site, None, max_chars)
    return cascade.recognize(request)


def _report(heard: Heard, recognition: Recognition | None, as_json: bool) -> str:
    to_intent_ms = (time.monotonic() - heard.ended_at) * 1000
    if as_json:
        document: dict[str, Any] = {
            **heard.to_json(),
            "intent": recognition.to_jsonl() if recognition else None,
            "end_to_intent_ms": round(to_intent_ms, 2),
        }
        return json.dumps(document, ensure_ascii=False)
    transcript = heard.transcript
    said = transcript.text if transcript.understood else f"(not understood: {transcript.reason})"
    lines = [
        f"[{heard.speech_start_s:6.2f} - {heard.speech_end_s:6.2f} s] {said}",
        f"  {transcript.engine}, decoded in {transcript.decode_ms:.0f} ms, "
        f"intent {to_intent_ms:.0f} ms after the end of speech",
    ]
    intent = recognition.intent if recognition else None
    if intent is None:
        lines.append("  -> not understood")
    else:
        slots = ", ".join(f"{name}={slot.value}" for name, slot in intent.slots.items())
        lines.append(f"  -> {intent.name} ({intent.tier}, {intent.confidence:.2f}) {slots}")
    return "\n".join(lines)
