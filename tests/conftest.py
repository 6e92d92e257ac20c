"""Shared set-up of the plugin's own test suite.

The plugin tests run real pytest sessions on users' projects: ``deploy_project`` builds
one in the pytester directory (its pyproject.toml, model files and test file) and reads
the evidence it leaves.  A test module whose projects differ (other models, devices or
a fixed target) overrides ``deploy_project`` with a ``replace``d copy, so the defaults
live in one place and each module says only how its projects differ.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

# In-process pytester runs forget the modules first imported inside them, and numpy's
# and onnxruntime's extension modules cannot be loaded twice in one process: import
# them here, once, so the runs share them.
import numpy  # noqa: F401
import onnxruntime  # noqa: F401
import pytest
from hypothesis import settings

pytest_plugins = "pytester"

# A shared, noisy machine must never fail a test: no per-example time limit.
settings.register_profile("deploycheck", deadline=None)
settings.load_profile("deploycheck")

Keys = Mapping[str, object]

# The reference devices table: edge-a is short of memory and power for the reference
# models, edge-b is online-only, edge-c fits and is the dearest.  Read-only, so that no
# test can change it for the next.
REFERENCE_DEVICES: Mapping[str, Keys] = MappingProxyType(
    {
        "edge-a": MappingProxyType(
            {"memory_mb": 512, "power_w": 8, "offline": True, "cpus": 1, "price_usd": 60}
        ),
        "edge-b": MappingProxyType(
            {"memory_mb": 2048, "power_w": 15, "offline": False, "cpus": 2, "price_usd": 90}
        ),
        "edge-c": MappingProxyType(
            {"memory_mb": 4096, "power_w": 25, "offline": True, "cpus": 4, "price_usd": 120}
        ),
    }
)

# Two declared-only models: their figures are in the config, their files placeholders.
REFERENCE_MODELS: MappingProxyType[str, Keys] = MappingProxyType(
    {
        "optimized": MappingProxyType(
            {"path": "models/int8.onnx", "memory_mb": 700, "power_w": 10, "requires_offline": True}
        ),
        "baseline": MappingProxyType(
            {"path": "models/fp32.onnx", "memory_mb": 820, "power_w": 12, "requires_offline": True}
        ),
    }
)
PLACEHOLDER_FILES: MappingProxyType[str, bytes] = MappingProxyType(
    {"models/int8.onnx": b"placeholder", "models/fp32.onnx": b"placeholder"}
)


def toml_value(value: object) -> str:
    """``value`` written as TOML: the booleans, numbers, strings and lists configs use."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, Sequence):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def toml_table(header: str, keys: Keys) -> str:
    """One table: its header line, then a ``key = value`` line a key."""
    return "\n".join([header, *(f"{key} = {toml_value(v)}" for key, v in keys.items())])


def device_keys(device: str | Keys) -> Keys:
    """A devices-table entry: a reference device by name, or a table of its own."""
    if isinstance(device, str):
        return {"name": device, **REFERENCE_DEVICES[device]}
    return device


@dataclass(frozen=True)
class DeployProject:
    """A user's project in the pytester directory, as one plugin test needs it.

    The fields say what ``make`` writes; ``replace`` (or keyword changes to ``make`` and
    ``configure``) gives a project that differs only where a test says so.
    """

    pytester: pytest.Pytester
    target: str | None = None  # the config's target, and whose evidence report() reads
    top: str = ""  # more TOML right under [tool.deploycheck]: keys, or whole tables
    models: Mapping[str, Keys] = field(default_factory=REFERENCE_MODELS.copy)  # by name
    devices: Sequence[str | Keys] = tuple(REFERENCE_DEVICES)  # reference names or tables
    extra: str = ""  # more TOML after the devices table
    files: Mapping[str, Path | bytes | str] = field(default_factory=PLACEHOLDER_FILES.copy)
    test_file: str = "test_deploy"  # the test module's name, without .py
    test_header: str = ""  # what every test source of this project starts with

    @property
    def path(self) -> Path:
        return self.pytester.path

    def replace(self, **changes: Any) -> DeployProject:
        """This project with some fields changed: a module's or a test's own variant."""
        return dataclasses.replace(self, **changes)

    def config_text(self) -> str:
        """The pyproject.toml text: [tool.deploycheck], models, devices, then extra."""
        lines = ["[tool.deploycheck]"]
        if self.target is not None:
            lines.append(f"target = {toml_value(self.target)}")
        lines.append(self.top)
        for name, keys in self.models.items():
            lines += ["", toml_table(f"[tool.deploycheck.models.{name}]", keys)]
        for device in self.devices:
            lines += ["", toml_table("[[tool.deploycheck.devices]]", device_keys(device))]
        lines += ["", self.extra]
        return "\n".join(lines) + "\n"

    def configure(self, **changes: Any) -> Path:
        """Write pyproject.toml (of this project, or of it with ``changes``)."""
        project = self.replace(**changes) if changes else self
        return self.pytester.makepyprojecttoml(project.config_text())

    def write_files(self) -> None:
        """Copy (a Path) or write (bytes, text) each of ``files`` into the project."""
        for relative, source in self.files.items():
            target = self.path / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(source, Path):
                shutil.copy(source, target)
            elif isinstance(source, bytes):
                target.write_bytes(source)
            else:
                target.write_text(source)

    def make(self, tests: str, name: str | None = None, **changes: Any) -> Path:
        """The whole project: files, pyproject.toml and a test module holding ``tests``."""
        project = self.replace(**changes) if changes else self
        project.write_files()
        project.configure()
        module = name or project.test_file
        return self.pytester.makepyfile(**{module: project.test_header + tests})

    def evidence(self, target: str | None = None) -> Path:
        """The evidence directory of ``target`` (by default the config's target)."""
        chosen = target or self.target
        assert chosen is not None, "say whose evidence: the config names no target"
        return self.path / "deploycheck-evidence" / chosen

    def report(self, target: str | None = None) -> dict[str, Any]:
        """report.json of the last run on ``target``."""
        return json.loads((self.evidence(target) / "report.json").read_text())  # type: ignore[no-any-return]

    def checks(self, target: str | None = None, **match: object) -> dict[str, dict[str, Any]]:
        """The checks in report.json whose fields equal ``match``, by their test's name."""
        found = [
            check
            for check in self.report(target)["checks"]
            if all(check.get(key) == value for key, value in match.items())
        ]
        by_test = {check["nodeid"].rsplit("::", 1)[-1]: check for check in found}
        assert len(by_test) == len(found), f"more than one {match} check in a test"
        return by_test


@pytest.fixture
def deploy_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> DeployProject:
    """A project builder in this test's pytester directory: the reference devices table,
    the two declared-only reference models, a test module named test_deploy.

    Each project gets its own host timing lock: the suite's tests do not wait for
    each other's timed checks, nor for another run's on this host.  The terminal is
    wide (``COLUMNS``), so that a readiness row stays one line for ``fnmatch_lines``;
    the width tests set their own.
    """
    monkeypatch.setenv("DEPLOYCHECK_LOCK_DIR", str(pytester.path))
    monkeypatch.setenv("COLUMNS", "400")
    return DeployProject(pytester)
