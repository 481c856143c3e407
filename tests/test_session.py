"""onnxruntime sessions from device profiles: providers with logged fallbacks, threads, arena.

Real onnxruntime throughout: options are read back from `SessionOptions` and
from sessions opened on the shipped (read-only) models.
"""

from __future__ import annotations

import logging
from pathlib import Path

import onnxruntime as ort
import pytest

from edge_runtime.inference.catalog import CatalogModel, describe_files, load_catalog
from edge_runtime.inference.session import (
    CPU,
    ModelLoadError,
    choose_providers,
    create_session,
    session_options,
)
from edge_runtime.profiles import DeviceProfile, load_profiles

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "models"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
LOGGER = "edge_runtime.inference.session"
LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def skip_reason(provider: str, available: list[str]) -> str:
    return (
        f"execution provider {provider} is not in this onnxruntime build "
        f"(it has {', '.join(available)}); skipping it"
    )


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


@pytest.fixture
def profiles() -> dict[str, DeviceProfile]:
    return load_profiles()


@pytest.fixture
def shipped_model() -> CatalogModel:
    return load_catalog(SHIPPED).models[0]


@pytest.fixture(autouse=True)
def _session_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)


# choose_providers


def test_a_missing_cuda_leaves_only_the_cpu_and_logs_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    chosen = choose_providers((CUDA, CPU), [CPU])
    assert chosen == [CPU]
    assert messages(caplog) == [skip_reason(CUDA, [CPU])]
    assert caplog.records[0].levelno == logging.INFO


def test_missing_tensorrt_and_cuda_are_both_skipped_with_a_reason_each_in_profile_order(
    caplog: pytest.LogCaptureFixture, profiles: dict[str, DeviceProfile]
) -> None:
    wanted = profiles["jetson-orin-nano"].execution_providers
    assert wanted == (TENSORRT, CUDA, CPU)
    available = ["AzureExecutionProvider", CPU]
    assert choose_providers(wanted, available) == [CPU]
    assert messages(caplog) == [skip_reason(TENSORRT, available), skip_reason(CUDA, available)]


def test_the_cpu_is_appended_when_the_profile_lists_no_available_provider(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert choose_providers((TENSORRT, CUDA), [CPU]) == [CPU]
    assert len(messages(caplog)) == 2


def test_the_cpu_is_chosen_when_the_profile_lists_no_provider_at_all(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert choose_providers((), [CUDA, CPU]) == [CPU]
    assert messages(caplog) == []


def test_available_providers_keep_the_profiles_order_and_the_cpu_is_not_repeated(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert choose_providers((TENSORRT, CUDA, CPU), [CPU, CUDA, TENSORRT]) == [TENSORRT, CUDA, CPU]
    assert choose_providers((CUDA,), [CUDA, CPU]) == [CUDA, CPU]
    assert messages(caplog) == []


def test_only_the_missing_provider_is_skipped_when_the_others_are_there(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert choose_providers((TENSORRT, CUDA, CPU), [CUDA, CPU]) == [CUDA, CPU]
    assert messages(caplog) == [skip_reason(TENSORRT, [CUDA, CPU])]


def test_the_x86_profile_on_this_onnxruntime_build_gets_providers_the_build_has(
    profiles: dict[str, DeviceProfile],
) -> None:
    available = ort.get_available_providers()
    chosen = choose_providers(profiles["x86-64"].execution_providers, available)
    assert chosen[-1] == CPU
    assert set(chosen) <= set(available)
    assert chosen == [p for p in (CUDA, CPU) if p in available]


# session_options


def test_raspberry_pi_4_options_carry_its_threads_and_turn_the_memory_arena_off(
    profiles: dict[str, DeviceProfile],
) -> None:
    profile = profiles["raspberry-pi-4"]
    assert (profile.threads.intra_op, profile.threads.inter_op) == (3, 1)
    assert profile.memory_arena is False
    options = session_options(profile)
    assert options.intra_op_num_threads == 3
    assert options.inter_op_num_threads == 1
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert options.enable_cpu_mem_arena is False


def test_x86_options_carry_its_threads_and_keep_the_memory_arena_on(
    profiles: dict[str, DeviceProfile],
) -> None:
    profile = profiles["x86-64"]
    options = session_options(profile)
    assert options.intra_op_num_threads == profile.threads.intra_op == 2
    assert options.inter_op_num_threads == profile.threads.inter_op == 1
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert options.enable_cpu_mem_arena is True


@pytest.mark.parametrize("level", sorted(LEVELS))
def test_every_graph_optimization_name_maps_to_its_onnxruntime_level(
    level: str, profiles: dict[str, DeviceProfile]
) -> None:
    profile = profiles["x86-64"].model_copy(update={"graph_optimization": level})
    assert session_options(profile).graph_optimization_level == LEVELS[level]


def test_options_are_fresh_for_each_call_so_profiles_do_not_leak_into_each_other(
    profiles: dict[str, DeviceProfile],
) -> None:
    pi4 = session_options(profiles["raspberry-pi-4"])
    x86 = session_options(profiles["x86-64"])
    assert pi4 is not x86
    assert (pi4.intra_op_num_threads, pi4.enable_cpu_mem_arena) == (3, False)


# create_session on real files


@pytest.mark.parametrize("profile_id", ["raspberry-pi-4", "x86-64"])
def test_a_session_is_opened_with_the_profiles_options(
    profile_id: str,
    profiles: dict[str, DeviceProfile],
    shipped_model: CatalogModel,
    caplog: pytest.LogCaptureFixture,
) -> None:
    profile = profiles[profile_id]
    loaded = create_session(shipped_model, profile, directory=SHIPPED)
    assert loaded.path == SHIPPED / shipped_model.file("model.onnx").path
    assert loaded.providers == loaded.session.get_providers()
    assert loaded.providers[-1] == CPU
    options = loaded.session.get_session_options()
    assert options.intra_op_num_threads == profile.threads.intra_op
    assert options.inter_op_num_threads == profile.threads.inter_op
    assert options.enable_cpu_mem_arena is profile.memory_arena
    assert options.graph_optimization_level == LEVELS[profile.graph_optimization]
    assert f"loaded {shipped_model.id} (model.onnx) with {', '.join(loaded.providers)}" in messages(
        caplog
    )


def test_opening_with_the_x86_profile_logs_why_cuda_was_skipped_on_a_cpu_build(
    profiles: dict[str, DeviceProfile],
    shipped_model: CatalogModel,
    caplog: pytest.LogCaptureFixture,
) -> None:
    available = ort.get_available_providers()
    if CUDA in available:
        pytest.skip("this onnxruntime build has CUDA")
    loaded = create_session(shipped_model, profiles["x86-64"], directory=SHIPPED)
    assert loaded.providers == [CPU]
    assert skip_reason(CUDA, available) in messages(caplog)


def test_a_verified_file_that_is_not_onnx_raises_model_load_error_naming_it(
    tmp_path: Path, profiles: dict[str, DeviceProfile]
) -> None:
    path = tmp_path / "not-onnx" / "model.onnx"
    path.parent.mkdir()
    path.write_bytes(b"this is not a protobuf graph")
    model = CatalogModel(
        id="not-onnx",
        task="sentence-embedding",
        files=tuple(describe_files(tmp_path, [path])),
        parameters=0,
        quantization="fp32",
        license="apache-2.0",
        source="a test",
        min_ram_mb=0,
    )
    with pytest.raises(ModelLoadError) as raised:
        create_session(model, profiles["x86-64"], directory=tmp_path)
    assert str(raised.value).startswith(f"{path}: onnxruntime cannot load it: ")
    assert isinstance(raised.value.__cause__, Exception)


def test_asking_for_a_file_the_model_does_not_have_is_a_key_error(
    profiles: dict[str, DeviceProfile], shipped_model: CatalogModel
) -> None:
    with pytest.raises(KeyError, match=r"has no file 'decoder\.onnx'"):
        create_session(shipped_model, profiles["x86-64"], "decoder.onnx", directory=SHIPPED)
