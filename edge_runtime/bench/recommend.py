"""From the figures to advice: which device profile fits, and which tiers (with which model
and provider) this machine can host within the profile's RAM budget and the latency
targets, and why.

Tiers are placed in the cascade's order, cheapest first (rules, speech, encoder,
generator), each only when its figures meet the target and its measured peak memory still
fits what the budget has left after the base process and the tiers before it. A tier not
hosted is served by a peer (the network routes it). This module measures nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from edge_runtime.bench.nlu import BASE
from edge_runtime.bench.results import Figure, Note, Recommendation, TierAdvice
from edge_runtime.profiles import DeviceProfile, Selection


@dataclass(frozen=True)
class Targets:
    """What "can host" means; the encoder and generator figures are the issue's."""

    rules_p95_ms: float = 50.0
    encoder_p95_ms: float = 50.0
    generator_tokens_per_s: float = 5.0
    stt_rtf: float = 0.5
    """Half of real time: the engine keeps up with a speaker with room for the NLU."""


@dataclass(frozen=True)
class Candidate:
    """One way to serve a tier: a measured model (or engine) on one provider."""

    model: str | None
    provider: str | None
    meets: bool
    figure: str
    """The deciding figure against its target, in words."""
    memory_mb: float | None


class Figures:
    """Measured values by group, subject and metric."""

    def __init__(self, figures: Sequence[Figure], notes: Sequence[Note]) -> None:
        self.values: dict[tuple[str, str, str], float | None] = {
            (f.group, f.subject, f.metric): f.value for f in figures
        }
        self.subjects: list[tuple[str, str]] = list(
            dict.fromkeys((f.group, f.subject) for f in figures)
        )
        self.notes = notes

    def get(self, group: str, subject: str, metric: str) -> float | None:
        return self.values.get((group, subject, metric))

    def rows(self, group: str, prefix: str = "") -> list[str]:
        return [s for g, s in self.subjects if g == group and s.startswith(prefix)]

    def why_not(self, group: str, prefix: str = "") -> str:
        found = [n.text for n in self.notes if n.group == group and n.subject.startswith(prefix)]
        return found[0] if found else "not measured"


def recommend(
    figures: Sequence[Figure],
    notes: Sequence[Note],
    selection: Selection,
    ram_total_mb: int,
    targets: Targets = Targets(),
) -> Recommendation:
    profile = selection.profile
    measured = Figures(figures, notes)
    budget = min(profile.ram_budget_mb, ram_total_mb) if ram_total_mb else profile.ram_budget_mb
    base = measured.get("nlu", BASE, "peak_mb")
    used = base or 0.0
    advice = []
    for tier, candidates in (
        ("rules", _rules(measured, targets)),
        ("stt", _stt(measured, profile, targets)),
        ("encoder", _encoder(measured, profile, targets)),
        ("generator", _generator(measured, profile, targets)),
    ):
        chosen, reason = _place(candidates, used, budget, measured, tier)
        if chosen is not None:
            used += chosen.memory_mb or 0.0
        advice.append(_advice(tier, chosen, reason, candidates, profile))
    return Recommendation(
        profile=profile.id,
        profile_why=selection.why,
        ram_budget_mb=budget,
        ram_needed_mb=used if base is not None else None,
        tiers=advice,
        summary=_summary(profile, advice, used, budget),
    )


def _rules(measured: Figures, targets: Targets) -> list[Candidate]:
    p95 = measured.get("nlu", "rules", "p95_ms")
    if p95 is None:
        return []
    meets = p95 < targets.rules_p95_ms
    text = f"end to end p95 {p95:.1f} ms (target < {targets.rules_p95_ms:.0f} ms)"
    return [Candidate(None, None, meets, text, measured.get("nlu", "rules", "peak_mb"))]


def _stt(measured: Figures, profile: DeviceProfile, targets: Targets) -> list[Candidate]:
    found = []
    for subject in measured.rows("stt", profile.stt.engine):
        rtf = measured.get("stt", subject, "rtf")
        if rtf is not None:
            text = f"real-time factor {rtf:.3f} (target < {targets.stt_rtf})"
            memory = measured.get("stt", subject, "peak_mb")
            found.append(Candidate(subject, None, rtf < targets.stt_rtf, text, memory))
    return found


def _split(subject: str) -> tuple[str, str]:
    """`model (CUDA)` -> (`model`, `CUDA`)."""
    model, _, provider = subject.rpartition(" (")
    return model, provider.rstrip(")")


def _encoder(measured: Figures, profile: DeviceProfile, targets: Targets) -> list[Candidate]:
    wanted = profile.tiers.encoder.model
    tier_mb = measured.get("nlu", "encoder", "peak_mb")
    found = []
    for subject in measured.rows("encoder", wanted or ""):
        p95 = measured.get("encoder", subject, "p95_ms")
        if p95 is None:
            continue
        model, provider = _split(subject)
        text = f"model p95 {p95:.1f} ms (target < {targets.encoder_p95_ms:.0f} ms)"
        memory = tier_mb if tier_mb is not None else measured.get("encoder", subject, "peak_mb")
        found.append(Candidate(model, provider, p95 < targets.encoder_p95_ms, text, memory))
    return sorted(found, key=lambda c: not c.meets)


def _generator(measured: Figures, profile: DeviceProfile, targets: Targets) -> list[Candidate]:
    wanted = profile.tiers.generator.model
    rows = measured.rows("generator")
    preferred = [s for s in rows if wanted and s.startswith(wanted)] or rows
    found = []
    for subject in preferred:
        tg = next(
            (
                v
                for (g, s, m), v in measured.values.items()
                if g == "generator" and s == subject and m.startswith("tg") and v is not None
            ),
            None,
        )
        if tg is None:
            continue
        model, provider = _split(subject)
        target = targets.generator_tokens_per_s
        text = f"decode {tg:.1f} tokens/s (target >= {target:.0f})"
        memory = measured.get("generator", subject, "peak_mb")
        found.append(Candidate(model, provider, tg >= target, text, memory))
    return sorted(found, key=lambda c: not c.meets)


def _place(
    candidates: list[Candidate], used: float, budget: int, measured: Figures, tier: str
) -> tuple[Candidate | None, str]:
    """The first candidate that meets its target and fits the budget left, and why."""
    if not candidates:
        group = {"rules": "nlu", "stt": "stt"}.get(tier, tier)
        return None, measured.why_not(group, "rules" if tier == "rules" else "")
    for candidate in candidates:
        if not candidate.meets:
            continue
        need = candidate.memory_mb or 0.0
        if used + need > budget:
            return None, (
                f"{candidate.figure}, but it needs {need:.0f} MB and {budget - used:.0f} MB "
                f"of the {budget} MB budget are left"
            )
        return candidate, f"{candidate.figure}, {need:.0f} MB"
    return None, f"too slow here: {candidates[0].figure}"


def _advice(
    tier: str,
    chosen: Candidate | None,
    reason: str,
    candidates: list[Candidate],
    profile: DeviceProfile,
) -> TierAdvice:
    shown = chosen or (candidates[0] if candidates else None)
    if tier in ("rules", "encoder", "generator"):
        enabled = getattr(profile.tiers, tier).enabled
        if enabled != (chosen is not None):
            reason += f" (profile {profile.id} has it {'on' if enabled else 'off'})"
    return TierAdvice(
        tier=tier,
        host=chosen is not None,
        model=shown.model if shown else None,
        provider=shown.provider if shown else None,
        reason=reason,
        measured=bool(candidates),
    )


def _summary(profile: DeviceProfile, advice: list[TierAdvice], used: float, budget: int) -> str:
    hosted = [a.tier for a in advice if a.host]
    elsewhere = [a.tier for a in advice if not a.host and a.measured]
    unknown = [a.tier for a in advice if not a.measured]
    text = f"Profile {profile.id}: host {', '.join(hosted) or 'nothing'}"
    if elsewhere:
        text += f"; leave {', '.join(elsewhere)} to a peer"
    if unknown:
        text += f"; {', '.join(unknown)} not measured here"
    return text + f" (about {used:.0f} of {budget} MB)."
