"""A name of the home heard as words that sound the same: "the sealing fan" is the Ceiling Fan,
"start row ver" starts Rover, "the guessed room" is the Guest Room, "the slighting doors" are
the Sliding Doors.

Open-vocabulary speech to text (and people typing in a hurry) spell a word they do not know
as one they do. Where a word, or two words together, are pronounced exactly as a word of the
home's names (CMU pronouncing dictionary, which the pocketsphinx wheel ships), and are not
themselves words the templates or the home use, they are read as that name word. American
English says a t or d between vowels as the same flap ("writing" and "riding", "latter" and
"ladder"), so a name word sounds the same with either there. The encoder
builds a second rewriter over the templates' command words (numbers left out) and reads a
sentence with it only when the sentence as written gave nothing: "paws the tv" then pauses the
TV, while "whether" stays "whether" wherever it makes sense as written. A word the templates
use is never replaced: "for" never becomes "four". Without the dictionary
(another language, no pocketsphinx) nothing is rewritten.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from edge_runtime.cache import write_atomically
from edge_runtime.packaged import package_file

log = logging.getLogger(__name__)

DICTIONARY = Path("model") / "en-us" / "cmudict-en-us.dict"
"""Inside the pocketsphinx package."""
LANGUAGES = frozenset({"en"})
MIN_TARGET_LETTERS = 3
"""Shorter name words ("o", "n", "ac") are initials and abbreviations, not words to mishear."""
MIN_PART_PHONES = 2
"""Each of two words that make one name word has this many phones at least: shorter ones
("a", "the") fit inside too many names."""
VOWELS = frozenset(
    ["AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"]
)
"""Of the dictionary's phone set (ARPAbet, no stress marks)."""
FLAPPED = {"T": "D", "D": "T"}
"""Between two vowels both are the one flap of American English: either spelling fits."""
FORMAT = 2
"""Of the cache file; a change of what is stored changes it."""
_VARIANT = re.compile(r"\(\d+\)$")
_WORD = re.compile(r"^[a-z][a-z']*$")


def dictionary_path() -> Path | None:
    return package_file("pocketsphinx", DICTIONARY)


def read_dictionary(path: Path) -> dict[str, list[str]]:
    """Word -> its pronunciations (phones joined by spaces), lower-case words only."""
    found: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        word, _, phones = line.partition(" ")
        word = _VARIANT.sub("", word)
        if _WORD.match(word):
            found.setdefault(word, []).append(phones.strip())
    return found


class Homophones:
    """Rewrites the tokens of a sentence: words that sound like a name word become it."""

    def __init__(self, single: dict[str, str], pairs: dict[tuple[str, str], str]) -> None:
        self.single = single
        """A word -> the name word it sounds like."""
        self.pairs = pairs
        """Two words said one after the other -> the name word they sound like together."""

    @classmethod
    def build(
        cls, targets: Iterable[str], known: frozenset[str], pronounced: dict[str, list[str]]
    ) -> Homophones:
        """From the name words (`targets`), the words never to replace (`known`: what the
        templates and the home use) and the pronouncing dictionary."""
        targets = frozenset(t for t in targets if len(t) >= MIN_TARGET_LETTERS)
        sounds: dict[str, set[str]] = {}
        for target in targets:
            for said in pronounced.get(target, ()):
                for phones in flapped(said):
                    sounds.setdefault(phones, set()).add(target)
        unique = {phones: next(iter(ts)) for phones, ts in sounds.items() if len(ts) == 1}
        single: dict[str, str] = {}
        by_sound: dict[str, list[str]] = {}
        for word, variants in pronounced.items():
            for phones in variants:
                by_sound.setdefault(phones, []).append(word)
                if phones in unique and word not in targets and word not in known:
                    single[word] = unique[phones]
        pairs: dict[tuple[str, str], str] = {}
        for phones, target in unique.items():
            for head, tail in _splits(phones.split(), by_sound):
                if not {head, tail} <= known:
                    pairs.setdefault((head, tail), target)
        return cls(single, pairs)

    @classmethod
    def for_language(
        cls, language: str, targets: Iterable[str], known: frozenset[str], cache_dir: Path
    ) -> Homophones | None:
        """The rewriter for a language whose pronunciations are here (built once and cached,
        as reading the dictionary takes a few tenths of a second), or None."""
        if language.split("-", maxsplit=1)[0] not in LANGUAGES:
            return None
        path = dictionary_path()
        if path is None:
            return None
        targets = sorted(targets)
        key = hashlib.sha256(
            json.dumps([FORMAT, str(path), path.stat().st_size, targets, sorted(known)]).encode()
        ).hexdigest()[:16]
        cached = cache_dir / f"homophones-{key}.json"
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            data = json.loads(cached.read_text(encoding="utf-8"))
            return cls(data["single"], {(a, b): t for a, b, t in data["pairs"]})
        made = cls.build(targets, known, read_dictionary(path))
        pairs = [[a, b, t] for (a, b), t in made.pairs.items()]
        with contextlib.suppress(OSError):
            write_atomically(cached, json.dumps({"single": made.single, "pairs": pairs}))
        return made

    def rewrite(self, tokens: Sequence[str]) -> list[str]:
        out: list[str] = []
        i = 0
        while i < len(tokens):
            target = self.pairs.get((tokens[i], tokens[i + 1])) if i + 1 < len(tokens) else None
            if target is not None:
                out.append(target)
                i += 2
                continue
            out.append(self.single.get(tokens[i], tokens[i]))
            i += 1
        if out != list(tokens):
            log.debug("homophones: %s -> %s", " ".join(tokens), " ".join(out))
        return out


def flapped(phones: str) -> set[str]:
    """`phones` and every way of saying it with a t or d between vowels as the other."""
    said = phones.split()
    variants = [said]
    for i in range(1, len(said) - 1):
        if said[i] in FLAPPED and said[i - 1] in VOWELS and said[i + 1] in VOWELS:
            variants += [[*v[:i], FLAPPED[v[i]], *v[i + 1 :]] for v in variants]
    return {" ".join(v) for v in variants}


def _splits(phones: list[str], by_sound: dict[str, list[str]]) -> Iterable[tuple[str, str]]:
    """Every two dictionary words that together sound like `phones`."""
    for cut in range(MIN_PART_PHONES, len(phones) - MIN_PART_PHONES + 1):
        for head in by_sound.get(" ".join(phones[:cut]), ()):
            for tail in by_sound.get(" ".join(phones[cut:]), ()):
                yield head, tail
