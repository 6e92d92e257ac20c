"""Unit tests of config/files.py: atomic writes."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from pytest_deploycheck.config import files
from pytest_deploycheck.config.files import atomic_write_text


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

    monkeypatch.setattr(files.os, "replace", refuse)
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
    monkeypatch.setattr(files.os, "fsync", interrupted)
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

    monkeypatch.setattr(files.os, "replace", refuse)
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
