"""Target emulation on the host, honest about what it cannot do.

The host is not the device.  What can be emulated is emulated -- the device's CPU
count, by pinning the process to that many of the host's CPUs -- and every gap is
said in a note that travels with the figure: fewer host CPUs than the target has, a
platform without CPU affinity.  Device latency is only ever *estimated* from the
host's with a calibration factor.  A session gets as many intra-op threads as the
cores a measurement is pinned to (:func:`cores_used`), never more threads than cores.

Pinning covers every thread of the process, not only the calling one: onnxruntime's
thread pool is created when a model is loaded, usually before the measurement pins
anything, and on Linux a thread's affinity is its own.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

CpuSet = set[int]
UNSUPPORTED_NOTE = "CPU affinity is not supported on this platform: not pinned"
OFF_NOTE = "emulation is off (--deploy-emulate=off): not pinned"
_off = False


def set_pinning_off(off: bool) -> bool:
    """Make every later pinned block run unpinned (``--deploy-emulate=off``); the old state."""
    global _off
    before, _off = _off, off
    return before


@dataclass(frozen=True)
class Pinning:
    """What a pinned block asked for, what it got, and the caveat to report with it.

    ``applied`` is the list of CPU ids the process ran on, or None when it was not
    pinned; ``note`` is empty only when nothing was requested.
    """

    requested: int | None
    applied: list[int] | None
    note: str

    @property
    def shortfall(self) -> str:
        """The note when the block ran on fewer CPUs than asked for, or unpinned; else ""."""
        if self.requested is None:
            return ""
        short = self.applied is None or len(self.applied) < self.requested
        return self.note if short else ""

    def caveat(self, *, estimated: bool) -> str:
        """The shortfall said for a latency figure: a bound when measured, else scaled.

        Fewer cores than the target has can only make a call slower, so a measured
        figure is an upper bound; an estimated one was scaled by the latency_factor.
        """
        if self.requested is None or self.applied is None:
            return self.shortfall
        if len(self.applied) >= self.requested:
            return ""
        if not estimated:
            return self.note
        cores = _cores_text(len(self.applied), self.requested)
        return f"{cores}, then scaled by the latency_factor: an estimate"


@contextmanager
def pinned_to_cpus(count: int | None) -> Iterator[Pinning]:
    """Run the block on *count* of the CPUs this process may use, then restore.

    The lowest-numbered usable CPUs are chosen.  With fewer usable CPUs than *count*
    the block runs on all of them and the note says so; where affinity cannot be set
    the block runs unpinned and the note says that.  ``None`` pins nothing.  The
    previous affinity of every thread is restored on exit, exceptions included.
    """
    if count is None:
        yield Pinning(None, None, "")
        return
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"pinned_to_cpus: count must be a whole number >= 1, got {count!r}")
    if _off:
        yield Pinning(count, None, OFF_NOTE)
        return
    backend = _affinity_backend()
    if backend is None:
        yield Pinning(count, None, UNSUPPORTED_NOTE)
        return
    with backend(count) as pinning:
        yield pinning


def _affinity_backend() -> Callable[[int], _PinContext] | None:
    """Per-thread pinning on Linux, process-wide through psutil elsewhere, else None."""
    if hasattr(os, "sched_setaffinity") and sys.platform.startswith("linux"):
        return _LinuxThreads
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is a dependency
        return None
    if not hasattr(psutil.Process, "cpu_affinity"):
        return None
    return _PsutilProcess


class _PinContext:
    """Base of the affinity backends: choose CPUs, pin, and always restore."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.saved: dict[int, CpuSet] = {}

    def __enter__(self) -> Pinning:
        try:
            usable = sorted(self.usable())
        except OSError as exc:
            return Pinning(self.count, None, f"cannot read CPU affinity ({exc}): not pinned")
        chosen = usable[: self.count]
        try:
            self.pin(set(chosen))
        except OSError as exc:
            self.restore()
            return Pinning(self.count, None, f"cannot set CPU affinity ({exc}): not pinned")
        return Pinning(self.count, chosen, _note(self.count, usable, chosen))

    def __exit__(self, *exc_info: object) -> None:
        self.restore()

    def usable(self) -> Sequence[int]:
        raise NotImplementedError

    def pin(self, cpus: CpuSet) -> None:
        raise NotImplementedError

    def restore(self) -> None:
        raise NotImplementedError


class _LinuxThreads(_PinContext):
    """Sets the affinity of each thread (task) of the process, and restores each."""

    def usable(self) -> Sequence[int]:
        return usable_cpus()

    def pin(self, cpus: CpuSet) -> None:
        main = os.sched_getaffinity(0)
        for tid in _thread_ids():
            try:
                self.saved[tid] = set(os.sched_getaffinity(tid))
                os.sched_setaffinity(tid, cpus)
            except ProcessLookupError:
                continue  # the thread ended in between
        self.saved.setdefault(0, set(main))

    def restore(self) -> None:
        default = self.saved.get(0) or os.sched_getaffinity(0)
        for tid in _thread_ids():
            try:
                # threads started inside the block inherited the pinned set
                os.sched_setaffinity(tid, self.saved.get(tid, default))
            except OSError:
                continue  # ended, or refused: restore the other threads regardless
        self.saved.clear()


class _PsutilProcess(_PinContext):
    """Process-wide affinity through psutil (Windows, FreeBSD): covers all threads."""

    def usable(self) -> Sequence[int]:
        return _psutil_affinity()

    def pin(self, cpus: CpuSet) -> None:
        self.saved[0] = set(_psutil_affinity())
        _psutil_affinity(sorted(cpus))

    def restore(self) -> None:
        if 0 in self.saved:
            _psutil_affinity(sorted(self.saved.pop(0)))


def _psutil_affinity(cpus: list[int] | None = None) -> list[int]:
    """Get (or set) the process's CPUs; psutil's own errors become OSError."""
    import psutil

    try:
        if cpus is not None:
            psutil.Process().cpu_affinity(cpus)
        current: list[int] = psutil.Process().cpu_affinity()
    except psutil.Error as exc:
        raise OSError(str(exc)) from exc
    return current


def usable_cpus() -> list[int]:
    """The CPU ids this process may run on (its affinity), lowest first.

    The one place the host's cores are read, so that a test can fake the host.
    Without affinity support, all CPUs the OS counts.
    """
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    try:
        return sorted(_psutil_affinity())
    except (OSError, ImportError, AttributeError):
        return list(range(os.cpu_count() or 1))


def cores_used(target_cpus: int | None, host_cpus: int | None = None) -> int | None:
    """The cores a measurement for *target_cpus* runs on: the target's, at most the host's.

    The session's intra-op threads are this number too: more threads than cores would
    queue on the cores and measure the contention, not the model.  None: no target.
    """
    if target_cpus is None:
        return None
    host = len(usable_cpus()) if host_cpus is None else host_cpus
    return max(1, min(target_cpus, host))


def _thread_ids() -> list[int]:
    try:
        return [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        return [0]


def _note(count: int, usable: Sequence[int], chosen: Sequence[int]) -> str:
    if len(usable) < count:
        return f"{_cores_text(len(usable), count)}: an upper bound for its latency"
    listing = ", ".join(str(cpu) for cpu in chosen)
    plural = "CPU" if count == 1 else "CPUs"
    return f"pinned to {count} {plural} ({listing}) of {len(usable)} usable, as on the target"


def _cores_text(used: int, target: int) -> str:
    return f"measured on {used} of the target's {target} cores"


def latency_estimate_ms(host_ms: float, factor: float | None) -> float | None:
    """The device latency *estimated* from a host measurement: ``host_ms * factor``.

    The result is a scaled figure, not a measurement: every caller must label it
    "estimated" (and show the host figure and the factor beside it).  None when the
    device has no calibration factor -- then there is nothing to estimate from.
    """
    if factor is None:
        return None
    if not factor > 0:
        raise ValueError(f"latency_factor must be a number > 0, got {factor!r}")
    if not host_ms >= 0:
        raise ValueError(f"host latency must be a number >= 0 ms, got {host_ms!r}")
    return host_ms * factor
