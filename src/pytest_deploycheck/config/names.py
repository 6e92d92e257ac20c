"""Names the plugin needs at every pytest start-up: environment variables and markers.

Registering options and markers happens in every project, also those that never use
this plugin, so these are plain strings here rather than built from the modules that
implement them (which would import the configuration machinery).
``tests/test_names.py`` checks that the help lines are exactly what the marker modules
generate, so they cannot drift.
"""

from __future__ import annotations

ENV_TARGET = "DEPLOYCHECK_TARGET"
ENV_CONFIG = "DEPLOYCHECK_CONFIG"
ENV_SOAK_MINUTES = "DEPLOYCHECK_SOAK_MINUTES"
MARKER_NAMES = (
    "device_fit",
    "latency_under",
    "throughput_over",
    "memory_under",
    "cold_start_under",
    "soak",
    "offline",
)
HELP_LINES = (
    (
        "device_fit(model=None, *, all_devices=False): run the test once per device of the "
        "devices table (deploy_device fixture) and check that the model fits it; model is a "
        "configured model name or a list of models that run together (default: the default "
        "model). A misfit fails on the deploy target and is reported for the other devices, "
        "unless all_devices=True"
    ),
    (
        "latency_under(ms=None, *, percentile=None, confidence=0.99, warmup=10, "
        "min_samples=None, max_samples=20000, max_time_s=30.0): the test body is one "
        "request; it is timed after a warm-up until a confidence bound on the percentile "
        "(default budgets.latency_percentile, 95) settles pass or fail against the budget "
        "in ms (default budgets.latency_ms); unsettled is inconclusive"
    ),
    (
        "throughput_over(items_per_s=None, *, batch=1, confidence=0.99, warmup=10, "
        "min_samples=None, max_samples=20000, max_time_s=30.0): the test body is one "
        "batched request of deploy_batch items; fails unless the throughput at the median "
        "call is at least items_per_s; a list of batch sizes runs the test once per size"
    ),
    (
        "memory_under(mb=None, *, repeat=5, timeout_s=300.0, model=None): the test runs "
        "alone in a fresh child process (its body repeat times); fails unless the peak "
        "resident memory of the workload is at most mb (MB = 10^6 bytes; default "
        "budgets.memory_mb) and fits the target's memory_mb"
    ),
    (
        "cold_start_under(ms=None, *, runs=5, timeout_s=120.0, model=None, "
        "drop_cache=True): starts a fresh process runs times that imports the runtime, "
        "loads the model with the target's settings and returns its first result (cold "
        "boot: the model file's page cache is dropped first where the OS allows, unless "
        "drop_cache=False); fails unless the median time is at most ms (default "
        "budgets.cold_start_ms); reports the distribution and the memory at the first "
        "result"
    ),
    (
        "soak(minutes=None, *, growth_mb_per_hour=None, max_error_rate=None, "
        "max_latency_drift_pct=None, warmup=0.2, sample_interval_s=None): the test body is "
        "one request, called back to back for minutes (default budgets.soak_minutes, 30; "
        "capped by --deploy-soak-minutes or soak_max_minutes); fails when resident memory "
        "grows faster than growth_mb_per_hour (a robust line fit after the warm-up "
        "fraction; default budgets.soak_growth_mb_per_hour, 10) or more calls raise than "
        "max_error_rate (default 0); reports latency drift, gated only with "
        "max_latency_drift_pct"
    ),
    (
        "offline(allow_loopback=False, *, strict=True): run the test (setup, body and the "
        "measuring child processes) with network access blocked at the socket level; a "
        "connect, datagram or host-name lookup fails the check naming the address. "
        "allow_loopback=True allows loopback, a list of ports allows those loopback ports "
        "only. strict=False passes a test that survives the loss (attempts are reported)"
    ),
)
