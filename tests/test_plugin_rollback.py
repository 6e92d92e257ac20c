"""Rollback advice as users meet it: save a release, break a candidate, read the verdict.

The release run passes a latency budget no machine can miss (60 s for a tiny model);
a candidate fails through a test that asserts on an environment variable, so nothing
depends on how fast or loaded the machine is.  The regression tolerance is wide open
for the same reason: these tests are about the rollback advice, not the gates.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import DeployProject

MODELS = Path(__file__).resolve().parent / "models"
RELEASE_MODEL = MODELS / "tiny_linear.onnx"
CANDIDATE_MODEL = MODELS / "fixed_only.onnx"

TESTS = """
import os
import pytest


@pytest.mark.latency_under(60000)
def test_request(deploy_model):
    deploy_model.run(deploy_model.example_inputs())


def test_candidate(deploy_model):
    assert os.environ.get("DEPLOYCHECK_TEST_CANDIDATE_BROKEN") != "1"
"""

ROLLBACK_LINE = "  ! roll back to release.json*"


def use_model(project: DeployProject, model: str) -> None:
    """Point the project's one model at models/<model>."""
    project.configure(models={"optimized": {"path": f"models/{model}"}})


def rollback_check(project: DeployProject) -> dict[str, Any]:
    (check,) = [c for c in project.report()["checks"] if c["name"] == "rollback"]
    return dict(check)


def short_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


@pytest.fixture
def deploy_project(deploy_project: DeployProject) -> DeployProject:
    """This module's projects: models/v1.onnx (v2.onnx beside it) on edge, the target, with
    the regression gates wide open."""
    return deploy_project.replace(
        target="edge",
        models={"optimized": {"path": "models/v1.onnx"}},
        devices=({"name": "edge", "memory_mb": 100000, "cpus": 1},),
        extra="[tool.deploycheck.regression]\nlatency_pct = 1000000",
        files={"models/v1.onnx": RELEASE_MODEL, "models/v2.onnx": CANDIDATE_MODEL},
        test_file="test_user_rollback",
    )


@pytest.fixture
def release(pytester: pytest.Pytester, deploy_project: DeployProject) -> Path:
    """A project whose release run was saved as release.json, with models/v1.onnx."""
    deploy_project.make(TESTS)
    result = pytester.runpytest("--deploy-save=release.json")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["release_candidate: True", "baseline saved: *release.json*"])
    return pytester.path / "release.json"


def break_candidate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPLOYCHECK_TEST_CANDIDATE_BROKEN", "1")


def test_a_saved_release_records_its_model_files_and_its_verdict(release: Path) -> None:
    document = json.loads(release.read_text())

    model = release.parent / "models" / "v1.onnx"
    assert document["release_candidate"] is True
    assert document["models"] == {
        "optimized": {
            "path": "models/v1.onnx",
            "sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
            "bytes": model.stat().st_size,
        }
    }


def test_a_failed_candidate_with_another_model_is_told_which_release_file_to_go_back_to(
    pytester: pytest.Pytester,
    deploy_project: DeployProject,
    release: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_model(deploy_project, "v2.onnx")
    break_candidate(monkeypatch)
    result = pytester.runpytest("--deploy-baseline=release.json")
    result.assert_outcomes(passed=1, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    sha = short_sha(pytester.path / "models" / "v1.onnx")
    result.stdout.fnmatch_lines(
        [
            "release_candidate: False",
            "  - test_user_rollback.py::test_candidate: test failed",
            f"  ! roll back to release.json (edge, *): optimized = models/v1.onnx (sha256 {sha}),"
            " still on disk there",
        ]
    )
    verdict = deploy_project.report()["verdict"]
    assert verdict["release_candidate"] is False
    (caveat,) = verdict["caveats"]
    assert caveat.startswith("roll back to release.json (edge, ")
    assert caveat.endswith(f"optimized = models/v1.onnx (sha256 {sha}), still on disk there")
    check = rollback_check(deploy_project)
    assert (check["status"], check["value"], check["gating"]) == ("INFO", 1, False)
    assert check["details"].startswith("1 of 1 model files changed since release.json (edge, ")
    assert check["extra"]["changed"] == ["optimized"]


def test_a_release_file_no_longer_on_disk_must_come_from_the_artifacts(
    pytester: pytest.Pytester, release: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    break_candidate(monkeypatch)
    sha = short_sha(pytester.path / "models" / "v1.onnx")
    shutil.copy(CANDIDATE_MODEL, pytester.path / "models" / "v1.onnx")  # replaced in place
    result = pytester.runpytest("--deploy-baseline=release.json")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "release_candidate: False",
            f"  ! roll back to release.json (edge, *): optimized = models/v1.onnx (sha256 {sha}),"
            " not on disk any more: restore it from the release's artifacts",
        ]
    )
    result.stdout.no_fnmatch_line("*still on disk there*")


def test_a_failed_candidate_with_the_release_models_is_told_to_roll_the_code_back(
    pytester: pytest.Pytester,
    deploy_project: DeployProject,
    release: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    break_candidate(monkeypatch)
    result = pytester.runpytest("--deploy-baseline=release.json")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "release_candidate: False",
            "  ! the model files are those of release.json (edge, *): the failure comes from"
            " the code, the environment or the budgets, not the models; roll the code back",
        ]
    )
    assert rollback_check(deploy_project)["value"] == 0


def test_a_passing_run_against_the_release_prints_no_rollback_advice(
    pytester: pytest.Pytester, deploy_project: DeployProject, release: Path
) -> None:
    use_model(deploy_project, "v2.onnx")
    result = pytester.runpytest("--deploy-baseline=release.json")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["release_candidate: True"])
    result.stdout.no_fnmatch_line("  ! *")
    assert deploy_project.report()["verdict"]["caveats"] == []
    check = rollback_check(deploy_project)  # still recorded: what changed since the release
    assert check["details"].startswith("1 of 1 model files changed since release.json")
    assert check["caveats"] == []


def test_an_old_release_without_model_records_asks_to_be_saved_again(
    pytester: pytest.Pytester,
    deploy_project: DeployProject,
    release: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    break_candidate(monkeypatch)
    document = json.loads(release.read_text())
    del document["models"], document["release_candidate"]
    release.write_text(json.dumps(document))
    result = pytester.runpytest("--deploy-baseline=release.json")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["release_candidate: False"])
    result.stdout.no_fnmatch_line(ROLLBACK_LINE)
    check = rollback_check(deploy_project)
    assert check["value"] is None
    assert "records no model files" in check["details"]
    assert "save the release again with --deploy-save" in check["details"]
