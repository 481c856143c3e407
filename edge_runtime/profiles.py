"""Device profiles: what a class of machine can host, and how to recognise one.

A profile (YAML in `device_profiles/`) gives detection rules, a RAM budget,
thread counts, onnxruntime execution providers in order of preference, the
model that serves each NLU tier and the speech engine. `detect` reads the
machine (`/proc/device-tree/model`, `/etc/nv_tegra_release`, CPU architecture
and flags, RAM) and explains its choice, so `edge-runtime profiles` can say
*why* this box is a "raspberry-pi-5". Nothing here loads a model.
"""

from __future__ import annotations

import platform
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import Field

from edge_runtime.yamlload import ConfigError, StrictModel, parse_yaml, problem_at, validate


class DetectRules(StrictModel):
    """All given rules must hold for a profile to match; more rules = more specific."""

    device_tree_model: tuple[str, ...] = ()
    """Substrings of `/proc/device-tree/model`; one of them must occur."""
    nv_tegra_release: bool | None = None
    """True: `/etc/nv_tegra_release` must exist (NVIDIA Jetson / JetPack)."""
    arch: tuple[str, ...] = ()
    """`platform.machine()` values, e.g. `aarch64`, `x86_64`."""
    cpu_flags: tuple[str, ...] = ()
    """CPU flags (from /proc/cpuinfo `flags`/`Features`) that must all be present."""
    min_ram_mb: int | None = None
    max_ram_mb: int | None = None


class Threads(StrictModel):
    intra_op: int = Field(2, ge=1)
    inter_op: int = Field(1, ge=1)


class TierModel(StrictModel):
    enabled: bool = True
    model: str | None = None
    """Catalog id of the model that serves the tier; rules need none."""


class Tiers(StrictModel):
    rules: TierModel = TierModel()
    encoder: TierModel = TierModel(enabled=False)
    generator: TierModel = TierModel(enabled=False)

    def enabled(self) -> list[str]:
        return [name for name in ("rules", "encoder", "generator") if getattr(self, name).enabled]


class SttConfig(StrictModel):
    engine: str = "pocketsphinx"
    model: str | None = None


class DeviceProfile(StrictModel):
    id: str
    name: str
    description: str = ""
    detect: DetectRules
    ram_budget_mb: int = Field(ge=64)
    """What edge-runtime may use in all; also the service's MemoryMax."""
    threads: Threads = Threads()
    execution_providers: tuple[str, ...] = ("CPUExecutionProvider",)
    graph_optimization: Literal["disable", "basic", "extended", "all"] = "all"
    memory_arena: bool = True
    tiers: Tiers = Tiers()
    stt: SttConfig = SttConfig()


@dataclass(frozen=True)
class MachineFacts:
    """What `detect` looks at, read once from the running machine (or a test root)."""

    arch: str
    device_tree_model: str | None
    nv_tegra_release: bool
    cpu_model: str
    cpu_flags: frozenset[str]
    ram_mb: int
    cores: int

    @classmethod
    def probe(cls, root: Path = Path("/")) -> MachineFacts:
        cpuinfo = _read(root / "proc/cpuinfo") or ""
        meminfo = _read(root / "proc/meminfo") or ""
        model = _read(root / "proc/device-tree/model")
        ram = re.search(r"^MemTotal:\s+(\d+)\s+kB", meminfo, re.M)
        return cls(
            arch=platform.machine(),
            device_tree_model=model.rstrip("\x00\n") if model else None,
            nv_tegra_release=(root / "etc/nv_tegra_release").exists(),
            cpu_model=_cpu_model(cpuinfo),
            cpu_flags=_cpu_flags(cpuinfo),
            ram_mb=int(ram.group(1)) // 1024 if ram else 0,
            cores=len(re.findall(r"^processor\s*:", cpuinfo, re.M)) or 1,
        )


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _cpu_model(cpuinfo: str) -> str:
    for key in ("model name", "Model", "Hardware", "CPU part"):
        found = re.search(rf"^{key}\s*:\s*(.+)$", cpuinfo, re.M)
        if found:
            return found.group(1).strip()
    return platform.processor() or "unknown"


def _cpu_flags(cpuinfo: str) -> frozenset[str]:
    found = re.search(r"^(?:flags|Features)\s*:\s*(.+)$", cpuinfo, re.M)
    return frozenset(found.group(1).split()) if found else frozenset()


@dataclass(frozen=True)
class Match:
    """How well one profile fits the machine, with a sentence per rule."""

    profile: DeviceProfile
    matches: bool
    score: int
    reasons: list[str] = field(default_factory=list)


def evaluate(profile: DeviceProfile, facts: MachineFacts) -> Match:
    """Check every detection rule of `profile`; each checked rule adds a reason."""
    rules = profile.detect
    checks: list[tuple[bool, str]] = []
    if rules.device_tree_model:
        model = facts.device_tree_model or ""
        hit = any(s in model for s in rules.device_tree_model)
        checks.append((hit, f"device-tree model {model or '(none)'!r}"))
    if rules.nv_tegra_release is not None:
        hit = facts.nv_tegra_release == rules.nv_tegra_release
        checks.append(
            (hit, f"/etc/nv_tegra_release {'present' if facts.nv_tegra_release else 'absent'}")
        )
    if rules.arch:
        checks.append((facts.arch in rules.arch, f"architecture {facts.arch}"))
    for flag in rules.cpu_flags:
        checks.append((flag in facts.cpu_flags, f"CPU flag {flag}"))
    if rules.min_ram_mb is not None:
        checks.append(
            (facts.ram_mb >= rules.min_ram_mb, f"RAM {facts.ram_mb} MB >= {rules.min_ram_mb}")
        )
    if rules.max_ram_mb is not None:
        checks.append(
            (facts.ram_mb <= rules.max_ram_mb, f"RAM {facts.ram_mb} MB <= {rules.max_ram_mb}")
        )
    reasons = [("ok: " if hit else "no: ") + text for hit, text in checks]
    matches = bool(checks) and all(hit for hit, _ in checks)
    return Match(profile, matches, sum(hit for hit, _ in checks), reasons)


def profiles_dir() -> Path:
    """Shipped profiles: inside the installed package, or the repository's folder."""
    shipped = Path(str(resources.files("edge_runtime"))) / "_shipped" / "device_profiles"
    if shipped.is_dir():
        return shipped
    return Path(__file__).resolve().parent.parent / "device_profiles"


def load_profiles(directory: Path | None = None) -> dict[str, DeviceProfile]:
    directory = directory or profiles_dir()
    profiles: dict[str, DeviceProfile] = {}
    for path in sorted(directory.glob("*.yaml")):
        data, root = parse_yaml(path)
        profile = validate(path, data, root, DeviceProfile)
        if profile.id != path.stem:
            message = f"{profile.id!r} must equal the file name {path.stem!r}"
            raise ConfigError(path, [problem_at(path, root, ("id",), message)])
        profiles[profile.id] = profile
    if not profiles:
        raise ConfigError(directory, [f"{directory}: no device profiles (*.yaml) found"])
    return profiles


@dataclass(frozen=True)
class Selection:
    profile: DeviceProfile
    why: str
    matches: list[Match]


def select_profile(
    profiles: dict[str, DeviceProfile], facts: MachineFacts, override: str | None = None
) -> Selection:
    """The profile to use: the override, else the most specific match, else the closest one."""
    matches = sorted(
        (evaluate(p, facts) for p in profiles.values()),
        key=lambda m: (m.matches, m.score),
        reverse=True,
    )
    if override and override != "auto":
        if override not in profiles:
            known = ", ".join(sorted(profiles))
            raise ConfigError(
                "--profile", [f"unknown device profile {override!r} (known: {known})"]
            )
        return Selection(profiles[override], "chosen with --profile / config", matches)
    best = matches[0]
    if best.matches:
        return Selection(best.profile, "; ".join(r[4:] for r in best.reasons), matches)
    fallback = _most_modest(profiles.values(), facts)
    return Selection(
        fallback,
        f"no profile matches this machine; using the most modest one for its architecture "
        f"({fallback.ram_budget_mb} MB, {', '.join(fallback.execution_providers)})",
        matches,
    )


def _most_modest(profiles: Iterable[DeviceProfile], facts: MachineFacts) -> DeviceProfile:
    """For an unknown machine: the smallest RAM budget, same architecture first, CPU only first."""

    def modesty(profile: DeviceProfile) -> tuple[bool, bool, int]:
        same_arch = not profile.detect.arch or facts.arch in profile.detect.arch
        cpu_only = profile.execution_providers == ("CPUExecutionProvider",)
        return (not same_arch, not cpu_only, profile.ram_budget_mb)

    return min(profiles, key=modesty)
