"""Checks of the target's emulation on the host: an OOM kill in the limited group.

An OOM kill at the target's enforced memory limit is the memory check's answer -- the
device's kernel would have killed the workload there -- so it is a failed
``memory_under`` check, not a broken measurement.  Where the limits could not be
enforced, the memory checks carry a note saying so and why (session.py); everything
else runs as pinned.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..markers import BudgetRequest
from ..measure.memory import OomKilled
from . import metrics
from .record import Check


def oom_check(request: BudgetRequest, killed: OomKilled, models: Sequence[str] = ()) -> Check:
    """The failed memory check of a workload the OOM killer ended at the target's limit."""
    line = str(killed)
    return Check(
        name=f"memory_under_{request.budget:g}",
        metric=metrics.PEAK_MEMORY,
        value=killed.peak_mb,
        unit="MB",
        budget=request.budget,
        passed=False,
        provenance="measured",
        details=line,
        extra={"oom_killed": True, "cgroup_peak_mb": killed.peak_mb, "enforced": killed.enforced},
        display=line,
        models=tuple(models),
    )
