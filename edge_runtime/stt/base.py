"""The interface every speech-to-text engine implements, and the registry that finds them.

An engine is built once (`SttContext`: home, language, the profile's model,
the cache directory) and then decodes many utterances. Each utterance is one
`Decoding`: audio is fed while the person speaks, so that when the end-pointer
says the utterance is over only the last frames remain to decode. The result
is a `Transcript` with a confidence; an engine that knows the utterance fell
outside its grammar, or that scores it too low, says so (`understood=False`)
instead of passing a guess on to the NLU.

Audio is always 16 kHz mono 16-bit little-endian PCM (`edge_runtime.audio`
converts everything else before it gets here).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from edge_runtime.home import Home
from edge_runtime.registry import Registry


class SttError(Exception):
    """An engine cannot be built (missing package or model, unusable grammar)."""


@dataclass(frozen=True)
class SttContext:
    home: Home
    language: str
    model: str | None = None
    """The profile's model for the engine: a catalog id or a directory; the engine's default
    when unset."""
    grammar: bool = True
    """Restrict recognition to the commands of the home (the closed vocabulary)."""
    cache_dir: Path | None = None
    options: dict[str, Any] = field(default_factory=dict)
    """Engine-specific settings from the node config (`voice.stt_options`)."""


@dataclass(frozen=True)
class Transcript:
    """What an engine heard in one utterance."""

    text: str
    """The words, lower case; empty when nothing was recognized."""
    confidence: float
    """0..1; how sure the engine is that `text` is what was said."""
    engine: str
    understood: bool
    """False when the engine rejects its own result (outside the grammar, score too low):
    the NLU is not asked, the utterance is reported as not understood."""
    audio_s: float
    """Length of the audio decoded."""
    decode_ms: float
    """Time spent decoding after the last audio arrived (streaming engines do the rest
    while the person speaks)."""
    grammar: bool = True
    """Whether the closed vocabulary constrained the result (False: open vocabulary)."""
    reason: str = ""
    """Why `understood` is False, for the log and the transcript event."""

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "confidence": round(self.confidence, 4),
            "engine": self.engine,
            "understood": self.understood,
            "grammar": self.grammar,
            "audio_s": round(self.audio_s, 3),
            "decode_ms": round(self.decode_ms, 2),
            **({"reason": self.reason} if self.reason else {}),
        }


class Decoding(Protocol):
    """One utterance being decoded."""

    def feed(self, pcm: bytes) -> None:
        """Decode more audio (any length, 16 kHz mono s16le)."""
        ...

    def partial(self) -> str:
        """The words so far (may change until `finish`)."""
        ...

    def pause(self) -> None:
        """The speaker paused (the end-pointer's `SpeechPaused`): an engine that decodes at the
        end does it now, so that `finish` is instant when no more speech follows."""
        ...

    def resume(self) -> None:
        """Speech came back after `pause`: what was decoded early no longer stands."""
        ...

    def finish(self) -> Transcript:
        """The final result; the decoding cannot be fed afterwards. After `pause` with no
        `resume`, the audio fed since (silence) may be left out."""
        ...


class SpeechToText(Protocol):
    engine: str
    """The registry name (`pocketsphinx`, `vosk`)."""

    def start(self) -> Decoding:
        """Begin an utterance. Several may be open at once (one per satellite site)."""
        ...


SttFactory = Callable[[SttContext], SpeechToText]
_ENGINES: Registry[SttFactory] = Registry()
register_engine = _ENGINES.register
"""Class or function decorator: make an engine constructible by its profile name."""


def build_engine(name: str, context: SttContext) -> SpeechToText:
    """The engine registered as `name`, built for `context`."""
    _import_engines()
    factory = _ENGINES.get(name)
    if factory is None:
        raise SttError(f"unknown speech engine {name!r}; known: {', '.join(_ENGINES.names())}")
    return factory(context)


def _import_engines() -> None:
    """Engines register themselves on import; import the shipped ones (cheap: no model loads)."""
    from edge_runtime.stt import pocketsphinx_engine, vosk_engine  # noqa: F401, PLC0415
