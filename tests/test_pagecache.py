"""Page-cache residency and dropping one file from it.

Whether the kernel honours the advice depends on the file system (ext4 does for clean,
unmapped pages; tmpfs never does), so the tests on real files assert that the report
matches what was measured, and the wording is tested with injected measurements.
"""

from __future__ import annotations

import errno
import mmap
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_deploycheck.measure import pagecache
from pytest_deploycheck.measure.pagecache import (
    ADVISE_METHOD,
    MEMORY_REASONS,
    NO_METHOD,
    CacheDrop,
    describe_drop,
    drop_file_cache,
    percent,
    residency,
)

SIZE = 64 * mmap.PAGESIZE


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.onnx"
    path.write_bytes(os.urandom(SIZE))
    return path


def fractions(*values: float | None) -> pagecache.Measure:
    """A stand-in for :func:`residency` returning *values* in turn."""
    queue: Iterator[float | None] = iter(values)
    return lambda _path: next(queue)


def accept(fd: int) -> None:
    os.fstat(fd)  # a real, open descriptor


# ------------------------------------------------------------------ on this machine


def test_a_file_just_read_is_resident(data_file: Path) -> None:
    assert data_file.read_bytes()
    assert residency(data_file) in (1.0, None)  # None: no mincore on this OS


def test_an_empty_file_has_no_residency(tmp_path: Path) -> None:
    empty = tmp_path / "empty.onnx"
    empty.touch()
    assert residency(empty) is None
    assert drop_file_cache(empty) == CacheDrop(
        None, None, dropped=True, method=NO_METHOD, note="model file is empty"
    )


SHM = Path("/dev/shm")


@pytest.fixture(params=["tmp_path", "shm"])
def any_file(request: pytest.FixtureRequest, data_file: Path) -> Iterator[Path]:
    """The data file on the test's disk, and a copy on tmpfs where there is one."""
    if request.param == "tmp_path":
        yield data_file
        return
    if not (SHM.is_dir() and os.access(SHM, os.W_OK)):
        pytest.skip("no writable /dev/shm")
    fd, name = tempfile.mkstemp(suffix=".onnx", dir=SHM)
    os.close(fd)
    copy = Path(name)
    try:
        copy.write_bytes(data_file.read_bytes())
        yield copy
    finally:
        copy.unlink()


def test_the_drop_reports_what_was_measured(any_file: Path) -> None:
    data_file = any_file
    data_file.read_bytes()
    drop = drop_file_cache(data_file)
    assert "\n" not in drop.note
    if pagecache.FADVISE_DONTNEED is None:
        assert not drop.dropped and drop.method == NO_METHOD
        assert "posix_fadvise unavailable on this OS" in drop.note
        return
    assert drop.method == ADVISE_METHOD
    assert (drop.dropped, drop.note) == describe_drop(
        drop.resident_before, drop.resident_after, "model file"
    )
    if drop.resident_after == 0.0:
        assert drop.dropped
        assert (
            drop.note
            == f"model file page cache dropped ({percent(drop.resident_before)} → 0% resident)"
        )
        assert residency(data_file) == 0.0  # measuring does not read the file back in
        data_file.read_bytes()
        assert residency(data_file) == 1.0  # the next reader goes to storage, then it is cached
    elif drop.resident_after is not None:
        assert not drop.dropped
        assert MEMORY_REASONS in drop.note  # e.g. tmpfs keeps the pages whatever we advise


def test_pages_a_process_maps_stay_and_the_note_says_so(data_file: Path) -> None:
    if pagecache.FADVISE_DONTNEED is None:
        pytest.skip("no posix_fadvise on this OS")
    with (
        data_file.open("rb") as file,
        mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as mapped,
    ):
        assert sum(mapped[i] for i in range(0, SIZE, mmap.PAGESIZE)) >= 0  # map every page
        drop = drop_file_cache(data_file)
    if drop.resident_after is None:
        pytest.skip("page residency cannot be measured on this OS")
    assert not drop.dropped
    assert drop.note == (
        "model file page cache could not be dropped: still 100% resident after posix_fadvise"
        f" ({MEMORY_REASONS})"
    )


def test_a_missing_file_raises_naming_the_path(tmp_path: Path) -> None:
    gone = tmp_path / "gone.onnx"
    with pytest.raises(FileNotFoundError, match=r"No such file or directory: '.*gone\.onnx'"):
        drop_file_cache(gone)
    with pytest.raises(FileNotFoundError, match=r"gone\.onnx"):
        residency(gone)


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError, match=str(tmp_path.name)):
        drop_file_cache(tmp_path)


def test_importing_the_module_stays_light() -> None:
    code = (
        "import sys, pytest_deploycheck.measure.pagecache;"
        " print(sorted(m for m in ('numpy', 'pytest', 'ctypes') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------- the wording, injected


def test_a_verified_drop(data_file: Path) -> None:
    calls: list[int] = []
    drop = drop_file_cache(data_file, measure=fractions(1.0, 0.0), advise=calls.append)
    assert drop == CacheDrop(
        1.0,
        0.0,
        dropped=True,
        method=ADVISE_METHOD,
        note="model file page cache dropped (100% → 0% resident)",
    )
    assert len(calls) == 1
    with pytest.raises(OSError):  # the descriptor is closed again
        os.fstat(calls[0])


def test_a_file_system_that_ignores_the_advice(data_file: Path) -> None:
    drop = drop_file_cache(data_file, measure=fractions(1.0, 1.0), advise=accept)
    assert not drop.dropped
    assert drop.note == (
        "model file page cache could not be dropped: still 100% resident after posix_fadvise"
        " (the pages are mapped by a running process, or the file system keeps files in"
        " memory, e.g. tmpfs)"
    )


def test_a_partial_drop(data_file: Path) -> None:
    drop = drop_file_cache(data_file, measure=fractions(1.0, 0.37), advise=accept, label="weights")
    assert (drop.dropped, drop.resident_after) == (False, 0.37)
    assert drop.note.startswith(
        "weights page cache only partly dropped (100% → 37% resident after posix_fadvise: "
    )


def test_no_posix_fadvise(data_file: Path) -> None:
    drop = drop_file_cache(data_file, measure=fractions(0.5), advise=None)
    assert drop == CacheDrop(
        0.5,
        0.5,
        dropped=False,
        method=NO_METHOD,
        note="model file page cache could not be dropped (posix_fadvise unavailable on this"
        " OS): the file may be read from memory",
    )


def test_a_failing_posix_fadvise(data_file: Path) -> None:
    def refuse(fd: int) -> None:
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))

    drop = drop_file_cache(data_file, measure=fractions(1.0, 1.0), advise=refuse)
    assert (drop.dropped, drop.method) == (False, ADVISE_METHOD)
    assert drop.note == (
        f"model file page cache could not be dropped (posix_fadvise failed:"
        f" {os.strerror(errno.EINVAL)}): the file may be read from memory"
    )


def test_an_unmeasurable_drop_is_not_called_verified(data_file: Path) -> None:
    drop = drop_file_cache(data_file, measure=fractions(None, None), advise=accept)
    assert drop.dropped
    assert drop.note == (
        "model file page cache dropped with posix_fadvise, not verified"
        " (page residency cannot be measured here)"
    )


@pytest.mark.parametrize(
    ("fraction", "text"),
    [(None, "?"), (0.0, "0%"), (0.001, "<1%"), (0.37, "37%"), (0.999, ">99%"), (1.0, "100%")],
)
def test_percent(fraction: float | None, text: str) -> None:
    assert percent(fraction) == text
