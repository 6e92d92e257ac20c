"""One run's readiness: the checks collected from every test and the verdict they give.

The plugin feeds a :class:`ReadinessRun` checks (from this process or from xdist
workers) and asks it for the :class:`RunOutcome` at the end: the session-level checks
added (device fit judged again with measured memory, the baseline comparison, the
required evidence, the rollback advice) and the verdict decided once.  The report
writer writes the evidence from that outcome and the terminal prints it; nothing here
knows about pytest or writes a file.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..checks.environment import environment
from ..checks.fit import judge_fit
from ..checks.keys import FAILURE_CASES_KEY
from ..checks.record import Check
from ..config.evidence_names import FAILURE_CASES_FILE, REPORT_FILES
from ..config.schema import DeployConfig
from ..markers import FitRequest
from .decide import Verdict, blocking_reasons, decide
from .required import required_evidence_check

if TYPE_CHECKING:
    from .baseline import Baseline

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


@dataclass(frozen=True)
class RunRecord:
    """What the evidence tells beside the verdict: how the run was set up, its tests."""

    config: DeployConfig
    target: str | None
    evidence_dir: Path | None
    project_dir: Path
    command_line: list[str]
    started: float
    failed_tests: list[str]
    failure_reasons: dict[str, str]
    step_summary: Path | None = None
    save_baseline: Path | None = None


@dataclass
class RunOutcome:
    """The finished run: every check and the verdict, then what the writer made of them."""

    verdict: Verdict
    checks: list[Check]
    fit_groups: list[FitGroup]
    record: RunRecord
    # The evidence files the run writes itself (required_evidence counts them present).
    produced: tuple[str, ...]
    # Each model file's path, SHA-256 and size, when a baseline is compared or saved.
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Filled in by the report writer.
    evidence_files: list[str] = field(default_factory=list)
    evidence_error: str | None = None
    step_summary_error: str | None = None
    saved_baseline: str | None = None

    @property
    def evidence_dir(self) -> Path | None:
        return self.record.evidence_dir


class ReadinessRun:
    """Accumulates a run's checks and test outcomes, and judges them at the end."""

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

    def finish(self) -> RunOutcome:
        """The session-level checks added and the verdict decided; nothing is written."""
        checks = rejudge_fit_with_measured_memory(self.checks, self.config, self.target)
        baseline = self._load_baseline()
        checks += self._baseline_checks(checks, baseline)
        produced = produced_files(checks)
        checks += self._required_evidence_checks(produced)
        models = self._model_records() if baseline or self.save_baseline else {}
        if baseline is not None and not isinstance(baseline, Check):
            checks.append(self._rollback_check(baseline, checks, models))
        verdict = decide(checks, target=self.target, failed_tests=self.failed_tests)
        return RunOutcome(verdict, checks, fit_groups(checks), self._record(), produced, models)

    def _record(self) -> RunRecord:
        return RunRecord(
            config=self.config,
            target=self.target,
            evidence_dir=self.evidence_dir,
            project_dir=self.project_dir,
            command_line=list(self.command_line),
            started=self.started,
            failed_tests=list(self.failed_tests),
            failure_reasons=dict(self.failure_reasons),
            step_summary=self.step_summary,
            save_baseline=self.save_baseline,
        )

    def _required_evidence_checks(self, produced: Sequence[str]) -> list[Check]:
        """A ``has_<stem>`` check per required file; none without an evidence directory."""
        if self.evidence_dir is None:
            return []
        return [
            required_evidence_check(name, self.evidence_dir, self.project_dir, produced)
            for name in self.config.required_evidence
        ]

    def _rollback_check(
        self, baseline: Baseline, checks: Sequence[Check], models: dict[str, dict[str, Any]]
    ) -> Check:
        """What to roll back to if the other checks fail the candidate.

        The rollback check is not gating, so the reasons against the candidate are the
        same with it as without it: the verdict is decided once, after it is added.
        """
        from .rollback import rollback_check

        blocking = blocking_reasons(checks, target=self.target, failed_tests=self.failed_tests)
        return rollback_check(
            baseline, models, release_candidate=not blocking, project_dir=self.project_dir
        )

    def _model_records(self) -> dict[str, dict[str, Any]]:
        from .rollback import model_records

        return model_records(self.config, self.project_dir)

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
        from .gates import compare_to_baseline

        # The tolerances were validated with the rest of the config, at start-up.
        return compare_to_baseline(
            checks, baseline, self.config.tolerances, environment=environment(), target=self.target
        )


def produced_files(checks: Sequence[Check]) -> tuple[str, ...]:
    """The evidence files a run with *checks* writes itself.

    failure_cases.md is among them only when an accuracy check wrote a section for it.
    """
    cases = any(FAILURE_CASES_KEY in check.extra for check in checks)
    return (*REPORT_FILES, *((FAILURE_CASES_FILE,) if cases else ()))


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
