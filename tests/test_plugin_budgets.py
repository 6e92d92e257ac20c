"""Budget markers and model fixtures as users run them, on a real ONNX model.

Budgets are set far from anything a machine could measure (a 10 s latency budget for
a sub-millisecond model, a 0.001 ms one for a 2 ms sleep) so that no outcome depends
on how fast or loaded the machine is.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import DeployProject

EXAMPLE_MODELS = Path(__file__).resolve().parents[1] / "example_project" / "models"

# A device too small for anything, so that memory budgets and fits fail on it.
TINY = {"name": "tiny", "memory_mb": 1, "power_w": 100, "offline": True, "cpus": 1}


@pytest.fixture
def deploy_project(deploy_project: DeployProject) -> DeployProject:
    """This module's projects: the example's real models, on edge-a and the tiny device."""
    return deploy_project.replace(
        models={
            "optimized": deploy_project.models["optimized"],
            "baseline": {"path": "models/fp32.onnx"},
        },
        devices=("edge-a", TINY),
        files={
            "models/int8.onnx": EXAMPLE_MODELS / "classifier_int8.onnx",
            "models/fp32.onnx": EXAMPLE_MODELS / "classifier_fp32.onnx",
        },
        test_file="test_user_budgets",
    )


# --------------------------------------------------------------------------- model fixtures


def test_deploy_model_is_loaded_as_the_target_runs_it(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    tests = """
def test_model(deploy_model, deploy_models, deploy_target):
    assert deploy_model.name == "optimized"
    assert deploy_model.session.get_session_options().intra_op_num_threads == deploy_target.cpus
    assert deploy_model.session.get_providers() == ["CPUExecutionProvider"]
    assert [spec.name for spec in deploy_model.inputs] == ["image"]
    logits, probabilities = deploy_model.run(deploy_model.example_inputs())
    assert logits.shape == (1, 10)
    assert deploy_models["optimized"] is deploy_model
    assert set(deploy_models) == {"optimized", "baseline"}
    baseline = deploy_models["baseline"]
    assert baseline.run(baseline.example_inputs(batch=4))[0].shape == (4, 10)
"""
    deploy_project.make(tests)
    pytester.runpytest("--deploy-target", "edge-a").assert_outcomes(passed=1)


def test_model_loader_uses_the_target_settings(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    tests = """
def test_loader(deploy_model_loader):
    model = deploy_model_loader("models/fp32.onnx", name="candidate")
    assert model.name == "candidate"
    assert model.session.get_session_options().intra_op_num_threads == 1
"""
    deploy_project.make(tests)
    pytester.runpytest("--deploy-target", "edge-a").assert_outcomes(passed=1)


def test_wrong_feeds_name_the_model_and_the_input(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    tests = """
import numpy as np

def test_feeds(deploy_model):
    deploy_model.run({"image": np.zeros((1, 8, 8), dtype=np.int64)})
"""
    deploy_project.make(tests)
    result = pytester.runpytest("--deploy-target", "edge-a")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*model 'optimized', input 'image': expected float32*"])


def test_corrupt_model_is_one_readable_line(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make("def test_model(deploy_model):\n    pass\n")
    (pytester.path / "models" / "int8.onnx").write_bytes(b"not an onnx file")
    result = pytester.runpytest("--deploy-target", "edge-a")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*model 'optimized' (*int8.onnx)*"])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


# --------------------------------------------------------------------------- latency


def test_latency_far_under_budget_passes_at_the_minimum_sample_count(
    pytester: pytest.Pytester,
    deploy_project: DeployProject,
) -> None:
    tests = """
from pytest_deploycheck import latency_under

@latency_under(10_000)
def test_fast(deploy_model):
    deploy_model.run(deploy_model.example_inputs())
"""
    deploy_project.make(tests)
    result = pytester.runpytest("--deploy-target", "edge-a")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["latency_under_10000  p95 * ms (n=130, 95% CI *)*budget 10000 ms*measured*PASS"]
    )
    check = deploy_project.report("edge-a")["checks"][0]
    assert check["metric"] == "latency_p95"
    assert check["extra"]["n"] == 130
    assert check["extra"]["warmup"] == 10


def test_latency_far_over_budget_fails_with_the_figures(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    tests = """
import time
import pytest

@pytest.mark.latency_under("0.001ms", percentile=90)
def test_slow(deploy_target):
    time.sleep(0.002)
"""
    deploy_project.make(tests)
    result = pytester.runpytest("--deploy-target", "edge-a")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*latency_under_0.001: * ms (budget 0.001 ms)*", "*FAIL*"])


def test_unsettled_latency_is_inconclusive_never_a_silent_pass(
    pytester: pytest.Pytester,
    deploy_project: DeployProject,
) -> None:
    tests = """
import pytest

@pytest.mark.latency_under(10_000, max_samples=5, warmup=0)
def test_too_few(deploy_model):
    deploy_model.run(deploy_model.example_inputs())
"""
    deploy_project.make(tests)
    result = pytester.runpytest("--deploy-target", "edge-a")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*latency_under_10000: inconclusive*", "*INCONCLUSIVE*", "release_candidate: False"]
    )


def test_latency_budget_defaults_from_the_config(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    tests = """
import pytest

@pytest.mark.latency_under
def test_default(deploy_model):
    deploy_model.run(deploy_model.example_inputs())
"""
    deploy_project.make(
        tests,
        top="[tool.deploycheck.budgets]\nlatency_ms = 5000\nlatency_percentile = 90",
    )
    result = pytester.runpytest("--deploy-target", "edge-a")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["latency_under_5000  p90 * (n=64, *PASS"])


def test_latency_factor_reports_an_estimate(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    tests = """
import pytest

@pytest.mark.latency_under(10_000)
def test_fast(deploy_model):
    deploy_model.run(deploy_model.example_inputs())
"""
    deploy_project.make(tests, devices=("edge-a", {**TINY, "latency_factor": 3.0}))
    result = pytester.runpytest("--deploy-target", "tiny")
    result.stdout.fnmatch_lines(
        ["latency_under_10000  p95 * ms estimated on tiny (host*estimated*"]
    )


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("latency_under(-1)", "*@latency_under ms: expected a finite number > 0, got -1*"),
        ("latency_under(80, percentil=99)", "*@latency_under: unknown argument 'percentil'*"),
        ("latency_under('fast')", "*@latency_under ms: cannot read 'fast'*"),
        ("latency_under()", "*@latency_under: no budget: give ms or set latency_ms*"),
        ("memory_under(512, model='optimised')", "*unknown model 'optimised'*"),
        ("throughput_over(10, batch=[1, 8])", "*the test must take the deploy_batch argument*"),
    ],
)
def test_bad_budget_markers_fail_collection_in_one_line(
    pytester: pytest.Pytester, deploy_project: DeployProject, marker: str, message: str
) -> None:
    deploy_project.make(f"import pytest\n\n@pytest.mark.{marker}\ndef test_x(): pass\n")
    result = pytester.runpytest("--deploy-target", "edge-a")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([message])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    result.stdout.no_fnmatch_line("*Traceback*")


def test_budget_marker_without_configuration_is_a_clear_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("import pytest\n\n@pytest.mark.latency_under(5)\ndef test_x(): pass\n")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*@pytest.mark.latency_under needs a deploycheck configuration*"])


# --------------------------------------------------------------------------- throughput


def test_throughput_runs_once_per_batch_size(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    tests = """
import pytest

@pytest.mark.throughput_over(0.001, batch=[1, 8])
def test_batched(deploy_model, deploy_batch):
    deploy_model.run(deploy_model.example_inputs(batch=deploy_batch))
"""
    deploy_project.make(tests)
    result = pytester.runpytest("-v", "--deploy-target", "edge-a")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*test_batched[[]batch1[]] PASSED*",
            "*test_batched[[]batch8[]] PASSED*",
            "throughput_over_0.001[[]batch=1[]]*items/s at batch 1 (p50 * ms per batch, n=50)*PASS",
            "throughput_over_0.001[[]batch=8[]]*items/s at batch 8 (p50 * ms per batch, n=*PASS",
        ]
    )


# --------------------------------------------------------------------------- outputs verified


def test_verified_outputs_of_a_real_model_agree_and_garbage_under_load_fails(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    tests = """
import numpy as np
import pytest

@pytest.fixture
def feeds(deploy_model):
    return deploy_model.example_inputs()  # the same inputs on every call

@pytest.mark.latency_under(10_000, verify_outputs=True)
def test_right(deploy_model, feeds):
    return deploy_model.run(feeds)

calls = []

@pytest.mark.throughput_over(0.001, verify_outputs=True, warmup=2)
def test_garbage_under_load(deploy_model, feeds):
    calls.append(1)
    logits, probabilities = deploy_model.run(feeds)
    return [logits, probabilities if len(calls) <= 2 else np.zeros_like(probabilities)]

@pytest.mark.latency_under(10_000, verify_outputs=True)
def test_returns_nothing(deploy_model, feeds):
    deploy_model.run(feeds)
"""
    deploy_project.make(tests)
    result = pytester.runpytest("--deploy-target", "edge-a")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*outputs differ from the untimed reference call's, at timed call 1:"
            " output[[]1[]][[]0, 0[]] = 0.0 where the reference has *",
        ]
    )
    result.stdout.fnmatch_lines(["*verify_outputs: the body returned None*"])
    verified = deploy_project.checks("edge-a")
    assert verified["test_right"]["extra"]["outputs"]["compared"] == 9  # of 130 calls
    assert verified["test_right"]["passed"] is True
    assert verified["test_garbage_under_load"]["passed"] is False
    assert verified["test_returns_nothing"]["extra"]["outputs"]["reference_is_none"] is True


def test_a_soak_whose_outputs_go_empty_fails_naming_the_call(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    tests = """
import pytest

calls = []

@pytest.mark.soak(0.02, verify_outputs=True)
def test_soaked(deploy_model):
    calls.append(1)
    return [] if len(calls) > 3 else [1.0, 2.0]
"""
    deploy_project.make(tests)
    result = pytester.runpytest("--deploy-target", "edge-a")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*outputs differ from the untimed reference call's, at timed call 17:"
            " output has 0 items where the reference has 2*"
        ]
    )


# --------------------------------------------------------------------------- memory


def test_memory_is_measured_alone_in_a_child_process(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    tests = """
from pytest_deploycheck import memory_under

@memory_under("100 GB")
def test_small(deploy_model):
    deploy_model.run(deploy_model.example_inputs())
"""
    deploy_project.make(tests, top='target = "edge-a"')
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["memory_under_100000  peak * MB (runtime and model * MB; 5 calls*budget 100000 MB*PASS"]
    )
    check = deploy_project.report("edge-a")["checks"][0]
    extra = check["extra"]
    assert 0 < extra["interpreter_mb"] < extra["footprint_mb"] <= extra["process_peak_mb"]
    assert check["models"] == ["optimized"]


def test_memory_over_the_target_capacity_fails_with_that_reason(
    pytester: pytest.Pytester,
    deploy_project: DeployProject,
) -> None:
    tests = """
import pytest

@pytest.mark.memory_under(100_000, repeat=1)
def test_small(deploy_model):
    deploy_model.run(deploy_model.example_inputs())

@pytest.mark.device_fit
def test_fit(deploy_device):
    pass
"""
    deploy_project.make(tests)
    # pin: the measured peak compared with memory_mb (enforced, a 1 MB cgroup OOM-kills
    # the child first: tests/test_cgroups.py has that case).
    result = pytester.runpytest("--deploy-target", "tiny", "--deploy-emulate=pin")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*memory_under_100000: * MB (budget 100000 MB) - peak * MB is more than tiny's 1 MB",
            "device fit: edge-a CHECK power · tiny CHECK memory",
            "  for optimized: * MB (measured), 10 W (declared), offline",
        ]
    )


def test_a_workload_failing_in_the_child_reports_why(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    tests = """
import os
import pytest

@pytest.mark.memory_under(100_000, repeat=1)
def test_breaks_alone(deploy_target):
    assert "DEPLOYCHECK_MEMORY_CHILD" not in os.environ, "only fails when measured"
"""
    deploy_project.make(tests)
    result = pytester.runpytest("--deploy-target", "edge-a")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*memory_under: the test failed in the child process*"])


# --------------------------------------------------------------------------- cold start


def test_cold_start_is_measured_in_fresh_processes(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    tests = """
import pytest

@pytest.mark.cold_start_under(600_000, runs=2)
def test_cold(deploy_target):
    pass
"""
    deploy_project.make(tests)
    result = pytester.runpytest("--deploy-target", "edge-a")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["cold_start_under_600000  cold start p50 * ms*(n=2;*budget 600000 ms*PASS"]
    )


# --------------------------------------------------------------------------- pytest-benchmark


def test_latency_budget_on_a_pytest_benchmark_judges_its_samples(
    pytester: pytest.Pytester, deploy_project: DeployProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("pytest_benchmark")
    tests = """
import pytest

@pytest.mark.latency_under(10_000, verify_outputs=True)
def test_bench(benchmark, deploy_model):
    feeds = deploy_model.example_inputs()
    benchmark.pedantic(deploy_model.run, args=(feeds,), rounds=200, iterations=1)
"""
    deploy_project.make(tests)
    # pytest-benchmark switches itself off inside an xdist worker (this suite may run in one).
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    result = pytester.runpytest("--deploy-target", "edge-a", "-p", "no:xdist")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "latency_under_10000  p95 * (n=200, *PASS",
            "note: verify_outputs does not apply to pytest-benchmark's samples*",
        ]
    )
    assert deploy_project.report("edge-a")["checks"][0]["extra"]["source"] == "pytest-benchmark"


def test_benchmark_disabled_is_inconclusive(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    pytest.importorskip("pytest_benchmark")
    tests = """
import pytest

@pytest.mark.latency_under(10_000)
def test_bench(benchmark):
    benchmark(sum, [1, 2, 3])
"""
    deploy_project.make(tests)
    result = pytester.runpytest("--deploy-target", "edge-a", "--benchmark-disable")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*inconclusive: pytest-benchmark took no samples*"])


def test_too_few_benchmark_rounds_name_the_min_rounds_that_would_settle(
    pytester: pytest.Pytester, deploy_project: DeployProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("pytest_benchmark")
    tests = """
import pytest

@pytest.mark.latency_under(10_000)
def test_bench(benchmark):
    benchmark(sum, [1, 2, 3])
"""
    deploy_project.make(tests)
    # pytest-benchmark switches itself off inside an xdist worker (this suite may run in one).
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    # A tiny time budget leaves exactly --benchmark-min-rounds rounds: 5, where a p95
    # pass at 0.99 needs 130, far under the budget whatever the machine.
    result = pytester.runpytest(
        "--deploy-target",
        "edge-a",
        "-p",
        "no:xdist",
        "--benchmark-max-time=0.000001",
        "--benchmark-min-rounds=5",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*from 5 pytest-benchmark samples*rerun with --benchmark-min-rounds=130*"]
    )


def test_benchmark_under_xdist_says_xdist_disabled_it(
    pytester: pytest.Pytester, deploy_project: DeployProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("pytest_benchmark")
    tests = """
import pytest

@pytest.mark.latency_under(10_000)
def test_bench(benchmark):
    benchmark(sum, [1, 2, 3])
"""
    deploy_project.make(tests)
    # As inside an xdist worker other than gw0, where pytest-benchmark disables itself
    # without the warning it gives on gw0 (warnings are errors in this suite).
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    result = pytester.runpytest("--deploy-target", "edge-a", "-p", "no:xdist")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*pytest-benchmark took no samples: it disables itself while xdist is active*"]
    )
    result.stdout.no_fnmatch_line("*--benchmark-disable set*")


# --------------------------------------------------------------------------- emulation notes


def test_emulation_gaps_and_provider_fallbacks_are_noted(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    tests = """
import pytest

@pytest.mark.latency_under(10_000)
def test_fast(deploy_model):
    deploy_model.run(deploy_model.example_inputs())
"""
    tiny = {**TINY, "execution_providers": ["CUDAExecutionProvider"], "cpus": 512}
    deploy_project.make(tests, devices=("edge-a", tiny))
    result = pytester.runpytest("--deploy-target", "tiny")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "note: CUDAExecutionProvider asked for, CPUExecutionProvider ran instead:"
            " not in this onnxruntime build*",
            "note: measured on * of the target's 512 cores: an upper bound for its latency",
            "release_candidate: True",
        ]
    )


def test_a_target_with_more_cores_than_the_host_gets_the_hosts_threads(
    pytester: pytest.Pytester, deploy_project: DeployProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A faked one-core host: the 4-core target's session gets 1 thread, pinned to 1 core."""
    import importlib

    # The module the in-process run will import: an earlier pytester run may have left a
    # stale module object on the package attribute after pytester dropped it from
    # sys.modules, and patching that one would not reach this run (an order-dependent
    # failure seen under xdist).
    pinning = importlib.import_module("pytest_deploycheck.measure.pinning")
    one_core = pinning.usable_cpus()[:1]
    monkeypatch.setattr(pinning, "usable_cpus", lambda: list(one_core))
    tests = """
import pytest

@pytest.mark.latency_under(10_000)
def test_fast(deploy_model):
    assert deploy_model.session.get_session_options().intra_op_num_threads == 1
    deploy_model.run(deploy_model.example_inputs())
"""
    deploy_project.make(tests, devices=("edge-a", {**TINY, "cpus": 4}))
    result = pytester.runpytest("--deploy-target", "tiny")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["note: measured on 1 of the target's 4 cores: an upper bound for its latency"]
    )
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
