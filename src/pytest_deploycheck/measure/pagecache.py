"""How much of a file sits in the operating system's page cache, and dropping it.

A cold boot reads the model from storage; a process started on a warm host finds it in
memory.  :func:`residency` measures the fraction of a file's pages that are resident
(``mmap`` plus libc ``mincore`` through :mod:`ctypes`: Linux, and macOS or the BSDs in
principle).  :func:`drop_file_cache` asks the kernel to evict that one file with
``posix_fadvise(POSIX_FADV_DONTNEED)``, which needs no privileges and works for clean
pages that no process has mapped, then measures again and says in one line what
really happened.  The file systems that keep files in memory (tmpfs, ramfs) ignore the
advice, and so do pages some process still maps; the note says so rather than claiming a
cold read.

Only the named file is dropped.  The interpreter, numpy and the runtime's libraries stay
as warm as the host left them: evicting the whole cache takes root
(``/proc/sys/vm/drop_caches``), which this module never touches.

Standard library only: no pytest, no numpy.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import math
import mmap
import os
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ADVISE_METHOD = "posix_fadvise(POSIX_FADV_DONTNEED)"
NO_METHOD = "none"
MEMORY_REASONS = (
    "the pages are mapped by a running process, or the file system keeps files in memory,"
    " e.g. tmpfs"
)
# bit 0 of each mincore byte says "resident"; the other bits are platform extras
_RESIDENT_BIT = bytes(value & 1 for value in range(256))

Measure = Callable[[Path], float | None]
Advise = Callable[[int], None]


def _advise_dontneed(fd: int) -> None:
    # Dirty pages cannot be dropped, clean ones need no write; read-only file systems
    # and some OSes refuse fsync on a read-only descriptor, which is no reason to stop.
    with contextlib.suppress(OSError):
        os.fsync(fd)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


# The eviction call; None on an OS without posix_fadvise (macOS, Windows).
FADVISE_DONTNEED: Advise | None = (
    _advise_dontneed
    if hasattr(os, "posix_fadvise") and hasattr(os, "POSIX_FADV_DONTNEED")
    else None
)


@dataclass(frozen=True)
class CacheDrop:
    """What an attempt to evict one file from the page cache did.

    *resident_before* and *resident_after* are fractions of the file's pages in memory
    (None where they cannot be measured).  *dropped* is True when the advice was given
    and the file was not found resident afterwards: 0% resident, or not measurable, in
    which case the *note* says the drop is unverified.  *method* is how it was asked
    (:data:`ADVISE_METHOD`, or :data:`NO_METHOD`); *note* is one line for people.
    """

    resident_before: float | None
    resident_after: float | None
    dropped: bool
    method: str
    note: str


def residency(path: str | os.PathLike[str]) -> float | None:
    """The fraction (0.0 to 1.0) of *path*'s pages resident in the page cache.

    None where it cannot be known: no ``mincore`` (Windows), an empty file, or a failing
    ``mmap``/``mincore`` call.  A file that cannot be opened raises the usual
    :class:`OSError` (:class:`FileNotFoundError` naming the path when it is missing).
    Measuring touches no page: it does not warm the cache it measures.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        if size <= 0:
            return None
        return _resident_fraction(fd, size)
    finally:
        os.close(fd)


def drop_file_cache(
    path: str | os.PathLike[str],
    *,
    label: str = "model file",
    measure: Measure = residency,
    advise: Advise | None = FADVISE_DONTNEED,
) -> CacheDrop:
    """Evict *path* from the page cache where the OS lets an unprivileged process do it.

    Dirty pages are written first (``fsync``), since only clean pages can be dropped.
    The outcome, including "could not be dropped", is described by the returned
    :class:`CacheDrop`, never raised.  A missing path, however, is the caller's error:
    it raises :class:`FileNotFoundError` naming the path (:class:`IsADirectoryError` for
    a directory).  *label* names the file in the note.

    *measure* and *advise* replace :func:`residency` and the ``fsync`` plus
    ``posix_fadvise`` call (which receives a read-only descriptor); *advise* None is an
    OS without ``posix_fadvise``.  They exist so the reporting can be tested whatever
    the file system does.
    """
    file = Path(path)
    if _file_size(file) == 0:
        return CacheDrop(None, None, dropped=True, method=NO_METHOD, note=f"{label} is empty")
    before = measure(file)
    if advise is None:
        return CacheDrop(
            before,
            before,
            dropped=False,
            method=NO_METHOD,
            note=f"{label} page cache could not be dropped (posix_fadvise unavailable on"
            " this OS): the file may be read from memory",
        )
    failure: str | None = None
    fd = os.open(file, os.O_RDONLY)
    try:
        advise(fd)
    except OSError as exc:
        failure = exc.strerror or str(exc)
    finally:
        os.close(fd)
    after = measure(file)
    if failure is not None:
        return CacheDrop(
            before,
            after,
            dropped=False,
            method=ADVISE_METHOD,
            note=f"{label} page cache could not be dropped (posix_fadvise failed: {failure}):"
            " the file may be read from memory",
        )
    dropped, note = describe_drop(before, after, label)
    return CacheDrop(before, after, dropped=dropped, method=ADVISE_METHOD, note=note)


def describe_drop(before: float | None, after: float | None, label: str) -> tuple[bool, str]:
    """Whether an accepted advice counts as dropped, and the one-line note saying so."""
    if after is None:
        return True, (
            f"{label} page cache dropped with posix_fadvise, not verified"
            " (page residency cannot be measured here)"
        )
    if after == 0.0:
        return True, f"{label} page cache dropped ({percent(before)} → 0% resident)"
    if before is not None and after < before:
        return False, (
            f"{label} page cache only partly dropped ({percent(before)} → {percent(after)}"
            f" resident after posix_fadvise: {MEMORY_REASONS})"
        )
    return False, (
        f"{label} page cache could not be dropped: still {percent(after)} resident after"
        f" posix_fadvise ({MEMORY_REASONS})"
    )


def percent(fraction: float | None) -> str:
    """``0%``, ``<1%``, ``37%``, ``>99%``, ``100%``; ``?`` for unknown."""
    if fraction is None or not math.isfinite(fraction):
        return "?"
    if 0.0 < fraction < 0.005:
        return "<1%"
    if 0.995 <= fraction < 1.0:
        return ">99%"
    return f"{fraction:.0%}"


def _file_size(file: Path) -> int:
    status = os.stat(file)  # FileNotFoundError: [Errno 2] No such file or directory: '<path>'
    if stat.S_ISDIR(status.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(file))
    return status.st_size


def _resident_fraction(fd: int, size: int) -> float | None:
    libc = _libc()
    if libc is None:
        return None
    import ctypes

    address = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
    if address is None or address == ctypes.c_void_p(-1).value:
        return None
    try:
        pages = -(-size // mmap.PAGESIZE)
        vector = (ctypes.c_ubyte * pages)()
        if libc.mincore(address, size, vector) != 0:
            return None
        resident = bytes(vector).translate(_RESIDENT_BIT).count(1)
        return resident / pages
    finally:
        libc.munmap(address, size)


@functools.cache
def _libc() -> Any:
    """libc with ``mmap``, ``mincore`` and ``munmap`` typed; None where it has none."""
    if sys.platform == "win32":
        return None
    import ctypes  # here, not at the top: importing this module stays cheap
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        mmap_fn, mincore, munmap = libc.mmap, libc.mincore, libc.munmap
    except (OSError, AttributeError):
        return None
    mmap_fn.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_long,
    ]
    mmap_fn.restype = ctypes.c_void_p
    mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_ubyte)]
    mincore.restype = ctypes.c_int
    munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    munmap.restype = ctypes.c_int
    return libc
