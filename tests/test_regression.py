"""Unit tests of config/regression.py: the regression tolerances and their one set of rules.

The ``[tool.deploycheck.regression]`` table is validated once, at start-up, with the
rest of the configuration; the gates at the end of the run take the built
:class:`Tolerances` and never validate again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_deploycheck.config.regression import Tolerances, parse_compare_fail
from pytest_deploycheck.config.schema import ConfigError, parse_config

SOURCE = Path("/project/pyproject.toml")
WHERE = "pyproject.toml: [tool.deploycheck.regression]"
PER_CHECK = "pyproject.toml: [tool.deploycheck.regression.checks.latency_under_80]"
VALID_TOLERANCES = (
    "latency_pct, significance, memory_mb, memory_pct, accuracy, throughput_pct, cold_start_pct,"
    " host_drift_pct"
)


def tolerances_of(regression: Any) -> Tolerances:
    return parse_config({"regression": regression}, source=SOURCE).tolerances


def regression_errors(regression: Any) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as excinfo:
        parse_config({"regression": regression}, source=SOURCE)
    return tuple(str(line) for line in excinfo.value.args)


def test_default_tolerances() -> None:
    tolerances = Tolerances()
    assert (tolerances.latency_pct, tolerances.significance) == (10.0, 0.01)
    assert (tolerances.memory_mb, tolerances.memory_pct) == (None, 5.0)
    assert (tolerances.accuracy, tolerances.throughput_pct) == (0.005, 10.0)
    assert (tolerances.cold_start_pct, tolerances.on_environment_mismatch) == (25.0, "warn")
    assert parse_config({}).tolerances == Tolerances()


def test_tolerances_from_the_config_table() -> None:
    raw = {
        "latency_pct": 15,
        "significance": 0.05,
        "memory_mb": 20,
        "memory_pct": 3.5,
        "accuracy": 0.01,
        "throughput_pct": 8,
        "cold_start_pct": 40,
        "on_environment_mismatch": "refuse",
        "checks": {"latency_under_80": {"latency_pct": 20, "significance": 0.001}},
    }
    tolerances = tolerances_of(raw)
    assert tolerances.latency_pct == 15.0 and isinstance(tolerances.latency_pct, float)
    assert (tolerances.memory_mb, tolerances.on_environment_mismatch) == (20.0, "refuse")
    special = tolerances.for_check("latency_under_80")
    assert (special.latency_pct, special.significance, special.memory_mb) == (20.0, 0.001, 20.0)
    assert special.on_environment_mismatch == "refuse"
    assert tolerances.for_check("other") is tolerances
    assert tolerances.overridden("latency_under_80") and not tolerances.overridden("other")
    assert tolerances_of({}) == Tolerances()


def test_zero_tolerances_are_valid() -> None:
    tolerances = tolerances_of({"latency_pct": 0, "memory_mb": 0, "accuracy": 0})
    assert (tolerances.latency_pct, tolerances.memory_mb, tolerances.accuracy) == (0, 0, 0)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"latency_percent": 5},
            f"{WHERE}: unknown key 'latency_percent'; did you mean 'latency_pct'? valid keys:"
            f" {VALID_TOLERANCES}, on_environment_mismatch, host_drift, checks",
        ),
        ({"latency_pct": -5}, f"{WHERE}: latency_pct: expected a number >= 0 (percent), got -5"),
        (
            {"latency_pct": True},
            f"{WHERE}: latency_pct: expected a number >= 0 (percent), got True",
        ),
        ({"memory_mb": "50"}, f"{WHERE}: memory_mb: expected a number >= 0 (MB), got '50'"),
        (
            {"significance": 0.7},
            f"{WHERE}: significance: expected a number in (0, 0.5], e.g. 0.01, got 0.7",
        ),
        (
            {"significance": 0},
            f"{WHERE}: significance: expected a number in (0, 0.5], e.g. 0.01, got 0",
        ),
        (
            {"accuracy": 2},
            f"{WHERE}: accuracy: expected a number in [0, 1] (absolute accuracy), got 2",
        ),
        (
            {"throughput_pct": 100},
            f"{WHERE}: throughput_pct: expected a number in [0, 100) (percent), got 100",
        ),
        (
            {"cold_start_pct": float("nan")},
            f"{WHERE}: cold_start_pct: expected a number >= 0 (percent), got nan",
        ),
        (
            {"latency_pct": 10**400},
            f"{WHERE}: latency_pct: expected a number >= 0 (percent), got {10**400!r}",
        ),
        (
            {"on_environment_mismatch": "fail"},
            f"{WHERE}: on_environment_mismatch: expected one of 'warn', 'refuse', got 'fail'",
        ),
        (
            {"checks": 5},
            "pyproject.toml: [tool.deploycheck.regression.checks]: expected a table of check"
            " names, e.g. [tool.deploycheck.regression.checks.latency_under_80],"
            " got a whole number (5)",
        ),
        (
            {"checks": {"latency_under_80": 20}},
            f"{PER_CHECK}: expected a table of tolerances, got a whole number (20)",
        ),
        (
            {"checks": {"latency_under_80": {"on_environment_mismatch": "warn"}}},
            f"{PER_CHECK}: unknown key 'on_environment_mismatch'; valid keys: {VALID_TOLERANCES}",
        ),
        (
            {"checks": {"latency_under_80": {"latency_pct": -1}}},
            f"{PER_CHECK}: latency_pct: expected a number >= 0 (percent), got -1",
        ),
    ],
)
def test_tolerance_errors_are_one_line_naming_the_file_table_and_key(
    raw: dict[str, Any], message: str
) -> None:
    assert regression_errors(raw) == (message,)


def test_every_bad_tolerance_is_reported_at_once() -> None:
    errors = regression_errors({"accuracy": 2, "checks": {"x": {"memory_pct": -1}}})
    assert [line.split(": ")[2] for line in errors] == ["accuracy", "memory_pct"]


def test_tolerances_not_a_table() -> None:
    assert regression_errors([]) == (
        "pyproject.toml: [tool.deploycheck.regression]: expected a table, got a list ([])",
    )


def test_tolerances_built_in_python_are_validated_too() -> None:
    with pytest.raises(ValueError, match=r"^Tolerances: latency_pct: expected a number >= 0"):
        Tolerances(latency_pct=-1)
    with pytest.raises(ValueError, match=r"^Tolerances: on_environment_mismatch: expected"):
        Tolerances(on_environment_mismatch="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^Tolerances: per_check\['x'\]: accuracy: expected"):
        Tolerances(per_check={"x": {"accuracy": 2.0}})
    with pytest.raises(ValueError, match=r"^Tolerances: per_check\['x'\]: latency: not a"):
        Tolerances(per_check={"x": {"latency": 2.0}})


def test_host_drift_is_normalize_or_inconclusive() -> None:
    assert Tolerances().host_drift == "normalize"
    assert tolerances_of({"host_drift": "inconclusive"}).host_drift == "inconclusive"
    assert regression_errors({"host_drift": "ignore"}) == (
        f"{WHERE}: host_drift: expected one of 'normalize', 'inconclusive', got 'ignore'",
    )
    with pytest.raises(ValueError, match="host_drift: expected one of"):
        Tolerances(host_drift="ignore")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- --deploy-compare-fail


def test_compare_fail_parses_tolerances_by_the_config_rules() -> None:
    assert parse_compare_fail("latency_pct=10, memory_mb=20") == {
        "latency_pct": 10.0,
        "memory_mb": 20.0,
    }
    assert parse_compare_fail("host_drift=inconclusive,on_environment_mismatch=refuse") == {
        "host_drift": "inconclusive",
        "on_environment_mismatch": "refuse",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "latency_pct=-1",
            "--deploy-compare-fail 'latency_pct=-1': latency_pct:"
            " expected a number >= 0 (percent), got -1.0",
        ),
        (
            "latency_pct=fast",
            "--deploy-compare-fail 'latency_pct=fast': latency_pct:"
            " expected a number >= 0 (percent), got 'fast'",
        ),
        (
            "latency=10",
            f"--deploy-compare-fail 'latency=10': latency: not a tolerance; valid keys:"
            f" {VALID_TOLERANCES}, on_environment_mismatch, host_drift",
        ),
        (
            "latency_pct",
            "--deploy-compare-fail 'latency_pct': expected KEY=VALUE[,KEY=VALUE...], e.g."
            f" latency_pct=10,memory_mb=20; valid keys: {VALID_TOLERANCES},"
            " on_environment_mismatch, host_drift",
        ),
    ],
)
def test_compare_fail_errors_are_one_line_naming_the_option_and_key(
    text: str, message: str
) -> None:
    with pytest.raises(ValueError) as excinfo:
        parse_compare_fail(text)
    assert str(excinfo.value) == message


def test_compare_fail_overrides_the_config_and_its_per_check_values() -> None:
    config = tolerances_of(
        {"latency_pct": 5, "checks": {"a": {"latency_pct": 50, "accuracy": 0.1}}}
    )
    tolerances = config.with_overrides(parse_compare_fail("latency_pct=20"))
    assert tolerances.latency_pct == 20
    assert tolerances.for_check("a").latency_pct == 20
    assert tolerances.for_check("a").accuracy == 0.1
    assert config.with_overrides({}) is config


# --------------------------------------------------------------------------- at start-up


def test_a_bad_tolerance_is_a_usage_error_before_any_test_runs(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(
        """
        [tool.deploycheck]
        baseline = "baselines/main.json"

        [tool.deploycheck.regression]
        accuracy = 2
        """
    )
    pytester.makepyfile(test_ran="def test_ran():\n    raise AssertionError('must not run')\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: pyproject.toml: [[]tool.deploycheck.regression[]]: accuracy:"
            " expected a number in [[]0, 1[]] (absolute accuracy), got 2"
        ]
    )
    result.stdout.no_fnmatch_line("*must not run*")
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    result.stderr.no_fnmatch_line("*INTERNALERROR*")
    result.stderr.no_fnmatch_line("*Traceback*")


def test_a_bad_compare_fail_is_a_usage_error_before_any_test_runs(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyprojecttoml("[tool.deploycheck]\n")
    pytester.makepyfile(test_ran="def test_ran():\n    raise AssertionError('must not run')\n")
    result = pytester.runpytest("--deploy-compare-fail=memory_mb=lots")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: --deploy-compare-fail 'memory_mb=lots': memory_mb:"
            " expected a number >= 0 (MB), got 'lots'"
        ]
    )
    result.stdout.no_fnmatch_line("*must not run*")
    result.stderr.no_fnmatch_line("*Traceback*")
