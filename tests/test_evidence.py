"""Unit tests of report/evidence.py: metrics.csv and report.json."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from pytest_deploycheck.checks.record import Check
from pytest_deploycheck.config.evidence_names import METRICS_FILE, REPORT_FILE
from pytest_deploycheck.report.evidence import (
    METRICS_COLUMNS,
    REPORT_SCHEMA_VERSION,
    metrics_csv,
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
