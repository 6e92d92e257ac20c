"""pytest-deploycheck: deployment acceptance tests for ML models on ONNX Runtime.

Importing the package is cheap: it is loaded at every pytest start-up through the
plugin entry point, so nothing here imports numpy or onnxruntime.
"""

from __future__ import annotations

from .checks import Check, record_check
from .config import ConfigError, DeployConfig, Device, ModelSpec
from .markers import cold_start_under, latency_under, memory_under, throughput_over

__all__ = [
    "Check",
    "ConfigError",
    "DeployConfig",
    "Device",
    "ModelSpec",
    "cold_start_under",
    "latency_under",
    "memory_under",
    "record_check",
    "throughput_over",
]
