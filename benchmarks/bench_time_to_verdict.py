"""Time to a verdict: how soon does ``latency_under`` settle a budget that is far away?

What it measures
    The wall time until a latency verdict for the ~100 us model when the budget is far
    above the latency (100 x the p95 measured by a bare loop first), with the default
    policy (p95, confidence 0.99 per look, 10 warm-up calls, first look at 130 samples).
    Compared with:

    (a) a fixed 1000-iteration timing loop (``perf_counter_ns`` around each
        ``session.run``, then the p95 of the 1000 samples): what a hand-written
        acceptance check does;
    (b) pytest-benchmark's default run of the same workload (a generated test that
        calls ``benchmark(SESSION.run, None, FEEDS)``).

    Two views:

    - in process: ``measure_latency(workload, budget, SamplingPolicy())`` against the
      1000-iteration loop on the same session (the judged goal);
    - whole subprocess: ``python -m pytest -q -p no:cacheprovider -p no:xdist`` on a
      generated file, start to exit, for the ``@latency_under`` test, a test running
      the 1000-iteration loop, the pytest-benchmark test, and a control test that
      calls the model once (start-up, collection and session creation: the fixed cost
      every run pays; subtracting it leaves the measurement's own cost).

    Also printed, as a diagnostic: ``measure_latency`` with the full ``gc.collect()`` it
    runs before timing replaced by a young-generation ``gc.collect(1)`` (the ``gc`` name
    inside ``pytest_deploycheck.measure.latency`` is patched in this process only), and what one
    full collection costs here: it is most of the plugin's time on a fast verdict.

How
    In process: 21 interleaved repetitions of each, medians.  Subprocesses: one
    discarded warm-up run of each file, then 7 interleaved runs of each, medians.  The
    subprocesses write bytecode as on a developer machine (PYTHONDONTWRITEBYTECODE,
    which this machine sets, is removed; the cache goes to a temporary
    PYTHONPYCACHEPREFIX so the repository stays clean).

Goal
    At least 5x faster than the fixed 1000 iterations (in process).

Run
    . .venv/bin/activate && python benchmarks/bench_time_to_verdict.py
"""

from __future__ import annotations

import gc
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from _common import (
    SMALL,
    build_model,
    goal_line,
    median,
    percentile_ms,
    print_header,
    print_table,
    pytest_command,
    report,
    run_timed,
    subprocess_env,
    time_session,
    workload_header,
    write_project,
)
from _workload import make_feeds, open_session

from pytest_deploycheck.measure import latency
from pytest_deploycheck.measure.latency import LatencyResult, SamplingPolicy, measure_latency

FIXED_ITERATIONS = 1000
BUDGET_FACTOR = 100
REPS_IN_PROCESS = 21
REPS_SUBPROCESS = 7
GOAL = 5.0
PYTEST_ARGS = ("-p", "no:xdist")


# --------------------------------------------------------------------------- in process


def fixed_loop(session: Any, feeds: dict[str, Any], budget_ms: float) -> bool:
    """The hand-written check: 1000 timed calls, then p95 against the budget."""
    samples = time_session(session, feeds, FIXED_ITERATIONS, warmup=0)
    return percentile_ms(samples, 95) <= budget_ms


def timed(action: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


@contextmanager
def young_generations_only() -> Iterator[None]:
    """Diagnostic: the plugin's ``gc.collect()`` before timing made a young-generation one.

    Patches the ``gc`` name inside ``pytest_deploycheck.measure.latency`` of this process only;
    nothing on disk changes.
    """
    real = latency.gc
    latency.gc = SimpleNamespace(  # type: ignore[assignment]
        collect=lambda *args: real.collect(1),
        isenabled=real.isenabled,
        disable=real.disable,
        enable=real.enable,
    )
    try:
        yield
    finally:
        latency.gc = real


def full_collect_ms() -> float:
    """What one full ``gc.collect()`` costs in this process now, in ms (median of 5)."""
    costs = []
    for _ in range(5):
        started = time.perf_counter()
        gc.collect()
        costs.append((time.perf_counter() - started) * 1e3)
    return median(costs)


METHODS = ("plugin", "fixed", "plugin, young-generation gc")


def in_process(model: Path) -> tuple[float, dict[str, list[float]], list[LatencyResult]]:
    """(budget ms, wall seconds by method, the plugin's results)."""
    session = open_session(model)
    feeds = make_feeds(session)
    p95 = percentile_ms(time_session(session, feeds, 2000, warmup=10), 95)
    budget_ms = round(BUDGET_FACTOR * p95, 3)

    def plugin() -> LatencyResult:
        return measure_latency(lambda: session.run(None, feeds), budget_ms, SamplingPolicy())

    def patched() -> LatencyResult:
        with young_generations_only():
            return plugin()

    actions: dict[str, Callable[[], object]] = {
        METHODS[0]: plugin,
        METHODS[1]: lambda: fixed_loop(session, feeds, budget_ms),
        METHODS[2]: patched,
    }
    walls: dict[str, list[float]] = {method: [] for method in METHODS}
    results: list[LatencyResult] = []
    for index in range(REPS_IN_PROCESS):
        shift = index % len(METHODS)
        for method in METHODS[shift:] + METHODS[:shift]:
            seconds, result = timed(actions[method])
            walls[method].append(seconds)
            if method == METHODS[1]:
                assert result is True
            else:
                assert isinstance(result, LatencyResult) and result.verdict == "pass"
                results.append(result)
    return budget_ms, walls, results


# --------------------------------------------------------------------------- subprocess


def test_files(model: Path, budget_ms: float) -> dict[str, str]:
    header = workload_header(model)
    return {
        "test_plugin.py": header
        + "from pytest_deploycheck import latency_under  # noqa: E402\n\n\n"
        + f"@latency_under({budget_ms})\n"
        + "def test_latency():\n"
        + "    SESSION.run(None, FEEDS)\n",
        "test_fixed.py": header
        + "from _common import percentile_ms, time_session  # noqa: E402\n\n\n"
        + "def test_fixed_loop():\n"
        + f"    samples = time_session(SESSION, FEEDS, {FIXED_ITERATIONS}, warmup=0)\n"
        + f"    assert percentile_ms(samples, 95) <= {budget_ms}\n",
        "test_benchmark.py": header
        + "\n\ndef test_benchmark(benchmark):\n"
        + "    benchmark(SESSION.run, None, FEEDS)\n",
        "test_control.py": header + "\n\ndef test_once():\n    SESSION.run(None, FEEDS)\n",
    }


RUN_LABELS = {
    "test_plugin.py": "@latency_under (plugin)",
    "test_fixed.py": f"fixed {FIXED_ITERATIONS}-iteration loop",
    "test_benchmark.py": "pytest-benchmark default",
    "test_control.py": "control: one call, no measurement",
}


def subprocess_walls(project: Path, pycache: Path) -> tuple[dict[str, list[float]], int]:
    """Wall seconds of each file's pytest run; and the plugin's sample count."""
    env = subprocess_env(write_bytecode=True, pycache=pycache)
    walls: dict[str, list[float]] = {name: [] for name in RUN_LABELS}
    for name in RUN_LABELS:  # warm-up: bytecode caches, page cache
        run_timed(pytest_command(*PYTEST_ARGS, name), cwd=project, env=env)
    samples = 0
    for index in range(REPS_SUBPROCESS):
        names = list(RUN_LABELS)
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            result = run_timed(pytest_command(*PYTEST_ARGS, name), cwd=project, env=env)
            walls[name].append(result.wall_s)
            if name == "test_plugin.py":
                samples = int(report(project)["checks"][0]["extra"]["n"])
    return walls, samples


# --------------------------------------------------------------------------- report


def main() -> int:
    print_header("time to verdict: latency_under far under budget vs fixed loops")
    with tempfile.TemporaryDirectory(prefix="deploycheck-bench-verdict-") as tmp:
        root = Path(tmp)
        model = build_model(SMALL, root)
        budget_ms, walls_in, results = in_process(model)
        collect_ms = full_collect_ms()
        project = write_project(root / "project", test_files(model, budget_ms))
        walls, subprocess_n = subprocess_walls(project, root / "pycache")
    ns = sorted({r.n for r in results})
    print(
        f"   model: {SMALL.name} ({SMALL.nominal}): {SMALL.describe()};"
        f" budget {budget_ms:g} ms = {BUDGET_FACTOR} x bare p95"
    )
    print(
        f"   plugin: verdict pass after {'/'.join(map(str, ns))} samples"
        f" (+{results[0].warmup} warm-up) in process, {subprocess_n} in the pytest run"
    )
    print()
    plugin_ms = median(walls_in[METHODS[0]]) * 1e3
    fixed_ms = median(walls_in[METHODS[1]]) * 1e3
    patched_ms = median(walls_in[METHODS[2]]) * 1e3
    speedup = fixed_ms / plugin_ms
    print(f"in process (median of {REPS_IN_PROCESS}):")
    print_table(
        ["method", "wall ms", "fixed loop / method"],
        [
            ["measure_latency, default policy", f"{plugin_ms:.1f}", f"{speedup:.2f}"],
            [f"fixed {FIXED_ITERATIONS}-iteration loop + p95", f"{fixed_ms:.1f}", "1.00"],
            [
                "diagnostic: measure_latency, gc.collect(1) instead of gc.collect()",
                f"{patched_ms:.1f}",
                f"{fixed_ms / patched_ms:.2f}",
            ],
        ],
    )
    print(f"   one full gc.collect() in this process: {collect_ms:.1f} ms")
    print()
    control = median(walls["test_control.py"])
    plugin_wall = median(walls["test_plugin.py"])
    rows = []
    for name, label in RUN_LABELS.items():
        wall = median(walls[name])
        own = wall - control
        plugin_own = plugin_wall - control
        rows.append(
            [
                label,
                f"{wall:.2f}",
                f"{wall / plugin_wall:.2f}",
                f"{own * 1e3:+.0f}",
                f"{own / plugin_own:.1f}" if name != "test_control.py" and plugin_own > 0 else "-",
            ]
        )
    print(f"whole pytest subprocess (median of {REPS_SUBPROCESS}):")
    print_table(["run", "wall s", "x plugin", "minus control ms", "x plugin (minus control)"], rows)
    print()
    goal_line(f"at least {GOAL:g}x faster than the fixed loop", speedup >= GOAL, f"{speedup:.1f}x")
    bench_ratio = median(walls["test_benchmark.py"]) / plugin_wall
    print(f"info: whole pytest run, pytest-benchmark default / plugin: {bench_ratio:.2f}x")
    print(
        f"info: without the full gc.collect() before timing the plugin would be"
        f" {fixed_ms / patched_ms:.1f}x faster than the fixed loop"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
