"""Budget quantities as people write them."""

from __future__ import annotations

import contextlib
import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from pytest_deploycheck.config.units import (
    DURATION_UNITS_MS,
    MAX_FIGURE,
    MIN_FIGURE,
    SIZE_UNITS_MB,
    UnitError,
    format_value,
    parse_duration_ms,
    parse_positive,
    parse_size_mb,
)

positive = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False, allow_infinity=False)


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("80", 80.0),
        ("80ms", 80.0),
        ("80 ms", 80.0),
        ("0.5s", 500.0),
        ("250us", 0.25),
        ("1.5e3 ms", 1500.0),
        ("2min", 120000.0),
        (" 7 ms ", 7.0),
    ],
)
def test_durations_in_milliseconds(text: str, ms: float) -> None:
    assert parse_duration_ms(text) == pytest.approx(ms)


@pytest.mark.parametrize(
    ("text", "mb"),
    [
        ("512", 512.0),
        ("512MB", 512.0),
        ("512 mb", 512.0),
        ("1.5GB", 1500.0),
        ("512MiB", 512 * 1024**2 / 1e6),
        ("1 GiB", 1024**3 / 1e6),
        ("2048kB", 2.048),
    ],
)
def test_sizes_in_megabytes_of_a_million_bytes(text: str, mb: float) -> None:
    assert parse_size_mb(text) == pytest.approx(mb)


@pytest.mark.parametrize("bad", ["", "fast", "80 parsecs", "-5ms", "0", "ms80", "1,5ms"])
def test_unreadable_durations_name_the_valid_units(bad: str) -> None:
    with pytest.raises(UnitError, match=r"@latency_under ms: .*"):
        parse_duration_ms(bad, what="@latency_under ms")


@pytest.mark.parametrize("bad", [0, -1, math.inf, math.nan, True, None, [80]])
def test_numbers_must_be_positive_and_finite(bad: object) -> None:
    with pytest.raises(UnitError, match="budget: expected"):
        parse_positive(bad, what="budget")


def test_a_plain_number_is_in_the_marker_unit() -> None:
    assert parse_duration_ms(80) == 80.0
    assert parse_size_mb(512.5) == 512.5


@given(value=positive, unit=st.sampled_from(sorted(DURATION_UNITS_MS)))
def test_any_positive_duration_round_trips(value: float, unit: str) -> None:
    assume(value * DURATION_UNITS_MS[unit] <= MAX_FIGURE)  # 1e6 h is past the figure range
    parsed = parse_duration_ms(f"{value!r}{unit}")
    assert parsed == pytest.approx(value * DURATION_UNITS_MS[unit])


@given(value=positive, unit=st.sampled_from(sorted(SIZE_UNITS_MB)), upper=st.booleans())
def test_any_positive_size_round_trips_in_any_case(value: float, unit: str, upper: bool) -> None:
    text = f"{value!r} {unit.upper() if upper else unit}"
    assert parse_size_mb(text) == pytest.approx(value * SIZE_UNITS_MB[unit])


@given(st.text(max_size=12))
def test_arbitrary_text_is_parsed_or_refused_with_a_unit_error(text: str) -> None:
    for parse in (parse_duration_ms, parse_size_mb):
        with contextlib.suppress(UnitError):
            assert parse(text) > 0


# --------------------------------------------------------------------------- figure range


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (10**400, "a whole number of about 401 digits"),
        (1e13, "10000000000000.0"),
        (1e-13, "1e-13"),
        (5e-324, "5e-324"),
        ("1e400ms", "'1e400ms'"),
        ("0.0000001ns", "'0.0000001ns'"),
    ],
)
def test_figures_out_of_range_are_refused_in_one_line(value: object, shown: str) -> None:
    # 10**400 was an OverflowError at collection; 1e-13 broke the HTML report's scale.
    with pytest.raises(UnitError) as excinfo:
        parse_duration_ms(value, what="@latency_under ms")
    message = str(excinfo.value)
    assert message.startswith("@latency_under ms: expected a")
    assert message.endswith(f"got {shown}")
    assert "\n" not in message and len(message) < 120


def test_the_range_ends_are_figures() -> None:
    assert parse_positive(MIN_FIGURE, what="x") == MIN_FIGURE
    assert parse_positive(MAX_FIGURE, what="x") == MAX_FIGURE
    assert parse_positive(10**12, what="x") == 1e12


@given(st.integers() | st.floats())
def test_any_number_is_a_figure_or_a_unit_error(value: float) -> None:
    with contextlib.suppress(UnitError):
        assert MIN_FIGURE <= parse_positive(value, what="x") <= MAX_FIGURE


def test_huge_figures_are_written_with_an_exponent() -> None:
    assert format_value(1e308, "ms") == "1e+308 ms"
    assert format_value(-2.5e7, "items/s") == "-25000000 items/s"
