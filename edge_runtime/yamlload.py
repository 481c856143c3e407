"""Load YAML into pydantic models with errors that name the file, line and field.

Every configuration file of edge-runtime (node config, home, device profile,
model catalog) comes in through `load_model`. A person who mistypes a key in
`home.yaml` gets `home.yaml:14: entities[2].nmae: unknown field`, not a
pydantic traceback. This module never interprets what the files mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

ModelT = TypeVar("ModelT", bound=BaseModel)
Loc = Sequence[int | str]


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
    return str(error["msg"])


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
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(path, [f"{where}: invalid YAML: {problem}"]) from None
    return data, root


def validate(path: Path | str, data: Any, root: yaml.Node | None, model: type[ModelT]) -> ModelT:
    """Validate parsed data; raise ConfigError with one line per problem."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(path, [f"{path}:1: (top level): expected a mapping of fields"])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [problem_at(path, root, e["loc"], _message(e)) for e in exc.errors()]
        raise ConfigError(path, problems) from None


def load_model(path: Path, model: type[ModelT]) -> ModelT:
    """Load and validate one YAML file as `model`."""
    data, root = parse_yaml(path)
    return validate(path, data, root, model)
