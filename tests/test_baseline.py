"""Unit tests of baseline.py: what a baseline keeps, the file round trip, load errors
and the environment comparison."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_deploycheck.checks.record import Check
from pytest_deploycheck.verdict.baseline import (
    BASELINE_SCHEMA,
    BASELINE_VERSION,
    HISTORY_LIMIT,
    Baseline,
    BaselineError,
    build_baseline,
    check_keys,
    environment_differences,
    environment_notes,
    load_baseline,
    metric_family,
    parse_baseline,
    pooled_baseline,
    save_baseline,
    with_history,
)

NODE = "tests/test_model.py::test_fast"


def environment(**changes: Any) -> dict[str, Any]:
    """An environment as checks.environment.environment() describes one, with *changes*."""
    env: dict[str, Any] = {
        "python": "3.11.9",
        "python_implementation": "CPython",
        "packages": {
            "pytest-deploycheck": "0.1.0",
            "onnxruntime": "1.18.0",
            "numpy": "1.26.4",
            "pytest": "8.2.0",
            "psutil": "5.9.8",
        },
        "host": {
            "platform": "Linux-6.1-x86_64",
            "machine": "x86_64",
            "cpu_model": "AMD EPYC 7B13",
            "logical_cpus": 8,
            "usable_cpus": 4,
            "memory_total_mb": 32000.0,
        },
        "timestamp": "2024-06-01T12:00:00+00:00",
    }
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        table = env
        for parent in parents:
            table = table[parent]
        table[leaf] = value
    return env


def latency_check(name: str = "latency_under_80", nodeid: str = NODE, **extra: Any) -> Check:
    samples = [50_000_000 + 1000 * i for i in range(30)]
    return Check(
        name=name,
        metric="latency_p95",
        value=50.029,
        unit="ms",
        budget=80,
        nodeid=nodeid,
        display="p95 50.03 ms",
        extra={"percentile": 95.0, "samples_ns": samples, "n": 30, "advice": "", **extra},
    )


def run_checks() -> list[Check]:
    """One check of every kind a run records, kept or not."""
    return [
        latency_check(),
        Check(
            name="throughput_over_1000[batch=8]",
            metric="throughput",
            value=9000.0,
            unit="items/s",
            nodeid=NODE,
            extra={"samples_ns": np.array([1, 2, 3]), "batch": 8, "n": 3, "percentile": 50.0},
        ),
        Check(
            name="memory_under_512",
            metric="peak_memory",
            value=412.5,
            unit="MB",
            nodeid=NODE,
            extra={"samples_ns": [9], "repeat": 5, "model_mb": 60.0},
            models=("optimized",),
        ),
        Check(
            name="accuracy_drop_ok",
            metric="accuracy_drop",
            value=0.004,
            nodeid="tests/test_model.py::test_accuracy",
            extra={"baseline": 0.904, "optimized": 0.9, "n": 1000, "metric": "top1"},
        ),
        Check(
            name="cold_start_under_2000",
            metric="cold_start",
            value=290.0,
            unit="ms",
            nodeid="tests/test_model.py::test_cold",
            extra={"runs_ms": [280.0, 290.0, 303.0], "n": 3, "p50_ms": 290.0},
        ),
        Check(name="device_fit[optimized@edge-c]", metric="device_fit", value="FIT"),
        Check(name="has_failure_cases", metric="evidence_file", value="failure_cases.md"),
        Check(name="fit_elsewhere", metric="peak_memory", value=1.0, gating=False),
        Check(name="my_f1", metric="f1", value=0.8),
        Check(name="regression[latency_under_80]", metric="regression", value=3.0),
    ]


def test_metric_families() -> None:
    assert metric_family("latency") == "latency"
    assert metric_family("latency_p95") == "latency"
    assert metric_family("latency_p99.9") == "latency"
    assert metric_family("throughput") == "throughput"
    assert metric_family("peak_memory") == "memory"
    assert metric_family("accuracy_drop") == "accuracy"
    assert metric_family("cold_start") == "cold_start"
    for other in ("device_fit", "evidence_file", "regression", "latency_ms", "f1"):
        assert metric_family(other) is None


def test_baseline_keeps_gating_checks_of_known_metrics_only() -> None:
    document = build_baseline(run_checks(), target="edge-c", environment=environment())
    assert document["schema"] == BASELINE_SCHEMA
    assert document["version"] == BASELINE_VERSION
    assert document["target"] == "edge-c"
    assert document["created"].endswith("+00:00")
    assert [c["key"] for c in document["checks"]] == [
        f"{NODE}::latency_under_80",
        f"{NODE}::throughput_over_1000[batch=8]",
        f"{NODE}::memory_under_512",
        "tests/test_model.py::test_accuracy::accuracy_drop_ok",
        "tests/test_model.py::test_cold::cold_start_under_2000",
    ]
    json.dumps(document, allow_nan=False)  # plain JSON, numpy arrays included


def test_baseline_records_samples_and_the_extra_the_gates_need() -> None:
    document = build_baseline(run_checks(), target=None, environment=environment())
    latency, throughput, memory, accuracy, cold = document["checks"]
    assert latency["samples_ns"][:2] == [50_000_000, 50_001_000]
    assert latency["percentile"] == 95.0
    assert latency["extra"] == {"n": 30}  # display text and advice stay in report.json
    assert throughput["samples_ns"] == [1, 2, 3]
    assert throughput["extra"] == {"n": 3, "batch": 8}
    assert memory["samples_ns"] is None  # only latency and throughput keep samples
    assert memory["extra"] == {"repeat": 5, "models": ["optimized"]}
    assert accuracy["extra"] == {"baseline": 0.904, "optimized": 0.9, "n": 1000, "metric": "top1"}
    assert cold["extra"]["runs_ms"] == [280.0, 290.0, 303.0]
    assert latency["nodeid"] == NODE and latency["name"] == "latency_under_80"
    assert (latency["value"], latency["unit"], latency["budget"]) == (50.029, "ms", 80.0)
    assert latency["provenance"] == "measured"


def test_timed_checks_keep_their_host_canary_and_old_baselines_lack_it() -> None:
    canary = {"ns_per_op": 1.0, "before_ns_per_op": 0.9, "after_ns_per_op": 1.1, "ops": 8}
    document = build_baseline([latency_check(host_canary=canary)], target=None, environment={})
    assert document["checks"][0]["extra"] == {"n": 30, "host_canary": canary}
    assert parse_baseline(document).checks[f"{NODE}::latency_under_80"].extra["host_canary"] == (
        canary
    )
    old = build_baseline([latency_check()], target=None, environment={})
    assert "host_canary" not in parse_baseline(old).checks[f"{NODE}::latency_under_80"].extra


def test_keys_of_repeated_checks_are_numbered_in_recording_order() -> None:
    checks = [latency_check(), latency_check(), latency_check(nodeid=""), latency_check()]
    assert check_keys(checks) == [
        f"{NODE}::latency_under_80",
        f"{NODE}::latency_under_80#2",
        "::latency_under_80",
        f"{NODE}::latency_under_80#3",
    ]


def test_round_trip_through_a_file(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "baseline.json"
    document = build_baseline(run_checks(), target="edge-c", environment=environment())
    save_baseline(path, document)
    assert [p.name for p in path.parent.iterdir()] == ["baseline.json"]  # no temp file left
    baseline = load_baseline(path)
    assert isinstance(baseline, Baseline)
    assert baseline.target == "edge-c"
    assert baseline.environment == environment()
    assert baseline.created == document["created"]
    assert baseline.source == path
    assert list(baseline.checks) == [c["key"] for c in document["checks"]]
    latency = baseline.checks[f"{NODE}::latency_under_80"]
    assert latency.samples_ns == tuple(50_000_000 + 1000 * i for i in range(30))
    assert (latency.value, latency.percentile, latency.family) == (50.029, 95.0, "latency")
    accuracy = baseline.checks["tests/test_model.py::test_accuracy::accuracy_drop_ok"]
    assert accuracy.extra["optimized"] == 0.9
    assert baseline.describe() == f"baseline.json (edge-c, {document['created']})"


def test_saving_again_replaces_the_file(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    save_baseline(path, build_baseline(run_checks(), target="edge-a", environment={}))
    save_baseline(path, build_baseline(run_checks()[:1], target="edge-c", environment={}))
    baseline = load_baseline(path)
    assert (baseline.target, len(baseline.checks)) == ("edge-c", 1)


def valid_document() -> dict[str, Any]:
    return build_baseline(run_checks()[:2], target="edge-c", environment=environment())


def write(tmp_path: Path, content: str | bytes) -> Path:
    path = tmp_path / "baseline.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def load_error(path: Path) -> str:
    with pytest.raises(BaselineError) as info:
        load_baseline(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    return message.removeprefix(f"{path}: ")


def with_changes(**changes: Any) -> str:
    document = valid_document()
    for key, value in changes.items():
        if value is ...:
            del document[key]
        else:
            document[key] = value
    return json.dumps(document)


def test_missing_file_says_how_to_make_one(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    assert load_error(path) == f"no such baseline file (save one with --deploy-save {path})"


def test_directory(tmp_path: Path) -> None:
    assert load_error(tmp_path) == "is a directory, not a baseline file"


def test_not_json_names_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, '{\n  "schema": "pytest-deploycheck/baseline",\n  "version": ,\n}')
    assert load_error(path) == "not valid JSON: Expecting value (line 3, column 14)"


def test_not_utf8(tmp_path: Path) -> None:
    assert load_error(write(tmp_path, b'{"a": "\xff"}')) == "not UTF-8 text (byte 7)"


def test_nan_is_not_json(tmp_path: Path) -> None:
    text = with_changes().replace('"value": 50.029', '"value": NaN')
    assert load_error(write(tmp_path, text)) == "not valid JSON: NaN is not a number JSON allows"


def test_not_an_object(tmp_path: Path) -> None:
    assert load_error(write(tmp_path, "[1, 2]")) == "expected a JSON object, got a list ([1, 2])"


def test_a_report_json_is_recognised(tmp_path: Path) -> None:
    path = write(tmp_path, json.dumps({"schema_version": 1, "checks": []}))
    assert load_error(path) == (
        "not a pytest-deploycheck baseline: no 'schema' field (this looks like a report.json);"
        " write one with --deploy-save PATH"
    )


def test_wrong_schema(tmp_path: Path) -> None:
    path = write(tmp_path, with_changes(schema="pytest-benchmark"))
    assert load_error(path) == (
        "not a pytest-deploycheck baseline: schema 'pytest-benchmark',"
        " expected 'pytest-deploycheck/baseline'"
    )


def test_newer_version(tmp_path: Path) -> None:
    path = write(tmp_path, with_changes(version=2))
    assert load_error(path) == (
        "written by a newer pytest-deploycheck (version 2); this one reads version 1"
    )


@pytest.mark.parametrize("version", [0, "1", True, 1.5, None])
def test_bad_version(tmp_path: Path, version: object) -> None:
    path = write(tmp_path, with_changes(version=version))
    assert load_error(path) == f"'version' must be a whole number >= 1, got {version!r}"


@pytest.mark.parametrize("field", ["created", "target", "environment", "checks"])
def test_missing_top_level_field(tmp_path: Path, field: str) -> None:
    assert load_error(write(tmp_path, with_changes(**{field: ...}))) == f"missing field {field!r}"


def test_wrong_type_of_top_level_field(tmp_path: Path) -> None:
    path = write(tmp_path, with_changes(checks={"a": 1}))
    assert load_error(path) == "'checks' must be a list, got an object ({\"a\": 1})"


def test_missing_field_in_a_check(tmp_path: Path) -> None:
    document = valid_document()
    del document["checks"][1]["metric"]
    path = write(tmp_path, json.dumps(document))
    key = f"{NODE}::throughput_over_1000[batch=8]"
    assert load_error(path) == f"checks[1] ({key}): missing field 'metric'"


def test_check_without_key(tmp_path: Path) -> None:
    document = valid_document()
    del document["checks"][0]["key"]
    assert load_error(write(tmp_path, json.dumps(document))) == "checks[0]: missing field 'key'"


def test_bad_value_in_a_check(tmp_path: Path) -> None:
    document = valid_document()
    document["checks"][0]["value"] = "fast"
    message = load_error(write(tmp_path, json.dumps(document)))
    assert message == (
        f"checks[0] ({NODE}::latency_under_80): 'value' must be a number or null,"
        ' got a string ("fast")'
    )


def test_bad_sample(tmp_path: Path) -> None:
    document = valid_document()
    document["checks"][0]["samples_ns"][3] = -1.5
    message = load_error(write(tmp_path, json.dumps(document)))
    assert message == (
        f"checks[0] ({NODE}::latency_under_80): samples_ns[3] must be a whole number of"
        " nanoseconds >= 0, got -1.5"
    )


def test_duplicate_key(tmp_path: Path) -> None:
    document = valid_document()
    document["checks"][1]["key"] = document["checks"][0]["key"]
    message = load_error(write(tmp_path, json.dumps(document)))
    assert message == f"checks[1]: duplicate key '{NODE}::latency_under_80'"


def test_parse_without_a_file_names_the_baseline() -> None:
    with pytest.raises(BaselineError, match=r"^baseline: missing field 'checks'$"):
        parse_baseline(
            {
                "schema": BASELINE_SCHEMA,
                "version": 1,
                "created": "x",
                "target": None,
                "environment": {},
            }
        )


# ------------------------------------------------------------------ environment


def differences(
    old_env: dict[str, Any],
    new_env: dict[str, Any],
    old_target: str | None = "edge-c",
    new_target: str | None = "edge-c",
) -> list[str]:
    return environment_differences(
        old_env, new_env, baseline_target=old_target, current_target=new_target
    )


def test_same_environment_has_no_differences() -> None:
    assert differences(environment(), environment()) == []


def test_every_material_difference_is_one_line() -> None:
    new = environment(
        host__cpu_model="Intel Xeon 8375C",
        host__logical_cpus=16,
        host__usable_cpus=2,
        packages__onnxruntime="1.19.2",
        packages__numpy="2.1.0",
        python="3.12.4",
    )
    assert differences(environment(), new, new_target="edge-a") == [
        "target: edge-c in the baseline, edge-a now",
        "CPU model: AMD EPYC 7B13 in the baseline, Intel Xeon 8375C now",
        "logical CPUs: 8 in the baseline, 16 now",
        "usable CPUs: 4 in the baseline, 2 now",
        "onnxruntime: 1.18.0 in the baseline, 1.19.2 now",
        "numpy: 1.26.4 in the baseline, 2.1.0 now",
        "Python: 3.11 in the baseline, 3.12 now",
    ]


def test_python_patch_release_plugin_version_and_platform_are_not_material() -> None:
    new = environment(
        python="3.11.10", host__platform="Linux-6.5-x86_64", host__memory_total_mb=64000.0
    )
    new["packages"]["pytest-deploycheck"] = "0.2.0"
    assert differences(environment(), new) == []
    assert environment_notes(environment(), new) == [
        "pytest-deploycheck: 0.1.0 in the baseline, 0.2.0 now",
        "host memory (MB): 32000.0 in the baseline, 64000.0 now",
        "platform: Linux-6.1-x86_64 in the baseline, Linux-6.5-x86_64 now",
    ]


def test_a_figure_recorded_on_one_side_only_is_a_difference() -> None:
    old = environment()
    del old["host"]["cpu_model"]
    del old["packages"]
    assert differences(old, environment(), old_target=None) == [
        "target: not recorded in the baseline, edge-c now",
        "CPU model: not recorded in the baseline, AMD EPYC 7B13 now",
        "onnxruntime: not recorded in the baseline, 1.18.0 now",
        "numpy: not recorded in the baseline, 1.26.4 now",
    ]
    assert differences({}, {}, None, None) == []


# --------------------------------------------------------------------------- models and verdict

MODEL_RECORDS = {
    "optimized": {"path": "models/int8.onnx", "sha256": "ab" * 32, "bytes": 1234},
    "baseline": {"path": "/shared/fp32.onnx", "sha256": None, "error": "No such file or directory"},
}


@pytest.mark.parametrize("candidate", [True, False])
def test_model_records_and_the_verdict_round_trip(tmp_path: Path, candidate: bool) -> None:
    path = tmp_path / "release.json"
    document = build_baseline(
        run_checks(),
        target="edge-c",
        environment=environment(),
        models=MODEL_RECORDS,
        release_candidate=candidate,
    )
    assert document["models"] == MODEL_RECORDS
    assert document["release_candidate"] is candidate
    save_baseline(path, document)

    baseline = load_baseline(path)

    assert baseline.models == MODEL_RECORDS
    assert baseline.release_candidate is candidate


def test_a_baseline_built_without_models_records_none() -> None:
    document = build_baseline(run_checks(), target="edge-c", environment=environment())

    assert document["models"] == {}
    assert document["release_candidate"] is None


@pytest.mark.parametrize("absent", ["missing", "null"])
def test_an_old_baseline_without_models_or_verdict_still_loads(tmp_path: Path, absent: str) -> None:
    value = ... if absent == "missing" else None
    path = write(tmp_path, with_changes(models=value, release_candidate=value))

    baseline = load_baseline(path)

    assert baseline.models == {}
    assert baseline.release_candidate is None
    assert len(baseline.checks) == 2


@pytest.mark.parametrize(
    "models",
    [[{"path": "models/int8.onnx"}], {"optimized": "models/int8.onnx"}, "models/int8.onnx"],
)
def test_models_must_be_an_object_of_records(tmp_path: Path, models: object) -> None:
    message = load_error(write(tmp_path, with_changes(models=models)))

    assert message.startswith("'models' must be an object of model records, got ")


def test_models_given_as_a_list_names_the_type(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, with_changes(models=[{"path": "m.onnx"}])))

    assert message == (
        '\'models\' must be an object of model records, got a list ([{"path": "m.onnx"}])'
    )


@pytest.mark.parametrize("value", ["yes", 1, 0, "true"])
def test_release_candidate_must_be_a_boolean_or_null(tmp_path: Path, value: object) -> None:
    message = load_error(write(tmp_path, with_changes(release_candidate=value)))

    assert message == f"'release_candidate' must be true, false or null, got {value!r}"


# --------------------------------------------------------------------------- what JSON allows


def test_nesting_too_deep_for_python_is_a_baseline_error(tmp_path: Path) -> None:
    # A RecursionError from json.loads before: the run crashed at its end.
    path = write(tmp_path, "[" * 100_000 + "]" * 100_000)

    assert load_error(path) == "not a baseline: arrays or objects nested too deeply"


def test_an_integer_longer_than_python_reads_is_a_baseline_error(tmp_path: Path) -> None:
    text = with_changes().replace('"value": 50.029', '"value": 1' + "0" * 5000)

    assert load_error(write(tmp_path, text)).startswith(
        "not valid JSON: Exceeds the limit (4300 digits) for integer string conversion"
    )


@pytest.mark.parametrize(
    ("field", "written", "shown"),
    [
        ("value", "1" + "0" * 400, "a number (about 401 digits)"),  # an OverflowError before
        ("value", "1e400", "a number (Infinity)"),  # read as inf, and accepted before
        ("budget", "-1e400", "a number (-Infinity)"),
    ],
)
def test_a_figure_beyond_a_float_is_refused(
    tmp_path: Path, field: str, written: str, shown: str
) -> None:
    document = valid_document()
    document["checks"][0][field] = 1.5
    text = json.dumps(document).replace(f'"{field}": 1.5', f'"{field}": {written}', 1)

    message = load_error(write(tmp_path, text))

    assert (
        message
        == f"checks[0] ({NODE}::latency_under_80): {field!r} must be a finite number, got {shown}"
    )


def test_a_sample_beyond_int64_is_refused(tmp_path: Path) -> None:
    document = valid_document()
    document["checks"][0]["samples_ns"][0] = 2**63

    message = load_error(write(tmp_path, json.dumps(document)))

    assert message == (
        f"checks[0] ({NODE}::latency_under_80): samples_ns[0] must be under 2**63 nanoseconds,"
        f" got a number ({2**63})"
    )


# --------------------------------------------------------------------------- history


def saved_run(tmp_path: Path, *runs: list[Check], env: dict[str, Any] | None = None) -> Baseline:
    """The baseline file after saving each of *runs* in turn, as --deploy-save does."""
    path = tmp_path / "main.json"
    for checks in runs:
        previous = load_baseline(path) if path.is_file() else None
        document = build_baseline(checks, target="edge-c", environment=env or environment())
        save_baseline(path, with_history(document, previous))
    return load_baseline(path)


def sampled(offset_ns: int, canary: float | None = None) -> Check:
    extra = {} if canary is None else {"host_canary": {"ns_per_op": canary, "ops": 8}}
    check = latency_check(**extra)
    samples = [s + offset_ns for s in check.extra["samples_ns"]]
    return replace(
        check, value=check.value + offset_ns / 1e6, extra={**check.extra, "samples_ns": samples}
    )


def test_saving_onto_a_baseline_keeps_its_runs_as_history(tmp_path: Path) -> None:
    baseline = saved_run(tmp_path, *([sampled(i)] for i in range(3)))
    assert len(baseline.history) == 2
    newest_first = [
        run.checks[f"{NODE}::latency_under_80"].samples_ns[0] for run in baseline.history
    ]
    assert newest_first == [50_000_001, 50_000_000]


def test_history_is_bounded(tmp_path: Path) -> None:
    baseline = saved_run(tmp_path, *([sampled(i)] for i in range(HISTORY_LIMIT + 3)))
    assert len(baseline.history) == HISTORY_LIMIT - 1
    assert pooled_baseline(baseline).pooled_runs == HISTORY_LIMIT


def test_a_single_run_baseline_pools_nothing() -> None:
    baseline = parse_baseline(build_baseline([latency_check()], target=None, environment={}))
    assert baseline.history == ()
    assert pooled_baseline(baseline) is baseline


def test_pooling_joins_the_samples_of_matching_runs_only(tmp_path: Path) -> None:
    path = tmp_path / "main.json"
    first = build_baseline([sampled(0)], target="edge-c", environment=environment(python="3.12.1"))
    save_baseline(path, first)
    for offset in (1, 2):
        document = build_baseline([sampled(offset)], target="edge-c", environment=environment())
        save_baseline(path, with_history(document, load_baseline(path)))
    pooled = pooled_baseline(load_baseline(path))
    record = pooled.checks[f"{NODE}::latency_under_80"]
    assert record.samples_ns is not None and len(record.samples_ns) == 60  # not the 3.12 run
    assert record.extra["pooled_runs"] == 2 and pooled.pooled_runs == 2
    assert record.value == pytest.approx(50.029 + 1.5e-6)
    assert "2 runs pooled" in pooled.describe()


def test_pooled_runs_are_scaled_to_the_newest_runs_host_speed(tmp_path: Path) -> None:
    baseline = saved_run(tmp_path, [sampled(0, canary=2.0)], [sampled(0)], [sampled(0, canary=1.0)])
    record = pooled_baseline(baseline).checks[f"{NODE}::latency_under_80"]
    assert record.samples_ns is not None and len(record.samples_ns) == 60  # no canary: left out
    assert record.samples_ns[30] == 25_000_000  # the 2x slower host's run, halved


def test_an_old_baseline_file_becomes_history_and_a_bad_history_is_refused(tmp_path: Path) -> None:
    document = build_baseline([sampled(0)], target=None, environment={})
    assert "history" not in document
    with pytest.raises(BaselineError, match=r"history\[0\]: missing field 'checks'"):
        parse_baseline(
            {**document, "history": [{"created": "x", "target": None, "environment": {}}]}
        )
    with pytest.raises(BaselineError, match="'history' must be a list of runs"):
        parse_baseline({**document, "history": {}})
