"""Unit tests of terminal.py: the lines of the ``deploy readiness`` section, and how
they reach pytest's terminal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_deploycheck.checks.record import Check
from pytest_deploycheck.terminal import NOTHING_RAN, summary_lines, write_readiness_section
from readiness_builders import (
    DEVICE_ORDER,
    EDGE_A,
    EDGE_B,
    LATENCY,
    REFERENCE_FIT_LINE,
    finish_and_write,
    fit_checks,
    make_config,
    make_run,
)


class FakeReporter:
    """The TerminalReporter calls the section makes, with their markup."""

    def __init__(self) -> None:
        self.separators: list[str] = []
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def write_sep(self, sep: str, title: str) -> None:
        self.separators.append(title)

    def write_line(self, line: str, **markup: Any) -> None:
        self.lines.append((line, markup))


# --------------------------------------------------------------------------- summary lines


def test_summary_of_a_release_candidate(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    run = make_run(tmp_path, config)
    run.add_checks([LATENCY, *fit_checks(config)])

    lines = summary_lines(finish_and_write(run), config.device_names)

    assert REFERENCE_FIT_LINE in lines
    assert "  for optimized: 700 MB (declared), 10 W (declared), offline" in lines
    assert "  cheapest device that fits: edge-c (120 USD)" in lines
    assert "release_candidate: True" in lines
    assert (
        "evidence_files: ['metrics.csv', 'report.json', 'summary.md', 'report.html', 'run.log']"
        in lines
    )
    assert f"evidence_dir: {tmp_path / 'evidence' / 'edge-c'}" in lines
    table = [line for line in lines if line.startswith(("latency_under", "device_fit["))]
    assert len(table) == 2, "only gating checks are in the table"
    latency_cells = ["latency_under_80", "61.2", "ms", "budget", "80", "ms", "measured", "PASS"]
    assert table[0].split() == latency_cells
    assert table[1].startswith("device_fit[optimized@edge-c]")
    assert table[1].endswith("PASS")


def test_summary_of_a_run_that_is_not_a_release_candidate(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    run = make_run(tmp_path, config)
    slow = Check(name="latency_under_50", metric="latency_p95", value=61.2, unit="ms", budget=50)
    run.add_checks([Check.from_dict({**slow.as_dict(), "passed": False})])
    run.add_test_outcome("tests/test_model.py::test_broken", failed=True)

    lines = summary_lines(run.finish(), config.device_names)

    assert "release_candidate: False" in lines
    assert "  - latency_under_50: 61.2 ms (budget 50 ms)" in lines
    assert "  - tests/test_model.py::test_broken: test failed" in lines


def test_summary_with_nothing_checked_says_so(tmp_path: Path) -> None:
    lines = summary_lines(make_run(tmp_path).finish(), DEVICE_ORDER)

    assert lines == ["release_candidate: False", "  - no deploy check ran"]


def test_summary_says_when_no_device_fits(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    run = make_run(tmp_path, config)
    run.add_checks(fit_checks(config, devices=(EDGE_A, EDGE_B)))

    lines = summary_lines(run.finish(), config.device_names)

    assert "  no device in the table fits" in lines


def test_summary_shows_the_display_text_of_a_check(tmp_path: Path) -> None:
    config = make_config(tmp_path, required_evidence=("failure_cases.md",))
    run = make_run(tmp_path, config)

    lines = summary_lines(run.finish(), config.device_names)

    assert any(line.startswith("has_failure_cases") and "missing" in line for line in lines)


@pytest.mark.parametrize("release_candidate", [True, False])
def test_summary_states_the_verdict_in_the_contract_words(
    tmp_path: Path, release_candidate: bool
) -> None:
    run = make_run(tmp_path)
    run.add_checks([Check.from_dict({**LATENCY.as_dict(), "passed": release_candidate})])

    lines = summary_lines(run.finish(), DEVICE_ORDER)

    assert f"release_candidate: {release_candidate}" in lines


def _offline_pass(nodeid: str) -> Check:
    return Check(
        name="offline",
        metric="network_attempts",
        value=0,
        unit="attempts",
        budget=0,
        nodeid=nodeid,
        display="no network attempt (network blocked)",
    )


def test_identical_passing_rows_are_printed_once_with_a_count(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    run.add_checks([_offline_pass("t.py::a"), LATENCY, _offline_pass("t.py::b")])

    lines = summary_lines(run.finish(), DEVICE_ORDER)

    offline = [line for line in lines if line.startswith("offline")]
    assert len(offline) == 1
    assert offline[0].startswith("offline (2 tests)")
    assert offline[0].endswith("PASS")


def test_failing_rows_are_never_collapsed(tmp_path: Path) -> None:
    failed = [
        Check("offline", metric="network_attempts", value=1, passed=False, nodeid=n)
        for n in ("t.py::a", "t.py::b")
    ]
    run = make_run(tmp_path)
    run.add_checks(failed)

    lines = summary_lines(run.finish(), DEVICE_ORDER)

    assert sum(1 for line in lines if line.startswith("offline ")) == 2


# --------------------------------------------------------------------------- the section


@pytest.mark.parametrize("release_candidate", [True, False])
def test_the_verdict_line_is_coloured_by_the_verdict(
    tmp_path: Path, release_candidate: bool
) -> None:
    run = make_run(tmp_path)
    run.add_checks([Check.from_dict({**LATENCY.as_dict(), "passed": release_candidate})])
    outcome = run.finish()
    reporter = FakeReporter()

    write_readiness_section(reporter, outcome, deploy_tests_ran=True)  # type: ignore[arg-type]

    assert reporter.separators == ["deploy readiness: edge-c"]
    assert [line for line, _ in reporter.lines] == summary_lines(outcome, DEVICE_ORDER)
    coloured = [(line, markup) for line, markup in reporter.lines if markup]
    assert coloured == [
        (
            f"release_candidate: {release_candidate}",
            {"green": release_candidate, "red": not release_candidate, "bold": True},
        )
    ]


def test_a_line_that_reads_like_the_verdict_is_not_coloured(tmp_path: Path) -> None:
    lookalike = Check("release_candidate: yes", metric="probe", value=1)
    run = make_run(tmp_path, target=None)
    run.add_checks([lookalike])
    reporter = FakeReporter()

    write_readiness_section(reporter, run.finish(), deploy_tests_ran=True)  # type: ignore[arg-type]

    assert reporter.separators == ["deploy readiness: no target"]
    assert reporter.lines[0][0].startswith("release_candidate: yes")
    coloured = [line for line, markup in reporter.lines if markup]
    assert coloured == ["release_candidate: False"]


def test_a_run_without_deploy_tests_says_no_evidence_was_written(tmp_path: Path) -> None:
    reporter = FakeReporter()
    outcome = make_run(tmp_path).finish()

    write_readiness_section(reporter, outcome, deploy_tests_ran=False)  # type: ignore[arg-type]

    assert [line for line, _ in reporter.lines][-1] == NOTHING_RAN


# --------------------------------------------------------------------------- hostile names


class FakeProgressReporter:
    """The TerminalReporter calls a progress sink makes, each with its text."""

    def __init__(self) -> None:
        self.written: list[str] = []
        self.currentfspath: object = None

    def isatty(self) -> bool:
        return True

    def write_line(self, text: str) -> None:
        self.written.append(text)

    def rewrite(self, text: str, erase: bool = False) -> None:
        self.written.append(text)

    def write(self, text: str) -> None:
        self.written.append(text)

    def ensure_newline(self) -> None: ...

    def flush(self) -> None: ...

    def write_fspath_result(self, nodeid: str, result: str) -> None: ...


def test_progress_lines_show_terminal_sequences_as_escapes() -> None:
    from pytest_deploycheck.terminal import TerminalProgressSink

    reporter = FakeProgressReporter()
    sink = TerminalProgressSink(reporter, None, "t.py::test_x", verbose=False)

    sink.line("warming \x1b]0;title\x07 up")
    sink.status("measuring \x1b[2J ok\nrelease_candidate: True")
    sink.done("done \x00")

    assert reporter.written == [
        "warming \\x1b]0;title\\x07 up",
        "measuring \\x1b[2J ok\\nrelease_candidate: True",
        "done \\x00",
    ]


def test_a_check_name_cannot_forge_a_verdict_line_in_the_summary(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    run = make_run(tmp_path, config)
    hostile = Check(
        name="ok\nrelease_candidate: True\x1b[2J",
        metric="custom",
        value=1.0,
        passed=False,
        details="\x1b]0;title\x07",
    )
    run.add_checks([hostile])

    lines = summary_lines(run.finish(), config.device_names)

    assert [line for line in lines if line.startswith("release_candidate:")] == [
        "release_candidate: False"
    ]
    assert not any("\x1b" in line or "\n" in line for line in lines)
    assert "  - ok\\nrelease_candidate: True\\x1b[2J: 1 - \\x1b]0;title\\x07" in lines
