"""The ``--markers`` help lines come from the one marker table and read exactly so."""

from __future__ import annotations

import pytest

from pytest_deploycheck import plugin
from pytest_deploycheck.config import names
from pytest_deploycheck.markers import DEPLOY_MARKERS, HELP_LINES, MARKERS

EXPECTED_HELP_LINES = (
    (
        "device_fit(model=None, *, all_devices=False): run the test once per device of the "
        "devices table (deploy_device fixture) and check that the model fits it; model is a "
        "configured model name or a list of models that run together (default: the default "
        "model). A misfit fails on the deploy target and is reported for the other devices, "
        "unless all_devices=True"
    ),
    (
        "latency_under(ms=None, *, percentile=None, confidence=0.99, warmup=10, "
        "min_samples=None, max_samples=20000, max_time_s=30.0, verify_outputs=False, "
        "rtol=1e-05, atol=1e-06, qps=None, concurrency=None, duration_s=10.0, warmup_s=1.0, "
        "seed=None, clients=None): the test body is one "
        "request; it is timed after a warm-up until a confidence bound on the percentile "
        "(default budgets.latency_percentile, 95) settles pass or fail against the budget "
        "in ms (default budgets.latency_ms); unsettled is inconclusive; verify_outputs=True "
        "fails it when a timed call returns other outputs than the first untimed call "
        "(within rtol, atol). qps=R calls it open-loop instead: Poisson arrivals at R req/s "
        "for duration_s after warmup_s, on concurrency workers (default: enough to keep up), "
        "latency from each scheduled arrival; fails when the service saturates. clients=N "
        "runs N closed-loop clients at once for duration_s, judged on the aggregate "
        "percentile"
    ),
    (
        "throughput_over(items_per_s=None, *, batch=1, confidence=0.99, warmup=10, "
        "min_samples=None, max_samples=20000, max_time_s=30.0, verify_outputs=False, "
        "rtol=1e-05, atol=1e-06): the test body is one "
        "batched request of deploy_batch items; fails unless the throughput at the median "
        "call is at least items_per_s; a list of batch sizes runs the test once per size"
    ),
    (
        "memory_under(mb=None, *, repeat=5, timeout_s=300.0, model=None): the test runs "
        "alone in a fresh child process (its body repeat times); fails unless the peak "
        "resident memory of the workload is at most mb (MB = 10^6 bytes; default "
        "budgets.memory_mb) and fits the target's memory_mb. A test that takes "
        "deploy_service or deploy_services is judged on the peak RSS of the services' "
        "process trees while its body runs repeat times"
    ),
    (
        "cold_start_under(ms=None, *, runs=5, timeout_s=120.0, model=None, "
        "drop_cache=True, service=None): starts a fresh process runs times that imports "
        "the runtime, "
        "loads the model with the target's settings and returns its first result (cold "
        "boot: the model file's page cache is dropped first where the OS allows, unless "
        "drop_cache=False); fails unless the median time is at most ms (default "
        "budgets.cold_start_ms); reports the distribution and the memory at the first "
        "result. service=NAME instead starts that configured service runs times: process "
        "start to its first ready answer"
    ),
    (
        "soak(minutes=None, *, growth_mb_per_hour=None, max_error_rate=None, "
        "max_latency_drift_pct=None, warmup=0.2, sample_interval_s=None, "
        "verify_outputs=False, rtol=1e-05, atol=1e-06): the test body is "
        "one request, called back to back for minutes (default budgets.soak_minutes, 30; "
        "capped by --deploy-soak-minutes or soak_max_minutes); fails when resident memory "
        "grows faster than growth_mb_per_hour (a robust line fit after the warm-up "
        "fraction; default budgets.soak_growth_mb_per_hour, 10) or more calls raise than "
        "max_error_rate (default 0); reports latency drift, gated only with "
        "max_latency_drift_pct"
    ),
    (
        "capacity_over(qps=None, *, latency_ms=None, percentile=99.0, concurrency=None, "
        "max_qps=None, start_qps=None, warmup_s=0.0, seed=None, confidence=0.99, "
        "min_tail_samples=10, min_step_s=1.0, max_time_s=60.0): the test body is one "
        "request; finds the highest Poisson arrival rate (bracket from start_qps, default "
        "qps, then bisect; up to max_qps) at which the percentile of the latency from each "
        "scheduled arrival stays within latency_ms (default budgets.latency_ms), unsaturated "
        "and error-free; fails unless that capacity is at least qps req/s; inconclusive when "
        "the search could not tell within max_time_s"
    ),
    (
        "batching_window(latency_ms=None, *, qps=None, max_batch=[1, 8, 32], "
        "max_wait_ms=[0, 5], percentile=99.0, duration_s=10.0, warmup_s=1.0, seed=None, "
        "model=None): runs the model's example inputs (model, default: the default model) "
        "behind a dynamic batcher at Poisson arrivals of qps req/s, once per setting of "
        "max_batch x max_wait_ms, for duration_s after warmup_s; reports latency and "
        "throughput per setting and the best setting whose percentile is within latency_ms "
        "(default budgets.latency_ms); fails when no setting meets it"
    ),
    (
        "offline(allow_loopback=False, *, strict=True): run the test (setup, body and the "
        "measuring child processes) with network access blocked at the socket level; a "
        "connect, datagram or host-name lookup fails the check naming the address. "
        "allow_loopback=True allows loopback, a list of ports allows those loopback ports "
        "only. strict=False passes a test that survives the loss (attempts are reported)"
    ),
)


def test_help_lines_are_generated_from_the_table() -> None:
    assert tuple(marker.help for marker in MARKERS.values()) == HELP_LINES


def test_help_lines_read_exactly_as_documented() -> None:
    assert HELP_LINES == EXPECTED_HELP_LINES


def test_each_help_line_starts_with_its_marker_signature() -> None:
    for marker, line in zip(MARKERS.values(), HELP_LINES, strict=True):
        assert line.startswith(f"{marker.signature}: ")
        assert marker.signature.startswith(f"{marker.name}(")


def test_marker_names_are_the_table_keys() -> None:
    assert tuple(line.split("(", 1)[0] for line in HELP_LINES) == tuple(MARKERS)
    assert frozenset(MARKERS) == DEPLOY_MARKERS


def test_names_keeps_only_the_environment_variables() -> None:
    public = sorted(name for name in vars(names) if name.isupper())
    assert public == [
        "ENV_ALLOW_PARTIAL",
        "ENV_CONFIG",
        "ENV_EMULATE",
        "ENV_HTML_REPORT",
        "ENV_JSON_REPORT",
        "ENV_LOCK_DIR",
        "ENV_RELEASE_DIR",
        "ENV_SOAK_MINUTES",
        "ENV_TARGET",
        "ENV_TIMING_LOCK",
    ]


def test_pytest_markers_prints_the_table(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines([f"@pytest.mark.{line}" for line in EXPECTED_HELP_LINES])
    assert plugin.HELP_LINES is HELP_LINES
