"""Timed checks under xdist: the example's figures with ``-n 2`` and serially, alternated.

What it measures
    Whether the host-wide timing lock keeps timed checks from overlapping when xdist
    runs them side by side: before the lock, two latency tests on two workers measured
    a p50 3.2x their serial figure and the example's cold start doubled.

How
    ``pytest example_project --deploy-target edge-c`` in a subprocess, 5 rounds of one
    serial run (``-p no:xdist``) and one ``-n 2`` run, the order alternating each round
    (serial first, then xdist first) so that the host's drift falls on both.  Each run
    writes its evidence to a fresh temporary directory (``--deploy-evidence-dir=``), and
    the script reads every timed check's figure from its report.json: the latency
    percentiles, the throughput and the cold start.  Per check it prints the serial
    runs' median and range (their run-to-run spread), the xdist runs' median and range,
    and the xdist median's deviation from the serial one.

Goal (issue 12)
    Every check's ``-n 2`` median lies within the serial runs' own range.

Run
    . .venv/bin/activate && python benchmarks/bench_xdist_lock.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO_ROOT, cpu_model, print_header, print_table, subprocess_env

ROUNDS = 5
TIMED_METRICS = ("latency", "throughput", "cold_start")
TIMEOUT_S = 600


def run(mode: str, evidence: Path, env: dict[str, str]) -> tuple[dict[str, float], float]:
    """One example run in *mode* ("serial" or "-n 2"): its timed figures and wall time."""
    parallel = ["-n", "2"] if mode == "-n 2" else ["-p", "no:xdist"]
    command = [sys.executable, "-m", "pytest", "example_project", "--deploy-target", "edge-c"]
    command += ["-q", "-p", "no:cacheprovider", *parallel, f"--deploy-evidence-dir={evidence}"]
    started = time.perf_counter()
    done = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S
    )
    wall_s = time.perf_counter() - started
    report = evidence / "edge-c" / "report.json"
    if not report.is_file():
        raise RuntimeError(
            f"{mode}: no report.json (exit {done.returncode}):\n{done.stdout[-2000:]}"
        )
    checks = json.loads(report.read_text(encoding="utf-8"))["checks"]
    figures = {
        c["name"]: float(c["value"])
        for c in checks
        if c["metric"].startswith(TIMED_METRICS) and isinstance(c.get("value"), (int, float))
    }
    return figures, wall_s


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    rounds = parser.parse_args().rounds
    print_header("timed checks under xdist: -n 2 against serial, alternated")
    env = subprocess_env(write_bytecode=True)
    runs: dict[str, list[dict[str, float]]] = {"serial": [], "-n 2": []}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_xdist_lock_") as tmp:
        for index in range(rounds):
            order = ("serial", "-n 2") if index % 2 == 0 else ("-n 2", "serial")
            for mode in order:
                evidence = Path(tmp) / f"{index}-{mode.replace(' ', '')}"
                figures, wall_s = run(mode, evidence, env)
                runs[mode].append(figures)
                print(f"   round {index + 1} {mode}: {wall_s:.1f} s", flush=True)
    print()
    rows, within = [], 0
    names = sorted(set().union(*runs["serial"]) & set().union(*runs["-n 2"]))
    for name in names:
        serial = [r[name] for r in runs["serial"] if name in r]
        xdist = [r[name] for r in runs["-n 2"] if name in r]
        s_mid, x_mid = statistics.median(serial), statistics.median(xdist)
        inside = min(serial) <= x_mid <= max(serial)
        within += inside
        rows.append(
            [
                name,
                f"{s_mid:.4g} ({min(serial):.4g}-{max(serial):.4g})",
                f"{x_mid:.4g} ({min(xdist):.4g}-{max(xdist):.4g})",
                f"{(x_mid / s_mid - 1) * 100:+.1f}%",
                "yes" if inside else "NO",
            ]
        )
    headers = ("check", "serial: median (range)", "-n 2: median (range)", "-n 2 vs serial")
    print_table((*headers, "within serial range"), rows)
    print(f"{within}/{len(names)} checks: the -n 2 median within the serial runs' range")
    print(f"run time: {time.perf_counter() - started:.0f} s on {cpu_model()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
