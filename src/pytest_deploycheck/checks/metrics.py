"""The metrics a check can judge, and what each one carries in ``Check.extra``.

Every check has the typed fields of :class:`~pytest_deploycheck.checks.record.Check`;
four of them are shared by every kind and read by every report: ``display`` (the
figure as one plain-text phrase), ``notes`` (run-level notes printed under the
table), ``caveats`` (what a reader of the verdict must know) and ``models`` (the
configured models the figure belongs to).  ``extra`` holds the figures particular to
one kind of check, as plain JSON values; the producers write these keys and the
verdict and the reports read them, so the names are defined here, in the layer that
writes them (imports only go down).

``latency_pNN`` (:func:`latency_metric`; a ``latency_under`` test, or the samples of
pytest-benchmark): the latency result's figures in host milliseconds -- ``verdict``,
``budget_ms``, ``percentile``, ``confidence``, ``n``, ``warmup``, ``value_ms``,
``p50_ms`` ... ``p99_ms``, ``mean_ms``, ``min_ms``, ``max_ms``, ``ci_confidence``,
``ci_low_ms``, ``ci_high_ms``, ``over_budget``, ``elapsed_s``, ``stop_reason``,
``looks``, ``advice``, ``tracing_active``, ``source`` -- the raw ``samples_ns``,
``host_value_ms``, ``latency_factor`` (None when measured on the target itself) and
``pinning``.  ``latency`` (:data:`LATENCY`): a pytest-benchmark test that took no
samples; nothing in ``extra``.

``throughput`` (:data:`THROUGHPUT`): the latency figures of the batched calls (as
above), ``batch``, ``items_per_s``, ``latency_ms_per_batch``, ``latency_factor``,
``pinning``.

``peak_memory`` (:data:`PEAK_MEMORY`): ``footprint_mb``, ``model_mb``,
``process_peak_mb``, ``interpreter_mb``, ``harness_mb``, ``repeat``, ``method``;
where the target's limits were enforced (a cgroup) also ``cgroup_peak_mb`` (the
group's own peak) and ``enforced`` (what it enforced); an OOM-killed run carries
``oom_killed`` true; where they could not be enforced, a note says why.

``cold_start`` (:data:`COLD_START`): ``runs_ms``, ``p50_ms``, ``min_ms``, ``max_ms``,
``n``, ``mean_phases_ms`` (process, import, session, first_inference), ``rss_p50_mb``,
``rss_max_mb``, ``peak_rss_max_mb``, ``cache_note``, ``uncached_runs``, ``runs`` (one
object per fresh process) and ``device``.

``soak_memory_growth`` (:data:`SOAK_MEMORY_GROWTH`): the growth fits
(``growth_mb_per_h``, ``growth_ci_mb_per_h``, ``growth_points``,
``growth_budget_mb_per_h``, ``heap_growth_mb_per_h``, ``heap_growth_ci_mb_per_h``),
``judged_s``, ``warmup_s``, ``elapsed_s``, ``calls``, ``errors``, ``error_rate``, the
latency drift (``latency_drift_pct``, ``latency_drift_p95_pct``,
``latency_drift_p_value``), ``problems``, ``configured_minutes``, ``minutes_run``,
``shortened_by``, ``sample_interval_s``, ``max_error_rate``, ``max_latency_drift_pct``,
``error_examples``, ``energy`` (None when not measured), ``pinning``,
``timeseries_columns`` and :data:`TIMESERIES_KEY` (rows of :data:`TIMESERIES_COLUMNS`;
report.json names the CSV file instead, ``timeseries_file``).

``device_fit`` (:data:`DEVICE_FIT`): the device's row of the fit table (``device``,
``status``, ``fits``, ``reasons``, ``details``, ``unchecked``, ``price_usd``),
``needs`` (one line), ``needs_detail``, ``is_target`` and, when judged again with the
memory measured in the run, ``rejudged``.

``network_attempts`` (:data:`NETWORK_ATTEMPTS`, the ``offline`` check): ``attempts``
(the blocked ones, described), ``policy``, ``strict``, ``reason``.

``accuracy_drop`` (:data:`ACCURACY_DROP`): the comparison's figures -- ``metric``,
``baseline_name``, ``optimized_name``, ``baseline``, ``optimized``, ``drop``,
``relative``, ``max_drop``, ``n``, ``agreement``, ``ci_low``, ``ci_high``,
``confidence``, ``resamples``, ``mcnemar_p``, ``discordant`` ([regressions, fixed], None
for a metric callable), ``resolved``, ``resolution_note``, ``passed`` -- then
:data:`FAILURE_CASES_KEY` (rows of :data:`FAILURE_CASE_FIELDS`; a confidence that is
NaN is None) and ``failure_cases_total``, then ``batch`` (the batch size the figure
is for), ``batching`` (per model: ``model``, ``batch``, ``run_batch``,
``batched_for_speed``, ``reason``) and ``batch_note``, then ``scores_note`` (what was
done to the scores), ``paired_test`` (``McNemar exact test``, or the sign test of an
item_metric with fractional scores) and ``agreement_basis``.  failure_cases.md is
rendered from these.

A ``latency_under`` check under load keeps the latency metric (``latency_pNN``) and
carries ``mode``: ``open_loop`` (``qps=``) with the open-loop run's figures --
``offered_qps``, ``scheduled_qps``, ``achieved_qps``, ``requests``, ``errors``,
``error_samples``, ``dropped``, ``percentile``, ``percentile_ms``, ``p50_ms`` ...
``max_ms``, ``queue_p50_ms``, ``queue_p99_ms``, ``queue_max_ms``, ``late_p99_ms``,
``generator_valid``, ``invalid_reason``, ``saturated``, ``saturation_reason``,
``stopped_early``, ``duration_s``, ``warmup_s``, ``concurrency``, ``seed`` -- or
``clients`` (``clients=``) with ``clients``, ``throughput_qps``, ``hung_clients`` and
``per_client`` (one object per client: ``client``, ``requests``, ``errors``,
``p50_ms``, ``p99_ms``); both add the raw ``samples_ns`` (latency from the scheduled
arrival, or per call), ``budget_ms``, ``value_ms``, ``host_value_ms``,
``latency_factor`` and ``pinning``.

``capacity`` (:data:`CAPACITY`, ``capacity_over``; value in req/s): ``capacity_qps``,
``upper_qps`` (the lowest rate that did not hold, None when none), ``latency_ms``,
``percentile``, ``rel_tolerance``, ``conclusive``, ``reason``, ``budget_qps``,
``pinning``, ``latency_factor`` and ``curve``: one object per step in the order tried
(``rate``, ``percentile_ms``, ``achieved_qps``, ``errors``, ``saturated``, ``valid``,
``reason``, ``holds``).

``batching`` (:data:`BATCHING`, ``batching_window``; value: the best setting's
throughput in items/s, None when no setting meets the budget): ``model``, ``qps``,
``latency_ms``, ``percentile``, ``seed`` (the one schedule every setting saw),
``settings`` (one object per (max_batch, max_wait_ms): its latency percentiles,
achieved rate, ``throughput_items_per_s``, ``batches``, ``mean_batch``,
``full_batches``, ``busy_fraction``, validity and saturation), ``best`` (the chosen
setting's object, None when none), ``reason``, ``eligible`` and ``pinning``.

``drift`` (:data:`DRIFT`, ``assert_no_drift``; value: the number of drifted features,
budget ``alpha A, Holm``): ``on``, ``alpha``, ``correction`` (``holm``), ``n_reference``,
``n_current``, ``features_tested``, ``drifted`` (their names), ``critical_d`` (the KS
distance detectable at alpha for the two sample sizes), ``critical_d_first`` (at
alpha / k, Holm's first step), ``detectable_normal_shift_sd``, ``detectable`` (one
line) and ``top``: the most drifted features first, one object each (``name``,
``kind``, ``test`` (``ks`` or ``chi2``), ``statistic``, ``p_value``, ``p_adjusted``,
``effect``, ``psi``, ``drifted``, ``n_reference``, ``n_current``, ``detail``, ``reason``).

``agreement`` (:data:`AGREEMENT`, ``assert_agreement``; value: the agreement rate,
budget: ``min_agreement``): ``baseline_name``, ``optimized_name``, ``output``, ``n``,
``agreed``, ``rate``, ``ci_low``, ``ci_high`` (Clopper-Pearson), ``confidence``,
``min_agreement``, ``comparison`` (how two outputs were compared), ``disagreements``
(the first item indices) and ``disagreements_total``.

``runtime_settings`` (:data:`RUNTIME_SETTINGS`): how the runtime differs from the
target, in ``notes``; nothing in ``extra``.  ``evidence_file`` (:data:`EVIDENCE_FILE`):
``path`` (None when missing).  ``baseline`` (:data:`BASELINE`): nothing in ``extra``.

``regression`` (:data:`REGRESSION`): ``kind`` (regression, improvement, unchanged, not
comparable, new, missing, config), ``key``; for a comparison ``compared_metric``,
``old``, ``new``, ``change``, ``p_value``, ``ci``, ``untested``, ``tolerance_override``,
``significance``, ``baseline``, ``environment_differs`` and, by gate, ``n_old``,
``n_new``, ``ci_confidence``, ``baseline_samples_ns``, ``change_mb``, ``change_pct``;
for ``config``, ``unused_overrides``.  ``regression_environment``
(:data:`REGRESSION_ENVIRONMENT`): ``kind``, ``differences``, ``informational``,
``mode``.

``rollback`` (:data:`ROLLBACK`): ``release``, ``release_created``,
``release_was_candidate``, ``changed``, ``added``, ``rollback_to``, ``candidate``.

Every timed check (``latency_pNN`` measured by the plugin, ``throughput``,
``cold_start``, ``capacity``, ``batching``) also carries ``host_canary``
(:data:`HOST_CANARY`), the host-speed reference read right beside it
(:mod:`..measure.canary`): ``ns_per_op`` (the host's speed during the check, nanoseconds
per multiply-add of a fixed product), ``before_ns_per_op``, ``after_ns_per_op`` (cold
start: both read after its processes) and ``ops`` (multiply-adds per product). A
regression comparison of such a check adds ``host_drift_pct``, ``host_canary_ms``
(baseline, this run), ``host_drift_mode`` and ``host_normalization`` (the factor applied
to this run's samples, 1.0 when none); its ``kind`` may then be ``inconclusive``.

A latency, throughput or soak check whose body hung (the watchdog stopped it) has no
value and only ``hang`` in ``extra``: ``phase``, ``limit_s``, ``grace_s`` and the
``stack`` where the call hung (:func:`.budget.hung_check`).

Every timed check (latency, throughput, soak, cold start, memory) says how it was
scheduled on the host (:mod:`..measure.hostlock`): :data:`TIMING_LOCK_KEY` (``host``:
it held the host-wide lock; ``off``; ``unavailable``), :data:`LOCK_WAIT_KEY` (seconds
it waited for the lock before its timing started; None when it took none) and
:data:`TIMING_LOCK_NOTE_KEY` (why there was no lock, else "").

A latency or throughput check whose test runs a model that changed since the saved
baseline, while the release's file is still on disk, carries ``duet``
(:data:`DUET_KEY`, :mod:`.duet`): the paired A/B timing of the release's model and the
candidate's in this run -- ``rounds`` ([baseline, candidate] median call ns per round),
``block_calls``, ``ratio`` (median round's candidate / baseline), ``ratio_ci``,
``ci_confidence``, ``p_slower``, ``p_faster``, ``models`` and ``release_files``; or only
``skipped`` (why no pair could be timed) or ``error`` (why the pairing failed).

A check recorded with ``record_check`` under a metric of the user's own carries what
the user put in ``extra``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

LATENCY = "latency"
THROUGHPUT = "throughput"
PEAK_MEMORY = "peak_memory"
COLD_START = "cold_start"
SOAK_MEMORY_GROWTH = "soak_memory_growth"
DEVICE_FIT = "device_fit"
NETWORK_ATTEMPTS = "network_attempts"
ACCURACY_DROP = "accuracy_drop"
RUNTIME_SETTINGS = "runtime_settings"
EVIDENCE_FILE = "evidence_file"
BASELINE = "baseline"
REGRESSION = "regression"
REGRESSION_ENVIRONMENT = "regression_environment"
HOST_CANARY = "host_canary"  # an extra key, not a metric: see the module docstring
ROLLBACK = "rollback"
CAPACITY = "capacity"
BATCHING = "batching"
DRIFT = "drift"
AGREEMENT = "agreement"
TIMING_LOCK_KEY = "timing_lock"  # extra keys of timed checks: see the module docstring
LOCK_WAIT_KEY = "lock_wait_s"
TIMING_LOCK_NOTE_KEY = "timing_lock_note"
DUET_KEY = "duet"

# ``latency`` alone, or ``latency_p95``, ``latency_p99.9``: the percentile judged.
LATENCY_METRIC = re.compile(r"latency(_p\d+(\.\d+)?)?")

# An accuracy check's failure cases, one object per item, with these keys.
FAILURE_CASES_KEY = "failure_cases"
FAILURE_CASE_FIELDS = (
    "index",
    "label",
    "baseline_prediction",
    "baseline_confidence",
    "optimized_prediction",
    "optimized_confidence",
    "kind",
    "label_text",
    "baseline_output",
    "optimized_output",
    "baseline_score",
    "optimized_score",
)
# A soak's time series: rows of TIMESERIES_COLUMNS, one per sampling interval.
TIMESERIES_KEY = "timeseries"
TIMESERIES_COLUMNS = (
    "t_s",
    "phase",
    "rss_mb",
    "calls",
    "errors",
    "p50_ms",
    "p95_ms",
    "max_ms",
    "heap_mb",
)


def latency_metric(percentile: float) -> str:
    """The metric of a latency check judged on *percentile*: ``latency_p95``."""
    return f"{LATENCY}_p{percentile:g}"


def is_latency(metric: str) -> bool:
    """Whether *metric* is a latency figure (:data:`LATENCY` or ``latency_pNN``)."""
    return LATENCY_METRIC.fullmatch(metric) is not None


def accuracy_metric_words(metric: str) -> str:
    """An accuracy check's metric in words: ``accuracy``, ``top-5 accuracy``, ``f1``."""
    if metric == "top1":
        return "accuracy"
    match = re.fullmatch(r"top(\d+)", metric)
    return f"top-{match.group(1)} accuracy" if match else metric


def accuracy_drop_label(metric: str, relative: bool) -> str:
    """``accuracy drop``, ``relative top-5 accuracy drop``, ``f1 drop``."""
    words = f"{accuracy_metric_words(metric)} drop"
    return f"relative {words}" if relative else words


def carries_failure_cases(metric: str, extra: Mapping[str, object]) -> bool:
    """Whether a check's figures are an accuracy comparison with its failure cases.

    The metric is asked too: ``failure_cases`` in the extra of a check of the user's
    own is the user's data, not a section of failure_cases.md.
    """
    return metric == ACCURACY_DROP and FAILURE_CASES_KEY in extra
