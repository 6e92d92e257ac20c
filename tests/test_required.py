"""Unit tests of verdict/required.py: the files a run must leave in its evidence."""

from __future__ import annotations

from pathlib import Path

from pytest_deploycheck.verdict.required import required_evidence_check

# --------------------------------------------------------------------------- required files


def test_required_file_found_in_the_evidence_dir(tmp_path: Path) -> None:
    evidence_dir, project = tmp_path / "evidence", tmp_path / "project"
    evidence_dir.mkdir()
    project.mkdir()
    (evidence_dir / "failure_cases.md").write_text("# cases", encoding="utf-8")

    found = required_evidence_check("failure_cases.md", evidence_dir, project, produced=[])

    assert found.name == "has_failure_cases"
    assert found.status == "PASS"
    assert found.value == "failure_cases.md"
    assert found.extra["path"] == str(evidence_dir / "failure_cases.md")
    assert found.display == "failure_cases.md present"


def test_required_file_found_in_the_project_dir(tmp_path: Path) -> None:
    evidence_dir, project = tmp_path / "evidence", tmp_path / "project"
    project.mkdir()
    (project / "failure_cases.md").write_text("# cases", encoding="utf-8")

    found = required_evidence_check("failure_cases.md", evidence_dir, project, produced=[])

    assert found.passed is True
    assert str(project / "failure_cases.md") in found.details


def test_missing_required_file_fails_and_says_where_it_looked(tmp_path: Path) -> None:
    evidence_dir, project = tmp_path / "evidence", tmp_path / "project"

    missing = required_evidence_check("failure_cases.md", evidence_dir, project, produced=[])

    assert missing.status == "FAIL"
    assert missing.gating is True
    assert str(evidence_dir) in missing.details
    assert str(project) in missing.details
    assert missing.display == "failure_cases.md missing"


def test_a_directory_is_not_a_required_file(tmp_path: Path) -> None:
    (tmp_path / "failure_cases.md").mkdir()

    assert required_evidence_check("failure_cases.md", tmp_path, tmp_path, []).passed is False


def test_files_the_run_produces_count_as_present(tmp_path: Path) -> None:
    produced = required_evidence_check(
        "metrics.csv", tmp_path / "evidence", tmp_path, produced=["metrics.csv", "report.json"]
    )

    assert produced.name == "has_metrics"
    assert produced.passed is True
    assert produced.display == "metrics.csv written"


def test_an_earlier_runs_copy_left_in_the_evidence_dir_does_not_count(tmp_path: Path) -> None:
    evidence_dir, project = tmp_path / "evidence", tmp_path / "project"
    evidence_dir.mkdir()
    project.mkdir()
    (evidence_dir / "failure_cases.md").write_text("# earlier", encoding="utf-8")

    stale = required_evidence_check(
        "failure_cases.md", evidence_dir, project, produced=[], inherited=["failure_cases.md"]
    )

    assert stale.status == "FAIL"
    (project / "failure_cases.md").write_text("# kept beside the config", encoding="utf-8")
    kept = required_evidence_check(
        "failure_cases.md", evidence_dir, project, produced=[], inherited=["failure_cases.md"]
    )
    assert kept.passed is True
    assert kept.extra["path"] == str(project / "failure_cases.md")


def test_a_file_inside_an_inherited_directory_does_not_count(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "card.md").write_text("# earlier", encoding="utf-8")
    project = tmp_path / "project"

    check = required_evidence_check("docs/card.md", tmp_path, project, [], inherited=["docs"])

    assert check.passed is False
