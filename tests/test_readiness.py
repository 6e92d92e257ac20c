"""Unit tests of readiness.py: fit groups, the summary lines, the verdict and the evidence."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from pytest_deploycheck.checks.fitmarker import FitRequest, judge_fit
from pytest_deploycheck.checks.record import Check
from pytest_deploycheck.config.schema import DeployConfig, Device, ModelSpec
from pytest_deploycheck.verdict.run import FitGroup, ReadinessRun, fit_groups, summary_lines

EDGE_A = Device("edge-a", memory_mb=512, power_w=8, offline=True, price_usd=60)
EDGE_B = Device("edge-b", memory_mb=2048, power_w=15, offline=False, price_usd=90)
EDGE_C = Device("edge-c", memory_mb=4096, power_w=25, offline=True, price_usd=120)
DEVICE_ORDER = ["edge-a", "edge-b", "edge-c"]
REFERENCE_FIT_LINE = "device fit: edge-a CHECK memory,power · edge-b CHECK offline · edge-c FIT"

LATENCY = Check(
    name="latency_under_80",
    metric="latency_p95",
    value=61.2,
    unit="ms",
    budget=80,
    nodeid="tests/test_model.py::test_fast",
)


def make_config(tmp_path: Path, **kwargs: Any) -> DeployConfig:
    models = {
        "optimized": ModelSpec(
            "optimized",
            tmp_path / "int8.onnx",
            memory_mb=700,
            power_w=10,
            requires_offline=True,
        ),
        "detector": ModelSpec("detector", tmp_path / "det.onnx", memory_mb=300, power_w=4),
    }
    return DeployConfig(
        source=tmp_path / "pyproject.toml",
        table="[tool.deploycheck]",
        target="edge-c",
        models=models,
        devices=(EDGE_A, EDGE_B, EDGE_C),
        **kwargs,
    )


def fit_checks(
    config: DeployConfig, *models: str, devices: tuple[Device, ...] = (EDGE_A, EDGE_B, EDGE_C)
) -> list[Check]:
    request = FitRequest(models or ("optimized",), None)
    return [judge_fit(config, device, request, "edge-c") for device in devices]


def make_run(tmp_path: Path, config: DeployConfig | None = None, **kwargs: Any) -> ReadinessRun:
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    kwargs.setdefault("target", "edge-c")
    kwargs.setdefault("evidence_dir", tmp_path / "evidence" / "edge-c")
    return ReadinessRun(config or make_config(tmp_path), project_dir=project, **kwargs)


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


# --------------------------------------------------------------------------- summary


def test_summary_of_a_release_candidate(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    run = make_run(tmp_path, config)
    run.add_checks([LATENCY, *fit_checks(config)])

    lines = summary_lines(run.finish(), config.device_names)

    assert REFERENCE_FIT_LINE in lines
    assert "  for optimized: 700 MB (declared), 10 W (declared), offline" in lines
    assert "  cheapest device that fits: edge-c (120 USD)" in lines
    assert "release_candidate: True" in lines
    assert (
        "evidence_files: ['metrics.csv', 'report.json', 'summary.md', 'report.html', 'run.log']"
        in lines
    )
    assert f"evidence_dir: {tmp_path / 'evidence' / 'edge-c'}" in lines
    table = [line for line in lines if line.startswith(("latency_under", "device_fit["))]
    assert len(table) == 2, "only gating checks are in the table"
    latency_cells = ["latency_under_80", "61.2", "ms", "budget", "80", "ms", "measured", "PASS"]
    assert table[0].split() == latency_cells
    assert table[1].startswith("device_fit[optimized@edge-c]")
    assert table[1].endswith("PASS")


def test_summary_of_a_run_that_is_not_a_release_candidate(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    run = make_run(tmp_path, config)
    slow = Check(name="latency_under_50", metric="latency_p95", value=61.2, unit="ms", budget=50)
    run.add_checks([Check.from_dict({**slow.as_dict(), "passed": False})])
    run.add_test_outcome("tests/test_model.py::test_broken", failed=True)

    lines = summary_lines(run.finish(write=False), config.device_names)

    assert "release_candidate: False" in lines
    assert "  - latency_under_50: 61.2 ms (budget 50 ms)" in lines
    assert "  - tests/test_model.py::test_broken: test failed" in lines


def test_summary_with_nothing_checked_says_so(tmp_path: Path) -> None:
    lines = summary_lines(make_run(tmp_path).finish(write=False), DEVICE_ORDER)

    assert lines == ["release_candidate: False", "  - no deploy check ran"]


def test_summary_says_when_no_device_fits(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    run = make_run(tmp_path, config)
    run.add_checks(fit_checks(config, devices=(EDGE_A, EDGE_B)))

    lines = summary_lines(run.finish(write=False), config.device_names)

    assert "  no device in the table fits" in lines


def test_summary_shows_the_display_text_of_a_check(tmp_path: Path) -> None:
    config = make_config(tmp_path, required_evidence=("failure_cases.md",))
    run = make_run(tmp_path, config)

    lines = summary_lines(run.finish(write=False), config.device_names)

    assert any(line.startswith("has_failure_cases") and "missing" in line for line in lines)


# --------------------------------------------------------------------------- evidence


def test_finish_writes_metrics_and_report_into_the_evidence_dir(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    run = make_run(tmp_path, config, command_line=["pytest", "--deploy-target", "edge-c"])
    run.add_checks([LATENCY, *fit_checks(config)])

    outcome = run.finish()

    evidence_dir = tmp_path / "evidence" / "edge-c"
    assert outcome.evidence_files == [
        "metrics.csv",
        "report.json",
        "summary.md",
        "report.html",
        "run.log",
    ]
    assert outcome.evidence_error is None
    metrics = (evidence_dir / "metrics.csv").read_text(encoding="utf-8")
    assert len(list(csv.DictReader(io.StringIO(metrics)))) == 4
    report = json.loads((evidence_dir / "report.json").read_text(encoding="utf-8"))
    assert report["schema_version"] == 1
    assert report["target"] == "edge-c"
    assert report["target_device"]["memory_mb"] == 4096
    assert report["verdict"]["release_candidate"] is True
    assert report["command_line"] == ["pytest", "--deploy-target", "edge-c"]
    assert report["device_fit"][0]["table"] == {
        "edge-a": "CHECK memory,power",
        "edge-b": "CHECK offline",
        "edge-c": "FIT",
    }
    assert report["device_fit"][0]["cheapest_fit"] == {"device": "edge-c", "price_usd": 120}
    assert report["checks"][0]["name"] == "latency_under_80"
    assert "packages" in report["environment"]


def test_required_evidence_present_in_the_project_passes(tmp_path: Path) -> None:
    config = make_config(tmp_path, required_evidence=("failure_cases.md",))
    run = make_run(tmp_path, config)
    (run.project_dir / "failure_cases.md").write_text("# cases\n", encoding="utf-8")
    run.add_checks([LATENCY])

    outcome = run.finish()

    has = {c.name: c for c in outcome.checks}["has_failure_cases"]
    assert has.status == "PASS"
    assert outcome.verdict.release_candidate is True
    assert "failure_cases.md" in outcome.evidence_files


def test_required_evidence_present_in_the_evidence_dir_is_listed(tmp_path: Path) -> None:
    config = make_config(tmp_path, required_evidence=("failure_cases.md",))
    run = make_run(tmp_path, config)
    assert run.evidence_dir is not None
    run.evidence_dir.mkdir(parents=True)
    (run.evidence_dir / "failure_cases.md").write_text("# cases\n", encoding="utf-8")
    run.add_checks([LATENCY])

    outcome = run.finish()

    assert outcome.evidence_files == [
        "metrics.csv",
        "report.json",
        "summary.md",
        "report.html",
        "run.log",
        "failure_cases.md",
    ]
    assert outcome.verdict.release_candidate is True


def test_missing_required_evidence_fails_the_verdict(tmp_path: Path) -> None:
    config = make_config(tmp_path, required_evidence=("failure_cases.md",))
    run = make_run(tmp_path, config)
    run.add_checks([LATENCY])

    outcome = run.finish()

    assert outcome.verdict.release_candidate is False
    assert any(reason.startswith("has_failure_cases:") for reason in outcome.verdict.reasons)
    assert "failure_cases.md" not in outcome.evidence_files
    report = json.loads((tmp_path / "evidence" / "edge-c" / "report.json").read_text("utf-8"))
    assert "has_failure_cases" in [c["name"] for c in report["checks"]]


def test_finish_without_writing_leaves_no_files(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    run.add_checks([LATENCY])

    outcome = run.finish(write=False)

    assert outcome.evidence_files == []
    assert not (tmp_path / "evidence").exists()


def test_finish_without_an_evidence_dir_writes_nothing(tmp_path: Path) -> None:
    config = make_config(tmp_path, required_evidence=("failure_cases.md",))
    run = make_run(tmp_path, config, evidence_dir=None)
    run.add_checks([LATENCY])

    outcome = run.finish()

    assert outcome.evidence_files == []
    assert outcome.evidence_dir is None
    assert [c.name for c in outcome.checks] == ["latency_under_80"]


def test_unwritable_evidence_dir_is_reported_not_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the directory should be", encoding="utf-8")
    run = make_run(tmp_path, evidence_dir=blocker / "edge-c")
    run.add_checks([LATENCY])

    outcome = run.finish()

    assert outcome.evidence_error is not None
    assert str(blocker / "edge-c") in outcome.evidence_error
    lines = summary_lines(outcome, DEVICE_ORDER)
    assert any(line.startswith("evidence not written: ") for line in lines)
    assert not any(line.startswith("evidence_files:") for line in lines)


def test_unwritable_evidence_dir_with_required_evidence_is_reported_not_raised(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the directory should be", encoding="utf-8")
    config = make_config(tmp_path, required_evidence=("failure_cases.md",))
    run = make_run(tmp_path, config, evidence_dir=blocker / "edge-c")
    (run.project_dir / "failure_cases.md").write_text("# cases\n", encoding="utf-8")

    outcome = run.finish()

    assert outcome.evidence_error is not None


# --------------------------------------------------------------------------- activity


def test_activity_and_failed_tests_are_recorded_once(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    assert run.has_activity is False

    run.add_test_outcome("tests/t.py::test_a", failed=True)
    run.add_test_outcome("tests/t.py::test_a", failed=True)
    run.add_test_outcome("tests/t.py::test_b", failed=False)

    assert run.has_activity is True
    assert run.failed_tests == ["tests/t.py::test_a"]


def test_no_target_run_is_not_a_release_candidate(tmp_path: Path) -> None:
    run = make_run(tmp_path, target=None, evidence_dir=tmp_path / "evidence" / "no-target")
    run.add_checks([LATENCY])

    outcome = run.finish()

    assert outcome.verdict.release_candidate is False
    report = json.loads((tmp_path / "evidence" / "no-target" / "report.json").read_text("utf-8"))
    assert report["target"] is None
    assert report["target_device"] is None


@pytest.mark.parametrize("release_candidate", [True, False])
def test_summary_states_the_verdict_in_the_contract_words(
    tmp_path: Path, release_candidate: bool
) -> None:
    run = make_run(tmp_path)
    run.add_checks([Check.from_dict({**LATENCY.as_dict(), "passed": release_candidate})])

    lines = summary_lines(run.finish(write=False), DEVICE_ORDER)

    assert f"release_candidate: {release_candidate}" in lines


# --------------------------------------------------------------------------- edge readiness


def _offline_pass(nodeid: str) -> Check:
    return Check(
        name="offline",
        metric="network_attempts",
        value=0,
        unit="attempts",
        budget=0,
        nodeid=nodeid,
        extra={"display": "no network attempt (network blocked)"},
    )


def _soak(nodeid: str, caveats: list[str]) -> Check:
    return Check(
        name="soak_30min",
        metric="soak_memory_growth",
        value=0.0,
        unit="MB/h",
        budget=10,
        nodeid=nodeid,
        extra={
            "display": "grew 0 MB in 12 s over 15 s of 30 min",
            "caveats": caveats,
            "timeseries": [[0.05, "warmup", 80.0, 100, 0, 0.1, 0.2, 0.3]],
        },
    )


def test_identical_passing_rows_are_printed_once_with_a_count(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    run.add_checks([_offline_pass("t.py::a"), LATENCY, _offline_pass("t.py::b")])

    lines = summary_lines(run.finish(write=False), DEVICE_ORDER)

    offline = [line for line in lines if line.startswith("offline")]
    assert len(offline) == 1
    assert offline[0].startswith("offline (2 tests)")
    assert offline[0].endswith("PASS")


def test_failing_rows_are_never_collapsed(tmp_path: Path) -> None:
    failed = [
        Check("offline", metric="network_attempts", value=1, passed=False, nodeid=n)
        for n in ("t.py::a", "t.py::b")
    ]
    run = make_run(tmp_path)
    run.add_checks(failed)

    lines = summary_lines(run.finish(write=False), DEVICE_ORDER)

    assert sum(1 for line in lines if line.startswith("offline ")) == 2


def test_caveats_follow_the_verdict_and_reach_the_report(tmp_path: Path) -> None:
    caveat = "soak_30min ran 15 s of the 30 min its marker asks for (x)"
    run = make_run(tmp_path)
    run.add_checks([_soak("t.py::test_shift", [caveat])])

    outcome = run.finish()
    lines = summary_lines(outcome, DEVICE_ORDER)

    assert outcome.verdict.release_candidate is True
    position = lines.index("release_candidate: True")
    assert lines[position + 1] == f"  ! {caveat}"
    report = json.loads((tmp_path / "evidence" / "edge-c" / "report.json").read_text())
    assert report["verdict"]["caveats"] == [caveat]
    assert caveat in (tmp_path / "evidence" / "edge-c" / "summary.md").read_text()


def test_a_soak_time_series_gets_its_own_csv_and_stays_out_of_report_json(
    tmp_path: Path,
) -> None:
    run = make_run(tmp_path)
    run.add_checks([_soak("t.py::test_shift", [])])

    outcome = run.finish()

    name = "soak_test_shift_soak_30min.csv"
    assert name in outcome.evidence_files
    rows = list(csv.reader(io.StringIO((tmp_path / "evidence" / "edge-c" / name).read_text())))
    assert rows[0][:3] == ["t_s", "phase", "rss_mb"]
    assert rows[1][:3] == ["0.05", "warmup", "80.0"]
    report = json.loads((tmp_path / "evidence" / "edge-c" / "report.json").read_text())
    [soak] = report["checks"]
    assert "timeseries" not in soak["extra"]
    assert soak["extra"]["timeseries_file"] == name


def test_run_log_names_the_failed_test_and_its_reason(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    run.add_checks([LATENCY])
    run.add_test_outcome("t.py::test_broken", True, "AssertionError: output shape (1, 9)")

    outcome = run.finish()

    assert "run.log" in outcome.evidence_files
    log = (tmp_path / "evidence" / "edge-c" / "run.log").read_text()
    assert "release_candidate: False" in log
    assert "t.py::test_broken: AssertionError: output shape (1, 9)" in log
    assert "latency_under_80" in log
