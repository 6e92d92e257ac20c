"""The soak marker as users run it: short real soaks in pytester projects.

Every soak here runs for about a second (``minutes=0.02``, or a cap of
``--deploy-soak-minutes=0.02`` on a longer marker), and every assertion is about
behaviour, never speed: the leaking test leaks megabytes a second (far past any
allocator step), the steady one allocates nothing, and the broken one raises on
every call.
"""

from __future__ import annotations

import csv
import io
import os
import re
import select
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import pytest

from pytest_deploycheck.report.evidence import TIMESERIES_COLUMNS

if TYPE_CHECKING:
    from conftest import DeployProject

STEADY_AND_LEAKING = """
import time

import pytest

LEAKED = []


@pytest.mark.soak(0.02)
def test_steady():
    sum(range(100))


@pytest.mark.soak(minutes=0.02)
def test_leaking():
    LEAKED.append(bytearray(8192))  # 8 kB a call, kept forever
    time.sleep(0.0002)  # a few MB a second, not gigabytes, however fast the machine
"""

STEADY_30_MIN = """
import pytest


@pytest.mark.soak(minutes=30)
def test_long():
    sum(range(100))
"""

STEADY_SHORT = """
import pytest


@pytest.mark.soak(minutes={minutes})
def test_steady():
    sum(range(100))
"""

TARGET = "--deploy-target=edge-a"


@pytest.fixture
def deploy_project(deploy_project: DeployProject) -> DeployProject:
    """This module's projects: no models, one device, edge-a, named on the command line."""
    return deploy_project.replace(
        models={}, devices=({"name": "edge-a", "memory_mb": 512, "cpus": 1},), files={}
    )


def soak_checks(project: DeployProject) -> dict[str, dict[str, Any]]:
    """The soak checks of report.json by the name of their test."""
    return project.checks("edge-a", metric="soak_memory_growth")


# --------------------------------------------------------------------------- pass and fail


def test_a_steady_soak_passes_and_a_leaking_one_fails_with_evidence(
    pytester: pytest.Pytester,
    deploy_project: DeployProject,
) -> None:
    deploy_project.make(STEADY_AND_LEAKING, "test_user_soak_leak")
    result = pytester.runpytest(TARGET)
    result.assert_outcomes(passed=1, failed=1)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "*deploy readiness: edge-a*",
            "soak_0.02min  * over *calls, 0 errors (0.00%)*budget 10 MB/h*measured*PASS",
            # The row leads with the resident set's figure: a slope with its interval, or
            # "grew 0.54 MB in 0.96 s" when a loaded machine fitted few calls in; the
            # heap's slope follows either way.
            "soak_0.02min  *MB/h*over *calls, 0 errors (0.00%)*budget 10 MB/h*FAIL",
            "release_candidate: False",
            # Either series may be the faster-growing one ("memory grows" for the resident
            # set, "heap memory in use grows" for the allocator), depending on how many
            # calls a loaded machine fits into the soak; the other series' verdict may
            # follow after a semicolon.
            "  - soak_0.02min: * MB/h (budget 10 MB/h) - *memory*grows * MB/h (CI * to *),"
            " over the budget of 10 MB/h*",
        ]
    )
    result.stdout.fnmatch_lines(  # the test's own failure, in one line
        [
            "_*_ test_leaking _*_",
            "soak_0.02min: * MB/h (budget 10 MB/h) - *memory*grows * MB/h (CI * to *),"
            " over the budget of 10 MB/h*",
        ]
    )

    checks = soak_checks(deploy_project)
    steady, leaking = checks["test_steady"], checks["test_leaking"]
    assert (steady["status"], leaking["status"]) == ("PASS", "FAIL")
    assert leaking["value"] > leaking["budget"] == 10.0
    assert leaking["unit"] == "MB/h"
    for name, check in checks.items():
        extra = check["extra"]
        # report.json points at the CSV instead of carrying the rows.
        assert "timeseries" not in extra
        assert extra["timeseries_file"] == f"soak_{name}_soak_0.02min.csv"
        assert extra["timeseries_columns"] == list(TIMESERIES_COLUMNS)
        assert extra["configured_minutes"] == 0.02
        assert extra["shortened_by"] is None
        assert extra["calls"] > 0 and extra["errors"] == 0
        assert check["caveats"] == []

        text = (deploy_project.evidence("edge-a") / extra["timeseries_file"]).read_text()
        assert text.splitlines()[0] == (
            "t_s,phase,rss_mb,calls,errors,p50_ms,p95_ms,max_ms,heap_mb"
        )
        rows = list(csv.DictReader(io.StringIO(text)))
        assert rows  # how many depends on the machine's speed; what they hold does not
        warmup_s = extra["warmup_s"]
        assert all(
            row["phase"] == ("warmup" if float(row["t_s"]) < warmup_s else "judged") for row in rows
        )
        assert sum(int(row["calls"]) for row in rows) == extra["calls"]
        times = [float(row["t_s"]) for row in rows]
        assert times == sorted(times)

    run_log = (deploy_project.evidence("edge-a") / "run.log").read_text()
    assert "release_candidate: False" in run_log
    assert re.search(r"^  FAIL +soak_0\.02min: .* MB/h .*\[.*::test_leaking\]$", run_log, re.M)
    # The resident set or the allocator's heap, whichever grew faster (see above).
    assert re.search(r"^      why: (heap )?memory (in use )?grows .* MB/h", run_log, re.M)
    failed = run_log.split("failed tests:\n", 1)[1]
    assert re.match(r"  test_user_soak_leak\.py::test_leaking: soak_0\.02min: .*MB/h", failed)
    assert "soak_test_leaking_soak_0.02min.csv" in run_log


def test_a_soak_whose_every_call_raises_fails_early(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    tests = """
import pytest


@pytest.mark.soak(minutes=0.05)
def test_broken():
    raise RuntimeError("model not loaded")
"""
    deploy_project.make(tests, "test_user_soak_broken")
    result = pytester.runpytest(TARGET)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*soak_0.05min*FAIL",
            "release_candidate: False",
            "*stopped after the first 20 calls all raised*",
        ]
    )
    extra = soak_checks(deploy_project)["test_broken"]["extra"]
    assert extra["calls"] == extra["errors"] == 20
    assert extra["error_examples"] == ["RuntimeError: model not loaded"]
    details = soak_checks(deploy_project)["test_broken"]["details"]
    assert "first: RuntimeError: model not loaded" in details


# --------------------------------------------------------------------------- the cap


def test_the_command_line_caps_a_long_soak_and_says_so(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(STEADY_30_MIN, "test_user_soak_cap_cli")
    result = pytester.runpytest(TARGET, "--deploy-soak-minutes=0.02")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "soak_30min  * over * s of 30 min, *budget 10 MB/h*PASS",
            "release_candidate: True",
            "  ! soak_30min ran * of the 30 min its marker asks for (--deploy-soak-minutes=0.02);"
            " run it in full before calling the device ready (--deploy-soak-minutes=full)",
        ]
    )
    extra = soak_checks(deploy_project)["test_long"]["extra"]
    assert extra["configured_minutes"] == 30
    assert 0.02 <= extra["minutes_run"] < 1
    assert extra["shortened_by"] == "--deploy-soak-minutes=0.02"
    verdict = deploy_project.report("edge-a")["verdict"]
    assert verdict["release_candidate"] is True
    assert len(verdict["caveats"]) == 1
    assert "--deploy-soak-minutes=0.02" in verdict["caveats"][0]


def test_the_config_caps_a_long_soak_and_is_named(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(STEADY_30_MIN, "test_user_soak_cap_cfg", top="soak_max_minutes = 0.02")
    result = pytester.runpytest(TARGET)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "  ! soak_30min ran * of the 30 min its marker asks for"
            " (soak_max_minutes in pyproject.toml)*"
        ]
    )
    assert soak_checks(deploy_project)["test_long"]["extra"]["minutes_run"] < 1


def test_the_environment_caps_a_long_soak(
    pytester: pytest.Pytester, deploy_project: DeployProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPLOYCHECK_SOAK_MINUTES", "0.02")
    deploy_project.make(STEADY_30_MIN, "test_user_soak_cap_env")
    result = pytester.runpytest(TARGET)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["  ! soak_30min ran * of the 30 min*(DEPLOYCHECK_SOAK_MINUTES=0.02)*"]
    )


def test_full_lifts_the_configured_cap(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(
        STEADY_SHORT.format(minutes=0.02),
        "test_user_soak_full",
        top="soak_max_minutes = 0.01",
    )
    result = pytester.runpytest(TARGET, "--deploy-soak-minutes=full")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["soak_0.02min  *PASS", "release_candidate: True"])
    result.stdout.no_fnmatch_line("*! soak_*")
    extra = soak_checks(deploy_project)["test_steady"]["extra"]
    assert extra["minutes_run"] >= 0.02  # the marker's full 1.2 s, not the config's 0.6 s
    assert extra["shortened_by"] is None
    assert deploy_project.report("edge-a")["verdict"]["caveats"] == []


def test_a_bad_cap_is_a_usage_error_in_one_line(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(STEADY_30_MIN, "test_user_soak_bad_cap")
    result = pytester.runpytest(TARGET, "--deploy-soak-minutes=abc")
    assert result.ret == pytest.ExitCode.USAGE_ERROR == 4
    mentions = [line for line in result.stderr.lines if "--deploy-soak-minutes" in line]
    assert mentions == [
        "ERROR: --deploy-soak-minutes 'abc': expected a number of minutes > 0 (e.g. 0.5)"
        " or 'full' (run every soak for the minutes its marker gives)"
    ]
    assert "Traceback" not in result.stderr.str() + result.stdout.str()
    assert not (pytester.path / "deploycheck-evidence").exists()


# --------------------------------------------------------------------------- bad markers


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("soak(minutes=-1)", "@soak minutes: expected a finite number > 0, got -1"),
        (
            "soak(0.02, max_error_rate=2)",
            "@soak max_error_rate: expected a fraction of calls from 0 to 1, e.g. 0.001, got 2",
        ),
        (
            "soak(0.02, minute=5)",
            "@soak: unknown argument 'minute'; the signature is soak(minutes=None, *,"
            " growth_mb_per_hour=None, *",
        ),
        ("soak(0.02, warmup=0.95)", "@soak warmup: expected the fraction of the soak left out*"),
    ],
)
def test_bad_soak_markers_fail_collection_in_one_line(
    pytester: pytest.Pytester, deploy_project: DeployProject, marker: str, message: str
) -> None:
    deploy_project.make(
        f"import pytest\n\n@pytest.mark.{marker}\ndef test_x(): pass\n",
        "test_user_soak_bad",
    )
    result = pytester.runpytest(TARGET)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*test_user_soak_bad.py::test_x: {message}"])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    result.stdout.no_fnmatch_line("*Traceback*")


# --------------------------------------------------------------------------- progress


def test_progress_in_a_log_is_a_start_and_a_final_line(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(STEADY_SHORT.format(minutes=0.02), "test_user_soak_log")
    result = pytester.runpytest(TARGET)  # pytester's output is not a terminal
    result.assert_outcomes(passed=1)
    lines = result.stdout.lines
    start = lines.index("soak_0.02min test_steady: running for 1.2 s")
    final = lines[start + 1]
    assert re.fullmatch(
        r"soak_0\.02min test_steady: PASS .* over [\d.]+ s, [\d,]+ calls, 0 errors \(0\.00%\).*",
        final,
    )
    # The test's result letter is on its own line with the file name, not glued to
    # the progress line.
    assert re.fullmatch(r"test_user_soak_log\.py \.\s*(\[100%\])?", lines[start + 2])
    assert "\r" not in result.stdout.str()
    assert len([line for line in lines if line.startswith("soak_0.02min test_steady:")]) == 2


def test_progress_of_a_capped_soak_says_what_capped_it(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(STEADY_30_MIN, "test_user_soak_log_cap")
    result = pytester.runpytest(TARGET, "--deploy-soak-minutes=0.02", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "soak_30min test_long: running for 1.2 s (marker: 30 min;"
            " capped by --deploy-soak-minutes=0.02)",
            "soak_30min test_long: PASS * of 30 min*",
            "test_user_soak_log_cap.py::test_long PASSED*",
        ]
    )


def test_quiet_runs_show_no_progress(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(STEADY_SHORT.format(minutes=0.02), "test_user_soak_quiet")
    result = pytester.runpytest(TARGET, "-q")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*running for*")
    result.stdout.no_fnmatch_line("*test_steady: PASS*")
    result.stdout.fnmatch_lines(["soak_0.02min  *PASS"])  # the summary still has it


def read_pty(master: int, process: subprocess.Popen[bytes], timeout_s: float) -> bytes:
    """Everything the child writes to the terminal, until it exits and the pty is closed."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if not ready:
            if process.poll() is not None:
                break
            continue
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: every writer is gone
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pseudo-terminals as on Linux")
def test_progress_on_a_terminal_rewrites_one_status_line(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    import pty

    deploy_project.make(STEADY_SHORT.format(minutes=0.05), "test_user_soak_tty")
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "TERM": "xterm", "PY_COLORS": "0"}
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", TARGET],
            cwd=pytester.path,
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=slave,
            env=env,
        )
        os.close(slave)
        slave = -1
        try:
            raw = read_pty(master, process, timeout_s=120.0)
        finally:
            if process.poll() is None:
                process.kill()
            returncode = process.wait()
    finally:
        os.close(master)
        if slave != -1:
            os.close(slave)
    output = raw.decode("utf-8", "replace")
    assert returncode == 0, output
    # The start line and at least two updates, each rewriting the line in place ...
    assert "\rsoak_0.05min test_steady: running for 3 s" in output
    updates = re.findall(r"\rsoak_0\.05min test_steady: \d+\.\ds/3\.0s [\d,]+ calls", output)
    assert len(updates) >= 2, output
    # ... and the final line rewriting it once more, then the result on a fresh line.
    final = re.search(
        r"\rsoak_0\.05min test_steady: PASS [^\r\n]* over [\d.]+ s, [\d,]+ calls,"
        r" 0 errors[^\r\n]*\r?\n",
        output,
    )
    assert final is not None, output
    assert re.search(r"test_user_soak_tty\.py \.", output[final.end() :])
    assert "release_candidate: True" in output


def test_a_soak_on_a_benchmark_test_is_refused_at_collection(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On xdist's first worker pytest-benchmark warns at session end that xdist disables
    # it, and the suite turns warnings into errors: the inner run must not look like gw0.
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    pytester.makepyprojecttoml(
        """
        [tool.deploycheck]
        target = "edge-a"
        [[tool.deploycheck.devices]]
        name = "edge-a"
        """
    )
    pytester.makepyfile(
        test_user_soak_bench="""
        import pytest

        @pytest.mark.soak(0.01)
        def test_bench(benchmark):
            benchmark(lambda: None)
        """
    )
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["*test_bench: @soak calls the test body itself*benchmark*"])
    # Found at collection, reported as that test's error at setup: the body never runs.
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ERROR at setup of test_bench*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
