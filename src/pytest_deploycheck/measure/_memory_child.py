"""Entry point of the child process that measures one test's memory.

Run by file path, ``python .../_memory_child.py NODEID [pytest args]``, with
``DEPLOYCHECK_MEMORY_CHILD`` naming the JSON file to write.  The resident set size is
read first thing, before this package (which imports pytest) or pytest itself is
imported, so the bare interpreter can be told apart from the test harness and from the
workload.  (``python -m`` would import the package before this file runs.)
"""

from __future__ import annotations

import os


def _interpreter_bytes() -> int:
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: read it the portable way, a little later
        return -1


INTERPRETER_BYTES = _interpreter_bytes()

import sys  # noqa: E402

# Run by path, Python put this package's folder first on sys.path, where its modules
# (config, stats, memory...) would shadow any top-level module of the same name.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402

from pytest_deploycheck.measure.accelerator import gpu_memory_used_mb, gpu_to_read  # noqa: E402
from pytest_deploycheck.measure.memory import (  # noqa: E402
    CHILD_ENV,
    current_rss_bytes,
    peak_rss_bytes,
    write_probe,
)
from pytest_deploycheck.measure.netguard import install_from_environment  # noqa: E402

if INTERPRETER_BYTES < 0:
    INTERPRETER_BYTES = current_rss_bytes()


class Probe:
    """Reads the resident set size at the points the parent needs."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {"interpreter_bytes": INTERPRETER_BYTES, "outcome": None}

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> None:
        self.data["harness_bytes"] = current_rss_bytes()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        self.data["before_setup_bytes"] = current_rss_bytes()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            self.data["outcome"] = "failed"
            lines = [line for line in report.longreprtext.splitlines() if line.strip()]
            self.data["reason"] = lines[-1] if lines else f"failed in {report.when}"
        elif report.skipped and self.data["outcome"] is None:
            self.data["outcome"] = "skipped"
            self.data["reason"] = "skipped: " + str(getattr(report, "longrepr", ""))
        elif report.when == "call" and report.passed and self.data["outcome"] is None:
            self.data["outcome"] = "passed"
            gpu = gpu_to_read()  # the session is still loaded: its GPU memory is in use
            if gpu is not None:
                self.data["accelerator_used_mb"] = gpu_memory_used_mb(gpu)


def main(argv: list[str]) -> int:
    # An offline test's workload must not reach the network here either; the blocked
    # attempts go to the parent's log.
    install_from_environment()
    probe = Probe()
    exit_code = int(pytest.main(argv, plugins=[probe]))
    probe.data["peak_bytes"] = peak_rss_bytes()
    probe.data["exit_code"] = exit_code
    if probe.data["outcome"] is None:
        probe.data["outcome"] = "not run"
        probe.data["reason"] = f"the test did not run (pytest exit code {exit_code})"
    write_probe(Path(os.environ[CHILD_ENV]), probe.data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
