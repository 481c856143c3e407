"""A language's words for the learned tiers, and the normalisation every sentence goes through.

`lang/<language>.yaml` holds what is specific to a language: number words,
phrases that mean a number and unit ("half an hour"), fillers, device nouns
folded together, generic and stop words, negations, opposites, placeholders.
A language without a file still works, with digits only. `normalize` turns a
sentence into the tokens the lexicon, the model and the training data share.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

_TOKEN = re.compile(r"(?<![\w])-?\d+(?:[.,]\d+)?|\d+(?:[.,]\d+)?|[^\W\d_]+(?:'[^\W\d_]+)?|[%°]")
_HYPHEN_BETWEEN_WORDS = re.compile(r"(?<=\w)-|-(?=[^\W\d])")


Polarity = tuple[frozenset[str], frozenset[str]]
"""An intent's own words and its opposite's ("on" ..., "off" ... for HassTurnOn)."""


@dataclass(frozen=True)
class LanguageResources:
    units: dict[str, int]
    tens: dict[str, int]
    hundred: frozenset[str]
    weak_units: frozenset[str]
    unit_words: frozenset[str]
    phrases: dict[str, str]
    noun_folds: dict[str, str]
    fillers: frozenset[str]
    trailing_words: tuple[tuple[str, ...], ...]
    """Phrases said after what a question asks about ("right now"), longest first."""
    placeholders: dict[str, str]
    negations: frozenset[str]
    units_of: dict[str, str]
    """Unit word -> its canonical unit (`mins` -> `minute`)."""
    generic_words: frozenset[str]
    stop_words: frozenset[str]
    join_prefixes: frozenset[str]
    opposites: tuple[tuple[frozenset[str], frozenset[str]], ...]
    intent_polarity: dict[str, Polarity]
    """Intent -> (words that say it, words that say its opposite)."""
    intent_cues: dict[str, frozenset[str]]
    """Intent -> words of which the encoder's answer needs one: without any, the sentence
    never said to do that ("paws the tv" is no order to turn the TV on)."""
    domain_cues: dict[str, frozenset[str]]
    """Domain -> words that only make sense for it: "lock" never opens a cover."""
    domain_polarity: dict[str, dict[str, Polarity]]
    """Domain -> intent -> (its words, its opposite's) among the domain's own verbs, which
    decide whatever else the sentence says: "i'm off to bed, lock the door" locks it."""


@lru_cache(maxsize=8)
def language_resources(language: str) -> LanguageResources:
    base_language = language.split("-", maxsplit=1)[0]
    path = resources.files("edge_runtime.nlu.lang").joinpath(f"{base_language}.yaml")
    data: dict[str, Any] = yaml.safe_load(path.read_text("utf-8")) if path.is_file() else {}

    def strings(key: str, items: Any) -> list[str]:
        bad = [item for item in items if not isinstance(item, str)]
        if bad:  # YAML reads bare on/off/yes/no as booleans
            raise ValueError(f"{path}: {key}: {bad[0]!r} is not a word; quote it")
        return list(items)

    def words(key: str) -> frozenset[str]:
        return frozenset(strings(key, data.get(key) or ()))

    def polarities(items: dict[str, Any]) -> dict[str, Polarity]:
        """Intent -> (its words, its opposite's), from `[[own ...], [opposite ...]]`."""
        return {
            intent: (frozenset(strings(intent, own)), frozenset(strings(intent, opposite)))
            for intent, (own, opposite) in items.items()
        }

    return LanguageResources(
        units=dict(data.get("units") or {}),
        tens=dict(data.get("tens") or {}),
        hundred=words("hundred"),
        weak_units=words("weak_units"),
        unit_words=words("unit_words"),
        phrases=dict(data.get("phrases") or {}),
        noun_folds={w: c for c, ws in (data.get("noun_folds") or {}).items() for w in ws},
        fillers=words("fillers"),
        trailing_words=tuple(
            sorted(
                (
                    tuple(phrase.split())
                    for phrase in strings("trailing_words", data.get("trailing_words") or ())
                ),
                key=len,
                reverse=True,
            )
        ),
        placeholders=dict(data.get("placeholders") or {}),
        negations=words("negations"),
        units_of={w: u for u, ws in (data.get("units_of") or {}).items() for w in ws},
        generic_words=words("generic_words"),
        stop_words=words("stop_words"),
        join_prefixes=words("join_prefixes"),
        opposites=tuple(
            (frozenset(strings("opposites", a)), frozenset(strings("opposites", b)))
            for a, b in (data.get("opposites") or ())
        ),
        intent_polarity=polarities(data.get("intent_polarity") or {}),
        intent_cues={
            intent: frozenset(strings(intent, cues))
            for intent, cues in (data.get("intent_cues") or {}).items()
        },
        domain_cues={
            domain: frozenset(strings(domain, cues))
            for domain, cues in (data.get("domain_cues") or {}).items()
        },
        domain_polarity={
            domain: polarities(intents)
            for domain, intents in (data.get("domain_polarity") or {}).items()
        },
    )


def is_number(token: str) -> bool:
    return token.lstrip("-")[:1].isdigit()


def tokenize(text: str) -> list[str]:
    """Lower-case word, number and unit tokens; hyphens and punctuation separate words.

    A minus before a number is kept ("-5"): no template takes it, so nothing is done,
    where dropping it would turn "-5 percent" into 5 percent.
    """
    return _TOKEN.findall(_HYPHEN_BETWEEN_WORDS.sub(" ", text.lower()))


def normalize(text: str, res: LanguageResources) -> list[str]:
    """Tokens as the learned tiers compare them: fillers dropped, numbers as digits."""
    tokens = [t for t in tokenize(text) if t not in res.fillers]
    tokens = join_prefixes(tokens, res)
    return numbers_to_digits(replace_phrases(tokens, res), res)


def replace_phrases(tokens: list[str], res: LanguageResources) -> list[str]:
    """Whole phrases that mean a number and unit ("half an hour" -> 30 minutes)."""
    text = " ".join(tokens)
    for phrase, replacement in sorted(res.phrases.items(), key=lambda p: -len(p[0])):
        text = re.sub(rf"\b{re.escape(phrase)}\b", replacement, text)
    return text.split()


def join_prefixes(tokens: list[str], res: LanguageResources) -> list[str]:
    """ "un lock" -> "unlock": prefixes a recogniser split from their word."""
    out: list[str] = []
    for token in tokens:
        if out and out[-1] in res.join_prefixes:
            out[-1] += token
        else:
            out.append(token)
    return out


def numbers_to_digits(tokens: list[str], res: LanguageResources) -> list[str]:
    """Number words to digits: "twenty one percent" -> "21 percent", "an hour" -> "1 hour"."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        value, used = _read_number(tokens, i, res)
        if used:
            out.append(str(value))
            i += used
        else:
            out.append(tokens[i])
            i += 1
    return out


def _read_number(tokens: list[str], i: int, res: LanguageResources) -> tuple[int, int]:
    """(value, tokens used) of a spelled number starting at i; used 0 when there is none."""
    word = tokens[i]
    following = tokens[i + 1] if i + 1 < len(tokens) else ""
    if word in res.weak_units:  # "an hour", "a hundred"; never "a" alone
        if following not in res.unit_words:
            return 0, 0
        value, used = 1, 1
    elif word in res.tens:
        value, used = res.tens[word], 1
        if following in res.units and following not in res.weak_units and res.units[following] < 10:
            value, used = value + res.units[following], 2
    elif word in res.units:
        value, used = res.units[word], 1
    else:
        return 0, 0
    if i + used < len(tokens) and tokens[i + used] in res.hundred:
        value, used = value * 100, used + 1  # "one hundred [and] twenty"
        joiner = 1 if tokens[i + used : i + used + 1] == ["and"] else 0
        if i + used + joiner < len(tokens):
            rest, more = _read_number(tokens, i + used + joiner, res)
            if more and rest < 100:
                value, used = value + rest, used + joiner + more
    return value, used
