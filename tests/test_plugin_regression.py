"""Baselines, regression gates and CI-native output, as users run them."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import DeployProject

# The workload sleeps: the baseline run 1 ms a call, a "slowed" run 6 ms.  The gap is
# far wider than any scheduling noise, so the outcome does not depend on the machine.
TESTS = """
import os
import time
import pytest

@pytest.mark.latency_under(10_000, min_samples=150, max_samples=150, warmup=2)
def test_request(deploy_target):
    time.sleep(float(os.environ.get("REQUEST_S", "0.001")))
"""


@pytest.fixture
def deploy_project(deploy_project: DeployProject) -> DeployProject:
    """This module's projects: no models, one host device (the target), TESTS."""
    return deploy_project.replace(
        target="host",
        models={},
        devices=({"name": "host", "memory_mb": 100000, "cpus": 1},),
        files={},
        test_file="test_user_requests",
    )


def save_baseline(pytester: pytest.Pytester) -> Path:
    path = pytester.path / "baselines" / "main.json"
    result = pytester.runpytest(f"--deploy-save={path}")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"baseline saved: {path} (1 checks)"])
    return path


def test_a_saved_baseline_is_versioned_json_with_raw_samples(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(TESTS)
    document = json.loads(save_baseline(pytester).read_text())
    assert document["schema"] == "pytest-deploycheck/baseline"
    assert document["version"] == 1
    assert document["target"] == "host"
    assert document["environment"]["host"]["logical_cpus"] >= 1
    (check,) = document["checks"]
    assert check["name"] == "latency_under_10000"
    assert len(check["samples_ns"]) == 150
    assert check["extra"]["host_canary"]["ns_per_op"] > 0  # the host-speed reference


def test_the_same_workload_is_no_regression(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    # A wide tolerance: this checks the mechanism, not how steady the machine is.
    deploy_project.make(TESTS, extra="[tool.deploycheck.regression]\nlatency_pct = 300")
    baseline = save_baseline(pytester)
    result = pytester.runpytest(f"--deploy-baseline={baseline}")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["regression[[]latency_under_10000[]]*PASS", "release_candidate: True"]
    )
    assert result.ret == pytest.ExitCode.OK


def test_a_slowdown_is_a_failing_regression_and_fails_the_run(
    pytester: pytest.Pytester, deploy_project: DeployProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    deploy_project.make(TESTS)
    baseline = save_baseline(pytester)
    monkeypatch.setenv("REQUEST_S", "0.006")
    result = pytester.runpytest(f"--deploy-baseline={baseline}")
    result.assert_outcomes(passed=1)  # the budget itself is met
    result.stdout.fnmatch_lines(
        [
            "regression[[]latency_under_10000[]]*% vs baseline (p=*)*FAIL",
            "release_candidate: False",
            "  - regression[[]latency_under_10000[]]: * (budget 10 %) - median * ms -> * ms [[]p95*"
            " (+*%, tolerance 10%; *): regression",
        ]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    summary = (deploy_project.evidence() / "summary.md").read_text()
    assert "| check | budget | measured | baseline | change | verdict |" in summary
    assert "regression" in summary


def test_a_speed_up_is_shown_as_an_improvement(
    pytester: pytest.Pytester, deploy_project: DeployProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    deploy_project.make(TESTS)
    monkeypatch.setenv("REQUEST_S", "0.006")
    baseline = save_baseline(pytester)
    monkeypatch.setenv("REQUEST_S", "0.001")
    result = pytester.runpytest(f"--deploy-baseline={baseline}")
    assert result.ret == pytest.ExitCode.OK
    report = deploy_project.report()
    (comparison,) = [c for c in report["checks"] if c["metric"] == "regression"]
    assert comparison["extra"]["kind"] == "improvement"
    assert comparison["passed"] is True


def test_tolerances_come_from_the_config_per_check(
    pytester: pytest.Pytester, deploy_project: DeployProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    regression = (
        "[tool.deploycheck.regression]\nlatency_pct = 10\n"
        "[tool.deploycheck.regression.checks.latency_under_10000]\nlatency_pct = 5000\n"
    )
    deploy_project.make(TESTS, extra=regression)
    baseline = save_baseline(pytester)
    monkeypatch.setenv("REQUEST_S", "0.006")
    result = pytester.runpytest(f"--deploy-baseline={baseline}")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["regression[[]latency_under_10000[]]*budget 5000 %*PASS"])


def test_tolerances_from_the_command_line_override_the_config(
    pytester: pytest.Pytester, deploy_project: DeployProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    deploy_project.make(TESTS, extra="[tool.deploycheck.regression]\nlatency_pct = 10\n")
    baseline = save_baseline(pytester)
    monkeypatch.setenv("REQUEST_S", "0.006")
    result = pytester.runpytest(
        f"--deploy-baseline={baseline}", "--deploy-compare-fail=latency_pct=5000"
    )
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["regression[[]latency_under_10000[]]*budget 5000 %*PASS"])


def test_saving_again_keeps_a_history_and_the_gate_pools_it(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(TESTS)
    path = save_baseline(pytester)
    result = pytester.runpytest(f"--deploy-save={path}")
    result.stdout.fnmatch_lines([f"baseline saved: {path} (1 checks; 2 runs kept)"])
    assert len(json.loads(path.read_text())["history"]) == 1
    result = pytester.runpytest(f"--deploy-baseline={path}")
    assert result.ret == pytest.ExitCode.OK
    report = deploy_project.report()
    (comparison,) = [c for c in report["checks"] if c["metric"] == "regression"]
    assert comparison["extra"]["pooled_runs"] == 2
    assert "baseline: 2 saved runs pooled" in comparison["details"]


def test_another_environment_is_said_prominently_or_refused(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(TESTS)
    baseline = save_baseline(pytester)
    document = json.loads(baseline.read_text())
    document["environment"]["host"]["cpu_model"] = "Another CPU 9000"
    baseline.write_text(json.dumps(document))
    warned = pytester.runpytest(f"--deploy-baseline={baseline}")
    warned.stdout.fnmatch_lines(["note: *Another CPU 9000*"])
    assert warned.ret == pytest.ExitCode.OK

    deploy_project.make(
        TESTS, extra='[tool.deploycheck.regression]\non_environment_mismatch = "refuse"'
    )
    refused = pytester.runpytest(f"--deploy-baseline={baseline}")
    refused.stdout.fnmatch_lines(["*Another CPU 9000*", "release_candidate: False"])
    assert refused.ret == pytest.ExitCode.TESTS_FAILED


def test_a_baseline_named_in_the_config_may_not_exist_yet(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(TESTS, top='baseline = "baselines/main.json"')
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["note: no baseline at *main.json yet: nothing compared*"])


def test_a_missing_baseline_on_the_command_line_is_a_usage_error(
    pytester: pytest.Pytester,
    deploy_project: DeployProject,
) -> None:
    deploy_project.make(TESTS)
    result = pytester.runpytest("--deploy-baseline=nowhere.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --deploy-baseline nowhere.json: file not found*"])


def test_a_corrupt_baseline_fails_the_verdict_in_one_line(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(TESTS)
    (pytester.path / "base.json").write_text("{not json")
    result = pytester.runpytest("--deploy-baseline=base.json")
    result.stdout.fnmatch_lines(
        ["  - baseline: unreadable - *base.json: not valid JSON*(line 1, column 2)"]
    )
    result.stdout.no_fnmatch_line("*Traceback*")
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_a_false_verdict_fails_the_run_even_when_every_test_passed(
    pytester: pytest.Pytester,
    deploy_project: DeployProject,
) -> None:
    deploy_project.make(TESTS, top='required_evidence = ["model_card.md"]')
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["release_candidate: False", "  - has_model_card: *"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_github_step_summary_gets_the_readiness_table(
    pytester: pytest.Pytester, deploy_project: DeployProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    deploy_project.make(TESTS)
    step_summary = pytester.path / "step_summary.md"
    step_summary.write_text("# Earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    pytester.runpytest().assert_outcomes(passed=1)
    text = step_summary.read_text()
    assert text.startswith("# Earlier step\n")
    assert "Deploy readiness: host" in text
    assert "| latency_under_10000 |" in text


def test_junit_xml_carries_each_checks_figures(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(TESTS)
    pytester.runpytest("--junitxml=junit.xml").assert_outcomes(passed=1)
    root = ET.parse(pytester.path / "junit.xml").getroot()
    properties = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert properties["deploycheck.latency_under_10000.status"] == "PASS"
    assert properties["deploycheck.latency_under_10000.unit"] == "ms"
    assert properties["deploycheck.latency_under_10000.provenance"] == "measured"
    assert float(properties["deploycheck.latency_under_10000.value"]) > 0


def test_the_html_report_is_self_contained(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(TESTS)
    pytester.runpytest().assert_outcomes(passed=1)
    page = (deploy_project.evidence() / "report.html").read_text()
    assert "release_candidate" in page and "latency_under_10000" in page
    assert "<svg" in page
    assert "http://" not in page and "https://" not in page and "<script" not in page
