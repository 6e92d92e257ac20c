"""Start-up cost: does installing the plugin slow down a suite that does not use it?

What it measures
    The wall time of ``python -m pytest -q -p no:cacheprovider`` on a generated suite
    of 200 trivial tests in 10 files (each test one ``assert``), with the plugin active
    against the same command with ``-p no:deploycheck``, in three projects:

    - no pyproject.toml at all;
    - a pyproject.toml without ``[tool.deploycheck]`` (the plugin parses it, finds
      nothing, and stays out of the way);
    - a pyproject.toml with an empty ``[tool.deploycheck]`` table (the plugin is
      configured: its session hooks run for every test, with no target and no deploy
      test).

How
    Every project gets one discarded warm-up run per mode; then 15 repetitions of
    every (project, mode), interleaved: plugin on and off back to back, their order
    alternating, so drift of this shared machine falls on both.  Medians, the
    difference in ms, the ratio of the medians on / off and the median of the 15
    paired ratios are printed.

    This machine sets PYTHONDONTWRITEBYTECODE=1, which makes pytest rewrite the
    assertions of every test file on every run (its rewritten-bytecode cache is never
    written).  The main figures are taken with it unset, as on a normal developer
    machine, with the bytecode cache in a temporary PYTHONPYCACHEPREFIX so that nothing
    is written into the repository or the virtual environment.  The same comparison
    with PYTHONDONTWRITEBYTECODE=1 is reported as well, from 4 repetitions (each run
    takes about twice as long there), not judged.

Goal
    Within 5% (on / off <= 1.05) in every project, with bytecode written.

Run
    . .venv/bin/activate && python benchmarks/bench_startup.py
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from _common import (
    goal_line,
    median,
    print_header,
    print_table,
    pytest_command,
    run_timed,
    subprocess_env,
)

FILES = 10
TESTS_PER_FILE = 20
REPS = 15
# With PYTHONDONTWRITEBYTECODE=1 a run takes about twice as long (the plugin's own modules,
# installed editable without bytecode, are compiled on every run): fewer repetitions keep
# the script under 3 minutes.
REPS_NO_BYTECODE = 4
GOAL = 0.05
PROJECTS = {
    "no pyproject.toml": None,
    "pyproject.toml, no [tool.deploycheck]": '[project]\nname = "suite"\nversion = "0"\n',
    "empty [tool.deploycheck]": '[project]\nname = "suite"\nversion = "0"\n\n[tool.deploycheck]\n',
}
MODES = {"plugin": (), "-p no:deploycheck": ("-p", "no:deploycheck")}
ENVS = {"bytecode written": True, "PYTHONDONTWRITEBYTECODE=1": False}
HEADERS = (
    "project",
    "environment",
    "reps",
    "plugin ms",
    "no:deploycheck ms",
    "diff ms",
    "ratio",
    "paired ratio",
)


@dataclass(frozen=True)
class Case:
    project: str
    env: str

    def label(self) -> str:
        return f"{self.project} [{self.env}]"


def test_module(index: int) -> str:
    tests = (
        f"def test_{index:02d}_{i:02d}():\n    assert {i} + 1 == {i + 1}\n"
        for i in range(TESTS_PER_FILE)
    )
    return "\n\n".join(tests)


def write_suite(directory: Path, pyproject: str | None) -> Path:
    directory.mkdir(parents=True)
    if pyproject is not None:
        (directory / "pyproject.toml").write_text(pyproject)
    for index in range(FILES):
        (directory / f"test_module_{index:02d}.py").write_text(test_module(index))
    return directory


def run_once(directory: Path, mode: str, write_bytecode: bool, pycache: Path) -> float:
    env = subprocess_env(write_bytecode=write_bytecode, pycache=pycache)
    result = run_timed(
        pytest_command("--rootdir", str(directory), *MODES[mode]), cwd=directory, env=env
    )
    summary = result.completed.stdout.strip().splitlines()[-1]
    if f"{FILES * TESTS_PER_FILE} passed" not in summary:
        raise RuntimeError(f"unexpected pytest summary in {directory}: {summary}")
    return result.wall_s


def reps(case: Case) -> int:
    return REPS if ENVS[case.env] else REPS_NO_BYTECODE


def measure(root: Path) -> dict[Case, dict[str, list[float]]]:
    dirs = {
        name: write_suite(root / f"project{i}", text)
        for i, (name, text) in enumerate(PROJECTS.items())
    }
    pycache = root / "pycache"
    cases = [Case(project, env) for env in ENVS for project in PROJECTS]
    walls: dict[Case, dict[str, list[float]]] = {case: {m: [] for m in MODES} for case in cases}
    for case in cases:  # warm-up: bytecode caches (nothing to warm without them)
        if not ENVS[case.env]:
            continue
        for mode in MODES:
            run_once(dirs[case.project], mode, ENVS[case.env], pycache)
    for rep in range(REPS):
        for case in cases:
            if rep >= reps(case):
                continue
            modes = list(MODES) if rep % 2 == 0 else list(reversed(MODES))
            for mode in modes:
                wall = run_once(dirs[case.project], mode, ENVS[case.env], pycache)
                walls[case][mode].append(wall)
    return walls


def main() -> int:
    print_header("start-up: plugin installed vs -p no:deploycheck on a suite that does not use it")
    print(
        f"   {FILES * TESTS_PER_FILE} trivial tests in {FILES} files;"
        f" python -m pytest -q -p no:cacheprovider; {REPS} interleaved repetitions, medians"
    )
    with tempfile.TemporaryDirectory(prefix="deploycheck-bench-startup-") as tmp:
        walls = measure(Path(tmp))
    rows = []
    verdicts = []
    for case, by_mode in walls.items():
        on, off = median(by_mode["plugin"]), median(by_mode["-p no:deploycheck"])
        ratio = on / off
        paired = median([a / b for a, b in zip(*by_mode.values(), strict=True)])
        rows.append(
            [
                case.project,
                case.env,
                str(reps(case)),
                f"{on * 1e3:.0f}",
                f"{off * 1e3:.0f}",
                f"{(on - off) * 1e3:+.0f}",
                f"{ratio:.3f}",
                f"{paired:.3f}",
            ]
        )
        verdicts.append((case, ratio))
    print()
    print_table(HEADERS, rows)
    print()
    for case, ratio in verdicts:
        label = f"within 5% [{case.label()}]"
        if ENVS[case.env]:
            goal_line(label, ratio - 1 <= GOAL, f"{ratio - 1:+.1%}")
        else:
            print(f"info [{case.label()}]: {ratio - 1:+.1%} (not judged: see the docstring)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
