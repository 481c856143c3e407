"""Invented homes for the generator tier's training data: many names, so the model copies them.

A model trained on one home learns that home's names by heart. Trained on hundreds of
homes whose floors, areas and entities are drawn from word lists (section `homes` of
`generator_<language>.yaml`: "Reading Lamp", "Sunroom Sconce", "Ada's Desk Light"), it
has to read the name from the sentence instead. Every home is a plain
`edge_runtime.home.Home`, so the rules tier labels sentences about it exactly as it would
for a real home. Home 0 is the embedded demo home; home i > 0 depends only on (seed, i),
so a worker can build any one of them alone. This module only invents homes; it never
makes sentences.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from edge_runtime.home import Home, demo_home

HERE = Path(__file__).resolve().parent
WORDS_FILE = "generator_{language}.yaml"
_NOT_ID = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class Place:
    """A floor or room of the word list: its name and what else people call it."""

    name: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class DomainWords:
    """How entities of one domain are named and how many a home gets."""

    domain: str
    weight: float
    least: int
    most: int
    in_area: bool
    """Whether its entities stand in an area (scenes, lists and people do not)."""
    nouns: dict[str, str | None]
    """Noun -> the device class it implies (None: the domain has no classes)."""
    qualifiers: tuple[str, ...] = ()
    nicknames: tuple[str, ...] = ()
    standalone: frozenset[str] = frozenset()
    """Nouns that are a name alone ("Chandelier"); "Light" never is: it names a kind."""
    owned: bool = False
    """Names are often someone's ("Ada's Chores")."""
    people: bool = False
    """Names are the owners' own (the `person` domain)."""
    units: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, domain: str, data: dict[str, Any]) -> DomainWords:
        nouns: dict[str, str | None] = dict.fromkeys(data.get("nouns", ()))
        for device_class, class_nouns in (data.get("classes") or {}).items():
            nouns.update(dict.fromkeys(class_nouns, device_class))
        return cls(
            domain=domain,
            weight=float(data["weight"]),
            least=int(data.get("least", 0)),
            most=int(data["most"]),
            in_area=bool(data.get("area", True)),
            nouns=nouns,
            qualifiers=tuple(data.get("qualifiers", ())),
            nicknames=tuple(data.get("nicknames", ())),
            standalone=frozenset(data.get("standalone", ())),
            owned=bool(data.get("owned", False)),
            people=bool(data.get("people", False)),
            units=dict(data.get("units") or {}),
        )


@dataclass(frozen=True)
class HomeWords:
    """The `homes` section of the word list: sizes, shares and names."""

    floor_count: tuple[int, int]
    area_count: tuple[int, int]
    entity_count: tuple[int, int]
    context_area: float
    entity_alias: float
    area_alias: float
    duplicate_name: float
    floors: tuple[Place, ...]
    rooms: tuple[Place, ...]
    owners: tuple[str, ...]
    owner_rooms: tuple[str, ...]
    domains: tuple[DomainWords, ...]

    @classmethod
    def load(cls, language: str = "en") -> HomeWords:
        path = HERE / WORDS_FILE.format(language=language)
        return cls.from_dict(yaml.safe_load(path.read_text("utf-8"))["homes"])

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HomeWords:
        return cls(
            floor_count=_span(data["floor_count"]),
            area_count=_span(data["area_count"]),
            entity_count=_span(data["entity_count"]),
            context_area=float(data["context_area"]),
            entity_alias=float(data["entity_alias"]),
            area_alias=float(data["area_alias"]),
            duplicate_name=float(data["duplicate_name"]),
            floors=tuple(Place(names[0], tuple(names[1:])) for names in data["floors"]),
            rooms=tuple(Place(names[0], tuple(names[1:])) for names in data["rooms"]),
            owners=tuple(data["owners"]),
            owner_rooms=tuple(data["owner_rooms"]),
            domains=tuple(DomainWords.from_dict(d, v) for d, v in data["domains"].items()),
        )


def _span(text: str) -> tuple[int, int]:
    """ "4-10" -> (4, 10)."""
    low, high = str(text).split("-")
    return int(low), int(high)


def slug(name: str) -> str:
    """An id from a name: "Ada's Desk Light" -> "ada_s_desk_light"."""
    return _NOT_ID.sub("_", name.casefold()).strip("_") or "x"


class _HomeBuilder:
    """Draws one home; every spoken name (names and aliases) is unique but for entity names
    that HA allows twice in different areas ("Ceiling Light" in the kitchen and the den)."""

    def __init__(self, words: HomeWords, rng: random.Random) -> None:
        self.words = words
        self.rng = rng
        self.spoken: set[str] = set()
        self.floors: list[dict[str, Any]] = []
        self.areas: list[dict[str, Any]] = []
        self.entities: list[dict[str, Any]] = []
        self.name_areas: dict[tuple[str, str], set[str | None]] = {}
        """(domain, name) -> areas of the entities so named."""
        self.family = rng.sample(words.owners, rng.randint(2, 4))
        """The people of the home: their rooms, their things, their `person` entities."""

    def build(self) -> Home:
        self.add_floors()
        self.add_areas()
        self.add_entities()
        context = None
        if self.rng.random() < self.words.context_area:
            context = self.rng.choice(self.areas)["id"]
        data = {
            "language": "en",
            "floors": self.floors,
            "areas": self.areas,
            "entities": self.entities,
            "context_area": context,
        }
        return Home.model_validate(data)

    def claim(self, name: str) -> bool:
        if name.casefold() in self.spoken:
            return False
        self.spoken.add(name.casefold())
        return True

    def aliases(self, place: Place, share: float) -> list[str]:
        if self.rng.random() >= share:
            return []
        return [alias for alias in place.aliases if self.claim(alias)]

    def add_floors(self) -> None:
        count = self.rng.randint(*self.words.floor_count)
        for place in self.rng.sample(self.words.floors, len(self.words.floors)):
            if len(self.floors) < count and self.claim(place.name):
                floor: dict[str, Any] = {"id": slug(place.name), "name": place.name}
                floor["aliases"] = self.aliases(place, 0.7)
                self.floors.append(floor)

    def room(self) -> Place:
        if self.rng.random() < 0.12:
            owner = self.rng.choice(self.family)
            return Place(f"{owner}'s {self.rng.choice(self.words.owner_rooms)}")
        return self.rng.choice(self.words.rooms)

    def add_areas(self) -> None:
        count = self.rng.randint(*self.words.area_count)
        floor_ids = [f["id"] for f in self.floors]
        while len(self.areas) < count:
            place = self.room()
            if not self.claim(place.name):
                continue
            # The first areas fill every floor once; the others go anywhere.
            floor = floor_ids[len(self.areas)] if len(self.areas) < len(floor_ids) else None
            area: dict[str, Any] = {"id": slug(place.name), "name": place.name}
            area["floor"] = floor or self.rng.choice(floor_ids)
            area["aliases"] = self.aliases(place, self.words.area_alias)
            self.areas.append(area)

    def add_entities(self) -> None:
        count = self.rng.randint(*self.words.entity_count)
        made = {d.domain: 0 for d in self.words.domains}
        wanted = [d for d in self.words.domains for _ in range(d.least)]
        while len(self.entities) < count:
            open_domains = [d for d in self.words.domains if made[d.domain] < d.most]
            if wanted:
                domain = wanted.pop()
            else:
                weights = [d.weight for d in open_domains]
                domain = self.rng.choices(open_domains, weights)[0]
            if self.add_entity(domain):
                made[domain.domain] += 1

    def add_entity(self, words: DomainWords) -> bool:
        area = self.rng.choice(self.areas) if words.in_area else None
        for _ in range(20):
            noun, device_class = self.rng.choice(list(words.nouns.items()) or [("", None)])
            name = self.compose(words, noun, area["name"] if area else None)
            if self.take_name(words.domain, name, area["id"] if area else None):
                break
        else:
            return False
        entity: dict[str, Any] = {"id": self.entity_id(words.domain, name), "name": name}
        if area:
            entity["area"] = area["id"]
        if device_class:
            entity["attributes"] = {"device_class": device_class}
            if device_class in words.units:
                entity["attributes"]["unit_of_measurement"] = words.units[device_class]
        if not words.people and self.rng.random() < self.words.entity_alias:
            alias = self.compose(
                words, noun, self.rng.choice([area["name"], None]) if area else None
            )
            if alias != name and self.claim(alias):
                entity["aliases"] = [alias]
        self.entities.append(entity)
        return True

    def compose(self, words: DomainWords, noun: str, area: str | None) -> str:
        """A name the way people name things: qualifier, area or owner before a noun."""
        rng, draw = self.rng, self.rng.random()
        owner = f"{rng.choice(self.family)}'s"
        if words.people:
            return rng.choice(self.family)
        if words.nicknames and draw < 0.05:
            return rng.choice(words.nicknames)
        if noun in words.standalone and (draw < 0.35 or not words.qualifiers):
            return f"{owner} {noun}" if words.owned and draw < 0.4 else noun
        if area and draw < 0.45:
            return f"{area} {noun}"
        qualifier = rng.choice(words.qualifiers) if words.qualifiers else ""
        if not qualifier or {qualifier.casefold(), noun.casefold()} & {*noun.casefold().split()}:
            return f"{owner} {noun}"
        if draw < 0.9:
            return f"{qualifier} {noun}"
        return f"{owner} {qualifier} {noun}" if draw < 0.95 else f"{owner} {noun}"

    def take_name(self, domain: str, name: str, area: str | None) -> bool:
        key = (domain, name.casefold())
        if key in self.name_areas:
            areas = self.name_areas[key]
            if area is None or area in areas or self.rng.random() >= self.words.duplicate_name:
                return False
            areas.add(area)
            return True
        if not self.claim(name):
            return False
        self.name_areas[key] = {area}
        return True

    def entity_id(self, domain: str, name: str) -> str:
        base = f"{domain}.{slug(name)}"
        taken = {e["id"] for e in self.entities}
        entity_id, number = base, 2
        while entity_id in taken:
            entity_id, number = f"{base}_{number}", number + 1
        return entity_id


def synthetic_home(seed: int, index: int, words: HomeWords | None = None) -> Home:
    """Home `index` of the homes of `seed`: the demo home for 0, an invented one otherwise."""
    if index == 0:
        return demo_home()
    builder = _HomeBuilder(words or HomeWords.load(), random.Random(f"home/{seed}/{index}"))
    return builder.build()


def synthetic_homes(seed: int, count: int) -> list[Home]:
    """The first `count` homes of `seed` (what the `home` field of a training row indexes)."""
    words = HomeWords.load()
    return [synthetic_home(seed, index, words) for index in range(count)]
