"""Template examples about placeholder things, grouped by intent: how the encoder tier fills slots.

Every example is a random expansion of a Home Assistant template (or of our own
paraphrase templates) in which the entity, area and floor are placeholders
("turn off the reading light in the atrium"), with a mark at each slot. Once
the classifier has said which intent a sentence asks for, the tier re-binds
that intent's examples to the sentence's own names and numbers and lets hassil
match the rebuilt sentence. The examples do not depend on one home, so they
are drawn once per language and template version and cached on disk under a
key that hashes exactly those inputs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from importlib import metadata, resources
from pathlib import Path

from hassil import Intents, RangeSlotList, TextSlotList

from edge_runtime.cache import write_atomically
from edge_runtime.nlu.templates import TemplateSampler, fill_marks
from edge_runtime.nlu.words import LanguageResources

log = logging.getLogger(__name__)

FORMAT = 3
"""Bump when the way examples are drawn changes, so old caches are not reused."""
SEED = 20261124
PER_TEMPLATE = 12
PARAPHRASES_FILE = "{language}_paraphrases.yaml"


@dataclass(frozen=True)
class Example:
    """One template expansion: its intent and text with slot marks."""

    intent: str
    marked: str
    lists: tuple[str, ...]
    """Template list of each slot mark (`name`, `area`, `brightness` …), in mark order."""
    fills: tuple[str, ...]
    """The placeholder text of each mark."""
    name_domains: tuple[str, ...] = ()
    """Domains its `{name}` must have, as its template block requires; empty: any."""

    @cached_property
    def words(self) -> tuple[str, ...]:
        """The example as words, placeholders filled in."""
        return tuple(fill_marks(self.marked, self.fills).split())


@dataclass
class ExampleIndex:
    """Examples by intent, and within an intent by the slot lists they need."""

    by_intent: dict[str, dict[tuple[str, ...], list[Example]]] = field(default_factory=dict)

    @classmethod
    def of(cls, examples: list[Example]) -> ExampleIndex:
        index = cls()
        for example in examples:
            signature = tuple(sorted(example.lists))
            index.by_intent.setdefault(example.intent, {}).setdefault(signature, []).append(example)
        return index

    def groups(self, intent: str) -> dict[tuple[str, ...], list[Example]]:
        return self.by_intent.get(intent, {})


def placeholder_lists(res: LanguageResources) -> dict[str, TextSlotList]:
    """Slot lists with one placeholder entity per domain, one area, one floor."""
    names = [
        (text, text, {"domain": key.split(".")[0]})
        for key, text in res.placeholders.items()
        if key not in ("area", "floor")
    ]
    return {
        "name": TextSlotList.from_tuples(names, allow_template=False, name="name"),
        "area": TextSlotList.from_strings([res.placeholders["area"]], False, name="area"),
        "floor": TextSlotList.from_strings([res.placeholders["floor"]], False, name="floor"),
    }


def wildcard_lists(intents: Intents) -> set[str]:
    return {
        name
        for name, slot_list in intents.slot_lists.items()
        if not isinstance(slot_list, RangeSlotList | TextSlotList)
    }


def draw_examples(intents: Intents, res: LanguageResources) -> list[Example]:
    """Distinct examples of every template."""
    sampler = TemplateSampler(
        intents, placeholder_lists(res), random.Random(SEED), cycled_lists=frozenset({"name"})
    )
    seen: set[tuple[str, str]] = set()
    examples = []
    for sample in sampler.samples(PER_TEMPLATE):
        if (sample.intent, sample.marked) not in seen:
            seen.add((sample.intent, sample.marked))
            examples.append(
                Example(
                    sample.intent,
                    sample.marked,
                    tuple(f.list_name for f in sample.filled),
                    tuple(f.text for f in sample.filled),
                    sample.name_domains,
                )
            )
    return examples


def paraphrase_templates(language: str) -> str:
    """Our own extra templates for a language (verbs people use that HA's templates lack)."""
    path = resources.files("edge_runtime.nlu.lang").joinpath(
        PARAPHRASES_FILE.format(language=language.split("-", maxsplit=1)[0])
    )
    return path.read_text("utf-8") if path.is_file() else ""


def cache_key(language: str, res: LanguageResources, paraphrases: str) -> str:
    parts = {
        "format": FORMAT,
        "language": language,
        "intents": metadata.version("home-assistant-intents"),
        "hassil": metadata.version("hassil"),
        "placeholders": res.placeholders,
        "paraphrases": hashlib.sha256(paraphrases.encode()).hexdigest(),
        "seed": SEED,
        "per_template": PER_TEMPLATE,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def load_or_draw(path: Path, intents: Intents, res: LanguageResources) -> ExampleIndex:
    """The cached examples at `path`, or freshly drawn ones saved there."""
    if path.exists():
        try:
            rows = json.loads(path.read_text("utf-8"))
            return ExampleIndex.of(
                [Example(r[0], r[1], tuple(r[2]), tuple(r[3]), tuple(r[4])) for r in rows]
            )
        except (OSError, ValueError, IndexError, TypeError) as exc:
            log.warning("example cache %s is unreadable (%s); drawing it again", path, exc)
    examples = draw_examples(intents, res)
    rows = [[e.intent, e.marked, e.lists, e.fills, e.name_domains] for e in examples]
    write_atomically(path, json.dumps(rows))
    counts = Counter(e.intent for e in examples)
    log.info("drew %d template examples of %d intents into %s", len(examples), len(counts), path)
    return ExampleIndex.of(examples)
