"""Unit tests of verdict.py: release_candidate is True only when something passed."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_deploycheck.checks.record import Check
from pytest_deploycheck.config.units import format_value
from pytest_deploycheck.verdict.decide import decide, describe_failure


def check(
    name: str = "latency_under_80",
    *,
    passed: bool | None = True,
    gating: bool = True,
    nodeid: str = "tests/test_model.py::test_fast",
    value: float = 61.2,
    budget: float | None = 80,
    details: str = "",
) -> Check:
    return Check(
        name=name,
        metric="latency_p95",
        value=value,
        unit="ms",
        budget=budget,
        passed=passed,
        gating=gating,
        nodeid=nodeid,
        details=details,
    )


def test_one_passing_gating_check_with_a_target_is_a_release_candidate() -> None:
    verdict = decide([check()], target="edge-c")

    assert verdict.release_candidate is True
    assert verdict.reasons == ()


def test_no_check_at_all_is_not_a_release_candidate() -> None:
    verdict = decide([], target="edge-c")

    assert verdict.release_candidate is False
    assert verdict.reasons == ("no deploy check ran",)


def test_only_non_gating_checks_is_not_a_release_candidate() -> None:
    verdict = decide([check(gating=False)], target="edge-c")

    assert verdict.release_candidate is False
    assert "no deploy check ran" in verdict.reasons


def test_no_target_is_not_a_release_candidate() -> None:
    verdict = decide([check()], target=None)

    assert verdict.release_candidate is False
    assert len(verdict.reasons) == 1
    assert "no deploy target selected" in verdict.reasons[0]
    assert "--deploy-target" in verdict.reasons[0]


def test_a_failed_gating_check_blocks_and_is_explained() -> None:
    failed = check(value=96.5, passed=False, details="n=412")

    verdict = decide([check("other"), failed], target="edge-c")

    assert verdict.release_candidate is False
    assert verdict.reasons == ("latency_under_80: 96.5 ms (budget 80 ms) - n=412",)


def test_a_failed_check_without_budget_shows_only_the_value() -> None:
    verdict = decide([check(passed=False, budget=None)], target="edge-c")

    assert verdict.reasons == ("latency_under_80: 61.2 ms",)


def test_an_inconclusive_gating_check_blocks() -> None:
    verdict = decide([check(passed=None, details="CI straddles the budget")], target="edge-c")

    assert verdict.release_candidate is False
    assert verdict.reasons == ("latency_under_80: inconclusive: CI straddles the budget",)


def test_an_inconclusive_check_without_details() -> None:
    verdict = decide([check(passed=None)], target="edge-c")

    assert verdict.reasons == ("latency_under_80: inconclusive",)


def test_a_failed_deploy_test_blocks_even_when_its_checks_passed() -> None:
    verdict = decide(
        [check()], target="edge-c", failed_tests=["tests/test_model.py::test_broken_fixture"]
    )

    assert verdict.release_candidate is False
    assert verdict.reasons == ("tests/test_model.py::test_broken_fixture: test failed",)


def test_a_test_failed_by_its_own_check_is_reported_once() -> None:
    failed = check(passed=False, nodeid="tests/test_model.py::test_fast")

    verdict = decide([failed], target="edge-c", failed_tests=["tests/test_model.py::test_fast"])

    assert len(verdict.reasons) == 1
    assert verdict.reasons[0].startswith("latency_under_80:")


def test_a_test_failed_by_its_own_inconclusive_check_is_reported_once() -> None:
    unsettled = check(passed=None, nodeid="tests/test_model.py::test_fast")

    verdict = decide([unsettled], target="edge-c", failed_tests=["tests/test_model.py::test_fast"])

    assert verdict.reasons == ("latency_under_80: inconclusive",)


def test_a_numpy_false_blocks_like_false() -> None:
    # np.mean(errors) < 0.01 is a numpy bool: the verdict must read it as the table does.
    failed = Check(name="error_rate", metric="m", value=0.2, passed=np.float64(0.2) < 0.01)

    verdict = decide([check(), failed], target="edge-c")

    assert (failed.status, verdict.release_candidate) == ("FAIL", False)
    assert verdict.reasons == ("error_rate: 0.2",)
    assert verdict.counts["FAIL"] == 1


def test_non_gating_failures_do_not_matter() -> None:
    verdict = decide(
        [check(), check("device_fit[optimized@edge-a]", passed=False, gating=False)],
        target="edge-c",
    )

    assert verdict.release_candidate is True


def test_every_reason_is_listed() -> None:
    verdict = decide(
        [check("a", passed=False), check("b", passed=None)],
        target=None,
        failed_tests=["tests/x.py::test_y"],
    )

    assert len(verdict.reasons) == 4


def test_counts_by_status() -> None:
    checks = [
        check("a"),
        check("b"),
        check("c", passed=False),
        check("d", passed=None),
        check("e", gating=False),
    ]

    counts = decide(checks, target="edge-c").counts

    assert counts == {"PASS": 2, "FAIL": 1, "INCONCLUSIVE": 1, "INFO": 1}


def test_verdict_as_dict() -> None:
    data = decide([], target=None).as_dict()

    assert data["release_candidate"] is False
    assert isinstance(data["reasons"], list)
    assert len(data["reasons"]) == 2
    assert data["counts"]["PASS"] == 0


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (None, "ms", "-"),
        (True, "", "True"),
        (False, "ms", "False"),
        (61.2, "ms", "61.2 ms"),
        (61.23456, "ms", "61.23 ms"),
        (0.004, "", "0.004"),
        (412, "MB", "412 MB"),
        (1234567.0, "", "1234567"),
        (12345.6, "ms", "12346 ms"),
        (-2.5e7, "items/s", "-25000000 items/s"),
        (1e-7, "", "1e-07"),
        ("edge-c FIT", "", "edge-c FIT"),
    ],
)
def test_format_value(value: object, unit: str, text: str) -> None:
    assert format_value(value, unit) == text


# --------------------------------------------------------------------------- caveats


def with_caveats(
    name: str, caveats: list[str], *, passed: bool = True, gating: bool = True
) -> Check:
    return Check(
        name=name,
        metric="rollback",
        value=None,
        passed=passed,
        gating=gating,
        caveats=tuple(caveats),
    )


def test_no_caveats_by_default() -> None:
    verdict = decide([check()], target="edge-c")

    assert verdict.caveats == ()
    assert verdict.as_dict()["caveats"] == []


def test_caveats_are_collected_from_every_check_once_in_order() -> None:
    checks = [
        check("a"),
        with_caveats("soak", ["soak cut to 5 of 30 minutes", "roll back to release.json"]),
        with_caveats("rollback", ["roll back to release.json", "release.json was not a candidate"]),
        with_caveats("info", ["from a non-gating check"], gating=False),
        with_caveats("empty", []),
    ]

    verdict = decide(checks, target="edge-c")

    assert verdict.caveats == (
        "soak cut to 5 of 30 minutes",
        "roll back to release.json",
        "release.json was not a candidate",
        "from a non-gating check",
    )
    assert verdict.as_dict()["caveats"] == list(verdict.caveats)


@pytest.mark.parametrize("passed", [True, False])
def test_caveats_never_change_the_verdict(passed: bool) -> None:
    checks = [check(passed=passed)]
    caveated = [*checks, with_caveats("rollback", ["roll back"], gating=False)]

    plain, with_caveat = decide(checks, target="edge-c"), decide(caveated, target="edge-c")

    assert with_caveat.release_candidate is plain.release_candidate is passed
    assert with_caveat.reasons == plain.reasons
    assert with_caveat.caveats == ("roll back",)


def test_caveats_alone_are_no_release_candidate() -> None:
    verdict = decide([with_caveats("rollback", ["roll back"], gating=False)], target="edge-c")

    assert verdict.release_candidate is False
    assert verdict.reasons == ("no deploy check ran",)
    assert verdict.caveats == ("roll back",)


def test_count_repeats_keeps_first_seen_order_and_never_merges_unkeyed_items() -> None:
    from pytest_deploycheck.report.tables import count_repeats

    items = ["a", "x", "a", "b", "x", "a"]
    kept = count_repeats(items, lambda item: None if item == "x" else item)
    assert kept == [("a", 3), ("x", 1), ("b", 1), ("x", 1)]


def test_an_inconclusive_check_says_inconclusive_once() -> None:
    advice = Check(
        "latency_under_80",
        metric="latency",
        value=None,
        passed=None,
        details="inconclusive: p95 vs budget 80 ms after 25 calls; time it longer",
    )
    silent = Check("soak_1min", metric="soak", value=None, passed=None)
    assert describe_failure(advice) == (
        "latency_under_80: inconclusive: p95 vs budget 80 ms after 25 calls; time it longer"
    )
    assert describe_failure(silent) == "soak_1min: inconclusive"
