"""Issue 15 point 5: words a newcomer reads without the README (unit level; the
device-fit legend as users see it is in test_plugin_accuracy_items.py)."""

from __future__ import annotations

from collections.abc import Callable

from pytest_deploycheck.checks.fit import FIT_LEGEND, fit_legend
from pytest_deploycheck.checks.soak import _progress_callback
from pytest_deploycheck.measure.latency import wide_interval_reason
from pytest_deploycheck.measure.soak import SoakPolicy, SoakSeries


def test_the_legend_appears_only_beside_a_check() -> None:
    assert fit_legend(["CHECK memory,power", "FIT"]) == FIT_LEGEND
    assert FIT_LEGEND.startswith("CHECK means does not fit:")
    assert fit_legend(["FIT", "FIT (unchecked: power)"]) is None


def test_an_infinite_bound_says_too_few_samples_above_the_percentile() -> None:
    why = wide_interval_reason(20, 95, 0.0334, float("inf"))
    assert why.startswith("too few samples above p95 to bound it (1 of 20); about ")
    assert why.endswith(" samples would")


def test_an_interval_ten_times_the_figure_says_why_and_a_narrow_one_says_nothing() -> None:
    assert wide_interval_reason(100, 99, 1.0, 10.5) == "wide: only 1 of 100 samples lie above p99"
    assert wide_interval_reason(100, 99, 1.0, 9.5) == ""
    assert wide_interval_reason(1000, 95, 61.2, 63.0) == ""


class Recorder:
    """A Progress stand-in keeping the text of each interim line."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def update(self, elapsed_s: float, text: str | Callable[[], str]) -> bool:
        self.texts.append(text() if callable(text) else text)
        return True


def test_interim_soak_growth_is_marked_provisional() -> None:
    rows = [(t, 100.0 + t / 60.0, 10, 0, 1.0, 2.0, 3.0) for t in range(0, 600, 30)]
    progress = Recorder()
    callback = _progress_callback(progress, SoakPolicy(duration_s=1800))  # type: ignore[arg-type]
    callback(SoakSeries.from_rows(rows), 570.0)
    assert progress.texts[-1].endswith("growth so far +60 MB/h (provisional)")
    warming = Recorder()
    callback = _progress_callback(warming, SoakPolicy(duration_s=1800))  # type: ignore[arg-type]
    callback(SoakSeries.from_rows(rows[:2]), 30.0)
    assert warming.texts[-1].endswith("warming up")
