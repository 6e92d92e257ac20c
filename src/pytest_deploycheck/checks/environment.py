"""The environment a run's checks were measured in: Python, package versions, host.

It travels with the checks wherever they go -- report.json, run.log, a saved
baseline -- and the regression gates compare it with the baseline's, so it sits in
the checks layer where both the verdict and the reports can read it.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

VERSIONED_PACKAGES = ("pytest-deploycheck", "onnxruntime", "numpy", "pytest", "psutil")


def package_versions(names: Sequence[str] = VERSIONED_PACKAGES) -> dict[str, str | None]:
    """Installed versions, read from metadata so that nothing heavy gets imported."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def host_description() -> dict[str, Any]:
    """The machine the figures were measured on."""
    import psutil  # deferred: only needed once a run reports

    usable: int | None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        usable = os.cpu_count()
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "memory_total_mb": round(psutil.virtual_memory().total / 1e6, 1),
    }


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


# Where the figures were measured when the tests ran on devices (checks.remote):
# target name -> provenance; set by the xdist controller as each device connects.
MEASURED_ON: dict[str, dict[str, Any]] = {}


def environment() -> dict[str, Any]:
    """Python, the versioned packages, the host and the time, as report.json holds them.

    A run on a device adds ``measured_on`` (the device's host name, CPU and versions):
    ``python`` and ``host`` stay the controller's, which judged the figures.
    """
    found: dict[str, Any] = {
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "packages": package_versions(),
        "host": host_description(),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if MEASURED_ON:
        found["measured_on"] = {name: dict(where) for name, where in MEASURED_ON.items()}
    return found
