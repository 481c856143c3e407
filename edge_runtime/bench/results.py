"""What a bench run produces: figures, notes, the machine, the software and the advice.

Every measurement module returns `Figure`s (one number each, with a stable `key`, which
`--compare` matches runs by) and `Note`s (why something was not measured, or what to know
about a figure). A `Report` holds one run and is the JSON form, field for field; the JSON
schema shipped beside this module (`schema.json`) is generated from these classes
(`json_schema`), and `read_report` validates a file against them before anything trusts it.
This module measures nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, TypeAdapter, ValidationError

from edge_runtime.yamlload import format_loc

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("schema.json")
Better = Literal["lower", "higher"]
Group = Literal["hardware", "encoder", "generator", "stt", "nlu", "mqtt"]
GROUPS: tuple[Group, ...] = ("hardware", "encoder", "generator", "stt", "nlu", "mqtt")
_STRICT = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class BenchFileError(Exception):
    """A file given to `--compare` is not a bench report this version can read."""


@dataclass(frozen=True)
class Figure:
    """One measured number."""

    __pydantic_config__ = _STRICT

    group: Group
    subject: str
    """What was measured: `edge-intent-minilm-int8 (CPU)`, `pocketsphinx`, `rules` ..."""
    metric: str
    """Stable metric id within the group: `p95_ms`, `tg32`, `rtf` ..."""
    label: str
    """Column header: `p95 ms`, `tg32 t/s` ..."""
    value: float | None
    """None when the measurement ran but produced nothing (never NaN: JSON has none)."""
    unit: str
    better: Better

    @property
    def key(self) -> str:
        """What `--compare` matches two runs by."""
        return f"{self.group}/{self.subject}/{self.metric}"


@dataclass(frozen=True)
class Note:
    """Why a subject was not measured (`skipped`), or a remark on its figures."""

    __pydantic_config__ = _STRICT

    group: Group
    subject: str
    text: str
    skipped: bool = False


Finding = Figure | Note
"""What a measurement step returns, in the order the table shows it."""


@dataclass(frozen=True)
class Machine:
    __pydantic_config__ = _STRICT

    arch: str
    cpu_model: str
    cores: int
    """Logical CPUs."""
    cpu_flags: list[str]
    """The flags that decide which int8 kernels run (NEON, dotprod, AVX2, AVX-512 VNNI ...)."""
    ram_total_mb: int
    ram_available_mb: int
    device_tree_model: str | None
    nv_tegra_release: bool
    gpus: list[str]
    """As `nvidia-smi` names them; empty where there is none (or no nvidia-smi)."""
    kernel: str


@dataclass(frozen=True)
class Software:
    __pydantic_config__ = _STRICT

    python: str
    edge_runtime: str
    onnxruntime: str
    providers: list[str]
    """`onnxruntime.get_available_providers()`."""
    numpy: str
    pocketsphinx: str | None
    vosk: str | None
    onnxruntime_genai: str | None
    espeak_ng: str | None


@dataclass(frozen=True)
class TierAdvice:
    """Whether this machine should host one tier (or the speech engine), and why."""

    __pydantic_config__ = _STRICT

    tier: str
    host: bool
    model: str | None
    provider: str | None
    reason: str
    measured: bool = True
    """False where nothing of the tier could be measured here (an engine or a tool missing):
    then no advice either way, only what to install to measure it."""


@dataclass(frozen=True)
class Recommendation:
    __pydantic_config__ = _STRICT

    profile: str
    profile_why: str
    ram_budget_mb: int
    ram_needed_mb: float | None
    """Resident memory of a node with the tiers advised (measured peaks), when known."""
    tiers: list[TierAdvice]
    summary: str


@dataclass(frozen=True)
class Report:
    """One bench run: the JSON file `--json` writes and `--compare` reads."""

    __pydantic_config__ = _STRICT

    schema_version: Literal[1]
    date: str
    """When the run ended, ISO 8601 with the UTC offset."""
    mode: Literal["quick", "default"]
    duration_s: float
    machine: Machine
    software: Software
    figures: list[Figure]
    notes: list[Note] = field(default_factory=list)
    recommendation: Recommendation | None = None


_ADAPTER: TypeAdapter[Report] = TypeAdapter(Report)


def json_schema() -> dict[str, Any]:
    """The JSON schema of `Report`; `schema.json` is this, written out."""
    schema = _ADAPTER.json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "edge-runtime bench report"
    return schema


def write_schema(path: Path = SCHEMA_PATH) -> Path:
    """Write `schema.json` again after a change to the classes here (a test insists on it)."""
    path.write_text(json.dumps(json_schema(), indent=2) + "\n", encoding="utf-8")
    return path


def report_json(report: Report) -> str:
    return json.dumps(_ADAPTER.dump_python(report, mode="json"), indent=2, ensure_ascii=False)


def read_report(path: Path) -> Report:
    """A report written by `--json`; BenchFileError saying what is wrong with anything else."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BenchFileError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BenchFileError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, dict) or "schema_version" not in data or "figures" not in data:
        raise BenchFileError(
            f"{path}: not an edge-runtime bench report (no schema_version and figures); "
            "write one with `edge-runtime bench --json FILE`"
        )
    if data["schema_version"] != SCHEMA_VERSION:
        raise BenchFileError(
            f"{path}: bench report schema version {data['schema_version']!r}; "
            f"this edge-runtime reads version {SCHEMA_VERSION}"
        )
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        problems = [f"{format_loc(e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()[:5]]
        raise BenchFileError(f"{path}: invalid bench report: " + "; ".join(problems)) from None
