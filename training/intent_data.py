"""Training data for the encoder tier's model, generated from templates, reproducibly from a seed.

Each row is a sentence as the encoder tier sees it at run time, as words
(normalised: fillers dropped, numbers as digits; the home's names replaced by
the language's placeholders, "turn off the reading light in the atrium"),
with its intent (or `none`) and one tag per word marking free text (`B-W`,
`I-W`: a shopping-list item, a timer's name, a message). Sources, all our own
or Home Assistant's templates, never the evaluation files:

- random expansions of the `home-assistant-intents` templates and of our own
  paraphrase templates (`edge_runtime/nlu/lang/<lang>_paraphrases.yaml`);
- label-preserving rewrites of those (`augment_<lang>.yaml`): other verbs,
  politeness, word order, speech-recognition slips;
- the label `none` for what must never act: our non-command templates,
  commands about devices and rooms the home does not have, and chatter.

    python -m training.intent_data --out build/intents.jsonl --seed 1
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from edge_runtime.nlu.encoder import FREE_TEXT_TAGS, NONE, NOT_A_COMMAND
from edge_runtime.nlu.examples import paraphrase_templates, placeholder_lists, wildcard_lists
from edge_runtime.nlu.rules import load_language
from edge_runtime.nlu.templates import MARK_END, MARK_START, Sample, TemplateSampler
from edge_runtime.nlu.words import LanguageResources, language_resources, normalize

HERE = Path(__file__).resolve().parent
_PIECES = re.compile(f"{MARK_START}(\\d+){MARK_END}|[^{MARK_START}]+")
BEGIN, INSIDE = FREE_TEXT_TAGS


@dataclass(frozen=True)
class Row:
    words: tuple[str, ...]
    tags: tuple[str, ...]
    label: str


@dataclass(frozen=True)
class Augmentations:
    prefixes: list[str]
    suffixes: list[str]
    rewrites: dict[str, list[tuple[re.Pattern[str], list[str]]]]
    slips: list[tuple[re.Pattern[str], str, float]]
    unknown_devices: list[str]
    unknown_places: list[str]
    chatter: list[str]
    free_text: dict[str, tuple[str, ...]]

    @classmethod
    def load(cls, language: str) -> Augmentations:
        data: dict[str, Any] = yaml.safe_load((HERE / f"augment_{language}.yaml").read_text())
        return cls(
            prefixes=data["prefixes"],
            suffixes=data["suffixes"],
            rewrites={
                intent: [(re.compile(p), list(r)) for p, r in rules]
                for intent, rules in data["rewrites"].items()
            },
            slips=[(re.compile(p), r, float(prob)) for p, r, prob in data["slips"]],
            unknown_devices=data["unknown_devices"],
            unknown_places=data["unknown_places"],
            chatter=data["chatter"],
            free_text={name: tuple(values) for name, values in data["free_text"].items()},
        )


def to_row(
    marked: str, fills: list[str], free: list[bool], label: str, res: LanguageResources
) -> Row:
    """Words and tags of a marked sentence: the words of free-text slots are tagged W."""
    words: list[str] = []
    tags: list[str] = []
    for match in _PIECES.finditer(marked):
        if match.group(1) is None:
            piece_words = normalize(match.group(0), res)
            words += piece_words
            tags += ["O"] * len(piece_words)
            continue
        index = int(match.group(1))
        piece_words = normalize(fills[index], res)
        words += piece_words
        if free[index]:
            tags += [BEGIN] + [INSIDE] * (len(piece_words) - 1)
        else:
            tags += ["O"] * len(piece_words)
    return Row(tuple(words), tuple(tags[: len(words)]), label)


class Generator:
    def __init__(self, language: str, seed: int) -> None:
        self.rng = random.Random(seed)
        self.res = language_resources(language)
        self.aug = Augmentations.load(language)
        self.intents = load_language(language, paraphrase_templates(language))
        self.free_lists = wildcard_lists(self.intents)
        self.sampler = TemplateSampler(
            self.intents,
            placeholder_lists(self.res),
            self.rng,
            wildcards=self.aug.free_text,
            cycled_lists=frozenset({"name"}),
        )
        self.placeholder_words = {
            v for k, v in self.res.placeholders.items() if k not in ("area", "floor")
        }

    def augment(self, text: str, intent: str) -> str:
        """One random label-preserving variant of a (marked) sentence."""
        for pattern, replacements in self.aug.rewrites.get(intent, []):
            if pattern.search(text) and self.rng.random() < 0.5:
                text = pattern.sub(self.rng.choice(replacements), text, count=1)
        if self.rng.random() < 0.3:
            text = f"{self.rng.choice(self.aug.prefixes)} {text}"
        if self.rng.random() < 0.25:
            text = f"{text} {self.rng.choice(self.aug.suffixes)}"
        for pattern, replacement, probability in self.aug.slips:
            if self.rng.random() < probability:
                text = pattern.sub(replacement, text, count=1)
        return text

    def unknown_target(self, fills: list[str], sample: Sample) -> list[str] | None:
        """The fills with the device, kind of device or room replaced by one the home lacks."""
        for index, filled in enumerate(sample.filled):
            if filled.list_name in ("name", "cover_classes"):
                unknown = self.rng.choice(self.aug.unknown_devices)
            elif filled.list_name == "area":
                unknown = self.rng.choice(self.aug.unknown_places)
            else:
                continue
            return [*fills[:index], unknown, *fills[index + 1 :]]
        return None

    def rows(
        self, per_template: int, variants: int, intents: set[str] | None = None
    ) -> Iterator[Row]:
        for sample in self.sampler.samples(per_template, intents):
            label = NONE if sample.intent == NOT_A_COMMAND else sample.intent
            fills = [f.text for f in sample.filled]
            free = [f.list_name in self.free_lists for f in sample.filled]
            yield to_row(sample.marked, fills, free, label, self.res)
            for _ in range(variants):
                marked = self.augment(sample.marked, sample.intent)
                yield to_row(marked, fills, free, label, self.res)
            if label != NONE and self.rng.random() < 0.2:
                unknown = self.unknown_target(fills, sample)
                if unknown:
                    marked = self.augment(sample.marked, sample.intent)
                    yield to_row(marked, unknown, [False] * len(unknown), NONE, self.res)
        for sentence in self.aug.chatter if intents is None else ():
            for _ in range(variants + 1):
                yield to_row(self.augment(sentence, NONE), [], [], NONE, self.res)


def generate(
    language: str, seed: int, per_template: int, variants: int, least: int, most: int
) -> list[Row]:
    """Distinct rows, each label between `least` and `most` times (rare ones rewritten more)."""
    generator = Generator(language, seed)
    by_label: dict[str, dict[tuple[str, ...], Row]] = {}
    for row in generator.rows(per_template, variants):
        if row.words:
            by_label.setdefault(row.label, {})[row.words] = row
    rare = {label for label, distinct in by_label.items() if len(distinct) < least}
    for row in generator.rows(per_template * 6, variants * 3, rare - {NONE}):
        if row.words and row.label in rare:
            by_label[row.label][row.words] = row
    rows: list[Row] = []
    for _label, distinct in sorted(by_label.items()):
        chosen = list(distinct.values())
        generator.rng.shuffle(chosen)
        rows += chosen[:most]
    generator.rng.shuffle(rows)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--language", default="en")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--per-template", type=int, default=16)
    parser.add_argument("--variants", type=int, default=2)
    parser.add_argument("--least", type=int, default=300, help="fewest sentences per label")
    parser.add_argument("--most", type=int, default=1500, help="most sentences per label")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    rows = generate(
        args.language, args.seed, args.per_template, args.variants, args.least, args.most
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w") as handle:
        for row in rows:
            handle.write(
                json.dumps({"words": row.words, "tags": row.tags, "label": row.label}) + "\n"
            )
    counts = Counter(r.label for r in rows)
    print(f"{len(rows)} sentences, {len(counts)} labels -> {args.out}")
    for label, count in counts.most_common():
        print(f"  {count:6d}  {label}")


if __name__ == "__main__":
    main()
