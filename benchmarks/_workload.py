"""The workload every benchmark times: one ONNX Runtime session and one fixed feed set.

Imported by the benchmark scripts, by the pytest test files they generate and by the
standalone script that ``bench_memory_accuracy.py`` runs under ``/usr/bin/time``, so
all of them build the session with exactly the same settings: 1 intra-op thread, 1
inter-op thread, sequential execution, all graph optimizations (what
``pytest_deploycheck.measure.runtime.SessionSettings(intra_op_threads=1)`` builds).

Only numpy and onnxruntime are imported here, never the plugin: the standalone memory
script must not pay for pytest or pytest-deploycheck.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

INTRA_OP_THREADS = 1
FEED_SEED = 1


def open_session(path: str | Path) -> Any:
    """An InferenceSession on the CPU with 1 intra-op thread, as the plugin would build it."""
    options = ort.SessionOptions()
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = INTRA_OP_THREADS
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def make_feeds(session: Any) -> dict[str, Any]:
    """One seeded feed set (float32 in [0, 1)) for every input of *session*."""
    rng = np.random.default_rng(FEED_SEED)
    return {
        arg.name: rng.random(tuple(int(d) for d in arg.shape), dtype=np.float32)
        for arg in session.get_inputs()
    }
