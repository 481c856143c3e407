"""`edge-runtime bench`: a quick run on this machine writes JSON that its shipped schema
accepts; `--compare` shows the change per figure and refuses what is not a bench report; a
provider onnxruntime cannot start and a broker that is not there are rows, not crashes.

Real processes, real models, a real Mosquitto (conftest), speech from espeak-ng, and a
tiny generator trained and exported here. The figures themselves are never asserted: they
depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import jsonschema
import onnxruntime as ort
import pytest
from conftest import Broker, free_port, write_config

from edge_runtime.bench import generator, models, mqtt, stats
from edge_runtime.bench.child import ChildFailed, run_child
from edge_runtime.bench.plan import QUICK, Context
from edge_runtime.bench.recommend import recommend
from edge_runtime.bench.report import recommendation_lines, table_lines
from edge_runtime.bench.results import (
    SCHEMA_PATH,
    Figure,
    Note,
    json_schema,
    read_report,
    report_json,
)
from edge_runtime.bench.runner import gpu_unused, make_context
from edge_runtime.profiles import MachineFacts, load_profiles, select_profile

CPU = "CPUExecutionProvider"


@dataclass(frozen=True)
class QuickRun:
    returncode: int
    stdout: str
    stderr: str
    json_path: Path


def bench(*args: str | Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge_runtime", "bench", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory, broker: Broker) -> QuickRun:
    """One `bench --quick --json` against the session's Mosquitto, shared by the tests."""
    directory = tmp_path_factory.mktemp("bench")
    config = write_config(directory / "node.yaml", "bench-test", broker.port)
    out = directory / "quick.json"
    done = bench("--quick", "--json", out, "--config", config)
    return QuickRun(done.returncode, done.stdout, done.stderr, out)


@pytest.fixture
def context(tmp_path: Path) -> Iterator[Context]:
    built, _ = make_context(QUICK, None, "x86-64", tmp_path)
    yield built


def test_quick_bench_prints_a_table_and_writes_json_that_the_shipped_schema_accepts(
    quick_run: QuickRun,
) -> None:
    assert quick_run.returncode == 0, quick_run.stderr
    assert "[1/" in quick_run.stderr and "hardware" in quick_run.stderr
    for heading in ("Hardware", "Encoder models", "Speech to text", "NLU end to end", "MQTT"):
        assert heading in quick_run.stdout
    assert "Recommendation: profile" in quick_run.stdout
    data = json.loads(quick_run.json_path.read_text(encoding="utf-8"))
    shipped = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(shipped)
    jsonschema.validate(data, shipped, cls=jsonschema.Draft202012Validator)
    report = read_report(quick_run.json_path)
    assert report.mode == "quick" and report.software.providers == ort.get_available_providers()
    groups = {f.group for f in report.figures}
    assert {"hardware", "encoder", "stt", "nlu", "mqtt"} <= groups
    keys = [f.key for f in report.figures]
    assert len(keys) == len(set(keys)), "every figure has its own key"
    assert "mqtt/broker/rtt_p50_ms" in keys  # the session's broker answered
    assert report.recommendation is not None and report.recommendation.tiers


def test_the_shipped_schema_is_the_one_the_report_classes_generate() -> None:
    shipped = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert shipped == json_schema(), (
        "edge_runtime/bench/schema.json is stale: rewrite it with .venv/bin/python -c "
        "'from edge_runtime.bench.results import write_schema; write_schema()'"
    )


def test_compare_shows_the_change_of_every_figure_both_runs_have(
    quick_run: QuickRun, tmp_path: Path
) -> None:
    old = read_report(quick_run.json_path)
    slower = [
        replace(f, value=f.value * 2) if f.metric.endswith("p95_ms") and f.value else f
        for f in old.figures
    ]
    new = replace(old, figures=slower[1:])  # the first figure is gone in the new run
    new_path = tmp_path / "new.json"
    new_path.write_text(report_json(new), encoding="utf-8")
    done = bench("--compare", quick_run.json_path, "--against", new_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"Change against {quick_run.json_path.name}" in done.stdout
    doubled = [line for line in done.stdout.splitlines() if "p95 ms" in line]
    assert doubled and all("+100.0 %  worse" in line for line in doubled)
    assert "1 figures only in" in done.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not JSON"),
        ('{"name": "left-pad", "version": "1.0.0"}', "not an edge-runtime bench report"),
        ('{"schema_version": 7, "figures": []}', "schema version 7"),
        ("[1, 2, 3]", "not an edge-runtime bench report"),
        ('{"schema_version": 1, "figures": []}', "machine: Field required"),
    ],
)
def test_compare_refuses_a_corrupt_or_foreign_file_before_measuring(
    tmp_path: Path, content: str, message: str
) -> None:
    bad = tmp_path / "old.json"
    bad.write_text(content, encoding="utf-8")
    done = bench("--compare", bad, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {bad}: ") and message in done.stderr
    assert "[1/" not in done.stderr  # nothing was measured


def test_compare_names_the_field_that_is_wrong(quick_run: QuickRun, tmp_path: Path) -> None:
    data = json.loads(quick_run.json_path.read_text(encoding="utf-8"))
    data["figures"][0]["value"] = "fast"
    data["figures"][1]["group"] = "gpu"
    bad = tmp_path / "edited.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    done = bench("--compare", bad, "--against", quick_run.json_path, timeout=60)
    assert done.returncode == 2
    assert "figures[0].value" in done.stderr and "figures[1].group" in done.stderr


def test_a_provider_onnxruntime_cannot_start_is_a_note_not_a_crash(context: Context) -> None:
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA; the test needs a build or machine without it")
    found = [f for step in models.steps(context, ["CUDAExecutionProvider"]) for f in step.run()]
    assert found and all(isinstance(f, Note) and f.skipped for f in found)
    assert all("did not start" in f.text for f in found if isinstance(f, Note))


def test_a_child_that_dies_is_reported_with_its_last_words() -> None:
    with pytest.raises(ChildFailed, match=r"exited with status 1: .*No module named"):
        run_child("edge_runtime.bench.no_such_module", {}, 60)
    with pytest.raises(ChildFailed, match="KeyError: 'model'"):
        run_child("edge_runtime.bench.models", {"not": "a job"}, 60)


def test_an_unreachable_broker_is_recorded_as_unavailable(context: Context) -> None:
    broker = context.config.broker.model_copy(update={"host": "127.0.0.1", "port": free_port()})
    nowhere = replace(context, config=context.config.model_copy(update={"broker": broker}))
    found = mqtt.measure(nowhere)
    assert len(found) == 1 and isinstance(found[0], Note) and found[0].skipped
    assert "unavailable" in found[0].text


def test_providers_are_measured_gpu_first_cpu_last_without_azure() -> None:
    available = [
        "AzureExecutionProvider",
        CPU,
        "CUDAExecutionProvider",
        "TensorrtExecutionProvider",
    ]
    assert models.bench_providers(available) == [
        "TensorrtExecutionProvider",
        "CUDAExecutionProvider",
        CPU,
    ]


def test_a_gpu_onnxruntime_cannot_use_is_named_with_the_fix(context: Context) -> None:
    with_gpu = replace(context.machine, gpus=["NVIDIA H100 80GB HBM3, 81559 MiB"])
    (note,) = gpu_unused(with_gpu, ["AzureExecutionProvider", CPU])
    assert note.skipped and "onnxruntime-gpu" in note.text
    shown = [line.split(maxsplit=1) for line in table_lines([], [note])]
    assert ["gpu", note.text] in shown
    assert gpu_unused(with_gpu, ["CUDAExecutionProvider", CPU]) == []
    assert gpu_unused(replace(context.machine, gpus=[]), [CPU]) == []


def test_percentiles_are_nearest_rank_and_nan_for_nothing() -> None:
    assert stats.percentile([5.0, 1.0, 3.0, 2.0, 4.0], 0.5) == 3.0
    assert stats.percentile([1.0, 2.0], 0.95) == 2.0
    assert stats.percentile([], 0.5) != stats.percentile([], 0.5)  # NaN
    assert stats.fmt(None) == "-"


def figure(group: Any, subject: str, metric: str, value: float) -> Figure:
    return Figure(group, subject, metric, metric, value, "", "lower")


def test_recommendation_hosts_what_meets_its_target_and_fits_the_budget() -> None:
    selection = select_profile(load_profiles(), MachineFacts.probe(), "raspberry-pi-5")
    found = [
        figure("nlu", "python + libraries", "peak_mb", 80),
        figure("nlu", "rules", "p95_ms", 4),
        figure("nlu", "rules", "peak_mb", 10),
        figure("stt", "pocketsphinx", "rtf", 0.1),
        figure("stt", "pocketsphinx", "peak_mb", 120),
        figure("encoder", "edge-intent-minilm-int8 (CPU)", "p95_ms", 80),
        figure("encoder", "edge-intent-minilm-int8 (CPU)", "peak_mb", 60),
        figure("generator", "edge-intent-slm-int8 (CPU)", "tg32", 12),
        figure("generator", "edge-intent-slm-int8 (CPU)", "peak_mb", 3000),
    ]
    advice = recommend(found, [], selection, ram_total_mb=8000)
    by_tier = {t.tier: t for t in advice.tiers}
    assert by_tier["rules"].host and by_tier["stt"].host
    assert not by_tier["encoder"].host and "too slow" in by_tier["encoder"].reason
    assert not by_tier["generator"].host and "budget" in by_tier["generator"].reason
    assert advice.profile == "raspberry-pi-5" and advice.ram_needed_mb == 210
    assert all(t.measured for t in advice.tiers)


def test_a_tier_nothing_could_measure_is_neither_hosted_nor_sent_to_a_peer() -> None:
    selection = select_profile(load_profiles(), MachineFacts.probe(), "x86-64")
    why = "espeak-ng is not installed (apt-get install espeak-ng): no speech to time"
    found = [figure("nlu", "rules", "p95_ms", 4), figure("nlu", "rules", "peak_mb", 10)]
    advice = recommend(found, [Note("stt", "pocketsphinx", why, skipped=True)], selection, 8000)
    stt = next(t for t in advice.tiers if t.tier == "stt")
    assert (stt.host, stt.measured, stt.reason) == (False, False, why)
    assert "stt" in advice.summary.split("not measured here")[0].split(";")[-1]
    shown = recommendation_lines(advice)
    assert any(line.split()[:2] == ["stt", "?"] for line in shown)


@pytest.mark.slow
def test_a_generator_in_the_catalog_gets_prefill_and_decode_rows(
    tmp_path: Path, context: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tiny Llama trained and exported here (genai format) as the catalog's only model."""
    if not generator.genai_installed():
        pytest.fail("onnxruntime-genai is not installed: pip install -e '.[test]'")
    rows = tmp_path / "rows.jsonl"
    row = {"text": "turn on the den lamp", "intents": [{"intent": "HassTurnOn", "slots": {}}]}
    rows.write_text((json.dumps(row) + "\n") * 20, encoding="utf-8")
    train = [sys.executable, "-m", "training.train_generator", "--data", str(rows)]
    train += ["--out", str(tmp_path / "hf"), "--size", "tiny", "--steps", "2", "--cpu"]
    train += ["--eval-examples", "1"]
    subprocess.run(train, check=True, capture_output=True, timeout=300)
    export = [sys.executable, "-m", "edge_runtime", "models", "export", str(tmp_path / "hf")]
    export += ["--task", "text-generation", "--quantize", "int4", "--id", "tiny-generator"]
    export += ["--models-dir", str(tmp_path / "models")]
    subprocess.run(export, check=True, capture_output=True, timeout=300)
    monkeypatch.setenv("EDGE_RUNTIME_MODELS", str(tmp_path / "models"))
    found = [f for step in generator.steps(context, [CPU]) for f in step.run()]
    values = {f.metric: f.value for f in found if isinstance(f, Figure)}
    assert set(values) == {"load_s", "peak_mb", "pp64", "tg32"}, found
    assert all(v is not None and v > 0 for k, v in values.items() if k != "peak_mb")
