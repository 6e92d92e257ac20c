"""The memory probe's own readings, the measuring children's process groups, and the
memory test whose body runs only in its child."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import pytest

from pytest_deploycheck.measure import children
from pytest_deploycheck.measure.memory import current_rss_bytes, peak_rss_bytes

if TYPE_CHECKING:
    from conftest import DeployProject

PARENT_BYTES = 300_000_000


def test_the_peak_is_at_least_the_current_resident_size() -> None:
    assert peak_rss_bytes() >= current_rss_bytes() > 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="exec and vfork semantics")
def test_a_child_reports_its_own_peak_not_its_parents() -> None:
    # subprocess spawns with vfork: getrusage's ru_maxrss in the child would carry this
    # process's high-water mark over the exec.
    held = bytearray(PARENT_BYTES)
    code = "from pytest_deploycheck.measure.memory import peak_rss_bytes; print(peak_rss_bytes())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    del held
    assert int(out.stdout) < PARENT_BYTES / 2


# --------------------------------------------------------------------------- child processes

GRANDCHILD = """
import subprocess, sys, time
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
with open(sys.argv[1], "w") as f:
    f.write(str(grandchild.pid))
time.sleep(300)
"""


def started_grandchild(pid_file: Path) -> int:
    """The pid the child wrote once its own child was running."""
    deadline = time.monotonic() + 30
    while not pid_file.is_file() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the child never started its child"
        time.sleep(0.05)
    return int(pid_file.read_text())


def is_gone(pid: int) -> bool:
    """Whether *pid* ended (a zombie awaiting its reaper counts as ended)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.skipif(os.name != "posix", reason="process groups")
def test_a_timed_out_child_is_killed_with_its_own_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    command = [sys.executable, "-c", GRANDCHILD, str(pid_file)]
    process = children.popen_group(command)
    with pytest.raises(subprocess.TimeoutExpired), children.killed_on_error(process):
        grandchild = started_grandchild(pid_file)
        process.wait(timeout=0.1)
    assert process.poll() is not None
    assert is_gone(grandchild)


@pytest.mark.skipif(os.name != "posix", reason="process groups")
def test_run_group_kills_the_group_on_its_timeout(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    command = [sys.executable, "-c", GRANDCHILD, str(pid_file)]
    with pytest.raises(subprocess.TimeoutExpired):
        # The 300 s sleeps end early: the whole group is killed at the 5 s timeout.
        children.run_group(command, timeout_s=5.0)
    assert is_gone(started_grandchild(pid_file))


@pytest.mark.skipif(os.name != "posix", reason="process groups")
def test_an_interrupt_in_the_parent_kills_the_child_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    process = children.popen_group([sys.executable, "-c", GRANDCHILD, str(pid_file)])
    with pytest.raises(KeyboardInterrupt), children.killed_on_error(process):
        grandchild = started_grandchild(pid_file)
        raise KeyboardInterrupt  # what Ctrl-C raises in the parent while it waits
    assert process.poll() is not None
    assert is_gone(grandchild)


def test_the_child_leads_a_process_group_of_its_own() -> None:
    completed = children.run_group(
        [sys.executable, "-c", "import os; print(os.getpgid(0) == os.getpid())"], timeout_s=60
    )
    assert completed.stdout.strip() == ("True" if os.name == "posix" else "")


# --------------------------------------------------------------------------- the plugin


def test_the_body_of_a_memory_test_runs_in_the_child_only(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    tests = """
import os
from pytest_deploycheck import memory_under

@memory_under("100 GB", repeat=3)
def test_small():
    where = "child" if "DEPLOYCHECK_MEMORY_CHILD" in os.environ else "parent"
    with open("calls.txt", "a") as calls:
        calls.write(where + "\\n")
"""
    deploy_project.make(tests)
    result = pytester.runpytest("--deploy-target", "edge-c")
    result.assert_outcomes(passed=1)
    assert (pytester.path / "calls.txt").read_text().split() == ["child"] * 3
