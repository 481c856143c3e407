"""Training data for the generator tier: sentences and the intents they ask for, from a seed.

Each row is one utterance about one home and the list of intents it asks for, in Home
Assistant's schema, as a JSON line:

    {"text": "turn off the den lamp and lock the back door",
     "intents": [{"intent": "HassTurnOff", "slots": {"name": "Den Lamp"}}, ...],
     "kind": "multi", "home": 17}

Every label is the rules tier's own answer, so the generator learns to answer as the
cascade's other tiers do: a sentence is drawn from the `home-assistant-intents` templates
for one home (`synthetic_homes`: hundreds of invented homes, home 0 the demo home) and
kept only when the rules tier, built for that home, understands it; its label is that
answer. Variants keep the label of the sentence they came from: other verbs, politeness,
fillers, word order, number words, speech-recognition slips, lower case
(`augment_<lang>.yaml`, `generator_<lang>.yaml`). Two or three labelled commands joined
by "and", "then" … give a row with their labels in order. Rows that must do nothing
(`intents: []`: negations, statements, chatter, requests outside the home, commands about
devices or rooms the home lacks) are kept only when the rules tier does nothing with
them either. Never reads the evaluation files.

    python -m training.generator_data --out build/generator.jsonl --seed 1 \
        --homes 200 --per-home 100
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from hassil import TextSlotList

from edge_runtime.home import Home
from edge_runtime.messages import TextRequest
from edge_runtime.nlu.base import NluContext
from edge_runtime.nlu.cascade import Cascade, build_cascade
from edge_runtime.nlu.examples import wildcard_lists
from edge_runtime.nlu.generator_format import said_slots, target_json
from edge_runtime.nlu.rules import (
    RULES_CONFIDENCE,
    home_slot_lists,
    load_language,
    name_list_values,
)
from edge_runtime.nlu.templates import MARKS, Sample, TemplateSampler, fill_marks
from edge_runtime.nlu.words import language_resources
from edge_runtime.profiles import DeviceProfile, load_profiles
from training.intent_data import Augmentations
from training.synthetic_homes import HERE, WORDS_FILE, HomeWords, synthetic_home, synthetic_homes

LANGUAGE = "en"
NODE_ID = "generator-data"
PROFILE = "x86-64"
"""Any profile builds the same rules tier; this one is what the benchmarks use."""
MAX_CHARS = 1000
NO_ACTION = ("negation", "statement", "unknown", "chatter", "out_of_home")
_ENDS_WITH_MARK = re.compile(f"{MARKS.pattern}$")
_STARTS_WITH_MARK = re.compile(f"^{MARKS.pattern}")
_PLACE_AT_END = re.compile(f"^(.+?),? ((?:in|on|at) (?:the )?{MARKS.pattern})$")


@dataclass(frozen=True)
class Label:
    """One intent in HA's schema: what the rules tier answers for one command."""

    intent: str
    slots: dict[str, Any]
    words: dict[str, str] = field(default_factory=dict, compare=False)
    """The words each slot came from (`Intent.slot_words`): what the model copies."""

    def to_dict(self) -> dict[str, Any]:
        return {"intent": self.intent, "slots": dict(sorted(self.slots.items()))}

    def said(self, text: str) -> dict[str, Any]:
        """This intent as the generator writes it for `text` (generator_format)."""
        return {"intent": self.intent, "slots": said_slots(self.slots, self.words, text)}


@dataclass(frozen=True)
class Example:
    """One training row: what was said about one home and what must be done."""

    text: str
    intents: tuple[Label, ...]
    """In the order said; empty: nothing must be done."""
    kind: str
    home: int
    """Index of the home (`synthetic_homes.synthetic_home(seed, home)`) the text is about."""
    sources: tuple[str, ...] = ()
    """The sentence(s) the rules tier labelled, one per intent (for no-action rows, the
    command a negation or an unknown device was made from). Not written out."""

    def to_json(self) -> str:
        row = {
            "text": self.text,
            "intents": [label.to_dict() for label in self.intents],
            "target": target_json([label.said(self.text) for label in self.intents]),
            "kind": self.kind,
            "home": self.home,
        }
        return json.dumps(row, ensure_ascii=False)


@dataclass(frozen=True)
class Phrases:
    """Everything the rows are varied with: our word lists plus the encoder's rewrites."""

    data: dict[str, Any]
    """`generator_<lang>.yaml` as read (mix, joiners, negations, statements …)."""
    rewrites: dict[str, list[tuple[re.Pattern[str], list[str]]]]
    prefixes: list[str]
    suffixes: list[str]
    slips: list[tuple[re.Pattern[str], str, float]]
    chatter: list[str]
    free_text: dict[str, tuple[str, ...]]
    homes: HomeWords
    numbers: dict[int, str]
    """Numbers as words (`number_words`)."""

    @classmethod
    def load(cls, language: str) -> Phrases:
        data = yaml.safe_load((HERE / WORDS_FILE.format(language=language)).read_text("utf-8"))
        shared = Augmentations.load(language)
        # augment_<lang>.yaml quotes "on" inside flow lists, which YAML keeps as text.
        rewrites = {
            intent: [(p, [r.replace('"', "") for r in rs]) for p, rs in rules]
            for intent, rules in shared.rewrites.items()
        }
        for intent, rules in (data.get("rewrites") or {}).items():
            rewrites.setdefault(intent, []).extend((re.compile(p), list(rs)) for p, rs in rules)
        free_text = {
            key: tuple(
                dict.fromkeys([*shared.free_text.get(key, ()), *data["free_text"].get(key, ())])
            )
            for key in {**shared.free_text, **data["free_text"]}
        }
        return cls(
            data=data,
            rewrites=rewrites,
            prefixes=[*shared.prefixes, *data["prefixes"]],
            suffixes=[*shared.suffixes, *data["suffixes"]],
            slips=[(re.compile(p), r, float(prob)) for p, r, prob in data["slips"]],
            chatter=[*shared.chatter, *data["chatter"], *data["reasons"]],
            free_text=free_text,
            homes=HomeWords.from_dict(data["homes"]),
            numbers=number_words(language),
        )


@lru_cache(maxsize=2)
def load_phrases(language: str) -> Phrases:
    return Phrases.load(language)


def number_words(language: str) -> dict[int, str]:
    """0 … 999 as words ("forty two"), from the language's number words."""
    res = language_resources(language)
    units: dict[int, str] = {}
    for word, value in res.units.items():
        if word not in res.weak_units:
            units.setdefault(value, word)
    tens: dict[int, str] = {}
    for word, value in res.tens.items():
        tens.setdefault(value, word)
    if not units or not tens or not res.hundred:
        return {}
    hundred = sorted(res.hundred)[0]
    words = dict(units)
    for value in range(20, 100):
        words[value] = " ".join(w for w in (tens[value - value % 10], units.get(value % 10)) if w)
        if value % 10 == 0:
            words[value] = tens[value]
    for value in range(100, 1000):
        rest = f" {words[value % 100]}" if value % 100 else ""
        words[value] = f"{units[value // 100]} {hundred}{rest}"
    return words


@lru_cache(maxsize=1)
def _profile() -> DeviceProfile:
    return load_profiles()[PROFILE]


def rules_cascade(home: Home) -> Cascade:
    """The cascade with the rules tier only, as a node with this home would build it."""
    context = NluContext(home, LANGUAGE, NODE_ID, _profile())
    return build_cascade(context, ["rules"], RULES_CONFIDENCE)


def rules_label(cascade: Cascade, text: str) -> Label | None:
    """The rules tier's answer for `text`, or None when it understands nothing."""
    recognition = cascade.recognize(TextRequest.build(text, None, None, None, MAX_CHARS))
    intent = recognition.intent
    return Label(intent.name, intent.slot_values(), intent.slot_words()) if intent else None


@dataclass(frozen=True)
class Command:
    """A template sentence drawn for one home, with the rules tier's label for it."""

    sample: Sample
    label: Label

    @property
    def text(self) -> str:
        return self.sample.text

    def fills(self) -> list[str]:
        return [f.text for f in self.sample.filled]


class HomeRows:
    """The rows of one home: its template sentences labelled by its rules tier, and variants."""

    def __init__(self, seed: int, index: int, phrases: Phrases) -> None:
        self.index = index
        self.home = synthetic_home(seed, index, phrases.homes)
        self.phrases = phrases
        self.data = phrases.data
        self.rng = random.Random(f"rows/{seed}/{index}")
        self.cascade = rules_cascade(self.home)
        intents = load_language(LANGUAGE)
        names = TextSlotList(name="name", values=name_list_values(self.home))
        lists = {**home_slot_lists(self.home), "name": names}
        self.sampler = TemplateSampler(intents, lists, self.rng, wildcards=phrases.free_text)
        self.free_lists = wildcard_lists(intents)
        self.pool: dict[str, list[Sample]] = {}
        for sample in self.sampler.samples(1):
            self.pool.setdefault(sample.intent, []).append(sample)
        self.labels: dict[str, Label | None] = {}
        self.dropped: Counter[str] = Counter()
        """No-action candidates left out because the rules tier acted on them, by kind."""

    def rows(self, per_home: int) -> list[Example]:
        makers: dict[str, Callable[[], Example | None]] = {
            "template": self.template,
            "augmented": self.augmented,
            "multi": self.multi,
            "negation": self.negation,
            "statement": self.statement,
            "unknown": self.unknown,
            "chatter": lambda: self.said(self.phrases.chatter, "chatter"),
            "out_of_home": lambda: self.said(self.data["out_of_home"], "out_of_home"),
        }
        rows: list[Example] = []
        seen: set[str] = set()
        counts = kind_counts(self.data["mix"], per_home)
        # A kind that falls short (a home without fans says little about fans) is made up
        # with augmented rows.
        for kind, count in [*counts.items(), ("augmented", per_home)]:
            wanted = min(count, per_home - len(rows))
            for _ in range(4 * wanted + 4):
                if wanted == 0:
                    break
                row = makers[kind]()
                if row is not None and row.text not in seen:
                    seen.add(row.text)
                    rows.append(row)
                    wanted -= 1
        self.rng.shuffle(rows)
        return rows

    # ------------------------------------------------------------ commands

    def label(self, text: str) -> Label | None:
        if text not in self.labels:
            self.labels[text] = rules_label(self.cascade, text)
        return self.labels[text]

    def draw(self, intent: str) -> Sample:
        samples = self.pool[intent]
        if not samples:
            samples.extend(self.sampler.samples(1, {intent}))
        return samples.pop(self.rng.randrange(len(samples)))

    def command(
        self, fits: Callable[[Sample], bool] | None = None, exclude: frozenset[str] = frozenset()
    ) -> Command | None:
        """A template sentence the rules tier understands, intents drawn by their weights."""
        intents = [name for name in self.pool if name not in exclude]
        weights = [float(self.data["intent_weights"].get(name, 1.0)) for name in intents]
        for _ in range(12):
            sample = self.draw(self.rng.choices(intents, weights)[0])
            if fits is not None and not fits(sample):
                continue
            label = self.label(sample.text)
            if label is not None:
                return Command(sample, label)
        return None

    def example(self, text: str, commands: list[Command], kind: str) -> Example:
        labels = tuple(c.label for c in commands)
        return Example(text, labels, kind, self.index, tuple(c.text for c in commands))

    def is_question(self, intent: str) -> bool:
        return intent in self.data["questions"]

    def ends_in_free_text(self, command: Command) -> bool:
        """Whether the sentence ends with free text, which could swallow what follows it."""
        return self.free_text_at(command, _ENDS_WITH_MARK)

    def free_text_at(self, command: Command, where: re.Pattern[str]) -> bool:
        mark = where.search(command.sample.marked)
        filled = command.sample.filled
        return mark is not None and filled[int(mark.group(1))].list_name in self.free_lists

    def join_order(self, command: Command) -> int:
        """Free text at the start of a command goes first, at its end last: "check the oven
        in 5 minutes and lock the door" and "lock the door and broadcast dinner is ready"
        say where the free text stops; the other orders do not."""
        if self.ends_in_free_text(command):
            return 2
        return 0 if self.free_text_at(command, _STARTS_WITH_MARK) else 1

    # ------------------------------------------------------------ kinds that act

    def template(self) -> Example | None:
        command = self.command()
        return self.example(command.text, [command], "template") if command else None

    def augmented(self) -> Example | None:
        command = self.command()
        if command is None:
            return None
        for _ in range(4):
            question = self.is_question(command.label.intent)
            text = self.surface(self.vary(command), question)
            if text != command.text:
                return self.example(text, [command], "augmented")
        return None

    def multi(self) -> Example | None:
        settings = self.data["multi"]
        if self.rng.random() < settings["shared_verb"]:
            return self.shared_verb()
        count = 3 if self.rng.random() < settings["three"] else 2
        drawn = [self.command(exclude=frozenset(self.data["not_joined"])) for _ in range(count)]
        commands = [c for c in drawn if c is not None]
        commands.sort(key=self.join_order)
        orders = Counter(map(self.join_order, commands))
        if len(commands) < count or orders[0] > 1 or orders[2] > 1:
            return None
        parts = [
            self.vary(c, first=i == 0, last=i == count - 1) if self.rng.random() < 0.5 else c.text
            for i, c in enumerate(commands)
        ]
        text = parts[0]
        for i, part in enumerate(parts[1:], start=1):
            joiners = settings["last_joiners"] if count == 3 and i == 2 else settings["joiners"]
            joiner = ", " if count == 3 and i == 1 and self.rng.random() < 0.5 else None
            text += (joiner or self.rng.choice(joiners)) + part
        question = self.is_question(commands[-1].label.intent)
        return self.example(self.surface(text, question), commands, "multi")

    def shared_verb(self) -> Example | None:
        """ "turn off the A and the B": one verb, two things of the same domain."""
        first = self.command(fits=_ends_in_name)
        name = first.label.slots.get("name") if first else None
        entity = next((e for e in self.home.entities if e.name == name), None)
        if first is None or entity is None:
            return None
        others = self.spoken_names({entity.domain}, without=entity.name)
        if not others:
            return None
        other = self.rng.choice(others)
        second_text = fill_marks(first.sample.marked, [other])
        second = self.label(second_text)
        if second is None or second.intent != first.label.intent:
            return None
        before = first.sample.marked.split()[:-1]
        article = before[-1] if before and before[-1] in ("the", "my", "our") else ""
        if article and self.rng.random() < 0.7:
            other = f"{article} {other}"
        text = first.text + self.rng.choice(self.data["multi"]["shared_joiners"]) + other
        labels = (first.label, second)
        return Example(
            self.surface(text, False), labels, "multi", self.index, (first.text, second_text)
        )

    # ------------------------------------------------------------ variants

    def vary(self, command: Command, first: bool = True, last: bool = True) -> str:
        """A label-preserving variant: edits on the template's words, never on names or numbers
        (those are marks until the end), then number words."""
        rng, data, sample = self.rng, self.data, command.sample
        marked = sample.marked
        for pattern, replacements in self.phrases.rewrites.get(command.label.intent, []):
            if pattern.search(marked) and rng.random() < 0.5:
                marked = pattern.sub(rng.choice(replacements), marked, count=1)
        words = self.place_first(sample, marked).split()
        if len(words) > 1 and rng.random() < data["filler_rate"]:
            words.insert(rng.randrange(1, len(words)), rng.choice(data["fillers"]))
        marked = " ".join(words)
        question = self.is_question(command.label.intent)
        if first and not self.free_text_at(command, _STARTS_WITH_MARK) and rng.random() < 0.3:
            prefixes = data["question_prefixes"] if question else self.phrases.prefixes
            marked = f"{rng.choice(prefixes)} {marked}"
        starts_free = self.free_text_at(command, _STARTS_WITH_MARK)
        if first and not question and not starts_free and rng.random() < data["reason_rate"]:
            marked = f"{rng.choice(data['reasons'])}{rng.choice([',', '', '.'])} {marked}"
        if last and not self.ends_in_free_text(command) and rng.random() < 0.25:
            suffixes = data["question_suffixes"] if question else self.phrases.suffixes
            marked = f"{marked} {rng.choice(suffixes)}"
        for pattern, replacement, probability in self.phrases.slips:
            if rng.random() < probability:
                marked = pattern.sub(replacement, marked, count=1)
        return " ".join(fill_marks(marked, self.spoken_fills(command)).split())

    def place_first(self, sample: Sample, marked: str) -> str:
        """ "turn on the lights in the den" -> "in the den, turn on the lights"."""
        place = _PLACE_AT_END.match(marked)
        if not place or sample.filled[int(place.group(3))].list_name not in ("area", "floor"):
            return marked
        if self.rng.random() >= self.data["area_first"]:
            return marked
        return f"{place.group(2)}{self.rng.choice([',', ''])} {place.group(1)}"

    def spoken_fills(self, command: Command) -> list[str]:
        """The fills, numbers sometimes as words ("fifty percent", "twenty minutes")."""
        fills = command.fills()
        for i, text in enumerate(fills):
            spoken = self.phrases.numbers.get(int(text)) if text.isdigit() else None
            if spoken and self.rng.random() < self.data["number_words"]:
                fills[i] = spoken
        return fills

    def surface(self, text: str, question: bool) -> str:
        """How the text arrives: lower case from speech, capitals and a mark when typed."""
        rng, surface = self.rng, self.data["surface"]
        text = _NUMBER_WORD_UNIT.sub(r"\1 \2", text)
        if rng.random() < surface["lower"]:
            text = text.lower()
        if rng.random() < surface["no_apostrophes"]:
            text = text.replace("'", "")
        if rng.random() < surface["capitalise"]:
            text = text[:1].upper() + text[1:]
        if rng.random() < surface["end_mark"]:
            text += "?" if question else rng.choice([".", ".", "!"])
        return text

    # ------------------------------------------------------------ kinds that must not act

    def no_action(self, text: str, kind: str, sources: tuple[str, ...] = ()) -> Example | None:
        if self.label(text) is not None:
            self.dropped[kind] += 1
            return None
        return Example(text, (), kind, self.index, sources)

    def negation(self) -> Example | None:
        rng = self.rng
        if rng.random() < 0.35:
            return self.no_action(self.surface(self.target_negation(), False), "negation")
        command = self.command(fits=self.imperative)
        if command is None:
            return None
        said = self.vary(command, first=False) if rng.random() < 0.4 else command.text
        if not self.imperative_text(said):  # a rewrite may have moved the verb
            said = command.text
        text = rng.choice(self.data["negations"]).format(cmd=said)
        return self.no_action(self.surface(text, False), "negation", (command.text,))

    def imperative(self, sample: Sample) -> bool:
        return self.imperative_text(sample.text) and not self.is_question(sample.intent)

    def imperative_text(self, text: str) -> bool:
        return text.split(maxsplit=1)[0].casefold() in self.data["imperatives"]

    def target_negation(self) -> str:
        templates: dict[str, list[str]] = self.data["target_negations"]
        if self.rng.random() < 0.3:
            return _fill(self.rng.choice(templates["area"]), area=self.place_name("area"))
        name = self.rng.choice(self.spoken_names(set(self.data["statements"]["any_domains"])))
        return _fill(self.rng.choice(templates["name"]), name=name)

    def statement(self) -> Example | None:
        statements: dict[str, list[str]] = self.data["statements"]
        draw = self.rng.random()
        if draw < 0.3:
            text = _fill(self.rng.choice(statements["area"]), area=self.place_name("area"))
        elif draw < 0.38 and self.home.floors:
            text = _fill(self.rng.choice(statements["floor"]), floor=self.place_name("floor"))
        else:
            domains = set(statements["any_domains"])
            entity = self.rng.choice([e for e in self.home.entities if e.domain in domains])
            templates = [*statements["any"], *statements.get(entity.domain, [])]
            name = self.rng.choice([entity.name, *entity.aliases])
            text = _fill(self.rng.choice(templates), name=name)
        return self.no_action(self.surface(text, text.endswith("?")), "statement")

    def unknown(self) -> Example | None:
        """A command about a device, room or floor this home does not have."""
        command = self.command(fits=lambda s: any(f.list_name in _TARGETS for f in s.filled))
        if command is None:
            return None
        filled = command.sample.filled
        index = self.rng.choice([i for i, f in enumerate(filled) if f.list_name in _TARGETS])
        absent = self.absent(filled[index].list_name)
        if absent is None:
            return None
        fills = command.fills()
        fills[index] = absent
        text = fill_marks(command.sample.marked, fills)
        question = self.is_question(command.label.intent)
        return self.no_action(self.surface(text, question), "unknown", (command.text,))

    def absent(self, list_name: str) -> str | None:
        known = [(a.name, *a.aliases) for a in self.home.areas]
        known += [(f.name, *f.aliases) for f in self.home.floors]
        spoken = {n.casefold() for n in self.spoken_names(None)}
        spoken |= {n.casefold() for names in known for n in names}
        if list_name == "name":
            devices: list[str] = self.data["absent_devices"]
            pool = [d for d in devices if not any(d in s for s in spoken)]
        else:
            places = self.phrases.homes.rooms if list_name == "area" else self.phrases.homes.floors
            pool = [p.name for p in places if p.name.casefold() not in spoken]
        return self.rng.choice(pool) if pool else None

    def said(self, sentences: list[str], kind: str) -> Example | None:
        text = self.rng.choice(sentences)
        if self.rng.random() < 0.2:
            prefixes: list[str] = self.data["chatter_prefixes"]
            text = f"{self.rng.choice(prefixes)} {text}"
        return self.no_action(self.surface(text, False), kind)

    # ------------------------------------------------------------ the home's names

    def spoken_names(self, domains: set[str] | None, without: str = "") -> list[str]:
        """Every name and alias of the home's exposed entities of these domains (None: all)."""
        return [
            spoken
            for e in self.home.entities
            if e.is_exposed and (domains is None or e.domain in domains) and e.name != without
            for spoken in (e.name, *e.aliases)
        ]

    def place_name(self, kind: str) -> str:
        if kind == "area":
            area = self.rng.choice(self.home.areas)
            return self.rng.choice([area.name, *area.aliases])
        floor = self.rng.choice(self.home.floors)
        return self.rng.choice([floor.name, *floor.aliases])


_TARGETS = ("name", "area", "floor")
_THE_OWNER = re.compile(r"\bthe (?=\w+'s\b)", re.IGNORECASE)
_NUMBER_WORD_UNIT = re.compile(r"([a-z])[-]?(%|hours?\b|minutes?\b|seconds?\b)")


def _ends_in_name(sample: Sample) -> bool:
    return (
        len(sample.filled) == 1
        and sample.filled[0].list_name == "name"
        and bool(_ENDS_WITH_MARK.search(sample.marked))
    )


def _fill(template: str, **names: str) -> str:
    """A template of ours with a home's names: "the {name}" says "the Reading Lamp" but
    "Ada's Lamp"."""
    return _THE_OWNER.sub("", template.format(**names))


def kind_counts(mix: dict[str, float], total: int) -> dict[str, int]:
    """Rows of each kind out of `total`, in the shares of `mix` (largest remainders)."""
    exact = {kind: total * share / sum(mix.values()) for kind, share in mix.items()}
    counts = {kind: int(value) for kind, value in exact.items()}
    short = total - sum(counts.values())
    for kind in sorted(exact, key=lambda k: counts[k] - exact[k])[:short]:
        counts[kind] += 1
    return counts


# ---------------------------------------------------------------- streaming and the CLI


def home_rows(seed: int, index: int, per_home: int) -> tuple[list[Example], Counter[str]]:
    """The rows of home `index`, and how many no-action candidates the rules tier acted on."""
    rows = HomeRows(seed, index, load_phrases(LANGUAGE))
    return rows.rows(per_home), rows.dropped


def _home_job(job: tuple[int, int, int]) -> tuple[list[Example], Counter[str]]:
    return home_rows(*job)


def generate_homes(
    seed: int, homes: int, per_home: int, workers: int = 1
) -> Iterator[tuple[list[Example], Counter[str]]]:
    """Each home's rows in home order; homes are independent, so workers change nothing."""
    jobs = [(seed, index, per_home) for index in range(homes)]
    if workers <= 1 or homes <= 1:
        yield from map(_home_job, jobs)
        return
    with multiprocessing.Pool(workers) as pool:
        yield from pool.imap(_home_job, jobs)


def generate(seed: int, homes: int, per_home: int, workers: int = 1) -> Iterator[Example]:
    """The training rows of `homes` homes, `per_home` each, the same for the same seed."""
    for rows, _dropped in generate_homes(seed, homes, per_home, workers):
        yield from rows


@dataclass
class Summary:
    """What a run made: printed at the end, so a skewed mix shows before training."""

    rows: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    intents: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    label_names: set[str] = field(default_factory=set)

    def add(self, row: Example) -> None:
        self.rows += 1
        self.kinds[row.kind] += 1
        for label in row.intents:
            self.intents[label.intent] += 1
            if isinstance(label.slots.get("name"), str) and "Timer" not in label.intent:
                self.label_names.add(label.slots["name"])

    def report(self, homes: list[Home], seconds: float) -> str:
        multi = self.kinds["multi"]
        none = sum(n for k, n in self.kinds.items() if k in NO_ACTION)
        names = {e.name for home in homes for e in home.entities}
        lines = [
            f"{self.rows} rows from {len(homes)} homes in {seconds:.1f} s",
            f"multi-command rows: {multi / max(self.rows, 1):.1%}, "
            f"no-action rows: {none / max(self.rows, 1):.1%}",
            f"distinct entity names: {len(names)} in the homes, "
            f"{len(self.label_names)} in the labels",
            "by kind:",
            *(f"  {n:7d}  {k}" for k, n in self.kinds.most_common()),
            "by intent (each intent of a multi-command row counted):",
            *(f"  {n:7d}  {k}" for k, n in self.intents.most_common()),
        ]
        if self.dropped:
            acted = ", ".join(f"{k} {n}" for k, n in sorted(self.dropped.items()))
            lines.append(f"no-action candidates left out because the rules tier acted: {acted}")
        return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--homes", type=int, default=200, help="homes; home 0 is the demo home")
    parser.add_argument("--per-home", type=int, default=100, help="rows per home")
    parser.add_argument("--workers", type=int, default=min(4, multiprocessing.cpu_count()))
    parser.add_argument("--homes-out", type=Path, help="also write the homes here (JSON list)")
    args = parser.parse_args()
    started = time.perf_counter()
    summary = Summary()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as handle:
        made = generate_homes(args.seed, args.homes, args.per_home, args.workers)
        for done, (rows, dropped) in enumerate(made, start=1):
            for row in rows:
                handle.write(row.to_json() + "\n")
                summary.add(row)
            summary.dropped.update(dropped)
            if done % 10 == 0 or done == args.homes:
                elapsed = time.perf_counter() - started
                print(
                    f"home {done}/{args.homes}: {summary.rows} rows, {elapsed:.0f} s",
                    file=sys.stderr,
                )
    homes = synthetic_homes(args.seed, args.homes)
    if args.homes_out:
        dumped = [home.model_dump(mode="json", exclude_defaults=True) for home in homes]
        args.homes_out.write_text(json.dumps(dumped, ensure_ascii=False, indent=1) + "\n")
    print(f"-> {args.out}")
    print(summary.report(homes, time.perf_counter() - started))


if __name__ == "__main__":
    main()
