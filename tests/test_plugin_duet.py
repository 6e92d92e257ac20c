"""The paired A/B comparison as users meet it: a release saved, a model swapped.

The release runs models/v1.onnx, the candidate models/v2.onnx (another tiny model with
the same signature).  Budgets and tolerances are wide open: these tests are about which
comparison the gate makes and what it records, never about how fast either model is.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_deploycheck.measure.duet import DUET_ROUNDS

if TYPE_CHECKING:
    from conftest import DeployProject

MODELS = Path(__file__).resolve().parent / "models"

TESTS = """
import pytest


@pytest.mark.latency_under(60000, min_samples=60, max_samples=60, percentile=50)
def test_request(deploy_model):
    deploy_model.run(deploy_model.example_inputs())


@pytest.mark.throughput_over(0.001, min_samples=50, max_samples=50)
def test_batch(deploy_model, deploy_batch):
    deploy_model.run(deploy_model.example_inputs())
"""


@pytest.fixture
def deploy_project(deploy_project: DeployProject) -> DeployProject:
    return deploy_project.replace(
        target="edge",
        models={"optimized": {"path": "models/v1.onnx"}},
        devices=({"name": "edge", "memory_mb": 100000, "cpus": 1},),
        extra="[tool.deploycheck.regression]\nlatency_pct = 1000000\nthroughput_pct = 99",
        files={
            "models/v1.onnx": MODELS / "tiny_linear.onnx",
            "models/v2.onnx": MODELS / "batch_mean.onnx",
        },
        test_file="test_user_duet",
    )


@pytest.fixture
def release(pytester: pytest.Pytester, deploy_project: DeployProject) -> Path:
    deploy_project.make(TESTS)
    pytester.runpytest("--deploy-save=release.json").assert_outcomes(passed=2)
    return pytester.path / "release.json"


def timed_checks(project: DeployProject) -> dict[str, dict[str, Any]]:
    return {
        c["name"]: c
        for c in project.report()["checks"]
        if c["name"].startswith(
            ("latency_under", "throughput_over", "regression[l", "regression[t")
        )
    }


def test_a_changed_model_is_timed_beside_the_release_file_and_judged_on_the_pair(
    pytester: pytest.Pytester, deploy_project: DeployProject, release: Path
) -> None:
    deploy_project.configure(models={"optimized": {"path": "models/v2.onnx"}})
    result = pytester.runpytest("--deploy-baseline=release.json")
    result.assert_outcomes(passed=2)
    checks = timed_checks(deploy_project)
    duet = checks["latency_under_60000"]["extra"]["duet"]
    assert len(duet["rounds"]) == DUET_ROUNDS
    assert duet["models"] == ["optimized"]
    assert duet["release_files"]["optimized"]["path"] == "models/v1.onnx"
    assert all(base > 0 and cand > 0 for base, cand in duet["rounds"])
    for name in ("regression[latency_under_60000]", "regression[throughput_over_0.001[batch=1]]"):
        comparison = checks[name]
        assert comparison["extra"]["paired"] is True
        assert "paired with the release's optimized" in comparison["details"]
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


def test_an_unchanged_model_needs_no_pair(
    pytester: pytest.Pytester, deploy_project: DeployProject, release: Path
) -> None:
    pytester.runpytest("--deploy-baseline=release.json").assert_outcomes(passed=2)
    checks = timed_checks(deploy_project)
    assert "duet" not in checks["latency_under_60000"]["extra"]
    assert "paired" not in checks["regression[latency_under_60000]"]["extra"]


@pytest.mark.parametrize("how", ["deleted", "rewritten in place"])
def test_a_release_file_that_is_gone_leaves_the_saved_run_gate_and_says_why(
    pytester: pytest.Pytester, deploy_project: DeployProject, release: Path, how: str
) -> None:
    v1 = pytester.path / "models" / "v1.onnx"
    if how == "deleted":
        v1.unlink()
        deploy_project.configure(models={"optimized": {"path": "models/v2.onnx"}})
    else:
        shutil.copyfile(MODELS / "batch_mean.onnx", v1)
    pytester.runpytest("--deploy-baseline=release.json").assert_outcomes(passed=2)
    checks = timed_checks(deploy_project)
    skipped = checks["latency_under_60000"]["extra"]["duet"]["skipped"]
    assert skipped.startswith("optimized: the release's file models/v1.onnx (sha256 ")
    assert skipped.endswith("is not on disk: compared with the saved run only")
    assert "paired" not in checks["regression[latency_under_60000]"]["extra"]


def test_a_release_file_of_another_signature_is_not_paired(
    pytester: pytest.Pytester, deploy_project: DeployProject, release: Path
) -> None:
    shutil.copyfile(MODELS / "two_inputs.onnx", pytester.path / "models" / "v3.onnx")
    # Swap the roles: the release file is now one the candidate's feeds do not fit.
    deploy_project.configure(models={"optimized": {"path": "models/v3.onnx"}})
    result = pytester.runpytest("--deploy-baseline=release.json")
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    extra = timed_checks(deploy_project)["latency_under_60000"]["extra"]
    assert "cannot be paired: inputs differ" in extra["duet"]["skipped"]


def test_the_release_file_is_found_in_the_release_checkout_when_rewritten_in_place(
    pytester: pytest.Pytester, deploy_project: DeployProject, release: Path
) -> None:
    # CI on a pull request: the model was rewritten in place, main is checked out beside.
    checkout = pytester.path.parent / f"{pytester.path.name}-release"
    (checkout / "models").mkdir(parents=True)
    shutil.copyfile(pytester.path / "models" / "v1.onnx", checkout / "models" / "v1.onnx")
    shutil.copyfile(MODELS / "batch_mean.onnx", pytester.path / "models" / "v1.onnx")
    result = pytester.runpytest(
        "--deploy-baseline=release.json", f"--deploy-release-dir={checkout}"
    )
    result.assert_outcomes(passed=2)
    checks = timed_checks(deploy_project)
    assert len(checks["latency_under_60000"]["extra"]["duet"]["rounds"]) == DUET_ROUNDS
    assert checks["regression[latency_under_60000]"]["extra"]["paired"] is True


def test_a_release_dir_that_is_not_a_directory_is_one_usage_line(
    pytester: pytest.Pytester, deploy_project: DeployProject, release: Path
) -> None:
    result = pytester.runpytest("--deploy-baseline=release.json", "--deploy-release-dir=nowhere")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--deploy-release-dir nowhere: not a directory; name the release's checkout*"]
    )
