"""Every deploy marker, defined once: its signature, defaults, help line and validation.

One table (:data:`MARKERS`) drives ``pytest --markers``, the importable decorators
(``@latency_under(80)`` is ``@pytest.mark.latency_under(80)``) and the reading of a
test's markers at collection, so the three cannot drift apart.  Bad arguments are a
:class:`MarkerError` with one line per problem, every problem of the marker at once.

The plugin imports this module at every pytest start-up, also in projects that never
use it: it imports nothing but the standard library and :mod:`.config.units` at
module level (not pytest, not the configuration schema).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from .config.units import (
    MAX_FIGURE,
    UnitError,
    parse_duration_min,
    parse_duration_ms,
    parse_positive,
    parse_size_mb,
    shown,
)

if TYPE_CHECKING:
    import pytest

    from .config.schema import Budgets, DeployConfig

Validator = Callable[[Any, str], Any]
Rule = Callable[["Marker", Mapping[str, Any], Mapping[str, Any]], list[str]]
MAX_PORT = 65535
MIN_SAMPLE_INTERVAL_S = 0.01  # the soak's shortest sampling interval


class MarkerError(ValueError):
    """A deploy marker written with arguments that cannot work.

    ``lines`` holds one line per problem, so that a marker with three bad arguments
    reports all three; ``str()`` is the first.
    """

    def __init__(self, *lines: str) -> None:
        super().__init__(*lines[:1])
        self.lines: tuple[str, ...] = lines


def _problems(error: MarkerError) -> tuple[str, ...]:
    return error.lines or (str(error),)


# --------------------------------------------------------------------------- validators


def _positive_number(value: Any, what: str) -> float:
    return parse_positive(value, what=what)


def _whole(minimum: int) -> Validator:
    def check(value: Any, what: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise UnitError(f"{what}: expected a whole number >= {minimum}, got {shown(value)}")
        if value > MAX_FIGURE:
            raise UnitError(
                f"{what}: expected a whole number from {minimum} to 1e12, got {shown(value)}"
            )
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


def _service_name(value: Any, what: str) -> str | None:
    if value is None or (isinstance(value, str) and value):
        return value
    raise UnitError(f"{what}: expected a configured service name, got {value!r}")


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


def _sample_interval(value: Any, what: str) -> float:
    number = parse_positive(value, what=what)
    if number < MIN_SAMPLE_INTERVAL_S:
        # Every interval reads /proc and takes percentiles: a shorter one measures the
        # sampler, not the workload.
        raise UnitError(
            f"{what}: expected at least {MIN_SAMPLE_INTERVAL_S:g} seconds between samples,"
            f" got {value!r}"
        )
    return number


def _tolerance(value: Any, what: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0 <= value < float("inf")
    ):
        raise UnitError(f"{what}: expected a finite tolerance >= 0, e.g. 1e-5, got {value!r}")
    return float(value)


def _flag(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise UnitError(f"{what}: expected True or False, got {value!r}")
    return value


def _fit_flag(value: Any, what: str) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise MarkerError(f"{what} must be True or False, got {value!r}")
    return value


def _batches(value: Any, what: str) -> tuple[int, ...]:
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if not values:
        raise UnitError(f"{what}: expected a batch size or a list of batch sizes, got {value!r}")
    return tuple(_whole(1)(v, what) for v in values)


def _non_negative(value: Any, what: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0 <= value <= MAX_FIGURE
    ):
        raise UnitError(f"{what}: expected a number of seconds >= 0, got {shown(value)}")
    return float(value)


def _seed(value: Any, what: str) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise UnitError(f"{what}: expected a whole number (the schedule's seed) or None, got {value!r}")


def _waits(value: Any, what: str) -> tuple[float, ...]:
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if not values:
        raise UnitError(f"{what}: expected a wait in ms or a list of waits, got {value!r}")
    return tuple(_non_negative_ms(v, what) for v in values)


def _non_negative_ms(value: Any, what: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0 <= value <= MAX_FIGURE
    ):
        raise UnitError(f"{what}: expected a wait in ms >= 0, e.g. 5, got {shown(value)}")
    return float(value)


def _is_port(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_PORT


def _loopback(value: Any, what: str) -> bool | tuple[int, ...]:
    """``allow_loopback``: True, False or the loopback ports that stay open."""
    expected = f"expected True, False or a list of port numbers 1-{MAX_PORT}, got {value!r}"
    if isinstance(value, bool):
        return value
    if not isinstance(value, (list, tuple, set, frozenset)):
        raise MarkerError(f"{what}: {expected}")
    bad = [port for port in value if not _is_port(port)]
    if bad:
        raise MarkerError(f"{what}: {expected} ({bad[0]!r} is not a port number)")
    return tuple(sorted(value))


@contextlib.contextmanager
def _one_line_errors() -> Iterator[None]:
    """Every validation problem as a MarkerError (a unit, a config lookup)."""
    try:
        yield
    except MarkerError:
        raise
    except ValueError as exc:
        raise MarkerError(str(exc)) from None


# --------------------------------------------------------------------------- the table


# The table's entries compare by identity (eq=False): one object per marker, and each
# generated __eq__ would cost start-up time in every project that has the plugin.
@dataclass(frozen=True, eq=False)
class Option:
    """A keyword-only option of a marker: its check, its default, how --markers shows it."""

    validate: Validator
    default: Any = None
    shown: str | None = None  # the default as the signature writes it, when it differs

    def signature(self, key: str) -> str:
        return f"{key}={self.default!r}" if self.shown is None else f"{key}={self.shown}"


@dataclass(frozen=True, eq=False, kw_only=True)
class Marker:
    """One marker: its one positional argument, its keyword-only options, its help.

    ``where``, ``noun`` and ``separator`` word the one-line errors: ``@pytest.mark.offline:
    strict: ...``, ``give allow_loopback once``.
    """

    name: str
    argument: str
    argument_default: Any = None
    options: Mapping[str, Option] = field(default_factory=dict)
    summary: str
    where: str = ""  # default: @pytest.mark.<name>
    noun: str = ""  # default: the argument's name
    separator: str = ": "
    # Rules between options (qps with clients): each gives its problem lines.
    rules: tuple[Rule, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "where", self.where or f"@pytest.mark.{self.name}")
        object.__setattr__(self, "noun", self.noun or self.argument)

    @property
    def signature(self) -> str:
        options = ", ".join(option.signature(key) for key, option in self.options.items())
        return f"{self.name}({self.argument}={self.argument_default!r}, *, {options})"

    @property
    def help(self) -> str:
        """The ``pytest --markers`` line."""
        return f"{self.signature}: {self.summary}"

    def label(self, key: str) -> str:
        """How an error names one argument, e.g. ``@latency_under ms``."""
        return f"{self.where}{self.separator}{key}"

    def read(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
        """The positional argument as written and every option validated (or its default).

        Every problem is collected before the MarkerError is raised, one line each.
        """
        problems = self._call_problems(args, kwargs)
        options: dict[str, Any] = {}
        for key, option in self.options.items():
            try:
                with _one_line_errors():
                    options[key] = (
                        option.validate(kwargs[key], self.label(key))
                        if key in kwargs
                        else option.default
                    )
            except MarkerError as exc:
                problems += _problems(exc)
        if not problems:
            problems += self._sample_bound_problems(options)
            for rule in self.rules:
                problems += rule(self, kwargs, options)
        if problems:
            raise MarkerError(*problems)
        return self.first(args, kwargs), options

    def first(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        """The positional argument as written (or its default), not yet validated."""
        return args[0] if args else kwargs.get(self.argument, self.argument_default)

    def _call_problems(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> list[str]:
        problems = [
            f"{self.where}: unknown argument {key!r}; the signature is {self.signature}"
            for key in sorted(set(kwargs) - {self.argument, *self.options})
        ]
        if len(args) > 1 or (args and self.argument in kwargs):
            problems.append(f"{self.where}: give {self.noun} once; signature {self.signature}")
        return problems

    def _sample_bound_problems(self, options: Mapping[str, Any]) -> list[str]:
        """min_samples above max_samples would stop at max_samples, short of the minimum."""
        low, high = options.get("min_samples"), options.get("max_samples")
        if low is None or high is None or low <= high:
            return []
        return [
            f"{self.label('min_samples')}: {low} is more than max_samples ({high});"
            " give min_samples <= max_samples"
        ]

    def parse(
        self, args: Sequence[Any], kwargs: Mapping[str, Any], config: DeployConfig
    ) -> MarkerRequest:
        """The validated request of one marker against the project's configuration."""
        raise NotImplementedError


@dataclass(frozen=True, eq=False, kw_only=True)
class BudgetMarker(Marker):
    """A budget marker: the budget argument's unit and where its default comes from."""

    budget_unit: str
    parse_budget: Callable[..., float]
    config_key: str
    fallback: float | None = None  # the budget when neither the marker nor the config has one
    noun: str = "the budget"
    separator: str = " "

    def __post_init__(self) -> None:
        object.__setattr__(self, "where", self.where or f"@{self.name}")
        super().__post_init__()

    def default_budget(self, budgets: Budgets) -> float | None:
        value = getattr(budgets, self.config_key) if self.config_key else None
        return self.fallback if value is None else float(value)

    def parse(
        self, args: Sequence[Any], kwargs: Mapping[str, Any], config: DeployConfig
    ) -> BudgetRequest:
        request = parse_budget_marker(self, args, kwargs, config.budgets)
        model = request.options.get("model")
        if model is not None and model not in config.models:
            try:
                config.model(model)
            except ValueError as exc:
                raise MarkerError(f"{self.label('model')}: {exc}") from None
        _check_service(self, request, config)
        return request


def _check_service(marker: BudgetMarker, request: BudgetRequest, config: DeployConfig) -> None:
    """``service=``: a configured service, and not together with ``model=``."""
    service = request.options.get("service")
    if service is None:
        return
    if request.options.get("model") is not None:
        raise MarkerError(
            f"{marker.where}: give model= or service=, not both: a cold start is of a model"
            " loaded in a fresh process or of a service started fresh"
        )
    if service not in config.services:
        names = ", ".join(sorted(config.services)) or "none: add a [services.NAME] table"
        raise MarkerError(
            f"{marker.label('service')}: unknown service {service!r}; configured services: {names}"
        )


class CapacityMarker(BudgetMarker):
    """``capacity_over``: the latency bound defaults to the configured latency budget."""

    def parse(
        self, args: Sequence[Any], kwargs: Mapping[str, Any], config: DeployConfig
    ) -> BudgetRequest:
        request = super().parse(args, kwargs, config)
        if request.options["latency_ms"] is not None:
            return request
        default = config.budgets.latency_ms
        if default is None:
            raise MarkerError(
                f"{self.label('latency_ms')}: no latency bound: give latency_ms or set"
                " latency_ms in the [budgets] table of the deploycheck configuration"
            )
        return replace(request, options={**request.options, "latency_ms": float(default)})


class FitMarker(Marker):
    """``device_fit``: the model (or models running together) to fit on every device."""

    def parse(
        self, args: Sequence[Any], kwargs: Mapping[str, Any], config: DeployConfig
    ) -> FitRequest:
        return parse_fit_marker(args, kwargs, config)


class OfflineMarker(Marker):
    """``offline``: the loopback ports left open and whether an attempt fails the test."""

    def parse(
        self, args: Sequence[Any], kwargs: Mapping[str, Any], config: DeployConfig
    ) -> OfflineRequest:
        return parse_offline_marker(args, kwargs)


MEASUREMENT_OPTIONS: dict[str, Option] = {
    "confidence": Option(_confidence, 0.99),
    "warmup": Option(_whole(0), 10),
    "min_samples": Option(_optional(_whole(1)), None),
    "max_samples": Option(_whole(2), 20000),
    "max_time_s": Option(_positive_number, 30.0),
}
# Outputs checked while timed (measure/outputs.py): opt-in, since only the body's author
# knows that every call gets the same inputs; rtol and atol as numpy.allclose's.
VERIFY_OPTIONS: dict[str, Option] = {
    "verify_outputs": Option(_flag, False),
    "rtol": Option(_tolerance, 1e-5),
    "atol": Option(_tolerance, 1e-6),
}

DEVICE_FIT = FitMarker(
    name="device_fit",
    argument="model",
    options={"all_devices": Option(_fit_flag, None, shown="False")},
    noun="the model",
    summary=(
        "run the test once per device of the devices table (deploy_device fixture) and"
        " check that the model fits it; model is a configured model name or a list of"
        " models that run together (default: the default model). A misfit fails on the"
        " deploy target and is reported for the other devices, unless all_devices=True"
    ),
)
# Open-loop load (qps) and concurrent closed-loop clients on latency_under: the same
# question (the body's latency percentile against a budget), asked under load.
LOAD_OPTIONS: dict[str, Option] = {
    "qps": Option(_optional(_positive_number), None),
    "concurrency": Option(_optional(_whole(1)), None),
    "duration_s": Option(_positive_number, 10.0),
    "warmup_s": Option(_non_negative, 1.0),
    "seed": Option(_seed, None),
    "clients": Option(_optional(_whole(1)), None),
}
LOAD_ONLY = ("concurrency", "duration_s", "warmup_s", "seed")
OPEN_LOOP_ONLY = ("concurrency", "seed")
CLOSED_LOOP_ONLY = ("warmup", "min_samples", "max_samples", "max_time_s", *VERIFY_OPTIONS)


def _load_rule(marker: Marker, given: Mapping[str, Any], options: Mapping[str, Any]) -> list[str]:
    """qps or clients, not both; the load options only with one of them."""
    qps, clients = options.get("qps"), options.get("clients")
    if qps is not None and clients is not None:
        return [
            f"{marker.label('qps')}: give qps (open-loop arrivals) or clients (closed-loop"
            " clients at once), not both"
        ]
    mode = "qps" if qps is not None else "clients" if clients is not None else None
    if mode is None:
        wrong = [key for key in LOAD_ONLY if key in given]
        why = "apply only with qps= or clients="
    elif mode == "clients":
        wrong = [key for key in (*OPEN_LOOP_ONLY, *CLOSED_LOOP_ONLY) if key in given]
        why = "do not apply with clients= (N closed-loop clients for duration_s)"
    else:
        wrong = [key for key in CLOSED_LOOP_ONLY if key in given]
        why = "do not apply with qps= (an open-loop run of duration_s)"
    return [f"{marker.label(key)}: {why}" for key in wrong]


LATENCY = BudgetMarker(
    name="latency_under",
    argument="ms",
    budget_unit="ms",
    parse_budget=parse_duration_ms,
    config_key="latency_ms",
    options={
        "percentile": Option(_percentile, None),
        **MEASUREMENT_OPTIONS,
        **VERIFY_OPTIONS,
        **LOAD_OPTIONS,
    },
    rules=(_load_rule,),
    summary=(
        "the test body is one request; it is timed after a warm-up until a confidence bound"
        " on the percentile (default budgets.latency_percentile, 95) settles pass or fail"
        " against the budget in ms (default budgets.latency_ms); unsettled is inconclusive;"
        " verify_outputs=True fails it when a timed call returns other outputs than the"
        " first untimed call (within rtol, atol). qps=R calls it open-loop instead: Poisson"
        " arrivals at R req/s for duration_s after warmup_s, on concurrency workers"
        " (default: enough to keep up), latency from each scheduled arrival; fails when"
        " the service saturates. clients=N runs N closed-loop clients at once for"
        " duration_s, judged on the aggregate percentile"
    ),
)
THROUGHPUT = BudgetMarker(
    name="throughput_over",
    argument="items_per_s",
    budget_unit="items/s",
    parse_budget=parse_positive,
    config_key="throughput_items_per_s",
    options={
        "batch": Option(_batches, (1,), shown="1"),
        **MEASUREMENT_OPTIONS,
        **VERIFY_OPTIONS,
    },
    summary=(
        "the test body is one batched request of deploy_batch items; fails unless the"
        " throughput at the median call is at least items_per_s; a list of batch sizes runs"
        " the test once per size"
    ),
)
MEMORY = BudgetMarker(
    name="memory_under",
    argument="mb",
    budget_unit="MB",
    parse_budget=parse_size_mb,
    config_key="memory_mb",
    options={
        "repeat": Option(_whole(1), 5),
        "timeout_s": Option(_positive_number, 300.0),
        "model": Option(_model_name, None),
    },
    summary=(
        "the test runs alone in a fresh child process (its body repeat times); fails unless"
        " the peak resident memory of the workload is at most mb (MB = 10^6 bytes; default"
        " budgets.memory_mb) and fits the target's memory_mb. A test that takes deploy_service"
        " or deploy_services is judged on the peak RSS of the services' process trees while"
        " its body runs repeat times"
    ),
)
COLD_START = BudgetMarker(
    name="cold_start_under",
    argument="ms",
    budget_unit="ms",
    parse_budget=parse_duration_ms,
    config_key="cold_start_ms",
    options={
        "runs": Option(_whole(1), 5),
        "timeout_s": Option(_positive_number, 120.0),
        "model": Option(_model_name, None),
        "drop_cache": Option(_flag, True),
        "service": Option(_service_name, None),
    },
    summary=(
        "starts a fresh process runs times that imports the runtime, loads the model with"
        " the target's settings and returns its first result (cold boot: the model file's"
        " page cache is dropped first where the OS allows, unless drop_cache=False); fails"
        " unless the median time is at most ms (default budgets.cold_start_ms); reports the"
        " distribution and the memory at the first result. service=NAME instead starts that"
        " configured service runs times: process start to its first ready answer"
    ),
)
SOAK = BudgetMarker(
    name="soak",
    argument="minutes",
    budget_unit="min",
    parse_budget=parse_duration_min,
    config_key="soak_minutes",
    fallback=30.0,
    options={
        "growth_mb_per_hour": Option(_optional(_positive_number), None),
        "max_error_rate": Option(_optional(_rate), None),
        "max_latency_drift_pct": Option(_optional(_positive_number), None),
        "warmup": Option(_warmup_fraction, 0.2),
        "sample_interval_s": Option(_optional(_sample_interval), None),
        **VERIFY_OPTIONS,
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
OFFLINE = OfflineMarker(
    name="offline",
    argument="allow_loopback",
    argument_default=False,
    options={"strict": Option(_flag, True)},
    summary=(
        "run the test (setup, body and the measuring child processes) with network access"
        " blocked at the socket level; a connect, datagram or host-name lookup fails the"
        " check naming the address. allow_loopback=True allows loopback, a list of ports"
        " allows those loopback ports only. strict=False passes a test that survives the"
        " loss (attempts are reported)"
    ),
)

CAPACITY = CapacityMarker(
    name="capacity_over",
    argument="qps",
    budget_unit="req/s",
    parse_budget=parse_positive,
    config_key="",  # no configured default: the rate is the test's own claim
    options={
        "latency_ms": Option(_optional(_positive_number), None),
        "percentile": Option(_percentile, 99.0),
        "concurrency": Option(_optional(_whole(1)), None),
        "max_qps": Option(_optional(_positive_number), None),
        "start_qps": Option(_optional(_positive_number), None),
        "warmup_s": Option(_non_negative, 0.0),
        "seed": Option(_seed, None),
        "confidence": Option(_confidence, 0.99),
        "min_tail_samples": Option(_whole(1), 10),
        "min_step_s": Option(_positive_number, 1.0),
        "max_time_s": Option(_positive_number, 60.0),
    },
    rules=(lambda marker, given, options: _capacity_rule(marker, options),),
    summary=(
        "the test body is one request; finds the highest Poisson arrival rate (bracket from"
        " start_qps, default qps, then bisect; up to max_qps) at which the percentile of"
        " the latency from each scheduled arrival stays within latency_ms (default"
        " budgets.latency_ms), unsaturated and error-free; fails unless that capacity is at"
        " least qps req/s; inconclusive when the search could not tell within max_time_s"
    ),
)
BATCHING = BudgetMarker(
    name="batching_window",
    argument="latency_ms",
    where="@pytest.mark.batching_window",
    separator=": ",
    budget_unit="ms",
    parse_budget=parse_duration_ms,
    config_key="latency_ms",
    options={
        "qps": Option(_optional(_positive_number), None),
        "max_batch": Option(_batches, (1, 8, 32), shown="[1, 8, 32]"),
        "max_wait_ms": Option(_waits, (0.0, 5.0), shown="[0, 5]"),
        "percentile": Option(_percentile, 99.0),
        "duration_s": Option(_positive_number, 10.0),
        "warmup_s": Option(_non_negative, 1.0),
        "seed": Option(_seed, None),
        "model": Option(_model_name, None),
    },
    rules=(lambda marker, given, options: _batching_rule(marker, options),),
    summary=(
        "runs the model's example inputs (model, default: the default model) behind a"
        " dynamic batcher at Poisson arrivals of qps req/s, once per setting of max_batch"
        " x max_wait_ms, for duration_s after warmup_s; reports latency and throughput per"
        " setting and the best setting whose percentile is within latency_ms (default"
        " budgets.latency_ms); fails when no setting meets it"
    ),
)


def _capacity_rule(marker: Marker, options: Mapping[str, Any]) -> list[str]:
    start, cap = options.get("start_qps"), options.get("max_qps")
    if start is not None and cap is not None and start > cap:
        return [
            f"{marker.label('start_qps')}: {start:g} is more than max_qps ({cap:g});"
            " give start_qps <= max_qps"
        ]
    return []


def _batching_rule(marker: Marker, options: Mapping[str, Any]) -> list[str]:
    if options.get("qps") is None:
        return [f"{marker.label('qps')}: give the arrival rate in req/s, e.g. qps=50"]
    return []


MARKERS: dict[str, Marker] = {
    m.name: m
    for m in (
        DEVICE_FIT,
        LATENCY,
        THROUGHPUT,
        MEMORY,
        COLD_START,
        SOAK,
        CAPACITY,
        BATCHING,
        OFFLINE,
    )
}
BUDGET_MARKERS: dict[str, BudgetMarker] = {
    m.name: m for m in MARKERS.values() if isinstance(m, BudgetMarker)
}
DEPLOY_MARKERS = frozenset(MARKERS)
HELP_LINES = tuple(m.help for m in MARKERS.values())


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class BudgetRequest:
    """A validated budget marker: the budget (in the marker's unit) and every option."""

    marker: BudgetMarker
    budget: float
    options: Mapping[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.options[key]


@dataclass(frozen=True)
class FitRequest:
    """A validated ``device_fit`` marker: the models that run together on each device."""

    models: tuple[str, ...]
    all_devices: bool | None  # None: use the config's all_devices_must_fit


@dataclass(frozen=True)
class OfflineRequest:
    """What one test runs under: the loopback it may reach, strictness, why it is offline."""

    allow_loopback: bool | tuple[int, ...] = False
    strict: bool = True
    reason: str = "@pytest.mark.offline"


MarkerRequest = BudgetRequest | FitRequest | OfflineRequest


def parse_budget_marker(
    marker: BudgetMarker,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    budgets: Budgets | None,
) -> BudgetRequest:
    """Validate a budget marker's arguments; budgets=None leaves a missing budget open (NaN).

    A bad budget and bad options are reported together, one line each.
    """
    problems: tuple[str, ...] = ()
    try:
        options = marker.read(args, kwargs)[1]
    except MarkerError as exc:
        problems = _problems(exc)
    try:
        with _one_line_errors():
            budget = _budget(marker, marker.first(args, kwargs), budgets)
    except MarkerError as exc:
        problems = _problems(exc) + problems  # the budget first, as it is written first
    if problems:
        raise MarkerError(*problems)
    return BudgetRequest(marker, budget, options)


def _budget(marker: BudgetMarker, raw: Any, budgets: Budgets | None) -> float:
    if raw is not None:
        return marker.parse_budget(raw, what=marker.label(marker.argument))
    default = None if budgets is None else marker.default_budget(budgets)
    if default is None and budgets is not None and not marker.config_key:
        raise MarkerError(f"{marker.where}: no budget: give {marker.argument}")
    if default is None and budgets is not None:
        raise MarkerError(
            f"{marker.where}: no budget: give {marker.argument} or set {marker.config_key} in"
            " the [budgets] table of the deploycheck configuration"
        )
    return math.nan if default is None else default


def parse_fit_marker(
    args: Sequence[Any], kwargs: Mapping[str, Any], config: DeployConfig
) -> FitRequest:
    """Validate ``device_fit``'s arguments against the configured models."""
    model, options = DEVICE_FIT.read(args, kwargs)
    return FitRequest(_model_names(model, config), options["all_devices"])


def _model_names(model: Any, config: DeployConfig) -> tuple[str, ...]:
    if model is not None and not _is_model_list(model):
        raise MarkerError(
            f"{DEVICE_FIT.label('model')} must be a model name or a list of names, got {model!r}"
        )
    try:
        if model is None:
            names: tuple[str, ...] = (config.resolve_default_model(),)
        else:
            names = (model,) if isinstance(model, str) else tuple(model)
        for name in names:
            config.model(name)
    except ValueError as exc:  # the configuration's own one-line ConfigError
        raise MarkerError(f"{DEVICE_FIT.where}: {exc}") from None
    return names


def _is_model_list(model: Any) -> bool:
    if isinstance(model, str):
        return True
    is_sequence = isinstance(model, (list, tuple)) and bool(model)
    return is_sequence and all(isinstance(m, str) for m in model)


def parse_offline_marker(args: Sequence[Any], kwargs: Mapping[str, Any]) -> OfflineRequest:
    """Validate ``offline``'s arguments; one line saying what is valid otherwise."""
    allow, options = OFFLINE.read(args, kwargs)
    return OfflineRequest(_loopback(allow, OFFLINE.label(OFFLINE.argument)), options["strict"])


# --------------------------------------------------------------------------- one test's markers


class Mark(Protocol):
    """The part of a pytest mark this module reads."""

    @property
    def name(self) -> str: ...
    @property
    def args(self) -> tuple[Any, ...]: ...
    @property
    def kwargs(self) -> Mapping[str, Any]: ...


class MarkedNode(Protocol):
    """The part of a pytest node this module reads."""

    def iter_markers_with_node(self) -> Iterator[tuple[Any, Any]]: ...


@dataclass(frozen=True, eq=False)
class ItemMarkers:
    """Every deploy marker of one test, read once at collection: requests and problems."""

    requests: Mapping[str, MarkerRequest] = field(default_factory=dict)
    problems: tuple[str, ...] = ()  # one line each, naming the test and the marker

    def budget(self, name: str) -> BudgetRequest | None:
        request = self.requests.get(name)
        return request if isinstance(request, BudgetRequest) else None

    @property
    def fit(self) -> FitRequest | None:
        request = self.requests.get(DEVICE_FIT.name)
        return request if isinstance(request, FitRequest) else None

    @property
    def offline(self) -> OfflineRequest | None:
        request = self.requests.get(OFFLINE.name)
        return request if isinstance(request, OfflineRequest) else None


def deploy_marks(node: MarkedNode) -> list[Mark]:
    """The closest mark of each deploy marker on a test, in the order pytest finds them.

    A marker stacked twice on the same node (two ``@latency_under`` on one function)
    comes twice, so that :func:`read_markers` refuses it instead of one silently
    winning; a module's or class's mark under the function's own is overridden, as
    pytest's closest-marker rule has it.
    """
    found: dict[str, list[Mark]] = {}
    holders: dict[str, Any] = {}
    for holder, mark in node.iter_markers_with_node():
        if mark.name not in DEPLOY_MARKERS:
            continue
        if mark.name not in found:
            found[mark.name], holders[mark.name] = [mark], holder
        elif holders[mark.name] is holder:
            found[mark.name].append(mark)
    return [mark for marks in found.values() for mark in marks]


def read_markers(nodeid: str, marks: Iterable[Mark], config: DeployConfig) -> ItemMarkers:
    """Parse each mark; a bad one becomes a problem line instead of stopping the rest."""
    requests: dict[str, MarkerRequest] = {}
    problems: list[str] = []
    seen: set[str] = set()
    for mark in marks:
        if mark.name in seen:
            where = MARKERS[mark.name].where
            problems.append(f"{nodeid}: {where} given twice on the same test; give one")
            continue
        seen.add(mark.name)
        try:
            requests[mark.name] = MARKERS[mark.name].parse(mark.args, mark.kwargs, config)
        except MarkerError as exc:
            problems += [f"{nodeid}: {line}" for line in _problems(exc)]
    return ItemMarkers(requests, tuple(problems))


# --------------------------------------------------------------------------- decorators


def _mark(marker: Marker, first: Any, options: dict[str, Any]) -> pytest.MarkDecorator:
    import pytest  # here, not at module level: pytest start-up imports this module

    args = () if first is None else (first,)
    decorator: pytest.MarkDecorator = getattr(pytest.mark, marker.name)
    # with_args, not a call: a single callable argument would be taken for the test.
    return decorator.with_args(*args, **options)


def latency_under(ms: float | str | None = None, **options: Any) -> pytest.MarkDecorator:
    """Fail unless the test body's latency percentile (default p95) is within ``ms``.

    Options: percentile, confidence, warmup, min_samples, max_samples, max_time_s;
    under load: qps (open-loop), concurrency, duration_s, warmup_s, seed, or clients.
    """
    return _mark(LATENCY, ms, options)


def memory_under(mb: float | str | None = None, **options: Any) -> pytest.MarkDecorator:
    """Fail unless the workload's peak resident memory, measured alone, is within ``mb``.

    Options: repeat, timeout_s, model.
    """
    return _mark(MEMORY, mb, options)


def throughput_over(items_per_s: float | None = None, **options: Any) -> pytest.MarkDecorator:
    """Fail unless batched calls reach ``items_per_s`` at the median call latency.

    Options: batch (a size or a list of sizes), confidence, warmup, min_samples,
    max_samples, max_time_s.
    """
    return _mark(THROUGHPUT, items_per_s, options)


def cold_start_under(ms: float | str | None = None, **options: Any) -> pytest.MarkDecorator:
    """Fail unless a fresh process gets the model's first result within ``ms`` (median).

    Options: runs, timeout_s, model, drop_cache, service.
    """
    return _mark(COLD_START, ms, options)


def capacity_over(qps: float | None = None, **options: Any) -> pytest.MarkDecorator:
    """Fail unless the highest arrival rate holding the latency bound is at least ``qps``.

    Options: latency_ms, percentile, concurrency, max_qps, start_qps, warmup_s, seed,
    confidence, min_tail_samples, min_step_s, max_time_s.
    """
    return _mark(CAPACITY, qps, options)


def soak(minutes: float | str | None = None, **options: Any) -> pytest.MarkDecorator:
    """Call the test body back to back for ``minutes``; fail on memory growth or errors.

    Options: growth_mb_per_hour, max_error_rate, max_latency_drift_pct, warmup,
    sample_interval_s.
    """
    return _mark(SOAK, minutes, options)


def offline(
    allow_loopback: bool | list[int] = False, *, strict: bool = True
) -> pytest.MarkDecorator:
    """Run the test with the network blocked; any attempt fails it, naming the address."""
    return _mark(OFFLINE, None, {"allow_loopback": allow_loopback, "strict": strict})
