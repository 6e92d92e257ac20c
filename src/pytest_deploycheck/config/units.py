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


class UnitError(ValueError):
    """A budget that is not a positive quantity in a known unit."""


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
    """A plain positive finite number (bool and strings are refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UnitError(f"{what}: expected a number > 0, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise UnitError(f"{what}: expected a finite number > 0, got {value!r}")
    return float(value)


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
        return parse_positive(float(match.group(1)) * units[key], what=what)
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
    if abs(value) >= 1e4:
        return f"{value:.0f}"
    return f"{value:.4g}"
