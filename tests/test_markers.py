"""The marker table: budget marker arguments validated once, one clear line per mistake."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

from pytest_deploycheck import cold_start_under, latency_under, memory_under, throughput_over
from pytest_deploycheck.config.schema import Budgets, parse_config
from pytest_deploycheck.markers import (
    BUDGET_MARKERS,
    COLD_START,
    LATENCY,
    MEMORY,
    THROUGHPUT,
    MarkerError,
    deploy_marks,
    parse_budget_marker,
    read_markers,
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
        " min_samples=None, max_samples=20000, max_time_s=30.0, verify_outputs=False,"
        " rtol=1e-05, atol=1e-06, qps=None, concurrency=None, duration_s=10.0, warmup_s=1.0,"
        " seed=None, clients=None)"
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
        "capacity_over",
        "batching_window",
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


# --------------------------------------------------------------------------- combinations


def test_every_bad_argument_of_a_marker_is_reported() -> None:
    with pytest.raises(MarkerError) as info:
        parse_budget_marker(
            LATENCY, ("fast",), {"percentile": 200, "confidence": 2, "nope": 1}, Budgets()
        )

    assert info.value.lines == (
        "@latency_under ms: cannot read 'fast'; write a number (in ms) or a number with one"
        " of the units ns, us, µs, ms, s, sec, min, h, e.g. '80ms'",
        f"@latency_under: unknown argument 'nope'; the signature is {LATENCY.signature}",
        "@latency_under percentile: expected a percentile between 0 and 100, got 200",
        "@latency_under confidence: expected a confidence in [0.5, 1), e.g. 0.99, got 2",
    )
    assert str(info.value) == info.value.lines[0]


@pytest.mark.parametrize(
    ("kwargs", "line"),
    [
        (
            {"min_samples": 500, "max_samples": 100},
            "@latency_under min_samples: 500 is more than max_samples (100);"
            " give min_samples <= max_samples",
        ),
        (
            {"min_samples": 30000},
            "@latency_under min_samples: 30000 is more than max_samples (20000);"
            " give min_samples <= max_samples",
        ),
    ],
)
def test_min_samples_above_max_samples_is_refused(kwargs: dict[str, int], line: str) -> None:
    # Accepted before: the measurement stopped at max_samples, short of the minimum.
    with pytest.raises(MarkerError) as info:
        parse_budget_marker(LATENCY, (80,), kwargs, Budgets())

    assert info.value.lines == (line,)


def test_min_samples_equal_to_max_samples_is_fine() -> None:
    request = parse_budget_marker(LATENCY, (80,), {"min_samples": 50, "max_samples": 50}, None)
    assert (request["min_samples"], request["max_samples"]) == (50, 50)


@pytest.mark.parametrize(
    ("marker", "args", "kwargs", "message"),
    [
        # 10**400 was an OverflowError at collection, in math.isfinite.
        (LATENCY, (10**400,), {}, "ms: expected a number from 1e-12 to 1e12, got a whole number"),
        (LATENCY, (1e-13,), {}, "ms: expected a number from 1e-12 to 1e12, got 1e-13"),
        (LATENCY, ("1e400ms",), {}, "ms: expected a finite number > 0, got '1e400ms'"),
        (LATENCY, (80,), {"max_samples": 10**20}, "max_samples: expected a whole number from 2"),
        (MEMORY, ("0.0000000000001MB",), {}, "mb: expected a number from 1e-12 to 1e12"),
    ],
)
def test_figures_outside_the_range_are_one_line(marker, args, kwargs, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MarkerError) as info:
        parse_budget_marker(marker, args, kwargs, Budgets())

    assert message in str(info.value)
    assert len(info.value.lines) == 1


class Holder:
    """A node of the collection tree that holds its own marks."""

    def __init__(self, *marks: pytest.MarkDecorator) -> None:
        self.marks = [decorator.mark for decorator in marks]


class Node:
    """A test: its own marks first, then its class's and module's (as pytest walks them)."""

    def __init__(self, *holders: Holder) -> None:
        self.holders = holders

    def iter_markers_with_node(self) -> Iterator[tuple[Holder, pytest.Mark]]:
        for holder in self.holders:
            for mark in holder.marks:
                yield holder, mark


def test_a_marker_stacked_twice_on_a_test_is_refused() -> None:
    node = Node(Holder(latency_under(80), latency_under(20), memory_under(512)))

    found = read_markers("test_x.py::test_a", deploy_marks(node), parse_config({}))

    assert found.problems == (
        "test_x.py::test_a: @latency_under given twice on the same test; give one",
    )
    assert found.budget("latency_under") is not None
    assert found.budget("memory_under") is not None


def test_a_module_marker_is_overridden_by_the_tests_own() -> None:
    node = Node(Holder(latency_under(20)), Holder(latency_under(80)))

    found = read_markers("test_x.py::test_a", deploy_marks(node), parse_config({}))

    assert found.problems == ()
    request = found.budget("latency_under")
    assert request is not None and request.budget == 20.0
