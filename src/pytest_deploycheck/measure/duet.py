"""Paired A/B ("duet") timing: the baseline's model and the candidate's, interleaved.

A gate that compares this run with a saved run compares two moments of a shared host
whose speed moves by 25% within minutes.  When the release's model file is still on
disk, there is a better comparison: time both models in the same run, in alternating
blocks of calls of the same test body, so that whatever the host does lands on both
arms alike.  Each round is one block of each model, their order alternating (A B, then
B A) so that a host slowing down steadily does not favour the arm that runs first; a
round gives one ratio, candidate median call / baseline median call.  The judged figure
is the median of the rounds' ratios, and the rounds are the unit of the tests: a sign
test on how many rounds were slower, and an order-statistic interval of the median
ratio, both of which stay valid however the calls inside a block are correlated.

The arms are switched by the caller (``use(arm)``: a context manager that makes the
workload run the baseline's model or the candidate's), so this module knows nothing of
models or sessions.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal

from .stats import binom_sf, percentile_ci

Arm = Literal["baseline", "candidate"]
Clock = Callable[[], int]
UseArm = Callable[[Arm], AbstractContextManager[object]]

# Rounds of one block per arm.  16 rounds let the sign test reach p = 1.5e-5 when every
# round agrees, well below the gate's 0.01, and leave room for a few noisy rounds.
DUET_ROUNDS = 16
# A block lasts about this long, so that a burst on the host moves one block, not a run.
DUET_BLOCK_NS = 25_000_000
MIN_BLOCK_CALLS = 3
MAX_BLOCK_CALLS = 500
DUET_CONFIDENCE = 0.98


def block_calls_for(median_call_ns: float) -> int:
    """Calls per block: about :data:`DUET_BLOCK_NS` of the measured median call, bounded."""
    if not math.isfinite(median_call_ns) or median_call_ns <= 0:
        return MIN_BLOCK_CALLS
    return max(MIN_BLOCK_CALLS, min(MAX_BLOCK_CALLS, math.ceil(DUET_BLOCK_NS / median_call_ns)))


@dataclass(frozen=True)
class DuetResult:
    """The rounds of one duet and what they say; ratios are candidate / baseline."""

    rounds: tuple[tuple[float, float], ...]  # (baseline, candidate) median call ns per round
    block_calls: int
    models: tuple[str, ...] = ()

    @property
    def ratios(self) -> tuple[float, ...]:
        return tuple(cand / base for base, cand in self.rounds if base > 0)

    @property
    def ratio(self) -> float:
        """The median round's candidate / baseline ratio of median calls."""
        return statistics.median(self.ratios) if self.ratios else math.nan

    @property
    def p_slower(self) -> float:
        """One-sided sign test: P(at least this many slower rounds | no difference)."""
        return _sign_p(sum(r > 1.0 for r in self.ratios), len(self.ratios))

    @property
    def p_faster(self) -> float:
        return _sign_p(sum(r < 1.0 for r in self.ratios), len(self.ratios))

    def ratio_ci(self, confidence: float = DUET_CONFIDENCE) -> tuple[float, float]:
        """A distribution-free interval of the median ratio (infinite sides if too few)."""
        if not self.ratios:
            return (-math.inf, math.inf)
        return percentile_ci(list(self.ratios), 50.0, confidence)

    def as_extra(self) -> dict[str, Any]:
        """The check's ``extra["duet"]``: plain JSON, re-judged by the regression gate."""
        low, high = self.ratio_ci()
        return {
            "rounds": [[base, cand] for base, cand in self.rounds],
            "block_calls": self.block_calls,
            "ratio": _finite(self.ratio),
            "ratio_ci": [_finite(low), _finite(high)],
            "ci_confidence": DUET_CONFIDENCE,
            "p_slower": self.p_slower,
            "p_faster": self.p_faster,
            "models": list(self.models),
        }


def _sign_p(successes: int, n: int) -> float:
    return 1.0 if n == 0 else binom_sf(successes, n, 0.5)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def run_duet(
    workload: Callable[[], object],
    use: UseArm,
    *,
    block_calls: int,
    rounds: int = DUET_ROUNDS,
    models: tuple[str, ...] = (),
    clock: Clock = time.perf_counter_ns,
) -> DuetResult:
    """Time *workload* in *rounds* rounds of one block per arm, the order alternating.

    Each arm runs one untimed call first, so that the switch itself (a cold cache, the
    other session's first call) is not in its block.  Errors propagate: a model that
    fails on the baseline's arm is the caller's to report.
    """
    measured: list[tuple[float, float]] = []
    for index in range(rounds):
        order: tuple[Arm, Arm] = (
            ("baseline", "candidate") if index % 2 == 0 else ("candidate", "baseline")
        )
        medians = {arm: _block(workload, use, arm, block_calls, clock) for arm in order}
        measured.append((medians["baseline"], medians["candidate"]))
    return DuetResult(rounds=tuple(measured), block_calls=block_calls, models=models)


def _block(
    workload: Callable[[], object], use: UseArm, arm: Arm, calls: int, clock: Clock
) -> float:
    """The median call of one block of *calls* calls on *arm*, in nanoseconds."""
    with use(arm):
        workload()
        timings = []
        for _ in range(calls):
            start = clock()
            workload()
            timings.append(clock() - start)
    return float(statistics.median(timings))
