"""Unit tests of rollback.py: model file records and the rollback advice of a failed run."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from pytest_deploycheck.checks.record import Check
from pytest_deploycheck.config.schema import parse_config
from pytest_deploycheck.verdict.baseline import Baseline
from pytest_deploycheck.verdict.decide import decide
from pytest_deploycheck.verdict.rollback import file_sha256, model_records, rollback_check

CREATED = "2024-06-01T12:00:00+00:00"
WHERE = f"release.json (edge, {CREATED})"


def write(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def record(path: str, content: bytes) -> dict[str, Any]:
    return {"path": path, "sha256": sha(content), "bytes": len(content)}


def release(
    models: dict[str, dict[str, Any]],
    *,
    candidate: bool | None = True,
    source: str = "release.json",
) -> Baseline:
    return Baseline(
        target="edge",
        environment={},
        created=CREATED,
        checks={},
        source=Path(source),
        models=models,
        release_candidate=candidate,
    )


def passing() -> Check:
    return Check("latency_under_80", metric="latency_p95", value=12.0, unit="ms", budget=80)


def failing() -> Check:
    return Check(
        "latency_under_80", metric="latency_p95", value=120.0, unit="ms", budget=80, passed=False
    )


# --------------------------------------------------------------------------- records


def test_file_sha256_is_the_files_sha256(tmp_path: Path) -> None:
    content = bytes(range(256)) * 5000  # more than one read chunk
    path = write(tmp_path / "model.onnx", content)

    assert file_sha256(path) == hashlib.sha256(content).hexdigest()


def test_file_sha256_of_an_empty_file(tmp_path: Path) -> None:
    assert file_sha256(write(tmp_path / "empty.onnx", b"")) == hashlib.sha256(b"").hexdigest()


def test_model_records_name_path_hash_and_size(tmp_path: Path) -> None:
    write(tmp_path / "models" / "int8.onnx", b"int8 model")
    outside = write(tmp_path.parent / f"{tmp_path.name}-shared" / "fp32.onnx", b"fp32")
    config = parse_config(
        {"models": {"optimized": {"path": "models/int8.onnx"}, "baseline": {"path": str(outside)}}},
        source=tmp_path / "pyproject.toml",
    )

    records = model_records(config, tmp_path)

    assert records == {
        "optimized": {"path": "models/int8.onnx", "sha256": sha(b"int8 model"), "bytes": 10},
        "baseline": {"path": str(outside), "sha256": sha(b"fp32"), "bytes": 4},
    }


def test_a_model_file_that_cannot_be_read_is_recorded_with_its_error(tmp_path: Path) -> None:
    path = write(tmp_path / "models" / "gone.onnx", b"x")
    config = parse_config(
        {"models": {"optimized": {"path": "models/gone.onnx"}}}, source=tmp_path / "pyproject.toml"
    )
    path.unlink()

    records = model_records(config, tmp_path)

    assert records == {
        "optimized": {
            "path": "models/gone.onnx",
            "sha256": None,
            "error": "No such file or directory",
        }
    }


# --------------------------------------------------------------------------- the check


def test_a_release_candidate_gets_no_caveat(tmp_path: Path) -> None:
    write(tmp_path / "models" / "a.onnx", b"a")
    write(tmp_path / "models" / "b.onnx", b"b")
    models = {"a": record("models/a.onnx", b"a"), "b": record("models/b.onnx", b"b")}

    check = rollback_check(release(models), models, release_candidate=True, project_dir=tmp_path)

    assert (check.name, check.metric, check.value, check.unit) == (
        "rollback",
        "rollback",
        0,
        "models changed",
    )
    assert (check.gating, check.passed, check.status) == (False, True, "INFO")
    assert check.details == f"0 of 2 model files changed since {WHERE}"
    assert check.display == check.details
    assert check.caveats == ()
    assert check.extra["changed"] == []
    assert check.extra["candidate"] is True


def test_a_changed_model_that_passes_is_reported_without_caveat(tmp_path: Path) -> None:
    old = record("models/v1.onnx", b"v1")
    current = {"optimized": record("models/v2.onnx", b"v2")}

    check = rollback_check(
        release({"optimized": old}), current, release_candidate=True, project_dir=tmp_path
    )

    assert check.value == 1
    assert check.details == f"1 of 1 model files changed since {WHERE}"
    assert check.extra["changed"] == ["optimized"]
    assert check.caveats == ()


def test_a_failed_candidate_names_the_release_model_still_on_disk(tmp_path: Path) -> None:
    write(tmp_path / "models" / "v1.onnx", b"v1")
    write(tmp_path / "models" / "v2.onnx", b"v2")
    write(tmp_path / "models" / "fp32.onnx", b"fp32")
    old = {"optimized": record("models/v1.onnx", b"v1"), "ref": record("models/fp32.onnx", b"fp32")}
    current = {**old, "optimized": record("models/v2.onnx", b"v2")}

    check = rollback_check(release(old), current, release_candidate=False, project_dir=tmp_path)

    assert check.value == 1
    assert check.details == f"1 of 2 model files changed since {WHERE}"
    assert check.caveats == (
        f"roll back to {WHERE}: optimized = models/v1.onnx (sha256 {sha(b'v1')[:12]}),"
        " still on disk there",
    )
    assert check.extra["rollback_to"] == {"optimized": old["optimized"]}
    assert (check.gating, check.status) == (False, "INFO")


@pytest.mark.parametrize("gone", ["deleted", "overwritten"])
def test_a_failed_candidate_is_told_to_restore_a_model_no_longer_on_disk(
    tmp_path: Path, gone: str
) -> None:
    old = {"optimized": record("models/int8.onnx", b"release")}
    if gone == "overwritten":  # same path, other content: the release's file is gone
        write(tmp_path / "models" / "int8.onnx", b"candidate")
    current = {"optimized": record("models/int8.onnx", b"candidate")}

    check = rollback_check(release(old), current, release_candidate=False, project_dir=tmp_path)

    (caveat,) = check.caveats
    assert caveat == (
        f"roll back to {WHERE}: optimized = models/int8.onnx (sha256 {sha(b'release')[:12]}),"
        " not on disk any more: restore it from the release's artifacts"
    )
    assert "still on disk" not in caveat


def test_an_absolute_release_path_is_looked_up_where_it_was(tmp_path: Path) -> None:
    path = write(tmp_path / "elsewhere" / "v1.onnx", b"v1")
    old = {"optimized": record(str(path), b"v1")}
    current = {"optimized": record("models/v2.onnx", b"v2")}

    check = rollback_check(
        release(old), current, release_candidate=False, project_dir=tmp_path / "project"
    )

    assert check.caveats[0].endswith(
        f"optimized = {path} (sha256 {sha(b'v1')[:12]}), still on disk there"
    )


def test_several_changed_models_are_named_in_one_caveat(tmp_path: Path) -> None:
    old = {"a": record("a.onnx", b"a1"), "b": record("b.onnx", b"b1"), "c": record("c.onnx", b"c")}
    current = {"a": record("a.onnx", b"a2"), "b": record("b.onnx", b"b2"), "c": old["c"]}

    check = rollback_check(release(old), current, release_candidate=False, project_dir=tmp_path)

    (caveat,) = check.caveats
    assert caveat.startswith(f"roll back to {WHERE}: a = a.onnx (sha256 ")
    assert "; b = b.onnx (sha256 " in caveat
    assert "c = c.onnx" not in caveat
    assert check.details == f"2 of 3 model files changed since {WHERE}"


def test_a_removed_model_counts_as_changed_and_a_new_one_is_named(tmp_path: Path) -> None:
    old = {"a": record("a.onnx", b"a"), "b": record("b.onnx", b"b")}
    current = {"a": old["a"], "z": record("z.onnx", b"z")}

    check = rollback_check(release(old), current, release_candidate=True, project_dir=tmp_path)

    assert check.extra["changed"] == ["b"]
    assert check.extra["added"] == ["z"]
    assert check.details == f"1 of 2 model files changed since {WHERE}; new: z"


def test_a_failure_with_unchanged_models_says_to_roll_the_code_back(tmp_path: Path) -> None:
    models = {"optimized": record("models/int8.onnx", b"same")}

    check = rollback_check(release(models), models, release_candidate=False, project_dir=tmp_path)

    assert check.value == 0
    assert check.caveats == (
        f"the model files are those of {WHERE}: the failure comes from the code,"
        " the environment or the budgets, not the models; roll the code back",
    )


def test_a_baseline_without_model_records_says_to_save_it_again(tmp_path: Path) -> None:
    current = {"optimized": record("models/int8.onnx", b"x")}

    for candidate in (True, False):
        check = rollback_check(
            release({}, candidate=None), current, release_candidate=candidate, project_dir=tmp_path
        )

        assert (check.value, check.unit, check.status) == (None, "", "INFO")
        assert check.details == (
            f"release.json (edge, {CREATED}) records no model files (saved by an older"
            " pytest-deploycheck): save the release again with --deploy-save to name a"
            " rollback target"
        )
        assert check.caveats == ()


def test_a_release_that_was_not_a_candidate_itself_is_said(tmp_path: Path) -> None:
    models = {"optimized": record("models/int8.onnx", b"same")}
    old = release(models, candidate=False)

    failed = rollback_check(old, models, release_candidate=False, project_dir=tmp_path)
    passed = rollback_check(old, models, release_candidate=True, project_dir=tmp_path)

    assert len(failed.caveats) == 2
    assert failed.caveats[1] == f"{WHERE} was itself not a release candidate"
    assert failed.extra["release_was_candidate"] is False
    assert passed.caveats == ()


@pytest.mark.parametrize("run_passed", [True, False])
def test_the_rollback_check_never_changes_the_verdict(tmp_path: Path, run_passed: bool) -> None:
    old = {"optimized": record("models/v1.onnx", b"v1")}
    current = {"optimized": record("models/v2.onnx", b"v2")}
    checks = [passing() if run_passed else failing()]
    before = decide(checks, target="edge")

    rollback = rollback_check(
        release(old, candidate=False),
        current,
        release_candidate=before.release_candidate,
        project_dir=tmp_path,
    )
    after = decide([*checks, rollback], target="edge")

    assert after.release_candidate is before.release_candidate is run_passed
    assert after.reasons == before.reasons
    assert after.caveats == rollback.caveats
    assert bool(after.caveats) is not run_passed
    assert after.counts["INFO"] == before.counts["INFO"] + 1


def test_a_rollback_check_alone_is_no_release_candidate(tmp_path: Path) -> None:
    models = {"optimized": record("models/int8.onnx", b"same")}
    check = rollback_check(release(models), models, release_candidate=True, project_dir=tmp_path)

    assert decide([check], target="edge").release_candidate is False
