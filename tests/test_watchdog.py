"""The watchdog that bounds a timed measurement inside a call: its logic on a fake clock,
then the real interrupts with the grace made short (the sleeps they cut are far longer)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from pytest_deploycheck.measure import watchdog
from pytest_deploycheck.measure.watchdog import (
    HangReport,
    MeasurementHung,
    Watchdog,
    grace_s,
)

LONG_SLEEP_S = 60.0  # what a hung call sleeps: far beyond any bound the tests arm


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    """Stands in for the interrupt and for on_stuck: remembers what it was called with."""

    def __init__(self) -> None:
        self.interrupted: list[int] = []
        self.stuck: list[HangReport] = []

    def interrupt(self, ident: int) -> None:
        self.interrupted.append(ident)

    def on_stuck(self, report: HangReport) -> None:
        self.stuck.append(report)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def fake_watchdog(clock: FakeClock, recorder: Recorder) -> Watchdog:
    """A watchdog whose thread never starts: the test calls tick() itself."""
    return Watchdog(
        "latency_under_80",
        clock=clock,
        interrupt=recorder.interrupt,
        on_stuck=recorder.on_stuck,
        stuck_grace_s=5.0,
    )


@pytest.fixture
def short_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    """A grace of 50 ms, so that a real interrupt lands at once."""
    monkeypatch.setattr(watchdog, "GRACE_MIN_S", 0.05)


def test_the_grace_is_five_seconds_or_a_fifth_of_the_bound() -> None:
    assert grace_s(0.5) == 5.0
    assert grace_s(25.0) == 5.0
    assert grace_s(100.0) == 20.0


def test_nothing_happens_before_anything_is_armed(clock: FakeClock, recorder: Recorder) -> None:
    dog = fake_watchdog(clock, recorder)
    clock.now += 10_000
    assert dog.tick() == watchdog.IDLE_WAIT_S
    assert recorder.interrupted == []


def test_the_interrupt_comes_at_the_bound_plus_the_grace(
    clock: FakeClock, recorder: Recorder
) -> None:
    dog = fake_watchdog(clock, recorder)
    dog.arm("timing", 0.5)
    clock.now += 5.4
    assert dog.tick() == pytest.approx(0.1)
    assert recorder.interrupted == [] and dog.fired is None
    clock.now += 0.1
    assert dog.tick() == 5.0  # the stuck grace starts
    assert recorder.interrupted == [dog.target]
    report = dog.fired
    assert report is not None
    assert (report.what, report.phase, report.limit_s, report.grace_s) == (
        "latency_under_80",
        "timing",
        0.5,
        5.0,
    )
    assert report.summary() == (
        "latency_under_80: hung: a call of the test body was still running 5.5 s into the"
        " timing phase, whose bound is 0.5 s (grace max(5 s, 20%))"
    )


def test_a_call_that_does_not_return_after_the_interrupt_goes_to_on_stuck(
    clock: FakeClock, recorder: Recorder
) -> None:
    dog = fake_watchdog(clock, recorder)
    dog.arm("soak", 60.0)
    clock.now += 72.0  # 60 s + a 12 s grace
    dog.tick()
    clock.now += 4.9
    dog.tick()
    assert recorder.stuck == []
    clock.now += 0.1
    assert dog.tick() is None  # nothing left to watch
    assert len(recorder.interrupted) == 1
    assert [r.phase for r in recorder.stuck] == ["soak"]


def test_each_phase_is_armed_with_its_own_bound(clock: FakeClock, recorder: Recorder) -> None:
    dog = fake_watchdog(clock, recorder)
    dog.arm("warm-up", 10.0)
    clock.now += 14.0  # inside the warm-up's 10 s + 5 s
    dog.tick()
    dog.arm("timing", 0.5)  # the timed phase starts: its own deadline, from now
    clock.now += 5.0
    dog.tick()
    assert recorder.interrupted == []
    clock.now += 0.5
    dog.tick()
    assert dog.fired is not None and dog.fired.phase == "timing"


def test_a_closed_watchdog_never_interrupts(clock: FakeClock, recorder: Recorder) -> None:
    with fake_watchdog(clock, recorder) as dog:
        dog.arm("timing", 0.5)
    clock.now += 1000.0
    assert dog.tick() is None
    assert recorder.interrupted == [] and recorder.stuck == []


def parked_in_a_call(release: threading.Event) -> None:
    release.wait()


def test_the_report_holds_the_stack_of_the_measuring_thread(
    clock: FakeClock, recorder: Recorder
) -> None:
    release = threading.Event()
    thread = threading.Thread(target=parked_in_a_call, args=(release,))
    thread.start()
    try:
        dog = fake_watchdog(clock, recorder)
        dog.target = thread.ident or 0
        dog.arm("timing", 1.0)
        clock.now += 10.0
        dog.tick()
    finally:
        release.set()
        thread.join()
    assert dog.fired is not None
    assert "in parked_in_a_call" in dog.fired.stack
    assert "release.wait()" in dog.fired.stack


# --------------------------------------------------------------------------- real interrupts


def hang_in_a_sleep() -> None:
    time.sleep(LONG_SLEEP_S)


@pytest.mark.usefixtures("short_grace")
def test_a_blocking_sleep_in_the_main_thread_is_interrupted() -> None:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")
    started = time.monotonic()
    with pytest.raises(MeasurementHung) as excinfo, Watchdog("soak_1min") as dog:
        dog.arm("soak", 0.01)
        hang_in_a_sleep()
    assert time.monotonic() - started < LONG_SLEEP_S / 2
    report = excinfo.value.report
    assert report is not None and report.phase == "soak"
    assert "in hang_in_a_sleep" in report.stack


@pytest.mark.usefixtures("short_grace")
def test_a_python_loop_in_another_thread_gets_the_exception_asynchronously() -> None:
    caught: list[MeasurementHung] = []

    def measure() -> None:
        try:
            with Watchdog("latency_under_1") as dog:
                dog.arm("timing", 0.01)
                deadline = time.monotonic() + LONG_SLEEP_S
                while time.monotonic() < deadline:
                    time.sleep(0.01)
        except MeasurementHung as exc:
            caught.append(exc)

    thread = threading.Thread(target=measure)
    thread.start()
    thread.join(timeout=LONG_SLEEP_S)
    assert not thread.is_alive()
    assert len(caught) == 1
    report = caught[0].report  # the bare class raised asynchronously got its report on exit
    assert report is not None and report.what == "latency_under_1"


@pytest.mark.usefixtures("short_grace")
def test_a_measurement_that_returns_in_time_is_left_alone() -> None:
    with Watchdog("latency_under_1") as dog:
        dog.arm("timing", 30.0)
    assert dog.fired is None


@pytest.fixture
def restore_wake_signal() -> Iterator[None]:
    import signal

    if watchdog.WAKE_SIGNAL is None or threading.current_thread() is not threading.main_thread():
        pytest.skip("needs a signal and the main thread")
    before = signal.getsignal(watchdog.WAKE_SIGNAL)
    yield
    signal.signal(watchdog.WAKE_SIGNAL, before)


@pytest.mark.usefixtures("restore_wake_signal")
def test_a_signal_the_watchdog_did_not_send_goes_to_the_handler_it_restores() -> None:
    import signal

    assert watchdog.WAKE_SIGNAL is not None
    seen: list[int] = []
    signal.signal(watchdog.WAKE_SIGNAL, lambda signum, frame: seen.append(signum))
    with Watchdog("latency_under_1"):
        signal.raise_signal(watchdog.WAKE_SIGNAL)  # not ours: the previous handler gets it
    assert seen == [watchdog.WAKE_SIGNAL]
    signal.raise_signal(watchdog.WAKE_SIGNAL)
    assert seen == [watchdog.WAKE_SIGNAL] * 2


def enter_in_a_frame_that_returns(dog: Watchdog) -> None:
    dog.__enter__()


def test_no_call_is_stuck_once_the_measuring_thread_left_the_watched_block(
    clock: FakeClock, recorder: Recorder
) -> None:
    # The interrupt landed just as the block ended, before the watch was closed: the
    # session must not be ended for a call that is not running any more.
    dog = fake_watchdog(clock, recorder)
    enter_in_a_frame_that_returns(dog)
    try:
        dog.arm("timing", 0.5)
        clock.now += 6.0
        dog.tick()
        clock.now += 10.0
        assert dog.tick() is None
        assert len(recorder.interrupted) == 1 and recorder.stuck == []
    finally:
        dog.__exit__(None, None, None)
