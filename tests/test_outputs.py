"""Unit tests of measure/outputs.py: what counts as the same outputs, and the one-line reason."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pytest_deploycheck.measure.outputs import (
    OutputCheck,
    OutputsVerified,
    Tolerance,
    first_difference,
)

TIGHT = Tolerance()


@pytest.mark.parametrize(
    ("reference", "output"),
    [
        (np.array([1.0, 2.0, np.nan]), np.array([1.0 + 1e-7, 2.0, np.nan])),
        ([np.ones(3), {"boxes": np.zeros((2, 4))}], [np.ones(3), {"boxes": np.zeros((2, 4))}]),
        ((1, 2.5, "label"), (1, 2.5 + 1e-9, "label")),
        (np.float32(0.5), 0.5),
        (math.nan, math.nan),
        (np.array(["a", "b"]), np.array(["a", "b"])),
    ],
)
def test_equal_outputs_have_no_difference(reference: object, output: object) -> None:
    assert first_difference(reference, output, TIGHT) is None


def test_the_first_differing_element_is_named_with_its_index() -> None:
    reference = [np.zeros((2, 3)), np.arange(4.0)]
    output = [np.zeros((2, 3)), np.array([0.0, 1.0, 9.0, 8.0])]
    assert first_difference(reference, output, TIGHT) == (
        "output[1][2] = 9.0 where the reference has 2.0 (2 differ)"
    )


@pytest.mark.parametrize(
    ("reference", "output", "reason"),
    [
        (
            np.zeros((1, 10)),
            np.zeros((0, 10)),
            "output has shape (0, 10) where the reference has (1, 10)",
        ),
        (np.zeros(3), None, "output is NoneType where the reference is an array"),
        ({"a": 1}, {"b": 1}, "output has keys ['b'] where the reference has ['a']"),
        ({"a": [1, 2]}, {"a": [1]}, "output['a'] has 1 items where the reference has 2"),
        ((1, 2), "x", "output is str where the reference is a sequence"),
        (3.0, 3.1, "output = 3.1 where the reference has 3.0"),
        ("cat", "dog", "output = 'dog' where the reference has 'cat'"),
    ],
)
def test_differences_read_as_one_line(reference: object, output: object, reason: str) -> None:
    assert first_difference(reference, output, TIGHT) == reason


def test_tolerances_are_allclose_ones() -> None:
    reference, output = np.array([100.0]), np.array([100.5])
    assert first_difference(reference, output, Tolerance(rtol=1e-5, atol=0)) is not None
    assert first_difference(reference, output, Tolerance(rtol=1e-2, atol=0)) is None
    assert first_difference(reference, output, Tolerance(rtol=0, atol=1.0)) is None


def test_the_check_compares_the_first_call_and_every_kth_then_stops_at_a_mismatch() -> None:
    check = OutputCheck(TIGHT, every=4)
    check.set_reference(np.ones(2))
    assert [call for call in range(1, 11) if check.wants(call)] == [1, 5, 9]
    assert check.compare(1, np.ones(2))
    assert not check.compare(5, np.zeros(2))
    assert not check.wants(9)  # one mismatch settles it
    assert check.result() == OutputsVerified(
        compared=2,
        mismatch="timed call 5: output[0] = 0.0 where the reference has 1.0 (2 differ)",
        reference_is_none=False,
    )


def test_the_reference_is_a_copy_of_a_reused_buffer() -> None:
    buffer = np.ones(3)
    check = OutputCheck(TIGHT)
    check.set_reference(buffer)
    buffer[:] = 0  # a runtime writing the next result into the same buffer
    assert not check.compare(1, buffer)


def test_a_body_returning_none_has_nothing_to_verify_and_says_so() -> None:
    check = OutputCheck(TIGHT)
    check.set_reference(None)
    assert not check.wants(1)
    result = check.result()
    assert (result.compared, result.mismatch) == (0, None)
    assert result.note() == "verify_outputs: the body returned None, so no outputs were verified"
    assert OutputsVerified(3, None, False).note() == ""
