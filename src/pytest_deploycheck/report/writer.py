"""Every file a finished run leaves behind: the evidence directory, the CI step summary
and the baseline asked for with ``--deploy-save``.

The verdict is decided before anything is written (verdict.run); this module only
writes what the :class:`RunOutcome` holds, each file atomically, and hands back the
outcome with the names of the files written, or why they could not be.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..checks.environment import environment
from ..checks.keys import FAILURE_CASES_KEY, TIMESERIES_KEY
from ..checks.record import Check
from ..config.evidence_names import (
    FAILURE_CASES_FILE,
    HTML_FILE,
    RUN_LOG_FILE,
    SUMMARY_FILE,
    timeseries_file_name,
)
from ..config.files import atomic_write_bytes, atomic_write_text
from ..verdict.run import RunOutcome, RunRecord
from .evidence import failure_cases_document, timeseries_csv, write_evidence


def write_run_files(outcome: RunOutcome) -> RunOutcome:
    """The evidence and the asked-for baseline written; the outcome says what came of it.

    A file that cannot be written is reported on the outcome, never raised: the
    verdict stands whether or not its evidence could be kept.
    """
    record = outcome.record
    files: list[str] = []
    error = step_summary_error = saved = None
    if record.evidence_dir is not None:
        try:
            files, step_summary_error = _write_evidence_dir(outcome, record.evidence_dir)
        except OSError as exc:
            files, error = [], f"{record.evidence_dir}: {exc.strerror or exc}"
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
        "checks": [_reported(c, series_files.get(id(c))) for c in outcome.checks],
        "device_fit": [g.as_dict(config.device_names) for g in outcome.fit_groups],
        "failed_tests": list(record.failed_tests),
        "configuration": config.as_dict(),
        "command_line": list(record.command_line),
        "environment": environment(),
    }


def _write_evidence_dir(outcome: RunOutcome, evidence_dir: Path) -> tuple[list[str], str | None]:
    """Every evidence file; the names written and why the step summary was not, if not."""
    series = timeseries_files(outcome.checks)
    report = report_document(outcome, {id(c): name for name, c in series.items()})
    listed = [*outcome.produced, *series]
    files = write_evidence(evidence_dir, outcome.checks, report)
    for name, check in series.items():
        atomic_write_text(evidence_dir / name, timeseries_csv(check.extra[TIMESERIES_KEY]))
    markdown = _write_readable(evidence_dir, report, outcome.record, listed)
    files += [SUMMARY_FILE, HTML_FILE, RUN_LOG_FILE, *series]
    files += _write_failure_cases(evidence_dir, outcome.checks, outcome.record.project_dir)
    files += _present_extras(outcome.record, evidence_dir, outcome.produced)
    step_summary = outcome.record.step_summary
    if step_summary is None:
        return files, None
    from .markdown import append_step_summary

    return files, append_step_summary(step_summary, markdown)


def _write_readable(
    evidence_dir: Path, report: dict[str, Any], record: RunRecord, listed: Sequence[str]
) -> str:
    """summary.md, report.html and run.log; the Markdown, for the CI step summary too."""
    from .html import render_html
    from .markdown import readiness_markdown
    from .runlog import run_log

    shown = {**report, "evidence_files": list(listed), "evidence_dir": str(evidence_dir)}
    markdown = readiness_markdown(shown)
    atomic_write_text(evidence_dir / SUMMARY_FILE, markdown)
    atomic_write_text(evidence_dir / HTML_FILE, render_html(shown))
    log = run_log(
        report,
        started=record.started,
        failure_reasons=record.failure_reasons,
        evidence_files=listed,
    )
    atomic_write_text(evidence_dir / RUN_LOG_FILE, log)
    return markdown


def _write_failure_cases(
    evidence_dir: Path, checks: Sequence[Check], project_dir: Path
) -> list[str]:
    """failure_cases.md from the accuracy checks' sections, when any check wrote one."""
    sections = [str(c.extra[FAILURE_CASES_KEY]) for c in checks if FAILURE_CASES_KEY in c.extra]
    if not sections:
        return []
    handwritten = project_dir / FAILURE_CASES_FILE
    document = failure_cases_document(sections, handwritten if handwritten.is_file() else None)
    atomic_write_text(evidence_dir / FAILURE_CASES_FILE, document)
    return [FAILURE_CASES_FILE]


def _present_extras(record: RunRecord, evidence_dir: Path, produced: Sequence[str]) -> list[str]:
    """Required files that are not ours: copied in from the project if need be.

    The evidence directory is what CI keeps as an artifact, so it must hold every
    required file, not only point at the project's copy.
    """
    present = []
    for name in record.config.required_evidence:
        if name in produced:
            continue
        inside, outside = evidence_dir / name, record.project_dir / name
        written_by_this_run = inside.is_file() and inside.stat().st_mtime >= record.started
        if outside.is_file() and not written_by_this_run:
            atomic_write_bytes(inside, outside.read_bytes())
        if inside.is_file():
            present.append(name)
    return present


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
    from ..verdict.baseline import build_baseline, save_baseline

    document = build_baseline(
        outcome.checks,
        target=outcome.record.target,
        environment=environment(),
        models=outcome.models,
        release_candidate=outcome.verdict.release_candidate,
    )
    try:
        save_baseline(path, document)
    except OSError as exc:
        return f"baseline not saved: {path}: {exc.strerror or exc}"
    return f"baseline saved: {path} ({len(document['checks'])} checks)"
