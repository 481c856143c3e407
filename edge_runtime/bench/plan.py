"""What every measurement step gets: the settings of the mode, the machine, the profile.

`--quick` and the default mode differ only in how often things are repeated (and whether
the slow-loading Vosk model is measured); the sizes measured (prompt lengths, batch sizes,
sentences) are the same, so the figures of a quick run compare with a default one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge_runtime.bench.child import ChildFailed, Job, Unavailable, run_child
from edge_runtime.bench.results import Finding, Group, Machine, Note
from edge_runtime.config import NodeConfig
from edge_runtime.profiles import DeviceProfile


@dataclass(frozen=True)
class Settings:
    quick: bool
    bandwidth_repeats: int
    encoder_calls: int
    """Timed batch-1 calls per model and provider (after a warm-up)."""
    encoder_batches: int
    """Timed batches of `BATCH` sentences, for the throughput."""
    generator_repeats: int
    """Prefill and decode runs per generator model and provider (the mean is reported)."""
    stt_utterances: int
    vosk: bool
    """Measure the Vosk engine (its model takes seconds to load)."""
    nlu_rounds: int
    """Times every NLU command is recognized per tier."""
    mqtt_pings: int
    mqtt_connect_s: float
    child_timeout_s: float

    @property
    def mode(self) -> str:
        return "quick" if self.quick else "default"


QUICK = Settings(
    quick=True,
    bandwidth_repeats=3,
    encoder_calls=30,
    encoder_batches=3,
    generator_repeats=1,
    stt_utterances=2,
    vosk=False,
    nlu_rounds=2,
    mqtt_pings=10,
    mqtt_connect_s=1.5,
    child_timeout_s=180,
)
DEFAULT = Settings(
    quick=False,
    bandwidth_repeats=8,
    encoder_calls=1000,
    encoder_batches=50,
    generator_repeats=3,
    stt_utterances=8,
    vosk=True,
    nlu_rounds=25,
    mqtt_pings=100,
    mqtt_connect_s=3.0,
    child_timeout_s=600,
)
COMMANDS = (
    "turn on the kitchen lights",
    "set the bedside lamp to 30 percent",
    "kill the garage light",
    "open the garage door",
    "what is the temperature outside",
    "lock the front door",
    "put milk on the shopping list",
    "turn off the ceiling fan in the bedroom",
)
"""What every step says or types: commands for the embedded demo home, plain and paraphrased."""
BATCH = 8
PROMPT_TOKENS = 64
GENERATED_TOKENS = 32


@dataclass(frozen=True)
class Context:
    settings: Settings
    machine: Machine
    profile: DeviceProfile
    """The profile that matches this machine (or the one asked for): threads, providers."""
    config: NodeConfig
    cache_dir: Path
    workdir: Path
    """A temporary folder for generated speech."""


@dataclass(frozen=True)
class Step:
    """One line of progress: what is measured, and the call that measures it."""

    label: str
    group: Group
    run: Callable[[], list[Finding]]


def skipped(label: str, group: Group, subject: str, why: str) -> Step:
    """A step that only says why `subject` is not measured."""
    return Step(label, group, lambda: [Note(group, subject, why, skipped=True)])


def in_child(
    label: str,
    group: Group,
    subject: str,
    module: str,
    timeout_s: float,
    job: Job | Callable[[], Job],
    findings: Callable[[Job], list[Finding]],
) -> Step:
    """A step measured by `python -m module` (`child`); its failure is the subject's note.

    A callable `job` is made when the step runs, so it may prepare files first (or raise
    Unavailable, saying why not).
    """

    def run() -> list[Finding]:
        try:
            result = run_child(module, job() if callable(job) else job, timeout_s)
        except (ChildFailed, Unavailable) as exc:
            return [Note(group, subject, f"not measured: {exc}", skipped=True)]
        return findings(result)

    return Step(label, group, run)
