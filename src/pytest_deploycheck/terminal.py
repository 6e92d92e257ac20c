"""What a configured run shows on pytest's terminal: progress lines while a check
measures, and the ``deploy readiness`` section at the end of the run.

Names and details are the user's data: every line is written through ``log_text``,
so a control character in them is shown as an escape, never obeyed by the terminal.
"""

from __future__ import annotations

import contextlib
import shutil
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .checks import metrics
from .checks.fit import fit_legend
from .checks.record import Check
from .config.escape import log_text
from .config.units import format_value
from .report.tables import count_repeats
from .verdict.run import FitGroup, RunOutcome

if TYPE_CHECKING:
    import pytest

NOTHING_RAN = "no deploy test ran: evidence files not written"


class TerminalProgressSink:
    """Progress lines on pytest's terminal, around output capturing.

    pytest captures the test's output while it runs, so the lines are written with
    capturing suspended.  Afterwards the test's file name (or, with -v, its node id)
    is written again, so its result letter does not land at the end of a progress line.
    """

    def __init__(self, reporter: Any, capture: Any, nodeid: str, *, verbose: bool) -> None:
        self.reporter = reporter
        self.capture = capture
        self.nodeid = nodeid
        self.verbose = verbose
        self.is_tty = bool(reporter.isatty())
        self._on_status_line = False

    def _suspended(self) -> Any:
        if self.capture is None:
            return contextlib.nullcontext()
        return self.capture.global_and_fixture_disabled()

    def line(self, text: str) -> None:
        with self._suspended():
            self.reporter.write_line(log_text(text))
            self.reporter.flush()

    def status(self, text: str) -> None:
        with self._suspended():
            if not self._on_status_line:
                self.reporter.ensure_newline()
                self._on_status_line = True
            self.reporter.rewrite(log_text(text), erase=True)
            self.reporter.flush()

    def done(self, text: str) -> None:
        text = log_text(text)
        with self._suspended():
            if self._on_status_line:
                self.reporter.rewrite(text, erase=True)
            else:
                self.reporter.ensure_newline()
                self.reporter.write(text)
            if self.verbose:
                # Not the prefix it wrote: pytest writes it again before the outcome.
                self.reporter.currentfspath = -2
            else:
                self.reporter.currentfspath = None
                self.reporter.write_fspath_result(self.nodeid, "")
            self.reporter.flush()
        self._on_status_line = False


def write_readiness_section(
    reporter: pytest.TerminalReporter, outcome: RunOutcome, *, deploy_tests_ran: bool
) -> None:
    """The ``deploy readiness`` section: checks, device fit, then the verdict in colour.

    The verdict line is green or red by the verdict itself, not by what the line says.
    """
    record = outcome.record
    reporter.write_sep("=", log_text(f"deploy readiness: {record.target or 'no target'}"))
    width = terminal_width(reporter)
    head, verdict_line, tail = summary_parts(outcome, record.config.device_names, width=width)
    if not deploy_tests_ran:
        tail.append(NOTHING_RAN)
    for line in head:
        reporter.write_line(line)
    good = outcome.verdict.release_candidate
    reporter.write_line(verdict_line, green=good, red=not good, bold=True)
    for line in tail:
        reporter.write_line(line)


def terminal_width(reporter: Any) -> int:
    """The width pytest writes its own lines to (``COLUMNS``, the terminal, else 80)."""
    writer = getattr(reporter, "_tw", None)  # pytest's own writer; no public accessor
    width = getattr(writer, "fullwidth", None)
    return width if isinstance(width, int) and width > 0 else shutil.get_terminal_size().columns


def summary_lines(
    outcome: RunOutcome, device_order: Sequence[str], *, width: int | None = None
) -> list[str]:
    """The body of the ``deploy readiness`` terminal section."""
    head, verdict_line, tail = summary_parts(outcome, device_order, width=width)
    return [*head, verdict_line, *tail]


def summary_parts(
    outcome: RunOutcome, device_order: Sequence[str], *, width: int | None = None
) -> tuple[list[str], str, list[str]]:
    """The lines before the verdict line, the verdict line, and the lines after it.

    Every line is escaped for the terminal: a newline or an ESC in a check name is
    shown as ``\\n`` or ``\\x1b``, never forges a line nor reaches the terminal.
    With a *width*, every line but the evidence paths fits it: a check row too wide
    becomes its name and status, with its figures wrapped under it.
    """
    head, tail = _summary_body(outcome, device_order)
    verdict_line = f"release_candidate: {outcome.verdict.release_candidate}"
    if width is None:
        return [log_text(line) for line in head], verdict_line, [log_text(line) for line in tail]
    rows = _check_rows([c for c in outcome.checks if c.gating])
    table = _fitted_table(rows, width)
    rest = [line for line in head[len(_table(rows)) :] for line in _wrapped(log_text(line), width)]
    return [*table, *rest], verdict_line, [w for t in tail for w in _wrapped(log_text(t), width)]


def _summary_body(outcome: RunOutcome, device_order: Sequence[str]) -> tuple[list[str], list[str]]:
    """The section's lines before and after the verdict line, not yet escaped."""
    head = _check_table([c for c in outcome.checks if c.gating])
    for group in outcome.fit_groups:
        head += _fit_lines(group, device_order)
    notes = list(dict.fromkeys(note for c in outcome.checks for note in c.notes))
    scheduling = _scheduling_note(outcome.checks)
    head += [f"note: {note}" for note in [*notes, *([scheduling] if scheduling else [])]]
    tail = [f"  - {reason}" for reason in outcome.verdict.reasons]
    tail += [f"  ! {caveat}" for caveat in outcome.verdict.caveats]
    tail += _written_lines(outcome)
    return head, tail


_LONG_PATH_LINES = ("evidence_files: ", "evidence_dir: ")


def _wrapped(line: str, width: int) -> list[str]:
    """*line* wrapped to *width*, continuation lines indented under its text."""
    if len(line) <= width or line.startswith(_LONG_PATH_LINES):
        return [line]
    body = line.lstrip(" ")
    lead = " " * (len(line) - len(body))
    marker = body[:2] if body[:2] in ("- ", "! ") else ""
    return textwrap.wrap(
        body,
        width=width,
        initial_indent=lead,
        subsequent_indent=lead + " " * (len(marker) or 4),
        break_on_hyphens=False,
    )


def _scheduling_note(checks: Sequence[Check]) -> str:
    """How the timed checks shared the host, from what each recorded (hostlock)."""
    from .measure.hostlock import scheduling_note

    holds = [
        (
            str(c.extra[metrics.TIMING_LOCK_KEY]),
            float(c.extra.get(metrics.LOCK_WAIT_KEY) or 0.0),
            str(c.extra.get(metrics.TIMING_LOCK_NOTE_KEY) or ""),
        )
        for c in checks
        if metrics.TIMING_LOCK_KEY in c.extra
    ]
    return scheduling_note(holds)


def _written_lines(outcome: RunOutcome) -> list[str]:
    """What became of the baseline, the step summary and the evidence files."""
    lines = []
    if outcome.saved_baseline:
        lines.append(outcome.saved_baseline)
    if outcome.step_summary_error:
        lines.append(f"GITHUB_STEP_SUMMARY not written: {outcome.step_summary_error}")
    if outcome.evidence_error:
        lines.append(f"evidence not written: {outcome.evidence_error}")
    # The files that were written, also when others were not.
    if outcome.evidence_dir is not None and outcome.evidence_files:
        lines.append(f"evidence_files: {outcome.evidence_files}")
        lines.append(f"evidence_dir: {outcome.evidence_dir}")
    return lines


def _check_table(checks: Sequence[Check]) -> list[str]:
    return _table(_check_rows(checks))


def _check_rows(checks: Sequence[Check]) -> list[tuple[str, ...]]:
    """Name, figure, budget, provenance and status of each check, as shown."""
    rows: list[tuple[str, ...]] = [
        (
            c.name,
            c.display or format_value(c.value, c.unit),
            "" if c.budget is None else f"budget {format_value(c.budget, c.unit)}",
            c.provenance,
            c.status,
        )
        for c in checks
    ]
    rows = [tuple(log_text(cell) for cell in row) for row in rows]  # aligned as shown
    # Ten tests that each ran offline without a network attempt are one line (with a
    # count); metrics.csv keeps every check.
    rows = [
        (f"{row[0]} ({n} tests)", *row[1:]) if n > 1 else row
        for row, n in count_repeats(rows, lambda row: row if row[-1] == "PASS" else None)
    ]
    return rows


def _table(rows: Sequence[tuple[str, ...]]) -> list[str]:
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return [_aligned(row, widths) for row in rows]


def _fitted_table(rows: Sequence[tuple[str, ...]], width: int) -> list[str]:
    """The aligned table where it fits *width*; else each row's name and status on one
    line and its figure, budget and provenance wrapped under it."""
    table = _table(rows)
    if all(len(line) <= width for line in table):
        return table
    names = min(max((len(row[0]) for row in rows), default=0), max(width - 10, 10))
    lines = []
    for row in rows:
        name, status = row[0], row[-1]
        head = f"{name.ljust(names)}  {status}"
        lines += _wrapped(head, width) if len(head) > width else [head]
        details = "  ".join(cell for cell in row[1:-1] if cell)
        lines += textwrap.wrap(
            details, width=width, initial_indent="    ", subsequent_indent="    "
        )
    return lines


def _aligned(row: Sequence[str], widths: Sequence[int]) -> str:
    cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
    return "  ".join([*cells, row[-1]])


def _fit_lines(group: FitGroup, device_order: Sequence[str]) -> list[str]:
    statuses = group.statuses(device_order)
    table = " · ".join(f"{device} {status}" for device, status in statuses)
    lines = [f"device fit: {table}"]
    legend = fit_legend(status for _, status in statuses)
    if legend:
        lines.append(f"  {legend}")
    lines.append(f"  for {' + '.join(group.models)}: {group.needs}")
    cheapest = group.cheapest()
    if cheapest is None:
        lines.append("  no device in the table fits")
    else:
        device, price = cheapest
        price_text = "no price declared" if price is None else f"{price:g} USD"
        lines.append(f"  cheapest device that fits: {device} ({price_text})")
    return lines
