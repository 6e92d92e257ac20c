"""Latency accuracy: does the p50 the plugin reports match a bare timing loop?

What it measures
    For a ~100 us model and a ~5 ms model (MatMul+Relu chains built here with
    onnx.helper, 1 intra-op thread), the p50 that pytest-deploycheck reports against
    the p50 of a bare ``time.perf_counter_ns()`` loop around ``session.run(None, feeds)``
    in this process, with the same session, the same feeds, the same warm-up (10 calls)
    and the same sample count.  The plugin's figure is taken two ways:

    - in process: ``pytest_deploycheck.latency.measure_latency(workload, budget,
      SamplingPolicy(...))`` with ``workload = lambda: session.run(None, feeds)``;
    - end to end: a real ``python -m pytest -p no:cacheprovider`` run of a generated
      test file decorated with ``@latency_under(...)`` whose body is
      ``SESSION.run(None, FEEDS)``; the figure is ``checks[0].extra.p50_ms`` of
      ``deploycheck-evidence/bench/report.json``.  The device of the generated project
      sets no ``cpus``, so the plugin pins nothing, like the bare loop.

How
    ``min_samples = max_samples = n`` fixes the plugin's sample count at n (one look),
    and the budget is far above the latency so the run always ends "pass" at n.  The
    three measurements are interleaved in 5 rounds (their order rotates each round) to
    spread drift of this shared machine over all of them; the figure of each method is
    the median of its 5 round medians, and the ratio is plugin / bare.

Goal
    Within 2% (|ratio - 1| <= 0.02) for both models and both ways.

Run
    . .venv/bin/activate && python benchmarks/bench_latency_accuracy.py
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import (
    LARGE,
    SMALL,
    ModelShape,
    build_model,
    goal_line,
    median,
    p50_ms,
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

from pytest_deploycheck.latency import SamplingPolicy, measure_latency

ROUNDS = 5
WARMUP = 10
BUDGET_MS = 60_000.0  # far above any call: the run always settles "pass" at n samples
SAMPLES = {SMALL.name: 4000, LARGE.name: 400}  # per round and method: ~0.4 s and ~2 s
GOAL = 0.02
METHODS = ("bare loop", "measure_latency", "pytest @latency_under")


@dataclass
class Rounds:
    """p50 in ms of every round, by method."""

    p50: dict[str, list[float]]

    def figure(self, method: str) -> float:
        return median(self.p50[method])

    def ratio(self, method: str) -> float:
        return self.figure(method) / self.figure(METHODS[0])

    def round_ratios(self, method: str) -> list[float]:
        return [p / b for p, b in zip(self.p50[method], self.p50[METHODS[0]], strict=True)]


def test_source(model: Path, n: int) -> str:
    return (
        workload_header(model)
        + "from pytest_deploycheck import latency_under\n\n\n"
        + f"@latency_under({BUDGET_MS}, min_samples={n}, max_samples={n}, warmup={WARMUP},"
        + " max_time_s=600)\n"
        + "def test_latency():\n"
        + "    SESSION.run(None, FEEDS)\n"
    )


def via_pytest(project: Path, test_file: str, n: int) -> float:
    run_timed(pytest_command(test_file), cwd=project, env=subprocess_env(write_bytecode=False))
    check = report(project)["checks"][0]
    extra = check["extra"]
    if extra["n"] != n or extra["verdict"] != "pass":
        raise RuntimeError(f"unexpected plugin result: n={extra['n']} {extra['verdict']}")
    if extra.get("pinning"):
        raise RuntimeError(f"the plugin pinned the workload: {extra['pinning']}")
    return float(extra["p50_ms"])


def via_measure_latency(session: Any, feeds: dict[str, Any], n: int) -> float:
    policy = SamplingPolicy(warmup=WARMUP, min_samples=n, max_samples=n, max_time_s=600.0)
    result = measure_latency(lambda: session.run(None, feeds), BUDGET_MS, policy)
    if result.n != n or result.verdict != "pass":
        raise RuntimeError(f"unexpected plugin result: n={result.n} {result.verdict}")
    return result.p50_ms


def measure_model(shape: ModelShape, model: Path, project: Path) -> Rounds:
    n = SAMPLES[shape.name]
    test_file = f"test_latency_{shape.name}.py"
    write_project(project, {test_file: test_source(model, n)})
    session = open_session(model)
    feeds = make_feeds(session)
    runners: dict[str, Callable[[], float]] = {
        METHODS[0]: lambda: p50_ms(time_session(session, feeds, n, WARMUP)),
        METHODS[1]: lambda: via_measure_latency(session, feeds, n),
        METHODS[2]: lambda: via_pytest(project, test_file, n),
    }
    p50: dict[str, list[float]] = {method: [] for method in METHODS}
    for index in range(ROUNDS):
        order = METHODS[index % 3 :] + METHODS[: index % 3]
        for method in order:
            p50[method].append(runners[method]())
    return Rounds(p50)


def main() -> int:
    print_header("latency accuracy: plugin p50 vs a bare perf_counter_ns loop")
    print(
        f"   {ROUNDS} interleaved rounds per method, warm-up {WARMUP} calls;"
        " figure = median of the round medians; ratio = plugin / bare"
    )
    rows, verdicts = [], []
    with tempfile.TemporaryDirectory(prefix="deploycheck-bench-latency-") as tmp:
        root = Path(tmp)
        for shape in (SMALL, LARGE):
            model = build_model(shape, root)
            rounds = measure_model(shape, model, root / "project")
            bare = rounds.figure(METHODS[0])
            print(f"   {shape.name} ({shape.nominal}): {shape.describe()}: bare p50 {bare:.4f} ms")
            for method in METHODS[1:]:
                ratio = rounds.ratio(method)
                per_round = rounds.round_ratios(method)
                rows.append(
                    [
                        shape.name,
                        str(SAMPLES[shape.name]),
                        f"{bare:.4f}",
                        method,
                        f"{rounds.figure(method):.4f}",
                        f"{ratio:.4f}",
                        f"{min(per_round):.3f}-{max(per_round):.3f}",
                    ]
                )
                verdicts.append((shape.name, method, ratio - 1.0))
    print()
    print_table(
        ["model", "n/round", "bare p50 ms", "plugin path", "plugin p50 ms", "ratio", "round ratios"],
        rows,
    )
    print()
    for name, method, dev in verdicts:
        goal_line(f"within 2% [{name}, {method}]", abs(dev) <= GOAL, f"{dev:+.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
