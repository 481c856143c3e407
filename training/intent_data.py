"""Training data for the encoder tier's intent classifier, generated from templates, reproducibly.

Every sentence is in the form the encoder tier sees at run time: normalised
words (fillers dropped, numbers as digits) with the home's names replaced by
the language's placeholders ("turn off the reading light in the atrium").
Sources, all our own or Home Assistant's templates, never ../shared/eval:

- random expansions of the `home-assistant-intents` templates and of our own
  paraphrase templates (`edge_runtime/nlu/lang/<lang>_paraphrases.yaml`);
- label-preserving rewrites of those (`augment_<lang>.yaml`): other verbs,
  politeness, word order, speech-recognition slips;
- the label `none` for what must never act: our non-command templates,
  commands about devices and rooms the home does not have, and chatter.

    python -m training.intent_data --out data/intents.jsonl --seed 1
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

from edge_runtime.nlu.encoder import NOT_A_COMMAND
from edge_runtime.nlu.examples import paraphrase_templates, placeholder_lists
from edge_runtime.nlu.lexicon import LanguageResources, language_resources, normalize
from edge_runtime.nlu.rules import load_language
from edge_runtime.nlu.templates import Sample, TemplateSampler

NONE = "none"
HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Augmentations:
    prefixes: list[str]
    suffixes: list[str]
    rewrites: dict[str, list[tuple[re.Pattern[str], list[str]]]]
    slips: list[tuple[re.Pattern[str], str, float]]
    unknown_devices: list[str]
    unknown_places: list[str]
    chatter: list[str]

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
        )


def normalise(text: str, res: LanguageResources) -> str:
    """The run-time form of the encoder tier's input (see Lexicon.normalize)."""
    return " ".join(normalize(text, res))


class Generator:
    def __init__(self, language: str, seed: int) -> None:
        self.rng = random.Random(seed)
        self.res = language_resources(language)
        self.aug = Augmentations.load(language)
        self.intents = load_language(language, paraphrase_templates(language))
        self.sampler = TemplateSampler(
            self.intents, placeholder_lists(self.res), self.rng, cycled_lists=frozenset({"name"})
        )
        self.placeholder_words = {
            v for k, v in self.res.placeholders.items() if k not in ("area", "floor")
        }

    def augment(self, text: str, intent: str) -> str:
        """One random label-preserving variant of a sentence."""
        rules = self.aug.rewrites.get(intent, [])
        for pattern, replacements in rules:
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

    def unknown_target(self, sample: Sample) -> str | None:
        """The sample about a device or room the home lacks: it must not be acted on."""
        for filled in sample.filled:
            if filled.list_name == "name" and filled.text in self.placeholder_words:
                return sample.text.replace(filled.text, self.rng.choice(self.aug.unknown_devices))
            if filled.list_name == "area":
                return sample.text.replace(filled.text, self.rng.choice(self.aug.unknown_places))
        return None

    def examples(self, per_template: int, variants: int) -> Iterator[tuple[str, str]]:
        for sample in self.sampler.samples(per_template):
            label = NONE if sample.intent == NOT_A_COMMAND else sample.intent
            yield sample.text, label
            for _ in range(variants):
                yield self.augment(sample.text, sample.intent), label
            if label != NONE and self.rng.random() < 0.15:
                unknown = self.unknown_target(sample)
                if unknown:
                    yield self.augment(unknown, sample.intent), NONE
        for sentence in self.aug.chatter:
            for _ in range(variants + 1):
                yield self.augment(sentence, NONE), NONE


def generate(
    language: str, seed: int, per_template: int, variants: int, least: int, most: int
) -> list[dict[str, str]]:
    """Distinct (sentence, label) rows, each label between `least` and `most` times."""
    generator = Generator(language, seed)
    by_label: dict[str, dict[str, None]] = {}
    for text, label in generator.examples(per_template, variants):
        normal = normalise(text, generator.res)
        if normal:
            by_label.setdefault(label, {})[normal] = None
    rows = []
    for label, texts in sorted(by_label.items()):
        chosen = list(texts)
        generator.rng.shuffle(chosen)
        chosen = chosen[:most]
        for attempt in range(20 * least):  # rare intents: more rewrites of what they have
            if len(chosen) >= least:
                break
            extra = normalise(
                generator.augment(chosen[attempt % len(chosen)], label), generator.res
            )
            chosen.append(extra)
        rows += [{"text": text, "label": label} for text in chosen]
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
            handle.write(json.dumps(row) + "\n")
    counts = Counter(r["label"] for r in rows)
    print(f"{len(rows)} sentences, {len(counts)} labels -> {args.out}")
    for label, count in counts.most_common():
        print(f"  {count:6d}  {label}")


if __name__ == "__main__":
    main()
