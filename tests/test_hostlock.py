"""The host-wide timing lock: one timed section at a time, the wait recorded, never timed.

Ordering between processes is asserted through files the processes write, and every
wait is bounded by a timeout; no assertion reads a clock of this machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_deploycheck.measure import hostlock
from pytest_deploycheck.measure.hostlock import (
    LockHold,
    TimingLock,
    TimingLockTimeout,
    lock_path,
    scheduling_note,
)

fcntl = pytest.importorskip("fcntl")
BOUND_S = 60.0


class FakeClock:
    """A clock that moves only when the lock sleeps; *on_sleep* may free the lock."""

    def __init__(self, step_s: float = 0.5) -> None:
        self.now = 100.0
        self.step_s = step_s
        self.sleeps = 0
        self.on_sleep: list[object] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += self.step_s
        for action in self.on_sleep:
            action()  # type: ignore[operator]


@pytest.fixture
def held_elsewhere(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """The lock file, flocked through another open file (as another process would)."""
    path = lock_path(tmp_path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, b"pid 4242 (tests/test_x.py::test_slow)")
    yield path, fd
    os.close(fd)


def test_the_lock_file_is_in_the_temp_dir_unless_moved(tmp_path: Path) -> None:
    import tempfile

    assert lock_path() == Path(tempfile.gettempdir()) / "deploycheck-timing.lock"
    assert lock_path(tmp_path) == tmp_path / "deploycheck-timing.lock"


def test_a_free_lock_is_held_without_waiting(tmp_path: Path) -> None:
    clock = FakeClock()
    lock = TimingLock(path=lock_path(tmp_path), clock=clock, sleep=clock.sleep)
    with lock.hold("t::a") as hold:
        assert hold == LockHold("host", 0.0)
        assert "t::a" in lock_path(tmp_path).read_text()
    assert clock.sleeps == 0


def test_the_wait_is_recorded_and_ends_when_the_holder_lets_go(
    held_elsewhere: tuple[Path, int],
) -> None:
    path, fd = held_elsewhere
    clock = FakeClock(step_s=1.5)
    released = []

    def release_on_second_sleep() -> None:
        if clock.sleeps == 2:
            fcntl.flock(fd, fcntl.LOCK_UN)
            released.append(True)

    clock.on_sleep.append(release_on_second_sleep)
    lock = TimingLock(path=path, clock=clock, sleep=clock.sleep)
    with lock.hold() as hold:
        assert released == [True]
        assert hold.waited_s == pytest.approx(3.0)
        assert hold.mode == "host"


def test_a_lock_held_past_the_timeout_fails_in_one_line(
    held_elsewhere: tuple[Path, int],
) -> None:
    path, _ = held_elsewhere
    clock = FakeClock(step_s=60.0)
    lock = TimingLock(path=path, timeout_s=30 * 60, clock=clock, sleep=clock.sleep)
    with pytest.raises(TimingLockTimeout) as raised, lock.hold("t::b"):
        pytest.fail("the block must not run without the lock")
    message = str(raised.value)
    assert "\n" not in message
    assert message == (
        f"t::b: the host timing lock {path} is still held by pid 4242"
        " (tests/test_x.py::test_slow) after 30 min; wait for that run, or pass"
        " --deploy-timing-lock=off (figures may then overlap)"
    )
    assert clock.sleeps == 30


def test_off_takes_no_lock(held_elsewhere: tuple[Path, int]) -> None:
    path, _ = held_elsewhere
    with TimingLock("off", path).hold() as hold:
        assert hold == LockHold("off")


def test_nested_holds_do_not_wait_for_themselves(tmp_path: Path) -> None:
    clock = FakeClock()
    lock = TimingLock(path=lock_path(tmp_path), clock=clock, sleep=clock.sleep)
    with lock.hold() as outer, lock.hold() as inner:
        assert (outer.mode, inner.mode) == ("host", "host")
    with lock.hold() as again:  # released after the outer block: free again
        assert again.waited_s == 0.0
    assert clock.sleeps == 0


def test_without_fcntl_nothing_is_locked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "fcntl", None)  # import fcntl raises ImportError
    with TimingLock(path=lock_path(tmp_path)).hold() as hold:
        assert hold == LockHold("unavailable", note="this platform has no fcntl.flock")


def test_a_lock_file_that_cannot_be_opened_runs_unlocked(tmp_path: Path) -> None:
    path = tmp_path / "missing-dir" / "deploycheck-timing.lock"
    with TimingLock(path=path).hold() as hold:
        assert hold.mode == "unavailable"
        assert hold.note.startswith(f"cannot open {path}:")


def test_a_bad_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="timing lock mode: expected one of host, off"):
        TimingLock("sometimes")


@pytest.mark.parametrize(
    ("holds", "note"),
    [
        ([], ""),
        (
            [("host", 1.25, ""), ("host", 2.0, "")],
            "timed checks ran one at a time (host lock; waited 3.2 s in total)",
        ),
        (
            [("host", 0.0, ""), ("off", 0.0, "")],
            "timed checks were not serialized (--deploy-timing-lock=off): under xdist or"
            " beside another run their figures may include each other's load",
        ),
        (
            [("unavailable", 0.0, "this platform has no fcntl.flock")],
            "timed checks were not serialized (this platform has no fcntl.flock): under"
            " xdist or beside another run their figures may include each other's load",
        ),
    ],
)
def test_the_scheduling_note_says_how_timed_checks_ran(
    holds: list[tuple[str, float, str]], note: str
) -> None:
    assert scheduling_note(holds) == note


# --------------------------------------------------------------------------- processes

HOLDER = """
import sys, time
from pathlib import Path
from pytest_deploycheck.measure.hostlock import TimingLock
lock_file, events, role = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
log = events / "log"

def wait_for(name):
    deadline = time.monotonic() + 60
    while not (events / name).exists():
        if time.monotonic() > deadline:
            sys.exit(f"{role}: {name} never came")
        time.sleep(0.01)

def say(line):
    with open(log, "a") as out:
        out.write(line + "\\n")

if role == "first":
    with TimingLock(path=lock_file).hold("first"):
        (events / "first_holds").touch()
        wait_for("let_go")
        say("first released")
else:
    say("second trying")
    (events / "second_trying").touch()
    with TimingLock(path=lock_file).hold("second") as hold:
        say(f"second acquired {hold.mode}")
"""


def _wait_for(path: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + BOUND_S
    while not path.exists():
        assert process.poll() is None, f"the holder ended early: {process.returncode}"
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.01)


def test_a_second_process_waits_until_the_first_releases(tmp_path: Path) -> None:
    """Two processes contend: the second holds the lock only after the first let go."""
    events = tmp_path / "events"
    events.mkdir()
    lock_file = lock_path(tmp_path)
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)

    def start(role: str) -> subprocess.Popen[bytes]:
        command = [sys.executable, str(script), str(lock_file), str(events), role]
        return subprocess.Popen(command, stderr=subprocess.PIPE)

    first = start("first")
    second = None
    try:
        _wait_for(events / "first_holds", first)
        second = start("second")
        _wait_for(events / "second_trying", second)
        (events / "let_go").touch()
        for process in (first, second):
            _, err = process.communicate(timeout=BOUND_S)
            assert process.returncode == 0, err.decode()
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    lines = (events / "log").read_text().splitlines()
    assert lines == ["second trying", "first released", "second acquired host"]


def test_a_process_that_dies_holding_the_lock_frees_it(tmp_path: Path) -> None:
    """The kernel drops a flock with its process: a killed run never blocks the next."""
    lock_file = lock_path(tmp_path)
    code = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from pytest_deploycheck.measure.hostlock import TimingLock\n"
        "with TimingLock(path=Path(sys.argv[1])).hold():\n"
        "    os._exit(3)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(lock_file)], timeout=BOUND_S)
    assert done.returncode == 3
    clock = FakeClock()
    with TimingLock(path=lock_file, clock=clock, sleep=clock.sleep).hold() as hold:
        assert hold.waited_s == 0.0
    assert clock.sleeps == 0


def test_the_module_default_timeout_is_half_an_hour() -> None:
    assert hostlock.DEFAULT_TIMEOUT_S == 30 * 60
