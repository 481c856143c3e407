"""Run one measurement in a fresh Python process, and the child's side of it.

A model measured in the bench's own process would share its heap with everything loaded
before it, so its peak resident memory could not be told apart, and a provider library
that crashes (a CUDA build without its libraries) would end the whole run. A child loads
one thing, measures it and prints one JSON line; the parent reads that line, or turns the
child's failure into a `ChildFailed` with the end of its stderr.

    parent: run_child("edge_runtime.bench.models", job, timeout_s)
    child:  python -m edge_runtime.bench.models   (its __main__ calls child_main(measure))
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import traceback
from collections.abc import Callable
from typing import Any

from edge_runtime.bench.stats import proc_memory, reset_peak

RESULT_MARK = "@@bench-result@@ "
"""Prefixes the child's one result line, so library chatter on stdout is never taken for it."""

Job = dict[str, Any]


class ChildFailed(Exception):
    """The child crashed, timed out or reported an error; the message says which."""


class Unavailable(Exception):
    """Raised by a measurement in the child: this cannot be measured here (and why)."""


def run_child(module: str, job: Job, timeout_s: float) -> Job:
    """Run `python -m module` with `job` on stdin; its result, or ChildFailed."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", module],
            input=json.dumps(job),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ChildFailed(f"did not finish within {timeout_s:.0f} s") from None
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            result: Job = json.loads(line[len(RESULT_MARK) :])
            if "error" in result:
                raise ChildFailed(str(result["error"]) + _library_error(done.stderr))
            return result
    raise ChildFailed(f"exited with status {done.returncode}: {_last_line(done.stderr)}")


def _library_error(stderr: str) -> str:
    """onnxruntime's reason for a provider it could not start (a missing CUDA library ...)."""
    found = re.search(r"Failed to load library \S+ with error: ([^\n\x1b]+)", stderr)
    return f": {found.group(1).strip()}" if found else ""


def _last_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no message"


def child_main(measure: Callable[[Job], Job]) -> int:
    """Read the job, measure, print the result line; an exception becomes `{"error": ...}`."""
    job: Job = json.loads(sys.stdin.read())
    try:
        result = measure(job)
    except Unavailable as exc:
        result = {"error": str(exc)}
    except Exception as exc:  # the parent reports it as this subject's note and goes on
        traceback.print_exc()
        result = {"error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.write(RESULT_MARK + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


class PeakMeter:
    """Peak resident memory added by what runs between `start` and `added_mb`.

    The peak is reset first (imports may have peaked higher); the baseline is the RSS
    right after, so the figure is the load plus the work, not the interpreter.
    """

    def __init__(self) -> None:
        self.resettable = False
        self.baseline_mb: float | None = None

    def start(self) -> None:
        self.resettable = reset_peak()
        self.baseline_mb = proc_memory().rss_mb

    def added_mb(self) -> float | None:
        peak = proc_memory().peak_mb
        if peak is None or self.baseline_mb is None:
            return None
        return max(0.0, peak - self.baseline_mb)
