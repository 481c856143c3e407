"""systemd/install.sh and the unit it installs, checked by systemd's own tools.

install.sh runs into a temporary root (`--destdir`), with this checkout's .venv as the
environment (`--venv`): creating a venv and pip-installing is what pip's own tests are for.
`systemd-analyze verify` and `systemd-analyze security --offline=yes` judge the unit files.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

INSTALL = REPO / "systemd" / "install.sh"
UNIT = REPO / "systemd" / "edge-runtime.service"
VENV = Path(sys.prefix)
MAX_EXPOSURE = 2.5
"""systemd-analyze's "OK" ends at 2.5 (then MEDIUM, EXPOSED, UNSAFE)."""


def systemd_analyze(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("systemd-analyze")
    if binary is None:
        pytest.fail("systemd-analyze is not installed: run script/test, which installs systemd")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60, check=False)


def exposure(*args: str) -> float:
    result = systemd_analyze("security", "--offline=yes", "--no-pager", *args)
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert found, result.stdout + result.stderr
    return float(found.group(1))


def run_install(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(INSTALL), "--destdir", str(root), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def install(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = run_install(root, "--venv", str(VENV), *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def listing(root: Path) -> list[tuple[str, str, str, int]]:
    """(path, mode, sha256 of a file, mtime in ns) for everything under root."""
    rows = []
    for path in sorted(root.rglob("*")):
        stat = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "-"
        rows.append((str(path.relative_to(root)), oct(stat.st_mode), digest, stat.st_mtime_ns))
    return rows


def test_the_shipped_unit_rates_ok_in_systemds_security_analysis() -> None:
    assert exposure(str(UNIT)) <= MAX_EXPOSURE


def test_install_writes_the_expected_tree(tmp_path: Path) -> None:
    root = tmp_path / "root"
    install(root, "--profile", "raspberry-pi-4")
    files = {str(p.relative_to(root)): oct(p.stat().st_mode)[-4:] for p in root.rglob("*")}
    assert files == {
        "etc": "0755",
        "etc/edge-runtime": "0750",
        "etc/edge-runtime/config.yaml": "0640",
        "etc/edge-runtime/home.yaml": "0640",
        "etc/systemd": "0755",
        "etc/systemd/system": "0755",
        "etc/systemd/system/edge-runtime.service": "0644",
        "etc/sysusers.d": "0755",
        "etc/sysusers.d/edge-runtime.conf": "0644",
        "var": "0755",
        "var/lib": "0755",
        "var/lib/edge-runtime": "0750",
    }
    unit = (root / "etc/systemd/system/edge-runtime.service").read_text()
    assert (
        f"\nExecStart={VENV}/bin/edge-runtime run --config /etc/edge-runtime/config.yaml\n" in unit
    )
    assert "\nMemoryMax=600M\n" in unit  # the Pi 4 profile's ram_budget_mb
    config = (root / "etc/edge-runtime/config.yaml").read_text()
    assert "\nprofile: raspberry-pi-4\n" in config
    home = (REPO / "edge_runtime/data/home.yaml").read_text()
    assert (root / "etc/edge-runtime/home.yaml").read_text() == home
    sysusers = (root / "etc/sysusers.d/edge-runtime.conf").read_text()
    assert 'u edge-runtime - "edge-runtime voice assistant node" /var/lib/edge-runtime' in sysusers


def test_the_installed_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    root = tmp_path / "root"
    install(root, "--profile", "raspberry-pi-4")
    unit = root / "etc/systemd/system/edge-runtime.service"
    result = systemd_analyze("verify", str(unit))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""


def test_installing_twice_changes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    install(root, "--profile", "raspberry-pi-5")
    first = listing(root)
    second_run = install(root, "--profile", "raspberry-pi-5")
    assert listing(root) == first
    assert "wrote" not in second_run.stdout


def test_a_users_config_is_never_overwritten(tmp_path: Path) -> None:
    root = tmp_path / "root"
    config = root / "etc/edge-runtime/config.yaml"
    config.parent.mkdir(parents=True)
    config.write_text("node_id: mine\n")
    result = install(root, "--profile", "raspberry-pi-4")
    assert config.read_text() == "node_id: mine\n"
    assert "kept /etc/edge-runtime/config.yaml" in result.stdout


def test_a_jetson_gets_the_gpu_drop_in_and_still_rates_ok(tmp_path: Path) -> None:
    root = tmp_path / "root"
    install(root, "--profile", "jetson-orin-nano")
    drop_in = root / "etc/systemd/system/edge-runtime.service.d/jetson.conf"
    assert drop_in.read_text() == (REPO / "systemd/jetson.conf").read_text()
    unit = (root / "etc/systemd/system/edge-runtime.service").read_text()
    assert "\nMemoryMax=2500M\n" in unit
    # --root reads the unit with its drop-ins, as systemd would load it.
    jetson = exposure(f"--root={root}", "edge-runtime.service")
    assert jetson <= MAX_EXPOSURE
    assert jetson > exposure(str(UNIT))  # the GPU's devices are the price

    install(root, "--profile", "raspberry-pi-5")  # the profile changed: the drop-in goes
    assert not drop_in.exists()


def test_uninstall_removes_the_service_and_keeps_config_and_state(tmp_path: Path) -> None:
    root = tmp_path / "root"
    install(root, "--profile", "raspberry-pi-4")
    result = install(root, "--uninstall")
    left = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert left == ["etc/edge-runtime/config.yaml", "etc/edge-runtime/home.yaml"]
    assert (root / "var/lib/edge-runtime").is_dir()
    assert "--purge removes them" in result.stdout
    install(root, "--uninstall", "--purge")
    assert not (root / "etc/edge-runtime").exists()
    assert not (root / "var/lib/edge-runtime").exists()


def test_an_unknown_profile_is_refused_naming_the_known_ones(tmp_path: Path) -> None:
    result = run_install(tmp_path, "--venv", str(VENV), "--profile", "pi")
    assert result.returncode == 2
    assert "unknown profile 'pi' (known: jetson-orin-nano raspberry-pi-4" in result.stderr


def test_a_tree_install_refuses_to_build_a_venv_that_could_not_move(tmp_path: Path) -> None:
    result = run_install(tmp_path, "--profile", "raspberry-pi-4")
    assert result.returncode == 2
    assert "with --destdir use --venv or --no-venv" in result.stderr
