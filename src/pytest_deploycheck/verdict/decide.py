"""The release verdict: ``release_candidate`` is True only when something was checked
and every gating check passed."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from ..checks.record import Check

T = TypeVar("T")


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
    gating = [c for c in checks if c.gating]
    counts = {
        status: sum(1 for c in checks if c.status == status)
        for status in ("PASS", "FAIL", "INCONCLUSIVE", "INFO")
    }
    reasons: list[str] = []
    if target is None:
        reasons.append("no deploy target selected (pass --deploy-target NAME or set target)")
    if not gating:
        reasons.append("no deploy check ran")
    reasons.extend(describe_failure(c) for c in gating if c.passed is False)
    reasons.extend(
        f"{c.name}: inconclusive{': ' + c.details if c.details else ''}"
        for c in gating
        if c.passed is None
    )
    judged = {c.nodeid for c in gating if c.passed is False}
    reasons.extend(f"{nodeid}: test failed" for nodeid in failed_tests if nodeid not in judged)
    caveats = dict.fromkeys(str(text) for c in checks for text in c.extra.get("caveats", ()))
    return Verdict(
        release_candidate=not reasons,
        reasons=tuple(reasons),
        counts=counts,
        caveats=tuple(caveats),
    )


def count_repeats(items: Sequence[T], key: Callable[[T], Hashable | None]) -> list[tuple[T, int]]:
    """Each item once, with how many items share its key, in the order first seen.

    Items whose key is None are never merged (a failed check stays on its own line).
    The reports use it to print ten identical passing rows as one with a count.
    """
    counts: dict[Hashable, int] = {}
    for item in items:
        found = key(item)
        if found is not None:
            counts[found] = counts.get(found, 0) + 1
    kept: list[tuple[T, int]] = []
    shown: set[Hashable] = set()
    for item in items:
        found = key(item)
        if found is None:
            kept.append((item, 1))
        elif found not in shown:
            shown.add(found)
            kept.append((item, counts[found]))
    return kept


def describe_failure(check: Check) -> str:
    """One line: the check, its figure, its budget and why it failed."""
    text = f"{check.name}: {format_value(check.value, check.unit)}"
    if check.budget is not None:
        text += f" (budget {format_value(check.budget, check.unit)})"
    if check.details:
        text += f" - {check.details}"
    return text


def format_value(value: object, unit: str = "") -> str:
    """A figure as people read it: four significant digits at most, unit attached."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    text = _number(value) if isinstance(value, float) else str(value)
    return f"{text} {unit}".strip() if unit else text


def _number(value: float) -> str:
    # Four significant digits, but never an exponent for figures people write plainly.
    if value.is_integer() and abs(value) < 1e12:
        return str(int(value))
    if abs(value) >= 1e4:
        return f"{value:.0f}"
    return f"{value:.4g}"
