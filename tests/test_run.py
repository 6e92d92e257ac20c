"""Unit tests of verdict/run.py: fit groups, the session-level checks and the verdict."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from pytest_deploycheck.checks.environment import environment
from pytest_deploycheck.checks.metrics import FAILURE_CASES_KEY
from pytest_deploycheck.checks.record import Check
from pytest_deploycheck.config.evidence_names import FAILURE_CASES_FILE, REPORT_FILES
from pytest_deploycheck.config.schema import Device
from pytest_deploycheck.verdict import decide as decide_module
from pytest_deploycheck.verdict import run as run_module
from pytest_deploycheck.verdict.baseline import build_baseline, save_baseline
from pytest_deploycheck.verdict.run import FitGroup, fit_groups, produced_files
from readiness_builders import (
    DEVICE_ORDER,
    EDGE_A,
    EDGE_B,
    EDGE_C,
    LATENCY,
    fit_checks,
    make_config,
    make_run,
)

# --------------------------------------------------------------------------- fit groups


def test_fit_groups_group_by_model_set(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    alone = fit_checks(config, "optimized")
    together = fit_checks(config, "optimized", "detector")

    groups = fit_groups([LATENCY, *alone, *together])

    assert [g.models for g in groups] == [("optimized",), ("optimized", "detector")]
    assert groups[0].checks == alone
    assert groups[1].checks == together
    assert groups[0].needs == "700 MB (declared), 10 W (declared), offline"


def test_fit_groups_ignore_other_checks() -> None:
    assert fit_groups([LATENCY]) == []


def test_statuses_follow_the_devices_table_order(tmp_path: Path) -> None:
    checks = fit_checks(make_config(tmp_path), devices=(EDGE_C, EDGE_A, EDGE_B))

    statuses = fit_groups(checks)[0].statuses(DEVICE_ORDER)

    assert statuses == [
        ("edge-a", "CHECK memory,power"),
        ("edge-b", "CHECK offline"),
        ("edge-c", "FIT"),
    ]


def test_statuses_keep_devices_missing_from_the_order_at_the_end(tmp_path: Path) -> None:
    checks = fit_checks(make_config(tmp_path), devices=(EDGE_C, EDGE_A))

    statuses = fit_groups(checks)[0].statuses(["edge-a"])

    assert [device for device, _ in statuses] == ["edge-a", "edge-c"]


def test_cheapest_in_a_group_prefers_priced_fitting_devices(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    unpriced = Device("edge-free", memory_mb=8192, power_w=50, offline=True)
    group = FitGroup(("optimized",), "", fit_checks(config, devices=(unpriced, EDGE_A, EDGE_C)))

    assert group.cheapest() == ("edge-c", 120)


def test_cheapest_in_a_group_is_none_when_nothing_fits(tmp_path: Path) -> None:
    group = FitGroup(("optimized",), "", fit_checks(make_config(tmp_path), devices=(EDGE_A,)))

    assert group.cheapest() is None


# --------------------------------------------------------------------------- finishing


def test_activity_and_failed_tests_are_recorded_once(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    assert run.has_activity is False

    run.add_test_outcome("tests/t.py::test_a", failed=True)
    run.add_test_outcome("tests/t.py::test_a", failed=True)
    run.add_test_outcome("tests/t.py::test_b", failed=False)

    assert run.has_activity is True
    assert run.failed_tests == ["tests/t.py::test_a"]


def test_finish_judges_and_writes_nothing(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    run.add_checks([LATENCY])

    outcome = run.finish()

    assert outcome.verdict.release_candidate is True
    assert outcome.evidence_files == []
    assert not (tmp_path / "evidence").exists()


def test_finish_records_what_the_writer_needs(tmp_path: Path) -> None:
    run = make_run(tmp_path, command_line=["pytest", "-x"])
    run.add_checks([LATENCY])
    run.add_test_outcome("t.py::test_broken", True, "AssertionError")

    record = run.finish().record

    assert (record.target, record.evidence_dir) == ("edge-c", tmp_path / "evidence" / "edge-c")
    assert record.command_line == ["pytest", "-x"]
    assert record.failed_tests == ["t.py::test_broken"]
    assert record.failure_reasons == {"t.py::test_broken": "AssertionError"}
    assert record.started == run.started


def test_the_run_produces_failure_cases_only_when_a_check_carries_them() -> None:
    cases = Check("accuracy", metric="accuracy_drop", value=0.1, extra={FAILURE_CASES_KEY: []})
    # The same key in a check of the user's own metric is the user's data.
    own = Check("triage", metric="triaged", value=3, extra={FAILURE_CASES_KEY: ["a", "b", "c"]})

    assert produced_files([LATENCY]) == REPORT_FILES
    assert produced_files([LATENCY, own]) == REPORT_FILES
    assert produced_files([LATENCY, cases]) == (*REPORT_FILES, FAILURE_CASES_FILE)


def test_a_file_the_run_writes_itself_is_required_evidence_present(tmp_path: Path) -> None:
    config = make_config(tmp_path, required_evidence=("report.json", "failure_cases.md"))
    run = make_run(tmp_path, config)
    run.add_checks([LATENCY])

    checks = {c.name: c for c in run.finish().checks}

    assert checks["has_report"].display == "report.json written"
    assert checks["has_failure_cases"].status == "FAIL"


def _release(tmp_path: Path) -> Path:
    """A saved release whose model file differs from this run's (which is not on disk)."""
    release = tmp_path / "release.json"
    models = {"optimized": {"path": "int8.onnx", "sha256": hashlib.sha256(b"v1").hexdigest()}}
    document = build_baseline(
        [LATENCY],
        target="edge-c",
        environment=environment(),
        models=models,
        release_candidate=True,
    )
    save_baseline(release, document)
    return release


@pytest.mark.parametrize("passed", [True, False])
def test_the_verdict_is_decided_once_with_the_rollback_advice_in_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, passed: bool
) -> None:
    run = make_run(tmp_path, baseline=_release(tmp_path))
    run.add_checks([Check.from_dict({**LATENCY.as_dict(), "passed": passed})])
    decided: list[Any] = []

    def counted(*args: Any, **kwargs: Any) -> Any:
        decided.append(args)
        return decide_module.decide(*args, **kwargs)

    monkeypatch.setattr(run_module, "decide", counted)
    outcome = run.finish()

    assert len(decided) == 1
    rollback = {c.name: c for c in outcome.checks}["rollback"]
    assert rollback.extra["candidate"] is passed
    assert outcome.verdict.release_candidate is passed
    advice = [c for c in outcome.verdict.caveats if c.startswith("roll back to ")]
    assert len(advice) == (0 if passed else 1)
    assert outcome.verdict.counts["INFO"] >= 1, "the rollback check is counted"


# --------------------------------------------------------------------------- whole runs


def test_an_interrupted_run_is_no_release_candidate_and_says_so_first(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    run.add_checks([LATENCY])
    run.interrupt("SIGTERM")

    outcome = run.finish()

    assert outcome.verdict.release_candidate is False
    assert outcome.verdict.reasons[0].startswith("run interrupted (SIGTERM)")
    assert (outcome.status, outcome.partial) == ("interrupted", True)


def test_deselected_deploy_tests_make_a_partial_run_false_unless_allowed(tmp_path: Path) -> None:
    strict = make_run(tmp_path)
    allowed = make_run(tmp_path, allow_partial=True)
    for run in (strict, allowed):
        run.add_checks([LATENCY])
        run.add_deselected(["t.py::test_b", "t.py::test_b"])  # two workers, one test

    judged, lenient = strict.finish(), allowed.finish()

    assert judged.verdict.release_candidate is False
    assert judged.verdict.reasons[0].startswith("partial run: 1 deploy test(s) deselected")
    assert lenient.verdict.release_candidate is True
    assert lenient.verdict.caveats == (judged.verdict.reasons[0].split("; run the whole")[0],)
    assert (judged.status, lenient.status) == ("partial", "partial")


def test_a_crashed_test_is_a_failed_deploy_test_with_its_own_reason(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    run.add_checks([LATENCY])
    run.add_crash("t.py::test_c", "worker 'gw0' crashed while running it")

    outcome = run.finish()

    assert outcome.record.failed_tests == ["t.py::test_c"]
    assert outcome.verdict.release_candidate is False
    assert outcome.verdict.reasons[0] == (
        "t.py::test_c: worker 'gw0' crashed while running it; its checks were lost with it"
    )
    assert outcome.status == "complete"


def test_the_rollback_advice_knows_an_interrupted_candidate_is_no_release(
    tmp_path: Path,
) -> None:
    run = make_run(tmp_path, baseline=_release(tmp_path))
    run.add_checks([LATENCY])
    run.interrupt("KeyboardInterrupt")

    outcome = run.finish()

    rollback = {c.name: c for c in outcome.checks}["rollback"]
    assert rollback.extra["candidate"] is False
    assert any(c.startswith("roll back to ") for c in outcome.verdict.caveats)
