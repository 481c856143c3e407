"""`load_home`: a home in Home Assistant's fixture layout, and errors naming file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_runtime.home import Home, demo_home, load_home
from edge_runtime.yamlload import ConfigError

HA_FIXTURES = Path(__file__).parents[2] / "shared/eval/ha-intents-en/_fixtures.yaml"

VALID_HOME = """\
language: en
context_area: den
floors:
  - id: ground
    name: Ground Floor
    aliases: [downstairs]
  - {id: loft_floor, name: Loft}
areas:
  - id: den
    name: Den
    floor: ground
    aliases: [snug, tv room]
  - id: pantry
    name: Pantry
    floor: ground
  - id: attic
    name: Attic Room
    floor: loft_floor
  - id: porch
    name: Porch
entities:
  - id: light.den_uplighter
    name: Uplighter
    area: den
    state: "on"
    aliases: [tall lamp]
  - id: cover.attic_skylight
    name: Skylight
    area: attic
    state: {in: open, out: "open"}
    attributes:
      device_class: window
      current_position: 40
  - id: sensor.pantry_humidity
    name: Pantry Humidity
    area: pantry
    state: 61
    attributes: {unit_of_measurement: "%", device_class: humidity}
  - id: lock.porch_gate
    name: Porch Gate
    area: porch
    domain: lock
    state: locked
    is_exposed: false
  - id: todo.chores
    name: Chores
timers:
  - name: bread
    area: den
    start_minutes: 45
    total_seconds_left: 600
    rounded_minutes_left: 10
  - is_active: false
    start_hours: 1
media:
  - title: A Night at the Opera
  - title: Planet Earth
"""


def write(tmp_path: Path, text: str, name: str = "home.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    """The lines of the ConfigError that loading `path` raises."""
    with pytest.raises(ConfigError) as caught:
        load_home(path)
    assert caught.value.path == str(path)
    assert str(caught.value) == "\n".join(caught.value.problems)
    return caught.value.problems


# --- a valid home --------------------------------------------------------------------------


def test_valid_home_loads_floors_areas_and_entities_in_file_order(tmp_path: Path) -> None:
    home = load_home(write(tmp_path, VALID_HOME))

    assert home.language == "en"
    assert [f.id for f in home.floors] == ["ground", "loft_floor"]
    assert home.floors[0].aliases == ("downstairs",)
    assert home.floors[1].aliases == ()
    assert [a.id for a in home.areas] == ["den", "pantry", "attic", "porch"]
    assert home.areas[0].aliases == ("snug", "tv room")
    assert home.areas[3].floor is None
    assert [e.id for e in home.entities] == [
        "light.den_uplighter",
        "cover.attic_skylight",
        "sensor.pantry_humidity",
        "lock.porch_gate",
        "todo.chores",
    ]
    assert home.area_by_id["attic"].floor == "loft_floor"
    assert home.floor_by_id["loft_floor"].name == "Loft"


def test_entity_domain_is_derived_from_the_id_prefix(tmp_path: Path) -> None:
    home = load_home(write(tmp_path, VALID_HOME))

    assert [e.domain for e in home.entities] == ["light", "cover", "sensor", "lock", "todo"]
    assert home.domains == {"light", "cover", "sensor", "lock", "todo"}


def test_entity_keeps_state_attributes_aliases_and_exposure(tmp_path: Path) -> None:
    uplighter, skylight, humidity, gate, chores = load_home(write(tmp_path, VALID_HOME)).entities

    assert uplighter.state == "on"
    assert uplighter.aliases == ("tall lamp",)
    assert uplighter.is_exposed is True
    assert uplighter.attributes == {}
    assert skylight.state == {"in": "open", "out": "open"}
    assert skylight.attributes == {"device_class": "window", "current_position": 40}
    assert humidity.state == 61
    assert humidity.attributes == {"unit_of_measurement": "%", "device_class": "humidity"}
    assert gate.is_exposed is False
    assert chores.area is None
    assert chores.state is None


def test_spoken_and_raw_state_pair_is_kept_as_a_mapping(tmp_path: Path) -> None:
    text = """\
entities:
  - id: binary_sensor.back_window
    name: Back Window
    state: {in: open, out: "on"}
"""
    (window,) = load_home(write(tmp_path, text)).entities

    assert window.state == {"in": "open", "out": "on"}


def test_timers_and_media_are_loaded_with_defaults_for_missing_fields(tmp_path: Path) -> None:
    home = load_home(write(tmp_path, VALID_HOME))

    bread, unnamed = home.timers
    assert (bread.name, bread.area, bread.is_active) == ("bread", "den", True)
    assert (bread.start_minutes, bread.total_seconds_left, bread.rounded_minutes_left) == (
        45,
        600,
        10,
    )
    assert bread.start_hours == 0
    assert (unnamed.name, unnamed.is_active, unnamed.start_hours) == (None, False, 1)
    assert [m.title for m in home.media] == ["A Night at the Opera", "Planet Earth"]


def test_context_area_given_by_id_resolves_to_the_area_name(tmp_path: Path) -> None:
    home = load_home(write(tmp_path, VALID_HOME))

    assert home.context_area == "den"
    assert home.context_area_name == "Den"


def test_context_area_given_by_name_resolves_case_insensitively(tmp_path: Path) -> None:
    text = VALID_HOME.replace("context_area: den", "context_area: attic room")

    home = load_home(write(tmp_path, text))

    assert home.context_area == "attic room"
    assert home.context_area_name == "Attic Room"


def test_home_without_context_area_has_no_context_area_name(tmp_path: Path) -> None:
    text = VALID_HOME.replace("context_area: den\n", "")

    home = load_home(write(tmp_path, text))

    assert home.context_area is None
    assert home.context_area_name is None


def test_empty_home_file_loads_as_an_empty_home(tmp_path: Path) -> None:
    home = load_home(write(tmp_path, "# nothing here yet\n"))

    assert home == Home()
    assert home.entities == ()


def test_find_area_matches_id_first_then_name_ignoring_case(tmp_path: Path) -> None:
    home = load_home(write(tmp_path, VALID_HOME))

    assert home.find_area("pantry") == home.area_by_id["pantry"]
    assert home.find_area("PANTRY") == home.area_by_id["pantry"]
    assert home.find_area("Attic Room") == home.area_by_id["attic"]
    assert home.find_area("snug") is None  # aliases are for speech, not for references


def test_home_assistant_example_fixture_loads_without_error() -> None:
    if not HA_FIXTURES.is_file():
        pytest.skip(f"{HA_FIXTURES} is not present in this checkout")

    home = load_home(HA_FIXTURES)

    assert home.floors
    assert home.areas
    assert home.entities
    assert all(e.id.split(".", 1)[0] == e.domain for e in home.entities)
    assert all(a.floor is None or a.floor in home.floor_by_id for a in home.areas)


def test_embedded_demo_home_passes_the_same_checks_as_a_home_file(tmp_path: Path) -> None:
    demo = demo_home()
    path = write(tmp_path, demo.model_dump_json())  # JSON is YAML

    assert load_home(path) == demo
    assert demo.context_area_name == "Living Room"


# --- errors: file, line and field ------------------------------------------------------------


def test_unknown_field_in_home_names_file_line_and_field(tmp_path: Path) -> None:
    text = """\
areas:
  - id: den
    name: Den
entities:
  - id: light.a
    name: Lamp A
    colour: red
"""
    path = write(tmp_path, text)

    assert problems_of(path) == [f"{path}:7: entities[0].colour: unknown field"]


def test_misspelt_field_reports_the_missing_field_and_the_unknown_one(tmp_path: Path) -> None:
    text = """\
areas:
  - id: den
    name: Den
entities:
  - id: light.a
    name: Lamp A
  - id: light.b
    nmae: Lamp B
    area: den
"""
    path = write(tmp_path, text)

    assert problems_of(path) == [
        f"{path}:7: entities[1].name: required field is missing",
        f"{path}:8: entities[1].nmae: unknown field",
    ]


def test_missing_required_field_points_at_the_item_that_lacks_it(tmp_path: Path) -> None:
    text = """\
floors:
  - id: ground
    name: Ground
areas:
  - name: Den
    floor: ground
"""
    path = write(tmp_path, text)

    assert problems_of(path) == [f"{path}:5: areas[0].id: required field is missing"]


def test_wrong_type_names_the_field_and_the_expected_type(tmp_path: Path) -> None:
    text = """\
entities:
  - id: light.a
    name: Lamp A
    is_exposed: sometimes
"""
    path = write(tmp_path, text)

    assert problems_of(path) == [
        f"{path}:4: entities[0].is_exposed: "
        "Input should be a valid boolean, unable to interpret input"
    ]


def test_list_field_given_a_mapping_names_the_field(tmp_path: Path) -> None:
    text = """\
language: en
areas: {id: den, name: Den}
"""
    path = write(tmp_path, text)

    assert problems_of(path) == [f"{path}:2: areas: Input should be a list"]


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    text = """\
areas:
  - id: den
    name: [Den]
timers:
  - start_minutes: ten
"""
    path = write(tmp_path, text)

    assert problems_of(path) == [
        f"{path}:3: areas[0].name: Input should be a valid string",
        f"{path}:5: timers[0].start_minutes: "
        "Input should be a valid integer, unable to parse string as an integer",
    ]


def test_invalid_yaml_names_the_line_of_the_problem(tmp_path: Path) -> None:
    text = """\
areas:
  - id: den
     name: Den
"""
    path = write(tmp_path, text)

    assert problems_of(path) == [f"{path}:3: invalid YAML: mapping values are not allowed here"]


def test_tab_indentation_is_invalid_yaml_on_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "language: en\nareas:\n\t- id: den\n")

    assert problems_of(path) == [
        f"{path}:3: invalid YAML: found character '\\t' that cannot start any token"
    ]


def test_area_on_an_unknown_floor_is_reported_at_its_floor_field(tmp_path: Path) -> None:
    text = """\
floors:
  - {id: ground, name: Ground}
areas:
  - id: den
    name: Den
    floor: ground
  - id: attic
    name: Attic
    floor: roof
"""
    path = write(tmp_path, text)

    assert problems_of(path) == [f"{path}:9: areas[1].floor: no floor with id 'roof'"]


def test_entity_in_an_unknown_area_is_reported_at_its_area_field(tmp_path: Path) -> None:
    text = """\
areas:
  - {id: den, name: Den}
entities:
  - id: light.a
    name: Lamp A
    area: den
  - id: light.b
    name: Lamp B
    area: cellar
"""
    path = write(tmp_path, text)

    assert problems_of(path) == [f"{path}:9: entities[1].area: no area with id 'cellar'"]


def test_entity_area_must_be_an_area_id_not_its_name(tmp_path: Path) -> None:
    text = """\
areas:
  - {id: den, name: Den}
entities:
  - {id: light.a, name: Lamp A, area: Den}
"""
    path = write(tmp_path, text)

    assert problems_of(path) == [
        f"{path}:4: entities[0].area: no area with id 'Den' "
        "(entities refer to areas by id: did you mean 'den'?)"
    ]


def test_duplicate_area_id_is_reported_at_the_second_occurrence(tmp_path: Path) -> None:
    text = """\
areas:
  - id: den
    name: Den
  - id: den
    name: Snug
"""
    path = write(tmp_path, text)

    assert problems_of(path) == [f"{path}:4: areas[1].id: duplicate id 'den'"]


def test_duplicate_entity_and_floor_ids_are_each_reported(tmp_path: Path) -> None:
    text = """\
floors:
  - {id: ground, name: Ground}
  - {id: ground, name: Also Ground}
entities:
  - {id: light.a, name: Lamp A}
  - {id: switch.b, name: Plug B}
  - {id: light.a, name: Lamp C}
"""
    path = write(tmp_path, text)

    assert problems_of(path) == [
        f"{path}:3: floors[1].id: duplicate id 'ground'",
        f"{path}:7: entities[2].id: duplicate id 'light.a'",
    ]


def test_context_area_naming_no_area_is_reported_at_its_line(tmp_path: Path) -> None:
    text = """\
language: en
context_area: conservatory
areas:
  - {id: den, name: Den}
"""
    path = write(tmp_path, text)

    assert problems_of(path) == [f"{path}:2: context_area: no area with id or name 'conservatory'"]


def test_entity_domain_that_differs_from_its_id_prefix_is_rejected(tmp_path: Path) -> None:
    text = """\
entities:
  - id: light.porch
    name: Porch Light
    domain: switch
"""
    path = write(tmp_path, text)

    assert problems_of(path) == [
        f"{path}:4: entities[0].domain: 'switch' differs from the id's domain 'light'"
    ]


def test_entity_domain_equal_to_its_id_prefix_is_accepted(tmp_path: Path) -> None:
    text = """\
entities:
  - {id: light.porch, name: Porch Light, domain: light}
"""
    (porch,) = load_home(write(tmp_path, text)).entities

    assert porch.domain == "light"


def test_missing_home_file_is_reported_as_not_found(tmp_path: Path) -> None:
    path = tmp_path / "no-such-home.yaml"

    assert problems_of(path) == [f"{path}: file not found"]


def test_top_level_list_is_rejected_as_not_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "- id: den\n  name: Den\n")

    assert problems_of(path) == [f"{path}:1: (top level): expected a mapping of fields"]


def test_top_level_scalar_is_rejected_as_not_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "just some words\n")

    assert problems_of(path) == [f"{path}:1: (top level): expected a mapping of fields"]


def test_unquoted_on_and_off_states_stay_the_words_home_assistant_uses(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "entities:\n  - {id: light.a, name: A, state: on}\n"
        "  - {id: binary_sensor.b, name: B, state: {in: off, out: on}}\n",
    )

    home = load_home(path)

    assert home.entities[0].state == "on"
    assert home.entities[1].state == {"in": "off", "out": "on"}


def test_a_key_given_twice_is_reported_at_its_second_line(tmp_path: Path) -> None:
    path = write(tmp_path, "entities:\n  - id: light.a\n    name: A\n    name: B\n")

    assert problems_of(path) == [f"{path}:4: name: duplicate key"]


def test_an_entity_id_without_a_domain_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "entities:\n  - {id: lamp, name: Lamp}\n")

    assert problems_of(path) == [
        f"{path}:2: entities[0].id: 'lamp' is not an entity id like 'light.kitchen'"
    ]


def test_a_state_of_the_wrong_kind_gives_one_line_not_one_per_union_member(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "entities:\n  - {id: light.a, name: A, state: [1, 2]}\n")

    assert problems_of(path) == [
        f"{path}:2: entities[0].state: invalid value: expected one of str, int, float, dict"
    ]


def test_invalid_yaml_says_where_the_unclosed_construct_began(tmp_path: Path) -> None:
    path = write(tmp_path, 'areas:\n  - {id: a, name: "Den}\n')

    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:3: invalid YAML: ")
    assert "that starts on line 2" in problem
