"""One run's readiness: the checks collected from every test, the device-fit table,
the verdict, the evidence files and the lines of the terminal summary.

The plugin feeds it checks (from this process or from xdist workers) and asks for
the result at the end; nothing here knows about pytest.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..checks.fitmarker import FitRequest, judge_fit
from ..checks.record import Check
from ..config.schema import DeployConfig
from ..report.evidence import (
    FAILURE_CASES_FILE,
    FAILURE_CASES_KEY,
    atomic_write_bytes,
    atomic_write_text,
    environment,
    failure_cases_document,
    required_evidence_check,
    timeseries_csv,
    timeseries_file_name,
    write_evidence,
)
from .decide import Verdict, count_repeats, decide, format_value

if TYPE_CHECKING:
    from .baseline import Baseline

SUMMARY_FILE = "summary.md"
HTML_FILE = "report.html"
RUN_LOG = "run.log"
REPORT_FILES = ("metrics.csv", "report.json", SUMMARY_FILE, HTML_FILE, RUN_LOG)
TIMESERIES_KEY = "timeseries"
FIT_METRIC = "device_fit"
MEMORY_METRIC = "peak_memory"


@dataclass
class FitGroup:
    """The fit of every device for one set of models that run together."""

    models: tuple[str, ...]
    needs: str
    checks: list[Check] = field(default_factory=list)

    def statuses(self, device_order: Sequence[str]) -> list[tuple[str, str]]:
        """(device, status) in devices-table order, one entry per device."""
        latest = {c.extra.get("device", ""): str(c.value) for c in self.checks}
        order = [d for d in device_order if d in latest]
        order += [d for d in latest if d not in order]
        return [(device, latest[device]) for device in order]

    def cheapest(self) -> tuple[str, float | None] | None:
        fitting = [c for c in self.checks if c.extra.get("fits")]
        if not fitting:
            return None
        best = min(
            fitting,
            key=lambda c: (c.extra.get("price_usd") is None, c.extra.get("price_usd") or 0.0),
        )
        return str(best.extra.get("device")), best.extra.get("price_usd")

    def as_dict(self, device_order: Sequence[str]) -> dict[str, Any]:
        cheapest = self.cheapest()
        return {
            "models": list(self.models),
            "needs": self.needs,
            "devices": [c.extra for c in self.checks],
            "table": dict(self.statuses(device_order)),
            "cheapest_fit": None
            if cheapest is None
            else {"device": cheapest[0], "price_usd": cheapest[1]},
        }


@dataclass
class RunOutcome:
    verdict: Verdict
    checks: list[Check]
    fit_groups: list[FitGroup]
    evidence_dir: Path | None
    evidence_files: list[str]
    evidence_error: str | None = None
    step_summary_error: str | None = None
    saved_baseline: str | None = None


class ReadinessRun:
    """Accumulates a run's checks and produces its verdict and evidence."""

    def __init__(
        self,
        config: DeployConfig,
        target: str | None,
        evidence_dir: Path | None,
        project_dir: Path,
        command_line: Sequence[str] = (),
        *,
        baseline: Path | None = None,
        save_baseline: Path | None = None,
        step_summary: Path | None = None,
    ) -> None:
        self.baseline = baseline
        self.save_baseline = save_baseline
        self.step_summary = step_summary
        self.config = config
        self.target = target
        self.evidence_dir = evidence_dir
        self.project_dir = project_dir
        self.command_line = list(command_line)
        self.started = time.time()
        self.checks: list[Check] = []
        self.failed_tests: list[str] = []
        self.failure_reasons: dict[str, str] = {}
        self.deploy_tests: set[str] = set()

    def add_checks(self, checks: Sequence[Check]) -> None:
        self.checks.extend(checks)

    def add_test_outcome(self, nodeid: str, failed: bool, reason: str = "") -> None:
        self.deploy_tests.add(nodeid)
        if failed and nodeid not in self.failed_tests:
            self.failed_tests.append(nodeid)
        if failed and reason:
            self.failure_reasons.setdefault(nodeid, reason)

    @property
    def has_activity(self) -> bool:
        return bool(self.checks or self.deploy_tests)

    def finish(self, *, write: bool = True) -> RunOutcome:
        """Add the session-level checks, decide, and write the evidence files."""
        checks = rejudge_fit_with_measured_memory(self.checks, self.config, self.target)
        baseline = self._load_baseline()
        checks += self._baseline_checks(checks, baseline)
        sections = [str(c.extra[FAILURE_CASES_KEY]) for c in checks if FAILURE_CASES_KEY in c.extra]
        produced = [*REPORT_FILES, *([FAILURE_CASES_FILE] if sections else [])]
        if self.evidence_dir is not None:
            checks += [
                required_evidence_check(name, self.evidence_dir, self.project_dir, produced)
                for name in self.config.required_evidence
            ]
        verdict = decide(checks, target=self.target, failed_tests=self.failed_tests)
        models = self._model_records() if baseline or self.save_baseline else {}
        if baseline is not None and not isinstance(baseline, Check):
            from .rollback import rollback_check

            checks.append(
                rollback_check(
                    baseline,
                    models,
                    release_candidate=verdict.release_candidate,
                    project_dir=self.project_dir,
                )
            )
            verdict = decide(checks, target=self.target, failed_tests=self.failed_tests)
        outcome = RunOutcome(verdict, checks, fit_groups(checks), self.evidence_dir, [])
        if write and self.evidence_dir is not None:
            try:
                self._write(outcome, sections, produced)
            except OSError as exc:
                outcome.evidence_error = f"{self.evidence_dir}: {exc.strerror or exc}"
        if write and self.save_baseline is not None:
            outcome.saved_baseline = self._save_baseline(outcome, models)
        return outcome

    def _model_records(self) -> dict[str, dict[str, Any]]:
        from .rollback import model_records

        return model_records(self.config, self.project_dir)

    def _write(self, outcome: RunOutcome, sections: Sequence[str], produced: Sequence[str]) -> None:
        """Every evidence file, each written atomically."""
        from ..report.html import render_html
        from ..report.markdown import append_step_summary, readiness_markdown
        from ..report.runlog import run_log

        assert self.evidence_dir is not None
        series = self._timeseries_files(outcome.checks)
        report = self.report(outcome, {id(c): name for name, c in series.items()})
        written = [
            *REPORT_FILES,
            *([FAILURE_CASES_FILE] if sections else []),
            *series,
        ]
        listed = {**report, "evidence_files": written, "evidence_dir": str(self.evidence_dir)}
        outcome.evidence_files = write_evidence(self.evidence_dir, outcome.checks, report)
        for name, check in series.items():
            atomic_write_text(self.evidence_dir / name, _timeseries_csv(check))
        markdown = readiness_markdown(listed)
        atomic_write_text(self.evidence_dir / SUMMARY_FILE, markdown)
        atomic_write_text(self.evidence_dir / HTML_FILE, render_html(listed))
        log = run_log(
            report,
            started=self.started,
            failure_reasons=self.failure_reasons,
            evidence_files=written,
        )
        atomic_write_text(self.evidence_dir / RUN_LOG, log)
        outcome.evidence_files += [SUMMARY_FILE, HTML_FILE, RUN_LOG, *series]
        if sections:
            handwritten = self.project_dir / FAILURE_CASES_FILE
            document = failure_cases_document(
                sections, handwritten if handwritten.is_file() else None
            )
            atomic_write_text(self.evidence_dir / FAILURE_CASES_FILE, document)
            outcome.evidence_files.append(FAILURE_CASES_FILE)
        outcome.evidence_files += self._present_extras(produced)
        if self.step_summary is not None:
            outcome.step_summary_error = append_step_summary(self.step_summary, markdown)

    def _load_baseline(self) -> Baseline | Check | None:
        """The saved baseline, a failed check saying why it cannot be read, or None."""
        if self.baseline is None or not self.baseline.is_file():
            return None
        from .baseline import BaselineError, load_baseline

        try:
            return load_baseline(self.baseline)
        except BaselineError as exc:
            return Check(
                "baseline",
                metric="baseline",
                value="unreadable",
                passed=False,
                details=str(exc),
            )

    def _baseline_checks(
        self, checks: Sequence[Check], baseline: Baseline | Check | None
    ) -> list[Check]:
        """Regression checks against the saved baseline, when there is one."""
        if self.baseline is None:
            return []
        if baseline is None:
            return [
                _baseline_note(
                    f"no baseline at {self.baseline} yet: nothing compared"
                    f" (create it with --deploy-save {self.baseline})"
                )
            ]
        if isinstance(baseline, Check):
            return [baseline]
        from .gates import Tolerances, compare_to_baseline

        where = f"{self.config.source.name if self.config.source else 'config'}"
        tolerances = Tolerances.from_mapping(self.config.regression, f"{where} [regression]")
        return compare_to_baseline(
            checks, baseline, tolerances, environment=environment(), target=self.target
        )

    def _save_baseline(self, outcome: RunOutcome, models: dict[str, dict[str, Any]]) -> str:
        from .baseline import build_baseline, save_baseline

        assert self.save_baseline is not None
        document = build_baseline(
            outcome.checks,
            target=self.target,
            environment=environment(),
            models=models,
            release_candidate=outcome.verdict.release_candidate,
        )
        try:
            save_baseline(self.save_baseline, document)
        except OSError as exc:
            return f"baseline not saved: {self.save_baseline}: {exc.strerror or exc}"
        return f"baseline saved: {self.save_baseline} ({len(document['checks'])} checks)"

    def _present_extras(self, produced: Sequence[str]) -> list[str]:
        """Required files that are not ours: copied in from the project if need be.

        The evidence directory is what CI keeps as an artifact, so it must hold every
        required file, not only point at the project's copy.
        """
        assert self.evidence_dir is not None
        present = []
        for name in self.config.required_evidence:
            if name in produced:
                continue
            inside, outside = self.evidence_dir / name, self.project_dir / name
            written_by_this_run = inside.is_file() and inside.stat().st_mtime >= self.started
            if outside.is_file() and not written_by_this_run:
                atomic_write_bytes(inside, outside.read_bytes())
            if inside.is_file():
                present.append(name)
        return present

    @staticmethod
    def _timeseries_files(checks: Sequence[Check]) -> dict[str, Check]:
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

    def report(
        self, outcome: RunOutcome, series_files: dict[int, str] | None = None
    ) -> dict[str, Any]:
        """The content of report.json; time series are in their own CSV files."""
        target = self.config.device(self.target).as_dict() if self.target else None
        return {
            "target": self.target,
            "target_device": target,
            "verdict": outcome.verdict.as_dict(),
            "checks": [_reported(c, (series_files or {}).get(id(c))) for c in outcome.checks],
            "device_fit": [g.as_dict(self.config.device_names) for g in outcome.fit_groups],
            "failed_tests": list(self.failed_tests),
            "configuration": self.config.as_dict(),
            "command_line": self.command_line,
            "environment": environment(),
        }


def _reported(check: Check, series_file: str | None) -> dict[str, Any]:
    data = check.as_dict()
    if TIMESERIES_KEY in check.extra:
        extra = {k: v for k, v in check.extra.items() if k != TIMESERIES_KEY}
        extra["timeseries_file"] = series_file
        data["extra"] = extra
    return data


def _timeseries_csv(check: Check) -> str:
    return timeseries_csv(check.extra[TIMESERIES_KEY])


def _baseline_note(text: str) -> Check:
    return Check(
        "baseline",
        metric="baseline",
        value=None,
        passed=True,
        gating=False,
        details=text,
        extra={"notes": [text]},
    )


def measured_memory(checks: Sequence[Check]) -> dict[str, float]:
    """Each model's measured footprint (MB): the largest of its memory checks."""
    measured: dict[str, float] = {}
    for check in checks:
        models = check.extra.get("models", [])
        if check.metric != MEMORY_METRIC or len(models) != 1 or check.value is None:
            continue
        value = float(check.value)
        measured[models[0]] = max(value, measured.get(models[0], 0.0))
    return measured


def rejudge_fit_with_measured_memory(
    checks: Sequence[Check], config: DeployConfig, target: str | None
) -> list[Check]:
    """Device fit judged again where a model's memory was measured in this run.

    The fit tests ran with the declared figures (they may run before the memory
    test); the verdict and the fit table must use the measured one and say so.
    """
    measured = measured_memory(checks)
    result = []
    for check in checks:
        models = check.extra.get("models", [])
        if check.metric != FIT_METRIC or not set(models) & set(measured):
            result.append(check)
            continue
        device = config.device(str(check.extra["device"]))
        request = FitRequest(tuple(models), all_devices=check.gating)
        fresh = judge_fit(config, device, request, target, measured)
        data = fresh.as_dict()
        data.update(gating=check.gating, nodeid=check.nodeid)
        data["extra"]["rejudged"] = "with memory measured in this run"
        result.append(Check.from_dict(data))
    return result


def fit_groups(checks: Sequence[Check]) -> list[FitGroup]:
    """Group the device-fit checks by the set of models they judged."""
    groups: dict[tuple[str, ...], FitGroup] = {}
    for check in checks:
        if check.metric != FIT_METRIC:
            continue
        models = tuple(check.extra.get("models", ()))
        group = groups.setdefault(models, FitGroup(models, str(check.extra.get("needs", ""))))
        group.checks.append(check)
    return list(groups.values())


def summary_lines(outcome: RunOutcome, device_order: Sequence[str]) -> list[str]:
    """The body of the ``deploy readiness`` terminal section."""
    lines = _check_table([c for c in outcome.checks if c.gating])
    for group in outcome.fit_groups:
        lines += _fit_lines(group, device_order)
    notes = list(dict.fromkeys(n for c in outcome.checks for n in c.extra.get("notes", [])))
    lines += [f"note: {note}" for note in notes]
    lines.append(f"release_candidate: {outcome.verdict.release_candidate}")
    lines += [f"  - {reason}" for reason in outcome.verdict.reasons]
    lines += [f"  ! {caveat}" for caveat in outcome.verdict.caveats]
    if outcome.saved_baseline:
        lines.append(outcome.saved_baseline)
    if outcome.step_summary_error:
        lines.append(f"GITHUB_STEP_SUMMARY not written: {outcome.step_summary_error}")
    if outcome.evidence_error:
        lines.append(f"evidence not written: {outcome.evidence_error}")
    elif outcome.evidence_dir is not None and outcome.evidence_files:
        lines.append(f"evidence_files: {outcome.evidence_files}")
        lines.append(f"evidence_dir: {outcome.evidence_dir}")
    return lines


def _check_table(checks: Sequence[Check]) -> list[str]:
    rows: list[tuple[str, ...]] = [
        (
            c.name,
            str(c.extra.get("display") or format_value(c.value, c.unit)),
            "" if c.budget is None else f"budget {format_value(c.budget, c.unit)}",
            c.provenance,
            c.status,
        )
        for c in checks
    ]
    # Ten tests that each ran offline without a network attempt are one line (with a
    # count); metrics.csv keeps every check.
    rows = [
        (f"{row[0]} ({n} tests)", *row[1:]) if n > 1 else row
        for row, n in count_repeats(rows, lambda row: row if row[-1] == "PASS" else None)
    ]
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return [_aligned(row, widths) for row in rows]


def _aligned(row: Sequence[str], widths: Sequence[int]) -> str:
    cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
    return "  ".join([*cells, row[-1]])


def _fit_lines(group: FitGroup, device_order: Sequence[str]) -> list[str]:
    table = " · ".join(f"{device} {status}" for device, status in group.statuses(device_order))
    lines = [f"device fit: {table}", f"  for {' + '.join(group.models)}: {group.needs}"]
    cheapest = group.cheapest()
    if cheapest is None:
        lines.append("  no device in the table fits")
    else:
        device, price = cheapest
        price_text = "no price declared" if price is None else f"{price:g} USD"
        lines.append(f"  cheapest device that fits: {device} ({price_text})")
    return lines
