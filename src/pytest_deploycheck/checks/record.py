"""The check registry: the one place every marker and assertion records what it judged.

The verdict, the terminal summary and the evidence files read only from here, so a
figure cannot reach a report without its budget, its result and where it came from.
A check travels as plain data (to the xdist controller, into report.json), so every
field is checked here, once, and a bad one is a one-line :class:`CheckError` naming
the check instead of a crash far away.  What ``extra`` holds for each metric is
described in :mod:`.metrics`.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from ..config.schema import Budgets

Provenance = Literal["measured", "estimated", "declared"]
PROVENANCES: tuple[str, ...] = ("measured", "estimated", "declared")

Value = float | int | str | bool | None

# Fields of their own: kept out of ``extra`` so that every report reads them one way.
SHARED_FIELDS = ("display", "notes", "caveats", "models")
PLAIN_DATA = "plain JSON data (str, int, float, bool, None, lists, dicts with str keys)"
_SCALAR_TYPES = frozenset({str, int, float, bool, type(None)})  # exact types: no subclasses


class CheckError(TypeError, ValueError):
    """A check that cannot be recorded, in one line naming the check and the field."""


@dataclass(frozen=True)
class Check:
    """One judged figure.

    ``passed`` is None when the evidence could not settle the verdict (inconclusive);
    an inconclusive gating check keeps a run from being a release candidate.  A
    check that is not ``gating`` is reported but never decides the verdict.

    ``display`` is the figure as one plain-text phrase (never markup: every report
    escapes it its own way), ``notes`` are run-level notes printed under the table,
    ``caveats`` what a reader of the verdict must know whatever it is, ``models`` the
    configured models the figure belongs to.  ``extra`` holds the figures particular
    to the check's metric as plain JSON values (see :mod:`.metrics`).
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
    display: str = ""
    notes: tuple[str, ...] = ()
    caveats: tuple[str, ...] = ()
    models: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise CheckError(f"a check needs a name (a non-empty string), got {self.name!r}")
        for attribute in ("metric", "unit", "details", "nodeid", "display"):
            _require_text(self.name, attribute, getattr(self, attribute))
        if self.provenance not in PROVENANCES:
            raise CheckError(
                f"check {self.name!r}: provenance must be one of {', '.join(PROVENANCES)},"
                f" got {self.provenance!r}"
            )
        normalised = {
            "passed": _verdict(self.name, self.passed),
            "gating": _flag(self.name, "gating", self.gating),
            "value": _figure(self.name, "value", self.value),
            "budget": _figure(self.name, "budget", self.budget),
            # A display is one phrase: a line break would split a row of the summary.
            "display": " ".join(self.display.split()),
            "notes": _texts(self.name, "notes", self.notes),
            "caveats": _texts(self.name, "caveats", self.caveats),
            "models": _texts(self.name, "models", self.models),
            "extra": _extra(self.name, self.extra),
        }
        for attribute, value in normalised.items():
            object.__setattr__(self, attribute, value)

    @property
    def status(self) -> str:
        if not self.gating:
            return "INFO"
        if self.passed is None:
            return "INCONCLUSIVE"
        return "PASS" if self.passed else "FAIL"

    @property
    def blocks_release(self) -> bool:
        """Whether this check keeps the run from being a release candidate.

        The one pass/fail predicate: the verdict and the test a check was recorded in
        both ask this (and the reports show :attr:`status`, made from the same
        normalised ``passed``), so a check cannot fail one and pass another.  A gating
        check blocks unless it passed; a failed or inconclusive one blocks wherever it
        was recorded (a fixture's teardown, an xfail or a skipped test).
        """
        return self.gating and self.passed is not True

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
            "display": self.display,
            "notes": list(self.notes),
            "caveats": list(self.caveats),
            "models": list(self.models),
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Check:
        """Rebuild a check sent from an xdist worker or read from a report."""
        fields = {k: v for k, v in data.items() if k != "status"}
        return cls(**fields)


def _require_text(name: str, attribute: str, value: object) -> None:
    if not isinstance(value, str):
        raise CheckError(f"check {name!r}: {attribute} must be a string, got {value!r}")


def _is_numpy_bool(value: object) -> bool:
    """A numpy bool (or a 0-d bool array), told by its dtype: numpy is not imported."""
    dtype = getattr(value, "dtype", None)
    return getattr(dtype, "kind", None) == "b" and getattr(value, "shape", None) == ()


def _verdict(name: str, passed: object) -> bool | None:
    """True, False or None; a numpy bool (``np.mean(x) < 1``) becomes a plain bool."""
    if passed is None or isinstance(passed, bool):
        return passed
    if _is_numpy_bool(passed):
        return bool(passed)
    raise CheckError(
        f"check {name!r}: passed must be True, False or None (inconclusive),"
        f" got {passed!r} ({type(passed).__name__})"
    )


def _flag(name: str, attribute: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if _is_numpy_bool(value):
        return bool(value)
    raise CheckError(f"check {name!r}: {attribute} must be True or False, got {value!r}")


def _figure(name: str, attribute: str, value: object) -> Value:
    """A figure as JSON holds it: numpy scalars and other Reals become plain floats."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if _is_numpy_bool(value):
        return bool(value)
    if not isinstance(value, numbers.Real):
        raise CheckError(
            f"check {name!r}: {attribute} must be a number, a string, a bool or None,"
            f" got {type(value).__name__} {_shown(value)}"
        )
    if isinstance(value, int):
        _require_float_range(name, attribute, value)
        return value
    number = float(value)
    if not math.isfinite(number):
        raise CheckError(f"check {name!r}: {attribute} must be finite, got {number}")
    return number


def _require_float_range(name: str, where: str, value: int) -> None:
    """An integer JSON readers (and the reports' float arithmetic) can hold."""
    try:
        float(value)
    except OverflowError:
        digits = int(abs(value).bit_length() * math.log10(2)) + 1
        raise CheckError(
            f"check {name!r}: {where} is an integer of about {digits} digits,"
            " too large for a float; give a number below 1.8e308"
        ) from None


def _shown(value: object) -> str:
    """A short repr for an error message; some values cannot even be printed."""
    try:
        text = repr(value)
    except Exception:  # a value that cannot be shown is still named by its type
        return f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."


def _texts(name: str, attribute: str, values: object) -> tuple[str, ...]:
    """A tuple of strings from a list or tuple (a lone string is refused, not split)."""
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise CheckError(
            f"check {name!r}: {attribute} must be a list of strings, got {_shown(values)}"
        )
    texts = tuple(values)
    for text in texts:
        if not isinstance(text, str):
            raise CheckError(
                f"check {name!r}: {attribute} must be a list of strings, got {_shown(text)} in it"
            )
    return texts


def _extra(name: str, extra: object) -> dict[str, Any]:
    """A copy of *extra* as plain JSON data; numpy values become lists and scalars."""
    if not isinstance(extra, Mapping):
        raise CheckError(f"check {name!r}: extra must be a dict, got {type(extra).__name__}")
    for key in SHARED_FIELDS:
        if key in extra:
            raise CheckError(
                f"check {name!r}: extra[{key!r}] is a field of the check: pass {key}= instead"
            )
    plain = _plain(name, extra, "extra")
    assert isinstance(plain, dict)
    return plain


def _require_ints_in_range(
    name: str, where: str, values: Sequence[Any], *, only_ints: bool
) -> None:
    limit = sys.float_info.max
    if only_ints and -limit <= min(values) and max(values) <= limit:
        return  # a list of samples, checked at C speed
    for index, item in enumerate(values):
        if type(item) is int and not -limit <= item <= limit:
            _require_float_range(name, f"{where}[{index}]", item)


def _plain(name: str, value: object, where: str) -> Any:
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, int):
        _require_float_range(name, where, value)
        return int(value)
    if isinstance(value, float):
        return float(value)  # a numpy float64 is a float: made a plain one
    if isinstance(value, Mapping):
        plain = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise CheckError(
                    f"check {name!r}: {where} has the key {_shown(key)}; extra must be {PLAIN_DATA}"
                )
            plain[key] = _plain(name, item, f"{where}[{key!r}]")
        return plain
    if isinstance(value, (list, tuple)):
        kinds = {type(item) for item in value}
        if kinds <= _SCALAR_TYPES:  # the common case (samples, rows of a series), made fast
            if int in kinds:
                _require_ints_in_range(name, where, value, only_ints=kinds == {int})
            return list(value)
        return [_plain(name, item, f"{where}[{i}]") for i, item in enumerate(value)]
    tolist = getattr(value, "tolist", None)
    if hasattr(value, "dtype") and callable(tolist):
        return _plain(name, tolist(), where)  # numpy scalars and arrays
    raise CheckError(
        f"check {name!r}: {where} is {type(value).__name__} {_shown(value)};"
        f" extra must be {PLAIN_DATA}"
    )


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
    return replace(check, nodeid=nodeid)


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
    display: str = "",
    notes: Iterable[str] = (),
    caveats: Iterable[str] = (),
    extra: Mapping[str, Any] | None = None,
) -> Check:
    """Record a judged figure for the deploy readiness verdict and the evidence files.

    Call it from a test (the plugin routes it to that test) to add checks of your
    own beside the built-in markers; the check is returned for assertions.  *passed*
    is True, False (a numpy bool too) or None (inconclusive); *display* replaces the
    value in the summary, *notes* are printed under it and *caveats* under the
    verdict; *extra* is plain JSON data kept in report.json.  A bad argument raises
    :class:`CheckError`, one line naming the check.
    """
    __tracebackhide__ = True
    try:
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
            display=display,
            notes=notes,  # type: ignore[arg-type]  # made a tuple by Check
            caveats=caveats,  # type: ignore[arg-type]
            extra={} if extra is None else extra,  # type: ignore[arg-type]  # copied by Check
        )
    except CheckError as exc:
        # Raised again here, so the traceback ends in the caller's frame.
        raise CheckError(str(exc)) from None
    return current_recorder().add(check)
