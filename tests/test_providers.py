"""Accelerators: provider names and options in the config, the fallback notes, GPU memory.

No GPU is needed: onnxruntime's provider list and session factory are faked where a
test needs an accelerator to exist (or to fail), and a fake ``nvidia-smi`` script on
PATH stands in for the driver's tool.
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import onnxruntime as ort  # type: ignore[import-untyped]
import pytest

from pytest_deploycheck.config.providers import nvidia_gpu, provider_names
from pytest_deploycheck.config.schema import ConfigError, Device, parse_config
from pytest_deploycheck.measure import accelerator, runtime
from pytest_deploycheck.measure.memory import MemoryResult
from pytest_deploycheck.measure.runtime import SessionSettings, open_session

if TYPE_CHECKING:
    from conftest import DeployProject

TINY = Path(__file__).parent / "models" / "tiny_linear.onnx"
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TRT = "TensorrtExecutionProvider"
OPENVINO = "OpenVINOExecutionProvider"


def device_config(**keys: Any) -> Device:
    return parse_config({"devices": [{"name": "gpu-box", **keys}]}).devices[0]


def config_lines(**keys: Any) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as excinfo:
        device_config(**keys)
    return tuple(str(line) for line in excinfo.value.args)


# --------------------------------------------------------------------------- config


def test_short_names_become_onnxruntime_names_in_any_case() -> None:
    device = device_config(execution_providers=["cuda", "TensorRT", "OpenVINO", "cpu"])
    assert device.execution_providers == (CUDA, TRT, OPENVINO, CPU)


def test_full_names_and_unknown_names_are_kept_as_written_without_duplicates() -> None:
    assert provider_names([CUDA, "cuda", "MyOwnExecutionProvider"]) == (
        CUDA,
        "MyOwnExecutionProvider",
    )


def test_provider_options_are_read_by_provider_name() -> None:
    device = device_config(
        execution_providers=["cuda", "cpu"],
        provider_options={"cuda": {"device_id": 1, "cudnn_conv_use_max_workspace": True}},
    )
    assert device.provider_options == {CUDA: {"device_id": 1, "cudnn_conv_use_max_workspace": True}}
    assert device.as_dict()["provider_options"] == {
        CUDA: {"device_id": 1, "cudnn_conv_use_max_workspace": True}
    }


def test_each_bad_provider_option_is_one_line_of_its_own() -> None:
    lines = config_lines(
        execution_providers=["cuda"],
        provider_options={
            "openvino": {"device_type": "GPU"},
            "cuda": {"device_id": -1, "gpu_mem_limit": [1, 2]},
        },
    )
    assert len(lines) == 3, lines
    assert lines[0].endswith(
        "provider_options.openvino: OpenVINOExecutionProvider is not in this device's"
        " execution_providers (CUDAExecutionProvider); add it there or remove its options"
    )
    assert lines[1].endswith("provider_options.cuda.device_id: expected a GPU index >= 0, got -1")
    assert lines[2].endswith(
        "provider_options.cuda.gpu_mem_limit: expected a string, number or boolean,"
        " got list ([1, 2])"
    )
    assert all(
        "[[tool.deploycheck.devices]] #1 (gpu-box): provider_options." in line for line in lines
    )


def test_provider_options_must_be_a_table() -> None:
    (line,) = config_lines(execution_providers=["cuda"], provider_options=["cuda"])
    assert "provider_options: expected a table of provider = { option = value }" in line


# --------------------------------------------------------------------------- settings


def test_settings_for_a_device_carry_its_provider_options_as_strings() -> None:
    device = Device(
        "gpu-box",
        cpus=1,
        execution_providers=(CUDA, CPU),
        provider_options={CUDA: {"device_id": 0, "enable_cuda_graph": False}},
    )
    settings = SessionSettings.for_device(device, host_cpus=1)
    assert settings.options_for(CUDA) == {"device_id": "0", "enable_cuda_graph": "false"}
    assert settings.options_for(CPU) == {}
    assert hash(settings) == hash(SessionSettings.for_device(device, host_cpus=1))


def test_settings_take_options_as_a_mapping_too() -> None:
    settings = SessionSettings(providers=(CUDA,), provider_options={CUDA: {"device_id": 2}})  # type: ignore[arg-type]
    assert settings.provider_options == ((CUDA, (("device_id", "2"),)),)


# --------------------------------------------------------------------------- fallback


class FakeSession:
    """A session that 'runs' on the providers it was given (no accelerator needed)."""

    def __init__(self, providers: list[str]) -> None:
        self.providers = providers

    def get_providers(self) -> list[str]:
        return self.providers


class FakeRuntime:
    """onnxruntime with accelerators that exist, of which some fail to initialise."""

    def __init__(
        self, available: list[str], failing: dict[str, str], dropping: tuple[str, ...] = ()
    ):
        self.available = available
        self.failing = failing
        self.dropping = dropping
        self.calls: list[list[tuple[str, dict[str, str]]]] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(ort, "get_available_providers", lambda: self.available)
        monkeypatch.setattr(ort, "InferenceSession", self.session)

    def session(self, path: str, *, sess_options: Any, providers: Any, enable_fallback: int) -> Any:
        assert enable_fallback == 0  # no retry of onnxruntime's own, printed to stdout
        self.calls.append(providers)
        names = [name for name, _ in providers]
        for name in names:
            if name in self.failing:
                raise RuntimeError(self.failing[name])
        return FakeSession([name for name in names if name not in self.dropping])


def test_a_provider_missing_from_this_build_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeRuntime([CPU], {}).install(monkeypatch)
    _, notes = open_session("m", TINY, SessionSettings(providers=(CUDA, CPU)))
    assert notes == (
        "CUDAExecutionProvider asked for, CPUExecutionProvider ran instead:"
        " not in this onnxruntime build (available: CPUExecutionProvider)",
    )


def test_a_provider_failing_to_initialise_gives_its_first_error_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    error = (
        "[ONNXRuntimeError] : 1 : FAIL : libcudnn.so.9: cannot open shared object file\n"
        "Require cuDNN 9.* and CUDA 12.*"
    )
    fake = FakeRuntime([CUDA, CPU], {CUDA: error})
    fake.install(monkeypatch)
    session, notes = open_session("m", TINY, SessionSettings(providers=(CUDA, CPU)))
    assert session.get_providers() == [CPU]
    assert notes == (
        "CUDAExecutionProvider asked for, CPUExecutionProvider ran instead:"
        " failed to initialise: libcudnn.so.9: cannot open shared object file",
    )
    assert [[name for name, _ in call] for call in fake.calls] == [[CUDA, CPU], [CPU]]


def test_tensorrt_failing_falls_back_to_cuda_with_its_options(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeRuntime([TRT, CUDA, CPU], {TRT: "TensorRT EP could not load libnvinfer.so.10"})
    fake.install(monkeypatch)
    settings = SessionSettings(
        providers=(TRT, CUDA, CPU),
        provider_options={CUDA: {"device_id": 1}},  # type: ignore[arg-type]
    )
    session, notes = open_session("m", TINY, settings)
    assert session.get_providers() == [CUDA, CPU]
    assert notes == (
        "TensorrtExecutionProvider asked for, CUDAExecutionProvider ran instead:"
        " failed to initialise: TensorRT EP could not load libnvinfer.so.10",
    )
    assert fake.calls[-1] == [(CUDA, {"device_id": "1"}), (CPU, {})]


def test_a_provider_dropped_without_an_error_is_noted_all_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    FakeRuntime([CUDA, CPU], {}, dropping=(CUDA,)).install(monkeypatch)
    _, notes = open_session("m", TINY, SessionSettings(providers=(CUDA,)))
    assert notes == (
        "CUDAExecutionProvider asked for, CPUExecutionProvider ran instead:"
        " failed to initialise (onnxruntime dropped it without an error)",
    )


def test_a_working_accelerator_runs_without_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeRuntime([CUDA, CPU], {}).install(monkeypatch)
    session, notes = open_session("m", TINY, SessionSettings(providers=(CUDA, CPU)))
    assert session.get_providers() == [CUDA, CPU]
    assert notes == ()


def test_a_model_fault_is_still_a_load_error_after_the_accelerator_is_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    FakeRuntime([CUDA, CPU], {CUDA: "no GPU", CPU: "Invalid model: bad graph"}).install(monkeypatch)
    with pytest.raises(runtime.ModelLoadError, match="cannot be loaded: Invalid model: bad graph"):
        open_session("m", TINY, SessionSettings(providers=(CUDA, CPU)))


@pytest.mark.skipif(CUDA in ort.get_available_providers(), reason="CUDA is available here")
def test_the_real_cpu_build_runs_a_cuda_device_on_cpu() -> None:
    session, notes = open_session("m", TINY, SessionSettings(providers=(CUDA, CPU)))
    assert session.get_providers() == [CPU]
    assert notes[0].startswith(
        "CUDAExecutionProvider asked for, CPUExecutionProvider ran instead:"
        " not in this onnxruntime build"
    )


# --------------------------------------------------------------------------- GPU memory


def fake_nvidia_smi(directory: Path, body: str) -> Path:
    """An ``nvidia-smi`` on PATH that logs its arguments and runs *body* (sh)."""
    script = directory / "nvidia-smi"
    script.write_text(f'#!/bin/sh\necho "$@" >> "{directory}/calls.log"\n{body}\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


@pytest.fixture
def smi_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "bin"
    directory.mkdir()
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ.get('PATH', '')}")
    return directory


def test_gpu_memory_is_read_from_nvidia_smi(smi_dir: Path) -> None:
    fake_nvidia_smi(smi_dir, "echo 812")
    assert accelerator.gpu_memory_used_mb(1) == 812.0
    assert (smi_dir / "calls.log").read_text().split() == [
        "--query-gpu=memory.used",
        "--format=csv,noheader,nounits",
        "--id=1",
    ]


@pytest.mark.parametrize(
    "body", ["echo '[N/A]'", "exit 9", "true"], ids=["not-supported", "fails", "silent"]
)
def test_no_figure_where_nvidia_smi_gives_none(smi_dir: Path, body: str) -> None:
    fake_nvidia_smi(smi_dir, body)
    assert accelerator.gpu_memory_used_mb(0) is None


def test_no_figure_without_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert accelerator.gpu_memory_used_mb(0) is None


def test_only_nvidia_providers_have_a_gpu_to_read() -> None:
    assert nvidia_gpu((CUDA, CPU), {}) == 0
    assert nvidia_gpu((TRT, CUDA), {TRT: {"device_id": 3}}) == 3
    assert nvidia_gpu((OPENVINO, CPU), {}) is None
    assert accelerator.gpu_of(None) is None


def test_the_memory_figure_names_the_gpu_and_the_source() -> None:
    gpu = accelerator.from_readings(0, 300, 812.4)
    assert gpu is not None
    result = MemoryResult(10.0, 5.0, 20.0, 8.0, 2.0, 3, accelerator=gpu)
    assert result.display().endswith("; accelerator memory: 812 MB in use on GPU 0 (nvidia-smi)")
    assert result.as_extra()["accelerator_memory_before_mb"] == 300.0
    assert accelerator.from_readings(0, 300, None) is None
    assert accelerator.from_readings(None, 300, 812) is None
    assert "accelerator_memory" not in MemoryResult(10.0, 5.0, 20.0, 8.0, 2.0, 3).as_extra()


# --------------------------------------------------------------------------- plugin


GPU_DEVICE = """
[[tool.deploycheck.devices]]
name = "jetson"
memory_mb = 8000
cpus = 1
execution_providers = ["cuda", "cpu"]
provider_options = { cuda = { device_id = 0 } }
"""


@pytest.mark.skipif(CUDA in ort.get_available_providers(), reason="CUDA is available here")
def test_a_cuda_device_runs_on_this_cpu_host_with_the_note_and_gpu_memory(
    pytester: pytest.Pytester, deploy_project: DeployProject, smi_dir: Path
) -> None:
    fake_nvidia_smi(smi_dir, "echo 1234")
    tests = """
from pytest_deploycheck import memory_under

@memory_under("100 GB", repeat=1)
def test_small(deploy_model):
    assert deploy_model.providers == ["CPUExecutionProvider"]
    deploy_model.run(deploy_model.example_inputs())
"""
    models = {"optimized": {"path": "models/tiny.onnx"}}
    deploy_project.make(tests, models=models, files={"models/tiny.onnx": TINY}, extra=GPU_DEVICE)
    result = pytester.runpytest("--deploy-target", "jetson")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    checks = {check["name"]: check for check in deploy_project.report("jetson")["checks"]}
    note = checks["runtime[optimized]"]["details"]
    assert note == (
        "CUDAExecutionProvider asked for, CPUExecutionProvider ran instead:"
        f" not in this onnxruntime build (available: {', '.join(ort.get_available_providers())})"
    )
    memory = checks["memory_under_100000"]
    assert memory["passed"] is True
    assert memory["extra"]["accelerator_memory"] == (
        "accelerator memory: 1234 MB in use on GPU 0 (nvidia-smi)"
    )
    result.stdout.fnmatch_lines(
        [
            "memory_under_100000  peak * MB (*); accelerator memory: 1234 MB in use on GPU 0"
            " (nvidia-smi)  budget 100000 MB  measured  PASS",
            "note: CUDAExecutionProvider asked for, CPUExecutionProvider ran instead: *",
        ]
    )


def test_a_cpu_device_reads_no_gpu_memory(
    pytester: pytest.Pytester, deploy_project: DeployProject, smi_dir: Path
) -> None:
    fake_nvidia_smi(smi_dir, "echo 1234")
    tests = """
from pytest_deploycheck import memory_under

@memory_under("100 GB", repeat=1)
def test_small(deploy_model):
    deploy_model.run(deploy_model.example_inputs())
"""
    models = {"optimized": {"path": "models/tiny.onnx"}}
    deploy_project.make(tests, models=models, files={"models/tiny.onnx": TINY})
    result = pytester.runpytest("--deploy-target", "edge-c")
    result.assert_outcomes(passed=1)
    (memory,) = deploy_project.report("edge-c")["checks"]
    assert "accelerator_memory" not in memory["extra"]
    assert not (smi_dir / "calls.log").exists()


def test_settings_survive_the_json_trip_to_the_cold_start_child() -> None:
    settings = SessionSettings(providers=(CUDA, CPU), provider_options={CUDA: {"device_id": 1}})  # type: ignore[arg-type]
    sent = json.loads(json.dumps(dataclasses.asdict(settings)))
    assert SessionSettings(**sent) == settings
