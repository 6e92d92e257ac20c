"""One run, one evidence set, honestly labelled: what an interrupted, crashed, partial
or dying run leaves behind, through real pytest sessions.

Every test asserts the outcome class: the verdict is not True, report.json parses and
says why.  The runs that receive signals, die or run xdist workers are subprocesses
(each says why); the rest run in-process.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import DeployProject

FIT = """
import os, time
from pathlib import Path
import pytest

@pytest.mark.device_fit(model="optimized")
def test_fits(deploy_device):
    pass
"""
SECOND_FIT = """
@pytest.mark.device_fit(model="baseline")
def test_baseline_fits(deploy_device):
    pass
"""
# A body that stops the run when the STOP file exists, as Ctrl-C in it would.
STOPPABLE = """
def test_stop(deploy_target):
    if Path("STOP").exists():
        raise KeyboardInterrupt
"""
# Bounded: a run that is not stopped (a bug) ends on its own after 60 s, and a memory
# child whose parent is gone stops at once.
HOLD = """
def hold():
    Path("READY").touch()
    parent, deadline = os.getppid(), time.monotonic() + 60
    while time.monotonic() < deadline and os.getppid() == parent:
        time.sleep(0.05)
"""
HOLDING_TESTS = {
    "plain": "def test_held(deploy_target):\n    hold()\n",
    "soak": (
        "from pytest_deploycheck import soak\n\n"
        "@soak(minutes=5)\ndef test_held(deploy_target):\n    hold()\n"
    ),
    "latency": (
        "from pytest_deploycheck import latency_under\n\n"
        "@latency_under(10_000)\ndef test_held(deploy_target):\n    hold()\n"
    ),
    "memory": (
        "from pytest_deploycheck import memory_under\n\n"
        "@memory_under(100_000, repeat=1)\ndef test_held(deploy_target):\n"
        "    if 'DEPLOYCHECK_MEMORY_CHILD' in os.environ:\n        hold()\n"
    ),
}
# The child is started with SIGINT raising KeyboardInterrupt, as in a terminal: a
# process started in the background (an xdist worker of this suite) may inherit SIGINT
# ignored, and Python then keeps it ignored.
PYTEST_WITH_SIGINT = (
    "import signal, sys, pytest; signal.signal(signal.SIGINT, signal.default_int_handler);"
    " sys.exit(pytest.console_main())"
)


@pytest.fixture
def deploy_project(deploy_project: DeployProject) -> DeployProject:
    """The reference project with edge-c as its configured target."""
    return deploy_project.replace(target="edge-c")


def report_at(directory: Path) -> dict[str, Any]:
    return json.loads((directory / "report.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def first_reason(report: dict[str, Any]) -> str:
    reasons: list[str] = report["verdict"]["reasons"]
    assert reasons, report["verdict"]
    return reasons[0]


def complete_run(pytester: pytest.Pytester, *args: str) -> None:
    result = pytester.runpytest(*args)
    result.stdout.fnmatch_lines(["release_candidate: True"])
    assert result.ret == pytest.ExitCode.OK


def run_and_signal(
    pytester: pytest.Pytester, sig: signal.Signals, *args: str, timeout_s: float = 120.0
) -> tuple[int, str]:
    """Start pytest, send *sig* once a test touched READY; its exit code and output.

    A marker file rather than a marker line: no thread has to read the pipe while the
    run is going, and every wait is bounded.
    """
    ready = pytester.path / "READY"
    process = subprocess.Popen(
        [sys.executable, "-c", PYTEST_WITH_SIGINT, "-p", "no:cacheprovider", *args],
        cwd=pytester.path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + timeout_s
        while not ready.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists(), "the test never reached its marker"
        process.send_signal(sig)
        output, _ = process.communicate(timeout=timeout_s)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return process.returncode, output.decode("utf-8", "replace")


# --------------------------------------------------------------------------- in progress


def test_a_run_in_progress_is_marked_running_and_not_a_release_candidate(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(
        FIT
        + """
import json

def test_reads_the_marker(deploy_target):
    report = json.loads(Path("deploycheck-evidence/edge-c/report.json").read_text())
    assert report["status"] == "running"
    assert report["verdict"]["release_candidate"] is False
    assert "run in progress or died" in report["verdict"]["reasons"][0]
    summary = Path("deploycheck-evidence/edge-c/summary.md").read_text()
    assert "run in progress or died" in summary
"""
    )
    complete_run(pytester)
    report = deploy_project.report()
    assert report["status"] == "complete"
    assert report["partial"] is False


def test_a_session_that_dies_leaves_running_with_the_last_finished_set_in_previous(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(FIT + "\ndef test_dies(deploy_target):\n    if Path('DIE').exists():\n"
                        "        os._exit(3)\n")  # fmt: skip
    complete_run(pytester)
    (pytester.path / "DIE").touch()
    # Subprocess: the body ends its own process, as kill -9 would.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == 3
    report = deploy_project.report()
    assert report["status"] == "running"
    assert report["verdict"]["release_candidate"] is False
    assert "run in progress or died" in first_reason(report)
    assert "run in progress or died" in (deploy_project.evidence() / "run.log").read_text()
    assert not (deploy_project.evidence() / "metrics.csv").exists()
    previous = report_at(deploy_project.evidence() / "previous")
    assert (previous["status"], previous["verdict"]["release_candidate"]) == ("complete", True)


def test_the_previous_set_moves_to_previous_and_replaces_an_older_one(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(FIT)
    evidence = deploy_project.evidence()
    complete_run(pytester, "-v")
    (evidence / "soak_test_old_soak_30min.csv").write_text("t_s\n", encoding="utf-8")
    (evidence / ".report.json.abc123.tmp").write_text("{half", encoding="utf-8")
    complete_run(pytester, "-q")
    assert not (evidence / "soak_test_old_soak_30min.csv").exists()
    assert (evidence / "previous" / "soak_test_old_soak_30min.csv").is_file()
    assert "-v" in report_at(evidence / "previous")["command_line"]
    assert not list(evidence.rglob("*.tmp")), "a stale temporary file is removed at start"
    complete_run(pytester, "-rA")
    assert "-q" in report_at(evidence / "previous")["command_line"]
    assert not (evidence / "previous" / "soak_test_old_soak_30min.csv").exists()
    assert not (evidence / "previous" / "previous").exists()
    assert "-rA" in report_at(evidence)["command_line"]


def test_a_run_without_deploy_tests_leaves_the_last_set_in_place(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(FIT)
    pytester.makepyfile(test_other="def test_plain():\n    pass\n")
    complete_run(pytester, "test_deploy.py")
    before = (deploy_project.evidence() / "report.json").read_text()
    pytester.runpytest("test_other.py").assert_outcomes(passed=1)
    assert (deploy_project.evidence() / "report.json").read_text() == before
    assert not (deploy_project.evidence() / "previous").exists()


# --------------------------------------------------------------------------- interrupted


def test_a_keyboard_interrupt_in_a_body_ends_the_run_interrupted(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(FIT + STOPPABLE)
    complete_run(pytester)
    (pytester.path / "STOP").touch()
    # pytester raises the inner run's KeyboardInterrupt again unless told not to.
    result = pytester.runpytest(no_reraise_ctrlc=True)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["release_candidate: False", "  - run interrupted*"])
    result.stdout.no_fnmatch_line("release_candidate: True")
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    report = deploy_project.report()
    assert report["verdict"]["release_candidate"] is False
    assert (report["status"], report["partial"]) == ("interrupted", True)
    assert first_reason(report).startswith("run interrupted")
    assert any("partial" in caveat for caveat in report["verdict"]["caveats"])
    previous = report_at(deploy_project.evidence() / "previous")
    assert (previous["status"], previous["verdict"]["release_candidate"]) == ("complete", True)


def test_an_interrupted_run_is_not_saved_as_a_baseline(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(FIT + STOPPABLE)
    (pytester.path / "STOP").touch()
    saved = pytester.path / "release.json"
    result = pytester.runpytest("--deploy-save", str(saved), no_reraise_ctrlc=True)
    result.stdout.fnmatch_lines(["release_candidate: False", "baseline not saved: *interrupted*"])
    assert not saved.exists()
    assert deploy_project.report()["status"] == "interrupted"


@pytest.mark.parametrize(
    ("kind", "sig"),
    [
        ("plain", signal.SIGTERM),
        ("soak", signal.SIGINT),
        ("latency", signal.SIGINT),
        ("memory", signal.SIGTERM),
    ],
)
def test_a_signal_during_a_measurement_ends_the_run_interrupted(
    pytester: pytest.Pytester, deploy_project: DeployProject, kind: str, sig: signal.Signals
) -> None:
    deploy_project.make(FIT + HOLD + HOLDING_TESTS[kind])
    complete_run(pytester, "-k", "fits", "--deploy-allow-partial")
    # Subprocess: a real signal, sent to a pytest process of its own.
    returncode, output = run_and_signal(pytester, sig)
    assert returncode == pytest.ExitCode.INTERRUPTED, output
    assert "release_candidate: False" in output
    assert "release_candidate: True" not in output
    assert "INTERNALERROR" not in output
    report = deploy_project.report()
    assert report["verdict"]["release_candidate"] is False
    assert report["status"] == "interrupted"
    assert first_reason(report).startswith("run interrupted")
    assert sig.name in first_reason(report) or sig is signal.SIGINT
    previous = report_at(deploy_project.evidence() / "previous")
    assert previous["status"] == "partial"


# --------------------------------------------------------------------------- xdist crash


def test_a_crashed_xdist_worker_fails_the_verdict(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    pytest.importorskip("xdist")
    deploy_project.make(
        FIT + "\ndef test_crash(deploy_target):\n    if Path('CRASH').exists():\n"
        "        os._exit(1)\n"
    )
    complete_run(pytester)
    (pytester.path / "CRASH").touch()
    # Subprocess: the crashing worker is a process of its own anyway.
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["release_candidate: False"])
    result.stdout.no_fnmatch_line("release_candidate: True")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    report = deploy_project.report()
    assert report["verdict"]["release_candidate"] is False
    assert report["failed_tests"] == ["test_deploy.py::test_crash"]
    assert any("crashed" in reason for reason in report["verdict"]["reasons"])
    previous = report_at(deploy_project.evidence() / "previous")
    assert (previous["status"], previous["verdict"]["release_candidate"]) == ("complete", True)


# --------------------------------------------------------------------------- partial runs


def test_deselecting_deploy_tests_makes_the_run_partial(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(FIT + SECOND_FIT)
    result = pytester.runpytest("-k", "not baseline")
    result.assert_outcomes(passed=3, deselected=3)
    result.stdout.fnmatch_lines(["release_candidate: False", "  - partial run: 3 deploy test*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    report = deploy_project.report()
    assert (report["status"], report["partial"]) == ("partial", True)
    assert first_reason(report).startswith("partial run:")
    assert "--deploy-allow-partial" in first_reason(report)


def test_deselection_on_xdist_workers_makes_the_run_partial(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    pytest.importorskip("xdist")
    deploy_project.make(FIT + SECOND_FIT)
    # Subprocess: xdist workers are separate interpreters anyway; they deselect, and
    # the controller hears of it when each goes down.
    result = pytester.runpytest_subprocess(
        "-n", "2", "-p", "no:cacheprovider", "-k", "not baseline"
    )
    result.stdout.fnmatch_lines(["release_candidate: False", "  - partial run: 3 deploy test*"])
    assert deploy_project.report()["status"] == "partial"


def test_collect_only_leaves_the_evidence_alone(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(FIT)
    complete_run(pytester)
    before = (deploy_project.evidence() / "report.json").read_text()
    pytester.runpytest("--collect-only").stdout.no_fnmatch_line("*partial run*")
    assert (deploy_project.evidence() / "report.json").read_text() == before
    assert not (deploy_project.evidence() / "previous").exists()


def test_a_deselected_plain_test_leaves_the_run_whole(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(FIT + "\ndef test_plain():\n    pass\n")
    result = pytester.runpytest("--deselect", "test_deploy.py::test_plain")
    result.stdout.fnmatch_lines(["release_candidate: True"])
    assert deploy_project.report()["status"] == "complete"


def test_a_path_that_leaves_baseline_checks_out_is_partial(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(FIT)
    # A latency check: the kind a baseline keeps (device fit is judged from the config).
    pytester.makepyfile(
        test_more="import pytest\n\n"
        "@pytest.mark.latency_under(10_000, min_samples=150, max_samples=150, warmup=1)\n"
        "def test_quick(deploy_target):\n    pass\n"
    )
    baseline = pytester.path / "baseline.json"
    complete_run(pytester, "--deploy-save", str(baseline))
    result = pytester.runpytest("test_deploy.py", "--deploy-baseline", str(baseline))
    result.stdout.fnmatch_lines(
        ["release_candidate: False", "  - partial run: * in the baseline did not run*"]
    )
    report = deploy_project.report()
    assert (report["status"], report["verdict"]["release_candidate"]) == ("partial", False)
    assert "in the baseline did not run" in first_reason(report)


def test_allow_partial_judges_the_selection_with_a_caveat(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(FIT + SECOND_FIT)
    result = pytester.runpytest("-k", "not baseline", "--deploy-allow-partial")
    result.stdout.fnmatch_lines(["release_candidate: True", "  ! partial run: 3 deploy test*"])
    assert result.ret == pytest.ExitCode.OK
    report = deploy_project.report()
    assert (report["status"], report["partial"]) == ("partial", True)
    assert report["verdict"]["release_candidate"] is True
    assert report["verdict"]["caveats"][0].startswith("partial run:")


def test_allow_partial_from_the_config_file(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(FIT + SECOND_FIT, top="allow_partial = true")
    result = pytester.runpytest("-k", "not baseline")
    result.stdout.fnmatch_lines(["release_candidate: True"])
    assert deploy_project.report()["partial"] is True


def test_last_failed_runs_are_partial(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(FIT + "\ndef test_flaky(deploy_target):\n    assert Path('OK').exists()\n")
    pytester.runpytest().stdout.fnmatch_lines(["release_candidate: False"])
    (pytester.path / "OK").touch()
    # --lf leaves the passed tests out at collection: no deselection says so.
    result = pytester.runpytest("--lf")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["release_candidate: False", "  - partial run: --lf *"])
    assert deploy_project.report()["status"] == "partial"


def test_a_run_stopped_by_maxfail_is_partial(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(FIT + "\ndef test_plain_fails():\n    assert False\n" + SECOND_FIT)
    result = pytester.runpytest("-x")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["release_candidate: False", "  - partial run: stopped*"])
    report = deploy_project.report()
    assert (report["status"], report["verdict"]["release_candidate"]) == ("partial", False)


# --------------------------------------------------------------------------- earlier files


def test_a_stale_failure_cases_file_does_not_count_as_evidence(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(FIT, top='required_evidence = ["failure_cases.md"]')
    evidence = deploy_project.evidence()
    evidence.mkdir(parents=True)
    (evidence / "failure_cases.md").write_text("# from an earlier run\n", encoding="utf-8")
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["release_candidate: False", "  - has_failure_cases*"])
    report = deploy_project.report()
    has = next(c for c in report["checks"] if c["name"] == "has_failure_cases")
    assert has["status"] == "FAIL"
    assert not (evidence / "failure_cases.md").exists()
    assert (evidence / "previous" / "failure_cases.md").is_file()


def test_failure_cases_kept_beside_the_config_still_count(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(FIT, top='required_evidence = ["failure_cases.md"]')
    pytester.makefile(".md", failure_cases="# Known\n")
    complete_run(pytester)
    complete_run(pytester)
    kept = (pytester.path / "failure_cases.md").read_text()
    assert (deploy_project.evidence() / "failure_cases.md").read_text() == kept
