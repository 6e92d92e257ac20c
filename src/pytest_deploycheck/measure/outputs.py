"""Outputs checked while timed: a fast model that returns garbage under load fails.

As MLPerf's audit tests do, a measurement asked to (``verify_outputs=True``) keeps the
return value of its first untimed call as the reference and compares a sample of the
timed calls' return values with it -- the first timed call and every
:data:`VERIFY_EVERY`-th after it, each compared after its clock has stopped, so the
comparison is never inside a timed interval and costs at most one comparison per
:data:`VERIFY_EVERY` calls.  Arrays compare with :func:`numpy.allclose` (NaN equal to
NaN), numbers with :func:`math.isclose` on the same tolerances, lists, tuples and dicts
element by element, anything else with ``==``.  A reference of None (a body that
returns nothing) leaves nothing to verify, which the result says.

Opt-in, because only the author of the body knows that every call gets the same
inputs: a body that draws a fresh random image per call legitimately returns
different outputs, and one that returns a timestamp or a counter never repeats.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

# A timed call's outputs are compared with the reference every this many calls.
VERIFY_EVERY = 16
_SHOWN = 60  # characters of a differing value shown in the one-line reason


@dataclass(frozen=True)
class Tolerance:
    """How close an output must be to the reference: ``|a - b| <= atol + rtol * |b|``."""

    rtol: float = 1e-5
    atol: float = 1e-6


@dataclass(frozen=True)
class OutputsVerified:
    """What the output check found: how many timed calls compared, the first mismatch."""

    compared: int
    mismatch: str | None
    reference_is_none: bool

    def note(self) -> str:
        """A caveat for the report, or "" when the outputs were checked and agree."""
        if self.reference_is_none:
            return "verify_outputs: the body returned None, so no outputs were verified"
        return ""

    def as_extra(self) -> dict[str, Any]:
        return {
            "compared": self.compared,
            "mismatch": self.mismatch,
            "reference_is_none": self.reference_is_none,
        }


class OutputCheck:
    """The state of one measurement's output check: the reference, and what differed."""

    def __init__(self, tolerance: Tolerance = Tolerance(), every: int = VERIFY_EVERY) -> None:
        self.tolerance = tolerance
        self.every = every
        self.reference: object = None
        self.compared = 0
        self.mismatch: str | None = None

    def set_reference(self, value: object) -> None:
        """Keep a copy: a runtime that reuses its output buffers must not move the reference."""
        try:
            self.reference = copy.deepcopy(value)
        except Exception:  # an object that cannot be copied is compared as it is
            self.reference = value

    def wants(self, call: int) -> bool:
        """Whether the *call*-th timed call (1-based) is one of the compared ones."""
        return self.reference is not None and self.mismatch is None and (call - 1) % self.every == 0

    def compare(self, call: int, value: object) -> bool:
        """Compare one timed call's outputs with the reference; False on a mismatch."""
        self.compared += 1
        difference = first_difference(self.reference, value, self.tolerance)
        if difference is not None:
            self.mismatch = f"timed call {call}: {difference}"
        return difference is None

    def result(self) -> OutputsVerified:
        return OutputsVerified(self.compared, self.mismatch, self.reference is None)


def first_difference(
    reference: object, output: object, tolerance: Tolerance, where: str = "output"
) -> str | None:
    """The first place *output* differs from *reference*, in one line, or None."""
    if reference is output:
        return None
    if isinstance(reference, (np.ndarray, np.generic)):
        return _array_difference(np.asarray(reference), output, tolerance, where)
    if isinstance(reference, Mapping):
        return _mapping_difference(reference, output, tolerance, where)
    if isinstance(reference, (list, tuple)):
        return _sequence_difference(reference, output, tolerance, where)
    if _is_number(reference) and _is_number(output):
        close = math.isclose(
            reference,  # type: ignore[arg-type]
            output,  # type: ignore[arg-type]
            rel_tol=tolerance.rtol,
            abs_tol=tolerance.atol,
        )
        both_nan = math.isnan(reference) and math.isnan(output)  # type: ignore[arg-type]
        return None if close or both_nan else _differs(where, output, reference)
    return None if _equal(reference, output) else _differs(where, output, reference)


def _array_difference(
    reference: np.ndarray[Any, Any], output: object, tolerance: Tolerance, where: str
) -> str | None:
    scalar = reference.ndim == 0 and _is_number(output)
    if not (scalar or isinstance(output, (np.ndarray, np.generic))):
        return f"{where} is {type(output).__name__} where the reference is an array"
    got = np.asarray(output)
    if got.shape != reference.shape:
        return f"{where} has shape {got.shape} where the reference has {reference.shape}"
    if reference.dtype.kind in "biufc" and got.dtype.kind in "biufc":
        close = np.isclose(got, reference, rtol=tolerance.rtol, atol=tolerance.atol, equal_nan=True)
    else:
        close = np.asarray(got == reference, dtype=bool)
    if close.all():
        return None
    index = tuple(int(i) for i in np.argwhere(~close)[0])
    at = f"{where}[{', '.join(map(str, index))}]"
    return f"{_differs(at, got[index], reference[index])} ({int((~close).sum())} differ)"


def _mapping_difference(
    reference: Mapping[Any, Any], output: object, tolerance: Tolerance, where: str
) -> str | None:
    if not isinstance(output, Mapping):
        return f"{where} is {type(output).__name__} where the reference is a mapping"
    if set(output) != set(reference):
        return f"{where} has keys {sorted(map(str, output))} where the reference has" + (
            f" {sorted(map(str, reference))}"
        )
    for key, value in reference.items():
        found = first_difference(value, output[key], tolerance, f"{where}[{key!r}]")
        if found is not None:
            return found
    return None


def _sequence_difference(
    reference: list[Any] | tuple[Any, ...], output: object, tolerance: Tolerance, where: str
) -> str | None:
    if not isinstance(output, (list, tuple)):
        return f"{where} is {type(output).__name__} where the reference is a sequence"
    if len(output) != len(reference):
        return f"{where} has {len(output)} items where the reference has {len(reference)}"
    for index, (want, got) in enumerate(zip(reference, output, strict=True)):
        found = first_difference(want, got, tolerance, f"{where}[{index}]")
        if found is not None:
            return found
    return None


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _equal(reference: object, output: object) -> bool:
    try:
        return bool(reference == output)
    except (TypeError, ValueError):  # an __eq__ without a truth value
        return False


def _differs(where: str, got: object, want: object) -> str:
    return f"{where} = {_short(got)} where the reference has {_short(want)}"


def _short(value: object) -> str:
    text = repr(value.item() if isinstance(value, np.generic) else value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."
