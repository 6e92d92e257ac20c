"""Unit tests of runlog.py: run.log told from a synthetic report.json document."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_deploycheck.config.evidence_names import RUN_LOG_FILE
from pytest_deploycheck.report.runlog import run_log

STARTED = 1_700_000_000.0  # 2023-11-14T22:13:20+00:00


def full_report() -> dict[str, Any]:
    return {
        "target": "edge-a",
        "target_device": {
            "name": "edge-a",
            "memory_mb": 512,
            "power_w": 8,
            "offline": True,
            "cpus": 2,
            "latency_factor": None,
        },
        "verdict": {
            "release_candidate": False,
            "reasons": ["soak_30min: 60 MB/h (budget 10 MB/h) - memory grows 60 MB/h"],
            "counts": {"PASS": 1, "FAIL": 1, "INCONCLUSIVE": 0, "INFO": 0},
            "caveats": ["soak_30min ran 1.2 s of the 30 min its marker asks for"],
        },
        "checks": [
            {
                "name": "latency_under_80",
                "metric": "latency_p95",
                "value": 12.3456,
                "unit": "ms",
                "budget": 80.0,
                "status": "PASS",
                "provenance": "measured",
                "nodeid": "tests/test_model.py::test_fast",
                "details": "",
                "extra": {},
            },
            {
                "name": "soak_30min",
                "metric": "soak_memory_growth",
                "value": 60.0,
                "unit": "MB/h",
                "budget": 10.0,
                "status": "FAIL",
                "provenance": "measured",
                "nodeid": "tests/test_model.py::test_soak",
                "details": "memory grows 60 MB/h (CI 59 to 61), over the budget of 10 MB/h",
                "display": "+60 MB/h (CI +59 to +61) over 1.2 s of 30 min",
                "notes": ["energy stays declared: no RAPL counters"],
                "extra": {
                    "error_examples": ["ValueError: bad input", "KeyError: 'image'"],
                    "timeseries_file": "soak_test_soak_soak_30min.csv",
                },
            },
            {
                "name": "device_fit",
                "metric": "device_fit",
                "value": "fits",
                "unit": "",
                "budget": None,
                "status": "PASS",
                "provenance": "declared",
            },
        ],
        "failed_tests": ["tests/test_model.py::test_soak", "tests/test_model.py::test_broken"],
        "configuration": {"source": "/project/pyproject.toml"},
        "command_line": ["pytest", "--deploy-target=edge-a", "-x"],
        "environment": {
            "timestamp": "2023-11-14T22:15:00+00:00",
            "python": "3.11.9",
            "python_implementation": "CPython",
            "packages": {"onnxruntime": "1.18.0", "numpy": "1.26.4", "pytest-benchmark": None},
            "host": {
                "platform": "Linux-6.1-x86_64",
                "cpu_model": "Example CPU",
                "usable_cpus": 2,
                "logical_cpus": 8,
                "memory_total_mb": 16000,
            },
        },
    }


@pytest.fixture
def log_lines() -> list[str]:
    text = run_log(
        full_report(),
        started=STARTED,
        failure_reasons={"tests/test_model.py::test_soak": "soak_30min: 60 MB/h (budget 10 MB/h)"},
        evidence_files=["report.json", RUN_LOG_FILE, "soak_test_soak_soak_30min.csv"],
    )
    assert text.endswith("\n")
    return text.splitlines()


def test_the_header_says_when_how_and_on_what(log_lines: list[str]) -> None:
    assert log_lines[:9] == [
        "pytest-deploycheck run log",
        "started:  2023-11-14T22:13:20+00:00",
        "finished: 2023-11-14T22:15:00+00:00",
        "command:  pytest --deploy-target=edge-a -x",
        "config:   /project/pyproject.toml",
        "target:   edge-a (memory_mb=512, power_w=8, offline=True, cpus=2)",
        "python:   3.11.9 (CPython)",
        "packages: onnxruntime 1.18.0, numpy 1.26.4, pytest-benchmark not installed",
        "host:     Linux-6.1-x86_64; Example CPU; 2 of 8 CPUs usable; 16000 MB memory",
    ]


def test_the_verdict_with_its_reasons_and_caveats(log_lines: list[str]) -> None:
    start = log_lines.index("release_candidate: False")
    assert log_lines[start + 1 : start + 3] == [
        "  - soak_30min: 60 MB/h (budget 10 MB/h) - memory grows 60 MB/h",
        "  ! soak_30min ran 1.2 s of the 30 min its marker asks for",
    ]


def test_each_check_with_status_name_figure_budget_provenance_and_test(
    log_lines: list[str],
) -> None:
    start = log_lines.index("checks:")
    assert log_lines[start + 1 : start + 8] == [
        "  PASS         latency_under_80: 12.35 ms (budget 80 ms), measured"
        " [tests/test_model.py::test_fast]",
        "  FAIL         soak_30min: +60 MB/h (CI +59 to +61) over 1.2 s of 30 min"
        " (budget 10 MB/h), measured [tests/test_model.py::test_soak]",
        "      why: memory grows 60 MB/h (CI 59 to 61), over the budget of 10 MB/h",
        "      error: ValueError: bad input",
        "      error: KeyError: 'image'",
        "      note: energy stays declared: no RAPL counters",
        "  PASS         device_fit: fits, declared",
    ]


def test_failed_tests_with_their_reasons(log_lines: list[str]) -> None:
    start = log_lines.index("failed tests:")
    assert log_lines[start + 1 : start + 3] == [
        "  tests/test_model.py::test_soak: soak_30min: 60 MB/h (budget 10 MB/h)",
        "  tests/test_model.py::test_broken: failed",  # no reason recorded
    ]


def test_the_evidence_files_are_listed_last(log_lines: list[str]) -> None:
    assert log_lines[-1] == "evidence files: report.json, run.log, soak_test_soak_soak_30min.csv"


def test_empty_sections_say_none() -> None:
    report = {
        "verdict": {"release_candidate": False, "reasons": ["no deploy check ran"]},
        "checks": [],
        "failed_tests": [],
        "command_line": ["pytest"],
        "environment": {"packages": {}},
    }
    lines = run_log(report, started=STARTED, failure_reasons={}).splitlines()
    assert lines[lines.index("checks:") + 1] == "  (none)"
    assert lines[lines.index("failed tests:") + 1] == "  (none)"
    assert "target:   none selected" in lines
    assert not any(line.startswith("evidence files:") for line in lines)
    assert not any(line.startswith("  !") for line in lines)
    assert lines[lines.index("release_candidate: False") + 1] == "  - no deploy check ran"


def test_a_device_without_figures_is_its_name_and_a_missing_timestamp_is_now() -> None:
    report = {"target_device": {"name": "edge-b", "memory_mb": None}}
    lines = run_log(report, started=STARTED, failure_reasons={}).splitlines()
    assert "target:   edge-b" in lines
    finished = next(line for line in lines if line.startswith("finished: "))
    assert finished.endswith("+00:00") and finished != "finished: 2023-11-14T22:13:20+00:00"
