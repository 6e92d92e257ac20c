"""Bound a timed measurement in wall time, also while one call of the workload hangs.

The measuring loops check their time caps (``max_time_s``, ``warmup_max_s``, a soak's
duration) between calls: a call that never returns would hold the session forever.
A :class:`Watchdog` thread holds each phase to its bound plus a grace of
``max(5 s, 20%)`` of it (:func:`grace_s`).  Past that it takes the stack of the thread
running the measurement and interrupts it with :class:`MeasurementHung`: by a signal
when that thread is the main thread (it also wakes a blocking sleep, read or wait),
else by an asynchronous exception (which lands at the next Python instruction).

A call still running :data:`STUCK_GRACE_S` after the interrupt -- native code that never
returns to the interpreter, a body that swallows the exception -- cannot be stopped in
this process.  The watchdog then hands a fresh :class:`HangReport` to ``on_stuck``
(unless the thread has left the watched block meanwhile): the session writes its
evidence with a False verdict and ends the process.  A native
call that holds the GIL blocks this thread too; nothing in-process can help there.

The clock and the interrupt are injected, so the tests drive :meth:`Watchdog.tick` on
a fake clock.  Nothing here imports pytest.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

GRACE_MIN_S = 5.0
GRACE_FRACTION = 0.2
STUCK_GRACE_S = 5.0  # after the interrupt, before the call counts as beyond recovery
IDLE_WAIT_S = 3600.0  # nothing armed: sleep until arm() or close wakes the thread
STACK_FRAMES = 30  # the most frames a report shows
# SIGURG is ignored by default, so one that lands after the handler is restored is
# harmless, and almost nothing else handles it (SIGALRM is pytest-timeout's).
WAKE_SIGNAL: signal.Signals | None = getattr(signal, "SIGURG", None)
# The loops that call the workload: a stack is shown from the frame below them.
# Matched on the path's tail, as a code object keeps the path it was imported by.
_PACKAGE = Path(__file__).parent.parent.name
_LOOP_FILES = tuple(str(Path(_PACKAGE, "measure", name)) for name in ("latency.py", "soak.py"))

Clock = Callable[[], float]
StuckHandler = Callable[["HangReport"], None]


def grace_s(limit_s: float) -> float:
    """How far past its bound a phase may run before it counts as hung."""
    return max(GRACE_MIN_S, GRACE_FRACTION * limit_s)


@dataclass(frozen=True)
class HangReport:
    """Where a measurement hung: its check, its phase and bound, the thread's stack."""

    what: str  # the check, e.g. latency_under_80
    phase: str  # warm-up, timing, soak
    limit_s: float
    grace_s: float
    stack: str

    def reason(self) -> str:
        """Why the check failed, without its name: the call and the bound it ran past."""
        return (
            f"hung: a call of the test body was still running"
            f" {self.limit_s + self.grace_s:.3g} s into the {self.phase} phase, whose bound is"
            f" {self.limit_s:.3g} s (grace max({GRACE_MIN_S:g} s, {GRACE_FRACTION:.0%}))"
        )

    def summary(self) -> str:
        """One line: the check that hung, and why."""
        return f"{self.what}: {self.reason()}"


class MeasurementHung(BaseException):
    """Raised in the measuring thread once the watchdog's deadline passed inside a call.

    A BaseException, like KeyboardInterrupt: neither a workload's ``except Exception``
    nor the soak, which counts the workload's exceptions as errors, may swallow it.
    """

    def __init__(self, report: HangReport | None = None) -> None:
        super().__init__(report.summary() if report is not None else "measurement hung")
        self.report = report


class Watchdog:
    """A thread that interrupts the measuring thread when an armed phase overruns.

    Use as a context manager around the measurement, in the thread that measures;
    :meth:`arm` starts each phase.  On exit the thread stops; an interrupt that
    landed leaves as :class:`MeasurementHung` carrying the report.
    """

    def __init__(
        self,
        what: str,
        *,
        on_stuck: StuckHandler | None = None,
        clock: Clock = time.monotonic,
        interrupt: Callable[[int], None] | None = None,
        stuck_grace_s: float = STUCK_GRACE_S,
    ) -> None:
        self.what = what
        self.target = threading.get_ident()
        self._on_stuck = on_stuck
        self._clock = clock
        self._interrupt = interrupt
        self._stuck_grace_s = stuck_grace_s
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._phase = ""
        self._limit_s = 0.0
        self._deadline: float | None = None
        self._fired: HangReport | None = None
        self._fired_at = 0.0
        self._closed = False
        self._thread: threading.Thread | None = None
        self._signalled = False  # our handler is installed for WAKE_SIGNAL
        self._raised = False  # the handler raises once, however often the signal comes
        self._previous_handler: object = None
        self._owner: FrameType | None = None  # the frame that entered the watch

    @property
    def fired(self) -> HangReport | None:
        """The report of the interrupt sent, or None while nothing overran."""
        return self._fired

    def arm(self, phase: str, limit_s: float) -> None:
        """Start *phase*, bounded by *limit_s* seconds (the grace comes on top)."""
        with self._lock:
            self._phase, self._limit_s = phase, float(limit_s)
            self._deadline = self._clock() + limit_s + grace_s(limit_s)
        self._wake.set()

    def tick(self) -> float | None:
        """One look: interrupt past the deadline, report the call stuck past the grace.

        Returns the seconds until the next look is due; None once nothing is left to do.
        """
        now = self._clock()
        with self._lock:
            if self._closed:
                return None
            if self._fired is None:
                return self._check_deadline(now)
            if now < self._fired_at + self._stuck_grace_s:
                return self._fired_at + self._stuck_grace_s - now
            if not self._still_inside():
                return None  # the interrupt landed as the block ended: nothing is stuck
            report = replace(self._fired, stack=self._stack())
        if self._on_stuck is not None:
            self._on_stuck(report)
        return None

    def _still_inside(self) -> bool:
        """Whether the measuring thread is still in the watched block (a call in it)."""
        if self._owner is None:
            return True  # driven by tick() alone (the tests): no block to leave
        frame = sys._current_frames().get(self.target)
        while frame is not None:
            if frame is self._owner:
                return True
            frame = frame.f_back
        return False

    def _check_deadline(self, now: float) -> float:
        """Under the lock: the wait until the deadline, or send the interrupt now."""
        if self._deadline is None:
            return IDLE_WAIT_S
        if now < self._deadline:
            return self._deadline - now
        self._fired = HangReport(
            self.what, self._phase, self._limit_s, grace_s(self._limit_s), self._stack()
        )
        self._fired_at = now
        # Under the lock, so that no interrupt is sent once __exit__ closed the watch.
        (self._interrupt or self._default_interrupt)(self.target)
        return self._stuck_grace_s

    def _stack(self) -> str:
        frame = sys._current_frames().get(self.target)
        return user_stack(frame) if frame is not None else "  (the thread is gone)\n"

    # ----------------------------------------------------------------- the thread

    def __enter__(self) -> Watchdog:
        self.target = threading.get_ident()
        self._owner = sys._getframe(1)
        self._install_handler()
        self._thread = threading.Thread(target=self._watch, name="deploycheck-watchdog")
        self._thread.daemon = True
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with self._lock:
            self._closed = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        self._restore_handler()
        self._owner = None
        if isinstance(error, MeasurementHung) and error.report is None and self._fired:
            # The asynchronous exception is raised as a bare class: give it the report.
            raise MeasurementHung(self._fired) from None

    def _watch(self) -> None:
        while True:
            self._wake.clear()
            wait = self.tick()
            if wait is None:
                return
            self._wake.wait(timeout=max(wait, 0.0))

    # ----------------------------------------------------------------- interrupting

    def _install_handler(self) -> None:
        """The signal handler, where signals reach this thread (the main thread, POSIX)."""
        if WAKE_SIGNAL is None or threading.current_thread() is not threading.main_thread():
            return
        self._previous_handler = signal.signal(WAKE_SIGNAL, self._on_signal)
        self._signalled = True

    def _restore_handler(self) -> None:
        if WAKE_SIGNAL is not None and self._signalled:
            # None: a handler installed outside Python; the default is the closest.
            previous: Any = self._previous_handler
            signal.signal(WAKE_SIGNAL, signal.SIG_DFL if previous is None else previous)
            self._signalled = False

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._fired is not None and not self._closed and not self._raised:
            self._raised = True
            raise MeasurementHung(self._fired)
        previous = self._previous_handler
        if callable(previous):
            previous(signum, frame)

    def _default_interrupt(self, ident: int) -> None:
        if self._signalled and WAKE_SIGNAL is not None:
            signal.pthread_kill(ident, WAKE_SIGNAL)
        else:
            raise_in_thread(ident, MeasurementHung)


def raise_in_thread(ident: int, exception: type[BaseException]) -> bool:
    """Raise *exception* in thread *ident* at its next Python instruction (CPython)."""
    import ctypes

    api = getattr(ctypes, "pythonapi", None)
    if api is None:
        return False
    done = api.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(exception))
    return bool(done == 1)


def user_stack(frame: FrameType) -> str:
    """The stack below the measuring loop (the test body and what it called), formatted."""
    frames = traceback.extract_stack(frame)
    loops = [i for i, entry in enumerate(frames) if entry.filename.endswith(_LOOP_FILES)]
    if loops:
        below = frames[loops[-1] + 1 :]
        while len(below) > 1 and _PACKAGE in Path(below[0].filename).parts:
            below = below[1:]  # the session's wrapper that calls the body
        frames = traceback.StackSummary.from_list(below)
    shown = traceback.StackSummary.from_list(frames[-STACK_FRAMES:])
    return "".join(shown.format())
