"""`edge-runtime doctor` as a real command: real brokers (one that wants a password), a port
where nothing listens, a damaged copy of the models, and broken YAML."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO, TIMEOUT_S, Broker, free_port, mosquitto_binary, wait_for_port
from test_catalog import copy_models, flip_one_weight_byte

from edge_runtime.config import VoiceConfig
from edge_runtime.doctor import check_denoiser, check_memory, check_vad
from edge_runtime.profiles import MachineFacts, load_profiles, select_profile

DEMO_HOME = REPO / "edge_runtime" / "data" / "home.yaml"
USED_MODEL = "edge-intent-minilm-int8"
"""The encoder tier's model in the x86-64 profile, which this machine (and CI) matches."""


def run_doctor(
    config: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge_runtime", "doctor", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


def doctor(
    config: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    """Run the command with --json; its exit code and its checks by name."""
    result = run_doctor(config, "--json", *args, env=env)
    document = json.loads(result.stdout)
    assert document["ok"] == (result.returncode == 0), result.stderr
    return result.returncode, {check["name"]: check for check in document["checks"]}


def write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def good_config(tmp_path: Path, broker: Broker) -> Path:
    shutil.copy(DEMO_HOME, tmp_path / "home.yaml")
    broker_config = {"host": "127.0.0.1", "port": broker.port}
    return write(tmp_path / "node.yaml", {"home": "home.yaml", "broker": broker_config})


@pytest.fixture
def password_broker(tmp_path: Path) -> Iterator[int]:
    """A Mosquitto that lets in `edge` with password `s3cret`, and nobody else."""
    directory = tmp_path / "secure-broker"
    directory.mkdir()
    passwords = directory / "passwords"
    subprocess.run(
        ["mosquitto_passwd", "-c", "-b", str(passwords), "edge", "s3cret"],
        check=True,
        capture_output=True,
    )
    passwords.chmod(0o600)
    port = free_port()
    config = directory / "mosquitto.conf"
    # `user`: Mosquitto started as root would drop to `mosquitto` and not read the file.
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {passwords}\n"
        f"user {getpass.getuser()}\n"
    )
    with (directory / "mosquitto.log").open("ab") as log:
        process = subprocess.Popen(
            [mosquitto_binary(), "-c", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
    wait_for_port(port)
    yield port
    process.terminate()
    process.wait(timeout=TIMEOUT_S)


def test_a_healthy_node_passes(good_config: Path) -> None:
    code, checks = doctor(good_config)
    assert code == 0
    assert checks["config"]["status"] == "ok"
    home = checks["home"]
    assert (home["status"], home["detail"]) == (
        "ok",
        f"{good_config.parent}/home.yaml: 7 areas, 21 entities",
    )
    assert checks["broker"]["status"] == "ok"
    assert checks["mqtt login"] == {
        "name": "mqtt login",
        "status": "ok",
        "detail": "logged in as anonymous",
        "fix": "",
    }
    assert checks[f"model {USED_MODEL}"]["status"] == "ok"
    assert checks["memory"]["status"] in ("ok", "warn")
    assert checks["audio"]["status"] in ("ok", "warn")  # no sound card is not a failure
    assert checks["denoiser"]["status"] == "ok"  # script/bootstrap installs RNNoise
    assert checks["denoiser"]["detail"].endswith("librnnoise.so")


def test_a_broker_that_is_not_there_fails_with_a_fix(tmp_path: Path) -> None:
    port = free_port()
    config = write(tmp_path / "node.yaml", {"broker": {"host": "127.0.0.1", "port": port}})
    code, checks = doctor(config)
    assert code == 1
    broker = checks["broker"]
    assert broker["status"] == "fail"
    assert broker["detail"] == f"127.0.0.1:{port}: Connection refused"
    assert "start the broker" in broker["fix"]
    assert "mqtt login" not in checks  # not failed twice for one cause


def test_credentials_are_tried_with_a_real_connect(tmp_path: Path, password_broker: int) -> None:
    (tmp_path / "password").write_text("s3cret\n")
    broker = {"host": "127.0.0.1", "port": password_broker, "username": "edge"}
    right = write(tmp_path / "right.yaml", {"broker": {**broker, "password_file": "password"}})
    code, checks = doctor(right)
    assert checks["mqtt login"]["detail"] == "logged in as edge"
    assert code == 0

    (tmp_path / "wrong").write_text("guess\n")
    wrong = write(tmp_path / "wrong.yaml", {"broker": {**broker, "password_file": "wrong"}})
    code, checks = doctor(wrong)
    assert code == 1
    login = checks["mqtt login"]
    assert login["status"] == "fail"
    assert login["detail"] == "the broker refused edge: Not authorized"
    assert "broker.username and the password" in login["fix"]


def test_a_password_variable_that_is_not_set_is_named(tmp_path: Path, password_broker: int) -> None:
    broker = {"host": "127.0.0.1", "port": password_broker, "username": "edge"}
    config = write(tmp_path / "node.yaml", {"broker": {**broker, "password_env": "EDGE_PW_X"}})
    code, checks = doctor(config)
    assert code == 1
    assert checks["mqtt login"]["detail"] == (
        "broker.password_env names $EDGE_PW_X, which is not set"
    )
    code, checks = doctor(config, env={"EDGE_PW_X": "s3cret"})
    assert (code, checks["mqtt login"]["status"]) == (0, "ok")


def test_a_damaged_model_fails_when_the_profile_uses_it(tmp_path: Path, good_config: Path) -> None:
    models = copy_models(tmp_path / "models")
    flip_one_weight_byte(models / USED_MODEL / "model.onnx")
    code, checks = doctor(good_config, env={"EDGE_RUNTIME_MODELS": str(models)})
    assert code == 1
    damaged = checks[f"model {USED_MODEL}"]
    assert damaged["status"] == "fail"
    assert "model.onnx: sha256 mismatch" in damaged["detail"]
    assert "models verify" in damaged["fix"]
    others = [
        c for name, c in checks.items() if name.startswith("model ") and USED_MODEL not in name
    ]
    assert others and all(c["status"] == "ok" for c in others)


def test_a_damaged_model_no_tier_uses_only_warns(tmp_path: Path, good_config: Path) -> None:
    models = copy_models(tmp_path / "models")
    unused = next(p.name for p in models.iterdir() if p.is_dir() and p.name != USED_MODEL)
    (models / unused / "tokenizer.json").write_text("{}")
    code, checks = doctor(good_config, env={"EDGE_RUNTIME_MODELS": str(models)})
    assert code == 0
    assert checks[f"model {unused}"]["status"] == "warn"
    assert "truncated" in checks[f"model {unused}"]["detail"]


def test_a_mistyped_config_is_reported_with_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "node.yaml"
    config.write_text("node_id: kitchen\nbroker:\n  hots: localhost\n")
    code, checks = doctor(config)
    assert code == 1
    assert checks["config"]["status"] == "fail"
    assert checks["config"]["detail"] == f"{config}:3: broker.hots: unknown field"
    assert "broker" not in checks  # nothing is checked against a config that did not load


def test_text_output_says_what_failed_and_how_to_fix_it(tmp_path: Path) -> None:
    config = write(tmp_path / "node.yaml", {"home": "missing.yaml"})
    result = run_doctor(config)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    home = next(i for i, line in enumerate(lines) if line.startswith("FAIL  home"))
    assert "missing.yaml" in lines[home]
    assert lines[home + 1].strip().startswith("fix: correct the lines named above")


def test_a_profile_larger_than_the_machine_fails_the_memory_check() -> None:
    profiles = load_profiles()
    facts = MachineFacts.probe()
    small_machine = MachineFacts(**{**facts.__dict__, "ram_mb": 1024})
    selection = select_profile(profiles, small_machine, "jetson-orin-nano")
    check = check_memory(selection, small_machine, None)
    assert check.status == "fail"
    assert check.detail == "this machine has 1024 MB of RAM; jetson-orin-nano may use 2500 MB"


@pytest.mark.parametrize(("denoise", "status"), [("off", "ok"), (False, "ok"), ("always", "ok")])
def test_the_denoiser_check_follows_the_denoise_setting(denoise: str | bool, status: str) -> None:
    check = check_denoiser(VoiceConfig(stt_options={"denoise": denoise}))
    assert check.status == status
    assert ("not used" in check.detail) is (denoise != "always")


def test_a_bad_denoise_setting_fails_the_denoiser_check_naming_the_choices() -> None:
    check = check_denoiser(VoiceConfig(stt_options={"denoise": "yes"}))
    assert (check.status, check.detail) == (
        "fail",
        "voice.stt_options.denoise='yes': give one of auto, always, off",
    )


def test_the_vad_check_names_the_onnx_model_it_runs() -> None:
    check = check_vad(VoiceConfig())
    assert check.status == "ok"
    assert "silero_vad_16k_op15.onnx (onnxruntime)" in check.detail
    assert check_vad(VoiceConfig(enabled=False)).detail == "not used (voice.enabled: false)"
