"""Unit tests of report/writer.py: every file a finished run leaves in its evidence."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_deploycheck.checks.record import Check
from pytest_deploycheck.config import files as files_module
from pytest_deploycheck.report import html as html_module
from pytest_deploycheck.report.evidence_set import RunMarker, begin_evidence_set
from pytest_deploycheck.report.writer import write_run_files
from pytest_deploycheck.terminal import summary_lines
from readiness_builders import (
    DEVICE_ORDER,
    LATENCY,
    finish_and_write,
    fit_checks,
    make_config,
    make_run,
)


def test_finish_writes_metrics_and_report_into_the_evidence_dir(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    run = make_run(tmp_path, config, command_line=["pytest", "--deploy-target", "edge-c"])
    run.add_checks([LATENCY, *fit_checks(config)])

    outcome = finish_and_write(run)

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


def test_writing_keeps_the_verdict_and_the_checks(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    run.add_checks([LATENCY])
    judged = run.finish()

    written = write_run_files(judged)

    assert (written.verdict, written.checks, written.record) == (
        judged.verdict,
        judged.checks,
        judged.record,
    )
    assert judged.evidence_files == [], "the judged outcome is left as it was"


def test_required_evidence_present_in_the_project_passes(tmp_path: Path) -> None:
    config = make_config(tmp_path, required_evidence=("failure_cases.md",))
    run = make_run(tmp_path, config)
    (run.project_dir / "failure_cases.md").write_text("# cases\n", encoding="utf-8")
    run.add_checks([LATENCY])

    outcome = finish_and_write(run)

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

    outcome = finish_and_write(run)

    assert outcome.evidence_files == [
        "metrics.csv",
        "report.json",
        "summary.md",
        "report.html",
        "run.log",
        "failure_cases.md",
    ]
    assert outcome.verdict.release_candidate is True


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_a_required_file_is_copied_without_touching_the_project_copy(tmp_path: Path) -> None:
    config = make_config(tmp_path, required_evidence=("docs/notes.md",))
    run = make_run(tmp_path, config)
    source = run.project_dir / "docs" / "notes.md"
    source.parent.mkdir()
    source.write_text("# notes\n", encoding="utf-8")
    source.chmod(0o600)
    before = source.stat()
    run.add_checks([LATENCY])

    outcome = finish_and_write(run)

    assert "docs/notes.md" in outcome.evidence_files
    assert (tmp_path / "evidence" / "edge-c" / "docs" / "notes.md").read_text() == "# notes\n"
    after = source.stat()
    assert (after.st_ino, after.st_mtime_ns, stat.S_IMODE(after.st_mode)) == (
        before.st_ino,
        before.st_mtime_ns,
        0o600,
    )


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_a_required_file_that_is_its_own_evidence_copy_is_not_rewritten(tmp_path: Path) -> None:
    # evidence_dir = ".." with the project's own name as target: both are one directory.
    config = make_config(tmp_path, required_evidence=("notes.md",))
    run = make_run(tmp_path, config, evidence_dir=tmp_path / "project")
    source = run.project_dir / "notes.md"
    source.write_text("# notes\n", encoding="utf-8")
    source.chmod(0o600)
    os.utime(source, (1_000_000, 1_000_000))
    before = source.stat()
    run.add_checks([LATENCY])

    outcome = finish_and_write(run)

    assert "notes.md" in outcome.evidence_files
    after = source.stat()
    assert (after.st_ino, after.st_mtime_ns, stat.S_IMODE(after.st_mode)) == (
        before.st_ino,
        before.st_mtime_ns,
        0o600,
    )


def test_a_required_name_outside_the_evidence_is_reported_not_written(tmp_path: Path) -> None:
    # The schema refuses such names at start-up; a config built in code meets the writer.
    victim = tmp_path / "victim.md"
    victim.write_text("mine\n", encoding="utf-8")
    config = make_config(tmp_path, required_evidence=("../../victim.md",))
    run = make_run(tmp_path, config)
    (run.project_dir / "../../victim.md").parent.mkdir(parents=True, exist_ok=True)
    run.add_checks([LATENCY])

    outcome = finish_and_write(run)

    assert victim.read_text(encoding="utf-8") == "mine\n"
    assert outcome.verdict.release_candidate is False
    assert outcome.evidence_error is not None
    assert "'../../victim.md': expected a relative path inside" in outcome.evidence_error
    has = {c.name: c for c in outcome.checks}["has_victim"]
    assert has.passed is False
    assert "expected a relative path inside" in has.details


def test_missing_required_evidence_fails_the_verdict(tmp_path: Path) -> None:
    config = make_config(tmp_path, required_evidence=("failure_cases.md",))
    run = make_run(tmp_path, config)
    run.add_checks([LATENCY])

    outcome = finish_and_write(run)

    assert outcome.verdict.release_candidate is False
    assert any(reason.startswith("has_failure_cases:") for reason in outcome.verdict.reasons)
    assert "failure_cases.md" not in outcome.evidence_files
    report = json.loads((tmp_path / "evidence" / "edge-c" / "report.json").read_text("utf-8"))
    assert "has_failure_cases" in [c["name"] for c in report["checks"]]


def test_finish_without_an_evidence_dir_writes_nothing(tmp_path: Path) -> None:
    config = make_config(tmp_path, required_evidence=("failure_cases.md",))
    run = make_run(tmp_path, config, evidence_dir=None)
    run.add_checks([LATENCY])

    outcome = finish_and_write(run)

    assert outcome.evidence_files == []
    assert outcome.evidence_dir is None
    assert [c.name for c in outcome.checks] == ["latency_under_80"]


def test_unwritable_evidence_dir_is_reported_not_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the directory should be", encoding="utf-8")
    run = make_run(tmp_path, evidence_dir=blocker / "edge-c")
    run.add_checks([LATENCY])

    outcome = finish_and_write(run)

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

    outcome = finish_and_write(run)

    assert outcome.evidence_error is not None


def test_no_target_run_is_not_a_release_candidate(tmp_path: Path) -> None:
    run = make_run(tmp_path, target=None, evidence_dir=tmp_path / "evidence" / "no-target")
    run.add_checks([LATENCY])

    outcome = finish_and_write(run)

    assert outcome.verdict.release_candidate is False
    report = json.loads((tmp_path / "evidence" / "no-target" / "report.json").read_text("utf-8"))
    assert report["target"] is None
    assert report["target_device"] is None


# --------------------------------------------------------------------------- edge readiness


def _soak(nodeid: str, caveats: list[str]) -> Check:
    return Check(
        name="soak_30min",
        metric="soak_memory_growth",
        value=0.0,
        unit="MB/h",
        budget=10,
        nodeid=nodeid,
        display="grew 0 MB in 12 s over 15 s of 30 min",
        caveats=tuple(caveats),
        extra={"timeseries": [[0.05, "warmup", 80.0, 100, 0, 0.1, 0.2, 0.3]]},
    )


def test_caveats_follow_the_verdict_and_reach_the_report(tmp_path: Path) -> None:
    caveat = "soak_30min ran 15 s of the 30 min its marker asks for (x)"
    run = make_run(tmp_path)
    run.add_checks([_soak("t.py::test_shift", [caveat])])

    outcome = finish_and_write(run)
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

    outcome = finish_and_write(run)

    name = "soak_test_shift_soak_30min.csv"
    assert name in outcome.evidence_files
    rows = list(csv.reader(io.StringIO((tmp_path / "evidence" / "edge-c" / name).read_text())))
    assert rows[0][:3] == ["t_s", "phase", "rss_mb"]
    assert rows[1][:3] == ["0.05", "warmup", "80.0"]
    report = json.loads((tmp_path / "evidence" / "edge-c" / "report.json").read_text())
    [soak] = report["checks"]
    assert "timeseries" not in soak["extra"]
    assert soak["extra"]["timeseries_file"] == name


def test_two_soaks_of_one_name_get_two_csv_files(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    run.add_checks([_soak("a.py::test_shift", []), _soak("b.py::test_shift", [])])

    outcome = finish_and_write(run)

    series = [name for name in outcome.evidence_files if name.startswith("soak_")]
    assert series == ["soak_test_shift_soak_30min.csv", "soak_test_shift_soak_30min-2.csv"]


def test_run_log_names_the_failed_test_and_its_reason(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    run.add_checks([LATENCY])
    run.add_test_outcome("t.py::test_broken", True, "AssertionError: output shape (1, 9)")

    outcome = finish_and_write(run)

    assert "run.log" in outcome.evidence_files
    log = (tmp_path / "evidence" / "edge-c" / "run.log").read_text()
    assert "release_candidate: False" in log
    assert "t.py::test_broken: AssertionError: output shape (1, 9)" in log
    assert "latency_under_80" in log


def test_a_baseline_asked_for_is_saved_and_said_so(tmp_path: Path) -> None:
    saved = tmp_path / "release.json"
    run = make_run(tmp_path, save_baseline=saved)
    run.add_checks([LATENCY])

    outcome = finish_and_write(run)

    assert outcome.saved_baseline == f"baseline saved: {saved} (1 checks)"
    assert json.loads(saved.read_text())["release_candidate"] is True
    assert outcome.saved_baseline in summary_lines(outcome, DEVICE_ORDER)


# --------------------------------------------------------------------------- whole runs


def test_report_json_says_whether_the_run_was_whole(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    run.add_checks([LATENCY])
    run.add_deselected(["t.py::test_other"])

    finish_and_write(run)

    report = json.loads((tmp_path / "evidence" / "edge-c" / "report.json").read_text())
    assert (report["status"], report["partial"]) == ("partial", True)
    assert report["verdict"]["release_candidate"] is False


def test_report_json_is_written_last(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    placed: list[str] = []
    replace_file = os.replace

    def recorded(source: Any, destination: Any) -> None:
        placed.append(Path(destination).name)
        replace_file(source, destination)

    monkeypatch.setattr(files_module.os, "replace", recorded)
    run = make_run(tmp_path)
    run.add_checks([LATENCY, _soak("t.py::test_shift", [])])

    finish_and_write(run)

    assert placed[-1] == "report.json"
    assert set(placed) >= {"metrics.csv", "summary.md", "report.html", "run.log"}


def test_a_run_killed_while_writing_leaves_the_in_progress_verdict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    evidence = tmp_path / "evidence" / "edge-c"
    marker = RunMarker("edge-c", ("pytest",), started=0.0, pid=1)
    begin_evidence_set(evidence, required=(), marker=marker)

    def killed(*args: Any, **kwargs: Any) -> str:
        raise KeyboardInterrupt  # as a second Ctrl-C, or a kill, half-way

    monkeypatch.setattr(html_module, "render_html", killed)
    run = make_run(tmp_path)
    run.add_checks([LATENCY])
    with pytest.raises(KeyboardInterrupt):
        finish_and_write(run)

    report = json.loads((evidence / "report.json").read_text())
    assert (report["status"], report["verdict"]["release_candidate"]) == ("running", False)
    assert not list(evidence.glob(".*.tmp"))


def test_an_interrupted_run_is_not_saved_as_a_baseline(tmp_path: Path) -> None:
    saved = tmp_path / "release.json"
    run = make_run(tmp_path, save_baseline=saved)
    run.add_checks([LATENCY])
    run.interrupt("SIGINT")

    outcome = finish_and_write(run)

    assert outcome.saved_baseline is not None
    assert outcome.saved_baseline.startswith(f"baseline not saved: {saved}: the run was")
    assert "interrupted" in outcome.saved_baseline
    assert not saved.exists()


def test_a_required_file_an_earlier_run_left_is_replaced_by_the_projects(
    tmp_path: Path,
) -> None:
    config = make_config(tmp_path, required_evidence=("failure_cases.md",))
    run = make_run(tmp_path, config)
    assert run.evidence_dir is not None
    run.evidence_dir.mkdir(parents=True)
    (run.evidence_dir / "failure_cases.md").write_text("# earlier run\n", encoding="utf-8")
    (run.project_dir / "failure_cases.md").write_text("# kept\n", encoding="utf-8")
    run.inherited = ("failure_cases.md",)
    run.add_checks([LATENCY])

    outcome = finish_and_write(run)

    assert (run.evidence_dir / "failure_cases.md").read_text(encoding="utf-8") == "# kept\n"
    assert "failure_cases.md" in outcome.evidence_files


def test_a_required_file_an_earlier_run_left_is_not_listed_as_evidence(tmp_path: Path) -> None:
    config = make_config(tmp_path, required_evidence=("failure_cases.md",))
    run = make_run(tmp_path, config)
    assert run.evidence_dir is not None
    run.evidence_dir.mkdir(parents=True)
    (run.evidence_dir / "failure_cases.md").write_text("# earlier run\n", encoding="utf-8")
    run.inherited = ("failure_cases.md",)
    run.add_checks([LATENCY])

    outcome = finish_and_write(run)

    assert "failure_cases.md" not in outcome.evidence_files
    assert outcome.verdict.release_candidate is False
