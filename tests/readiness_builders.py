"""Builders shared by the unit tests of a run's readiness: verdict.run, report.writer
and terminal (test_run.py, test_writer.py, test_terminal.py).

A plain module, not fixtures: the tests call them with the arguments they vary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_deploycheck.checks.fit import judge_fit
from pytest_deploycheck.checks.record import Check
from pytest_deploycheck.config.schema import DeployConfig, Device, ModelSpec
from pytest_deploycheck.markers import FitRequest
from pytest_deploycheck.report.writer import write_run_files
from pytest_deploycheck.verdict.run import ReadinessRun, RunOutcome

EDGE_A = Device("edge-a", memory_mb=512, power_w=8, offline=True, price_usd=60)
EDGE_B = Device("edge-b", memory_mb=2048, power_w=15, offline=False, price_usd=90)
EDGE_C = Device("edge-c", memory_mb=4096, power_w=25, offline=True, price_usd=120)
DEVICE_ORDER = ["edge-a", "edge-b", "edge-c"]
REFERENCE_FIT_LINE = "device fit: edge-a CHECK memory,power · edge-b CHECK offline · edge-c FIT"

LATENCY = Check(
    name="latency_under_80",
    metric="latency_p95",
    value=61.2,
    unit="ms",
    budget=80,
    nodeid="tests/test_model.py::test_fast",
)


def make_config(tmp_path: Path, **kwargs: Any) -> DeployConfig:
    models = {
        "optimized": ModelSpec(
            "optimized",
            tmp_path / "int8.onnx",
            memory_mb=700,
            power_w=10,
            requires_offline=True,
        ),
        "detector": ModelSpec("detector", tmp_path / "det.onnx", memory_mb=300, power_w=4),
    }
    return DeployConfig(
        source=tmp_path / "pyproject.toml",
        table="[tool.deploycheck]",
        target="edge-c",
        models=models,
        devices=(EDGE_A, EDGE_B, EDGE_C),
        **kwargs,
    )


def fit_checks(
    config: DeployConfig, *models: str, devices: tuple[Device, ...] = (EDGE_A, EDGE_B, EDGE_C)
) -> list[Check]:
    request = FitRequest(models or ("optimized",), None)
    return [judge_fit(config, device, request, "edge-c") for device in devices]


def make_run(tmp_path: Path, config: DeployConfig | None = None, **kwargs: Any) -> ReadinessRun:
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    kwargs.setdefault("target", "edge-c")
    kwargs.setdefault("evidence_dir", tmp_path / "evidence" / "edge-c")
    return ReadinessRun(config or make_config(tmp_path), project_dir=project, **kwargs)


def finish_and_write(run: ReadinessRun) -> RunOutcome:
    """What the session does at the end of a run with deploy tests: judge, then write."""
    return write_run_files(run.finish())
