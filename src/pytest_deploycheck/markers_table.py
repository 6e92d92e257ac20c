"""The budget markers: their signatures, their help lines and the validation of their
arguments.  One table drives ``--markers``, the importable decorators and the checks at
collection, so the three cannot drift apart.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .config.schema import Budgets
from .config.units import (
    UnitError,
    parse_duration_min,
    parse_duration_ms,
    parse_positive,
    parse_size_mb,
)

Validator = Callable[[Any, str], Any]


class BudgetMarkerError(ValueError):
    """A budget marker written with arguments that cannot work."""


def _positive_number(value: Any, what: str) -> float:
    return parse_positive(value, what=what)


def _whole(minimum: int) -> Validator:
    def check(value: Any, what: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise UnitError(f"{what}: expected a whole number >= {minimum}, got {value!r}")
        return value

    return check


def _percentile(value: Any, what: str) -> float:
    number = parse_positive(value, what=what)
    if not 0 < number < 100:
        raise UnitError(f"{what}: expected a percentile between 0 and 100, got {value!r}")
    return number


def _confidence(value: Any, what: str) -> float:
    number = parse_positive(value, what=what)
    if not 0.5 <= number < 1:
        raise UnitError(f"{what}: expected a confidence in [0.5, 1), e.g. 0.99, got {value!r}")
    return number


def _model_name(value: Any, what: str) -> str | None:
    if value is None or (isinstance(value, str) and value):
        return value
    raise UnitError(f"{what}: expected a configured model name, got {value!r}")


def _optional(validate: Validator) -> Validator:
    return lambda value, what: None if value is None else validate(value, what)


def _rate(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise UnitError(
            f"{what}: expected a fraction of calls from 0 to 1, e.g. 0.001, got {value!r}"
        )
    return float(value)


def _warmup_fraction(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 0.9:
        raise UnitError(
            f"{what}: expected the fraction of the soak left out as warm-up, from 0 to 0.9"
            f" (e.g. 0.2), got {value!r}"
        )
    return float(value)


def _flag(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise UnitError(f"{what}: expected True or False, got {value!r}")
    return value


def _batches(value: Any, what: str) -> tuple[int, ...]:
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if not values:
        raise UnitError(f"{what}: expected a batch size or a list of batch sizes, got {value!r}")
    return tuple(_whole(1)(v, what) for v in values)


@dataclass(frozen=True)
class BudgetMarker:
    """One budget marker: its budget argument, its options and where defaults come from."""

    name: str
    budget_arg: str
    budget_unit: str
    parse_budget: Callable[..., float]
    config_key: str
    options: Mapping[str, tuple[Validator, Any]] = field(default_factory=dict)
    summary: str = ""
    fallback: float | None = None  # the budget when neither the marker nor the config has one

    @property
    def signature(self) -> str:
        options = ", ".join(f"{key}={default!r}" for key, (_, default) in self.options.items())
        return f"{self.name}({self.budget_arg}=None, *, {options})"

    @property
    def help(self) -> str:
        return f"{self.signature}: {self.summary}"

    def default_budget(self, budgets: Budgets) -> float | None:
        value = getattr(budgets, self.config_key)
        return self.fallback if value is None else float(value)


MEASUREMENT_OPTIONS: dict[str, tuple[Validator, Any]] = {
    "confidence": (_confidence, 0.99),
    "warmup": (_whole(0), 10),
    "min_samples": (lambda v, w: None if v is None else _whole(1)(v, w), None),
    "max_samples": (_whole(2), 20000),
    "max_time_s": (_positive_number, 30.0),
}

LATENCY = BudgetMarker(
    name="latency_under",
    budget_arg="ms",
    budget_unit="ms",
    parse_budget=parse_duration_ms,
    config_key="latency_ms",
    options={"percentile": (_percentile, None), **MEASUREMENT_OPTIONS},
    summary=(
        "the test body is one request; it is timed after a warm-up until a confidence bound"
        " on the percentile (default budgets.latency_percentile, 95) settles pass or fail"
        " against the budget in ms (default budgets.latency_ms); unsettled is inconclusive"
    ),
)
THROUGHPUT = BudgetMarker(
    name="throughput_over",
    budget_arg="items_per_s",
    budget_unit="items/s",
    parse_budget=parse_positive,
    config_key="throughput_items_per_s",
    options={"batch": (_batches, 1), **MEASUREMENT_OPTIONS},
    summary=(
        "the test body is one batched request of deploy_batch items; fails unless the"
        " throughput at the median call is at least items_per_s; a list of batch sizes runs"
        " the test once per size"
    ),
)
MEMORY = BudgetMarker(
    name="memory_under",
    budget_arg="mb",
    budget_unit="MB",
    parse_budget=parse_size_mb,
    config_key="memory_mb",
    options={
        "repeat": (_whole(1), 5),
        "timeout_s": (_positive_number, 300.0),
        "model": (_model_name, None),
    },
    summary=(
        "the test runs alone in a fresh child process (its body repeat times); fails unless"
        " the peak resident memory of the workload is at most mb (MB = 10^6 bytes; default"
        " budgets.memory_mb) and fits the target's memory_mb"
    ),
)
COLD_START = BudgetMarker(
    name="cold_start_under",
    budget_arg="ms",
    budget_unit="ms",
    parse_budget=parse_duration_ms,
    config_key="cold_start_ms",
    options={
        "runs": (_whole(1), 5),
        "timeout_s": (_positive_number, 120.0),
        "model": (_model_name, None),
        "drop_cache": (_flag, True),
    },
    summary=(
        "starts a fresh process runs times that imports the runtime, loads the model with"
        " the target's settings and returns its first result (cold boot: the model file's"
        " page cache is dropped first where the OS allows, unless drop_cache=False); fails"
        " unless the median time is at most ms (default budgets.cold_start_ms); reports the"
        " distribution and the memory at the first result"
    ),
)
SOAK = BudgetMarker(
    name="soak",
    budget_arg="minutes",
    budget_unit="min",
    parse_budget=parse_duration_min,
    config_key="soak_minutes",
    fallback=30.0,
    options={
        "growth_mb_per_hour": (_optional(_positive_number), None),
        "max_error_rate": (_optional(_rate), None),
        "max_latency_drift_pct": (_optional(_positive_number), None),
        "warmup": (_warmup_fraction, 0.2),
        "sample_interval_s": (_optional(_positive_number), None),
    },
    summary=(
        "the test body is one request, called back to back for minutes (default"
        " budgets.soak_minutes, 30; capped by --deploy-soak-minutes or soak_max_minutes);"
        " fails when resident memory grows faster than growth_mb_per_hour (a robust line"
        " fit after the warm-up fraction; default budgets.soak_growth_mb_per_hour, 10) or"
        " more calls raise than max_error_rate (default 0); reports latency drift, gated"
        " only with max_latency_drift_pct"
    ),
)
BUDGET_MARKERS: dict[str, BudgetMarker] = {
    m.name: m for m in (LATENCY, THROUGHPUT, MEMORY, COLD_START, SOAK)
}


@dataclass(frozen=True)
class BudgetRequest:
    """A validated budget marker: the budget (in the marker's unit) and every option."""

    marker: BudgetMarker
    budget: float
    options: Mapping[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.options[key]


def parse_budget_marker(
    marker: BudgetMarker,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    budgets: Budgets | None,
) -> BudgetRequest:
    """Validate a marker's arguments; budgets=None skips the config default (decorators)."""
    where = f"@{marker.name}"
    allowed = {marker.budget_arg, *marker.options}
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise BudgetMarkerError(
            f"{where}: unknown argument {unknown[0]!r}; the signature is {marker.signature}"
        )
    if len(args) > 1 or (args and marker.budget_arg in kwargs):
        raise BudgetMarkerError(f"{where}: give the budget once; signature {marker.signature}")
    raw_budget = args[0] if args else kwargs.get(marker.budget_arg)
    try:
        options = {
            key: validate(kwargs[key], f"{where} {key}") if key in kwargs else default
            for key, (validate, default) in marker.options.items()
        }
        budget = _budget(marker, raw_budget, budgets, where)
    except UnitError as exc:
        raise BudgetMarkerError(str(exc)) from None
    return BudgetRequest(marker, budget, options)


def _budget(marker: BudgetMarker, raw: Any, budgets: Budgets | None, where: str) -> float:
    if raw is not None:
        return marker.parse_budget(raw, what=f"{where} {marker.budget_arg}")
    default = None if budgets is None else marker.default_budget(budgets)
    if default is None and budgets is not None:
        raise UnitError(
            f"{where}: no budget: give {marker.budget_arg} or set {marker.config_key} in"
            " the [budgets] table of the deploycheck configuration"
        )
    return math.nan if default is None else default
