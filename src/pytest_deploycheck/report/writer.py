"""Every file a finished run leaves behind: the evidence directory, the CI step summary
and the baseline asked for with ``--deploy-save``.

The verdict is decided before anything is written (verdict.run); this module only
writes what the :class:`RunOutcome` holds, each file atomically, and hands back the
outcome with the names of the files written, or why they could not be.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..checks.environment import environment
from ..checks.metrics import TIMESERIES_KEY
from ..checks.record import Check
from ..config.evidence_names import (
    FAILURE_CASES_FILE,
    HTML_FILE,
    METRICS_FILE,
    REPORT_FILE,
    REPORT_FILES,
    RUN_LOG_FILE,
    SUMMARY_FILE,
    timeseries_file_name,
)
from ..config.files import UnsafePathError, atomic_write_bytes, atomic_write_text, contained
from ..verdict.completeness import STATUS_INTERRUPTED
from ..verdict.required import is_inherited
from ..verdict.run import RunOutcome, RunRecord
from .evidence import timeseries_csv, write_evidence
from .failure_cases import failure_cases_document, has_failure_cases

if TYPE_CHECKING:
    from ..verdict.baseline import Baseline


def write_run_files(outcome: RunOutcome, copies: Mapping[str, Path] | None = None) -> RunOutcome:
    """The evidence and the asked-for baseline written; the outcome says what came of it.

    A file that cannot be written (a full disk, a renderer that fails on some figure)
    is reported on the outcome, never raised, and the other files are written all the
    same.  A run whose evidence could not be kept is no release candidate: the files
    are then written again, so that none of them says True.  *copies* maps an evidence
    file's name (report.json, report.html) to a path outside the directory where a CI
    step wants it too (``--deploy-json``, ``--deploy-html``).
    """
    record = outcome.record
    files: list[str] = []
    error = step_summary_error = saved = None
    if record.evidence_dir is not None:
        files, failed, markdown = _write_evidence_dir(outcome, record.evidence_dir)
        problem = _problems(record.evidence_dir, failed, _copy_reports(record, files, copies))
        if problem:
            outcome = _evidence_not_kept(outcome, problem)
            files, failed, markdown = _write_evidence_dir(outcome, record.evidence_dir)
            error = _problems(record.evidence_dir, failed, _copy_reports(record, files, copies))
        step_summary_error = _append_step_summary(record, markdown)
    if record.save_baseline is not None:
        saved = _save_baseline(outcome, record.save_baseline)
    return replace(
        outcome,
        evidence_files=files,
        evidence_error=error,
        step_summary_error=step_summary_error,
        saved_baseline=saved,
    )


def report_document(outcome: RunOutcome, series_files: Mapping[int, str]) -> dict[str, Any]:
    """The content of report.json; time series are in their own CSV files.

    *series_files* maps ``id(check)`` to the CSV file that holds the check's series.
    """
    record = outcome.record
    config = record.config
    target = config.device(record.target).as_dict() if record.target else None
    return {
        "target": record.target,
        "target_device": target,
        "verdict": outcome.verdict.as_dict(),
        # complete, partial or interrupted; "running" is the start marker's (evidence_set).
        "status": outcome.status,
        "partial": outcome.partial,
        "checks": [_reported(c, series_files.get(id(c))) for c in outcome.checks],
        "device_fit": [g.as_dict(config.device_names) for g in outcome.fit_groups],
        "failed_tests": list(record.failed_tests),
        "configuration": config.as_dict(),
        "command_line": list(record.command_line),
        "environment": environment(),
    }


class _Writes:
    """Each evidence file written on its own: one that fails leaves the others written.

    ``written`` names the files in place, ``failed`` each one that is not and why.
    """

    def __init__(self, evidence_dir: Path) -> None:
        self.evidence_dir = evidence_dir
        self.written: list[str] = []
        self.failed: list[tuple[str, str]] = []

    def text(self, name: str, render: Callable[[], str]) -> str | None:
        """Write the file *name* with what *render* returns; that text, or None."""
        try:
            text = render()
            atomic_write_text(contained(self.evidence_dir, name), text)
        except Exception as exc:  # a full disk or a bug in one renderer: not the others
            self.failed.append((name, _why(exc)))
            return None
        self.written.append(name)
        return text

    def step(self, name: str, write: Callable[[], Sequence[str]]) -> None:
        """Run a step that writes files itself and returns the names written."""
        try:
            names = write()
        except Exception as exc:  # as in text(): reported, never raised
            self.failed.append((name, _why(exc)))
            return
        self.written += names


def _why(error: Exception) -> str:
    """An error as one line: the OS's words, or the exception's type and first line."""
    if isinstance(error, OSError):
        return str(error.strerror or error)
    if isinstance(error, UnsafePathError):
        return str(error)
    first = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def _failures(evidence_dir: Path, failed: Sequence[tuple[str, str]]) -> str:
    """One line: the directory, then each reason with the files it kept from being written."""
    by_reason: dict[str, list[str]] = {}
    for name, why in failed:
        by_reason.setdefault(why, []).append(name)
    return f"{evidence_dir}: " + "; ".join(
        f"{', '.join(names)}: {why}" for why, names in by_reason.items()
    )


def _copy_reports(
    record: RunRecord, written: Sequence[str], copies: Mapping[str, Path] | None
) -> list[str]:
    """Copy report.json / report.html where asked; each copy that failed, as one line."""
    failed = []
    for name, path in (copies or {}).items():
        if record.evidence_dir is None or name not in written:
            failed.append(f"{path}: {name} was not written, so it was not copied")
            continue
        try:
            atomic_write_bytes(path, contained(record.evidence_dir, name).read_bytes())
        except (OSError, UnsafePathError) as exc:
            failed.append(f"{path}: {_why(exc)}")
    return failed


def _problems(
    evidence_dir: Path, failed: Sequence[tuple[str, str]], copies: Sequence[str]
) -> str | None:
    """Why the evidence is not all where it was asked for, as one line; None if it is."""
    parts = ([_failures(evidence_dir, failed)] if failed else []) + list(copies)
    return "; ".join(parts) or None


def _evidence_not_kept(outcome: RunOutcome, why: str) -> RunOutcome:
    """The outcome of a run whose evidence could not all be written: not a candidate."""
    reason = f"evidence not written: {why}"
    verdict = replace(
        outcome.verdict, release_candidate=False, reasons=(*outcome.verdict.reasons, reason)
    )
    return replace(outcome, verdict=verdict)


def _append_step_summary(record: RunRecord, markdown: str | None) -> str | None:
    """The CI step summary, once per run; why it could not be appended, if not."""
    if record.step_summary is None:
        return None
    if markdown is None:
        return f"{SUMMARY_FILE} could not be rendered"
    from .markdown import append_step_summary

    return append_step_summary(record.step_summary, markdown)


def _write_evidence_dir(
    outcome: RunOutcome, evidence_dir: Path
) -> tuple[list[str], list[tuple[str, str]], str | None]:
    """Every evidence file: the names written, those not (and why), the Markdown summary."""
    series = timeseries_files(outcome.checks)
    report = report_document(outcome, {id(c): name for name, c in series.items()})
    listed = [*outcome.produced, *series]
    writes = _Writes(evidence_dir)
    for name, check in series.items():
        writes.text(name, partial(timeseries_csv, check.extra[TIMESERIES_KEY]))
    soaks = [
        {"name": check.name, "file": name, "rows": check.extra[TIMESERIES_KEY]}
        for name, check in series.items()
    ]
    markdown = _write_readable(writes, report, outcome.record, listed, soaks)
    record = outcome.record
    writes.step(
        FAILURE_CASES_FILE,
        partial(_write_failure_cases, evidence_dir, outcome.checks, record.project_dir),
    )
    for name in record.config.required_evidence:
        writes.step(name, partial(_present_extras, record, evidence_dir, outcome.produced, name))
    # report.json last: until it is in place the directory's verdict is the start
    # marker's ("running"), so a kill during these writes never leaves a mixed set.
    writes.step(
        f"{METRICS_FILE}, {REPORT_FILE}",
        partial(write_evidence, evidence_dir, outcome.checks, report),
    )
    # Listed in the order readers know, whatever order they were written in.
    order = [*REPORT_FILES, *series, FAILURE_CASES_FILE, *record.config.required_evidence]
    written = sorted(writes.written, key=lambda n: order.index(n) if n in order else len(order))
    return written, writes.failed, markdown


def _write_readable(
    writes: _Writes,
    report: dict[str, Any],
    record: RunRecord,
    listed: Sequence[str],
    soaks: Sequence[Mapping[str, Any]] = (),
) -> str | None:
    """summary.md, report.html and run.log; the Markdown, for the CI step summary too.

    The page also gets the soaks' time series (*soaks*), which report.json leaves to
    their CSV files, to draw them.
    """
    from .html import render_html
    from .markdown import readiness_markdown
    from .runlog import run_log

    shown = {**report, "evidence_files": list(listed), "evidence_dir": str(writes.evidence_dir)}
    markdown = writes.text(SUMMARY_FILE, partial(readiness_markdown, shown))
    writes.text(HTML_FILE, partial(render_html, {**shown, "soak_series": list(soaks)}))
    writes.text(
        RUN_LOG_FILE,
        partial(
            run_log,
            report,
            started=record.started,
            failure_reasons=record.failure_reasons,
            evidence_files=listed,
        ),
    )
    return markdown


def _write_failure_cases(
    evidence_dir: Path, checks: Sequence[Check], project_dir: Path
) -> list[str]:
    """failure_cases.md from the accuracy checks' failure cases, when any check has them."""
    if not any(has_failure_cases(c) for c in checks):
        return []
    handwritten = project_dir / FAILURE_CASES_FILE
    document = failure_cases_document(checks, handwritten if handwritten.is_file() else None)
    atomic_write_text(contained(evidence_dir, FAILURE_CASES_FILE), document)
    return [FAILURE_CASES_FILE]


def _present_extras(
    record: RunRecord, evidence_dir: Path, produced: Sequence[str], only: str | None = None
) -> list[str]:
    """Required files that are not ours: copied in from the project if need be.

    The evidence directory is what CI keeps as an artifact, so it must hold every
    required file, not only point at the project's copy.  The project's copy is only
    read: never rewritten, nor its mode changed, even when both are the same file.
    """
    present = []
    for name in record.config.required_evidence:
        if name in produced or (only is not None and name != only):
            continue
        inside, outside = contained(evidence_dir, name), contained(record.project_dir, name)
        # An earlier run's copy was set aside at start (previous/), unless it could not be.
        ours = inside.is_file() and not is_inherited(name, record.inherited)
        if outside.is_file() and not ours and not _same_file(inside, outside):
            atomic_write_bytes(inside, outside.read_bytes())
            ours = True
        if ours or _same_file(inside, outside):
            present.append(name)
    return present


def _same_file(first: Path, second: Path) -> bool:
    try:
        return first.samefile(second)
    except OSError:  # the evidence copy does not exist yet
        return False


def timeseries_files(checks: Sequence[Check]) -> dict[str, Check]:
    """A CSV file name for each check that carries a time series (soaks)."""
    files: dict[str, Check] = {}
    for check in checks:
        if TIMESERIES_KEY not in check.extra:
            continue
        name = timeseries_file_name(check.nodeid, check.name)
        stem, number = name[: -len(".csv")], 2
        while name in files:
            name, number = f"{stem}-{number}.csv", number + 1
        files[name] = check
    return files


def _reported(check: Check, series_file: str | None) -> dict[str, Any]:
    data = check.as_dict()
    if TIMESERIES_KEY in check.extra:
        extra = {k: v for k, v in check.extra.items() if k != TIMESERIES_KEY}
        extra["timeseries_file"] = series_file
        data["extra"] = extra
    return data


def _save_baseline(outcome: RunOutcome, path: Path) -> str:
    """The line the summary prints: where the baseline went, or why it did not."""
    from ..verdict.baseline import build_baseline, save_baseline, with_history

    if outcome.status == STATUS_INTERRUPTED:
        return (
            f"baseline not saved: {path}: the run was interrupted, so its figures are"
            " partial; a baseline (and a rollback target) needs a whole run"
        )
    document = build_baseline(
        outcome.checks,
        target=outcome.record.target,
        environment=environment(),
        models=outcome.models,
        release_candidate=outcome.verdict.release_candidate,
    )
    document = with_history(document, _previous_baseline(path))
    try:
        save_baseline(path, document)
    except OSError as exc:
        return f"baseline not saved: {path}: {exc.strerror or exc}"
    kept = len(document.get("history", ()))
    runs = f"; {kept + 1} runs kept" if kept else ""
    return f"baseline saved: {path} ({len(document['checks'])} checks{runs})"


def _previous_baseline(path: Path) -> Baseline | None:
    """The baseline *path* holds now, whose runs become history; None if none is usable.

    An unreadable or foreign file is replaced, as before history existed: saving must
    not fail because of what was there.
    """
    from ..verdict.baseline import BaselineError, load_baseline

    if not path.is_file():
        return None
    try:
        return load_baseline(path)
    except BaselineError:
        return None
