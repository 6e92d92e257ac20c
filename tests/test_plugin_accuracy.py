"""The accuracy-drop assertion and its failure cases, as users run them."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnxruntime as ort
import pytest

if TYPE_CHECKING:
    from conftest import DeployProject

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "example_project"

# A "model" whose top-1 is shifted on every n-th item: the optimized side of a drop.
BROKEN = """
import numpy as np

class Broken:
    name = "broken"
    # It shifts by position in a batch, so it is deployed at the batch its drop was
    # written for: evaluated at 64, not batch 1 (where every item would shift).
    batch = 64

    def __init__(self, model, every=3):
        self.model = model
        self.inputs = model.inputs
        self.every = every

    def run(self, feeds):
        rows = (np.arange(len(feeds["image"])) % self.every == 0)[:, None]
        return [np.where(rows, np.roll(out, 1, axis=1), out) for out in self.model.run(feeds)]
"""


# What every test module starts with: the evaluation set, read once.
HEADER = """import numpy as np
from pytest_deploycheck import assert_accuracy_drop
with np.load('digits.npz') as DATA:
    EVAL = (DATA['images'], DATA['labels'])
"""


@pytest.fixture
def deploy_project(deploy_project: DeployProject) -> DeployProject:
    """This module's projects: the example's two models and evaluation set, BROKEN beside
    them, on edge, the target, which requires the failure cases."""
    return deploy_project.replace(
        target="edge",
        top='required_evidence = ["failure_cases.md"]',
        models={
            "baseline": {"path": "models/fp32.onnx"},
            "optimized": {"path": "models/int8.onnx"},
        },
        devices=({"name": "edge", "memory_mb": 4096, "cpus": 1},),
        files={
            "models/fp32.onnx": EXAMPLE / "models" / "classifier_fp32.onnx",
            "models/int8.onnx": EXAMPLE / "models" / "classifier_int8.onnx",
            "digits.npz": EXAMPLE / "data" / "digits_test.npz",
            "broken.py": BROKEN,
        },
        test_file="test_user_accuracy",
        test_header=HEADER,
    )


def test_a_kept_accuracy_passes_and_writes_failure_cases(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    tests = """
def test_drop(deploy_models):
    result = assert_accuracy_drop(deploy_models["baseline"], deploy_models["optimized"], EVAL,
                                  max_drop=0.01)
    assert result.n == 450
"""
    deploy_project.make(tests)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "accuracy_drop_ok*0 (baseline 0.98 → 0.98)*budget 0.01*measured*PASS",
            "has_failure_cases*failure_cases.md written*PASS",
            "release_candidate: True",
            "evidence_files: *'failure_cases.md'*",
        ]
    )
    text = (deploy_project.evidence() / "failure_cases.md").read_text()
    assert "## accuracy_drop_ok: optimized against baseline" in text
    assert "| 64 | 2 | 1 (0.978) | 1 (0.982) | both wrong |" in text


def test_a_hidden_accuracy_drop_fails_with_the_figures(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    tests = """
from broken import Broken

def test_drop(deploy_models):
    assert_accuracy_drop(deploy_models["baseline"], Broken(deploy_models["optimized"]), EVAL,
                         max_drop=0.01)
"""
    deploy_project.make(tests)
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: accuracy drop 0.3* > 0.01: baseline 0.98, optimized 0.6*"
            " (n=450, agreement 0.6*, 95% CI of the drop * to *)*",
            "accuracy_drop_ok*FAIL",
            "release_candidate: False",
        ]
    )
    text = (deploy_project.evidence() / "failure_cases.md").read_text()
    assert "| regression |" in text


def test_a_set_too_small_to_resolve_the_budget_is_said_and_can_fail(
    pytester: pytest.Pytester,
    deploy_project: DeployProject,
) -> None:
    tests = """
SMALL = (EVAL[0][:20], EVAL[1][:20])

def test_reported(deploy_models):
    assert_accuracy_drop(deploy_models["baseline"], deploy_models["optimized"], SMALL,
                         max_drop=0.01)

def test_strict(deploy_models):
    from broken import Broken
    assert_accuracy_drop(deploy_models["baseline"], Broken(deploy_models["optimized"], 10),
                         SMALL, max_drop=0.15, require_resolution=True, name="strict_drop")
"""
    deploy_project.make(tests)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*n=20 is too small to resolve a budget of 0.15*about * items would be needed*"]
    )
    report = deploy_project.report()
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["accuracy_drop_ok"]["extra"]["resolved"] is True  # identical models: CI 0 wide
    strict = checks["strict_drop"]
    assert strict["value"] <= 0.15  # within the budget, yet failed: the set cannot tell
    assert (strict["passed"], strict["extra"]["resolved"]) == (False, False)


def test_max_drop_defaults_from_the_config(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    tests = """
def test_drop(deploy_models):
    result = assert_accuracy_drop(deploy_models["baseline"], deploy_models["optimized"], EVAL)
    assert result.max_drop == 0.02
"""
    deploy_project.make(tests, extra="[tool.deploycheck.budgets]\naccuracy_drop = 0.02")
    pytester.runpytest().assert_outcomes(passed=1)


def test_a_hand_written_failure_cases_file_is_kept(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    tests = """
def test_drop(deploy_models):
    assert_accuracy_drop(deploy_models["baseline"], deploy_models["optimized"], EVAL,
                         max_drop=0.01)
"""
    deploy_project.make(tests)
    pytester.makefile(".md", failure_cases="# Known\n\nGlare on the lens reads 8 as 3.\n")
    pytester.runpytest().assert_outcomes(passed=1)
    text = (deploy_project.evidence() / "failure_cases.md").read_text()
    assert text.index("## accuracy_drop_ok") < text.index("Glare on the lens reads 8 as 3.")
    assert (pytester.path / "failure_cases.md").read_text().startswith("# Known")


def test_example_project_accuracy_matches_a_standalone_evaluation(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    # Subprocess: the example project is a separate rootdir with its own configuration.
    result = pytester.run(
        sys.executable, "-m", "pytest", str(EXAMPLE), "-p", "no:cacheprovider", "-q",
        "--deploy-target", "edge-c", "--deploy-evidence-dir", str(tmp_path),
        "-k", "quantization_keeps_accuracy", "--deploy-allow-partial",
    )  # fmt: skip
    assert result.ret == 0, result.stdout.str()
    report = json.loads((tmp_path / "edge-c" / "report.json").read_text())
    check = next(c for c in report["checks"] if c["name"] == "accuracy_drop_ok")
    # deployed at batch 1; its int8 model is statically quantized, so batching is exact
    assert check["extra"]["batch"] == 1
    assert [b["batched_for_speed"] for b in check["extra"]["batching"]] == [True, True]
    with np.load(EXAMPLE / "data" / "digits_test.npz") as npz:
        data = dict(npz)
    expected = {}
    for name, file in (("baseline", "classifier_fp32.onnx"), ("optimized", "classifier_int8.onnx")):
        session = ort.InferenceSession(str(EXAMPLE / "models" / file))
        logits = session.run(["logits"], {"image": data["images"]})[0]
        expected[name] = float((logits.argmax(axis=1) == data["labels"]).mean())
    assert check["extra"]["baseline"] == pytest.approx(expected["baseline"], abs=1e-12)
    assert check["extra"]["optimized"] == pytest.approx(expected["optimized"], abs=1e-12)
    assert check["value"] == pytest.approx(expected["baseline"] - expected["optimized"], abs=1e-12)


def test_the_configured_batch_is_the_batch_the_figure_is_for(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    tests = """
def test_drop(deploy_models):
    assert deploy_models["optimized"].batch == 8
    result = assert_accuracy_drop(deploy_models["baseline"], deploy_models["optimized"], EVAL,
                                  max_drop=0.01)
    assert result.batch == 8
"""
    models = {
        "baseline": {"path": "models/fp32.onnx", "batch": 8},
        "optimized": {"path": "models/int8.onnx", "batch": 8},
    }
    deploy_project.make(tests, models=models)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    (check,) = deploy_project.checks(name="accuracy_drop_ok").values()
    assert check["extra"]["batch"] == 8
    assert [b["run_batch"] for b in check["extra"]["batching"]] == [64, 64]
    text = (deploy_project.evidence() / "failure_cases.md").read_text()
    assert "- Batch size: baseline at batch 8 (run at batch 64 for speed" in text


def test_a_batch_that_is_no_whole_number_is_a_config_error(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    models = {"baseline": {"path": "models/fp32.onnx", "batch": 0}}
    deploy_project.make("def test_nothing():\n    pass\n", models=models)
    result = pytester.runpytest()
    result.stderr.fnmatch_lines(
        ["ERROR: pyproject.toml: [[]tool.deploycheck.models.baseline]: batch: expected a whole"
         " number >= 1, got a whole number (0)"]
    )  # fmt: skip
    assert result.ret != 0
