"""Unit tests of report/evidence_set.py: the earlier set moved aside, the in-progress
marker, and the directory as it was when a run keeps nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_deploycheck.report.evidence_set import (
    EvidenceStart,
    RunMarker,
    begin_evidence_set,
    our_entries,
    settle_evidence_set,
)

MARKER = RunMarker("edge-c", ("pytest", "-q"), started=0.0, pid=4242)
EARLIER = ("metrics.csv", "report.json", "summary.md", "soak_test_a_soak_30min.csv")


def earlier_set(directory: Path, *names: str, text: str = "earlier") -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in names or EARLIER:
        (directory / name).write_text(text, encoding="utf-8")


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_the_earlier_set_moves_to_previous_and_the_run_is_marked(tmp_path: Path) -> None:
    evidence = tmp_path / "edge-c"
    earlier_set(evidence)

    start = begin_evidence_set(evidence, required=(), marker=MARKER)

    assert sorted(start.set_aside) == sorted(EARLIER)
    assert listing(evidence / "previous") == sorted(EARLIER)
    assert listing(evidence) == ["previous", "report.json", "run.log", "summary.md"]
    report = json.loads((evidence / "report.json").read_text(encoding="utf-8"))
    assert report["status"] == "running"
    assert report["verdict"]["release_candidate"] is False
    assert report["verdict"]["reasons"][0].startswith(
        "run in progress or died: started 1970-01-01T00:00:00Z (pid 4242)"
    )
    assert report["command_line"] == ["pytest", "-q"]
    assert "run in progress or died" in (evidence / "summary.md").read_text(encoding="utf-8")
    assert "run in progress or died" in (evidence / "run.log").read_text(encoding="utf-8")


def test_only_the_plugins_own_files_move(tmp_path: Path) -> None:
    evidence = tmp_path / "edge-c"
    earlier_set(evidence, "report.json", "notes.txt", "model_card.md", "failure_cases.md")
    (evidence / "docs").mkdir()

    begin_evidence_set(evidence, required=("docs/card.md",), marker=None)

    assert listing(evidence / "previous") == ["docs", "failure_cases.md", "report.json"]
    assert listing(evidence) == ["model_card.md", "notes.txt", "previous"]


def test_an_older_previous_set_is_replaced_once_the_run_keeps_its_own(tmp_path: Path) -> None:
    evidence = tmp_path / "edge-c"
    earlier_set(evidence / "previous", "report.json", text="older")
    earlier_set(evidence, "report.json", text="earlier")

    start = begin_evidence_set(evidence, required=(), marker=MARKER)
    settle_evidence_set(start, kept=True)

    assert (evidence / "previous" / "report.json").read_text(encoding="utf-8") == "earlier"
    assert not list(evidence.glob(".*")), "the older set is gone, not left hidden"


def test_a_run_that_keeps_nothing_leaves_the_directory_as_it_was(tmp_path: Path) -> None:
    evidence = tmp_path / "edge-c"
    earlier_set(evidence / "previous", "report.json", text="older")
    earlier_set(evidence, text="earlier")

    start = begin_evidence_set(evidence, required=(), marker=MARKER)
    settle_evidence_set(start, kept=False)

    assert listing(evidence) == sorted([*EARLIER, "previous"])
    assert (evidence / "report.json").read_text(encoding="utf-8") == "earlier"
    assert (evidence / "previous" / "report.json").read_text(encoding="utf-8") == "older"
    assert not list(evidence.glob(".*"))


def test_directories_the_run_created_go_when_it_keeps_nothing(tmp_path: Path) -> None:
    evidence = tmp_path / "deploycheck-evidence" / "edge-c"

    start = begin_evidence_set(evidence, required=(), marker=MARKER)
    assert (evidence / "report.json").is_file()
    settle_evidence_set(start, kept=False)

    assert listing(tmp_path) == []


def test_without_a_marker_a_missing_directory_is_not_created(tmp_path: Path) -> None:
    start = begin_evidence_set(tmp_path / "no-target", required=(), marker=None)

    assert start == EvidenceStart(tmp_path / "no-target")
    assert not (tmp_path / "no-target").exists()


def test_stale_temporaries_are_removed_and_never_set_aside(tmp_path: Path) -> None:
    evidence = tmp_path / "edge-c"
    earlier_set(evidence, "report.json", ".report.json.k2j3.tmp", ".summary.md.x.tmp")
    (evidence / ".previous.abc.tmp").mkdir()
    (evidence / ".previous.abc.tmp" / "metrics.csv").write_text("half", encoding="utf-8")

    begin_evidence_set(evidence, required=(), marker=MARKER)

    assert not list(evidence.rglob("*.tmp"))
    assert listing(evidence / "previous") == ["report.json"]


def test_a_directory_that_cannot_be_written_is_reported_not_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the directory should be", encoding="utf-8")

    start = begin_evidence_set(blocker / "edge-c", required=(), marker=MARKER)

    assert start.error is not None
    assert str(blocker / "edge-c") in start.error
    settle_evidence_set(start, kept=False)  # nothing to undo, and no error either


@pytest.mark.parametrize(
    ("name", "ours"),
    [
        ("report.json", True),
        ("report.html", True),
        ("run.log", True),
        ("soak_test_x_soak_1min.csv", True),
        ("failure_cases.md", True),
        ("previous", False),
        (".metrics.csv.abc.tmp", False),
        ("soak_notes.txt", False),
        ("plot.png", False),
    ],
)
def test_what_belongs_to_an_evidence_set(tmp_path: Path, name: str, ours: bool) -> None:
    (tmp_path / name).write_text("x", encoding="utf-8")

    assert (our_entries(tmp_path, required=()) == [name]) is ours
