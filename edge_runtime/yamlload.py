"""Load YAML into pydantic models with errors that name the file, line and field.

Every configuration file of edge-runtime (node config, home, device profile,
model catalog) comes in through `load_model`. A person who mistypes a key in
`home.yaml` gets `home.yaml:14: entities[2].nmae: unknown field`, not a
pydantic traceback. This module never interprets what the files mean.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

ModelT = TypeVar("ModelT", bound=BaseModel)
Loc = Sequence[int | str]


class StrictModel(BaseModel):
    """Base of every file-backed model: unknown fields are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ConfigError(Exception):
    """A configuration file is unreadable or invalid; the message names file, line and field."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = problems
        super().__init__("\n".join(problems))


def format_loc(loc: Loc) -> str:
    """Render a pydantic location as `entities[2].name`."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def _child(node: yaml.Node, key: int | str) -> tuple[yaml.Node | None, yaml.Node | None]:
    """The (key node, value node) of `key` inside a mapping or sequence node."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if str(key_node.value) == str(key):
                return key_node, value_node
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
        return None, node.value[key]
    return None, None


def line_of(root: yaml.Node | None, loc: Loc) -> int | None:
    """1-based line of the deepest node along `loc`; a missing key points at its parent."""
    if root is None:
        return None
    node: yaml.Node = root
    line = node.start_mark.line + 1
    for part in loc:
        key_node, value_node = _child(node, part)
        if value_node is None:
            return line
        # An unknown key is best shown at the key itself, not its (possibly long) value.
        line = (key_node or value_node).start_mark.line + 1
        node = value_node
    return line


def problem_at(path: Path | str, root: yaml.Node | None, loc: Loc, message: str) -> str:
    """One `file:line: field: message` line."""
    line = line_of(root, loc)
    where = f"{path}:{line}" if line else str(path)
    return f"{where}: {format_loc(loc)}: {message}"


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "missing":
        return "required field is missing"
    message = str(error["msg"]).removeprefix("Value error, ")
    # YAML has lists, not tuples; our frozen models store lists as tuples.
    return message.replace("valid tuple", "list").replace("a valid list", "a list")


def _split_union_tags(data: Any, loc: Loc) -> tuple[Loc, Loc]:
    """Split a pydantic location into the path in the data and trailing union-member tags.

    For a field typed `str | int | dict`, pydantic reports one error per member with
    the member's name appended to the location (`state.str`, `state.int` …).
    Those tags are not fields; whatever cannot be walked in the data is a tag.
    """
    node = data
    for index, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, dict):
            return loc[: index + 1], loc[index + 1 :]  # a missing or unknown key
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            return loc[:index], loc[index:]
    return loc, ()


def _problems(path: Path | str, data: Any, root: yaml.Node | None, errors: Any) -> list[str]:
    """One line per field; the members of a union collapse into one "expected" line."""
    merged: dict[tuple[int | str, ...], list[str]] = {}
    messages: dict[tuple[int | str, ...], str] = {}
    for error in errors:
        field, tags = _split_union_tags(data, error["loc"])
        key = tuple(field)
        if tags:
            merged.setdefault(key, []).append(str(tags[0]))
        else:
            messages.setdefault(key, _message(error))
    for key, tags in merged.items():
        if key not in messages:
            kinds = ", ".join(dict.fromkeys(t.split("[")[0] for t in tags))
            messages[key] = f"invalid value: expected one of {kinds}"
    return [problem_at(path, root, key, message) for key, message in messages.items()]


def parse_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    """Read a YAML file; return (data, node tree) or raise ConfigError naming the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, [f"{path}: file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, [f"{path}: cannot read: {exc}"]) from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(path, [_yaml_problem(path, exc)]) from None
    duplicates = list(_duplicate_keys(root))
    if duplicates:
        raise ConfigError(
            path, [f"{path}:{line}: {key}: duplicate key" for key, line in duplicates]
        )
    return data, root


def _yaml_problem(path: Path, exc: yaml.YAMLError) -> str:
    """The parser's problem, and where the construct it was reading began (an open quote …)."""
    mark = getattr(exc, "problem_mark", None)
    where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
    problem = getattr(exc, "problem", None) or str(exc)
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and context_mark is not None:
        problem += f" ({context} that starts on line {context_mark.line + 1})"
    return f"{where}: invalid YAML: {problem}"


def _duplicate_keys(node: yaml.Node | None) -> Iterator[tuple[str, int]]:
    """Keys given twice in one mapping: YAML would silently keep the last."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                yield key, key_node.start_mark.line + 1
            seen.add(key)
            yield from _duplicate_keys(value_node)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _duplicate_keys(item)


def validate(path: Path | str, data: Any, root: yaml.Node | None, model: type[ModelT]) -> ModelT:
    """Validate parsed data; raise ConfigError with one line per problem."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(path, [f"{path}:1: (top level): expected a mapping of fields"])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(path, _problems(path, data, root, exc.errors())) from None


def load_model(path: Path, model: type[ModelT]) -> ModelT:
    """Load and validate one YAML file as `model`."""
    data, root = parse_yaml(path)
    return validate(path, data, root, model)
