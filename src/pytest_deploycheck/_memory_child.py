"""Entry point of the child process that measures one test's memory.

Run as ``python -m pytest_deploycheck._memory_child NODEID [pytest args]`` with
``DEPLOYCHECK_MEMORY_CHILD`` naming the JSON file to write.  The resident set size is
read before pytest is imported, so the bare interpreter can be told apart from the
test harness and from the workload.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from pytest_deploycheck.memory import CHILD_ENV, current_rss_bytes, peak_rss_bytes, write_probe

INTERPRETER_BYTES = current_rss_bytes()

import pytest  # noqa: E402  (imported after the interpreter's own footprint is read)


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


def main(argv: list[str]) -> int:
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
