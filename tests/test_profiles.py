"""Device profiles: the shipped ones load, fake machine roots are recognised, overrides win."""

from __future__ import annotations

import dataclasses
import platform
from pathlib import Path

import pytest

from edge_runtime.profiles import (
    DeviceProfile,
    MachineFacts,
    evaluate,
    load_profiles,
    select_profile,
)
from edge_runtime.yamlload import ConfigError

SHIPPED = ["jetson-orin-nano", "raspberry-pi-4", "raspberry-pi-5", "x86-64"]

PI4_CPUINFO = """\
processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41
CPU part\t: 0xd08

processor\t: 1
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid

processor\t: 2
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid

processor\t: 3
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid

Hardware\t: BCM2835
Revision\t: c03114
Model\t\t: Raspberry Pi 4 Model B Rev 1.4
"""

A76_FEATURES = (
    "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop"
    " asimddp"
)

PI5_CPUINFO = f"""\
processor\t: 0
Features\t: {A76_FEATURES}
CPU part\t: 0xd0b

processor\t: 1
Features\t: {A76_FEATURES}

Revision\t: d04170
Model\t\t: Raspberry Pi 5 Model B Rev 1.0
"""

JETSON_CPUINFO = """\
processor\t: 0
model name\t: ARMv8 Processor rev 1 (v8l)
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimddp

processor\t: 1
model name\t: ARMv8 Processor rev 1 (v8l)
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimddp
"""

X86_CPUINFO = """\
processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) N100
flags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2 avx avx2 fma

processor\t: 1
vendor_id\t: GenuineIntel
model name\t: Intel(R) N100
flags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2 avx avx2 fma
"""


def meminfo(total_kb: int) -> str:
    return (
        f"MemTotal:       {total_kb} kB\nMemFree:         123456 kB\nMemAvailable:    234567 kB\n"
    )


def fake_root(
    root: Path,
    cpuinfo: str,
    total_kb: int,
    model: str | None = None,
    tegra_release: str | None = None,
) -> Path:
    """A directory laid out like `/` of the machine: only the files `probe` reads."""
    (root / "proc").mkdir(parents=True)
    (root / "proc/cpuinfo").write_text(cpuinfo)
    (root / "proc/meminfo").write_text(meminfo(total_kb))
    if model is not None:
        (root / "proc/device-tree").mkdir()
        # Device trees end their strings with a NUL byte.
        (root / "proc/device-tree/model").write_bytes(model.encode() + b"\x00")
    if tegra_release is not None:
        (root / "etc").mkdir()
        (root / "etc/nv_tegra_release").write_text(tegra_release)
    return root


def aarch64_facts(root: Path) -> MachineFacts:
    """`probe` takes the architecture from this machine; the boards under test are aarch64."""
    return dataclasses.replace(MachineFacts.probe(root), arch="aarch64")


def profile_text(profile_id: str, extra: str = "") -> str:
    return (
        f"# a test board\nid: {profile_id}\nname: Test Board\n"
        f"detect:\n  arch: [aarch64]\n{extra}ram_budget_mb: 256\n"
    )


@pytest.fixture(scope="module")
def shipped() -> dict[str, DeviceProfile]:
    return load_profiles()


# --- shipped profiles -------------------------------------------------------------------------


def test_the_four_shipped_profiles_load(shipped: dict[str, DeviceProfile]) -> None:
    assert sorted(shipped) == SHIPPED
    assert all(profile.id == key for key, profile in shipped.items())


def test_shipped_profiles_carry_budgets_and_providers(shipped: dict[str, DeviceProfile]) -> None:
    assert shipped["raspberry-pi-4"].ram_budget_mb == 600
    assert shipped["raspberry-pi-4"].memory_arena is False
    assert shipped["raspberry-pi-5"].threads.intra_op == 4
    assert shipped["jetson-orin-nano"].execution_providers[-1] == "CPUExecutionProvider"
    assert shipped["jetson-orin-nano"].detect.nv_tegra_release is True
    assert shipped["x86-64"].detect.arch == ("x86_64", "AMD64")
    assert all(p.tiers.enabled()[0] == "rules" for p in shipped.values())


# --- reading a machine ------------------------------------------------------------------------


def test_probe_reads_a_pi4_root_and_strips_the_device_tree_nul(tmp_path: Path) -> None:
    root = fake_root(tmp_path, PI4_CPUINFO, 3884376, model="Raspberry Pi 4 Model B Rev 1.4")

    facts = MachineFacts.probe(root)

    assert facts.arch == platform.machine()
    assert facts.device_tree_model == "Raspberry Pi 4 Model B Rev 1.4"
    assert facts.nv_tegra_release is False
    assert facts.cpu_model == "Raspberry Pi 4 Model B Rev 1.4"
    assert facts.cpu_flags == frozenset({"fp", "asimd", "evtstrm", "crc32", "cpuid"})
    assert facts.ram_mb == 3884376 // 1024
    assert facts.cores == 4


def test_probe_reads_x86_model_name_and_flags(tmp_path: Path) -> None:
    facts = MachineFacts.probe(fake_root(tmp_path, X86_CPUINFO, 16_000_000))

    assert facts.device_tree_model is None
    assert facts.cpu_model == "Intel(R) N100"
    assert {"avx2", "fma"} <= facts.cpu_flags
    assert facts.ram_mb == 15625
    assert facts.cores == 2


def test_probe_of_an_empty_root_gives_neutral_facts(tmp_path: Path) -> None:
    facts = MachineFacts.probe(tmp_path)

    assert facts.device_tree_model is None
    assert facts.nv_tegra_release is False
    assert facts.cpu_flags == frozenset()
    assert facts.ram_mb == 0
    assert facts.cores == 1


def test_probe_sees_the_tegra_release_file(tmp_path: Path) -> None:
    root = fake_root(
        tmp_path, JETSON_CPUINFO, 7_800_000, tegra_release="# R36 (release), REVISION: 4.0\n"
    )

    facts = MachineFacts.probe(root)

    assert facts.nv_tegra_release is True
    assert facts.cpu_model == "ARMv8 Processor rev 1 (v8l)"


# --- selecting a profile ----------------------------------------------------------------------


def test_pi4_tree_selects_raspberry_pi_4_citing_model_and_arch(
    tmp_path: Path, shipped: dict[str, DeviceProfile]
) -> None:
    root = fake_root(tmp_path, PI4_CPUINFO, 3884376, model="Raspberry Pi 4 Model B Rev 1.4")

    selection = select_profile(shipped, aarch64_facts(root))

    assert selection.profile.id == "raspberry-pi-4"
    assert (
        selection.why == "device-tree model 'Raspberry Pi 4 Model B Rev 1.4'; architecture aarch64"
    )


def test_pi4_on_a_32_bit_kernel_still_selects_raspberry_pi_4(
    tmp_path: Path, shipped: dict[str, DeviceProfile]
) -> None:
    root = fake_root(tmp_path, PI4_CPUINFO, 1_900_000, model="Raspberry Pi 400 Rev 1.0")
    facts = dataclasses.replace(MachineFacts.probe(root), arch="armv7l")

    selection = select_profile(shipped, facts)

    assert selection.profile.id == "raspberry-pi-4"
    assert "architecture armv7l" in selection.why


def test_pi5_tree_selects_raspberry_pi_5(tmp_path: Path, shipped: dict[str, DeviceProfile]) -> None:
    root = fake_root(tmp_path, PI5_CPUINFO, 8_200_000, model="Raspberry Pi 5 Model B Rev 1.0")

    selection = select_profile(shipped, aarch64_facts(root))

    assert selection.profile.id == "raspberry-pi-5"
    assert (
        selection.why == "device-tree model 'Raspberry Pi 5 Model B Rev 1.0'; architecture aarch64"
    )


def test_pi5_tree_is_not_mistaken_for_a_pi4(
    tmp_path: Path, shipped: dict[str, DeviceProfile]
) -> None:
    root = fake_root(tmp_path, PI5_CPUINFO, 8_200_000, model="Raspberry Pi 5 Model B Rev 1.0")

    matches = {m.profile.id: m for m in select_profile(shipped, aarch64_facts(root)).matches}

    assert matches["raspberry-pi-4"].matches is False
    assert (
        "no: device-tree model 'Raspberry Pi 5 Model B Rev 1.0'"
        in matches["raspberry-pi-4"].reasons
    )


def test_jetson_with_tegra_release_selects_jetson_orin_nano(
    tmp_path: Path, shipped: dict[str, DeviceProfile]
) -> None:
    root = fake_root(
        tmp_path,
        JETSON_CPUINFO,
        7_800_000,
        model="NVIDIA Jetson Orin Nano Developer Kit",
        tegra_release="# R36 (release), REVISION: 4.0, GCID: 0, BOARD: generic, EABI: aarch64\n",
    )

    selection = select_profile(shipped, aarch64_facts(root))

    assert selection.profile.id == "jetson-orin-nano"
    assert selection.why == "/etc/nv_tegra_release present; architecture aarch64"


def test_jetson_reasons_list_every_profile_with_its_evidence(
    tmp_path: Path, shipped: dict[str, DeviceProfile]
) -> None:
    root = fake_root(tmp_path, JETSON_CPUINFO, 7_800_000, tegra_release="# R36\n")

    selection = select_profile(shipped, aarch64_facts(root))

    assert selection.matches[0].profile.id == "jetson-orin-nano"
    reasons = {m.profile.id: m.reasons for m in selection.matches}
    assert reasons["jetson-orin-nano"] == [
        "ok: /etc/nv_tegra_release present",
        "ok: architecture aarch64",
    ]
    assert reasons["raspberry-pi-5"] == [
        "no: device-tree model '(none)'",
        "ok: architecture aarch64",
    ]
    assert reasons["x86-64"] == ["no: architecture aarch64"]


def test_x86_tree_selects_x86_64(tmp_path: Path, shipped: dict[str, DeviceProfile]) -> None:
    facts = dataclasses.replace(
        MachineFacts.probe(fake_root(tmp_path, X86_CPUINFO, 16_000_000)), arch="x86_64"
    )

    selection = select_profile(shipped, facts)

    assert selection.profile.id == "x86-64"
    assert selection.why == "architecture x86_64"


def test_machine_that_matches_no_profile_says_so_and_lists_the_reasons(
    tmp_path: Path, shipped: dict[str, DeviceProfile]
) -> None:
    facts = dataclasses.replace(MachineFacts.probe(tmp_path), arch="riscv64")

    selection = select_profile(shipped, facts)

    # An unknown machine gets the most modest CPU-only profile, never CUDA with a big budget.
    assert selection.profile.id == "raspberry-pi-4"
    assert selection.why == (
        "no profile matches this machine; using the most modest one for its architecture "
        "(600 MB, CPUExecutionProvider)"
    )
    assert not any(m.matches for m in selection.matches)
    assert all(r.startswith("no: ") for m in selection.matches for r in m.reasons[:1])


def test_ram_rules_compare_against_the_probed_memory(tmp_path: Path) -> None:
    profile = DeviceProfile.model_validate(
        {
            "id": "big-board",
            "name": "Big Board",
            "detect": {"min_ram_mb": 4096, "cpu_flags": ["asimddp"]},
            "ram_budget_mb": 1000,
        }
    )
    facts = MachineFacts.probe(
        fake_root(tmp_path, PI5_CPUINFO, 2_000_000, model="Raspberry Pi 5 Model B Rev 1.0")
    )

    match = evaluate(profile, facts)

    assert match.matches is False
    assert match.score == 1
    assert match.reasons == ["ok: CPU flag asimddp", "no: RAM 1953 MB >= 4096"]


# --- overrides --------------------------------------------------------------------------------


def test_profile_override_wins_over_detection(
    tmp_path: Path, shipped: dict[str, DeviceProfile]
) -> None:
    root = fake_root(tmp_path, PI4_CPUINFO, 3884376, model="Raspberry Pi 4 Model B Rev 1.4")

    selection = select_profile(shipped, aarch64_facts(root), override="x86-64")

    assert selection.profile.id == "x86-64"
    assert selection.why == "chosen with --profile / config"


def test_override_auto_means_detect(tmp_path: Path, shipped: dict[str, DeviceProfile]) -> None:
    root = fake_root(tmp_path, PI5_CPUINFO, 8_200_000, model="Raspberry Pi 5 Model B Rev 1.0")

    assert select_profile(shipped, aarch64_facts(root), override="auto").profile.id == (
        "raspberry-pi-5"
    )


def test_unknown_override_lists_the_known_profiles(
    tmp_path: Path, shipped: dict[str, DeviceProfile]
) -> None:
    with pytest.raises(ConfigError) as caught:
        select_profile(shipped, MachineFacts.probe(tmp_path), override="raspberry-pi-9")

    assert str(caught.value) == (
        "unknown device profile 'raspberry-pi-9' "
        "(known: jetson-orin-nano, raspberry-pi-4, raspberry-pi-5, x86-64)"
    )
    assert caught.value.path == "--profile"


# --- profile files ----------------------------------------------------------------------------


def test_profiles_are_loaded_from_a_given_directory(tmp_path: Path) -> None:
    (tmp_path / "test-board.yaml").write_text(profile_text("test-board"))
    (tmp_path / "notes.txt").write_text("not a profile")

    profiles = load_profiles(tmp_path)

    assert list(profiles) == ["test-board"]
    assert profiles["test-board"].execution_providers == ("CPUExecutionProvider",)
    assert profiles["test-board"].tiers.enabled() == ["rules"]


def test_profile_whose_id_differs_from_its_file_name_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "test-board.yaml"
    path.write_text(
        "id: other-board\nname: Test Board\ndetect: {arch: [aarch64]}\nram_budget_mb: 256\n"
    )

    with pytest.raises(ConfigError) as caught:
        load_profiles(tmp_path)

    assert caught.value.problems == [
        f"{path}:1: id: 'other-board' must equal the file name 'test-board'"
    ]


def test_id_mismatch_names_the_line_of_the_id_after_a_comment(tmp_path: Path) -> None:
    path = tmp_path / "test-board.yaml"
    path.write_text(profile_text("other-board"))  # comment on line 1, id on line 2

    with pytest.raises(ConfigError) as caught:
        load_profiles(tmp_path)

    assert caught.value.problems == [
        f"{path}:2: id: 'other-board' must equal the file name 'test-board'"
    ]


def test_profile_with_an_unknown_field_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "test-board.yaml"
    path.write_text(profile_text("test-board", extra="  ram_mb: 512\n"))

    with pytest.raises(ConfigError) as caught:
        load_profiles(tmp_path)

    assert caught.value.problems == [f"{path}:6: detect.ram_mb: unknown field"]


def test_profile_with_a_too_small_budget_and_unknown_optimisation_lists_both(
    tmp_path: Path,
) -> None:
    path = tmp_path / "test-board.yaml"
    path.write_text(
        "id: test-board\nname: Test\ndetect: {}\nram_budget_mb: 32\ngraph_optimization: max\n"
    )

    with pytest.raises(ConfigError) as caught:
        load_profiles(tmp_path)

    assert caught.value.problems == [
        f"{path}:4: ram_budget_mb: Input should be greater than or equal to 64",
        f"{path}:5: graph_optimization: Input should be 'disable', 'basic', 'extended' or 'all'",
    ]


def test_directory_without_profiles_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_profiles(tmp_path)

    assert caught.value.problems == [f"{tmp_path}: no device profiles (*.yaml) found"]
