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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..checks.environment import environment
from ..checks.fit import judge_fit
from ..checks.metrics import BASELINE, DEVICE_FIT, PEAK_MEMORY, carries_failure_cases
from ..checks.record import Check
from ..config.evidence_names import FAILURE_CASES_FILE, REPORT_FILES
from ..config.schema import DeployConfig
from ..markers import FitRequest
from .completeness import STATUS_COMPLETE, Completeness, RunEnd, judge_completeness
from .decide import Verdict, blocking_reasons, decide
from .required import required_evidence_check

if TYPE_CHECKING:
    from .baseline import Baseline


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
    # Files an earlier run left in the evidence directory that could not be set aside.
    inherited: tuple[str, ...] = ()


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
    # complete, partial or interrupted (verdict.completeness); partial for both others.
    status: str = STATUS_COMPLETE
    partial: bool = False
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
        allow_partial: bool = False,
    ) -> None:
        self.baseline = baseline
        self.allow_partial = allow_partial
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
        self.deselected: dict[str, None] = {}  # ordered, once each (xdist workers repeat)
        self.left_out: list[str] = []
        self.interrupted: str | None = None
        self.crashed: dict[str, str] = {}
        self.caveats: list[str] = []
        # Set by the session once the evidence directory is set aside (report.evidence_set).
        self.inherited: tuple[str, ...] = ()

    def add_deselected(self, nodeids: Sequence[str]) -> None:
        """Deploy tests the selection took out (-k, -m, --deselect, --lf)."""
        self.deselected.update(dict.fromkeys(nodeids))

    def leave_out(self, why: str) -> None:
        """Another way the run left deploy tests out (a stop after -x, --lf)."""
        self.left_out.append(why)

    def interrupt(self, what: str) -> None:
        """The run was interrupted by *what* (SIGTERM, KeyboardInterrupt, ...)."""
        self.interrupted = what

    def caveat(self, text: str) -> None:
        """Something about the run a reader of its verdict must know (not a check's)."""
        self.caveats.append(text)

    def add_crash(self, nodeid: str, what: str) -> None:
        """*nodeid*'s worker crashed: a failed deploy test whose checks are lost."""
        self.add_test_outcome(nodeid, True, what)
        self.crashed.setdefault(nodeid, f"{nodeid}: {what}; its checks were lost with it")

    def end(self) -> RunEnd:
        """What the session told about how the run went, for the completeness verdict."""
        return RunEnd(
            deselected=tuple(self.deselected),
            left_out=tuple(self.left_out),
            interrupted=self.interrupted,
            crashed=tuple(self.crashed.values()),
            caveats=tuple(self.caveats),
            allow_partial=self.allow_partial,
        )

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
        whole = judge_completeness(checks, self.end())
        models = self._model_records() if baseline or self.save_baseline else {}
        if baseline is not None and not isinstance(baseline, Check):
            checks.append(self._rollback_check(baseline, checks, models, whole))
        verdict = decide(checks, target=self.target, failed_tests=self.failed_tests)
        return RunOutcome(
            whole.applied_to(verdict),
            checks,
            fit_groups(checks),
            self.record(),
            produced,
            models,
            status=whole.status,
            partial=whole.partial,
        )

    def record(self) -> RunRecord:
        """How the run was set up and how its tests went, so far."""
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
            inherited=self.inherited,
        )

    def _required_evidence_checks(self, produced: Sequence[str]) -> list[Check]:
        """A ``has_<stem>`` check per required file; none without an evidence directory."""
        if self.evidence_dir is None:
            return []
        return [
            required_evidence_check(
                name, self.evidence_dir, self.project_dir, produced, inherited=self.inherited
            )
            for name in self.config.required_evidence
        ]

    def _rollback_check(
        self,
        baseline: Baseline,
        checks: Sequence[Check],
        models: dict[str, dict[str, Any]],
        whole: Completeness,
    ) -> Check:
        """What to roll back to if the other checks fail the candidate.

        The rollback check is not gating, so the reasons against the candidate are the
        same with it as without it: the verdict is decided once, after it is added.
        """
        from .rollback import rollback_check

        blocking = blocking_reasons(checks, target=self.target, failed_tests=self.failed_tests)
        candidate = not blocking and not whole.reasons
        return rollback_check(
            baseline, models, release_candidate=candidate, project_dir=self.project_dir
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
                metric=BASELINE,
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

    failure_cases.md is among them only when an accuracy check carries failure cases.
    """
    cases = any(carries_failure_cases(check.metric, check.extra) for check in checks)
    return (*REPORT_FILES, *((FAILURE_CASES_FILE,) if cases else ()))


def _baseline_note(text: str) -> Check:
    return Check(
        "baseline",
        metric=BASELINE,
        value=None,
        passed=True,
        gating=False,
        details=text,
        notes=(text,),
    )


def measured_memory(checks: Sequence[Check]) -> dict[str, float]:
    """Each model's measured footprint (MB): the largest of its memory checks."""
    measured: dict[str, float] = {}
    for check in checks:
        if check.metric != PEAK_MEMORY or len(check.models) != 1 or check.value is None:
            continue
        (model,) = check.models
        measured[model] = max(float(check.value), measured.get(model, 0.0))
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
        if check.metric != DEVICE_FIT or not set(check.models) & set(measured):
            result.append(check)
            continue
        device = config.device(str(check.extra["device"]))
        request = FitRequest(check.models, all_devices=check.gating)
        fresh = judge_fit(config, device, request, target, measured)
        extra = {**fresh.extra, "rejudged": "with memory measured in this run"}
        result.append(replace(fresh, gating=check.gating, nodeid=check.nodeid, extra=extra))
    return result


def fit_groups(checks: Sequence[Check]) -> list[FitGroup]:
    """Group the device-fit checks by the set of models they judged."""
    groups: dict[tuple[str, ...], FitGroup] = {}
    for check in checks:
        if check.metric != DEVICE_FIT:
            continue
        needs = str(check.extra.get("needs", ""))
        group = groups.setdefault(check.models, FitGroup(check.models, needs))
        group.checks.append(check)
    return list(groups.values())
