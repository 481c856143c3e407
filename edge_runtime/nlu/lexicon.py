"""Find the home's names, numbers and listed values in a sentence, tolerating how people say them.

The learned tiers need to know *what* a sentence refers to before they decide
what it asks: "kill the garage lamp" mentions the entity "Garage Light" (noun
folded), "bed room" is the area "Bedroom" (a speech-recognition split), "the
left curtain" is "Curtain Left" (word order), "the ceiling light in the
kitchen" is "Kitchen Ceiling" (the area said apart), "fifty five" is 55.
`Lexicon.read` returns non-overlapping spans, each with its canonical value and
a score in [0, 1]. When two things fit a span equally well and nothing said
tells them apart, the reading is marked ambiguous: the tiers then say "not
understood" instead of guessing. Language specifics (number words, noun
folds, fillers, generic words) come from `lang/<language>.yaml`; without such
a file only digits and exact names are found. It never decides an intent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from edge_runtime.home import Home
from edge_runtime.nlu.homophones import Homophones
from edge_runtime.nlu.words import is_number, language_resources, normalize, tokenize

MATCH_MIN = 0.84
"""Below this a span is not taken to name the thing (bedrom ~ bedroom is 0.92)."""
TOKEN_FUZZY_MIN = 0.8
SHORT_WORD_MIN = 0.9
INFLECTIONS = ("s", "es", "ed", "d", "ing")
"""Two words are the same word when this similar (curtin ~ curtain) and at least 4 letters long."""
HOME_KINDS = ("name", "area", "floor")
JOINED_MIN = 0.88
"""Whole-phrase spelling similarity for split or merged words ("bed room" ~ "bedroom" is 0.93);
stricter than word by word, or "side door is" would pass for "side door"."""
REORDERED = 0.95
AREA_SAID_APART = 0.9
TIE = 0.02


@dataclass(frozen=True)
class Phrase:
    """Something the home or the templates can name, in one of the ways it may be said."""

    kind: str
    """`name`, `area`, `floor`, or a template list (`color`, `cover_classes` …)."""
    tokens: tuple[str, ...]
    value: str
    """Canonical text, as a template would say it (entity name, area name, list value)."""
    domain: str | None = None
    area_tokens: tuple[str, ...] = ()
    """Words of an entity's area: "Kitchen Ceiling" said "the ceiling light in the kitchen"."""
    area: str | None = None
    said: tuple[str, ...] = ()
    """The words as written, before nouns are folded."""
    key: str = ""
    """What the phrase names (an entity id, an area id …): two phrases with the same value
    may still name two things, such as two lamps both called "Reading Light"."""


@dataclass(frozen=True)
class Span:
    phrase: Phrase
    start: int
    end: int
    score: float
    rivals: tuple[Phrase, ...] = ()
    """Other things that fit this span as well; empty when the span is unambiguous."""
    soft: bool = False
    """Said only with generic words ("the tv" for the entity "TV"): an example may leave it
    unbound, reading the words as a kind of device rather than as that one device."""

    @property
    def kind(self) -> str:
        return self.phrase.kind

    @property
    def weight(self) -> float:
        return self.score * (self.end - self.start)


@dataclass(frozen=True)
class Reading:
    """A sentence as the learned tiers see it: tokens, and what they refer to."""

    tokens: tuple[str, ...]
    spans: tuple[Span, ...]
    numbers: tuple[str, ...]
    """The numbers said outside of names, in order, as said ("1.5" stays 1.5, never 1)."""
    units: tuple[str | None, ...]
    """The unit said right after each number (`minute`, `percent` …), if any."""
    negated: bool

    def of_kind(self, kind: str) -> list[Span]:
        return [s for s in self.spans if s.kind == kind]

    @property
    def ambiguous(self) -> bool:
        return any(s.rivals for s in self.spans)


class Lexicon:
    """The home's names and the templates' listed values, for one language."""

    def __init__(self, home: Home, language: str, list_values: Iterable[Phrase] = ()) -> None:
        self.res = language_resources(language)
        self.context_area = home.context_area_name
        self.phrases = [*self._home_phrases(home), *list_values]
        self.max_len = max((len(p.tokens) for p in self.phrases), default=1) + 2
        self.by_word: dict[str, list[int]] = {}
        for index, phrase in enumerate(self.phrases):
            for word in set(phrase.tokens):
                self.by_word.setdefault(word, []).append(index)
        # Only the home's own names are matched loosely: listed values are ordinary words
        # ("back" is not "black"), so they must be said as they are.
        self.name_vocabulary = sorted(
            {w for p in self.phrases if p.kind in HOME_KINDS for w in p.tokens}
        )
        self.phrase_texts = [
            " ".join(p.tokens) if p.kind in HOME_KINDS else "\x00" for p in self.phrases
        ]
        self.homophones: Homophones | None = None
        """Set by a tier that knows its vocabulary: names heard as words that sound alike."""
        self.command_homophones: Homophones | None = None
        """Set likewise: words heard as a command word that sounds the same ("paws"), read so
        only when asked (`read(..., commands=True)`): "whether" is a word of its own too."""

    @property
    def name_words(self) -> frozenset[str]:
        """Every word of the home's names, areas and floors, as said and as folded."""
        return frozenset(
            w for p in self.phrases if p.kind in HOME_KINDS for w in (*p.tokens, *p.said)
        )

    def fold(self, tokens: Sequence[str]) -> tuple[str, ...]:
        return tuple(self.res.noun_folds.get(t, t) for t in tokens)

    def _home_phrases(self, home: Home) -> Iterable[Phrase]:
        areas = {a.id: self.fold(tokenize(a.name)) for a in home.areas}
        for entity in home.entities:
            if not entity.is_exposed:
                continue
            area_tokens = areas.get(entity.area or "", ())
            area_name = home.area_by_id[entity.area].name if entity.area else None
            for said in (entity.name, *entity.aliases):
                words = tuple(tokenize(said))
                yield Phrase(
                    "name",
                    self.fold(words),
                    entity.name,
                    entity.domain,
                    area_tokens,
                    area_name,
                    words,
                    entity.id,
                )
        for area in home.areas:
            for said in (area.name, *area.aliases):
                yield Phrase("area", self.fold(tokenize(said)), area.name)
        for floor in home.floors:
            for said in (floor.name, *floor.aliases):
                yield Phrase("floor", self.fold(tokenize(said)), floor.name)

    def normalize(self, text: str) -> list[str]:
        return normalize(text, self.res)

    def read(self, text: str, commands: bool = False) -> Reading:
        tokens = self.normalize(text)
        if self.homophones is not None:
            tokens = self.homophones.rewrite(tokens)
        if commands and self.command_homophones is not None:
            tokens = self.command_homophones.rewrite(tokens)
        folded = self.fold(tokens)
        spans = self._soften(
            tokens, self._resolve(_non_overlapping(list(self._candidates(folded))))
        )
        in_spans = {i for s in spans for i in range(s.start, s.end)}
        positions = [i for i, t in enumerate(tokens) if is_number(t) and i not in in_spans]
        return Reading(
            tuple(tokens),
            tuple(spans),
            tuple(tokens[i].replace(",", ".") for i in positions),
            tuple(self.unit_after(tokens, i) for i in positions),
            self._negated(tokens),
        )

    def _soften(self, tokens: Sequence[str], spans: list[Span]) -> list[Span]:
        """Mark spans an example may leave unbound, and drop generic words that only look alike.

        A name said only with generic words is soft ("the tv" for the entity "TV"), and
        only when said exactly: "the lights" are lights, not the entity called "Light".
        An area that completed a name ("the ceiling light in the kitchen") is soft too:
        it is already said by the name.
        """
        completing = {
            s.phrase.area
            for s in spans
            if s.kind == "name"
            and set(s.phrase.tokens)
            & (set(s.phrase.area_tokens) - set(self.fold(tokens[s.start : s.end])))
        }
        result = []
        for span in spans:
            words = tuple(tokens[span.start : span.end])
            generic_name = span.kind == "name" and self._is_generic(self.fold(words))
            if generic_name and _plural_of(words, span.phrase.said):
                continue
            soft = generic_name or (span.kind == "area" and span.phrase.value in completing)
            result.append(dataclasses.replace(span, soft=soft))
        return result

    def _negated(self, tokens: Sequence[str]) -> bool:
        text = f" {' '.join(tokens)} "
        return any(f" {negation} " in text for negation in self.res.negations)

    def unit_after(self, tokens: Sequence[str], index: int) -> str | None:
        following = tokens[index + 1] if index + 1 < len(tokens) else ""
        return self.res.units_of.get(following)

    def _similar_words(self, word: str) -> list[str]:
        """Words of the home's names that `word` may be (itself, or misspelled)."""
        if len(word) < 4:
            return [word] if word in self.by_word else []
        found = process.extract(
            word,
            self.name_vocabulary,
            scorer=fuzz.ratio,
            score_cutoff=TOKEN_FUZZY_MIN * 100,
            limit=None,
        )
        similar = [match for match, _score, _index in found]
        return similar if word in similar or word not in self.by_word else [word, *similar]

    def _candidates(self, tokens: tuple[str, ...]) -> Iterable[Span]:
        similar = {t: self._similar_words(t) for t in set(tokens)}
        for start in range(len(tokens)):
            if tokens[start] in self.res.stop_words:
                continue
            for end in range(start + 1, min(len(tokens), start + self.max_len) + 1):
                if tokens[end - 1] in self.res.stop_words:
                    continue
                window = tokens[start:end]
                indexes = {i for t in window for w in similar[t] for i in self.by_word[w]}
                joined = process.extract(
                    " ".join(window),
                    self.phrase_texts,
                    scorer=fuzz.ratio,
                    score_cutoff=JOINED_MIN * 100,
                    limit=None,
                )
                scores = {i: self._score(window, self.phrases[i], tokens) for i in indexes}
                for _text, ratio, i in joined:
                    scores[i] = max(scores.get(i, 0.0), self._joined(window, i, ratio / 100.0))
                for i, score in scores.items():
                    if score >= MATCH_MIN:
                        yield Span(self.phrases[i], start, end, score)

    def _joined(self, window: tuple[str, ...], index: int, ratio: float) -> float:
        """Whole-phrase spelling similarity: "bed room" for "bedroom", "ceiling van".

        Only for words split or merged: never over a number or a whole extra word.
        """
        phrase = self.phrases[index]
        if phrase.kind == "name" and self._is_generic(window) and ratio < 1.0:
            return 0.0
        if len(window) == 1 == len(phrase.tokens) and ratio < 1.0:
            return 0.0  # one word for one word is a spelling slip: word_similarity decides
        if abs(len(window) - len(phrase.tokens)) > 1:
            return 0.0
        if any(is_number(w) and w not in phrase.tokens for w in window):
            return 0.0
        return ratio * 0.98 if ratio < 1.0 else 1.0

    def _score(self, window: tuple[str, ...], phrase: Phrase, sentence: tuple[str, ...]) -> float:
        """How well `window` says `phrase` word by word; 0 when it does not."""
        if window == phrase.tokens:
            return 1.0
        if phrase.kind == "name" and self._is_generic(window):
            return 0.0
        if len(window) > len(phrase.tokens) + 2 or len(phrase.tokens) > len(window) + 2:
            return 0.0
        return self._align(window, phrase, sentence)

    def _is_generic(self, window: tuple[str, ...]) -> bool:
        return all(t in self.res.generic_words or t in self.res.stop_words for t in window)

    def _align(self, window: tuple[str, ...], phrase: Phrase, sentence: tuple[str, ...]) -> float:
        """Word-by-word: reordered words, misspelled words, generic extras, the area said apart."""
        if phrase.kind not in HOME_KINDS:
            return 0.0  # listed values match only exactly (see _score)
        unmatched = list(phrase.tokens)
        similarity = 1.0
        for word in window:
            best = max(unmatched, key=lambda p: word_similarity(word, p), default=None)
            if best is not None and word_similarity(word, best) >= TOKEN_FUZZY_MIN:
                similarity = min(similarity, word_similarity(word, best))
                unmatched.remove(best)
            elif phrase.kind != "name" or (
                word not in self.res.generic_words and word not in self.res.stop_words
            ):
                return 0.0  # a word that belongs to something else ("kitchen lights" != "Kitchen")
            elif len(unmatched) == len(phrase.tokens) and word in self.res.generic_words:
                # A generic word may follow a name ("the garage light" for "Garage"), not lead
                # it: in "lock the front door" the "lock" is what to do, not part of the name.
                return 0.0
        if len(unmatched) == len(phrase.tokens):
            return 0.0
        inner = window[1:-1]
        if any(w in self.res.stop_words for w in inner) and all(
            w in self.res.generic_words or w in phrase.area_tokens
            for w in window
            if w not in self.res.stop_words
        ):
            return 0.0  # "the lights in the bedroom" are the room's lights, not "Bedroom Lamp"
        if unmatched:
            # Only an entity's own area may be left unsaid here, and only if it is said elsewhere
            # or is where the node stands ("the ceiling light" in the kitchen).
            if phrase.kind != "name" or not set(unmatched) <= set(phrase.area_tokens):
                return 0.0
            area_said = set(phrase.area_tokens) <= set(sentence) - set(window)
            if not (area_said or phrase.area == self.context_area):
                return 0.0
            return AREA_SAID_APART * similarity
        in_order = [w for w in window if w in phrase.tokens] == list(phrase.tokens)
        extra_words = 0.99 if len(window) != len(phrase.tokens) else 1.0
        return (1.0 if in_order else REORDERED) * similarity * extra_words

    def _resolve(self, spans: list[Span]) -> list[Span]:
        """Tell rival names apart by the area said elsewhere or the node's own area."""
        said_areas = {s.phrase.value for s in spans if s.kind == "area"}
        resolved = []
        for span in spans:
            chosen = span
            if span.rivals:
                everyone = (span.phrase, *span.rivals)
                for areas in (said_areas, {self.context_area}):
                    local = [p for p in everyone if p.area in areas]
                    if len(local) == 1:
                        chosen = Span(local[0], span.start, span.end, span.score)
                        break
            resolved.append(chosen)
        return sorted(resolved, key=lambda s: s.start)


def _plural_of(said: Sequence[str], name: Sequence[str]) -> bool:
    """ "lights" said for the entity "Light": the kind of device, not that one device."""
    return any(w.endswith("s") and not n.endswith("s") for w, n in zip(said, name, strict=False))


def word_similarity(a: str, b: str) -> float:
    """Spelling similarity of two words; 0 for short words, which one letter changes entirely."""
    if a == b:
        return 1.0
    shortest = min(len(a), len(b))
    short, long = sorted((a, b), key=len)
    if shortest >= 3 and long.startswith(short) and long[len(short) :] in INFLECTIONS:
        return 0.9  # "lock" / "locked", "light" / "lights"
    if shortest < 4:
        return 0.0
    ratio = float(fuzz.ratio(a, b)) / 100.0
    # A short word is one letter away from many others ("over" ~ "rover"): ask more of it.
    return ratio if shortest > 5 or ratio >= SHORT_WORD_MIN else 0.0


def _non_overlapping(candidates: list[Span]) -> list[Span]:
    """Greedy by weight (score x words); equal candidates for one span become rivals."""
    # On a tie a thing of the home beats a kind of thing: "the garage door" is the entity.
    ranked = sorted(
        candidates, key=lambda s: (s.weight, s.score, s.kind in HOME_KINDS), reverse=True
    )
    taken: set[int] = set()
    chosen: list[Span] = []
    for span in ranked:
        covered = set(range(span.start, span.end))
        if covered & taken:
            continue
        rivals = tuple(
            {
                (c.phrase.key or c.phrase.value): c.phrase
                for c in ranked
                if c.kind == span.kind
                and (c.phrase.key or c.phrase.value) != (span.phrase.key or span.phrase.value)
                and abs(c.weight - span.weight) <= TIE
                and set(range(c.start, c.end)) & covered
            }.values()
        )
        chosen.append(Span(span.phrase, span.start, span.end, span.score, rivals))
        taken |= covered
    return chosen
