"""Unit tests of checks.py: the check record and where record_check sends it."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

import numpy as np
import pytest

from pytest_deploycheck.checks.record import (
    Check,
    CheckRecorder,
    config_budget,
    configured_budgets,
    current_recorder,
    record_check,
    recording,
)
from pytest_deploycheck.config.schema import Budgets


@pytest.fixture
def fallback() -> Iterator[CheckRecorder]:
    """The process-wide recorder (current outside any recording), emptied around the test."""
    recorder = current_recorder()
    recorder.drain()
    yield recorder
    recorder.drain()


def record(name: str = "latency_under_80", **kwargs: object) -> Check:
    fields: dict[str, object] = {"metric": "latency_p95", "value": 61.2, "passed": True}
    fields.update(kwargs)
    return record_check(name, **fields)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- routing


def test_record_check_inside_recording_goes_to_that_recorder_with_its_nodeid(
    fallback: CheckRecorder,
) -> None:
    recorder = CheckRecorder("tests/test_model.py::test_fast")

    with recording(recorder):
        check = record()

    assert recorder.checks == [check]
    assert check.nodeid == "tests/test_model.py::test_fast"
    assert fallback.checks == []


def test_record_check_outside_recording_goes_to_the_process_fallback(
    fallback: CheckRecorder,
) -> None:
    check = record()

    assert current_recorder() is fallback
    assert fallback.checks == [check]
    assert check.nodeid == ""


def test_nested_recordings_restore_the_outer_recorder(fallback: CheckRecorder) -> None:
    outer, inner = CheckRecorder("outer"), CheckRecorder("inner")

    with recording(outer):
        record("first")
        with recording(inner) as active:
            assert active is inner
            record("second")
        record("third")
    record("fourth")

    assert [c.name for c in outer.checks] == ["first", "third"]
    assert [c.name for c in inner.checks] == ["second"]
    assert [c.name for c in fallback.checks] == ["fourth"]


def test_recording_is_restored_after_an_exception(fallback: CheckRecorder) -> None:
    recorder = CheckRecorder("t")

    with pytest.raises(RuntimeError), recording(recorder):
        raise RuntimeError("workload broke")

    assert current_recorder() is fallback


def test_a_recorder_keeps_a_nodeid_the_check_already_has() -> None:
    recorder = CheckRecorder("tests/a.py::test_a")
    check = Check(name="c", metric="m", value=1, nodeid="tests/b.py::test_b")

    assert recorder.add(check).nodeid == "tests/b.py::test_b"


def test_drain_hands_each_check_out_once() -> None:
    recorder = CheckRecorder()
    with recording(recorder):
        record("first")
        record("second")

    assert [c.name for c in recorder.drain()] == ["first", "second"]
    assert recorder.drain() == []
    with recording(recorder):
        record("third")
    assert [c.name for c in recorder.drain()] == ["third"]


def test_record_check_copies_extra() -> None:
    extra = {"n": 412}
    with recording(CheckRecorder()):
        check = record(extra=extra)
    extra["n"] = 0

    assert check.extra == {"n": 412}


def test_record_check_returns_every_field() -> None:
    with recording(CheckRecorder()):
        check = record_check(
            "memory_under_512",
            metric="peak_rss",
            value=412,
            unit="MB",
            budget=512,
            passed=True,
            provenance="estimated",
            details="scaled from the host",
            gating=False,
        )

    assert (check.metric, check.value, check.unit, check.budget) == ("peak_rss", 412, "MB", 512)
    assert (check.provenance, check.details, check.gating) == (
        "estimated",
        "scaled from the host",
        False,
    )


# --------------------------------------------------------------------------- record


@pytest.mark.parametrize(
    ("passed", "gating", "status"),
    [
        (True, True, "PASS"),
        (False, True, "FAIL"),
        (None, True, "INCONCLUSIVE"),
        (True, False, "INFO"),
        (False, False, "INFO"),
    ],
)
def test_status(passed: bool | None, gating: bool, status: str) -> None:
    assert Check(name="c", metric="m", value=1, passed=passed, gating=gating).status == status


def test_from_dict_of_as_dict_round_trips() -> None:
    check = Check(
        name="latency_under_80",
        metric="latency_p95",
        value=61.2,
        unit="ms",
        budget=80,
        passed=None,
        provenance="estimated",
        details="n=412",
        gating=True,
        nodeid="tests/test_model.py::test_fast",
        extra={"ci": [59.8, 63.0]},
    )

    assert Check.from_dict(check.as_dict()) == check
    assert Check.from_dict(json.loads(json.dumps(check.as_dict()))) == check


def test_as_dict_carries_the_status() -> None:
    data = Check(name="c", metric="m", value=1, passed=False).as_dict()

    assert data["status"] == "FAIL"


def test_check_needs_a_name() -> None:
    with pytest.raises(ValueError, match="needs a name"):
        Check(name="", metric="m", value=1)


def test_invalid_provenance_is_refused_with_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="measured, estimated, declared, got 'guessed'"):
        Check(name="c", metric="m", value=1, provenance="guessed")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_non_finite_value_is_refused(value: float) -> None:
    with pytest.raises(ValueError, match="must be finite"):
        Check(name="c", metric="m", value=value)


def test_non_finite_value_is_refused_by_record_check() -> None:
    recorder = CheckRecorder()
    with recording(recorder), pytest.raises(ValueError, match="must be finite"):
        record(value=math.nan)

    assert recorder.checks == []


def test_non_finite_numpy_value_is_refused() -> None:
    # Model outputs are numpy scalars; np.float32 is not a Python float subclass.
    with pytest.raises(ValueError, match="must be finite"):
        Check(name="c", metric="m", value=np.float32("nan"))  # type: ignore[arg-type]


def test_numpy_scalar_value_can_be_written_as_json() -> None:
    check = Check(name="c", metric="accuracy", value=np.float32(0.5))  # type: ignore[arg-type]

    assert json.loads(json.dumps(check.as_dict()))["value"] == 0.5


@pytest.mark.parametrize("value", [None, "edge-c FIT", True, 412, 61.2])
def test_finite_and_non_numeric_values_are_accepted(value: object) -> None:
    assert Check(name="c", metric="m", value=value).value == value  # type: ignore[arg-type]


# --------------------------------------------------------------------------- budget defaults


def test_budget_defaults_hold_only_inside_their_block() -> None:
    assert config_budget("accuracy_drop") is None  # outside pytest: no config default
    with configured_budgets(Budgets(accuracy_drop=0.02)):
        assert config_budget("accuracy_drop") == 0.02
        assert config_budget("memory_mb") is None  # unset in this configuration
        with configured_budgets(Budgets()):
            assert config_budget("accuracy_drop") is None
        assert config_budget("accuracy_drop") == 0.02
    assert config_budget("accuracy_drop") is None


def test_budget_defaults_are_restored_after_an_exception() -> None:
    with pytest.raises(RuntimeError), configured_budgets(Budgets(accuracy_drop=0.5)):
        raise RuntimeError
    assert config_budget("accuracy_drop") is None


USES_THE_DEFAULT = """
import pytest
from pytest_deploycheck import assert_accuracy_drop
from pytest_deploycheck.checks.record import config_budget

EXPECTED = {expected}

def test_default():
    assert config_budget("accuracy_drop") == EXPECTED
    if EXPECTED is None:
        with pytest.raises(ValueError, match="no max_drop given"):
            assert_accuracy_drop(None, None, None)
"""


def test_two_configured_runs_in_one_process_do_not_share_budget_defaults(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyprojecttoml("[tool.deploycheck.budgets]\naccuracy_drop = 0.02\n")
    pytester.makepyfile(test_budget=USES_THE_DEFAULT.format(expected=0.02))
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=1)

    pytester.makepyprojecttoml("[tool.deploycheck.budgets]\nlatency_ms = 100\n")
    pytester.makepyfile(test_budget=USES_THE_DEFAULT.format(expected=None))
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=1)
    assert config_budget("accuracy_drop") is None  # nor does this, the outer run


NESTED_RUN = '''
from pytest_deploycheck.checks.record import config_budget

INNER = """
from pytest_deploycheck.checks.record import config_budget

def test_inner():
    assert config_budget("accuracy_drop") is None
"""

def test_outer(pytester):
    assert config_budget("accuracy_drop") == 0.02
    pytester.makepyprojecttoml("[tool.deploycheck.budgets]\\nlatency_ms = 100\\n")
    pytester.makepyfile(test_inner=INNER)
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=1)
    assert config_budget("accuracy_drop") == 0.02  # the inner run left ours alone
'''


def test_a_run_inside_a_configured_test_neither_sees_nor_clears_its_defaults(
    pytester: pytest.Pytester,
) -> None:
    # A test that starts a second pytest run in its own process (as this suite does):
    # each run's budgets hold around its own tests only.
    pytester.makepyprojecttoml("[tool.deploycheck.budgets]\naccuracy_drop = 0.02\n")
    pytester.makepyfile(test_outer=NESTED_RUN)
    pytester.runpytest("-p", "pytester", "-p", "no:randomly").assert_outcomes(passed=1)
