"""CPU pinning to the target's core count, and estimated device latency."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator

import psutil
import pytest

from pytest_deploycheck.measure import pinning as emulation
from pytest_deploycheck.measure.pinning import Pinning, latency_estimate_ms, pinned_to_cpus

needs_affinity = pytest.mark.skipif(
    not hasattr(psutil.Process, "cpu_affinity"), reason="psutil has no cpu_affinity here"
)
linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="per-thread affinity is Linux-only"
)


def affinity() -> list[int]:
    cpus: list[int] = psutil.Process().cpu_affinity()
    return sorted(cpus)


@pytest.fixture
def idle_thread() -> Iterator[threading.Thread]:
    """A thread started before pinning, like onnxruntime's thread pool."""
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    yield thread
    stop.set()
    thread.join()


def test_none_pins_nothing() -> None:
    with pinned_to_cpus(None) as pinning:
        assert pinning == Pinning(requested=None, applied=None, note="")


@needs_affinity
def test_pins_to_the_first_usable_cpu_and_restores() -> None:
    before = affinity()
    with pinned_to_cpus(1) as pinning:
        assert affinity() == before[:1]
        assert pinning.applied == before[:1]
        assert pinning.requested == 1
        assert pinning.note.startswith("pinned to 1 CPU")
    assert affinity() == before


@needs_affinity
def test_restores_affinity_after_an_exception() -> None:
    before = affinity()
    with pytest.raises(RuntimeError, match="boom"), pinned_to_cpus(1):
        raise RuntimeError("boom")
    assert affinity() == before


@needs_affinity
def test_more_cpus_than_the_host_has_is_said_in_the_note() -> None:
    usable = len(affinity())
    with pinned_to_cpus(usable + 2) as pinning:
        assert pinning.applied == affinity()
    assert pinning.note == (
        f"measured on {usable} of the target's {usable + 2} cores: an upper bound for its latency"
    )


@linux_only
def test_a_faked_two_core_host_pins_two_of_four(monkeypatch: pytest.MonkeyPatch) -> None:
    """The host's cores are read in one place: a test fakes the host there."""
    real = affinity()
    fake = real[:1] * 2 if len(real) < 2 else real[:2]
    monkeypatch.setattr(emulation, "usable_cpus", lambda: sorted(set(fake)))
    with pinned_to_cpus(4) as pinning:
        assert pinning.applied == sorted(set(fake))
    used = len(set(fake))
    assert pinning.caveat(estimated=False) == (
        f"measured on {used} of the target's 4 cores: an upper bound for its latency"
    )
    assert pinning.caveat(estimated=True) == (
        f"measured on {used} of the target's 4 cores, then scaled by the latency_factor:"
        " an estimate"
    )
    assert emulation.cores_used(4) == used


@pytest.mark.parametrize(
    ("target", "host", "cores"), [(4, 2, 2), (2, 2, 2), (2, 16, 2), (1, 1, 1), (None, 2, None)]
)
def test_cores_used_are_the_targets_at_most_the_hosts(
    target: int | None, host: int, cores: int | None
) -> None:
    assert emulation.cores_used(target, host) == cores


def test_a_full_pinning_has_no_caveat() -> None:
    pinning = Pinning(2, [0, 1], "pinned to 2 CPUs (0, 1) of 4 usable, as on the target")
    assert pinning.caveat(estimated=False) == pinning.caveat(estimated=True) == ""
    assert Pinning(None, None, "").caveat(estimated=False) == ""


@linux_only
def test_threads_started_before_pinning_are_pinned_too(idle_thread: threading.Thread) -> None:
    tid = idle_thread.native_id
    assert tid is not None
    before = os.sched_getaffinity(tid)
    with pinned_to_cpus(1) as pinning:
        assert os.sched_getaffinity(tid) == set(pinning.applied or ())
    assert os.sched_getaffinity(tid) == before


def test_unsupported_platform_runs_unpinned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(emulation, "_affinity_backend", lambda: None)
    with pinned_to_cpus(2) as pinning:
        assert pinning == Pinning(
            2, None, "CPU affinity is not supported on this platform: not pinned"
        )


@linux_only
def test_a_refused_affinity_runs_unpinned(monkeypatch: pytest.MonkeyPatch) -> None:
    before = os.sched_getaffinity(0)

    def refuse(pid: int, cpus: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setaffinity", refuse)
    with pinned_to_cpus(1) as pinning:
        assert pinning.applied is None
        assert pinning.note.startswith("cannot set CPU affinity (")
        assert pinning.note.endswith("): not pinned")
    assert os.sched_getaffinity(0) == before


@pytest.mark.parametrize("count", [0, -1, 1.5, True, "2"])
def test_invalid_counts_are_rejected(count: object) -> None:
    with (
        pytest.raises(ValueError, match="count must be a whole number >= 1"),
        pinned_to_cpus(count),  # type: ignore[arg-type]
    ):
        pass


def test_latency_estimate_scales_the_host_figure() -> None:
    assert latency_estimate_ms(10.0, 2.5) == 25.0
    assert latency_estimate_ms(10.0, None) is None


def test_latency_estimate_tells_callers_to_label_it() -> None:
    assert "estimated" in (latency_estimate_ms.__doc__ or "")


@pytest.mark.parametrize(("host_ms", "factor"), [(10.0, 0.0), (10.0, -1.0), (-1.0, 2.0)])
def test_latency_estimate_rejects_nonsense(host_ms: float, factor: float) -> None:
    with pytest.raises(ValueError):
        latency_estimate_ms(host_ms, factor)


@needs_affinity
def test_process_wide_backend_pins_and_restores(monkeypatch: pytest.MonkeyPatch) -> None:
    # the backend used where per-thread affinity is not available (Windows, FreeBSD)
    monkeypatch.setattr(emulation, "_affinity_backend", lambda: emulation._PsutilProcess)
    before = affinity()
    with pinned_to_cpus(1) as pinning:
        assert affinity() == before[:1] == pinning.applied
    assert affinity() == before
