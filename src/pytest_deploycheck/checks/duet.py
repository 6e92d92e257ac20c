"""The paired A/B comparison of a timed check: the release's model beside the candidate's.

When a test's model changed since the saved baseline and the release's file is still on
disk (the baseline records its path and SHA-256), the latency or throughput check also
times the same test body on both models in alternating blocks (:mod:`..measure.duet`),
right after its own measurement and under the same host lock and core pinning.  The
regression gate then judges that pair instead of this run against the saved one: the
host's drift lands on both arms alike and cancels.

The pair is looked for by the session (:class:`DuetPlan` is what it found); this module
runs it and records it in ``extra["duet"]`` (see :mod:`.metrics`).
"""

from __future__ import annotations

import contextlib
import statistics
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ..config.schema import Device
from . import metrics
from .record import Check

if TYPE_CHECKING:
    from ..measure.duet import Arm
    from ..measure.runtime import DeployModel


@dataclass(frozen=True)
class DuetPair:
    """A model the test runs (as loaded for it) and the release's file of it."""

    name: str
    candidate: DeployModel
    release: DeployModel
    release_file: str  # as the baseline records it
    release_sha256: str


@dataclass(frozen=True)
class DuetPlan:
    """What to pair for one test: the models to swap, or why none can be."""

    pairs: tuple[DuetPair, ...] = ()
    skipped: tuple[str, ...] = field(default=())

    def use(self, arm: Arm) -> contextlib.AbstractContextManager[object]:
        """A context in which the test's models are the release's (baseline) or its own."""
        return self._swapped() if arm == "baseline" else contextlib.nullcontext()

    @contextlib.contextmanager
    def _swapped(self) -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            for pair in self.pairs:
                stack.enter_context(pair.candidate.standing_in(pair.release))
            yield


def with_duet(
    check: Check,
    workload: Callable[[], object],
    plan: DuetPlan | None,
    device: Device | None,
) -> Check:
    """*check* with ``extra["duet"]``: the pair timed now, or why it was not."""
    if plan is None or check.value is None:
        return check
    if not plan.pairs:
        return _with(check, {"skipped": "; ".join(plan.skipped)}) if plan.skipped else check
    samples = check.extra.get("samples_ns")
    if not samples:
        return check
    try:
        duet = _timed(workload, plan, device, statistics.median(samples))
    except Exception as exc:  # the release's model failed on this body: say so, gate as before
        return _with(check, {"error": f"{type(exc).__name__}: {exc}".splitlines()[0]})
    return _with(check, duet)


def _timed(
    workload: Callable[[], object], plan: DuetPlan, device: Device | None, median_ns: float
) -> dict[str, Any]:
    from ..measure.duet import block_calls_for, run_duet
    from ..measure.pinning import pinned_to_cpus

    names = tuple(pair.name for pair in plan.pairs)
    with pinned_to_cpus(device.cpus if device else None):
        result = run_duet(workload, plan.use, block_calls=block_calls_for(median_ns), models=names)
    extra = result.as_extra()
    extra["release_files"] = {
        pair.name: {"path": pair.release_file, "sha256": pair.release_sha256} for pair in plan.pairs
    }
    if plan.skipped:
        extra["skipped"] = "; ".join(plan.skipped)
    return extra


def _with(check: Check, duet: dict[str, Any]) -> Check:
    return replace(check, extra={**check.extra, metrics.DUET_KEY: duet})
