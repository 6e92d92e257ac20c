"""One timed measurement at a time on this host, across processes.

Two measurements on the same cores slow each other down: under ``pytest -n 2`` two
latency tests measured a p50 3.2x their serial figure, and two CI jobs on one
runner do the same.  Every timed section (latency, throughput, soak, cold start,
the memory child) therefore holds an exclusive ``fcntl.flock`` on one file in the
system's temporary directory (``DEPLOYCHECK_LOCK_DIR`` moves it).  The lock is
taken before the clock starts and released after it stops, so the wait is never
part of a figure; tests that time nothing still run in parallel.

The kernel drops a flock when its process ends, crashes included: a killed run
never leaves the lock held.  Where ``fcntl`` is missing (Windows) nothing is locked
and the note says so.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from ..config.schema import TIMING_LOCK_MODES as MODES

LOCK_FILE_NAME = "deploycheck-timing.lock"
DEFAULT_TIMEOUT_S = 30 * 60.0
POLL_S = 0.05
HELD = "host"
OFF = "off"
UNAVAILABLE = "unavailable"


class TimingLockTimeout(Exception):
    """Another run held the timing lock for longer than the timeout."""


@dataclass(frozen=True)
class LockHold:
    """How one timed section was scheduled: its mode, how long it waited, why not locked.

    ``mode`` is ``host`` (held the lock), ``off`` (turned off) or ``unavailable``
    (this platform or the lock file did not allow it; ``note`` says which).
    """

    mode: str
    waited_s: float = 0.0
    note: str = ""


def lock_path(lock_dir: Path | None = None) -> Path:
    """The lock file: in *lock_dir*, else in the system's temporary directory."""
    return Path(lock_dir or tempfile.gettempdir()) / LOCK_FILE_NAME


class TimingLock:
    """The host-wide lock of one process; ``hold()`` around each timed section.

    Nested holds in one process are free (the outer one already holds the lock: a
    second flock of the same file from this process would wait for itself).
    """

    def __init__(
        self,
        mode: str = HELD,
        path: Path | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"timing lock mode: expected one of {', '.join(MODES)}, got {mode!r}")
        self.mode = mode
        self.path = path or lock_path()
        self.timeout_s = timeout_s
        self.clock = clock
        self.sleep = sleep
        self._depth = 0

    @contextmanager
    def hold(self, what: str = "a timed check") -> Iterator[LockHold]:
        """Hold the lock for the block; the block gets how it was scheduled."""
        if self.mode == OFF:
            yield LockHold(OFF)
            return
        if self._depth:
            self._depth += 1
            try:
                yield LockHold(HELD)
            finally:
                self._depth -= 1
            return
        with self._acquired(what) as hold:
            self._depth = 1
            try:
                yield hold
            finally:
                self._depth = 0

    @contextmanager
    def _acquired(self, what: str) -> Iterator[LockHold]:
        try:
            import fcntl
        except ImportError:
            yield LockHold(UNAVAILABLE, note="this platform has no fcntl.flock")
            return
        try:
            fd = _open(self.path)
        except OSError as exc:
            yield LockHold(UNAVAILABLE, note=f"cannot open {self.path}: {exc.strerror or exc}")
            return
        try:
            waited_s = self._wait(fd, fcntl, what)
            _say_holder(fd, what)
            yield LockHold(HELD, waited_s)
        finally:
            os.close(fd)  # closing the last descriptor releases the flock

    def _wait(self, fd: int, fcntl: ModuleType, what: str) -> float:
        """Poll for the lock until it is ours; the seconds waited.  Raises on timeout."""
        started = self.clock()
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self.clock() - started
            except BlockingIOError:
                waited = self.clock() - started
                if waited >= self.timeout_s:
                    raise TimingLockTimeout(self._timeout_message(fd, what)) from None
                self.sleep(POLL_S)

    def _timeout_message(self, fd: int, what: str) -> str:
        holder = _read_holder(fd) or "another process"
        return (
            f"{what}: the host timing lock {self.path} is still held by {holder} after"
            f" {self.timeout_s / 60:g} min; wait for that run, or pass"
            " --deploy-timing-lock=off (figures may then overlap)"
        )


def _open(path: Path) -> int:
    """A descriptor on the lock file, created if need be, write access not required.

    An existing file is opened without O_CREAT first: Linux refuses O_CREAT on another
    user's file in a sticky /tmp (fs.protected_regular), and a flock needs no write.
    """
    for flags in (os.O_RDWR, os.O_RDONLY):
        try:
            return os.open(path, flags)
        except FileNotFoundError:
            break
        except PermissionError:
            continue
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)


def _say_holder(fd: int, what: str) -> None:
    """Write who holds the lock into the file, for another run's timeout message."""
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} ({what})".encode(), 0)
    except (OSError, AttributeError):
        pass  # read-only (another user's file) or no pwrite: the lock holds regardless


def _read_holder(fd: int) -> str:
    try:
        return os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except (OSError, AttributeError):
        return ""


def scheduling_note(holds: list[tuple[str, float, str]]) -> str:
    """How a run's timed checks were scheduled, from each check's (mode, wait, note).

    "" when nothing was timed.
    """
    if not holds:
        return ""
    modes = {mode for mode, _, _ in holds}
    waited = sum(wait for mode, wait, _ in holds if mode == HELD)
    if modes == {HELD}:
        return f"timed checks ran one at a time (host lock; waited {waited:.1f} s in total)"
    if OFF in modes:
        why = "--deploy-timing-lock=off"
    else:
        why = next(note for mode, _, note in holds if mode == UNAVAILABLE) or "no host lock"
    return (
        f"timed checks were not serialized ({why}): under xdist or beside another run"
        " their figures may include each other's load"
    )
