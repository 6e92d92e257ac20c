"""A fault fails one test, not the session: hangs, crashes and sizes that would not fit.

The hang and crash runs use ``runpytest_subprocess``: they involve a signal sent to the
main thread, a process ending itself (``os._exit``) and xdist's workers, none of which
may touch the process running this suite.  Budgets and timings stay far apart: a body
that hangs sleeps 60 s against bounds of a second or less, and each run must end well
before that sleep would (``timeout``).
"""

from __future__ import annotations

import inspect
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from pytest_deploycheck import assert_accuracy_drop
from pytest_deploycheck.markers import MARKERS, MarkerError

if TYPE_CHECKING:
    from conftest import DeployProject

TINY = Path(__file__).parent / "models" / "tiny_linear.onnx"
HANG_S = 60  # what a hung body sleeps
SESSION_LIMIT_S = 45  # a run with a hung body must end well before the sleep would


@pytest.fixture
def project(deploy_project: DeployProject) -> DeployProject:
    """The reference project with edge-c as its target."""
    return deploy_project.replace(target="edge-c")


# --------------------------------------------------------------------------- hangs

HUNG_LATENCY = f"""
import time
from pytest_deploycheck import latency_under

@latency_under(100, max_time_s=0.5, warmup=0)
def test_hangs():
    time.sleep({HANG_S})

def test_still_runs(deploy_target):
    pass
"""


def test_a_call_that_hangs_under_latency_under_fails_its_test_and_the_session_goes_on(
    pytester: pytest.Pytester, project: DeployProject
) -> None:
    project.make(HUNG_LATENCY)
    result = pytester.runpytest_subprocess(timeout=SESSION_LIMIT_S)
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(
        [
            "stack of the hung call (most recent call last):",
            '  File "*test_deploy.py", line 6, in test_hangs',
            f"    time.sleep({HANG_S})",
            "latency_under_100: hung: a call of the test body was still running 5.5 s into the"
            " timing phase, whose bound is 0.5 s (grace max(5 s, 20%)) in"
            " test_deploy.py::test_hangs",
        ]
    )
    result.stdout.fnmatch_lines(["latency_under_100 * hung in the timing phase *FAIL"])
    result.stdout.fnmatch_lines(["release_candidate: False"])
    report = project.report()
    assert report["verdict"]["release_candidate"] is False
    [check] = report["checks"]
    assert (check["name"], check["status"], check["value"]) == ("latency_under_100", "FAIL", None)
    assert check["extra"]["hang"]["phase"] == "timing"
    assert "time.sleep" in check["extra"]["hang"]["stack"]


def test_a_call_that_hangs_in_a_soak_fails_as_hung(
    pytester: pytest.Pytester, project: DeployProject
) -> None:
    tests = f"""
import time
import pytest

@pytest.mark.soak(0.01)
def test_soaks():
    time.sleep({HANG_S})
"""
    project.make(tests)
    result = pytester.runpytest_subprocess(timeout=SESSION_LIMIT_S)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["soak_0.01min: hung: *still running 5.6 s into the soak phase, whose bound is 0.6 s*"]
    )
    assert project.report()["verdict"]["release_candidate"] is False


def test_a_call_that_cannot_be_interrupted_writes_false_evidence_and_ends_the_session(
    pytester: pytest.Pytester, project: DeployProject
) -> None:
    # The body swallows the interrupt, as native code that never returns would ignore it.
    tests = f"""
import time
from pytest_deploycheck import latency_under

@latency_under(100, max_time_s=0.5, warmup=0)
def test_stuck():
    while True:
        try:
            time.sleep({HANG_S})
        except BaseException:
            pass

def test_never_reached(deploy_target):
    pass
"""
    project.make(tests)
    evidence = project.evidence()
    evidence.mkdir(parents=True)
    (evidence / "report.json").write_text(json.dumps({"verdict": {"release_candidate": True}}))
    result = pytester.runpytest_subprocess(timeout=SESSION_LIMIT_S)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stderr.fnmatch_lines(
        [
            "stack of the hung call (most recent call last):",
            "*in test_stuck",
            "latency_under_100: hung: * in test_deploy.py::test_stuck",
            "release_candidate: False (the session ended: test_deploy.py::test_stuck hung in a"
            " call that could not be interrupted)",
        ]
    )
    report = project.report()
    assert (report["status"], report["verdict"]["release_candidate"]) == ("interrupted", False)
    assert report["failed_tests"] == ["test_deploy.py::test_stuck"]
    [check] = report["checks"]
    assert (check["name"], check["status"]) == ("latency_under_100", "FAIL")
    assert check["nodeid"] == "test_deploy.py::test_stuck"


# --------------------------------------------------------------------------- crashes


def test_with_n_1_a_crashing_test_leaves_the_others_running_and_the_summary_printed(
    pytester: pytest.Pytester, project: DeployProject
) -> None:
    tests = """
import os
from pytest_deploycheck import latency_under

@latency_under(1000, max_time_s=1)
def test_crashes(deploy_target):
    os._exit(1)

@latency_under(1000, max_time_s=1)
def test_after_the_crash(deploy_target):
    pass
"""
    project.make(tests)
    result = pytester.runpytest_subprocess("-n", "1", timeout=SESSION_LIMIT_S)
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["*worker 'gw0' crashed while running*test_crashes*"])
    result.stdout.fnmatch_lines(["*deploy readiness: edge-c*", "latency_under_1000 *PASS"])
    result.stdout.fnmatch_lines(["release_candidate: *"])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


# --------------------------------------------------------------------------- markers


def test_throughput_over_without_a_batch_collects_and_runs(
    pytester: pytest.Pytester, project: DeployProject
) -> None:
    tests = """
from pytest_deploycheck import throughput_over

@throughput_over(10, max_time_s=1)
def test_fast():
    pass

def test_other_test_of_the_module():
    pass
"""
    project.make(tests)
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["throughput_over_10[[]batch=1[]] * at batch 1 *PASS"])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


def test_the_default_batch_is_a_tuple_of_one() -> None:
    _, options = MARKERS["throughput_over"].read((10,), {})
    assert options["batch"] == (1,)
    assert "batch=1," in MARKERS["throughput_over"].signature


@pytest.mark.parametrize("interval", [1e-9, 0.005])
def test_a_soak_sampled_more_often_than_every_10_ms_is_refused(interval: float) -> None:
    with pytest.raises(MarkerError) as excinfo:
        MARKERS["soak"].read((1,), {"sample_interval_s": interval})
    assert str(excinfo.value) == (
        f"@soak sample_interval_s: expected at least 0.01 seconds between samples, got {interval!r}"
    )
    assert MARKERS["soak"].read((1,), {"sample_interval_s": 0.01})[1]["sample_interval_s"] == 0.01


def test_a_bad_soak_interval_fails_that_test_in_one_line(
    pytester: pytest.Pytester, project: DeployProject
) -> None:
    tests = """
import pytest

@pytest.mark.soak(0.01, sample_interval_s=1e-9)
def test_soak():
    pass

def test_other():
    pass
"""
    project.make(tests)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*test_soak: @soak sample_interval_s: expected at least 0.01 seconds between samples*"]
    )
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


# --------------------------------------------------------------------------- sizes


@pytest.mark.parametrize("cpus", [1025, 5000])
def test_a_device_with_more_cpus_than_any_host_is_a_config_error(
    pytester: pytest.Pytester, deploy_project: DeployProject, cpus: int
) -> None:
    device = {"name": "huge", "memory_mb": 4096, "cpus": cpus}
    deploy_project.make("def test_nothing():\n    pass\n", devices=[device])
    result = pytester.runpytest("--deploy-target", "huge")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"*cpus*expected a whole number of cores from 1 to 1024, got {cpus}*"]
    )
    result.stderr.no_fnmatch_line("*INTERNALERROR*")
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


@pytest.fixture
def tiny_project(project: DeployProject) -> DeployProject:
    """The tiny real model (input x: float32 [batch, 4]) as the default model."""
    return project.replace(
        models={"optimized": {"path": "models/tiny.onnx"}}, files={"models/tiny.onnx": TINY}
    )


def test_an_input_shape_larger_than_the_host_fails_that_test_in_one_line(
    pytester: pytest.Pytester, tiny_project: DeployProject
) -> None:
    shapes = "[tool.deploycheck.models.optimized.input_shapes]\nx = [100000000000, 4]"
    tests = """
def test_uses_the_model(deploy_model):
    deploy_model.run(deploy_model.example_inputs())

def test_other():
    pass
"""
    tiny_project.make(tests, extra=shapes)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*input_shapes[[]'x'[]] = [[]100000000000, 4[]] needs 1,600 GB for one array, more than"
            " this host's * GB of memory; the model's input is float32 [[]batch, 4[]]"
        ]
    )
    result.stdout.no_fnmatch_line("*MemoryError*")


def test_a_batch_larger_than_the_free_memory_fails_that_test_in_one_line(
    pytester: pytest.Pytester, tiny_project: DeployProject
) -> None:
    tests = """
def test_huge_batch(deploy_model):
    deploy_model.example_inputs(batch=10**11)
"""
    tiny_project.make(tests)
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "test_deploy.py::test_huge_batch: model 'optimized' *: example inputs for input 'x'"
            " of shape [[]100000000000, 4[]] (float32) need * GB for 2 feed sets, more than the"
            " * GB of memory available; use a smaller batch or input_shapes entry"
        ]
    )
    result.stdout.no_fnmatch_line("*MemoryError*")


# --------------------------------------------------------------------------- endless data


@dataclass(frozen=True)
class Spec:
    name: str
    dtype: str | None = None


class ConstantModel:
    """Scores class 0 highest for every item."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.inputs = [Spec("x")]
        self.outputs = [Spec("scores")]

    def run(self, feeds: Mapping[str, Any]) -> Sequence[Any]:
        rows = len(feeds["x"])
        return [np.tile(np.array([0.9, 0.1]), (rows, 1))]


def test_an_endless_data_iterable_ends_in_one_line_at_max_items() -> None:
    endless = itertools.repeat((np.zeros(1, dtype=np.float32), 0))
    models = ConstantModel("baseline"), ConstantModel("optimized")
    with pytest.raises(ValueError) as excinfo:
        assert_accuracy_drop(*models, endless, max_drop=0.01, max_items=1000, batch_size=64)
    assert str(excinfo.value) == (
        "data yielded more than max_items=1,000 items (an endless iterator?); pass a finite"
        " data set, or a larger max_items= (None: no cap)"
    )
    finite = itertools.islice(endless, 1000)
    assert assert_accuracy_drop(*models, finite, max_drop=0.01, max_items=1000).n == 1000


def test_the_item_cap_defaults_to_a_million() -> None:
    assert inspect.signature(assert_accuracy_drop).parameters["max_items"].default == 1_000_000


def test_arrays_are_not_capped_their_length_is_known() -> None:
    models = ConstantModel("baseline"), ConstantModel("optimized")
    data = np.zeros((50, 1), dtype=np.float32), np.zeros(50, dtype=np.int64)
    assert assert_accuracy_drop(*models, data, max_drop=0.01, max_items=10).n == 50
