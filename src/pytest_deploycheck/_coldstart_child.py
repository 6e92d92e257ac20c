"""The fresh process whose first result a cold-start measurement waits for.

Run as ``python .../_coldstart_child.py '<json args>'`` by :mod:`.coldstart`.  It
imports numpy and onnxruntime, builds the session with the target's settings, runs
one inference on example feeds and prints one line -- ``DEPLOYCHECK_COLDSTART``
followed by JSON with its own phase timings, or with ``error`` -- then exits.

It is started by file path, not with ``-m pytest_deploycheck...``, and loads
``runtime.py`` by path too: importing the package would import pytest (the package
exposes the markers), which a deployed service never pays for, and which would add
a few hundred milliseconds to every cold-start figure.  Only the standard library is
imported before the clock starts.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

MARKER = "DEPLOYCHECK_COLDSTART "
RUNTIME_FILE = Path(__file__).resolve().with_name("runtime.py")
RUNTIME_MODULE = "_deploycheck_coldstart_runtime"
EXIT_MODEL_ERROR = 2
EXIT_USAGE = 3


def main(argv: list[str]) -> int:
    """Load, run once, report the phases; exit 2 with an ``error`` line on a model error."""
    if len(argv) != 1:
        print("usage: _coldstart_child.py '<json arguments>'", file=sys.stderr)
        return EXIT_USAGE
    args = json.loads(argv[0])
    started = time.perf_counter_ns()
    runtime = load_runtime()
    imported = time.perf_counter_ns()
    model_errors = (runtime.ModelLoadError, runtime.ModelInputError, runtime.ModelRunError)
    try:
        phases = load_and_run(runtime, args, started, imported)
    except model_errors as exc:
        emit({"error": str(exc)})
        return EXIT_MODEL_ERROR
    emit(phases)
    return 0


def load_runtime() -> ModuleType:
    """numpy, onnxruntime and runtime.py, imported the way a service would import them."""
    import numpy  # noqa: F401  (timed explicitly: it is part of every cold start)
    import onnxruntime  # type: ignore[import-untyped]  # noqa: F401

    spec = importlib.util.spec_from_file_location(RUNTIME_MODULE, RUNTIME_FILE)
    if spec is None or spec.loader is None:  # pragma: no cover - the file ships with us
        raise ImportError(f"cannot load {RUNTIME_FILE}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[RUNTIME_MODULE] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def load_and_run(
    runtime: ModuleType, args: dict[str, Any], started: int, imported: int
) -> dict[str, float]:
    """Build the session, run one inference; the phase timings in milliseconds."""
    settings = runtime.SessionSettings(**args["settings"])
    shapes = {k: tuple(v) for k, v in (args.get("input_shapes") or {}).items()}
    model = runtime.load_model(args["name"], Path(args["path"]), settings, shapes)
    loaded = time.perf_counter_ns()
    feeds = model.input_pool(1)[0]  # one feed set: a pool of 16 would be wasted work
    before_run = time.perf_counter_ns()
    model.run(feeds)
    finished = time.perf_counter_ns()
    return {
        "import_ms": (imported - started) / 1e6,
        "session_ms": (loaded - imported) / 1e6,
        "first_inference_ms": (finished - before_run) / 1e6,
    }


def emit(payload: dict[str, Any]) -> None:
    print(MARKER + json.dumps(payload), flush=True)


if __name__ == "__main__":
    # Running by path puts this package's directory first on sys.path, where modules
    # such as config.py or memory.py could shadow what numpy or onnxruntime import.
    if sys.path and Path(sys.path[0]).resolve() == RUNTIME_FILE.parent:
        del sys.path[0]
    sys.exit(main(sys.argv[1:]))
