"""The marker table: budget marker arguments validated once, one clear line per mistake."""

from __future__ import annotations

import math

import pytest

from pytest_deploycheck import cold_start_under, latency_under, memory_under, throughput_over
from pytest_deploycheck.config.schema import Budgets
from pytest_deploycheck.markers import (
    BUDGET_MARKERS,
    COLD_START,
    LATENCY,
    MEMORY,
    THROUGHPUT,
    MarkerError,
    parse_budget_marker,
)

CONFIGURED = Budgets(
    latency_ms=50.0,
    memory_mb=256.0,
    throughput_items_per_s=100.0,
    cold_start_ms=900.0,
    latency_percentile=99.0,
)


def test_signatures_are_generated_from_the_options() -> None:
    assert LATENCY.signature == (
        "latency_under(ms=None, *, percentile=None, confidence=0.99, warmup=10,"
        " min_samples=None, max_samples=20000, max_time_s=30.0)"
    )
    assert MEMORY.help.startswith(
        "memory_under(mb=None, *, repeat=5, timeout_s=300.0, model=None): "
    )
    assert set(BUDGET_MARKERS) == {
        "latency_under",
        "memory_under",
        "throughput_over",
        "cold_start_under",
        "soak",
    }


def test_positional_and_keyword_budgets_with_units() -> None:
    assert parse_budget_marker(LATENCY, ("80ms",), {}, Budgets()).budget == 80.0
    assert parse_budget_marker(LATENCY, (), {"ms": "0.2 s"}, Budgets()).budget == 200.0
    assert parse_budget_marker(MEMORY, ("1 GiB",), {}, Budgets()).budget == pytest.approx(
        1073.741824
    )


def test_budget_defaults_come_from_the_config() -> None:
    request = parse_budget_marker(LATENCY, (), {}, CONFIGURED)
    assert request.budget == 50.0
    assert request["percentile"] is None  # resolved against budgets.latency_percentile later
    assert parse_budget_marker(COLD_START, (), {"runs": 3}, CONFIGURED)["runs"] == 3


def test_options_get_their_defaults() -> None:
    request = parse_budget_marker(THROUGHPUT, (200,), {"batch": [1, 8, 32]}, Budgets())
    assert request["batch"] == (1, 8, 32)
    assert request["confidence"] == 0.99 and request["max_samples"] == 20000


@pytest.mark.parametrize(
    ("marker", "args", "kwargs", "message"),
    [
        (LATENCY, (), {}, "@latency_under: no budget: give ms or set latency_ms"),
        (LATENCY, (-5,), {}, "@latency_under ms: expected a finite number > 0, got -5"),
        (LATENCY, ("fast",), {}, "@latency_under ms: cannot read 'fast'"),
        (LATENCY, (80,), {"percentil": 99}, "@latency_under: unknown argument 'percentil'"),
        (
            LATENCY,
            (80,),
            {"percentile": 100},
            "percentile: expected a percentile between 0 and 100",
        ),
        (LATENCY, (80,), {"confidence": 1.0}, "confidence: expected a confidence in"),
        (LATENCY, (80,), {"ms": 80}, "@latency_under: give the budget once"),
        (LATENCY, (80,), {"warmup": 2.5}, "warmup: expected a whole number >= 0, got 2.5"),
        (MEMORY, ("lots",), {}, "@memory_under mb: cannot read 'lots'"),
        (MEMORY, (512,), {"repeat": 0}, "repeat: expected a whole number >= 1, got 0"),
        (THROUGHPUT, (100,), {"batch": []}, "batch: expected a batch size or a list"),
        (THROUGHPUT, (100,), {"batch": [1, 0]}, "batch: expected a whole number >= 1, got 0"),
        (COLD_START, (500,), {"model": ""}, "model: expected a configured model name"),
    ],
)
def test_bad_arguments_are_one_clear_line(marker, args, kwargs, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MarkerError) as info:
        parse_budget_marker(marker, args, kwargs, Budgets())
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_decorators_are_the_markers() -> None:
    mark = latency_under(80, percentile=99).mark
    assert (mark.name, mark.args, mark.kwargs) == ("latency_under", (80,), {"percentile": 99})
    assert memory_under().mark.args == ()
    assert throughput_over(100, batch=8).mark.kwargs == {"batch": 8}
    assert cold_start_under("2s").mark.args == ("2s",)


def test_without_config_defaults_the_budget_is_left_open() -> None:
    assert math.isnan(parse_budget_marker(LATENCY, (), {}, None).budget)


def test_cold_start_drop_cache_is_a_flag() -> None:
    assert parse_budget_marker(COLD_START, (500,), {}, None)["drop_cache"] is True
    assert (
        parse_budget_marker(COLD_START, (500,), {"drop_cache": False}, None)["drop_cache"] is False
    )
    with pytest.raises(MarkerError, match="drop_cache: expected True or False, got 'no'"):
        parse_budget_marker(COLD_START, (500,), {"drop_cache": "no"}, None)
