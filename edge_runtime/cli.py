"""The `edge-runtime` command. It only parses arguments, calls the library and prints.

edge-runtime run [--config node.yaml]        the daemon (MQTT)
edge-runtime ask "turn on the kitchen lights"
edge-runtime nlu --home home.yaml --jsonl    one JSON answer per stdin line
edge-runtime profiles                        device profiles and which one fits
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from edge_runtime import __version__
from edge_runtime.messages import BadRequest, Recognition, TextRequest
from edge_runtime.nlu.base import NluError
from edge_runtime.nlu.cascade import Cascade
from edge_runtime.profiles import MachineFacts, load_profiles, select_profile
from edge_runtime.runtime import Runtime, load_runtime
from edge_runtime.yamlload import ConfigError

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
    logging.basicConfig(
        level=level,
        format=f"%(asctime)s %(levelname)s node={node_id} %(name)s: %(message)s",
        force=True,
    )


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def _load(config_path: Path | None, home_path: Path | None, profile: str | None) -> Runtime:
    try:
        return load_runtime(config_path, home_path, profile)
    except ConfigError as exc:
        _fail(str(exc))
        raise  # unreachable: _fail exits


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

    runtime = _load(config_path, home_path, profile)
    _setup_logging(runtime.config.log_level, runtime.config.node_id)
    daemon = Daemon(runtime, _cascade(runtime))
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
