"""The NLU cascade against hassil alone: accuracy, wrong answers, latency and memory, in one run.

What is measured
----------------
Systems, all built in this process the way `edge-runtime nlu` builds them
(`build_cascade` with the x86-64 device profile):

* **hassil alone**: the rules tier only (Home Assistant's matcher and templates).
* **cascade int8**: rules, then the encoder tier with the shipped int8 model.
* **cascade fp32** (`--fp32-models DIR`): the same, with an fp32 export of the
  same model under the same catalog id, to see what quantization costs.

Data sets:

* **HA test files**: every slot-combination test of Home Assistant's English
  intents, each file with its own home, built and scored exactly as
  `nlu_accuracy.py` does (`--skip-ha` leaves them out).
* **paraphrases** and **rejections** (`benchmarks/data/`): our own rewrites of
  plain commands, and sentences that must not act, against the home of
  `_fixtures.yaml` with the node standing in the Living Room.
* **held-out** (`benchmarks/data/paraphrases-heldout.yaml`): 90 more rewrites,
  written apart from the dev set and the training data and never used to tune
  anything, to show how far the dev-set figure generalises.

Per system and data set: intent accuracy, full match (intent and exactly the
expected slots; numbers compare numerically, text case-insensitively), wrong
answers (something recognized, but not what was meant, which is worse than
"not understood"; on the rejections any action is wrong) and latency p50/p95
per sentence. Then the encoder tier alone (`EncoderTier.recognize` timed on
the paraphrases after a warm-up), the resident memory of a node with both tiers
loaded, and the targets of the issue with pass/fail.

The files under /work/shared/eval are EVALUATION ONLY: this script reads them
to measure and never derives templates, lists or training data from them.

    .venv/bin/python benchmarks/nlu.py [--json FILE] [--skip-ha] [--fp32-models DIR]
                                       [--threshold T]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nlu_accuracy as na
import yaml
from common import fmt, free_port

from edge_runtime.bench.stats import proc_memory
from edge_runtime.cache import default_cache_dir
from edge_runtime.config import LimitsConfig, NluConfig
from edge_runtime.home import Home, load_home
from edge_runtime.inference.catalog import ModelIntegrityError, load_catalog
from edge_runtime.messages import TextRequest
from edge_runtime.nlu.base import NluContext, NluError
from edge_runtime.nlu.cascade import Cascade, build_cascade
from edge_runtime.nlu.encoder import EncoderTier
from edge_runtime.profiles import DeviceProfile, load_profiles

BENCHMARKS = Path(__file__).resolve().parent
PARAPHRASES = BENCHMARKS / "data" / "paraphrases.yaml"
HELD_OUT = BENCHMARKS / "data" / "paraphrases-heldout.yaml"
REJECTIONS = BENCHMARKS / "data" / "rejections.yaml"
FIXTURES = "_fixtures.yaml"
DEV_HOME = "dev-home.yaml"
DEV_CONTEXT_AREA = "living_room_id"
PROFILE = "x86-64"
NODE_ID = "nlu-benchmark"
MAX_CHARS = LimitsConfig().max_text_chars
HA, PARA, REJ = "HA test files", "paraphrases", "rejections"
HELD = "held-out"
"""Paraphrases written apart from the dev set and never used to tune anything: how far the
dev-set figure generalises."""
HASSIL_ALONE, CASCADE, CASCADE_FP32 = "hassil alone", "cascade int8", "cascade fp32"
WARM_UP = ("could you please warm up", "switch the thing on", "what time is it in the attic")
"""Said once to every freshly built cascade or tier, never scored (see `warm_up`)."""
DAEMON_WAIT_S = 60.0
SETTLE_S = 2.0

# Targets of the issue.
PARAPHRASE_FULL_MIN = 85.0
PARAPHRASE_WRONG_MAX = 3.0
ENCODER_P95_MAX_MS = 15.0
QUANTIZATION_MAX_POINTS = 1.0
RSS_MAX_MB = 300.0

# --------------------------------------------------------------------------- systems


@dataclass(frozen=True)
class System:
    """One way of understanding: which tiers, and where the encoder's model comes from."""

    name: str
    tiers: tuple[str, ...]
    models_dir: Path | None = None
    """A models dir for `$EDGE_RUNTIME_MODELS`; None keeps the shipped one."""


@functools.cache
def x86_profile() -> DeviceProfile:
    """One profile for every system, so only the tiers and the model differ between rows."""
    return load_profiles()[PROFILE]


def systems(fp32_models: Path | None) -> list[System]:
    """hassil alone, the cascade as the x86-64 profile enables it, and the fp32 variant."""
    cascade_tiers = tuple(x86_profile().tiers.enabled())
    found = [System(HASSIL_ALONE, ("rules",)), System(CASCADE, cascade_tiers)]
    if fp32_models is not None:
        found.append(System(CASCADE_FP32, cascade_tiers, fp32_models))
    return found


@contextlib.contextmanager
def models_env(directory: Path | None) -> Iterator[None]:
    """Point the catalog at `directory` while a tier loads; the encoder reads it only then."""
    if directory is None:
        yield
        return
    before = os.environ.get("EDGE_RUNTIME_MODELS")
    os.environ["EDGE_RUNTIME_MODELS"] = str(directory)
    try:
        yield
    finally:
        if before is None:
            del os.environ["EDGE_RUNTIME_MODELS"]
        else:
            os.environ["EDGE_RUNTIME_MODELS"] = before


def nlu_context(home: Home) -> NluContext:
    """What `edge-runtime nlu` passes to the tiers with no config file (default cache dir)."""
    return NluContext(home, na.LANGUAGE, NODE_ID, x86_profile())


def build(system: System, home: Home, threshold: float) -> Cascade:
    """A cascade for one home, loading the system's model."""
    with models_env(system.models_dir):
        return build_cascade(nlu_context(home), system.tiers, threshold)


def request(text: str) -> TextRequest:
    """The request the CLI builds from a line (stripped, length-checked)."""
    return TextRequest.build(text, None, None, None, MAX_CHARS)


def warm_up(recognize: Callable[[TextRequest], object]) -> float:
    """First calls pay onnxruntime's allocations; a daemon pays them once, not per sentence.

    Every HA file has its own home, so a cascade is built per file; without
    this its first sentence would carry a cost that a running node never has.
    Returns the first call's milliseconds, which are reported apart.
    """
    first, *rest = WARM_UP
    started = time.perf_counter()
    recognize(request(first))
    first_ms = (time.perf_counter() - started) * 1000
    for text in rest:
        recognize(request(text))
    return first_ms


def answer(cascade: Cascade, text: str) -> na.Answer:
    """What `edge-runtime nlu --jsonl` prints for the line, read back as nlu_accuracy reads it."""
    line = json.dumps(cascade.recognize(request(text)).to_jsonl(), ensure_ascii=False)
    return na.parse_jsonl_answer(line)


# --------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class Scored:
    """One sentence of any data set, scored; HA outcomes and ours share this shape."""

    where: str
    """HA file label, or the dev sentence's kind."""
    sentence: str
    intent: str | None
    """Expected intent; None: nothing may be done."""
    slots: dict[str, Any]
    answer: na.Answer
    intent_ok: bool
    full_ok: bool
    problem: str

    @property
    def wrong(self) -> bool:
        """Acted, but not as meant (any action on a rejection)."""
        return self.answer.intent is not None and not self.full_ok


def from_outcome(outcome: na.Outcome) -> Scored:
    """nlu_accuracy's scoring (context area and inferred domains included), in our shape."""
    return Scored(
        where=outcome.file.label,
        sentence=outcome.case.sentence,
        intent=outcome.file.intent,
        slots=dict(outcome.case.expected),
        answer=outcome.answer,
        intent_ok=outcome.intent_ok,
        full_ok=outcome.full_ok,
        problem=outcome.problem,
    )


@dataclass(frozen=True)
class DevCase:
    """One of our own sentences, with the answer it must get."""

    dataset: str
    text: str
    intent: str | None
    slots: dict[str, Any]
    kind: str


def load_dev_cases(path: Path, dataset: str) -> list[DevCase]:
    """Our sentences as written; `intent: null` means nothing may be done."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [
        DevCase(dataset, s["text"], s.get("intent"), dict(s.get("slots") or {}), s.get("kind", ""))
        for s in data["sentences"]
    ]


def score_dev(case: DevCase, got: na.Answer) -> Scored:
    """Same slot rules as the HA files (`na.slot_problem`), minus HA's harness specifics."""
    if got.intent != case.intent:
        problem = f"intent {got.intent}" if got.intent else "not understood"
        return Scored(case.kind, case.text, case.intent, case.slots, got, False, False, problem)
    problem = na.slot_problem(case.slots, got.slots) if case.intent else ""
    return Scored(case.kind, case.text, case.intent, case.slots, got, True, not problem, problem)


# --------------------------------------------------------------------------- runs


@dataclass(frozen=True)
class Run:
    """One system on one data set."""

    system: str
    dataset: str
    scored: list[Scored]
    run_s: float
    cold_first_ms: list[float]
    """Each built cascade's first (warm-up) call: what a freshly started node pays once."""


def run_ha_file(system: System, file: na.EvalFile, threshold: float) -> tuple[list[Scored], float]:
    """One file in its own home; a home or model that fails to load scores as not understood."""
    try:
        cascade = build(system, Home.model_validate(na.home_document(file)), threshold)
    except (NluError, ModelIntegrityError, ValueError) as exc:  # ValidationError is a ValueError
        answers = na.failed_run(file, f"cannot build the cascade: {exc}")
        pairs = zip(file.cases, answers, strict=True)
        return [from_outcome(na.score(file, case, got)) for case, got in pairs], math.nan
    cold_ms = warm_up(cascade.recognize)
    scored = [
        from_outcome(na.score(file, case, answer(cascade, case.sentence))) for case in file.cases
    ]
    return scored, cold_ms


def run_ha(system: System, files: Sequence[na.EvalFile], threshold: float) -> Run:
    """All HA files, one after another in this process, so latencies are not contended."""
    started = time.perf_counter()
    scored: list[Scored] = []
    cold: list[float] = []
    for file in files:
        file_scored, cold_ms = run_ha_file(system, file, threshold)
        scored.extend(file_scored)
        cold.append(cold_ms)
    return Run(system.name, HA, scored, time.perf_counter() - started, cold)


def run_dev(system: System, dev: Sequence[DevCase], home: Home, threshold: float) -> list[Run]:
    """Paraphrases and rejections through one cascade, split into one run per data set."""
    started = time.perf_counter()
    cascade = build(system, home, threshold)
    cold_ms = warm_up(cascade.recognize)
    scored = [score_dev(case, answer(cascade, case.text)) for case in dev]
    run_s = time.perf_counter() - started
    return [
        Run(
            system.name,
            name,
            [s for s, c in zip(scored, dev, strict=True) if c.dataset == name],
            run_s,
            [cold_ms],
        )
        for name in (PARA, HELD, REJ)
    ]


def dev_home_file(directory: Path, eval_dir: Path) -> Path:
    """The fixtures' home with the node in the Living Room, as a temp file (never in the repo)."""
    data = yaml.safe_load((eval_dir / FIXTURES).read_text(encoding="utf-8"))
    data["context_area"] = DEV_CONTEXT_AREA
    path = directory / DEV_HOME
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- encoder tier alone


@dataclass(frozen=True)
class EncoderTiming:
    """`EncoderTier.recognize` alone, per sentence, in a warm tier."""

    system: str
    sentences: int
    p50_ms: float
    p95_ms: float
    max_ms: float


def time_encoder(system: System, home: Home, dev: Sequence[DevCase]) -> EncoderTiming:
    """Every paraphrase through the encoder itself, whether or not rules would answer it.

    A fresh tier (empty match cache, so no sentence is answered from an
    earlier run), warmed up once, as in a node that has been running a while.
    """
    model_id = x86_profile().tiers.encoder.model
    if model_id is None:
        raise NluError(f"profile {PROFILE} names no encoder model")
    with models_env(system.models_dir):
        tier = EncoderTier(nlu_context(home), model_id, default_cache_dir())
    warm_up(tier.recognize)
    timings = []
    for case in dev:
        if case.dataset == PARA:
            started = time.perf_counter()
            tier.recognize(request(case.text))
            timings.append((time.perf_counter() - started) * 1000)
    return EncoderTiming(
        system.name,
        len(timings),
        na.percentile(timings, 0.50),
        na.percentile(timings, 0.95),
        max(timings, default=0.0),
    )


# --------------------------------------------------------------------------- memory


@dataclass(frozen=True)
class Memory:
    """Resident memory of one process with both tiers loaded (MB, from /proc/PID/status)."""

    how: str
    rss_mb: float | None
    hwm_mb: float | None
    note: str = ""


def proc_status_mb(pid: int) -> tuple[float | None, float | None]:
    """VmRSS and VmHWM: now, and the peak, which is what has to fit into the device's RAM."""
    memory = proc_memory(pid)
    return memory.rss_mb, memory.peak_mb


def write_node_config(directory: Path, home_path: Path, threshold: float) -> Path:
    """A node with both tiers and a broker that is not there: it loads, then waits."""
    config = {
        "node_id": NODE_ID,
        "home": str(home_path),
        "profile": PROFILE,
        "broker": {"host": "127.0.0.1", "port": free_port()},
        "nlu": {"threshold": threshold, "tiers": ["rules", "encoder"]},
        "log_level": "INFO",
    }
    path = directory / "node.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def wait_for_log(proc: subprocess.Popen[bytes], log_path: Path, needle: str) -> bool:
    """The daemon logs "starting" once its cascade is built; polling the file needs no thread."""
    deadline = time.monotonic() + DAEMON_WAIT_S
    while time.monotonic() < deadline and proc.poll() is None:
        if needle in log_path.read_text(encoding="utf-8", errors="replace"):
            return True
        time.sleep(0.2)
    return False


def stop(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM, as systemd stops a node; kill only if it does not finish."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def daemon_memory(directory: Path, home_path: Path, threshold: float) -> Memory:
    """`edge-runtime run` with both tiers, idle and offline: the node as it sits on a device."""
    config = write_node_config(directory, home_path, threshold)
    log_path = directory / "daemon.log"
    command = [sys.executable, "-m", "edge_runtime", "run", "--config", str(config)]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        try:
            if not wait_for_log(proc, log_path, "starting"):
                tail = log_path.read_text(errors="replace")[-300:]
                return Memory("daemon, idle", None, None, f"did not start: {tail}")
            time.sleep(SETTLE_S)  # the MQTT client thread starts after the log line
            rss, hwm = proc_status_mb(proc.pid)
        finally:
            stop(proc)
    return Memory("daemon, idle after start", rss, hwm)


def nlu_process_memory(home_path: Path, dev: Sequence[DevCase]) -> Memory:
    """`edge-runtime nlu` after answering the paraphrases: memory once inference has run.

    Lines are sent one at a time and each answer is read before the next, so
    neither pipe can fill up; stdin stays open until the status is read.
    """
    command = [sys.executable, "-m", "edge_runtime", "nlu", "--home", str(home_path)]
    command += ["--jsonl", "--profile", PROFILE]
    texts = [case.text for case in dev if case.dataset == PARA]
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        first_ms = math.nan
        for index, text in enumerate(texts):
            proc.stdin.write(text + "\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
            if not line:
                return Memory("nlu process", None, None, f"no answer to line {index + 1}")
            if index == 0:
                first_ms = float(json.loads(line)["latency_ms"])
        rss, hwm = proc_status_mb(proc.pid)
        proc.stdin.close()
        proc.wait(timeout=30)
    note = f"first sentence {first_ms:.0f} ms (cold)"
    return Memory(f"nlu process after {len(texts)} sentences", rss, hwm, note)


# --------------------------------------------------------------------------- figures


@dataclass(frozen=True)
class Row:
    """The figures of one system on one data set."""

    system: str
    dataset: str
    sentences: int
    intent_pct: float
    full_pct: float
    wrong: int
    wrong_pct: float
    by_encoder: int
    """Sentences the encoder tier answered (all of them, right or wrong)."""
    p50_ms: float
    p95_ms: float
    cold_first_ms: float
    """Median first call of a freshly built cascade (not in p50/p95)."""
    run_s: float


def summarize(run: Run) -> Row:
    """The table's figures; failed runs have NaN latencies and stay out of the percentiles."""
    scored = run.scored
    n = len(scored)
    latencies = [s.answer.latency_ms for s in scored if not math.isnan(s.answer.latency_ms)]
    cold = [ms for ms in run.cold_first_ms if not math.isnan(ms)]
    return Row(
        system=run.system,
        dataset=run.dataset,
        sentences=n,
        intent_pct=na.pct(sum(s.intent_ok for s in scored), n),
        full_pct=na.pct(sum(s.full_ok for s in scored), n),
        wrong=sum(s.wrong for s in scored),
        wrong_pct=na.pct(sum(s.wrong for s in scored), n),
        by_encoder=sum(s.answer.tier == "encoder" for s in scored),
        p50_ms=na.percentile(latencies, 0.50),
        p95_ms=na.percentile(latencies, 0.95),
        cold_first_ms=na.percentile(cold, 0.50),
        run_s=run.run_s,
    )


@dataclass(frozen=True)
class Target:
    """One target of the issue; `ok` is None when this run could not measure it."""

    name: str
    detail: str
    ok: bool | None


def row_of(rows: Sequence[Row], system: str, dataset: str) -> Row | None:
    """None when this run left the system or the data set out."""
    return next((r for r in rows if r.system == system and r.dataset == dataset), None)


def timing_of(timings: Sequence[EncoderTiming], system: str) -> EncoderTiming | None:
    """None when the system has no encoder or was not run."""
    return next((t for t in timings if t.system == system), None)


def ha_target(rows: Sequence[Row]) -> Target:
    """The encoder must not cost anything on what the templates already understand."""
    name = "HA files: cascade full match >= hassil alone"
    cascade, alone = row_of(rows, CASCADE, HA), row_of(rows, HASSIL_ALONE, HA)
    if cascade is None or alone is None:
        return Target(name, "not run (--skip-ha)", None)
    detail = f"{cascade.full_pct:.2f} % vs {alone.full_pct:.2f} %"
    return Target(name, detail, cascade.full_pct >= alone.full_pct)


def paraphrase_target(rows: Sequence[Row]) -> Target:
    """What the encoder is for: paraphrases understood, and hardly ever misunderstood."""
    name = f"paraphrases: cascade full >= {PARAPHRASE_FULL_MIN:.0f} %, wrong <= "
    name += f"{PARAPHRASE_WRONG_MAX:.0f} %"
    row = row_of(rows, CASCADE, PARA)
    if row is None:
        return Target(name, "not run", None)
    ok = row.full_pct >= PARAPHRASE_FULL_MIN and row.wrong_pct <= PARAPHRASE_WRONG_MAX
    return Target(name, f"full {row.full_pct:.1f} %, wrong {row.wrong_pct:.1f} %", ok)


def encoder_target(timings: Sequence[EncoderTiming]) -> Target:
    """The shipped model must answer well within a spoken command's latency budget."""
    name = f"encoder tier p95 < {ENCODER_P95_MAX_MS:.0f} ms (int8)"
    timing = timing_of(timings, CASCADE)
    if timing is None:
        return Target(name, "not run", None)
    return Target(name, f"{timing.p95_ms:.1f} ms", timing.p95_ms < ENCODER_P95_MAX_MS)


def quantization_gaps(rows: Sequence[Row]) -> dict[str, float]:
    """int8 minus fp32 full match, in points, per data set where both ran."""
    gaps = {}
    for dataset in (HA, PARA, HELD, REJ):
        int8, fp32 = row_of(rows, CASCADE, dataset), row_of(rows, CASCADE_FP32, dataset)
        if int8 is not None and fp32 is not None:
            gaps[dataset] = int8.full_pct - fp32.full_pct
    return gaps


def quantization_target(rows: Sequence[Row]) -> Target:
    """Within 1 point either way, on the HA files and the paraphrases.

    Either way: a quantized model that answers much differently, better or
    worse, is not the model that was trained. The rejections are left out of
    the target (one sentence of 52 is 1.9 points); their counts are in the table.
    """
    name = f"int8 full match within {QUANTIZATION_MAX_POINTS:.0f} point of fp32"
    gaps = {d: g for d, g in quantization_gaps(rows).items() if d in (HA, PARA)}
    if not gaps:
        return Target(name, "not run (no --fp32-models)", None)
    detail = ", ".join(f"{d} {g:+.2f}" for d, g in gaps.items())
    return Target(name, detail, all(abs(g) <= QUANTIZATION_MAX_POINTS for g in gaps.values()))


def speedup(timings: Sequence[EncoderTiming]) -> float | None:
    """fp32 over int8 encoder p50: how much faster the shipped model answers."""
    int8, fp32 = timing_of(timings, CASCADE), timing_of(timings, CASCADE_FP32)
    if int8 is None or fp32 is None or int8.p50_ms <= 0:
        return None
    return fp32.p50_ms / int8.p50_ms


def memory_target(memory: Sequence[Memory]) -> Target:
    """The larger of the processes' resident sizes must fit."""
    name = f"resident memory, both tiers < {RSS_MAX_MB:.0f} MB"
    measured = [m.rss_mb for m in memory if m.rss_mb is not None]
    if not measured:
        return Target(name, "not measured", None)
    return Target(name, f"max VmRSS {max(measured):.0f} MB", max(measured) < RSS_MAX_MB)


def targets(
    rows: Sequence[Row], timings: Sequence[EncoderTiming], memory: Sequence[Memory]
) -> list[Target]:
    """The issue's targets, in its order."""
    return [
        ha_target(rows),
        paraphrase_target(rows),
        encoder_target(timings),
        quantization_target(rows),
        memory_target(memory),
    ]


# --------------------------------------------------------------------------- findings


def paired(runs: Sequence[Run], dataset: str, a: str, b: str) -> list[tuple[Scored, Scored]]:
    """The same sentences as answered by two systems, side by side."""
    run_a = next((r for r in runs if r.system == a and r.dataset == dataset), None)
    run_b = next((r for r in runs if r.system == b and r.dataset == dataset), None)
    if run_a is None or run_b is None:
        return []
    return list(zip(run_a.scored, run_b.scored, strict=True))


def findings(runs: Sequence[Run]) -> dict[str, list[Scored]]:
    """The sentences worth a look, by what went wrong; each list holds the cascade's side."""
    ha = paired(runs, HA, HASSIL_ALONE, CASCADE)
    dev = paired(runs, PARA, HASSIL_ALONE, CASCADE) + paired(runs, REJ, HASSIL_ALONE, CASCADE)
    return {
        "HA: right with hassil alone, not with the cascade": [
            c for a, c in ha if a.full_ok and not c.full_ok
        ],
        "HA: wrong answers by the encoder tier": [
            c for _, c in ha if c.wrong and c.answer.tier == "encoder"
        ],
        "paraphrases and rejections: wrong answers of the cascade": [c for _, c in dev if c.wrong],
    }


def disagreements(runs: Sequence[Run]) -> list[tuple[Scored, Scored]]:
    """Sentences int8 and fp32 answer differently (intent, or right against wrong slots)."""
    return [
        (int8, fp32)
        for dataset in (HA, PARA, HELD, REJ)
        for int8, fp32 in paired(runs, dataset, CASCADE, CASCADE_FP32)
        if int8.answer.intent != fp32.answer.intent or int8.full_ok != fp32.full_ok
    ]


def rescued(runs: Sequence[Run], dataset: str) -> int:
    """Sentences hassil alone misses and the cascade gets right: the encoder's contribution."""
    pairs = paired(runs, dataset, HASSIL_ALONE, CASCADE)
    return sum(c.full_ok and not a.full_ok for a, c in pairs)


def by_kind(runs: Sequence[Run], system: str) -> dict[str, str]:
    """Full matches per kind of paraphrase ("synonym", "asr-slip" …): where the gaps are."""
    run = next((r for r in runs if r.system == system and r.dataset == PARA), None)
    if run is None:
        return {}
    total: Counter[str] = Counter()
    ok: Counter[str] = Counter()
    for scored in run.scored:
        for kind in scored.where.split("+"):
            total[kind] += 1
            ok[kind] += scored.full_ok
    return {kind: f"{ok[kind]}/{n}" for kind, n in total.most_common()}


# --------------------------------------------------------------------------- report


def print_rows(rows: Sequence[Row]) -> None:
    """One line per system and data set; on rejections "full" means "rightly did nothing"."""
    print(
        f"\n{'system':<14}{'data set':<15}{'sentences':>10}{'intent %':>10}{'full %':>9}"
        f"{'wrong %':>9}{'wrong':>7}{'by enc':>8}{'p50 ms':>8}{'p95 ms':>8}{'cold ms':>9}"
        f"{'run s':>7}"
    )
    for r in rows:
        print(
            f"{r.system:<14}{r.dataset:<15}{r.sentences:>10}{r.intent_pct:>10.2f}{r.full_pct:>9.2f}"
            f"{r.wrong_pct:>9.2f}{r.wrong:>7}{r.by_encoder:>8}{fmt(r.p50_ms, 2):>8}"
            f"{fmt(r.p95_ms, 2):>8}{fmt(r.cold_first_ms):>9}{r.run_s:>7.1f}"
        )
    print(
        "  full: intent and exactly the expected slots; wrong: acted, not as meant; "
        "by enc: answered by the encoder tier;\n  cold: median first call of a freshly built "
        "cascade (a node pays it once; not in p50/p95)"
    )
    for r in rows:
        if r.dataset == REJ:
            print(f"  rejections acted on, {r.system}: {r.wrong}/{r.sentences}")


def print_timings(timings: Sequence[EncoderTiming], rows: Sequence[Row]) -> None:
    """The encoder's own cost, and what quantization buys and costs."""
    print("\nEncoder tier alone (EncoderTier.recognize on every paraphrase, warm tier):")
    for t in timings:
        print(
            f"  {t.system:<14}{t.sentences:>5} sentences  p50 {t.p50_ms:6.2f} ms  "
            f"p95 {t.p95_ms:6.2f} ms  max {t.max_ms:6.1f} ms"
        )
    gaps, ratio = quantization_gaps(rows), speedup(timings)
    for dataset, gap in gaps.items():
        print(f"  int8 - fp32 full match, {dataset}: {gap:+.2f} points")
    if ratio is not None:
        print(f"  int8 speed-up over fp32 (encoder p50): {ratio:.2f}x")


def print_memory(memory: Sequence[Memory]) -> None:
    """Both processes: idle after loading, and after inference has allocated its buffers."""
    print("\nResident memory, rules + encoder (int8):")
    for m in memory:
        note = f"  ({m.note})" if m.note else ""
        print(f"  {m.how:<34} VmRSS {fmt(m.rss_mb):>6} MB  VmHWM {fmt(m.hwm_mb):>6} MB{note}")


def print_targets(found: Sequence[Target]) -> None:
    """PASS/FAIL per target; skip where this run could not measure it."""
    print("\nTargets:")
    for t in found:
        status = "skip" if t.ok is None else ("PASS" if t.ok else "FAIL")
        print(f"  {status:<5} {t.name:<58} {t.detail}")


def got(scored: Scored) -> str:
    """An answer on one line: intent, slots, and the tier that gave it."""
    slots = json.dumps(scored.answer.slots, default=str, ensure_ascii=False)
    return f"{scored.answer.intent} {slots} ({scored.answer.tier})"


def describe(scored: Scored) -> str:
    """One sentence: what was said, what came back, what was wanted, why it fails."""
    want = ", ".join(f"{k}: {na.show_value(v)}" for k, v in scored.slots.items())
    return (
        f"  [{scored.where}] {scored.sentence!r}\n      got {got(scored)}; "
        f"want {scored.intent} {{{want}}}\n      -> {scored.problem}"
    )


def print_findings(runs: Sequence[Run], limit: int) -> None:
    """What the encoder adds, where it fails, and where quantization changes an answer."""
    for dataset in (HA, PARA, HELD):
        if paired(runs, dataset, HASSIL_ALONE, CASCADE):
            print(f"\n{dataset}: hassil alone misses, cascade right: {rescued(runs, dataset)}")
    kinds = by_kind(runs, CASCADE)
    if kinds:
        print(
            "paraphrases, cascade full matches by kind: "
            + ", ".join(f"{k} {v}" for k, v in kinds.items())
        )
    for title, found in findings(runs).items():
        print_examples(title, found, limit)
    print_disagreements(disagreements(runs), limit)


def print_examples(title: str, found: Sequence[Scored], limit: int) -> None:
    """At most two per file or kind, so one bad file hides nothing; --json has them all."""
    print(f"\n{title}: {len(found)}")
    shown: Counter[str] = Counter()
    for scored in found:
        if shown.total() >= limit:
            break
        if shown[scored.where] < 2:
            shown[scored.where] += 1
            print(describe(scored))
    if shown.total() < len(found):
        print(f"  ... {len(found) - shown.total()} more (all of them with --json)")


def print_disagreements(pairs: Sequence[tuple[Scored, Scored]], limit: int) -> None:
    """Both answers side by side: which model was right shows what quantization changed."""
    if not pairs:
        return
    print(f"\nint8 and fp32 answer differently: {len(pairs)}")
    for int8, fp32 in pairs[:limit]:
        print(f"  [{int8.where}] {int8.sentence!r}")
        print(f"      int8 {got(int8)} {'right' if int8.full_ok else 'not right'}")
        print(f"      fp32 {got(fp32)} {'right' if fp32.full_ok else 'not right'}")


@dataclass(frozen=True)
class Report:
    """Everything one run measured, for the JSON file."""

    threshold: float
    runs: list[Run]
    rows: list[Row]
    timings: list[EncoderTiming]
    memory: list[Memory]
    targets: list[Target]
    total_s: float


def plain(value: Any) -> Any:
    """A slot value as JSON: an any-of set becomes a sorted list."""
    return sorted(value, key=str) if isinstance(value, set | frozenset) else value


def scored_json(scored: Scored) -> dict[str, Any]:
    """One sentence with what was wanted and what came back, enough to reproduce it."""
    return {
        "where": scored.where,
        "sentence": scored.sentence,
        "want_intent": scored.intent,
        "want_slots": {k: plain(v) for k, v in scored.slots.items()},
        "intent": scored.answer.intent,
        "slots": scored.answer.slots,
        "tier": scored.answer.tier,
        "latency_ms": scored.answer.latency_ms,
        "problem": scored.problem,
    }


def write_json(path: Path, report: Report) -> None:
    """Every figure, plus every failing sentence per run, to diff between runs."""
    data = {
        "threshold": report.threshold,
        "total_run_s": round(report.total_s, 2),
        "rows": [dataclasses.asdict(r) for r in report.rows],
        "encoder_tier": [dataclasses.asdict(t) for t in report.timings],
        "int8_minus_fp32_full_points": quantization_gaps(report.rows),
        "int8_speedup_over_fp32": speedup(report.timings),
        "memory": [dataclasses.asdict(m) for m in report.memory],
        "targets": [dataclasses.asdict(t) for t in report.targets],
        "paraphrases_by_kind": {
            s: by_kind(report.runs, s) for s in {r.system for r in report.runs}
        },
        "findings": {k: [scored_json(s) for s in v] for k, v in findings(report.runs).items()},
        "int8_fp32_disagreements": [
            {"int8": scored_json(a), "fp32": scored_json(b)} for a, b in disagreements(report.runs)
        ],
        "failures": {
            f"{run.system} / {run.dataset}": [scored_json(s) for s in run.scored if not s.full_ok]
            for run in report.runs
        },
    }
    path.write_text(json.dumps(data, indent=2, default=str, ensure_ascii=False), "utf-8")


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The options of the issue, plus the eval dir, a file limit and example count."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--json", type=Path, help="also write all figures to this JSON file")
    parser.add_argument("--skip-ha", action="store_true", help="only our own dev sentences")
    parser.add_argument(
        "--fp32-models",
        type=Path,
        help="models dir whose catalog holds an fp32 export under the int8 model's id",
    )
    parser.add_argument(
        "--threshold", type=float, default=NluConfig().threshold, help="cascade threshold"
    )
    parser.add_argument(
        "--eval-dir", type=Path, default=na.DEFAULT_EVAL_DIR, help="HA tests and _fixtures.yaml"
    )
    parser.add_argument("--limit", type=int, help="only the first N HA files (quick runs)")
    parser.add_argument("--examples", type=int, default=12, help="sentences shown per finding")
    return parser.parse_args(argv)


def check_fp32(directory: Path) -> None:
    """Refuse a dir that would silently measure the int8 model twice."""
    model_id = x86_profile().tiers.encoder.model or ""
    try:
        model = load_catalog(directory).get(model_id)
    except KeyError as exc:
        sys.exit(f"error: --fp32-models {directory}: {exc.args[0]}")
    if model.quantization != "fp32":
        sys.exit(f"error: --fp32-models {directory}: {model_id} is {model.quantization}, not fp32")


def measure(args: argparse.Namespace, workdir: Path) -> tuple[list[Run], list[EncoderTiming]]:
    """Every system on every data set, then the encoder tier alone per model."""
    files = [] if args.skip_ha else na.load_eval_files(args.eval_dir, args.limit)
    home_path = dev_home_file(workdir, args.eval_dir)
    home = load_home(home_path)
    dev = (
        load_dev_cases(PARAPHRASES, PARA)
        + load_dev_cases(HELD_OUT, HELD)
        + load_dev_cases(REJECTIONS, REJ)
    )
    runs: list[Run] = []
    timings: list[EncoderTiming] = []
    for system in systems(args.fp32_models):
        if files:
            runs.append(run_ha(system, files, args.threshold))
            print(f"{system.name}: {len(files)} HA files in {runs[-1].run_s:.1f} s", flush=True)
        runs.extend(run_dev(system, dev, home, args.threshold))
        if "encoder" in system.tiers:
            timings.append(time_encoder(system, home, dev))
    return runs, timings


def measure_memory(workdir: Path, threshold: float) -> list[Memory]:
    """Both ways a node runs with both tiers: the daemon, and the batch `nlu` command."""
    home_path = workdir / DEV_HOME
    return [
        daemon_memory(workdir, home_path, threshold),
        nlu_process_memory(home_path, load_dev_cases(PARAPHRASES, PARA)),
    ]


def print_report(report: Report, examples: int) -> None:
    """Table first, targets last: the two things a reader looks for."""
    print_rows(report.rows)
    print_timings(report.timings, report.rows)
    print_memory(report.memory)
    print_findings(report.runs, examples)
    print_targets(report.targets)
    print(f"\nthreshold {report.threshold}; total run time: {report.total_s:.1f} s")


def main(argv: Sequence[str] | None = None) -> int:
    """Measure, print the table and the targets; exit 0 whatever the figures say."""
    args = parse_args(argv)
    if args.fp32_models is not None:
        check_fp32(args.fp32_models)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nlu-benchmark-") as tmp:
        runs, timings = measure(args, Path(tmp))
        memory = measure_memory(Path(tmp), args.threshold)
    rows = [summarize(run) for run in runs]
    found = targets(rows, timings, memory)
    total_s = time.perf_counter() - started
    report = Report(args.threshold, runs, rows, timings, memory, found, total_s)
    print_report(report, args.examples)
    if args.json:
        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
