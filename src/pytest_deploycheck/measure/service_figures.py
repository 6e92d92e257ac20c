"""The memory and the cold start of the user's own service, for memory_under and cold_start_under.

A test that talks to a service over HTTP spends its memory in the service, not in the
test process, so the figure judged is the resident memory of the service's process
tree (the service and its children: a worker pool counts), sampled from this process
while the test body runs.  A measuring child (what memory_under uses for in-process
workloads) would start a service of its own and measure itself.

A service's cold start is process start to its first 2xx ``ready`` answer: each run
starts the service fresh on a new port and stops it, whole process group, before the
next.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config.services import ServiceSpec, toml_key
from .coldstart import ColdStartResult, ColdStartRun
from .memory import MB
from .service import RunningService, start_service

SAMPLE_INTERVAL_S = 0.01
Services = Callable[[], Sequence[RunningService]]


@dataclass(frozen=True)
class ServiceMemory:
    """The peak resident memory of one or more services' process trees, in MB (10^6 bytes)."""

    footprint_mb: float
    names: tuple[str, ...]
    processes: int
    samples: int
    interval_s: float
    repeat: int

    @property
    def label(self) -> str:
        """``peak RSS of service api's process tree (3 processes), sampled every 10 ms``."""
        names = " + ".join(toml_key(n) for n in self.names)
        whose = f"service {names}'s" if len(self.names) == 1 else f"services {names}'"
        noun = "process" if self.processes == 1 else "processes"
        return (
            f"peak RSS of {whose} process tree ({self.processes} {noun}),"
            f" sampled every {self.interval_s * 1000:g} ms"
        )

    def display(self) -> str:
        return f"peak {self.footprint_mb:.1f} MB ({self.label}; {self.repeat} calls)"

    def as_extra(self) -> dict[str, Any]:
        return {
            "footprint_mb": round(self.footprint_mb, 3),
            "services": list(self.names),
            "processes": self.processes,
            "samples": self.samples,
            "sample_interval_s": self.interval_s,
            "repeat": self.repeat,
            "method": "peak RSS of the service's process tree, sampled while the test body ran",
        }


class _Sampler:
    """The highest summed RSS of the services' trees seen so far, read on a thread."""

    def __init__(self, services: Services, interval_s: float) -> None:
        self.services = services
        self.interval_s = interval_s
        self.peak_bytes = 0
        self.processes = 0
        self.samples = 0
        self.names: dict[str, None] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="deploycheck-service-rss")

    def sample(self) -> None:
        running = list(self.services())
        total = sum(service.rss_bytes() for service in running)
        processes = sum(len(service.pids()) for service in running)
        with self._lock:
            self.samples += 1
            self.names.update(dict.fromkeys(service.name for service in running))
            if total > self.peak_bytes:
                self.peak_bytes = total
            self.processes = max(self.processes, processes)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def __enter__(self) -> _Sampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def sample_service_memory(
    workload: Callable[[], object],
    services: Services,
    *,
    repeat: int,
    interval_s: float = SAMPLE_INTERVAL_S,
) -> ServiceMemory:
    """Run *workload* *repeat* times while sampling the RSS of ``services()``' trees.

    *services* is asked at every sample, so a service the body looks up during the
    first call is measured from then on.  A sample also follows every call, so a body
    quicker than the interval is still seen.
    """
    with _Sampler(services, interval_s) as sampler:
        for _ in range(repeat):
            workload()
            sampler.sample()
    return ServiceMemory(
        footprint_mb=sampler.peak_bytes / MB,
        names=tuple(sampler.names),
        processes=sampler.processes,
        samples=sampler.samples,
        interval_s=interval_s,
        repeat=repeat,
    )


def measure_service_cold_start(
    spec: ServiceSpec, *, project_dir: Path, runs: int, clock: Callable[[], float] | None = None
) -> ColdStartResult:
    """Start *spec* fresh *runs* times: process start to first 2xx ready answer, each run.

    Each run's memory is the service tree's RSS at its first ready answer.  Raises
    :class:`.service.ServiceError` (one line, with the stderr tail) when a start fails.
    """
    measured = []
    for _ in range(runs):
        service = start_service(spec, project_dir=project_dir, clock=clock or time.perf_counter)
        with service:
            measured.append(_run_of(service))
    note = f"service {toml_key(spec.name)}: process start to the first 2xx answer of {spec.ready}"
    return ColdStartResult.from_runs(tuple(measured), cache_note=note)


def _run_of(service: RunningService) -> ColdStartRun:
    return ColdStartRun(
        total_ms=service.cold_start_ms,
        import_ms=0.0,
        session_ms=0.0,
        first_inference_ms=0.0,
        rss_mb=service.rss_bytes() / MB,
    )


def service_cold_start_display(name: str, result: ColdStartResult) -> str:
    """``cold start p50 412 ms of service api (n=3; min 398, max 455), 41.0 MB at ready``."""
    memory = "" if result.rss_p50_mb is None else f", {result.rss_p50_mb:.1f} MB at ready"
    return (
        f"cold start p50 {result.p50_ms:.0f} ms of service {toml_key(name)} (n={result.n};"
        f" min {result.min_ms:.0f}, max {result.max_ms:.0f}; process start to first ready"
        f" answer){memory}"
    )
