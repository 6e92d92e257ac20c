"""Unit tests of checks.py: the check record and where record_check sends it."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

import numpy as np
import pytest

from pytest_deploycheck.checks.record import (
    Check,
    CheckError,
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
        display="p95 61.2 ms",
        notes=("host has 2 CPUs",),
        caveats=("measured on the host",),
        models=("optimized",),
    )

    assert Check.from_dict(check.as_dict()) == check
    assert Check.from_dict(json.loads(json.dumps(check.as_dict()))) == check


def test_the_shared_fields_are_tuples_on_the_check_and_lists_in_its_dict() -> None:
    check = Check(name="c", metric="m", value=1, notes=["a", "b"], models=["optimized"])  # type: ignore[arg-type]
    data = check.as_dict()

    assert (check.notes, check.caveats, check.models) == (("a", "b"), (), ("optimized",))
    assert (data["notes"], data["caveats"], data["models"]) == (["a", "b"], [], ["optimized"])
    assert data["display"] == ""
    assert "notes" not in data["extra"]


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


@pytest.mark.parametrize("value", [None, "edge-c FIT", True, 412, 61.2, 10**300])
def test_finite_and_non_numeric_values_are_accepted(value: object) -> None:
    assert Check(name="c", metric="m", value=value).value == value  # type: ignore[arg-type]


@pytest.mark.parametrize("attribute", ["value", "budget"])
def test_an_integer_too_large_for_a_float_is_one_line_naming_the_check(attribute: str) -> None:
    with pytest.raises(CheckError) as error:
        Check(name="c", metric="m", **{"value": 1, attribute: 10**5000})  # type: ignore[arg-type]

    assert str(error.value) == (
        f"check 'c': {attribute} is an integer of about 5001 digits, too large for a float;"
        " give a number below 1.8e308"
    )


@pytest.mark.parametrize("value", [object(), [1.0], {"p95": 1.0}, complex(1, 2), b"61.2"], ids=type)
def test_a_value_that_is_no_figure_is_refused_in_one_line(value: object) -> None:
    with pytest.raises(CheckError, match=r"^check 'c': value must be a number, a string") as error:
        Check(name="c", metric="m", value=value)  # type: ignore[arg-type]

    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"metric": None}, "check 'c': metric must be a string, got None"),
        ({"details": 3}, "check 'c': details must be a string, got 3"),
        ({"gating": "yes"}, "check 'c': gating must be True or False, got 'yes'"),
        ({"notes": "one note"}, "check 'c': notes must be a list of strings, got 'one note'"),
        ({"caveats": [1]}, "check 'c': caveats must be a list of strings, got 1 in it"),
    ],
)
def test_each_field_is_checked_in_one_line_naming_the_check(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(CheckError) as error:
        Check(**{"name": "c", "metric": "m", "value": 1, **fields})  # type: ignore[arg-type]

    assert str(error.value) == message


def test_a_check_error_is_a_value_error_and_a_type_error() -> None:
    assert issubclass(CheckError, ValueError) and issubclass(CheckError, TypeError)


def test_a_display_is_one_phrase() -> None:
    assert Check(name="c", metric="m", value=1, display="p95 61 ms\n(n=9)").display == (
        "p95 61 ms (n=9)"
    )


# --------------------------------------------------------------------------- one predicate


@pytest.mark.parametrize(
    ("passed", "gating", "blocks"),
    [
        (True, True, False),
        (False, True, True),
        (None, True, True),
        (True, False, False),
        (False, False, False),
        (None, False, False),
    ],
)
def test_only_a_gating_check_that_did_not_pass_blocks_the_release(
    passed: bool | None, gating: bool, blocks: bool
) -> None:
    check = Check(name="c", metric="m", value=1, passed=passed, gating=gating)

    assert check.blocks_release is blocks


@pytest.mark.parametrize(
    ("raw", "passed", "status"),
    [(np.False_, False, "FAIL"), (np.True_, True, "PASS"), (np.array(False), False, "FAIL")],
    ids=["np.False_", "np.True_", "0-d array"],
)
def test_a_numpy_bool_verdict_is_a_plain_bool(raw: object, passed: bool, status: str) -> None:
    check = Check(name="c", metric="m", value=1, passed=raw)  # type: ignore[arg-type]

    assert check.passed is passed
    assert (check.status, check.blocks_release) == (status, not passed)
    assert json.loads(json.dumps(check.as_dict()))["passed"] is passed


@pytest.mark.parametrize(
    "raw", ["False", "True", 0, 1, 0.0, np.int64(1), np.array([True]), "inconclusive"], ids=repr
)
def test_passed_that_is_no_bool_is_refused_naming_the_check(raw: object) -> None:
    with pytest.raises(CheckError) as error:
        Check(name="latency_under_80", metric="m", value=1, passed=raw)  # type: ignore[arg-type]

    message = str(error.value)
    assert message.startswith(
        "check 'latency_under_80': passed must be True, False or None (inconclusive), got "
    )
    assert "\n" not in message


def test_record_check_refuses_a_string_verdict_and_records_nothing() -> None:
    recorder = CheckRecorder()
    with recording(recorder), pytest.raises(CheckError, match="passed must be True, False"):
        record(passed="False")

    assert recorder.checks == []


# --------------------------------------------------------------------------- plain data


def test_extra_becomes_plain_json_data() -> None:
    check = Check(
        name="c",
        metric="m",
        value=1,
        extra={
            "samples_ns": np.array([1, 2, 3]),
            "p": np.float32(0.5),
            "n": np.int64(3),
            "ok": np.bool_(True),
            "ci": (1.0, 2.0),
            "nested": {"rows": [(0.1, "warmup", None)]},
        },
    )

    assert check.extra == {
        "samples_ns": [1, 2, 3],
        "p": 0.5,
        "n": 3,
        "ok": True,
        "ci": [1.0, 2.0],
        "nested": {"rows": [[0.1, "warmup", None]]},
    }
    assert type(check.extra["n"]) is int and type(check.extra["ok"]) is bool


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"obj": object()}, "check 'c': extra['obj'] is object <object object at "),
        ({"rows": [[1, {2, 3}]]}, "check 'c': extra['rows'][0][1] is set {2, 3};"),
        ({3: "x"}, "check 'c': extra has the key 3; extra must be plain JSON data"),
        ({"big": 10**5000}, "check 'c': extra['big'] is an integer of about 5001 digits"),
    ],
    ids=["object", "set", "int key", "huge int"],
)
def test_extra_that_is_no_plain_data_is_refused_naming_the_key(
    extra: dict[object, object], message: str
) -> None:
    with pytest.raises(CheckError) as error:
        Check(name="c", metric="m", value=1, extra=extra)  # type: ignore[arg-type]

    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("key", ["display", "notes", "caveats", "models"])
def test_a_shared_field_in_extra_points_to_the_field(key: str) -> None:
    with pytest.raises(CheckError) as error:
        Check(name="c", metric="m", value=1, extra={key: []})

    assert (
        str(error.value)
        == f"check 'c': extra[{key!r}] is a field of the check: pass {key}= instead"
    )


def test_record_check_takes_the_shared_fields() -> None:
    with recording(CheckRecorder()):
        check = record(display="61.2 ms on edge-c", notes=["a note"], caveats=("a caveat",))

    assert (check.display, check.notes, check.caveats) == (
        "61.2 ms on edge-c",
        ("a note",),
        ("a caveat",),
    )


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
