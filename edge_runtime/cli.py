"""The `edge-runtime` command. It only parses arguments, calls the library and prints.

edge-runtime run [--config node.yaml]        the daemon (MQTT)
edge-runtime ask "turn on the kitchen lights"
edge-runtime nlu --home home.yaml --jsonl    one JSON answer per stdin line
edge-runtime listen [--wav FILE] [--json]    speech to intent, from the microphone or a file
edge-runtime profiles                        device profiles and which one fits
edge-runtime peers [--json]                  the live network of nodes
edge-runtime doctor [--json]                 what is wrong with this node, and how to fix it
edge-runtime bench [--quick] [--json FILE]   what this machine can host, measured
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from edge_runtime import __version__
from edge_runtime.audio.format import AudioError
from edge_runtime.inference.genai_export import BLOCK_SIZES, DEFAULT_BLOCK
from edge_runtime.messages import BadRequest, Recognition, TextRequest
from edge_runtime.nlu.base import NluError
from edge_runtime.nlu.cascade import Cascade
from edge_runtime.profiles import MachineFacts, load_profiles, select_profile
from edge_runtime.runtime import Runtime, load_runtime
from edge_runtime.service import JournalFormatter, Notifier, under_journal
from edge_runtime.stt.base import SpeechToText, SttError
from edge_runtime.yamlload import ConfigError

T = TypeVar("T")

if TYPE_CHECKING:
    from edge_runtime.daemon import Daemon

CONFIG_OPTION = click.option(
    "--config", "config_path", type=click.Path(path_type=Path), help="Node config (node.yaml)."
)
HOME_OPTION = click.option(
    "--home", "home_path", type=click.Path(path_type=Path), help="Home file; overrides the config."
)
PROFILE_OPTION = click.option("--profile", help="Device profile name; overrides detection.")


def _setup_logging(level: str, node_id: str = "-") -> None:
    """Every line names the node (and a request's lines its `id=`); under systemd the journal
    stamps the time itself and takes the priority from the line."""
    handler = logging.StreamHandler()
    if under_journal():
        handler.setFormatter(JournalFormatter(node_id))
    else:
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s %(levelname)s node={node_id} %(name)s: %(message)s")
        )
    logging.basicConfig(level=level, handlers=[handler], force=True)


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def _load(config_path: Path | None, home_path: Path | None, profile: str | None) -> Runtime:
    try:
        return load_runtime(config_path, home_path, profile)
    except ConfigError as exc:
        _fail(str(exc))
        raise  # unreachable: _fail exits


def _or_fail(load: Callable[[], T]) -> T:
    """Run a loader; a ConfigError becomes a clean error message and exit code 2."""
    try:
        return load()
    except ConfigError as exc:
        _fail(str(exc))
        raise


def _cascade(runtime: Runtime) -> Cascade:
    try:
        return runtime.build_cascade()
    except NluError as exc:
        _fail(str(exc))
        raise


@click.group()
@click.version_option(__version__, prog_name="edge-runtime")
def main() -> None:
    """Offline voice-assistant runtime: small language models and MQTT on the edge."""


@main.command()
@CONFIG_OPTION
@HOME_OPTION
@PROFILE_OPTION
def run(config_path: Path | None, home_path: Path | None, profile: str | None) -> None:
    """Run the node daemon: answer commands over MQTT until SIGTERM."""
    from edge_runtime.daemon import Daemon  # paho is only needed here

    notifier = Notifier.from_environment()
    notifier.status("loading the config, the home and the models")
    runtime = _load(config_path, home_path, profile)
    _setup_logging(runtime.config.log_level, runtime.config.node_id)
    daemon = Daemon(runtime, _cascade(runtime), _speech(runtime), notifier)
    click.echo(
        f"edge-runtime {__version__}: node {runtime.config.node_id!r} on "
        f"{runtime.config.broker.host}:{runtime.config.broker.port}. Try:\n"
        f'  mosquitto_pub -t {daemon.topics.text} -m \'{{"text": "turn on the lights"}}\'\n'
        f"  mosquitto_sub -t '{daemon.topics.intent}' -v",
        err=True,
    )
    if sys.stdin.isatty():
        _start_console(daemon)
    sys.exit(daemon.run())


def _speech(runtime: Runtime) -> SpeechToText | None:
    """The profile's speech engine, or None (voice off, or the engine cannot load: the node
    still answers text, and says why it is deaf)."""
    if not runtime.config.voice.enabled:
        return None
    try:
        return runtime.build_speech()
    except (SttError, AudioError) as exc:
        logging.getLogger("edge_runtime").error("speech to text is off: %s", exc)
        return None


def _start_console(daemon: Daemon) -> None:
    """Typed commands at the terminal: answers even while no broker is reachable."""

    def read_lines() -> None:
        for line in sys.stdin:
            if line.strip():
                daemon.submit_local(line, lambda r: click.echo(_describe(r)))

    click.echo("Type a command and press Enter (Ctrl-C stops the node).", err=True)
    threading.Thread(target=read_lines, name="console", daemon=True).start()


def _describe(recognition: Recognition) -> str:
    intent = recognition.intent
    if intent is None:
        return f"not understood ({recognition.latency_ms:.1f} ms): no tier was confident enough"
    lines = [
        f"{intent.name}  ({intent.tier}, confidence {intent.confidence:.2f}, "
        f"{recognition.latency_ms:.1f} ms)"
    ]
    lines += [f"  {name}: {slot.value}" for name, slot in intent.slots.items()]
    return "\n".join(lines)


@main.command()
@click.argument("text")
@CONFIG_OPTION
@HOME_OPTION
@PROFILE_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the JSON form.")
def ask(
    text: str, config_path: Path | None, home_path: Path | None, profile: str | None, as_json: bool
) -> None:
    """Recognize one typed command and print the intent."""
    runtime = _load(config_path, home_path, profile)
    _setup_logging("WARNING")
    cascade = _cascade(runtime)
    try:
        request = TextRequest.build(text, None, None, None, runtime.config.limits.max_text_chars)
    except BadRequest as exc:
        _fail(str(exc))
        raise
    recognition = cascade.recognize(request)
    click.echo(json.dumps(recognition.to_jsonl()) if as_json else _describe(recognition))


def _answer_line(cascade: Cascade, line: str, max_chars: int) -> dict[str, Any]:
    try:
        request = TextRequest.build(line, None, None, None, max_chars)
    except BadRequest as exc:
        return {
            "text": line,
            "intent": None,
            "slots": {},
            "confidence": 0.0,
            "tier": None,
            "latency_ms": 0.0,
            "error": str(exc),
        }
    return cascade.recognize(request).to_jsonl()


@main.command()
@CONFIG_OPTION
@HOME_OPTION
@PROFILE_OPTION
@click.option("--jsonl", is_flag=True, help="Write one JSON object per input line.")
def nlu(config_path: Path | None, home_path: Path | None, profile: str | None, jsonl: bool) -> None:
    """Recognize one sentence per stdin line; start-up is paid once."""
    runtime = _load(config_path, home_path, profile)
    _setup_logging("WARNING")
    cascade = _cascade(runtime)
    max_chars = runtime.config.limits.max_text_chars
    for raw in sys.stdin:
        answer = _answer_line(cascade, raw.rstrip("\r\n"), max_chars)
        if jsonl:
            click.echo(json.dumps(answer, ensure_ascii=False))
        else:
            slots = ", ".join(f"{k}={v}" for k, v in answer["slots"].items())
            click.echo(
                f"{answer['text']} -> {answer['intent'] or 'not understood'} {slots}".rstrip()
            )
        sys.stdout.flush()


@main.command()
@CONFIG_OPTION
@HOME_OPTION
@PROFILE_OPTION
@click.option("--wav", "wav_path", type=click.Path(path_type=Path), help="Listen to a WAV file.")
@click.option("--device", help="Microphone (name, part of one, or index); the config's otherwise.")
@click.option("--list-devices", is_flag=True, help="List the input devices and stop.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per utterance.")
def listen(
    config_path: Path | None,
    home_path: Path | None,
    profile: str | None,
    wav_path: Path | None,
    device: str | None,
    list_devices: bool,
    as_json: bool,
) -> None:
    """Speech to intent: the microphone until Ctrl-C, or a WAV file to its end."""
    from edge_runtime import listening  # the speech engine loads only here

    if list_devices:
        listening.print_devices()
        return
    runtime = _load(config_path, home_path, profile)
    _setup_logging("WARNING")
    cascade = _cascade(runtime)
    try:
        listening.listen(runtime, cascade, wav_path, device, as_json)
    except listening.ListenError as exc:
        _fail(str(exc))


@main.command()
@PROFILE_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the profiles and the match as JSON.")
def profiles(profile: str | None, as_json: bool) -> None:
    """List the device profiles and say which one this machine matches, and why."""
    try:
        known = load_profiles()
        facts = MachineFacts.probe()
        selection = select_profile(known, facts, profile)
    except ConfigError as exc:
        _fail(str(exc))
        raise
    if as_json:
        click.echo(
            json.dumps(
                {
                    "machine": {
                        "arch": facts.arch,
                        "cpu": facts.cpu_model,
                        "cores": facts.cores,
                        "ram_mb": facts.ram_mb,
                        "device_tree_model": facts.device_tree_model,
                        "nv_tegra_release": facts.nv_tegra_release,
                    },
                    "selected": selection.profile.id,
                    "why": selection.why,
                    "profiles": [
                        {
                            **m.profile.model_dump(mode="json"),
                            "matches": m.matches,
                            "reasons": m.reasons,
                        }
                        for m in selection.matches
                    ],
                },
                indent=2,
            )
        )
        return
    click.echo(f"{'profile':<18} {'match':<6} {'RAM budget':>10}  {'tiers':<24} providers")
    for match in sorted(selection.matches, key=lambda m: m.profile.id):
        p = match.profile
        mark = "*" if p.id == selection.profile.id else " "
        click.echo(
            f"{mark}{p.id:<17} {'yes' if match.matches else 'no':<6} {p.ram_budget_mb:>7} MB  "
            f"{','.join(p.tiers.enabled()):<24} {' > '.join(p.execution_providers)}"
        )
    click.echo(
        f"\nThis machine: {facts.cpu_model}, {facts.arch}, {facts.cores} cores, "
        f"{facts.ram_mb} MB RAM."
    )
    click.echo(f"Using {selection.profile.id}: {selection.why}")


@main.command()
@CONFIG_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the peers as JSON.")
@click.option("--wait", "listen_s", default=1.0, show_default=True, help="Seconds to listen.")
def peers(config_path: Path | None, as_json: bool, listen_s: float) -> None:
    """Show the live network: every node's status, profile, tiers, domains and load."""
    from edge_runtime.config import load_config
    from edge_runtime.mesh.watch import BrokerUnreachable, snapshot, table_lines

    config = _or_fail(lambda: load_config(config_path))
    try:
        rows = snapshot(config, listen_s)
    except BrokerUnreachable as exc:
        _fail(f"{exc} (set broker.host/port in the config)")
        return
    if as_json:
        click.echo(json.dumps([row.to_json() for row in rows], indent=2))
    elif not rows:
        click.echo(f"no nodes under '{config.topic_prefix}/' on the broker")
    else:
        for line in table_lines(rows):
            click.echo(line)


@main.command()
@CONFIG_OPTION
@HOME_OPTION
@PROFILE_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@click.option("--timeout", "timeout_s", default=3.0, show_default=True, help="Broker seconds.")
def doctor(
    config_path: Path | None,
    home_path: Path | None,
    profile: str | None,
    as_json: bool,
    timeout_s: float,
) -> None:
    """Check config, home, models, audio, broker and profile fit; say what to fix.

    Without --config it checks the service's /etc/edge-runtime/config.yaml when there is one.
    Exit code 1 when a check fails.
    """
    from edge_runtime.doctor import default_config, report_lines, run_checks

    _setup_logging("CRITICAL")  # the checks report what the loggers would say
    checks = run_checks(default_config(config_path), home_path, profile, timeout_s)
    failed = any(check.status == "fail" for check in checks)
    if as_json:
        document = {"ok": not failed, "checks": [check.to_json() for check in checks]}
        click.echo(json.dumps(document, indent=2))
    else:
        for line in report_lines(checks):
            click.echo(line)
    sys.exit(1 if failed else 0)


@main.command()
@CONFIG_OPTION
@PROFILE_OPTION
@click.option("--quick", is_flag=True, help="Fewer repetitions: done in under 20 s.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Also write JSON here.")
@click.option(
    "--compare",
    "old_path",
    type=click.Path(path_type=Path),
    help="An earlier --json file: show the change of every figure.",
)
@click.option(
    "--against",
    "new_path",
    type=click.Path(path_type=Path),
    help="With --compare: compare with this --json file instead of measuring now.",
)
def bench(
    config_path: Path | None,
    profile: str | None,
    quick: bool,
    json_path: Path | None,
    old_path: Path | None,
    new_path: Path | None,
) -> None:
    """Measure this machine (CPU, memory, models, speech, NLU, MQTT); say what it can host."""
    from edge_runtime.bench import plan, report, results, runner

    try:
        old = results.read_report(old_path) if old_path else None
        new = results.read_report(new_path) if new_path else None
    except results.BenchFileError as exc:
        _fail(str(exc))
        raise
    if new is not None:
        if old is None or old_path is None or new_path is None:
            _fail("--against needs --compare OLD.json")
            raise AssertionError  # unreachable: _fail exits
        for line in report.compare_lines(old, new, old_path.name, new_path.name):
            click.echo(line)
        return
    _setup_logging("WARNING")
    settings = plan.QUICK if quick else plan.DEFAULT
    measured = _or_fail(
        lambda: runner.run_bench(
            settings, config_path, profile, lambda line: click.echo(line, err=True)
        )
    )
    lines = report.report_lines(measured)
    if old is not None and old_path is not None:
        lines += report.compare_lines(old, measured, old_path.name)
    for line in lines:
        click.echo(line)
    if json_path is not None:
        try:
            json_path.write_text(results.report_json(measured) + "\n", encoding="utf-8")
        except OSError as exc:
            _fail(f"cannot write {json_path}: {exc.strerror or exc}")
        click.echo(f"\nwrote {json_path}", err=True)


@main.group()
def models() -> None:
    """The model catalog: list, verify, export."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the catalog as JSON.")
@click.option("--digest", is_flag=True, help="Also hash the speech models (reads every file).")
def models_list(as_json: bool, digest: bool) -> None:
    """List the language models of the catalog and the installed speech models."""
    from edge_runtime.inference.catalog import load_catalog
    from edge_runtime.stt.models import speech_models

    catalog = _or_fail(load_catalog)
    speech = speech_models(digest=digest)
    if as_json:
        entries = [{**m.model_dump(mode="json"), "size": m.size} for m in catalog.models]
        entries += [
            {
                "id": m.id,
                "task": "speech-to-text",
                "engine": m.engine,
                "languages": [m.language],
                "path": str(m.path),
                "size": m.size_bytes,
                "sha256": m.sha256,
                "source": m.source,
            }
            for m in speech
        ]
        click.echo(json.dumps(entries, indent=2))
        return
    click.echo(
        f"{'id':<28} {'task':<20} {'quant':<13} {'params':>8} {'size':>9} {'min RAM':>8}  licence"
    )
    for m in catalog.models:
        click.echo(
            f"{m.id:<28} {m.task:<20} {m.quantization:<13} {m.parameters / 1e6:>7.1f}M "
            f"{m.size / 2**20:>7.1f}MB {m.min_ram_mb:>6}MB  {m.license}"
        )
    click.echo(f"\n{'speech model':<28} {'engine':<13} {'lang':<5} {'size':>9}  sha256 / source")
    for sm in speech:
        click.echo(
            f"{sm.id:<28} {sm.engine:<13} {sm.language:<5} {sm.size_bytes / 2**20:>7.1f}MB  "
            f"{sm.sha256 or '(--digest)'}  {sm.source}"
        )


@models.command("verify")
@click.argument("model_ids", nargs=-1)
def models_verify(model_ids: tuple[str, ...]) -> None:
    """Check every file's size and sha256 against the catalog; exit 2 on any mismatch."""
    from edge_runtime.inference.catalog import ModelIntegrityError, load_catalog, verify_model

    catalog = _or_fail(load_catalog)
    try:
        chosen = [catalog.get(i) for i in model_ids] if model_ids else list(catalog.models)
    except KeyError as exc:
        _fail(str(exc.args[0]))
        raise
    if not chosen:
        _fail("the catalog lists no models; nothing to verify")
    bad = 0
    for model in chosen:
        try:
            verify_model(model)
            click.echo(f"ok    {model.id} ({len(model.files)} files)")
        except ModelIntegrityError as exc:
            bad += 1
            click.echo(f"BAD   {model.id}: {exc}")
    if bad:
        _fail(f"{bad} model(s) failed verification; they will not be loaded")


@models.command("export")
@click.argument("source", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--task",
    type=click.Choice(
        ["sentence-embedding", "token-classification", "sequence-classification", "text-generation"]
    ),
    required=True,
)
@click.option(
    "--quantize",
    type=click.Choice(["arm64", "avx2", "avx512_vnni", "int4", "int8", "none"]),
    required=True,
    help="Encoders: the int8 kernels to target (arm64, avx2, avx512_vnni). Generators: "
    "int4 or int8 weights. none keeps fp32.",
)
@click.option("--id", "model_id", help="Catalog id (default: the source folder's name).")
@click.option(
    "--models-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write files and catalog (default: the shipped models/).",
)
@click.option("--source-note", help="Where the weights came from, for the catalog.")
@click.option("--license", "licence", help="Licence, when the source's README does not say.")
@click.option(
    "--block-size",
    type=click.Choice([str(size) for size in BLOCK_SIZES]),
    help=f"Generators: weights per quantization scale (default {DEFAULT_BLOCK}; smaller "
    "follows the weights more closely, larger decodes faster).",
)
def models_export(
    source: Path,
    task: str,
    quantize: str,
    model_id: str | None,
    models_dir: Path | None,
    source_note: str | None,
    licence: str | None,
    block_size: str | None,
) -> None:
    """Export a Hugging Face model directory to (int8) ONNX and add it to the catalog."""
    from edge_runtime.inference.catalog import models_dir as shipped_models_dir
    from edge_runtime.inference.export import ExportError, export

    try:
        result = export(
            source,
            task,  # type: ignore[arg-type]  # click.Choice guarantees a Task
            quantize,  # type: ignore[arg-type]
            model_id or source.resolve().name.lower(),
            models_dir or shipped_models_dir(),
            lambda line: click.echo(line, err=True),
            source_note,
            licence,
            int(block_size) if block_size else None,
        )
    except ExportError as exc:
        _fail(str(exc))
        raise
    agreement = (
        "min cosine of sentence embeddings"
        if task == "sentence-embedding"
        else "same greedy answer as fp32 on check sentences"
        if task == "text-generation"
        else "same label as fp32 on check sentences"
    )
    click.echo(
        f"max deviation from fp32: {result.max_deviation:.4f} ({agreement} {result.agreement:.4f})"
    )
    click.echo(
        f"wrote {result.directory} and its catalog entry ({result.model.size / 2**20:.1f} MB)"
    )
