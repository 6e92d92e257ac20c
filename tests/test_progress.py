"""Unit tests of progress.py: the cadence of progress lines, on a fake clock and a fake sink."""

from __future__ import annotations

import itertools

import pytest

from pytest_deploycheck.measure.progress import (
    LOG_EVERY_S,
    TTY_EVERY_S,
    NullSink,
    Progress,
    _clock_text,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeSink:
    """Records every call as (kind, text, clock reading)."""

    def __init__(self, clock: FakeClock, *, is_tty: bool) -> None:
        self.clock = clock
        self.is_tty = is_tty
        self.calls: list[tuple[str, str, float]] = []

    def line(self, text: str) -> None:
        self.calls.append(("line", text, self.clock.now))

    def status(self, text: str) -> None:
        self.calls.append(("status", text, self.clock.now))

    def done(self, text: str) -> None:
        self.calls.append(("done", text, self.clock.now))

    def kinds(self) -> list[str]:
        return [kind for kind, _, _ in self.calls]

    def texts(self, kind: str) -> list[str]:
        return [text for k, text, _ in self.calls if k == kind]


def progress(
    total_s: float, *, is_tty: bool, **kwargs: float
) -> tuple[Progress, FakeSink, FakeClock]:
    clock = FakeClock()
    sink = FakeSink(clock, is_tty=is_tty)
    return Progress(sink, "soak_30min test_x", total_s, clock=clock, **kwargs), sink, clock


def run_through(
    work: Progress, clock: FakeClock, total_s: float, every_s: float, *, to_the_end: bool = True
) -> None:
    """Updates every *every_s* of (fake) elapsed time, the clock moving with them."""
    steps = round(total_s / every_s)
    last = steps if to_the_end else steps - 1
    for k in range(1, last + 1):
        clock.now = k * every_s
        work.update(clock.now, "working")


# --------------------------------------------------------------------------- terminal


def test_on_a_terminal_the_status_is_rewritten_at_most_every_half_second() -> None:
    work, sink, clock = progress(60.0, is_tty=True)
    work.start("running for 1 min")
    run_through(work, clock, 60.0, 0.1)
    work.finish("PASS +0.1 MB/h")
    assert sink.kinds()[-1] == "done"
    statuses = [(text, at) for kind, text, at in sink.calls if kind == "status"]
    assert statuses[0] == ("soak_30min test_x: running for 1 min", 0.0)
    times = [at for _, at in statuses]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= TTY_EVERY_S - 1e-9
    assert 100 <= len(statuses) <= 121  # about one per half second of the minute
    assert "line" not in sink.kinds()
    assert sink.texts("done") == ["soak_30min test_x: PASS +0.1 MB/h"]


def test_on_a_terminal_the_status_carries_the_elapsed_and_total_time() -> None:
    work, sink, clock = progress(1800.0, is_tty=True)
    work.start("running for 30 min")
    clock.now = 725.0
    assert work.update(725.0, "1,204 calls")
    assert sink.texts("status")[-1] == "soak_30min test_x: 12:05/30:00 1,204 calls"
    clock.now = 725.2
    assert not work.update(725.2, "too soon")
    assert sink.texts("status")[-1] == "soak_30min test_x: 12:05/30:00 1,204 calls"


# --------------------------------------------------------------------------- logs


def test_in_a_log_a_30_minute_run_writes_about_a_dozen_lines() -> None:
    work, sink, clock = progress(1800.0, is_tty=False)
    work.start("running for 30 min")
    run_through(work, clock, 1800.0, 1.0)
    work.finish("PASS")
    kinds = sink.kinds()
    assert kinds[0] == "line" and kinds[-1] == "done"
    assert "status" not in kinds
    lines = [(text, at) for kind, text, at in sink.calls if kind == "line"]
    assert lines[0] == ("soak_30min test_x: running for 30 min", 0.0)
    progress_lines = lines[1:]
    assert 9 <= len(progress_lines) <= 10  # one per tenth of the run
    times = [at for _, at in lines]
    assert all(b - a >= LOG_EVERY_S for a, b in itertools.pairwise(times))
    assert progress_lines[0][0] == "soak_30min test_x: 3:00/30:00 working"
    assert len(sink.calls) <= 12


def test_in_a_log_lines_are_never_closer_than_log_every_s() -> None:
    # A 2-minute run: a tenth is 12 s, but lines stay 30 s apart.
    work, sink, clock = progress(120.0, is_tty=False)
    work.start()
    run_through(work, clock, 120.0, 0.5)
    times = [at for kind, _, at in sink.calls if kind == "line"]
    assert times[0] == 0.0
    assert all(b - a >= LOG_EVERY_S for a, b in itertools.pairwise(times))
    assert len(times) <= 1 + 120 / LOG_EVERY_S
    assert sink.texts("line")[0] == "soak_30min test_x: started"


def test_in_a_log_a_30_second_run_writes_its_start_and_its_end() -> None:
    # Updates through the run, none of them a tenth *and* 30 s after the start line.
    work, sink, clock = progress(30.0, is_tty=False)
    work.start("running for 30 s")
    run_through(work, clock, 30.0, 0.1, to_the_end=False)
    work.finish("PASS")
    assert sink.kinds() == ["line", "done"]
    assert sink.texts("done") == ["soak_30min test_x: PASS"]


def test_in_a_log_a_30_second_run_writes_two_lines_even_with_an_update_at_the_end() -> None:
    # run_soak's last interval reports the full duration; the module promises "two
    # [lines] for a 30-second one", but the update at 30 s is 30 s after the start.
    work, sink, clock = progress(30.0, is_tty=False)
    work.start("running for 30 s")
    run_through(work, clock, 30.0, 0.1)
    work.finish("PASS")
    assert sink.kinds() == ["line", "done"]


def test_lazy_text_is_computed_only_when_a_line_is_due() -> None:
    computed: list[float] = []
    work, sink, clock = progress(1800.0, is_tty=False)
    work.start()
    for k in range(1, 1801):
        clock.now = float(k)

        def text(at: float = clock.now) -> str:
            computed.append(at)
            return "figures"

        work.update(clock.now, text)
    written = [at for kind, _, at in sink.calls if kind == "line"][1:]
    assert computed == written
    assert all(text.endswith(" figures") for text in sink.texts("line")[1:])


def test_lazy_text_on_a_terminal_too() -> None:
    calls = 0

    def text() -> str:
        nonlocal calls
        calls += 1
        return "x"

    work, sink, clock = progress(10.0, is_tty=True)
    work.start()
    for k in range(1, 101):
        clock.now = k * 0.01  # one second of updates: two are due
        work.update(clock.now, text)
    assert calls == len(sink.texts("status")) - 1 == 2


# --------------------------------------------------------------------------- delay


@pytest.mark.parametrize("is_tty", [True, False])
def test_work_over_before_the_delay_says_nothing(is_tty: bool) -> None:
    work, sink, clock = progress(10.0, is_tty=is_tty, delay_s=5.0)
    for k in range(1, 41):
        clock.now = k * 0.1
        assert not work.update(clock.now, "working")
    work.finish("PASS")
    assert sink.calls == []


def test_work_past_the_delay_announces_itself_then_with_its_figures() -> None:
    work, sink, clock = progress(10.0, is_tty=True, delay_s=2.0)
    for k in range(1, 101):
        clock.now = k * 0.1
        work.update(clock.now, "working")
    work.finish("PASS")
    assert sink.calls[0] == ("status", "soak_30min test_x: 2.0s/10.0s working", 2.0)
    assert sink.kinds()[-1] == "done"
    assert sink.texts("done") == ["soak_30min test_x: PASS"]


def test_finish_without_start_is_silent() -> None:
    work, sink, _ = progress(10.0, is_tty=False)
    work.finish("PASS")
    assert sink.calls == []


def test_the_null_sink_swallows_everything() -> None:
    work = Progress(NullSink(), "x", 1.0)
    work.start("go")
    work.update(0.5, "half")
    work.finish("done")


# --------------------------------------------------------------------------- clock text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0.0s"),
        (42.0, "42.0s"),
        (59.4, "59.4s"),
        (60.0, "1:00"),
        (725.0, "12:05"),
        (725.4, "12:05"),
        (1800.0, "30:00"),
        (7265.0, "121:05"),
    ],
)
def test_clock_text(seconds: float, text: str) -> None:
    assert _clock_text(seconds) == text
