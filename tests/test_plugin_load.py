"""latency_under under load (qps=, clients=), capacity_over and batching_window, end to end.

Every run is short (a fraction of a second of load) and every budget far from what is
measured, or the verdict comes from a rule the body makes certain (a 50 ms body with
one worker cannot keep 100 req/s): nothing here depends on the machine's speed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import DeployProject

MODELS = Path(__file__).parent / "models"


@pytest.fixture
def deploy_project(deploy_project: DeployProject) -> DeployProject:
    return deploy_project.replace(
        target="edge",
        models={"tiny": {"path": "models/tiny.onnx"}},
        devices=({"name": "edge", "memory_mb": 100000},),
        files={"models/tiny.onnx": MODELS / "tiny_linear.onnx"},
        test_file="test_user_load",
        test_header="import time\nimport pytest\nfrom pytest_deploycheck import capacity_over\n",
    )


def only_check(project: DeployProject, prefix: str) -> dict[str, Any]:
    found = [c for c in project.report()["checks"] if str(c["name"]).startswith(prefix)]
    assert len(found) == 1, found
    check: dict[str, Any] = found[0]
    return check


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("marker", "words"),
    [
        ("latency_under(100, qps=0)", "@latency_under qps: expected a finite number > 0, got 0"),
        ("latency_under(100, qps=10, clients=2)", "give qps (open-loop arrivals) or clients"),
        ("latency_under(100, concurrency=2)", "concurrency: apply only with qps= or clients="),
        ("latency_under(100, clients=2, seed=1)", "seed: do not apply with clients="),
        ("latency_under(100, qps=10, warmup=3)", "warmup: do not apply with qps="),
        ("latency_under(100, qps=10, clients=0)", "clients: expected a whole number >= 1"),
        ("capacity_over(-5, latency_ms=10)", "@capacity_over qps"),
        ("capacity_over(5, latency_ms=10, max_qps=2, start_qps=4)", "give start_qps <= max_qps"),
        ("capacity_over(5, latency_ms=10, min_tail_samples=0)", "min_tail_samples"),
        ("capacity_over(latency_ms=10)", "@capacity_over: no budget: give qps"),
        ("capacity_over(5)", "no latency bound: give latency_ms"),
        ("batching_window(100)", "@pytest.mark.batching_window: qps: give the arrival rate"),
        ("batching_window(100, qps=5, max_batch=[0])", "max_batch: expected a whole number"),
        ("batching_window(100, qps=5, max_wait_ms=-1)", "max_wait_ms: expected a wait in ms"),
    ],
)
def test_a_bad_load_marker_fails_its_own_test_at_setup(
    pytester: pytest.Pytester, deploy_project: DeployProject, marker: str, words: str
) -> None:
    deploy_project.make(
        f"""
@pytest.mark.{marker}
def test_bad():
    pass

def test_good():
    pass
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([f"*{words}*"])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


# --------------------------------------------------------------------------- open loop


def test_open_loop_at_a_low_rate_passes_and_reports_the_rates(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(
        """
@pytest.mark.latency_under(60000, percentile=50, qps=100, duration_s=0.5, warmup_s=0.1, seed=3)
def test_fast():
    pass
"""
    )
    result = pytester.runpytest()
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    check = only_check(deploy_project, "latency_under_60000")
    extra = check["extra"]
    assert isinstance(extra, dict)
    if check["status"] == "INCONCLUSIVE":  # a starved generator on a busy host, said so
        assert "could not keep its schedule" in str(check["details"])
        return
    result.assert_outcomes(passed=1)
    assert check["status"] == "PASS"
    assert check["metric"] == "latency_p50"
    assert extra["mode"] == "open_loop"
    assert extra["offered_qps"] == 100
    assert extra["achieved_qps"] > 0
    assert extra["seed"] == 3
    assert extra["samples_ns"], "the regression gate compares the raw samples"
    assert "host_canary" in extra and extra["timing_lock"]
    assert "req/s offered" in str(check["display"])


def test_a_body_slower_than_the_rate_saturates_and_fails_naming_both_rates(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(
        """
@pytest.mark.latency_under(60000, qps=100, concurrency=1, duration_s=0.5, warmup_s=0, seed=1)
def test_slow():
    time.sleep(0.05)
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*offered 100.0 req/s, achieved * req/s: the service saturates*"])
    check = only_check(deploy_project, "latency_under_60000")
    assert check["status"] == "FAIL"
    assert check["extra"]["saturated"] is True


def test_errors_fail_the_open_loop_check_with_the_count_and_first_message(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(
        """
@pytest.mark.latency_under(60000, qps=50, duration_s=0.3, warmup_s=0, seed=2)
def test_raises():
    raise ValueError("bad request")
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*requests raised; first: ValueError: bad request*"])


def test_clients_report_per_client_and_aggregate_figures(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(
        """
@pytest.mark.latency_under(60000, clients=2, duration_s=0.3, warmup_s=0)
def test_two_clients():
    time.sleep(0.001)
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    check = only_check(deploy_project, "latency_under_60000")
    extra = check["extra"]
    assert isinstance(extra, dict)
    assert extra["mode"] == "clients" and extra["clients"] == 2
    assert [c["client"] for c in extra["per_client"]] == [0, 1]
    assert all(c["requests"] > 0 for c in extra["per_client"])
    assert extra["requests"] == sum(c["requests"] for c in extra["per_client"])
    assert "2 clients" in str(check["display"])


def test_without_qps_or_clients_latency_under_is_the_closed_loop_check(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(
        """
@pytest.mark.latency_under(60000, max_samples=200)
def test_closed():
    pass
"""
    )
    pytester.runpytest().assert_outcomes(passed=1)
    extra = only_check(deploy_project, "latency_under_60000")["extra"]
    assert isinstance(extra, dict)
    assert "mode" not in extra and "looks" in extra


# --------------------------------------------------------------------------- capacity

# A 2 ms body on one worker holds about 500 req/s; the search is capped at 20 req/s and
# judged on the median with a 10 ms bound, so each step lasts a fraction of a second,
# and the whole search at most max_time_s.
FAST_SEARCH = (
    "latency_ms=10, percentile=50, confidence=0.5, min_tail_samples=1, min_step_s=0.2, max_time_s=4"
)


def test_capacity_over_a_low_budget_passes_and_keeps_the_curve(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(
        f"""
@capacity_over(5, {FAST_SEARCH}, concurrency=1, max_qps=20, seed=4)
def test_capacity():
    time.sleep(0.002)
"""
    )
    result = pytester.runpytest()
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    check = only_check(deploy_project, "capacity_over_5")
    assert check["metric"] == "capacity" and check["unit"] == "req/s"
    extra = check["extra"]
    assert isinstance(extra, dict)
    curve = extra["curve"]
    assert curve and {"rate", "percentile_ms", "achieved_qps", "errors", "holds"} <= set(curve[0])
    if check["status"] == "INCONCLUSIVE":  # a starved generator on a busy host, said so
        assert "invalid" in str(check["details"])
        return
    result.assert_outcomes(passed=1)
    assert check["status"] == "PASS"
    assert check["value"] == extra["capacity_qps"] >= 5
    assert "host_canary" in extra
    page = (deploy_project.evidence() / "report.html").read_text()
    assert "<h2>Capacity curves</h2>" in page and '<circle class="holds"' in page
    assert "<script" not in page


def test_capacity_over_a_budget_far_above_fails(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(
        f"""
@capacity_over(100000, {FAST_SEARCH}, concurrency=1, seed=5)
def test_capacity():
    time.sleep(0.01)
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*under the budget of 100000 req/s*"])
    check = only_check(deploy_project, "capacity_over_100000")
    assert check["status"] == "FAIL"
    assert check["extra"]["conclusive"] is True


def test_capacity_search_out_of_time_is_inconclusive(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(
        f"""
@capacity_over(1000, {FAST_SEARCH.replace("max_time_s=4", "max_time_s=0.01")}, start_qps=5)
def test_capacity():
    time.sleep(0.002)
"""
    )
    pytester.runpytest().stdout.no_fnmatch_line("*INTERNALERROR*")
    check = only_check(deploy_project, "capacity_over_1000")
    assert check["status"] == "INCONCLUSIVE"
    assert "max_time_s of 0.01 s spent" in str(check["details"])


# --------------------------------------------------------------------------- batching


def test_batching_window_lists_every_setting_and_the_best(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(
        """
@pytest.mark.batching_window(
    60000, qps=50, max_batch=[1, 4], max_wait_ms=[0, 2], duration_s=0.3, warmup_s=0, seed=6
)
def test_batching():
    pass
"""
    )
    result = pytester.runpytest()
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    check = only_check(deploy_project, "batching_window[tiny]")
    assert check["metric"] == "batching" and check["unit"] == "items/s"
    extra = check["extra"]
    assert isinstance(extra, dict)
    settings = [(s["max_batch"], s["max_wait_ms"]) for s in extra["settings"]]
    assert settings == [(1, 0.0), (1, 2.0), (4, 0.0), (4, 2.0)]
    lines = str(check["details"]).splitlines()
    assert len(lines) == 5 and lines[-1].startswith("best: ")
    if check["status"] == "FAIL":  # every setting invalid on a starved host, said so
        assert all("invalid" in line for line in lines[:-1])
        return
    result.assert_outcomes(passed=1)
    assert check["status"] == "PASS"
    assert check["value"] == extra["best"]["throughput_items_per_s"]


def test_an_open_loop_check_compares_with_its_baseline_on_the_samples(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(
        """
@pytest.mark.latency_under(60000, percentile=50, qps=100, duration_s=0.3, warmup_s=0, seed=7)
def test_fast():
    pass
"""
    )
    pytester.runpytest("--deploy-save=release.json").stdout.no_fnmatch_line("*INTERNALERROR*")
    result = pytester.runpytest("--deploy-baseline=release.json")
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    names = [c["name"] for c in deploy_project.report()["checks"]]
    assert "regression[latency_under_60000]" in names
