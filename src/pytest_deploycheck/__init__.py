"""pytest-deploycheck: deployment acceptance tests for ML models on ONNX Runtime.

This package is imported at every pytest start-up through the plugin entry point, also
in projects that never use it, so every public name is loaded on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .checks.accuracy import assert_accuracy_drop
    from .checks.agreement import assert_agreement
    from .checks.drift import assert_no_drift
    from .checks.models import ModelSet
    from .checks.record import Check, CheckError, record_check
    from .config.schema import ConfigError, DeployConfig, Device, ModelSpec
    from .markers import (
        capacity_over,
        cold_start_under,
        latency_under,
        memory_under,
        offline,
        soak,
        throughput_over,
    )
    from .measure.runtime import DeployModel
    from .measure.service import RunningService, ServiceSet

_PUBLIC = {
    "Check": "checks.record",
    "CheckError": "checks.record",
    "record_check": "checks.record",
    # The types the deploy_model and deploy_models fixtures give, for type hints.
    "DeployModel": "measure.runtime",
    "ModelSet": "checks.models",
    # ...and the deploy_service and deploy_services fixtures.
    "RunningService": "measure.service",
    "ServiceSet": "measure.service",
    "ConfigError": "config.schema",
    "DeployConfig": "config.schema",
    "Device": "config.schema",
    "ModelSpec": "config.schema",
    "assert_accuracy_drop": "checks.accuracy",
    "assert_agreement": "checks.agreement",
    "assert_no_drift": "checks.drift",
    "capacity_over": "markers",
    "cold_start_under": "markers",
    "latency_under": "markers",
    "memory_under": "markers",
    "offline": "markers",
    "soak": "markers",
    "throughput_over": "markers",
}

__all__ = [
    "Check",
    "CheckError",
    "ConfigError",
    "DeployConfig",
    "DeployModel",
    "Device",
    "ModelSet",
    "ModelSpec",
    "RunningService",
    "ServiceSet",
    "assert_accuracy_drop",
    "assert_agreement",
    "assert_no_drift",
    "capacity_over",
    "cold_start_under",
    "latency_under",
    "memory_under",
    "offline",
    "record_check",
    "soak",
    "throughput_over",
]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_deploycheck' has no attribute {name!r}")
    # Not cached in this module's globals: a cached function would outlive its module
    # when a test harness (pytester) drops and re-imports the package's modules.
    return getattr(import_module(f".{module}", __name__), name)
