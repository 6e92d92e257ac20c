"""Unit tests of evidence.py: atomic writes, metrics.csv, report.json, required files."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_deploycheck.checks.record import Check
from pytest_deploycheck.report import evidence
from pytest_deploycheck.report.evidence import (
    METRICS_COLUMNS,
    METRICS_FILE,
    REPORT_FILE,
    REPORT_SCHEMA_VERSION,
    atomic_write_text,
    environment,
    metrics_csv,
    package_versions,
    required_evidence_check,
    write_evidence,
)

CHECKS = [
    Check(
        name="latency_under_80",
        metric="latency_p95",
        value=61.2,
        unit="ms",
        budget=80,
        nodeid="tests/test_model.py::test_fast",
        details="n=412, 95% CI 59.8-63.0",
    ),
    Check(
        name="memory_under_512",
        metric="peak_rss",
        value=412,
        unit="MB",
        budget=512,
        passed=False,
        provenance="estimated",
    ),
    Check(
        name="device_fit[optimized@edge-a]",
        metric="device_fit",
        value="CHECK memory,power",
        passed=False,
        provenance="declared",
        gating=False,
        details='memory: needs 700 MB, edge-a has 512; quote " and comma, inside',
    ),
    Check(name="accuracy_drop_ok", metric="accuracy_drop", value=0.1 + 0.2, passed=None),
]


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


# --------------------------------------------------------------------------- atomic writes


def test_atomic_write_creates_parent_directories(tmp_path: Path) -> None:
    target = tmp_path / "evidence" / "edge-c" / "metrics.csv"

    assert atomic_write_text(target, "a,b\n") == target
    assert target.read_text(encoding="utf-8") == "a,b\n"
    assert leftovers(target.parent) == []


def test_atomic_write_replaces_the_old_content(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("old", encoding="utf-8")

    atomic_write_text(target, "new ✓")

    assert target.read_text(encoding="utf-8") == "new ✓"


def test_failed_rename_keeps_the_old_file_and_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "metrics.csv"
    target.write_text("old", encoding="utf-8")

    def refuse(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(evidence.os, "replace", refuse)
    with pytest.raises(OSError, match="No space left"):
        atomic_write_text(target, "new")
    monkeypatch.undo()

    assert target.read_text(encoding="utf-8") == "old"
    assert leftovers(tmp_path) == []


def test_write_interrupted_midway_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "report.json"
    target.write_text("old", encoding="utf-8")

    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    # fsync runs after the text was handed to the file, before the rename
    monkeypatch.setattr(evidence.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(target, "half of the new content")
    monkeypatch.undo()

    assert target.read_text(encoding="utf-8") == "old"
    assert leftovers(tmp_path) == []


def test_failed_first_write_leaves_no_file_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "metrics.csv"

    def refuse(src: object, dst: object) -> None:
        raise OSError(13, "Permission denied")

    monkeypatch.setattr(evidence.os, "replace", refuse)
    with pytest.raises(OSError):
        atomic_write_text(target, "new")
    monkeypatch.undo()

    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_evidence_file_gets_the_permissions_of_an_ordinary_file(tmp_path: Path) -> None:
    # CI jobs often upload evidence as another user; a 0600 file cannot be read there.
    ordinary = tmp_path / "ordinary.txt"
    ordinary.write_text("x", encoding="utf-8")

    written = atomic_write_text(tmp_path / "metrics.csv", "x")

    assert stat.S_IMODE(written.stat().st_mode) == stat.S_IMODE(ordinary.stat().st_mode)


# --------------------------------------------------------------------------- metrics.csv


def test_metrics_csv_parses_back_one_row_per_check() -> None:
    reader = csv.DictReader(io.StringIO(metrics_csv(CHECKS)))

    rows = list(reader)

    assert tuple(reader.fieldnames or ()) == METRICS_COLUMNS
    assert [row["name"] for row in rows] == [c.name for c in CHECKS]
    assert [row["status"] for row in rows] == ["PASS", "FAIL", "INFO", "INCONCLUSIVE"]


def test_metrics_csv_keeps_values_exact_and_labelled() -> None:
    rows = list(csv.DictReader(io.StringIO(metrics_csv(CHECKS))))

    latency, memory, fit, accuracy = rows
    assert (latency["value"], latency["unit"], latency["budget"]) == ("61.2", "ms", "80")
    assert latency["nodeid"] == "tests/test_model.py::test_fast"
    assert latency["details"] == "n=412, 95% CI 59.8-63.0"
    assert memory["provenance"] == "estimated"
    assert fit["gating"] == "false"
    assert fit["budget"] == ""
    assert fit["details"] == CHECKS[2].details
    assert float(accuracy["value"]) == 0.1 + 0.2
    assert latency["gating"] == "true"


def test_metrics_csv_of_no_checks_is_the_header() -> None:
    assert metrics_csv([]) == ",".join(METRICS_COLUMNS) + "\n"


# --------------------------------------------------------------------------- report.json


def test_write_evidence_writes_metrics_and_a_versioned_report(tmp_path: Path) -> None:
    evidence_dir = tmp_path / "deploycheck-evidence" / "edge-c"

    written = write_evidence(evidence_dir, CHECKS, {"target": "edge-c", "checks": []})

    assert written == [METRICS_FILE, REPORT_FILE]
    report = json.loads((evidence_dir / REPORT_FILE).read_text(encoding="utf-8"))
    assert report == {"schema_version": REPORT_SCHEMA_VERSION, "target": "edge-c", "checks": []}
    metrics = (evidence_dir / METRICS_FILE).read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(metrics)))
    assert len(rows) == len(CHECKS)
    assert leftovers(evidence_dir) == []


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
    assert found.extra["display"] == "failure_cases.md present"


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
    assert missing.extra["display"] == "failure_cases.md missing"


def test_a_directory_is_not_a_required_file(tmp_path: Path) -> None:
    (tmp_path / "failure_cases.md").mkdir()

    assert required_evidence_check("failure_cases.md", tmp_path, tmp_path, []).passed is False


def test_files_the_run_produces_count_as_present(tmp_path: Path) -> None:
    produced = required_evidence_check(
        "metrics.csv", tmp_path / "evidence", tmp_path, produced=["metrics.csv", "report.json"]
    )

    assert produced.name == "has_metrics"
    assert produced.passed is True
    assert produced.extra["display"] == "metrics.csv written"


# --------------------------------------------------------------------------- environment


def test_package_versions_reads_installed_versions() -> None:
    versions = package_versions(("pytest", "surely-not-an-installed-package"))

    assert versions["pytest"] == pytest.__version__
    assert versions["surely-not-an-installed-package"] is None


def test_package_versions_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from pytest_deploycheck.report.evidence import package_versions\n"
        "versions = package_versions()\n"
        "assert versions['numpy'] and versions['onnxruntime'], versions\n"
        "heavy = sorted({'numpy', 'onnxruntime'} & set(sys.modules))\n"
        "assert not heavy, heavy\n"
    )

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stderr


def test_environment_describes_python_packages_and_host() -> None:
    described = environment()

    assert described["python"] == sys.version.split()[0]
    assert set(described["packages"]) == set(evidence.VERSIONED_PACKAGES)
    host = described["host"]
    assert host["logical_cpus"] == os.cpu_count()
    assert host["usable_cpus"] >= 1
    assert host["memory_total_mb"] > 0
    json.dumps(described)
