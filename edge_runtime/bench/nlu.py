"""NLU end to end: the latency of each tier alone, and of the profile's cascade, from text
to answer, on a handful of commands against the embedded demo home.

A tier alone is a cascade of that one tier, so a command it cannot answer costs what it
costs a node whose earlier tiers passed the command on. All tiers are built in one child
process (`child`), one after another and kept alive, as in a node: each tier's peak memory
is what it adds to what was built before it, and the process's own size before any tier
("python + libraries") is reported too, as the base a node's RAM budget starts from.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from edge_runtime.bench.child import Job, PeakMeter, child_main
from edge_runtime.bench.plan import COMMANDS, Context, Step, in_child
from edge_runtime.bench.results import Figure, Finding, Note
from edge_runtime.bench.stats import percentile, proc_memory
from edge_runtime.config import LimitsConfig
from edge_runtime.home import demo_home
from edge_runtime.messages import TextRequest
from edge_runtime.nlu.base import NluContext, tier_factory
from edge_runtime.nlu.cascade import Cascade
from edge_runtime.profiles import load_profiles

TIERS = ("rules", "encoder", "generator")
CASCADE = "cascade"
BASE = "python + libraries"
LANGUAGE = "en"
"""The commands are English, whatever the node's language."""
NODE_ID = "bench"


def steps(context: Context) -> list[Step]:
    label = f"NLU tiers {', '.join(TIERS)} and the cascade on {len(COMMANDS)} commands"
    job = {
        "profile": context.profile.id,
        "threshold": context.config.nlu.threshold,
        "cache_dir": str(context.cache_dir),
        "rounds": context.settings.nlu_rounds,
    }
    timeout = context.settings.child_timeout_s
    return [in_child(label, "nlu", CASCADE, __name__, timeout, job, findings)]


def findings(result: Job) -> list[Finding]:
    found: list[Finding] = [
        Figure("nlu", BASE, "peak_mb", "peak MB", result["base_mb"], "MB", "lower")
    ]
    for name, r in result["tiers"].items():
        if "error" in r:
            found.append(Note("nlu", name, r["error"], skipped=True))
            continue
        figures = [
            Figure("nlu", name, "load_s", "load s", r["load_s"], "s", "lower"),
            Figure("nlu", name, "peak_mb", "peak MB", r["peak_mb"], "MB", "lower"),
            Figure("nlu", name, "p50_ms", "p50 ms", r["p50_ms"], "ms", "lower"),
            Figure("nlu", name, "p95_ms", "p95 ms", r["p95_ms"], "ms", "lower"),
        ]
        found += [f for f in figures if f.value is not None]  # the cascade loads nothing new
        found += [
            Note(
                "nlu",
                name,
                f"{r['understood']}/{len(COMMANDS)} commands understood"
                + (f" ({r['what']})" if r.get("what") else ""),
            ),
        ]
    return found


# --------------------------------------------------------------------------- the child


def measure(job: Job) -> Job:
    """In the child: build each tier alone, time it; then the profile's cascade of them."""
    profile = load_profiles()[job["profile"]]
    context = NluContext(demo_home(), LANGUAGE, NODE_ID, profile, Path(job["cache_dir"]))
    base_mb = proc_memory().rss_mb
    built: dict[str, Cascade] = {}
    results: dict[str, Job] = {}
    for name in TIERS:
        factory = tier_factory(name)
        if factory is None:
            results[name] = {"error": "not in this build"}
            continue
        meter = PeakMeter()
        meter.start()
        started = time.perf_counter()
        try:
            cascade = Cascade([factory(context)], job["threshold"], NODE_ID)
        except Exception as exc:  # NluError, or whatever a new tier's loader raises
            results[name] = {"error": f"cannot be built: {exc}"}
            continue
        load_s = time.perf_counter() - started
        results[name] = {"load_s": load_s, **_time(cascade, job["rounds"])}
        results[name]["peak_mb"] = meter.added_mb()
        built[name] = cascade
    tiers = [built[n].tiers[0] for n in profile.tiers.enabled() if n in built]
    if tiers:
        cascade = Cascade(tiers, job["threshold"], NODE_ID)
        what = f"{' > '.join(cascade.tier_names)}, profile {profile.id}"
        results[CASCADE] = {"load_s": None, "peak_mb": None, "what": what}  # built above
        results[CASCADE].update(_time(cascade, job["rounds"]))
    return {"base_mb": base_mb, "tiers": results}


def _time(cascade: Cascade, rounds: int) -> Job:
    """Every command once untimed (first calls allocate), then `rounds` times, timed."""
    limit = LimitsConfig().max_text_chars
    requests = [TextRequest.build(text, None, None, None, limit) for text in COMMANDS]
    understood = sum(cascade.recognize(r).intent is not None for r in requests)
    latencies = [cascade.recognize(r).latency_ms for _ in range(rounds) for r in requests]
    return {
        "p50_ms": percentile(latencies, 0.50),
        "p95_ms": percentile(latencies, 0.95),
        "understood": understood,
    }


if __name__ == "__main__":
    sys.exit(child_main(measure))
