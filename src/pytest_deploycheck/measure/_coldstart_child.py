"""The fresh process whose first result a cold-start measurement waits for.

Run as ``python .../_coldstart_child.py '<json args>'`` by :mod:`.coldstart`.  It
imports numpy and onnxruntime, builds the session with the target's settings, runs
one inference on example feeds and prints one line -- ``DEPLOYCHECK_COLDSTART``
followed by JSON with its own phase timings and its memory at that moment, or with
``error`` -- then exits.

It is started by file path, not with ``-m pytest_deploycheck...``, and loads
``runtime.py`` by path too: importing the package would import pytest (the package
exposes the markers), which a deployed service never pays for, and which would add
a few hundred milliseconds to every cold-start figure.  Only the standard library is
imported before the clock starts.

Memory is read once the first result is ready, after the last timestamp: the resident
set size then (``/proc/self/statm``) and its peak so far (``VmHWM`` in
``/proc/self/status``), in MB of 10**6 bytes.  Both are small file reads, microseconds
before the result line.  ``getrusage``'s ``ru_maxrss`` is no substitute on Linux: it
keeps the high-water mark of the image ``exec`` replaced, which for a child spawned with
``vfork`` is the parent's.  Without ``/proc`` (macOS, the BSDs) only the peak is
reported, from ``getrusage``, with that caveat; on Windows neither.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

MARKER = "DEPLOYCHECK_COLDSTART "
RUNTIME_FILE = Path(__file__).resolve().with_name("runtime.py")
RUNTIME_MODULE = "_deploycheck_coldstart_runtime"
OFFLINE_FILE = RUNTIME_FILE.with_name("netguard.py")
OFFLINE_MODULE = "_deploycheck_coldstart_netguard"
OFFLINE_ENV = "DEPLOYCHECK_OFFLINE"  # netguard.ENV_OFFLINE, not imported: see above
EXIT_MODEL_ERROR = 2
EXIT_USAGE = 3


def main(argv: list[str]) -> int:
    """Load, run once, report the phases; exit 2 with an ``error`` line on a model error."""
    if len(argv) != 1:
        print("usage: _coldstart_child.py '<json arguments>'", file=sys.stderr)
        return EXIT_USAGE
    args = json.loads(argv[0])
    block_network_if_asked()
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


def block_network_if_asked() -> None:
    """In an offline test, block this process's network as the parent's is blocked.

    netguard.py is loaded by path, like runtime.py, and only when the parent asked: a
    normal cold start loads nothing more than before.
    """
    if not os.environ.get(OFFLINE_ENV):
        return
    spec = importlib.util.spec_from_file_location(OFFLINE_MODULE, OFFLINE_FILE)
    if spec is None or spec.loader is None:  # pragma: no cover - the file ships with us
        raise ImportError(f"cannot load {OFFLINE_FILE}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[OFFLINE_MODULE] = module
    spec.loader.exec_module(module)
    module.install_from_environment()


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
) -> dict[str, float | None]:
    """Build the session, run one inference; the phase timings in milliseconds, memory."""
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
        **memory_now(),  # after the last timestamp: it adds nothing to the phases
    }


def memory_now() -> dict[str, float | None]:
    """``rss_mb`` now and ``peak_rss_mb`` so far, in MB (10**6 bytes); None where unknown."""
    return {"rss_mb": _rss_mb(), "peak_rss_mb": _peak_rss_mb()}


def _rss_mb() -> float | None:
    try:
        with open("/proc/self/statm", "rb") as statm:
            resident_pages = int(statm.read().split()[1])
        return resident_pages * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def _peak_rss_mb() -> float | None:
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024 / 1e6  # the kernel's kB are KiB
    except (OSError, ValueError, IndexError):
        pass
    if sys.platform == "win32" or sys.platform.startswith("linux"):
        return None  # see the module docstring for why not getrusage on Linux
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak * 1024 / 1e6


def emit(payload: dict[str, Any]) -> None:
    print(MARKER + json.dumps(payload), flush=True)


if __name__ == "__main__":
    # Running by path puts this package's directory first on sys.path, where modules
    # such as config.py or memory.py could shadow what numpy or onnxruntime import.
    if sys.path and Path(sys.path[0]).resolve() == RUNTIME_FILE.parent:
        del sys.path[0]
    sys.exit(main(sys.argv[1:]))
