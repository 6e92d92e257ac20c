"""Regression tolerances: how much worse a figure may get against the saved baseline.

The rule of each key lives here, once.  The config parser checks the
``[tool.deploycheck.regression]`` table against these rules at start-up (a bad value is
a one-line usage error before any test runs), and :class:`Tolerances` checks values
built in Python against the same rules, so the regression gates at the end of a run
only ever see valid tolerances.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeGuard

EnvironmentMode = Literal["warn", "refuse"]
ENVIRONMENT_MODES: tuple[str, ...] = ("warn", "refuse")
MODE_KEY = "on_environment_mismatch"
CHECKS_KEY = "checks"

# key -> (what is valid, test)
TOLERANCE_RULES: dict[str, tuple[str, Callable[[float], bool]]] = {
    "latency_pct": ("a number >= 0 (percent)", lambda v: v >= 0),
    "significance": ("a number in (0, 0.5], e.g. 0.01", lambda v: 0 < v <= 0.5),
    "memory_mb": ("a number >= 0 (MB)", lambda v: v >= 0),
    "memory_pct": ("a number >= 0 (percent)", lambda v: v >= 0),
    "accuracy": ("a number in [0, 1] (absolute accuracy)", lambda v: 0 <= v <= 1),
    "throughput_pct": ("a number in [0, 100) (percent)", lambda v: 0 <= v < 100),
    "cold_start_pct": ("a number >= 0 (percent)", lambda v: v >= 0),
}


def tolerance_problem(key: str, value: object) -> str | None:
    """What is wrong with *value* for the tolerance *key* ("expected ..., got ..."), if anything."""
    wanted, valid = TOLERANCE_RULES[key]
    if not _is_number(value) or not valid(float(value)):
        return f"expected {wanted}, got {value!r}"
    return None


def mode_problem(value: object) -> str | None:
    """What is wrong with *value* for ``on_environment_mismatch``, if anything."""
    if value in ENVIRONMENT_MODES:
        return None
    return f"expected one of {', '.join(map(repr, ENVIRONMENT_MODES))}, got {value!r}"


def _override_problem(key: str, value: object) -> str | None:
    if key not in TOLERANCE_RULES:
        return f"not a tolerance; valid keys: {', '.join(TOLERANCE_RULES)}"
    return tolerance_problem(key, value)


def _is_number(value: object) -> TypeGuard[float]:
    """A finite int or float (bools are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


@dataclass(frozen=True)
class Tolerances:
    """How much worse a figure may get before its regression gate fails.

    ``latency_pct``: relative increase of the latency percentile (percent), on top of
    being significant at ``significance`` (one-sided alpha).  ``memory_mb``: absolute
    growth of peak memory (MB); when None (the default), ``memory_pct`` (percent) is
    used instead.  ``accuracy``: absolute drop of the optimized model's accuracy.
    ``throughput_pct``: relative fall of throughput.  ``cold_start_pct``: relative
    increase of the median cold start.  ``on_environment_mismatch``: ``"warn"`` compares
    anyway and says so, ``"refuse"`` fails the run instead of comparing.
    ``per_check``: overrides by check name (see :meth:`for_check`).
    """

    latency_pct: float = 10.0
    significance: float = 0.01
    memory_mb: float | None = None
    memory_pct: float = 5.0
    accuracy: float = 0.005
    throughput_pct: float = 10.0
    cold_start_pct: float = 25.0
    on_environment_mismatch: EnvironmentMode = "warn"
    per_check: Mapping[str, Mapping[str, float]] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        for key in TOLERANCE_RULES:
            value = getattr(self, key)
            if value is None and key == "memory_mb":
                continue
            problem = tolerance_problem(key, value)
            if problem:
                raise ValueError(f"Tolerances: {key}: {problem}")
        problem = mode_problem(self.on_environment_mismatch)
        if problem:
            raise ValueError(f"Tolerances: {MODE_KEY}: {problem}")
        for name, overrides in self.per_check.items():
            for key, value in overrides.items():
                problem = _override_problem(key, value)
                if problem:
                    raise ValueError(f"Tolerances: per_check[{name!r}]: {key}: {problem}")

    @classmethod
    def from_validated(cls, values: Mapping[str, Any]) -> Tolerances:
        """Tolerances from a regression table the config parser has already validated."""
        fields = {key: value for key, value in values.items() if key != CHECKS_KEY}
        return cls(**fields, per_check=dict(values.get(CHECKS_KEY, {})))

    def for_check(self, name: str) -> Tolerances:
        """The tolerances for the check called *name*: its overrides on top of these."""
        overrides = self.per_check.get(name)
        if not overrides:
            return self
        changes: dict[str, Any] = {**overrides, "per_check": {}}
        return replace(self, **changes)

    def overridden(self, name: str) -> bool:
        """Whether the config sets tolerances of its own for the check called *name*."""
        return bool(self.per_check.get(name))
