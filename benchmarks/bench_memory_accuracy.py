"""Memory accuracy: does ``@memory_under``'s peak match what the OS says the model costs?

What it measures
    The peak-memory figure of the plugin (``footprint_mb`` of a real pytest run of a
    generated test decorated with ``@memory_under(...)`` on the ~5 ms model, read from
    ``deploycheck-evidence/bench/report.json``) against ``/usr/bin/time -v``'s "Maximum
    resident set size" of an equivalent standalone script: import onnxruntime and
    numpy, create the session with the same settings (1 intra-op thread; the same
    ``_workload.open_session``), run the same number of calls (the marker's
    ``repeat``), exit.  The standalone script is what the workload costs a process
    that runs no test framework, which is what the plugin's figure claims to be
    ("interpreter + everything the test loaded and touched").

How
    Both are run 3 times, interleaved; the figures are the medians, in MB (10^6
    bytes; /usr/bin/time reports KiB = 1024 bytes).  The plugin's own breakdown
    (``interpreter_mb``, ``harness_mb``, ``model_mb``, ``process_peak_mb``) is printed
    too, beside the resident set size of a bare interpreter (``python -c``, read from
    /proc/self/statm before anything is imported), which is what ``interpreter_mb``
    is meant to be.

Goal
    Within 5% (|plugin / time - 1| <= 0.05).

Run
    . .venv/bin/activate && python benchmarks/bench_memory_accuracy.py
    (needs GNU time at /usr/bin/time: ``apt-get install -y time``)
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import (
    LARGE,
    MB,
    build_model,
    goal_line,
    median,
    print_header,
    print_table,
    pytest_command,
    report,
    run_timed,
    subprocess_env,
    workload_header,
    write_project,
)

RUNS = 3
REPEAT = 5  # calls of the workload: the marker's default
GOAL = 0.05
TIME = Path("/usr/bin/time")
MAX_RSS = re.compile(r"Maximum resident set size \(kbytes\): (\d+)")
BARE_RSS = (
    "import os; pages = int(open('/proc/self/statm').read().split()[1]);"
    " print(pages * os.sysconf('SC_PAGE_SIZE'))"
)


def test_source(model: Path) -> str:
    return (
        workload_header(model)
        + "from pytest_deploycheck import memory_under  # noqa: E402\n\n\n"
        + f"@memory_under(100_000, repeat={REPEAT})\n"
        + "def test_memory():\n"
        + "    SESSION.run(None, FEEDS)\n"
    )


def standalone_source(model: Path) -> str:
    return (
        workload_header(model) + f"for _ in range({REPEAT}):\n" + "    SESSION.run(None, FEEDS)\n"
    )


def plugin_run(project: Path) -> dict[str, Any]:
    """The memory check's extra of one pytest run: footprint_mb and its breakdown."""
    env = subprocess_env(write_bytecode=False)
    run_timed(pytest_command("test_memory.py"), cwd=project, env=env)
    check = report(project)["checks"][0]
    if check["metric"] != "peak_memory":
        raise RuntimeError(f"unexpected check in report.json: {check['name']}")
    extra: dict[str, Any] = check["extra"]
    return extra


def time_max_rss_mb(script: Path) -> float:
    """``/usr/bin/time -v``'s maximum resident set size of ``python script``, in MB."""
    env = subprocess_env(write_bytecode=False)
    completed = run_timed(
        [str(TIME), "-v", sys.executable, str(script)], cwd=script.parent, env=env
    )
    match = MAX_RSS.search(completed.completed.stderr)
    if match is None:
        raise RuntimeError(f"no maximum resident set size in:\n{completed.completed.stderr}")
    return int(match.group(1)) * 1024 / MB


def bare_interpreter_mb() -> float:
    """Resident set size of a fresh interpreter before it imports anything, in MB."""
    completed = subprocess.run(
        [sys.executable, "-c", BARE_RSS],
        capture_output=True,
        text=True,
        check=True,
        env=subprocess_env(write_bytecode=False),
    )
    return int(completed.stdout) / MB


def main() -> int:
    if not TIME.is_file():
        print(f"{TIME} not found: install GNU time (apt-get install -y time)")
        return 2
    print_header("memory accuracy: @memory_under footprint vs /usr/bin/time max RSS")
    print(
        f"   model: {LARGE.name} ({LARGE.nominal}): {LARGE.describe()}; {REPEAT} calls; {RUNS} runs"
    )
    plugin: list[dict[str, Any]] = []
    reference: list[float] = []
    bare: list[float] = []
    with tempfile.TemporaryDirectory(prefix="deploycheck-bench-memory-") as tmp:
        root = Path(tmp)
        model = build_model(LARGE, root)
        project = write_project(root / "project", {"test_memory.py": test_source(model)})
        script = root / "standalone.py"
        script.write_text(standalone_source(model))
        for _ in range(RUNS):
            plugin.append(plugin_run(project))
            reference.append(time_max_rss_mb(script))
            bare.append(bare_interpreter_mb())
    footprint = median([p["footprint_mb"] for p in plugin])
    time_mb = median(reference)
    ratio = footprint / time_mb

    def figure(key: str) -> str:
        return f"{median([p[key] for p in plugin]):.1f}"

    print()
    print_table(
        ["figure", "MB (median of 3)", "runs"],
        [
            [
                "plugin footprint_mb (@memory_under)",
                f"{footprint:.1f}",
                ", ".join(f"{p['footprint_mb']:.1f}" for p in plugin),
            ],
            [
                "/usr/bin/time max RSS, standalone script",
                f"{time_mb:.1f}",
                ", ".join(f"{r:.1f}" for r in reference),
            ],
            ["ratio plugin / time", f"{ratio:.3f}", ""],
        ],
    )
    print()
    print("the plugin's breakdown (footprint = interpreter + peak - harness):")
    interpreter = median([p["interpreter_mb"] for p in plugin])
    bare_mb = median(bare)
    print_table(
        ["part", "MB (median)"],
        [
            ["interpreter_mb (RSS the child reads first)", figure("interpreter_mb")],
            ["bare interpreter (python -c, nothing imported)", f"{bare_mb:.1f}"],
            ["harness_mb (pytest start-up, excluded)", figure("harness_mb")],
            ["model_mb (peak - before the test's setup)", figure("model_mb")],
            ["process_peak_mb (child's VmHWM)", figure("process_peak_mb")],
        ],
    )
    print()
    goal_line("within 5%", abs(ratio - 1) <= GOAL, f"{ratio - 1:+.1%}")
    excess = interpreter - bare_mb
    if excess > 0.02 * time_mb:
        corrected = footprint - excess
        print(
            f"info: interpreter_mb is {excess:.1f} MB above a bare interpreter (it is read after"
            f" the package, and so pytest, is imported); with the bare figure the footprint"
            f" would be {corrected:.1f} MB, {corrected / time_mb - 1:+.1%} from /usr/bin/time"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
