"""checks/duet.py: when a timed check gets its pair, and what it records otherwise."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from pytest_deploycheck.checks.duet import DuetPair, DuetPlan, with_duet
from pytest_deploycheck.checks.record import Check


class FakeModel:
    """Stands in for DeployModel: a name for the session the workload would run."""

    def __init__(self, session: str) -> None:
        self.session = session

    @contextlib.contextmanager
    def standing_in(self, other: FakeModel) -> Iterator[None]:
        saved, self.session = self.session, other.session
        try:
            yield
        finally:
            self.session = saved


def timed(**extra: Any) -> Check:
    return Check(
        name="latency_under_80",
        metric="latency_p95",
        value=1.0,
        unit="ms",
        extra={"samples_ns": [1_000_000] * 30, **extra},
    )


def pair(candidate: FakeModel, release: FakeModel) -> DuetPair:
    return DuetPair("optimized", candidate, release, "models/v1.onnx", "ab" * 32)  # type: ignore[arg-type]


def test_the_body_runs_the_release_model_on_the_baseline_arm_and_its_own_after() -> None:
    candidate, release = FakeModel("v2"), FakeModel("v1")
    seen: list[str] = []
    check = with_duet(
        timed(), lambda: seen.append(candidate.session), DuetPlan((pair(candidate, release),)), None
    )
    assert set(seen) == {"v1", "v2"} and candidate.session == "v2"
    duet = check.extra["duet"]
    assert duet["models"] == ["optimized"]
    assert duet["release_files"] == {"optimized": {"path": "models/v1.onnx", "sha256": "ab" * 32}}
    assert len(duet["rounds"]) == 16


def test_nothing_to_pair_leaves_the_check_as_it_was() -> None:
    check = timed()
    assert with_duet(check, lambda: None, None, None) is check
    assert with_duet(check, lambda: None, DuetPlan(), None) is check


def test_a_plan_without_pairs_says_why_in_the_check() -> None:
    plan = DuetPlan(skipped=("a: not on disk", "b: cannot be paired"))
    check = with_duet(timed(), lambda: None, plan, None)
    assert check.extra["duet"] == {"skipped": "a: not on disk; b: cannot be paired"}


def test_a_check_without_a_figure_or_samples_is_not_paired() -> None:
    plan = DuetPlan((pair(FakeModel("v2"), FakeModel("v1")),))
    hung = Check(name="latency_under_80", metric="latency_p95", value=None, extra={"hang": {}})
    assert with_duet(hung, lambda: None, plan, None) is hung
    bare = Check(name="latency_under_80", metric="latency_p95", value=1.0)
    assert with_duet(bare, lambda: None, plan, None) is bare


def test_a_release_model_that_fails_is_one_line_and_no_pair() -> None:
    candidate, release = FakeModel("v2"), FakeModel("v1")

    def body() -> None:
        if candidate.session == "v1":
            raise ValueError("v1 refused the feed\nsecond line")

    check = with_duet(timed(), body, DuetPlan((pair(candidate, release),)), None)
    assert check.extra["duet"] == {"error": "ValueError: v1 refused the feed"}
    assert candidate.session == "v2"
