"""record_check in real runs: one pass/fail predicate wherever a check is recorded, and
a bad check is a failed test with its reason, never an INTERNALERROR or a lost run."""

from __future__ import annotations

import pytest

from conftest import DeployProject

HEADER = """
import numpy as np
import pytest
from pytest_deploycheck import record_check


def size_check(passed, **more):
    return record_check("size_under_5", metric="file_size", value=7.4, unit="MB", budget=5.0,
                        passed=passed, **more)

"""


@pytest.fixture
def project(deploy_project: DeployProject) -> DeployProject:
    return deploy_project.replace(target="edge-c", test_header=HEADER)


@pytest.mark.parametrize("verdict", ["False", "np.False_"])
def test_a_failed_check_recorded_in_a_fixture_teardown_fails_the_verdict(
    pytester: pytest.Pytester, project: DeployProject, verdict: str
) -> None:
    tests = f"""
@pytest.fixture
def measured_on_exit(deploy_target):
    yield
    size_check({verdict})

def test_body_passes(measured_on_exit):
    pass
"""
    project.make(tests)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "size_under_5  7.4 MB  budget 5 MB  measured  FAIL",
            "release_candidate: False",
            "  - size_under_5: 7.4 MB (budget 5 MB)",
        ]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert project.checks(name="size_under_5")["test_body_passes"]["passed"] is False


def test_a_numpy_false_in_an_xfail_test_fails_the_verdict(
    pytester: pytest.Pytester, project: DeployProject
) -> None:
    tests = """
@pytest.mark.xfail(strict=False, reason="the int8 file is known to be too big")
def test_expected_to_miss(deploy_target):
    size_check(np.float64(7.4) <= 5.0)
"""
    project.make(tests)
    result = pytester.runpytest()
    result.assert_outcomes(xfailed=1)
    result.stdout.fnmatch_lines(["release_candidate: False", "  - size_under_5: 7.4 MB*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_a_failed_check_of_an_xfail_test_that_passes_still_fails_the_verdict(
    pytester: pytest.Pytester, project: DeployProject
) -> None:
    # Recorded at setup, so the body passes (XPASS): the check counts all the same.
    tests = """
@pytest.fixture
def measured_first(deploy_target):
    size_check(np.False_)

@pytest.mark.xfail(strict=False)
def test_unexpectedly_fine(measured_first):
    pass
"""
    project.make(tests)
    result = pytester.runpytest()
    result.assert_outcomes(xpassed=1)
    result.stdout.fnmatch_lines(["release_candidate: False", "  - size_under_5: 7.4 MB*"])


def test_a_failed_check_of_a_test_that_then_skips_fails_the_verdict(
    pytester: pytest.Pytester, project: DeployProject
) -> None:
    tests = """
def test_skipped_after_measuring(deploy_target):
    size_check(np.False_)
    pytest.skip("no reference file on this host")
"""
    project.make(tests)
    result = pytester.runpytest()
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["release_candidate: False", "  - size_under_5: 7.4 MB*"])


def test_a_numpy_true_passes_its_test_and_the_verdict(
    pytester: pytest.Pytester, project: DeployProject
) -> None:
    tests = """
def test_small_enough(deploy_target):
    check = record_check("size_under_10", metric="file_size", value=np.float32(7.5),
                         unit="MB", budget=10.0, passed=np.float32(7.5) <= 10.0)
    assert check.passed is True
"""
    project.make(tests)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["size_under_10  7.5 MB  budget 10 MB  measured  PASS", "release_candidate: True"]
    )
    assert result.ret == pytest.ExitCode.OK


def test_a_string_verdict_fails_the_test_in_one_line(
    pytester: pytest.Pytester, project: DeployProject
) -> None:
    tests = """
def test_typo(deploy_target):
    size_check("False")
"""
    project.make(tests)
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*size_check(*False*)",
            "E *CheckError: check 'size_under_5': passed must be True, False or None"
            " (inconclusive), got 'False' (str)",
            "release_candidate: False",
        ]
    )
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    result.stdout.no_fnmatch_line("*__post_init__*")  # the traceback ends in the test


def test_a_value_too_large_for_a_float_fails_the_test_in_one_line(
    pytester: pytest.Pytester, project: DeployProject
) -> None:
    tests = """
def test_huge(deploy_target):
    record_check("count", metric="items", value=10**5000, passed=True)
"""
    project.make(tests)
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["E *CheckError: check 'count': value is an integer of about 5001 digits, too large*"]
    )
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


def test_extra_that_is_no_plain_data_fails_the_test_under_xdist(
    pytester: pytest.Pytester, project: DeployProject
) -> None:
    tests = """
def test_object_in_extra(deploy_target):
    size_check(True, extra={"obj": object()})

def test_fine(deploy_target):
    size_check(True)
"""
    project.make(tests)
    # Subprocess: xdist workers are separate interpreters anyway.
    result = pytester.runpytest_subprocess("-n", "2")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "E *CheckError: check 'size_under_5': extra[[]'obj'[]] is object <object object at *>;"
            " extra must be plain JSON data*",
            "release_candidate: False",
            "  - test_deploy.py::test_object_in_extra: test failed",
        ]
    )
    result.stdout.no_fnmatch_line("*no tests ran*")
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
