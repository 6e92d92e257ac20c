"""Run every benchmark of pytest-deploycheck, one after the other, and collect the verdicts.

What it does
    Runs ``bench_latency_accuracy.py``, ``bench_memory_accuracy.py``,
    ``bench_time_to_verdict.py`` and ``bench_startup.py`` as separate processes (so one
    benchmark's memory and threads cannot disturb the next), prints their output as it
    comes, and ends with every "goal ..." line and the wall time of each script.  Each
    script takes one to three minutes on a 2-core machine.

Goal
    None of its own: see each script.  The exit code is 1 when a script failed to run
    (not when a goal was missed: the figures are for people to read).

Run
    . .venv/bin/activate && python benchmarks/run_all.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
SCRIPTS = (
    "bench_latency_accuracy.py",
    "bench_memory_accuracy.py",
    "bench_time_to_verdict.py",
    "bench_startup.py",
)


def run(script: str) -> tuple[int, float, list[str]]:
    """(exit code, wall seconds, goal lines) of one script, its output streamed."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, str(BENCH_DIR / script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    goals = []
    assert process.stdout is not None
    for line in process.stdout:
        print(line, end="", flush=True)
        if line.startswith(("goal ", "info")):
            goals.append(line.rstrip())
    code = process.wait()
    return code, time.perf_counter() - started, goals


def main() -> int:
    failed = []
    summary = []
    for script in SCRIPTS:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"\n### {script} (load average {load:.2f})", flush=True)
        code, wall, goals = run(script)
        summary.append((script, code, wall, goals))
        if code != 0:
            failed.append(script)
    print("\n### summary")
    for script, code, wall, goals in summary:
        status = "ok" if code == 0 else f"FAILED (exit {code})"
        print(f"{script}: {status}, {wall:.0f} s")
        for line in goals:
            print(f"    {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
