"""Unit tests of config/files.py: atomic writes, and names kept inside their directory."""

from __future__ import annotations

import re
import stat
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_deploycheck.config import files
from pytest_deploycheck.config.evidence_names import timeseries_file_name
from pytest_deploycheck.config.files import UnsafePathError, atomic_write_text, contained


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


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_a_rewritten_file_keeps_its_own_mode(tmp_path: Path) -> None:
    private = tmp_path / "baseline.json"
    private.write_text("old", encoding="utf-8")
    private.chmod(0o600)

    atomic_write_text(private, "new")

    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_text(encoding="utf-8") == "new"


def test_a_symlink_in_place_is_replaced_and_its_target_left_alone(tmp_path: Path) -> None:
    outside = tmp_path / "outside.md"
    outside.write_text("theirs", encoding="utf-8")
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    (evidence / "summary.md").symlink_to(outside)

    atomic_write_text(contained(evidence, "summary.md"), "ours")

    assert outside.read_text(encoding="utf-8") == "theirs"
    assert not (evidence / "summary.md").is_symlink()
    assert (evidence / "summary.md").read_text(encoding="utf-8") == "ours"


# --------------------------------------------------------------------------- containment


@pytest.mark.parametrize("name", ["metrics.csv", "docs/notes.md", "./run.log", "a..b.md"])
def test_contained_names_stay_inside(tmp_path: Path, name: str) -> None:
    assert contained(tmp_path, name) == tmp_path / name


@pytest.mark.parametrize("name", ["../../escape/x", "..", "docs/../../x", "/etc/passwd", "", "."])
def test_names_that_leave_the_directory_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(UnsafePathError, match="expected a relative path inside"):
        contained(tmp_path, name)


def test_a_symlinked_directory_that_leads_outside_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    base = tmp_path / "evidence"
    base.mkdir()
    (base / "docs").symlink_to(tmp_path / "elsewhere", target_is_directory=True)

    with pytest.raises(UnsafePathError, match=r"leads outside .* through a symlink"):
        contained(base, "docs/notes.md")


@given(nodeid=st.text(max_size=80), check_name=st.text(max_size=80))
def test_soak_csv_names_are_one_safe_file_name(nodeid: str, check_name: str) -> None:
    # Test names and check names are the user's: they must not lead anywhere else.
    name = timeseries_file_name(nodeid, check_name)

    assert "/" not in name and "\\" not in name and name not in (".", "..")
    assert re.fullmatch(r"soak_[A-Za-z0-9._-]*\.csv", name)
    base = Path(tempfile.gettempdir())
    assert contained(base, name).parent == base
