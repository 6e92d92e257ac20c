"""What a soak costs and what it can see: harness overhead, its own growth, detection.

What it does
    1. Overhead: calls per second of the small model inside ``run_soak`` against a bare
       ``while`` loop around the same ``session.run`` for the same time, interleaved,
       5 rounds of 10 s each.
    2. The harness's own growth: ``run_soak`` of a workload that allocates nothing
       (``sum(range(50))``) for 60 s; the fitted growth and the range of the RSS
       samples after the warm-up.
    3. Detection: the small model plus a deliberate leak of 1 MB per minute (a 1 KiB
       buffer kept every 1/17.07 s of calls), soaked for 2 and 5 minutes; and the same
       model without the leak, soaked for 5 minutes, as a control.

Goals
    overhead within 2% of the bare loop's calls per second; harness growth 0 MB after
    the warm-up; the 1 MB/min leak fails at 2 and 5 minutes; the control passes.

Run
    . .venv/bin/activate && python benchmarks/bench_soak.py     # about 14 minutes
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import SMALL, build_model
from _workload import make_feeds, open_session

from pytest_deploycheck.measure.soak import SoakPolicy, judge_soak, run_soak

ROUND_S = 10.0
ROUNDS = 5


def bare_calls_per_s(call, seconds: float) -> float:
    calls = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        call()
        calls += 1
    return calls / (time.perf_counter() - started)


def soak_calls_per_s(call, seconds: float) -> float:
    run = run_soak(call, SoakPolicy(duration_s=seconds))
    return run.calls / run.elapsed_s


def leaking(call, mb_per_minute: float):
    """*call* plus a kept 1 KiB buffer whenever the clock says one is due."""
    kept: list[bytearray] = []
    every_s = 60.0 / (mb_per_minute * 1e6 / 1024)
    started = time.perf_counter()

    def workload() -> None:
        call()
        due = int((time.perf_counter() - started) / every_s)
        while len(kept) < due:
            kept.append(bytearray(1024))

    return workload, kept


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        session = open_session(build_model(SMALL, Path(tmp)))
        feeds = make_feeds(session)

        def call() -> object:
            return session.run(None, feeds)

        for _ in range(2000):
            call()
        bare, soaked = [], []
        for _ in range(ROUNDS):
            bare.append(bare_calls_per_s(call, ROUND_S))
            soaked.append(soak_calls_per_s(call, ROUND_S))
        overhead = statistics.median(soaked) / statistics.median(bare) - 1
        print(f"bare loop   calls/s per round: {[round(x) for x in bare]}")
        print(f"run_soak    calls/s per round: {[round(x) for x in soaked]}")
        verdict = "met" if abs(overhead) <= 0.02 else "MISSED"
        print(f"goal overhead within 2% of the bare loop: {verdict} ({overhead:+.1%})")

        policy = SoakPolicy(duration_s=60.0)
        run = run_soak(lambda: sum(range(50)), policy)
        result = judge_soak(run, policy)
        rss = run.series.column("rss_mb")[run.series.column("t_s") >= result.warmup_s]
        span = float(rss.max() - rss.min())
        print(f"harness alone, 60 s: {result.display()}; RSS range after warm-up {span:.3f} MB")
        print(f"goal harness growth 0 MB after the warm-up: {'met' if span == 0 else 'MISSED'}")

        for minutes, leak in ((2, 1.0), (5, 1.0), (5, 0.0)):
            policy = SoakPolicy(duration_s=minutes * 60.0)
            workload, kept = leaking(call, leak) if leak else (call, [])
            result = judge_soak(run_soak(workload, policy), policy)
            kept.clear()
            expected = not leak
            status = {True: "PASS", False: "FAIL", None: "INCONCLUSIVE"}[result.passed]
            print(f"{minutes} min soak, leak {leak:g} MB/min: {status} {result.display()}")
            if result.problems:
                print(f"  problems: {'; '.join(result.problems)}")
            if result.notes:
                print(f"  notes: {'; '.join(result.notes)}")
            goal = "fails" if leak else "passes"
            met = "met" if result.passed is expected else "MISSED"
            print(f"goal {minutes} min, {leak:g} MB/min leak {goal}: {met}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
