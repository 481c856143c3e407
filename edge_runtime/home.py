"""The home: floors, areas and entities, in the layout of Home Assistant's intent test fixtures.

The file format is the one of `tests/<lang>/_fixtures.yaml` in OHF-Voice/intents,
so a home exported from (or written like) Home Assistant loads unchanged. Two
additions: an entity may say its `domain` (otherwise it is the part of the id
before the dot) and the file may name `context_area`, the area the node stands
in, which fills the area of a command that names none (as HA does for a
satellite). This module only describes the home; it never matches text.
"""

from __future__ import annotations

import re
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, field_validator, model_validator

from edge_runtime.yamlload import ConfigError, Loc, StrictModel, parse_yaml, problem_at, validate

_ENTITY_ID = re.compile(r"^[a-z0-9_]+\..+$")


class Floor(StrictModel):
    id: str
    """Stable id that areas refer to."""
    name: str
    """What people call the floor ("Ground Floor")."""
    aliases: tuple[str, ...] = ()
    """Other names people use for it."""


class Area(StrictModel):
    id: str
    name: str
    floor: str | None = None
    """Id of the floor the area is on."""
    aliases: tuple[str, ...] = ()


class Entity(StrictModel):
    id: str
    """Home Assistant entity id, `<domain>.<object id>`."""
    name: str
    area: str | None = None
    """Id of the area the entity is in."""
    domain: str = ""
    """HA domain (`light`, `cover` …); defaults to the part of `id` before the dot."""
    state: str | int | float | dict[str, Any] | None = None
    """Current state; HA's fixtures give either the state or `{in: spoken, out: raw}`."""
    attributes: dict[str, Any] = Field(default_factory=dict)
    """HA attributes such as `device_class` or `unit_of_measurement`."""
    is_exposed: bool = True
    """Unexposed entities are never targeted by voice, as in HA."""
    aliases: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _domain_from_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("domain") and isinstance(data.get("id"), str):
            data = {**data, "domain": data["id"].split(".", 1)[0]}
        return data

    @field_validator("id")
    @classmethod
    def _id_has_a_domain(cls, value: str) -> str:
        if not _ENTITY_ID.match(value):
            raise ValueError(f"{value!r} is not an entity id like 'light.kitchen'")
        return value

    @field_validator("state", mode="before")
    @classmethod
    def _yaml_booleans_are_on_off(cls, value: Any) -> Any:
        """YAML reads an unquoted `on`/`off` as a boolean; HA states are the words."""
        return _on_off(value)


def _on_off(value: Any) -> Any:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, dict):
        return {key: _on_off(item) for key, item in value.items()}
    return value


class Timer(StrictModel):
    """A running timer, as HA's fixtures describe them (used for timer questions)."""

    name: str | None = None
    area: str | None = None
    is_active: bool = True
    start_hours: int = 0
    start_minutes: int = 0
    start_seconds: int = 0
    total_seconds_left: int = 0
    rounded_hours_left: int = 0
    rounded_minutes_left: int = 0
    rounded_seconds_left: int = 0


class MediaItem(StrictModel):
    title: str


class Home(StrictModel):
    language: str | None = None
    """Language of the names; the node's language wins when both are set."""
    floors: tuple[Floor, ...] = ()
    areas: tuple[Area, ...] = ()
    entities: tuple[Entity, ...] = ()
    timers: tuple[Timer, ...] = ()
    media: tuple[MediaItem, ...] = ()
    context_area: str | None = None
    """Id or name of the area this node stands in."""

    @cached_property
    def area_by_id(self) -> dict[str, Area]:
        return {area.id: area for area in self.areas}

    @cached_property
    def floor_by_id(self) -> dict[str, Floor]:
        return {floor.id: floor for floor in self.floors}

    def find_area(self, id_or_name: str) -> Area | None:
        """Area by id, else by name (case-insensitive)."""
        if id_or_name in self.area_by_id:
            return self.area_by_id[id_or_name]
        wanted = id_or_name.casefold()
        return next((a for a in self.areas if a.name.casefold() == wanted), None)

    @property
    def context_area_name(self) -> str | None:
        """The name of the node's own area, the form HA puts into the intent context."""
        area = self.find_area(self.context_area) if self.context_area else None
        return area.name if area else None

    @property
    def domains(self) -> set[str]:
        return {entity.domain for entity in self.entities}

    @cached_property
    def zone_names(self) -> frozenset[str]:
        """Where a person can be, case-folded: HA's "home" and "away", every zone entity,
        and every state a person has (a zone's name, or `not_home`, which is "away")."""
        names = {"home", "away"}
        for entity in self.entities:
            if entity.domain == "zone":
                names.update(n.casefold() for n in (entity.name, *entity.aliases))
            elif entity.domain == "person" and isinstance(entity.state, str):
                names.add(entity.state.casefold().replace("_", " "))
        return frozenset(names)


def _reference_problems(home: Home) -> list[tuple[Loc, str]]:
    """Dangling or duplicate ids: what pydantic cannot see field by field."""
    problems: list[tuple[Loc, str]] = []
    ids = {
        "floors": [f.id for f in home.floors],
        "areas": [a.id for a in home.areas],
        "entities": [e.id for e in home.entities],
    }
    for kind, kind_ids in ids.items():
        seen: set[str] = set()
        for index, item_id in enumerate(kind_ids):
            if item_id in seen:
                problems.append(((kind, index, "id"), f"duplicate id {item_id!r}"))
            seen.add(item_id)
    for index, area in enumerate(home.areas):
        if area.floor is not None and area.floor not in home.floor_by_id:
            problems.append((("areas", index, "floor"), f"no floor with id {area.floor!r}"))
    for index, entity in enumerate(home.entities):
        if entity.area is not None and entity.area not in home.area_by_id:
            problems.append((("entities", index, "area"), _no_area(home, entity.area)))
        id_domain = entity.id.split(".", 1)[0]
        if id_domain != entity.domain:
            message = f"{entity.domain!r} differs from the id's domain {id_domain!r}"
            problems.append((("entities", index, "domain"), message))
    if home.context_area is not None and home.find_area(home.context_area) is None:
        problems.append((("context_area",), f"no area with id or name {home.context_area!r}"))
    return problems


def _no_area(home: Home, reference: str) -> str:
    """Name the dangling id, and point at the id when the file used the area's name."""
    message = f"no area with id {reference!r}"
    by_name = home.find_area(reference)
    if by_name is not None:
        message += f" (entities refer to areas by id: did you mean {by_name.id!r}?)"
    return message


def load_home(path: Path) -> Home:
    """Load and check a home file; raise ConfigError naming file, line and field."""
    data, root = parse_yaml(path)
    home = validate(path, data, root, Home)
    problems = _reference_problems(home)
    if problems:
        raise ConfigError(path, [problem_at(path, root, loc, msg) for loc, msg in problems])
    return home


def demo_home() -> Home:
    """The home embedded in the package, used when the config names none."""
    text = resources.files("edge_runtime.data").joinpath("home.yaml").read_text("utf-8")
    return Home.model_validate(yaml.safe_load(text))


DEMO_HOME_NAME = "embedded demo home"
