"""How timed checks share the host, as users run them: one at a time under xdist.

Budgets are far from anything a machine could measure, and no assertion reads a
figure: only how the checks were scheduled and what the summary says about it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import DeployProject

EXAMPLE_MODELS = Path(__file__).resolve().parents[1] / "example_project" / "models"
LATENCY_TESTS = """
import pytest

@pytest.mark.latency_under(10_000)
def test_first(deploy_model):
    deploy_model.run(deploy_model.example_inputs())

@pytest.mark.latency_under(10_000)
def test_second(deploy_model):
    deploy_model.run(deploy_model.example_inputs())
"""
MEMORY_TEST = """

@pytest.mark.memory_under(100_000, repeat=1)
def test_small(deploy_model):
    deploy_model.run(deploy_model.example_inputs())
"""


@pytest.fixture
def deploy_project(deploy_project: DeployProject) -> DeployProject:
    """The example's real int8 model on edge-a."""
    return deploy_project.replace(
        models={"optimized": {"path": "models/int8.onnx"}},
        devices=("edge-a",),
        files={"models/int8.onnx": EXAMPLE_MODELS / "classifier_int8.onnx"},
    )


def test_xdist_workers_time_one_at_a_time_and_the_summary_says_so(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    pytest.importorskip("xdist")
    deploy_project.make(LATENCY_TESTS)
    # Subprocess: xdist workers are separate interpreters anyway.
    result = pytester.runpytest_subprocess("-n", "2", "--deploy-target", "edge-a")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "note: timed checks ran one at a time (host lock; waited * s in total)",
            "release_candidate: True",
        ]
    )
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    checks = deploy_project.checks("edge-a", metric="latency_p95")
    assert set(checks) == {"test_first", "test_second"}
    for check in checks.values():
        assert check["extra"]["timing_lock"] == "host"
        assert check["extra"]["lock_wait_s"] >= 0.0
        assert check["extra"]["timing_lock_note"] == ""


def test_the_memory_child_measures_under_the_parents_lock(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    """The parent holds the lock while its child measures; the child takes none (no deadlock)."""
    deploy_project.make(LATENCY_TESTS + MEMORY_TEST)
    result = pytester.runpytest("--deploy-target", "edge-a", "-k", "small or first")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["note: timed checks ran one at a time (host lock;*"])
    memory = deploy_project.checks("edge-a", metric="peak_memory")["test_small"]
    assert memory["extra"]["timing_lock"] == "host"


@pytest.mark.parametrize(
    ("args", "env", "top"),
    [
        (["--deploy-timing-lock=off"], None, ""),
        ([], "off", ""),
        ([], None, 'timing_lock = "off"'),
    ],
    ids=["option", "environment", "config"],
)
def test_the_lock_can_be_turned_off(
    pytester: pytest.Pytester,
    deploy_project: DeployProject,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: str | None,
    top: str,
) -> None:
    if env is not None:
        monkeypatch.setenv("DEPLOYCHECK_TIMING_LOCK", env)
    deploy_project.make(LATENCY_TESTS, top=top)
    result = pytester.runpytest("--deploy-target", "edge-a", "-k", "first", *args)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["note: timed checks were not serialized (--deploy-timing-lock=off)*"]
    )
    check = deploy_project.checks("edge-a", metric="latency_p95")["test_first"]
    assert (check["extra"]["timing_lock"], check["extra"]["lock_wait_s"]) == ("off", None)


def test_the_command_line_beats_the_config(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(LATENCY_TESTS, top='timing_lock = "off"')
    result = pytester.runpytest(
        "--deploy-target", "edge-a", "-k", "first", "--deploy-timing-lock", "host"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["note: timed checks ran one at a time (host lock;*"])


def test_a_bad_option_value_is_a_usage_error(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(LATENCY_TESTS)
    result = pytester.runpytest("--deploy-timing-lock=sometimes")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: --deploy-timing-lock 'sometimes': expected 'host' (timed checks run one at"
            " a time, a host-wide lock) or 'off' (they may overlap under xdist)"
        ]
    )
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


def test_a_bad_environment_value_names_the_variable(
    pytester: pytest.Pytester, deploy_project: DeployProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPLOYCHECK_TIMING_LOCK", "yes")
    deploy_project.make(LATENCY_TESTS)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: DEPLOYCHECK_TIMING_LOCK 'yes': expected 'host'*"])


def test_a_bad_config_value_names_the_key(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(LATENCY_TESTS, top="timing_lock = true")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: pyproject.toml: [[]tool.deploycheck[]]: timing_lock: expected 'host' (timed"
            " checks run one at a time, a host-wide lock) or 'off', got a boolean (True)"
        ]
    )
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


def test_a_lock_dir_that_is_not_a_directory_is_refused(
    pytester: pytest.Pytester, deploy_project: DeployProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = pytester.path / "no-such-dir"
    monkeypatch.setenv("DEPLOYCHECK_LOCK_DIR", str(missing))
    deploy_project.make(LATENCY_TESTS)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: DEPLOYCHECK_LOCK_DIR='{missing}': not a directory*"])


def test_the_option_is_in_the_deploycheck_help_group(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        ["deployment acceptance checks (pytest-deploycheck):", "*--deploy-timing-lock=host|off*"]
    )
