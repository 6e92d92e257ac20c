"""What JUnit XML readers see of the verdict: suite properties and gate test cases.

A JUnit viewer counts ``<testcase>`` failures; a verdict or a session-level check
(regression, required evidence, rollback) lives outside every test, so
each failing one becomes a test case of its own, class name ``deploycheck``, and the
verdict one more.  The session hands these to pytest's junitxml writer (session.py).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from ..checks.record import Check
from ..config.escape import xml_text
from ..verdict.run import RunOutcome

CLASSNAME = "deploycheck"
VERDICT_CASE = "release_candidate"


@dataclass(frozen=True)
class GateCase:
    """One synthetic JUnit test case: its name, whether it failed, and why."""

    name: str
    failed: bool
    text: str = ""

    @property
    def nodeid(self) -> str:
        # junitxml splits "a::b" into classname "a", name "b".
        return f"{CLASSNAME}::{self.name}"


def suite_properties(outcome: RunOutcome) -> list[tuple[str, str]]:
    """``deploycheck.release_candidate`` and one ``deploycheck.reason.N`` per reason."""
    verdict = outcome.verdict
    properties = [(f"{CLASSNAME}.release_candidate", str(verdict.release_candidate))]
    properties += [(f"{CLASSNAME}.reason.{n}", r) for n, r in enumerate(verdict.reasons, 1)]
    properties += [(f"{CLASSNAME}.caveat.{n}", c) for n, c in enumerate(verdict.caveats, 1)]
    if outcome.status:
        properties.append((f"{CLASSNAME}.run_status", outcome.status))
    return [(xml_text(name), xml_text(value)) for name, value in properties]


def session_checks(outcome: RunOutcome, test_checks: Collection[tuple[str, str]]) -> list[Check]:
    """The checks no test recorded: regression gates, required evidence, rollback."""
    return [c for c in outcome.checks if (c.nodeid, c.name) not in test_checks]


def gate_cases(
    outcome: RunOutcome, test_checks: Collection[tuple[str, str]], *, judged: bool
) -> list[GateCase]:
    """A failing case per failing session-level check, then the verdict's case.

    *test_checks* are the ``(nodeid, name)`` of the checks that tests recorded: their
    failures are already their tests'.  The verdict case exists only when the verdict
    decides the exit status (*judged*): a run without a target is not judged.
    """
    cases = [
        GateCase(_case_name(check), True, _check_text(check))
        for check in session_checks(outcome, test_checks)
        if check.gating and check.passed is False
    ]
    if judged:
        verdict = outcome.verdict
        text = "\n".join(xml_text(f"- {reason}") for reason in verdict.reasons)
        cases.append(GateCase(VERDICT_CASE, not verdict.release_candidate, text))
    return cases


def _case_name(check: Check) -> str:
    return xml_text(check.name)


def _check_text(check: Check) -> str:
    """The failure message: the figure against its budget, then the details."""
    figure = f"{check.name}: {check.status}"
    if check.value is not None:
        figure += f" value={check.value}{check.unit and ' ' + check.unit}"
    if check.budget is not None:
        figure += f" budget={check.budget}"
    lines = [figure, *([check.details] if check.details else [])]
    return "\n".join(xml_text(line) for line in lines)
