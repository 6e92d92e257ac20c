"""The budget markers as importable decorators.

``@latency_under(80)`` is ``@pytest.mark.latency_under(80)``: the plugin validates the
arguments at collection and reports a bad one as a one-line collection error.
"""

from __future__ import annotations

from typing import Any, cast

import pytest

from .markers_table import COLD_START, LATENCY, MEMORY, SOAK, THROUGHPUT, BudgetMarker


def _mark(marker: BudgetMarker, budget: Any, options: dict[str, Any]) -> pytest.MarkDecorator:
    args = () if budget is None else (budget,)
    decorator = cast(pytest.MarkDecorator, getattr(pytest.mark, marker.name))
    # with_args, not a call: a single callable argument would be taken for the test.
    return decorator.with_args(*args, **options)


def latency_under(ms: float | str | None = None, **options: Any) -> pytest.MarkDecorator:
    """Fail unless the test body's latency percentile (default p95) is within ``ms``.

    Options: percentile, confidence, warmup, min_samples, max_samples, max_time_s.
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

    Options: runs, timeout_s, model, drop_cache.
    """
    return _mark(COLD_START, ms, options)


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
    return pytest.mark.offline.with_args(allow_loopback=allow_loopback, strict=strict)
