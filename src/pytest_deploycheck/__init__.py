"""pytest-deploycheck: deployment acceptance tests for ML models on ONNX Runtime.

Importing the package is cheap: it is loaded at every pytest start-up through the
plugin entry point, so names that need numpy or onnxruntime are resolved lazily.
"""

from __future__ import annotations

from .checks import Check, record_check
from .config import ConfigError, DeployConfig, Device, ModelSpec

__all__ = [
    "Check",
    "ConfigError",
    "DeployConfig",
    "Device",
    "ModelSpec",
    "record_check",
]
