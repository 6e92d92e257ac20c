"""pytest-deploycheck: deployment acceptance tests for ML models on ONNX Runtime.

Importing the package is cheap: it is loaded at every pytest start-up through the
plugin entry point, so nothing here imports numpy or onnxruntime.
"""

from __future__ import annotations

from typing import Any

from .checks import Check, record_check
from .config import ConfigError, DeployConfig, Device, ModelSpec
from .markers import cold_start_under, latency_under, memory_under, throughput_over

__all__ = [
    "Check",
    "ConfigError",
    "DeployConfig",
    "Device",
    "ModelSpec",
    "assert_accuracy_drop",
    "cold_start_under",
    "latency_under",
    "memory_under",
    "record_check",
    "throughput_over",
]


def __getattr__(name: str) -> Any:
    # Loaded on first use: the accuracy module imports numpy, and this package is
    # imported at every pytest start-up.
    if name == "assert_accuracy_drop":
        from .accuracy import assert_accuracy_drop

        return assert_accuracy_drop
    raise AttributeError(f"module 'pytest_deploycheck' has no attribute {name!r}")
