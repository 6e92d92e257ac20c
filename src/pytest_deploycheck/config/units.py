"""Budgets as people write them: ``80``, ``"80ms"``, ``"0.5 s"``, ``"512MB"``, ``"1.5 GiB"``.

A bare number is in the unit the marker names (milliseconds, MB).  MB is 10^6 bytes
and MiB 2^20 bytes; sizes are converted to MB so every report speaks one unit.
"""

from __future__ import annotations

import math
import re

DURATION_UNITS_MS = {
    "ns": 1e-6,
    "us": 1e-3,
    "µs": 1e-3,
    "ms": 1.0,
    "s": 1e3,
    "sec": 1e3,
    "min": 60e3,
    "h": 3600e3,
}
SIZE_UNITS_MB = {
    "b": 1e-6,
    "kb": 1e-3,
    "mb": 1.0,
    "gb": 1e3,
    "kib": 1024 / 1e6,
    "mib": 1024**2 / 1e6,
    "gib": 1024**3 / 1e6,
}
_QUANTITY = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-zA-Zµ]*)\s*$")


# Every figure a person writes (a budget, a declared memory, a latency factor) lies in
# [MIN_FIGURE, MAX_FIGURE]: a product or ratio of two such figures (a budget over a
# latency factor, milliseconds in nanoseconds) is then a finite float, and nothing a
# deployment is judged on lies outside it.
MIN_FIGURE = 1e-12
MAX_FIGURE = 1e12
FIGURE_RANGE = "from 1e-12 to 1e12"
_SHOWN_CHARS = 40


class UnitError(ValueError):
    """A budget that is not a positive quantity in a known unit."""


def as_float(value: int | float) -> float:
    """*value* as a float; an int too large for one is infinite, not an OverflowError."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def figure_problem(number: float, *, allow_zero: bool = False) -> str | None:
    """Why a finite, non-negative *number* is out of :data:`FIGURE_RANGE`, or None."""
    if number == 0 and allow_zero:
        return None
    if MIN_FIGURE <= number <= MAX_FIGURE:
        return None
    zero = "0 or " if allow_zero else ""
    return f"expected {zero}a number {FIGURE_RANGE}"


def shown(value: object) -> str:
    """*value* as an error message quotes it: its repr, cut to one readable line."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        # repr of a huge int is hundreds of digits (and past 4300 a ValueError).
        return f"a whole number of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    try:
        text = repr(value)
    except (ValueError, RecursionError):
        text = f"<{type(value).__name__}>"
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def parse_duration_ms(value: object, *, what: str = "budget") -> float:
    """Milliseconds from a number (already ms) or a string such as ``"80ms"``/``"0.5s"``."""
    return _parse(value, DURATION_UNITS_MS, "ms", what, case_sensitive=True)


def parse_duration_min(value: object, *, what: str = "duration") -> float:
    """Minutes from a number (already minutes) or a string such as ``"30min"``/``"90s"``."""
    if isinstance(value, str):
        return _parse(value, DURATION_UNITS_MS, "min", what, case_sensitive=True) / 60e3
    return parse_positive(value, what=what)


def parse_size_mb(value: object, *, what: str = "budget") -> float:
    """MB (10^6 bytes) from a number (already MB) or a string such as ``"512MB"``/``"1GiB"``."""
    return _parse(value, SIZE_UNITS_MB, "mb", what, case_sensitive=False)


def parse_positive(value: object, *, what: str) -> float:
    """A plain positive number within :data:`FIGURE_RANGE` (bool and strings are refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UnitError(f"{what}: expected a number > 0, got {shown(value)}")
    return _checked(as_float(value), value, what)


def _checked(number: float, written: object, what: str) -> float:
    """*number* (what *written* amounts to) when it is a positive figure in range."""
    if number == math.inf and isinstance(written, int):  # too large for a float
        raise UnitError(f"{what}: expected a number {FIGURE_RANGE}, got {shown(written)}")
    if not math.isfinite(number) or number <= 0:
        raise UnitError(f"{what}: expected a finite number > 0, got {shown(written)}")
    problem = figure_problem(number)
    if problem:
        raise UnitError(f"{what}: {problem}, got {shown(written)}")
    return number


def _parse(
    value: object, units: dict[str, float], default: str, what: str, *, case_sensitive: bool
) -> float:
    if isinstance(value, str):
        match = _QUANTITY.match(value)
        unit = (match.group(2) if match else "") or default
        key = unit if case_sensitive else unit.lower()
        if match is None or key not in units:
            valid = ", ".join(units)
            raise UnitError(
                f"{what}: cannot read {value!r}; write a number (in {default}) or a number"
                f" with one of the units {valid}, e.g. '80{default}'"
            )
        return _checked(float(match.group(1)) * units[key], value, what)
    return parse_positive(value, what=what)


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
    if 1e4 <= abs(value) < 1e15:  # past that, hundreds of digits would say less
        return f"{value:.0f}"
    return f"{value:.4g}"
