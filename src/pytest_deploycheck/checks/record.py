"""The check registry: the one place every marker and assertion records what it judged.

The verdict, the terminal summary and the evidence files read only from here, so a
figure cannot reach a report without its budget, its result and where it came from.
"""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from ..config.schema import Budgets

Provenance = Literal["measured", "estimated", "declared"]
PROVENANCES: tuple[str, ...] = ("measured", "estimated", "declared")

Value = float | int | str | bool | None


@dataclass(frozen=True)
class Check:
    """One judged figure.

    ``passed`` is None when the evidence could not settle the verdict (inconclusive);
    an inconclusive gating check keeps a run from being a release candidate.  A
    check that is not ``gating`` is reported but never decides the verdict.
    """

    name: str
    metric: str
    value: Value
    unit: str = ""
    budget: Value = None
    passed: bool | None = True
    provenance: Provenance = "measured"
    details: str = ""
    gating: bool = True
    nodeid: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a check needs a name")
        if self.provenance not in PROVENANCES:
            raise ValueError(
                f"check {self.name!r}: provenance must be one of {', '.join(PROVENANCES)},"
                f" got {self.provenance!r}"
            )
        for attribute in ("value", "budget"):
            number = _plain_number(getattr(self, attribute))
            if number is None:
                continue
            if not math.isfinite(number):
                raise ValueError(f"check {self.name!r}: {attribute} must be finite, got {number}")
            # numpy scalars and other Reals become plain floats: the evidence is JSON.
            object.__setattr__(self, attribute, number)

    @property
    def status(self) -> str:
        if not self.gating:
            return "INFO"
        if self.passed is None:
            return "INCONCLUSIVE"
        return "PASS" if self.passed else "FAIL"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "metric": self.metric,
            "value": self.value,
            "unit": self.unit,
            "budget": self.budget,
            "passed": self.passed,
            "status": self.status,
            "provenance": self.provenance,
            "details": self.details,
            "gating": self.gating,
            "nodeid": self.nodeid,
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Check:
        """Rebuild a check sent from an xdist worker or read from a report."""
        fields = {k: v for k, v in data.items() if k != "status"}
        return cls(**fields)


def _plain_number(value: object) -> float | None:
    if isinstance(value, (bool, int, str)) or value is None:
        return None
    if isinstance(value, numbers.Real):
        return float(value)
    return None


class CheckRecorder:
    """Collects the checks recorded while one test (or one session step) runs."""

    def __init__(self, nodeid: str = "") -> None:
        self.nodeid = nodeid
        self.checks: list[Check] = []

    def add(self, check: Check) -> Check:
        if self.nodeid and not check.nodeid:
            check = _with_nodeid(check, self.nodeid)
        self.checks.append(check)
        return check

    def drain(self) -> list[Check]:
        """The checks recorded since the last drain; each is handed out once."""
        checks, self.checks = self.checks, []
        return checks


def _with_nodeid(check: Check, nodeid: str) -> Check:
    data = check.as_dict()
    data["nodeid"] = nodeid
    return Check.from_dict(data)


_fallback = CheckRecorder()
_current: ContextVar[CheckRecorder] = ContextVar("deploycheck_recorder", default=_fallback)


@contextlib.contextmanager
def recording(recorder: CheckRecorder) -> Iterator[CheckRecorder]:
    """Route every :func:`record_check` inside the block to *recorder*."""
    token = _current.set(recorder)
    try:
        yield recorder
    finally:
        _current.reset(token)


def current_recorder() -> CheckRecorder:
    """The recorder of the running test; outside pytest, a process-wide one."""
    return _current.get()


# The [budgets] of the run whose test is running: set around each test by the plugin,
# so two runs in one process (pytester, an IDE) never see each other's defaults.
_budgets: ContextVar[Budgets | None] = ContextVar("deploycheck_budgets", default=None)


@contextlib.contextmanager
def configured_budgets(budgets: Budgets) -> Iterator[Budgets]:
    """Let assertions inside the block default to the run's configured *budgets*."""
    token = _budgets.set(budgets)
    try:
        yield budgets
    finally:
        _budgets.reset(token)


def config_budget(name: str) -> float | None:
    """The running test's configured default budget *name* (e.g. ``accuracy_drop``).

    None outside a configured pytest run, or when the configuration leaves it unset.
    """
    budgets = _budgets.get()
    value = getattr(budgets, name, None) if budgets is not None else None
    return None if value is None else float(value)


def record_check(
    name: str,
    *,
    metric: str,
    value: Value,
    unit: str = "",
    budget: Value = None,
    passed: bool | None,
    provenance: Provenance = "measured",
    details: str = "",
    gating: bool = True,
    extra: dict[str, Any] | None = None,
) -> Check:
    """Record a judged figure for the deploy readiness verdict and the evidence files.

    Call it from a test (the plugin routes it to that test) to add checks of your
    own beside the built-in markers; the check is returned for assertions.
    """
    check = Check(
        name=name,
        metric=metric,
        value=value,
        unit=unit,
        budget=budget,
        passed=passed,
        provenance=provenance,
        details=details,
        gating=gating,
        extra=dict(extra or {}),
    )
    return current_recorder().add(check)
