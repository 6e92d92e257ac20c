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
# What a host slowdown that the CPU canary shows too does to a timed comparison:
# "normalize" scales this run's samples by baseline_canary / this_canary before the
# test; "inconclusive" reports the comparison inconclusive beyond host_drift_pct.
HostDriftMode = Literal["normalize", "inconclusive"]
HOST_DRIFT_MODES: tuple[str, ...] = ("normalize", "inconclusive")
HOST_DRIFT_KEY = "host_drift"
COMPARE_FAIL_OPTION = "--deploy-compare-fail"

# key -> (what is valid, test)
TOLERANCE_RULES: dict[str, tuple[str, Callable[[float], bool]]] = {
    "latency_pct": ("a number >= 0 (percent)", lambda v: v >= 0),
    "significance": ("a number in (0, 0.5], e.g. 0.01", lambda v: 0 < v <= 0.5),
    "memory_mb": ("a number >= 0 (MB)", lambda v: v >= 0),
    "memory_pct": ("a number >= 0 (percent)", lambda v: v >= 0),
    "accuracy": ("a number in [0, 1] (absolute accuracy)", lambda v: 0 <= v <= 1),
    "throughput_pct": ("a number in [0, 100) (percent)", lambda v: 0 <= v < 100),
    "cold_start_pct": ("a number >= 0 (percent)", lambda v: v >= 0),
    "host_drift_pct": ("a number >= 0 (percent)", lambda v: v >= 0),
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


def host_drift_problem(value: object) -> str | None:
    """What is wrong with *value* for ``host_drift``, if anything."""
    if value in HOST_DRIFT_MODES:
        return None
    return f"expected one of {', '.join(map(repr, HOST_DRIFT_MODES))}, got {value!r}"


def parse_compare_fail(text: str) -> dict[str, Any]:
    """``latency_pct=10,memory_mb=20`` as tolerances, validated by the rules above.

    The command-line twin of ``[tool.deploycheck.regression]`` (like pytest-benchmark's
    ``--benchmark-compare-fail``): a CI job loosens or tightens the gate without editing
    the committed config.  Any problem is one ValueError line naming the option and key.
    """
    values: dict[str, Any] = {}
    valid = ", ".join([*TOLERANCE_RULES, MODE_KEY, HOST_DRIFT_KEY])
    for item in (part.strip() for part in text.split(",")):
        key, sep, raw = (piece.strip() for piece in item.partition("="))
        if not sep or not key:
            raise ValueError(
                f"{COMPARE_FAIL_OPTION} {text!r}: expected KEY=VALUE[,KEY=VALUE...],"
                f" e.g. latency_pct=10,memory_mb=20; valid keys: {valid}"
            )
        values[key] = _compare_fail_value(text, key, raw, valid)
    return values


def _compare_fail_value(text: str, key: str, raw: str, valid: str) -> Any:
    if key in (MODE_KEY, HOST_DRIFT_KEY):
        problem = mode_problem(raw) if key == MODE_KEY else host_drift_problem(raw)
        value: Any = raw
    elif key in TOLERANCE_RULES:
        try:
            value = float(raw)
        except ValueError:
            value = raw
        problem = tolerance_problem(key, value)
    else:
        problem = f"not a tolerance; valid keys: {valid}"
    if problem:
        raise ValueError(f"{COMPARE_FAIL_OPTION} {text!r}: {key}: {problem}")
    return value


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
    ``host_drift``: what a host slowdown shown by the CPU canary does (see
    :data:`HostDriftMode`); ``host_drift_pct``: how far the canary may move before
    ``"inconclusive"`` says so.  ``per_check``: overrides by check name (see
    :meth:`for_check`).
    """

    latency_pct: float = 10.0
    significance: float = 0.01
    memory_mb: float | None = None
    memory_pct: float = 5.0
    accuracy: float = 0.005
    throughput_pct: float = 10.0
    cold_start_pct: float = 25.0
    host_drift_pct: float = 10.0
    on_environment_mismatch: EnvironmentMode = "warn"
    host_drift: HostDriftMode = "normalize"
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
        problem = host_drift_problem(self.host_drift)
        if problem:
            raise ValueError(f"Tolerances: {HOST_DRIFT_KEY}: {problem}")
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

    def with_overrides(self, overrides: Mapping[str, Any]) -> Tolerances:
        """These tolerances with *overrides* (from the command line) winning everywhere.

        A key given on the command line also replaces that key in every per-check
        override: the command line is the most explicit source of a run's settings.
        """
        if not overrides:
            return self
        per_check = {
            name: {k: v for k, v in values.items() if k not in overrides}
            for name, values in self.per_check.items()
        }
        return replace(self, **overrides, per_check=per_check)

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
