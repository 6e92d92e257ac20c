"""Unit tests of checks/environment.py: what a run's figures were measured on."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pytest_deploycheck.checks import environment as environment_module
from pytest_deploycheck.checks.environment import environment, package_versions

# --------------------------------------------------------------------------- environment


def test_package_versions_reads_installed_versions() -> None:
    versions = package_versions(("pytest", "surely-not-an-installed-package"))

    assert versions["pytest"] == pytest.__version__
    assert versions["surely-not-an-installed-package"] is None


def test_package_versions_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from pytest_deploycheck.checks.environment import package_versions\n"
        "versions = package_versions()\n"
        "assert versions['numpy'] and versions['onnxruntime'], versions\n"
        "heavy = sorted({'numpy', 'onnxruntime'} & set(sys.modules))\n"
        "assert not heavy, heavy\n"
    )

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stderr


def test_environment_describes_python_packages_and_host() -> None:
    described = environment()

    assert described["python"] == sys.version.split()[0]
    assert set(described["packages"]) == set(environment_module.VERSIONED_PACKAGES)
    host = described["host"]
    assert host["logical_cpus"] == os.cpu_count()
    assert host["usable_cpus"] >= 1
    assert host["memory_total_mb"] > 0
    json.dumps(described)
