"""The bench's output for people: one table per group, the recommendation, and the change
of every figure against an earlier run (`--compare`).

Tables are built from the flat figures alone (a row per subject, a column per metric), so
a report read back from JSON prints exactly as a fresh one. Only text is made here; the
CLI prints it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from edge_runtime.bench.results import GROUPS, Figure, Note, Recommendation, Report

TITLES = {
    "hardware": "Hardware",
    "encoder": "Encoder models (one sentence per call; throughput in batches)",
    "generator": "Generator models (llama-bench style: prompt and generation tokens/s)",
    "stt": "Speech to text (espeak-ng speech; RTF = decode time / audio time)",
    "nlu": "NLU end to end (text to intent, demo home)",
    "mqtt": "MQTT (publish to own subscription and back)",
}
LEGEND = (
    "peak MB: resident memory the model, engine or tier adds at its peak (load and use); "
    "for 'python + libraries' the process before any tier."
)
FIRST_COLUMNS = ("load_s", "peak_mb")
"""Load time and memory lead every table they are in; the group's own figures follow."""
SAME_PCT = 5.0
"""Changes smaller than this are within the noise of a run on a busy machine."""


def show(value: float | None) -> str:
    """Three significant figures or so, never scientific; a dash for nothing."""
    if value is None or math.isnan(value):
        return "-"
    size = abs(value)
    digits = 0 if size >= 100 else 1 if size >= 10 else 2 if size >= 1 else 3
    return f"{value:.{digits}f}"


def header_lines(report: Report) -> list[str]:
    m, s = report.machine, report.software
    gpus = "; ".join(m.gpus) or "none found"
    return [
        f"edge-runtime bench {s.edge_runtime}, {report.mode} mode, {report.date}, "
        f"{report.duration_s:.0f} s",
        f"machine: {m.cpu_model} ({m.arch}), {m.cores} cores, RAM {m.ram_total_mb} MB "
        f"({m.ram_available_mb} MB free), {m.device_tree_model or 'no device-tree model'}",
        f"int8 CPU features: {' '.join(m.cpu_flags) or 'none of note'}; GPUs: {gpus}",
        f"software: python {s.python}, onnxruntime {s.onnxruntime} "
        f"[{', '.join(p.removesuffix('ExecutionProvider') for p in s.providers)}], "
        f"numpy {s.numpy}, pocketsphinx {s.pocketsphinx or '-'}, vosk {s.vosk or '-'}, "
        f"onnxruntime-genai {s.onnxruntime_genai or '-'}, espeak-ng {s.espeak_ng or '-'}",
    ]


def table_lines(figures: Sequence[Figure], notes: Sequence[Note]) -> list[str]:
    lines: list[str] = []
    for group in GROUPS:
        mine = [f for f in figures if f.group == group]
        remarks = [n for n in notes if n.group == group]
        if mine or remarks:
            lines += ["", *_group_table(group, mine, remarks)]
    return [*lines, "", LEGEND]


def _group_table(group: str, figures: list[Figure], notes: list[Note]) -> list[str]:
    subjects = list(dict.fromkeys([*(f.subject for f in figures), *(n.subject for n in notes)]))
    columns = sorted(
        dict.fromkeys((f.metric, f.label) for f in figures),
        key=lambda column: FIRST_COLUMNS.index(column[0]) if column[0] in FIRST_COLUMNS else 9,
    )
    values = {(f.subject, f.metric): f.value for f in figures}
    width = max([len(s) for s in subjects] + [len(TITLES[group]) - 30, 12]) + 2
    cells = [max(len(label), 7) + 2 for _, label in columns]
    title = TITLES[group]
    head = "".join(f"{label:>{w}}" for (_, label), w in zip(columns, cells, strict=True))
    lines = [f"{title}", f"{'':<{width}}{head}"] if columns else [title]
    for subject in subjects:
        skipped = next((n for n in notes if n.subject == subject and n.skipped), None)
        if skipped is not None and not any(f.subject == subject for f in figures):
            lines.append(f"{subject:<{width}}{skipped.text}")
            continue
        row = "".join(
            f"{show(values.get((subject, metric))):>{w}}"
            for (metric, _), w in zip(columns, cells, strict=True)
        )
        lines.append(f"{subject:<{width}}{row}")
    lines += [f"  {n.subject}: {n.text}" for n in notes if not n.skipped]
    return lines


def recommendation_lines(advice: Recommendation) -> list[str]:
    lines = [
        "",
        f"Recommendation: profile {advice.profile} ({advice.profile_why}); "
        f"RAM budget {advice.ram_budget_mb} MB",
    ]
    for tier in advice.tiers:
        what = " on ".join(x for x in (tier.model, tier.provider) if x)
        lines.append(
            f"  {tier.tier:<10} {'host' if tier.host else 'peer' if tier.measured else '?':<5} "
            + (f"{what}: " if what else "")
            + tier.reason
        )
    return [*lines, advice.summary]


def report_lines(report: Report) -> list[str]:
    lines = header_lines(report) + table_lines(report.figures, report.notes)
    if report.recommendation is not None:
        lines += recommendation_lines(report.recommendation)
    return lines


def compare_lines(old: Report, new: Report, old_name: str, new_name: str = "this run") -> list[str]:
    """Every figure both runs have, old against new, with the change and its direction."""
    before = {f.key: f for f in old.figures}
    matched = [
        (before[f.key], f)
        for f in new.figures
        if f.key in before and not (f.value is None and before[f.key].value is None)
    ]
    lines = [
        "",
        f"Change against {old_name} ({old.mode} mode, {old.date}, {old.machine.cpu_model}):",
        f"{'figure':<58}{'old':>10}{'new':>10}{'change':>10}",
    ]
    for was, now in matched:
        name = f"{now.group} {now.subject} {now.label}"
        change, verdict = _change(was, now)
        lines.append(f"{name:<58}{show(was.value):>10}{show(now.value):>10}{change:>10}  {verdict}")
    both = before.keys() & {f.key for f in new.figures}
    gone, added = len(before) - len(both), len(new.figures) - len(both)
    if gone or added:
        lines.append(f"  {gone} figures only in {old_name}, {added} only in {new_name}")
    if not matched:
        lines.append("  no figure in common (different models, providers or engines)")
    return lines


def _change(was: Figure, now: Figure) -> tuple[str, str]:
    if was.value is None or now.value is None or was.value == 0:
        return "-", ""
    pct = (now.value - was.value) / abs(was.value) * 100
    if abs(pct) < SAME_PCT:
        return f"{pct:+.1f} %", "same"
    improved = (pct < 0) == (now.better == "lower")
    return f"{pct:+.1f} %", "better" if improved else "worse"
