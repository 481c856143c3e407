"""pocketsphinx with the home's grammar: the English default, the way speech-to-phrase works.

The US-English acoustic model ships in the `pocketsphinx` wheel. Open
vocabulary it is unusable for commands (about 72 % word errors on espeak
speech); restricted to the sentences the templates can say in this home
(`grammar`) it is exact and fast.

Two things make the grammar say "not understood" instead of guessing:
- a *garbage loop* beside the commands: any sequence of phones, at a cost per
  phone (`rejection`). Speech that is not a command ("play some jazz", "hello
  how are you") costs less as phones than forced into the nearest command, so
  the garbage path wins and the transcript is rejected. The same phones may
  also come before or after a command (`garbage_before`, `garbage_after`): "don't open the
  garage door" is then a command with garbage in front, and rejected, rather
  than "open the garage door";
- a search that ends outside the grammar's final state (pocketsphinx then
  returns a partial path) is rejected too.

Decoders are pooled: an utterance takes one when it is decoded and gives it
back; several sites decoding at once each get their own.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime.audio.denoise import (
    CleaningStream,
    DenoiseError,
    NoiseSuppressor,
    denoise_mode,
    needs_cleaning,
)
from edge_runtime.audio.pitch import median_pitch_hz
from edge_runtime.stt.base import SttContext, SttError, Transcript, register_engine
from edge_runtime.stt.grammar import Grammar, load_or_build_grammar

log = logging.getLogger(__name__)

ENGINE = "pocketsphinx"
PHONES = (
    *("AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G"),
    *("HH", "IH", "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH"),
    *("T", "TH", "UH", "UW", "V", "W", "Y", "Z", "ZH"),
)
"""The phones of the en-us model: the garbage loop is any sequence of them."""
GARBAGE_PREFIX = "+garbage+"
GARBAGE_ENTER = 1e-6
"""Weight of leaving the start for the garbage loop that replaces a whole utterance. At 1e-3
it rejected half the commands of a voice the acoustic model matches less well (espeak-ng's
en-us+f3: 25 of 50 heard; at 1e-30, 39), and the edges below reject most of what is no
command. Lower weights hear more commands but take more that are none: at 1e-8,
benchmarks/voice.py heard 1 more clean command and 2 more in noise, but commands cut short
came through ("switch on" as "each switch on", the female "turn on the" as "turn on lamp");
below 1e-10 a burst of brown noise came out as "mow", the shortest command of the home
(tests/test_pocketsphinx.py holds that neither happens)."""
GARBAGE_AFTER = 1e-24
"""Weight of phones after a command (0 turns them off). Without them (or those before, below)
the garbage loop could only replace a whole utterance, so "don't open the garage door" came
out as "open the garage door" and "the garage light is broken" as "the garage light to zero".
With them such sentences end in garbage and are rejected. On 100 espeak-ng commands in two
voices and 16 non-commands (GARBAGE_ENTER 1e-3 and edges off; then GARBAGE_ENTER 1e-15 and
both edges 1e-24): heard right 74 / 75, wrong 4 / 3, non-commands acted on 5 / 0; at 10 dB
SNR 17 / 19 of 50 right, none wrong. Likelier edges reject real commands too (1e-14: 61 of
100 heard); at 1e-30 "the garage light is broken" became "the garage light to zero percent"."""
GARBAGE_BEFORE = 1e-33
"""Weight of phones before a command (0 turns them off). Less likely than those after: at
1e-24 the loop took a command's first word wherever the acoustic model heard it badly, and the
command was rejected: the female voice's "set the kitchen brightness to eighty percent" came
out as the phones "th ih th" and then the rest; in noise, "set" as "dh ae f m". On
benchmarks/voice.py's sentences (2026-12-07, before `WARP_CUTOFF_HZ`), from 1e-24 to 1e-27,
1e-30, 1e-33 and 1e-40:
the female voice heard 46, 47, 50, 51 and 51 of 67, noise at 10 dB 51, 53, 54, 54 and 54, with
no wrong intent more and all 25 non-commands rejected; at 0 three more were wrong ("order a
pizza for dinner" as "our garage decrease the volume to eight")."""
DEFAULT_REJECTION = 0.01
"""Weight of each further phone in the garbage loop: higher rejects more (see docs/voice.md)."""
DECODER_SETTINGS = frozenset(
    (
        *("beam", "wbeam", "pbeam", "maxhmmpf", "lw", "wip", "pip", "silprob", "fillprob"),
        *("topn", "ds", "fsgusefiller", "remove_noise"),
    )
)
"""pocketsphinx decoder settings `voice.stt_options` may set (its own names and meanings)."""
DEFAULT_SETTINGS = {"fillprob": 0.01}
"""Noise fillers between words far likelier than pocketsphinx's 1e-8: in noise at 10 dB SNR
the grammar path can then explain the noise, and twice as many commands are heard (19 of 50
against 9 in one espeak-ng voice), with as many wrong ones (benchmarks/voice.py)."""
ENGINE_SETTINGS = frozenset(
    (
        *("denoise", "rejection", "garbage_enter", "garbage_before", "garbage_after"),
        *("warps", "warp_passes", "warp_cutoff_hz"),
    )
)
NOISE_CHECK_BYTES = 8_000
"""Audio (0.25 s) between two readings of an utterance's noise while it is spoken: reading it
at every 32 ms chunk cost 0.005 of the audio's length."""
DEFAULT_WARPS = (1.0, 1.2, 0.9)
"""Vocal-tract length normalisation: the factors an utterance may be decoded with, the one
nearest to what its pitch suggests first (`warp_order`), the others only with `warp_passes`
above one. The acoustic model learnt from adult (mostly male) voices; a voice with a shorter
vocal tract (higher formants) matches it only with its spectrum squeezed (frequency / factor,
up to `WARP_CUTOFF_HZ`), and some longer ones with it stretched. See docs/voice.md for what
each brought."""
WARP_CUTOFF_HZ = 5000.0
"""Where the warp stops scaling: frequencies below it are divided by the factor, those above
it are mapped linearly onto what is left up to 8 kHz (pocketsphinx's `piecewise_linear` warp,
the usual form of vocal-tract length normalisation). Warping the whole band (its
`inverse_linear`) also moved the hiss of an s from 4-5 kHz to where the model expects a th
or an f: the female voice's "set" came out as the phones "th ih th". On benchmarks/voice.py's
sentences in the five espeak-ng female voices of en-us, 2026-12-07 (heard right of 67; with
the whole band warped / cut off at 4.5, 5 and 5.5 kHz): f3 51 / - / 61 / 60, f4 44 / 57 / 58
/ 56, f1 61 / 60 / 60 / 61, f2 63 / 64 / 64 / 63, f5 63 / 63 / 64 / 64; at 6 kHz f3 fell back
to 53. Wrong intents over f1, f2, f4 and f5 went from 7 to 10: "to eighty percent" heard as
"twenty" (f1) and "twenty eight" (f4), and one more "cancel my pizza timer" forced into a
duration. Male voices are decoded unwarped, which no cutoff changes."""
HIGH_VOICE_HZ = 160.0
"""A median pitch above this is a high voice (most women's and children's; men's lie below)."""
HIGH_VOICE_WARP = 1.2
"""The factor that suits a high voice best: tried first for one, nearest to it next."""
DEFAULT_WARP_PASSES = 1
"""Passes an utterance may take, each with the next factor, while it is not understood. One
pass at the factor the pitch suggests keeps the decoding inside the end-pointer's pause; more
hear a few more voices (en-gb, a deep voice), at one pass's time each for what is rejected."""
SHORTEST_LAST_WORD = 2.0
"""A sentence's last word said in less than this many times its least duration is made up
(`_last_word_squeezed`). Over the 628 utterances of benchmarks/voice.py's sentences in eight
espeak-ng voices (2026-12-07), every last word heard right took 2.5 times its least or more;
the made-up "fan" and "lamp" of a cut-short "turn on the" took 1.44 and 1.75."""
FRAMES_PER_PHONE = 3
"""The fewest 10 ms frames a phone takes: the model's phones are three states without skips."""
ACCEPTED_CONFIDENCE = 0.98
"""Share of accepted transcripts that led to the right intent (benchmarks/voice.py, 132
accepted of 201 clean and noisy espeak-ng commands: 98.5 %): what an accepted grammar
transcript's confidence says."""
PREFIXES = ("un", "re", "de", "in")
"""Two-letter heads a compound may start with; other parts need three letters (the dictionary
spells out two-letter abbreviations, which make nonsense of "hows" = "ho" + "ws")."""
MIN_PART = 3
SILENT_SAMPLE = 64
"""|sample| at or below this (-54 dBFS) counts as digital silence."""
LEAD_MARGIN = 6000
"""Samples (0.375 s) of silence before the speech, kept or added. The decoder needs a stretch
of silence to begin with: at 0.1 s it heard 68 of 100 espeak-ng commands right, at 0.375 s
78, with as many wrong."""
TAIL_MARGIN = 4000
"""Samples (0.1 s) of silence after the speech: more only costs decoding time."""
NOISE_FLOOR = 100.0
"""Standard deviation (in samples, about -50 dBFS: a quiet room) of the noise floor added to
every utterance. The acoustic model learnt from recordings that have one: on espeak-ng speech
a floor at -72 dBFS heard 66 of 100 commands right and 7 wrong, this one 74 and 4."""
VOICELESS = frozenset({"P", "T", "K", "F", "TH"})


@dataclass
class _Dictionary:
    """The model's pronunciation dictionary, with compounds of known words added on demand."""

    decoder: Any
    added: dict[str, str] = field(default_factory=dict)

    def knows(self, word: str) -> bool:
        if word in self.added or self.decoder.lookup_word(word) is not None:
            return True
        phones = self._plural(word) or self._compound(word)
        if phones is None:
            return False
        self.added[word] = phones
        return True

    def _plural(self, word: str) -> str | None:
        """ "awnings" = "awning" + Z: the dictionary lacks many plurals of words it has."""
        if not word.endswith("s") or len(word) <= MIN_PART:
            return None
        stem = self.decoder.lookup_word(word[:-1])
        if stem is None:
            return None
        return f"{stem} {'S' if stem.split()[-1] in VOICELESS else 'Z'}"

    def _compound(self, word: str) -> str | None:
        """ "unmute" = "un" + "mute": the phones of two or three known words, if they make it."""
        for cut in range(2, len(word) - MIN_PART + 1):
            if cut < MIN_PART and word[:cut] not in PREFIXES:
                continue
            head = self.decoder.lookup_word(word[:cut])
            if head is None:
                continue
            tail = self.decoder.lookup_word(word[cut:])
            if tail is None and len(word) - cut >= 2 * MIN_PART:
                tail = self._compound(word[cut:])
            if tail is not None:
                return f"{head} {tail}"
        return None


def _new_decoder(extra_words: dict[str, str], settings: dict[str, Any] | None = None) -> Any:
    import pocketsphinx  # noqa: PLC0415 (the model loads with the module's data files)

    # bestpath=False: the lattice pass drops the last word of a grammar sentence.
    # warp_type: piecewise_linear at 1.0 is no warp; each utterance sets its factor (`_decode`).
    decoder = pocketsphinx.Decoder(
        lm=None,
        loglevel="ERROR",
        bestpath=False,
        cmn="batch",
        **{"warp_type": "piecewise_linear", **DEFAULT_SETTINGS, **(settings or {})},
    )
    for phone in PHONES:
        decoder.add_word(GARBAGE_PREFIX + phone.lower(), phone, False)
    for word, phones in extra_words.items():
        decoder.add_word(word, phones, False)
    decoder.add_word(GARBAGE_PREFIX + "sil", "SIL", True)  # the last one updates the search
    return decoder


class PocketsphinxEngine:
    """The grammar recognizer; `grammar=False` in the context gives the open-vocabulary model."""

    engine = ENGINE

    def __init__(self, context: SttContext) -> None:
        if context.language.split("-")[0] != "en":
            raise SttError(
                f"pocketsphinx ships a US-English model only; language {context.language!r} "
                "needs the vosk engine with a model for it"
            )
        self.context = context
        self.settings = _decoder_settings(context.options)
        options = context.options
        self.rejection = _number(options, "rejection", DEFAULT_REJECTION)
        self.garbage_enter = _number(options, "garbage_enter", GARBAGE_ENTER)
        self.garbage_before = _number(options, "garbage_before", GARBAGE_BEFORE)
        self.garbage_after = _number(options, "garbage_after", GARBAGE_AFTER)
        self.warps = _warps(context.options.get("warps", DEFAULT_WARPS))
        self.warp_passes = _passes(context.options.get("warp_passes", DEFAULT_WARP_PASSES))
        self.warp_cutoff_hz = _cutoff(context.options.get("warp_cutoff_hz", WARP_CUTOFF_HZ))
        self.denoise = _denoise_mode(context.options.get("denoise", "auto"))
        self.suppressor = _suppressor(self.denoise)
        self._pool: list[Any] = []
        self._lock = threading.Lock()
        self.grammar: Grammar | None = None
        started = time.monotonic()
        first = self._build_first_decoder()
        self._pool.append(first)
        self.load_s = time.monotonic() - started
        log.info(
            "pocketsphinx ready in %.2f s: %s",
            self.load_s,
            f"grammar of {len(self.grammar.words)} words, {self.grammar.graph.states} states"
            if self.grammar
            else "open vocabulary",
        )

    def _build_first_decoder(self) -> Any:
        if self.context.grammar:
            dictionary = _Dictionary(_new_decoder({}))
            self.grammar = load_or_build_grammar(
                self.context.home, self.context.language, dictionary, ENGINE, self.context.cache_dir
            )
        decoder = self._make_decoder()
        if self.grammar is not None:
            self._fsg = decoder.get_fsg()
        return decoder

    def _make_decoder(self) -> Any:
        """A decoder for the grammar (with its added words and the garbage loop), or the open
        vocabulary when the context turned the grammar off."""
        if self.grammar is None:
            import pocketsphinx  # noqa: PLC0415

            return pocketsphinx.Decoder(loglevel="ERROR")
        return self._with_grammar(_new_decoder(dict(self.grammar.pronunciations), self.settings))

    @cached_property
    def _transitions(self) -> list[tuple[int, int, float] | tuple[int, int, float, str]]:
        """The home's commands, and beside them the garbage loops that reject the rest.

        Each loop is one state with a self-loop per phone, entered and left by null
        transitions, so the search keeps one HMM per phone and loop; phone words on the
        entering and leaving transitions too tripled that. The null entry carries their
        weights (`(1 - rejection) / rejection**2`), so a path of two phones or more weighs
        what it did; one of a single phone (or none) is new. On 294 utterances of
        benchmarks/voice.py's sentences the transcripts were the same but one (a command
        rejected), and decoding took 12 % less time on clean speech, 21 % less on noise and
        non-commands.
        """
        assert self.grammar is not None
        graph = self.grammar.graph
        loop = graph.states
        share = 1.0 / len(PHONES)
        moves: list[tuple[int, int, float] | tuple[int, int, float, str]] = [
            (a, b, 1.0, w) for a, b, _p, w in graph.transitions
        ]
        carried = (1 - self.rejection) / self.rejection**2
        # (entered from, the loop's state, left to, weight of entering): a whole utterance
        loops = [(graph.start, loop, graph.final, self.garbage_enter)]
        if self.garbage_before:  # phones before a command: "don't" ...
            loops += [(graph.start, loop + 1, graph.start, self.garbage_before)]
        if self.garbage_after:  # phones after one: ... "is broken"
            loops += [(graph.final, loop + 2, graph.final, self.garbage_after)]
        for source, state, target, enter in loops:
            moves += [(source, state, enter * carried), (state, target, 1.0)]
            moves += [
                (state, state, self.rejection * share, GARBAGE_PREFIX + p.lower()) for p in PHONES
            ]
        return moves

    def _with_grammar(self, decoder: Any) -> Any:
        assert self.grammar is not None
        graph = self.grammar.graph
        fsg = decoder.create_fsg("home", graph.start, graph.final, self._transitions)
        decoder.add_fsg("home", fsg)
        decoder.activate_search("home")
        return decoder

    def accepts(self, text: str) -> bool:
        """Is `text` a whole sentence of the grammar (not a search that stopped part-way)?"""
        return bool(self._fsg.accept(text))

    def wants_cleaning(self, pcm: bytes) -> bool:
        """Does `denoise` ask for RNNoise on this audio (where RNNoise is here)?"""
        return self.denoise == "always" or needs_cleaning(pcm)

    def cleaned(self, pcm: bytes, stream: CleaningStream | None = None) -> bytes:
        """The utterance with RNNoise's noise suppression where `denoise` asks for it; from
        `stream` when one has cleaned it as it came."""
        if self.suppressor is None or not self.wants_cleaning(pcm):
            return pcm
        return stream.cleaned(pcm) if stream is not None else self.suppressor.suppress(pcm)

    def _take(self) -> Any:
        with self._lock:
            if self._pool:
                return self._pool.pop()
        return self._make_decoder()

    def _give_back(self, decoder: Any) -> None:
        with self._lock:
            self._pool.append(decoder)

    def start(self) -> PocketsphinxDecoding:
        return PocketsphinxDecoding(self)


class PocketsphinxDecoding:
    """Audio is kept and decoded in one pass: when the speaker pauses, or at the end.

    Decoding while the audio streams in was tried: with live cepstral mean
    normalisation the first second of every utterance is judged against the
    previous speaker's mean, and on espeak speech that turned right answers into
    wrong ones ("turn on the bedroom lamp" -> "... fan"). One pass over the whole
    utterance normalises with its own mean; at a real-time factor of about 0.05
    a two-second command costs about 100 ms. That pass runs when the end-pointer
    reports a pause, while it waits to see whether the silence ends the utterance:
    when it does, the transcript is ready.
    """

    def __init__(self, engine: PocketsphinxEngine) -> None:
        self.engine = engine
        self.audio = bytearray()
        self._early: Transcript | None = None
        self._cleaning: CleaningStream | None = None
        self._cleaned_to = 0
        """Bytes of `audio` fed to `_cleaning`."""
        self._checked_at = 0
        """Bytes of `audio` when its noise was last read."""

    def feed(self, pcm: bytes) -> None:
        self.audio += pcm
        if self._early is None:  # after a pause, only speech that resumes needs it
            self._clean_as_it_comes()

    def _clean_as_it_comes(self) -> None:
        """Once the utterance so far reads as spoken in noise, RNNoise runs on it as it
        arrives, so the pass at the pause does not wait for it (the end-pointer's pre-roll
        tells the noise at once). Whether the cleaned audio is decoded is decided on the whole
        utterance, as before."""
        if self._cleaning is None:
            if self.engine.suppressor is None or not self._reads_noisy():
                return
            self._cleaning = self.engine.suppressor.stream()
        self._cleaning.feed(bytes(self.audio[self._cleaned_to :]))
        self._cleaned_to = len(self.audio)

    def _reads_noisy(self) -> bool:
        """The utterance's noise, read at its start and every `NOISE_CHECK_BYTES` after."""
        if self._checked_at and len(self.audio) - self._checked_at < NOISE_CHECK_BYTES:
            return False
        self._checked_at = len(self.audio)
        return self.engine.wants_cleaning(bytes(self.audio))

    def partial(self) -> str:
        return ""  # nothing is decoded before a pause (see the class docstring)

    def pause(self) -> None:
        self._early = self._decode()

    def resume(self) -> None:
        self._early = None
        self._clean_as_it_comes()

    def finish(self) -> Transcript:
        return self._early or self._decode()

    def _decode(self) -> Transcript:
        """Decode at the warp factor the voice's pitch suggests; with `warp_passes` above one,
        again at the next likeliest factors while the transcript is not understood. A warp
        only changes how the spectrum is read: what it yields is judged like any transcript
        (grammar, garbage loop)."""
        started = time.monotonic()
        said = self.engine.cleaned(bytes(self.audio), self._cleaning)
        audio = prepare(said)
        likely = warp_order(self.engine.warps, median_pitch_hz(said))
        decoder = self.engine._take()
        try:
            for warp in likely[: self.engine.warp_passes]:
                text = _decode_once(decoder, audio, warp, self.engine.warp_cutoff_hz)
                squeezed = self.engine.grammar is not None and _last_word_squeezed(decoder)
                transcript = self._transcript(text, (time.monotonic() - started) * 1000, squeezed)
                if transcript.understood:
                    break
        finally:
            self.engine._give_back(decoder)
        return transcript

    def _transcript(self, text: str, decode_ms: float, squeezed: bool = False) -> Transcript:
        grammar = self.engine.grammar
        audio_s = len(self.audio) / 32000
        reason = ""
        if not text:
            reason = "nothing recognized"
        elif GARBAGE_PREFIX in text or (grammar is not None and not self.engine.accepts(text)):
            reason = "outside the grammar"
        elif squeezed:
            reason = "last word too short: a command cut short"
        words = "" if reason else text
        return Transcript(
            text=words,
            confidence=0.0 if reason else (ACCEPTED_CONFIDENCE if grammar else 0.5),
            engine=ENGINE,
            understood=not reason,
            audio_s=audio_s,
            decode_ms=decode_ms,
            grammar=grammar is not None,
            reason=reason,
        )


def _decode_once(decoder: Any, audio: bytes, warp: float, cutoff_hz: float) -> str:
    """One pass over a prepared utterance with the spectrum below `cutoff_hz` warped by `warp`
    (squeezed above 1)."""
    # The feature front end carries state from one utterance to the next (not the cepstral
    # mean: cmn=batch, cmninit and set_cmn change nothing): after a command a second of near
    # silence came out as "mow", and the same audio decoded differently after different
    # speech. Reset, it does not; the reset also reads the warp factor set here.
    decoder.config["warp_params"] = f"{1 / warp:g} {cutoff_hz:g}"
    decoder.reinit_feat()
    decoder.start_utt()
    decoder.process_raw(audio, False, True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return hyp.hypstr if hyp is not None else ""


def _last_word_squeezed(decoder: Any) -> bool:
    """Was the last word of the pass fitted into less than `SHORTEST_LAST_WORD` times the
    shortest time its phones can take (`FRAMES_PER_PHONE` each)? Such a word was made up
    from the silence after a command cut short: the search must end in a whole sentence, so
    "turn on the" became "turn on the fan" (the fan in 13 frames, its three phones' least 9;
    said, 51) or "turn on lamp"."""
    words = [
        segment
        for segment in decoder.seg() or ()
        if segment.word[0] not in "<[" and not segment.word.startswith(GARBAGE_PREFIX)
    ]
    if not words:
        return False
    last = words[-1]
    phones = decoder.lookup_word(last.word) or decoder.lookup_word(last.word.split("(")[0])
    if not phones:
        return False
    frames = last.end_frame - last.start_frame + 1
    return bool(frames < SHORTEST_LAST_WORD * FRAMES_PER_PHONE * len(phones.split()))


def warp_order(warps: tuple[float, ...], pitch_hz: float | None) -> list[float]:
    """The factors nearest to the one the voice's pitch suggests first: a high voice has a
    short vocal tract, so decoding it squeezed is likeliest to succeed at once."""
    likely = HIGH_VOICE_WARP if pitch_hz is not None and pitch_hz >= HIGH_VOICE_HZ else 1.0
    return sorted(warps, key=lambda warp: abs(warp - likely))


def _warps(value: Any) -> tuple[float, ...]:
    """`warps` of `voice.stt_options`: one factor or several ("1.0 1.2 0.9", commas allowed)."""
    words = value if isinstance(value, tuple | list) else str(value).replace(",", " ").split()
    try:
        factors = tuple(float(v) for v in words)
    except ValueError:
        factors = ()
    if not factors or not all(0.5 <= f <= 2.0 for f in factors):
        raise SttError(f"pocketsphinx option warps={value!r}: give factors between 0.5 and 2.0")
    return factors


def _number(options: dict[str, Any], key: str, default: float) -> float:
    """A weight of `voice.stt_options`; YAML reads 1e-24 (no dot) as text, which is fine."""
    value = options.get(key, default)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise SttError(f"pocketsphinx option {key}={value!r}: give a number") from None


def _cutoff(value: Any) -> float:
    """`warp_cutoff_hz`: inside the 8 kHz band of 16 kHz audio."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 1000 <= value < 8000:
        raise SttError(f"pocketsphinx option warp_cutoff_hz={value!r}: give Hz from 1000 to 7999")
    return float(value)


def _passes(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SttError(f"pocketsphinx option warp_passes={value!r}: give a whole number, 1 or more")
    return value


def _denoise_mode(value: Any) -> str:
    try:
        return denoise_mode(value)
    except ValueError as exc:
        raise SttError(f"pocketsphinx option {exc}") from exc


def _suppressor(mode: str) -> NoiseSuppressor | None:
    """RNNoise for `auto` and `always`; `auto` goes on without it (with a warning) where its
    library is missing, `always` refuses to start."""
    if mode == "off":
        return None
    try:
        return NoiseSuppressor()
    except DenoiseError as exc:
        if mode == "always":
            raise SttError(str(exc)) from exc
        log.warning("speech in noise will be heard less well: %s", exc)
        return None


def prepare(pcm: bytes) -> bytes:
    """Cut or pad near-zero samples at the ends to a margin, and add a fixed noise floor.

    A real microphone always hears a noise floor; generated or gated audio has
    stretches of exact zeros, whose log energy drags the utterance's cepstral
    mean away from speech (espeak commands padded with zeros were rejected that
    decode right from a noisy room). The noise is seeded, so the same audio
    always gives the same transcript.
    """
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.int32)
    loud = np.flatnonzero(np.abs(samples) > SILENT_SAMPLE)
    if loud.size:
        first = max(0, int(loud[0]) - LEAD_MARGIN)
        samples = samples[first : int(loud[-1]) + TAIL_MARGIN]
        before = LEAD_MARGIN - (int(loud[0]) - first)
        after = TAIL_MARGIN - (first + samples.size - 1 - int(loud[-1]))
        samples = np.pad(samples, (before, max(0, after)))
    floor = np.random.default_rng(0).normal(0.0, NOISE_FLOOR, samples.size)
    return np.clip(samples + floor.astype(np.int32), -32768, 32767).astype(np.int16).tobytes()


def _decoder_settings(options: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - DECODER_SETTINGS - ENGINE_SETTINGS)
    if unknown:
        known = ", ".join(sorted(DECODER_SETTINGS | ENGINE_SETTINGS))
        raise SttError(f"unknown pocketsphinx option(s) {', '.join(unknown)}; known: {known}")
    return {key: value for key, value in options.items() if key in DECODER_SETTINGS}


@register_engine(ENGINE)
def _build(context: SttContext) -> PocketsphinxEngine:
    return PocketsphinxEngine(context)


def model_path() -> Path:
    import pocketsphinx  # noqa: PLC0415

    return Path(pocketsphinx.get_model_path())
