"""Helpers shared by the benchmark scripts: the workload models, generated pytest
projects, subprocess runs, small statistics and the printed tables.

Only the standard library is imported at module level; onnx and numpy are imported
where a model is built, so that importing this module costs the measured processes
nothing.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
TARGET = "bench"
MB = 1e6  # 10^6 bytes, as the plugin counts
PYTEST_BASE_ARGS = ("-q", "-p", "no:cacheprovider")


# --------------------------------------------------------------------------- models


@dataclass(frozen=True)
class ModelShape:
    """A chain of ``layers`` MatMul+Relu blocks on an input of ``[batch, width]``.

    The sizes were calibrated once on the 2-core AMD EPYC benchmark machine with 1
    intra-op thread (see README.md) and are hard-coded so that every run times the
    same model; the scripts print what the model costs on the machine they run on.
    """

    name: str
    batch: int
    width: int
    layers: int
    nominal: str

    def describe(self) -> str:
        return (
            f"{self.layers} x (MatMul {self.batch}x{self.width} @ {self.width}x{self.width}"
            f" + Relu), float32"
        )


SMALL = ModelShape("small", batch=1, width=256, layers=7, nominal="~100 us")
LARGE = ModelShape("large", batch=64, width=512, layers=5, nominal="~5 ms")


def build_model(shape: ModelShape, directory: Path) -> Path:
    """Write *shape* as an ONNX model into *directory*, deterministically (seeded weights)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    initializers, nodes = [], []
    previous = "x"
    for index in range(shape.layers):
        weight = rng.standard_normal((shape.width, shape.width)) / np.sqrt(shape.width)
        initializers.append(numpy_helper.from_array(weight.astype(np.float32), f"w{index}"))
        nodes.append(helper.make_node("MatMul", [previous, f"w{index}"], [f"mm{index}"]))
        output = "y" if index == shape.layers - 1 else f"relu{index}"
        nodes.append(helper.make_node("Relu", [f"mm{index}"], [output]))
        previous = output
    dims = [shape.batch, shape.width]
    graph = helper.make_graph(
        nodes,
        f"matmul_chain_{shape.name}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, dims)],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every onnxruntime the plugin supports
    onnx.checker.check_model(model)
    path = directory / f"{shape.name}.onnx"
    onnx.save(model, str(path))
    return path


# --------------------------------------------------------------------------- timing


def time_session(session: Any, feeds: Mapping[str, Any], n: int, warmup: int) -> list[int]:
    """The bare reference: *warmup* untimed calls, then *n* ``session.run`` calls timed one
    by one with ``time.perf_counter_ns`` (ns); nothing else inside the timed region."""
    clock = time.perf_counter_ns
    run = session.run
    for _ in range(warmup):
        run(None, feeds)
    samples = []
    for _ in range(n):
        before = clock()
        run(None, feeds)
        samples.append(clock() - before)
    return samples


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def p50_ms(samples_ns: Sequence[int]) -> float:
    """The nearest-rank median in ms, the way the plugin reports p50."""
    return percentile_ms(samples_ns, 50)


def percentile_ms(samples_ns: Sequence[int], percentile: float) -> float:
    """The plugin's own nearest-rank estimator, in ms, so both sides are read alike."""
    from pytest_deploycheck.measure.stats import percentile_nearest_rank

    return percentile_nearest_rank(samples_ns, percentile) / 1e6


def deviation(value: float, reference: float) -> float:
    """value / reference - 1."""
    return value / reference - 1.0


# --------------------------------------------------------------------------- projects


def pyproject_text(*, deploycheck: bool = True) -> str:
    """A project whose one device sets no cpus, so the plugin pins nothing."""
    if not deploycheck:
        return '[project]\nname = "bench-suite"\nversion = "0"\n'
    return (
        f'[tool.deploycheck]\ntarget = "{TARGET}"\n\n'
        f'[[tool.deploycheck.devices]]\nname = "{TARGET}"\n'
    )


def workload_header(model: Path) -> str:
    """The top of a generated test module: the session and feeds of :mod:`_workload`."""
    return (
        "import sys\n"
        f"sys.path.insert(0, {str(BENCH_DIR)!r})\n"
        "from _workload import make_feeds, open_session  # noqa: E402\n"
        f"SESSION = open_session({str(model)!r})\n"
        "FEEDS = make_feeds(SESSION)\n"
    )


def write_project(directory: Path, tests: Mapping[str, str], *, deploycheck: bool = True) -> Path:
    """A pytest project: pyproject.toml plus the given test files (name -> source)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "pyproject.toml").write_text(pyproject_text(deploycheck=deploycheck))
    for name, source in tests.items():
        (directory / name).write_text(source)
    return directory


def report(project: Path) -> dict[str, Any]:
    """The plugin's report.json of the last run in *project*."""
    path = project / "deploycheck-evidence" / TARGET / "report.json"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def subprocess_env(*, write_bytecode: bool, pycache: Path | None = None) -> dict[str, str]:
    """The environment of a measured subprocess.

    With *write_bytecode* PYTHONDONTWRITEBYTECODE is removed (this machine sets it), as
    on a normal developer machine, and the bytecode goes to *pycache*
    (PYTHONPYCACHEPREFIX) so that no ``__pycache__`` lands in the repository.
    """
    env = dict(os.environ)
    env.pop("PYTHONPYCACHEPREFIX", None)
    if write_bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        if pycache is not None:
            env["PYTHONPYCACHEPREFIX"] = str(pycache)
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


@dataclass(frozen=True)
class Timed:
    completed: subprocess.CompletedProcess[str]
    wall_s: float


def run_timed(
    command: Sequence[str], *, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 300
) -> Timed:
    """Run *command* and time it from start to exit; a failure raises with its output."""
    started = time.perf_counter()
    completed = subprocess.run(
        list(command),
        cwd=cwd,
        env=dict(env) if env is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    wall_s = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} exited with {completed.returncode}:\n"
            f"{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
        )
    return Timed(completed, wall_s)


def pytest_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", *PYTEST_BASE_ARGS, *args]


# --------------------------------------------------------------------------- output


def versions() -> dict[str, str]:
    import numpy
    import onnxruntime

    return {
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "numpy": numpy.__version__,
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def print_header(title: str) -> None:
    v = versions()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"== {title}")
    print(
        f"   {cpu_model()}, {cpus} usable CPUs (load average {load:.2f}); python"
        f" {v['python']}, onnxruntime {v['onnxruntime']}, numpy {v['numpy']}; 1 intra-op thread"
    )


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    line = "  ".join(f"{h:<{w}}" for h, w in zip(headers, widths, strict=True))
    print(line)
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(f"{c!s:<{w}}" for c, w in zip(row, widths, strict=True)))


def goal_line(goal: str, met: bool, detail: str) -> str:
    line = f"goal {goal}: {'met' if met else 'MISSED'} ({detail})"
    print(line)
    return line
