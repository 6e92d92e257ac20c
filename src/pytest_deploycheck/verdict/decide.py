"""The release verdict: ``release_candidate`` is True only when something was checked
and every gating check passed.

Whether a check counts against the verdict is :attr:`Check.blocks_release`, the same
predicate that fails the test it was recorded in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..checks.record import Check
from ..config.units import format_value


@dataclass(frozen=True)
class Verdict:
    release_candidate: bool
    reasons: tuple[str, ...]
    counts: dict[str, int]
    # What a reader must know beside the verdict, whatever it is: a soak cut short, the
    # model to roll back to.
    caveats: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "release_candidate": self.release_candidate,
            "reasons": list(self.reasons),
            "counts": dict(self.counts),
            "caveats": list(self.caveats),
        }


def decide(
    checks: Sequence[Check],
    *,
    target: str | None,
    failed_tests: Sequence[str] = (),
) -> Verdict:
    """Judge the run.

    *failed_tests* are deploy tests that failed or errored: a check that could not run
    (a broken fixture, an exception in the workload) must not leave a clean slate.
    """
    counts = {
        status: sum(1 for c in checks if c.status == status)
        for status in ("PASS", "FAIL", "INCONCLUSIVE", "INFO")
    }
    reasons = blocking_reasons(checks, target=target, failed_tests=failed_tests)
    caveats = dict.fromkeys(text for c in checks for text in c.caveats)
    return Verdict(
        release_candidate=not reasons,
        reasons=tuple(reasons),
        counts=counts,
        caveats=tuple(caveats),
    )


def blocking_reasons(
    checks: Sequence[Check],
    *,
    target: str | None,
    failed_tests: Sequence[str] = (),
) -> list[str]:
    """Why the run is not a release candidate; empty when it is.

    Only gating checks count, so a check added with ``gating=False`` (the rollback
    advice, which must know whether the candidate failed) leaves them as they are.
    """
    blocking = [c for c in checks if c.blocks_release]
    reasons: list[str] = []
    if target is None:
        reasons.append("no deploy target selected (pass --deploy-target NAME or set target)")
    if not any(c.gating for c in checks):
        reasons.append("no deploy check ran")
    # Failures first, then what the evidence could not settle.
    reasons.extend(describe_failure(c) for c in blocking if c.passed is False)
    reasons.extend(describe_failure(c) for c in blocking if c.passed is None)
    # A test failed by its own check is already explained by that check.
    judged = {c.nodeid for c in blocking}
    reasons.extend(f"{nodeid}: test failed" for nodeid in failed_tests if nodeid not in judged)
    return reasons


def describe_failure(check: Check) -> str:
    """One line: the check, its figure, its budget and why it failed (or is inconclusive)."""
    if check.passed is None:
        # Measurement advice often starts with the word itself; say it once.
        why = check.details.removeprefix("inconclusive:").strip()
        return f"{check.name}: inconclusive{': ' + why if why else ''}"
    text = f"{check.name}: {format_value(check.value, check.unit)}"
    if check.budget is not None:
        text += f" (budget {format_value(check.budget, check.unit)})"
    if check.details:
        text += f" - {check.details}"
    return text
