"""The package's public names: each resolves lazily, and the fixtures' types can be
imported for type hints without paying for onnxruntime at pytest start-up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import pytest_deploycheck
from conftest import DeployProject

MODELS = Path(__file__).resolve().parent / "models"


@pytest.mark.parametrize("name", pytest_deploycheck.__all__)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(pytest_deploycheck, name).__name__ == name


def test_the_fixture_types_are_imported_only_when_asked_for() -> None:
    code = (
        "import sys, pytest_deploycheck, pytest_deploycheck.plugin\n"
        "heavy = lambda: sorted({'numpy', 'onnxruntime'} & set(sys.modules))\n"
        "print('start-up:', heavy())\n"
        "from pytest_deploycheck import DeployModel, ModelSet\n"
        "from pytest_deploycheck.checks.models import ModelSet as Defined\n"
        "from pytest_deploycheck.measure.runtime import DeployModel as Loaded\n"
        "print('types:', DeployModel is Loaded, ModelSet is Defined)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["start-up: []", "types: True True"]


def test_the_fixtures_give_the_exported_types(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    tests = """
from pytest_deploycheck import DeployModel, ModelSet


def test_typed(deploy_model: DeployModel, deploy_models: ModelSet) -> None:
    assert isinstance(deploy_model, DeployModel)
    assert isinstance(deploy_models, ModelSet)
    assert deploy_models["optimized"] is deploy_model
"""
    deploy_project.make(
        tests,
        models={"optimized": {"path": "models/tiny.onnx"}},
        files={"models/tiny.onnx": MODELS / "tiny_linear.onnx"},
    )
    result = pytester.runpytest("--deploy-target", "edge-c")
    result.assert_outcomes(passed=1)
