"""Unit tests of verdict/completeness.py: complete, partial and interrupted runs."""

from __future__ import annotations

from pytest_deploycheck.checks.record import Check
from pytest_deploycheck.verdict.completeness import (
    STATUS_COMPLETE,
    STATUS_INTERRUPTED,
    STATUS_PARTIAL,
    RunEnd,
    baseline_checks_not_run,
    judge_completeness,
)
from pytest_deploycheck.verdict.decide import Verdict

TRUE = Verdict(release_candidate=True, reasons=(), counts={}, caveats=("a soak ran short",))


def missing(key: str) -> Check:
    return Check(
        f"regression[{key}]",
        metric="regression",
        value=None,
        gating=False,
        extra={"kind": "missing", "key": key},
    )


def test_a_whole_run_is_complete_and_leaves_the_verdict_alone() -> None:
    whole = judge_completeness([], RunEnd())

    assert (whole.status, whole.partial) == (STATUS_COMPLETE, False)
    assert whole.applied_to(TRUE) == TRUE


def test_an_interrupted_run_is_never_a_release_candidate() -> None:
    whole = judge_completeness([], RunEnd(interrupted="SIGTERM", allow_partial=True))
    verdict = whole.applied_to(TRUE)

    assert (whole.status, whole.partial) == (STATUS_INTERRUPTED, True)
    assert verdict.release_candidate is False
    assert verdict.reasons[0].startswith("run interrupted (SIGTERM): ")
    assert verdict.caveats[0] == "a soak ran short", "the verdict's own caveats come first"
    assert verdict.caveats[-1].startswith("partial evidence: ")


def test_deselected_deploy_tests_make_the_run_partial_and_name_them() -> None:
    nodeids = tuple(f"t.py::test_{n}" for n in range(7))
    whole = judge_completeness([], RunEnd(deselected=nodeids))

    assert whole.status == STATUS_PARTIAL
    (reason,) = whole.reasons
    assert reason.startswith("partial run: 7 deploy test(s) deselected")
    assert "t.py::test_4, ..." in reason
    assert "t.py::test_5" not in reason
    assert reason.endswith("pass --deploy-allow-partial for a verdict on the selection")
    assert whole.applied_to(TRUE).release_candidate is False


def test_allow_partial_turns_the_reasons_into_caveats() -> None:
    end = RunEnd(deselected=("t.py::test_a",), left_out=("--lf ...",), allow_partial=True)
    whole = judge_completeness([missing("t.py::test_b::latency_under_80")], end)
    verdict = whole.applied_to(TRUE)

    assert (whole.status, whole.reasons) == (STATUS_PARTIAL, ())
    assert verdict.release_candidate is True
    assert [c.split(":")[0] for c in whole.caveats] == ["partial run"] * 3
    assert "1 check(s) in the baseline did not run" in whole.caveats[2]


def test_baseline_checks_that_did_not_run_are_read_from_the_regression_checks() -> None:
    other = Check("regression[x]", metric="regression", value=1.0, extra={"kind": "unchanged"})

    assert baseline_checks_not_run([other, missing("a::b")]) == ["a::b"]


def test_a_crash_blocks_even_a_partial_run_that_is_allowed() -> None:
    end = RunEnd(crashed=("t.py::test_c: worker 'gw0' crashed",), allow_partial=True)
    whole = judge_completeness([], end)

    assert whole.status == STATUS_COMPLETE
    assert whole.applied_to(TRUE).reasons == ("t.py::test_c: worker 'gw0' crashed",)


def test_caveats_about_the_run_reach_the_verdict_whatever_its_status() -> None:
    whole = judge_completeness([], RunEnd(caveats=("previous/ could not be written",)))

    assert whole.status == STATUS_COMPLETE
    assert whole.applied_to(TRUE).caveats == ("a soak ran short", "previous/ could not be written")
    assert whole.applied_to(TRUE).release_candidate is True
