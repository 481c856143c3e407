"""Where a sentence may hold several commands, and the ways to cut it into them.

"turn off the kitchen lights and lock the front door, then start the vacuum"
is three commands; "turn on the kitchen and living room lights" is one. Words
alone cannot tell these apart, so this module only proposes: it cuts the
sentence at every joiner ("and", "then", a comma ...) into segments, and
yields every way to regroup adjacent segments into clauses, the most clauses
first. The cascade keeps the first grouping whose every clause its
single-command tiers understand with confidence; the calibrated tiers, not
this module, decide.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

JOINERS = {
    "en": re.compile(
        r"\s*[,;]\s*(?:and\s+)?(?:then\s+|also\s+|after\s+that\s+)?"
        r"|\s+(?:and\s+then|and\s+also|and|then|also|plus|as\s+well\s+as|after\s+that)\s+",
        re.IGNORECASE,
    )
}
"""What may join two commands, per language (a language without an entry is never cut)."""
OBJECT_START = {"en": re.compile(r"^(?:the|my|our|all|every)\b", re.IGNORECASE)}
"""A clause that starts like this has no verb of its own: "lock the back door and the side
door" locks both, so the clause borrows the verb of the clause before it."""
MAX_SEGMENTS = 6
"""More pieces than this is a list, not a handful of commands: 2**5 groupings at most."""


def joints(text: str, language: str) -> list[tuple[int, int]]:
    """The (start, end) of every joiner inside `text`; none when there are too many."""
    joiners = JOINERS.get(language.split("-", maxsplit=1)[0])
    if joiners is None:
        return []
    found = [m.span() for m in joiners.finditer(text) if m.start() > 0 and m.end() < len(text)]
    return found if len(found) < MAX_SEGMENTS else []


def may_hold_several(text: str, language: str) -> bool:
    return bool(joints(text, language))


def groupings(text: str, language: str) -> Iterator[list[str]]:
    """Every way to cut `text` at its joiners into two or more clauses, the most clauses
    first; a joiner not cut at stays in its clause ("the kitchen and living room lights")."""
    spans = joints(text, language)
    for count in range(len(spans), 0, -1):
        for chosen in itertools.combinations(spans, count):
            starts = [0, *(end for _start, end in chosen)]
            ends = [*(start for start, _end in chosen), len(text)]
            clauses = [text[a:b].strip(" ,;.!?") for a, b in zip(starts, ends, strict=True)]
            if all(clauses):
                yield with_verbs(clauses, language)


def with_verbs(clauses: list[str], language: str) -> list[str]:
    """Each clause that starts with its object, led by the verb of the clause before it."""
    starts_with_object = OBJECT_START.get(language.split("-", maxsplit=1)[0])
    if starts_with_object is None:
        return clauses
    done = [clauses[0]]
    for clause in clauses[1:]:
        verb = _verb_of(done[-1], starts_with_object) if starts_with_object.match(clause) else ""
        done.append(f"{verb} {clause}" if verb else clause)
    return done


def _verb_of(clause: str, starts_with_object: re.Pattern[str]) -> str:
    """The words of `clause` before its object ("turn off" of "turn off the tv")."""
    words = clause.split()
    for index in range(1, len(words)):
        if starts_with_object.match(words[index]):
            return " ".join(words[:index])
    return ""
