"""Baselines: one run's figures saved to compare later runs against.

``--deploy-save PATH`` writes a baseline, ``--deploy-baseline PATH`` reads one back and
:mod:`pytest_deploycheck.gates` compares the run to it.  The file is versioned JSON
(never pickle: a baseline is committed, shared and read by other versions of the plugin,
and loading it must not run code).  It holds:

* ``schema`` (:data:`BASELINE_SCHEMA`) and ``version`` (:data:`BASELINE_VERSION`): a
  reader refuses a newer version rather than misread it;
* ``created`` (UTC, ISO 8601), ``target`` and ``environment`` (as
  :func:`pytest_deploycheck.checks.environment.environment` describes it: Python, package
  versions, CPU model, logical and usable CPUs, platform, memory);
* ``models`` (optional): each configured model's file as this run used it -- path,
  SHA-256 and size -- so a later failing candidate can name the release to roll back
  to; ``release_candidate`` (optional): this run's verdict;
* ``checks``: one entry per gating check whose metric has a known good direction
  (:data:`KEPT_FAMILIES`): latency (``latency`` and ``latency_pNN``), ``throughput``,
  ``peak_memory``, ``accuracy_drop`` and ``cold_start``.  Latency and throughput keep
  their raw per-call samples (``samples_ns``), because a regression gate that must not
  fire on noise needs the distribution, not only its percentile; timed checks keep
  their host-speed canary (``extra.host_canary``), so a later run can tell a slower
  host from a slower model.

* ``history`` (optional): the runs saved before this one to the same file, newest
  first, at most :data:`HISTORY_LIMIT` - 1 of them, each with ``created``, ``target``,
  ``environment``, ``models``, ``release_candidate`` and ``checks`` as above.
  ``--deploy-save`` onto an existing baseline moves its run into the history
  (:func:`with_history`), and the gates compare with the pooled samples of the runs
  whose environment matches the newest one (:func:`pooled_baseline`): one saved run is
  one draw of a shared machine's drift, ten are its spread.  History lives in the one
  file, not a directory: a CI cache or an artifact is one path, the write stays atomic,
  and a reader of version 1 without history support still reads the newest run.

Not kept: non-gating checks (the fit of other devices, notes), device fit and evidence
files (they are re-judged from the configuration every run, there is nothing to drift),
the regression checks themselves, and checks recorded with ``record_check`` under a
metric of the user's own (whether bigger is better is unknown, so no gate could judge it).

A check is identified across runs by its key, ``f"{nodeid}::{name}"`` (the nodeid is
empty for session-level checks); a second check with the same key in one run gets
``#2``, ``#3``, ... in recording order.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeGuard

from ..checks import metrics
from ..checks.record import Check
from ..config.files import atomic_write_text

BASELINE_SCHEMA = "pytest-deploycheck/baseline"
BASELINE_VERSION = 1

LATENCY, THROUGHPUT, MEMORY, ACCURACY, COLD_START = (
    "latency",
    "throughput",
    "memory",
    "accuracy",
    "cold_start",
)
KEPT_FAMILIES = (LATENCY, THROUGHPUT, MEMORY, ACCURACY, COLD_START)
# Families whose checks carry raw per-call samples worth keeping.
SAMPLED_FAMILIES = (LATENCY, THROUGHPUT)
_EXACT_METRICS = {
    metrics.THROUGHPUT: THROUGHPUT,
    metrics.PEAK_MEMORY: MEMORY,
    metrics.ACCURACY_DROP: ACCURACY,
    metrics.COLD_START: COLD_START,
}
# What the gates need beside the value, by family; the rest of a check's extra (failure
# cases, advice) and its display text stay in report.json.  A memory record keeps its
# check's models in its extra, as version 1 of the file has them.
# The host-speed canary (``host_canary``) is kept by the timed families; a baseline
# saved before it existed simply lacks it, and its comparisons report no host drift.
_KEPT_EXTRA = {
    LATENCY: ("n", "latency_factor", "ci_low_ms", "ci_high_ms", "source", metrics.HOST_CANARY),
    THROUGHPUT: ("n", "batch", "latency_factor", "p50_ms", metrics.HOST_CANARY),
    MEMORY: ("repeat",),
    ACCURACY: ("baseline", "optimized", "n", "metric", "relative"),
    COLD_START: ("n", "runs_ms", "p50_ms", metrics.HOST_CANARY),
}


HISTORY_LIMIT = 10  # runs a baseline file keeps, the newest included
# What pooled runs must share, besides the environment, for their samples to be one set.
_POOLED_EXTRA = ("latency_factor", "batch")


class BaselineError(ValueError):
    """A baseline file that cannot be used, in one line naming the file."""


def metric_family(metric: str) -> str | None:
    """The gate that judges *metric* (one of :data:`KEPT_FAMILIES`), or None."""
    if metrics.is_latency(metric):
        return LATENCY
    return _EXACT_METRICS.get(metric)


def is_kept(check: Check) -> bool:
    """Whether *check* belongs in a baseline (and so can be compared to one)."""
    return check.gating and metric_family(check.metric) is not None


def check_keys(checks: Sequence[Check]) -> list[str]:
    """The identity key of each check, ``nodeid::name``, with ``#2``... for repeats."""
    seen: dict[str, int] = {}
    keys = []
    for check in checks:
        key = f"{check.nodeid}::{check.name}"
        seen[key] = seen.get(key, 0) + 1
        keys.append(key if seen[key] == 1 else f"{key}#{seen[key]}")
    return keys


def kept_checks(checks: Sequence[Check]) -> dict[str, Check]:
    """The checks a baseline keeps, by key, in recording order."""
    kept = [check for check in checks if is_kept(check)]
    return dict(zip(check_keys(kept), kept, strict=True))


@dataclass(frozen=True)
class BaselineCheck:
    """One check as the baseline remembers it."""

    key: str
    name: str
    nodeid: str
    metric: str
    value: float | None
    unit: str
    budget: float | None = None
    provenance: str = "measured"
    samples_ns: tuple[int, ...] | None = field(default=None, repr=False)
    percentile: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def family(self) -> str | None:
        return metric_family(self.metric)


@dataclass(frozen=True)
class Baseline:
    """A loaded baseline: where and when it was measured, and its checks by key."""

    target: str | None
    environment: dict[str, Any]
    created: str
    checks: dict[str, BaselineCheck]
    version: int = BASELINE_VERSION
    source: Path | None = None
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    release_candidate: bool | None = None
    history: tuple[Baseline, ...] = ()  # earlier runs, newest first (see the module docstring)
    pooled_runs: int = 1  # runs whose samples the checks hold (see pooled_baseline)

    def describe(self) -> str:
        """``baseline.json (edge-c, 2024-06-01T12:00:00+00:00)`` for report lines."""
        where = self.source.name if self.source is not None else "baseline"
        pooled = f", {self.pooled_runs} runs pooled" if self.pooled_runs > 1 else ""
        return f"{where} ({self.target or 'no target'}, {self.created}{pooled})"


def build_baseline(
    checks: Sequence[Check],
    *,
    target: str | None,
    environment: Mapping[str, Any],
    models: Mapping[str, Mapping[str, Any]] | None = None,
    release_candidate: bool | None = None,
) -> dict[str, Any]:
    """The JSON document of a baseline for this run's *checks* (see the module docstring)."""
    return {
        "schema": BASELINE_SCHEMA,
        "version": BASELINE_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "target": target,
        "release_candidate": release_candidate,
        "environment": _plain(environment),
        "models": _plain(dict(models or {})),
        "checks": [_check_record(key, check) for key, check in kept_checks(checks).items()],
    }


def _check_record(key: str, check: Check) -> dict[str, Any]:
    family = metric_family(check.metric)
    assert family is not None  # kept_checks only hands out known families
    samples = check.extra.get("samples_ns") if family in SAMPLED_FAMILIES else None
    percentile = check.extra.get("percentile")
    extra = {name: check.extra[name] for name in _KEPT_EXTRA[family] if name in check.extra}
    if family == MEMORY and check.models:
        extra["models"] = list(check.models)
    return {
        "key": key,
        "name": check.name,
        "nodeid": check.nodeid,
        "metric": check.metric,
        "value": check.value,
        "unit": check.unit,
        "budget": check.budget,
        "provenance": check.provenance,
        "samples_ns": None if samples is None else [int(s) for s in samples],
        "percentile": None if percentile is None else float(percentile),
        "extra": _plain(extra),
    }


def _plain(value: Any) -> Any:
    """numpy scalars and arrays, tuples and paths as plain JSON values."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    tolist = getattr(value, "tolist", None)
    return _plain(tolist()) if callable(tolist) else str(value)


_RUN_FIELDS = ("created", "target", "release_candidate", "environment", "models", "checks")


def with_history(document: Mapping[str, Any], previous: Baseline | None) -> dict[str, Any]:
    """*document* with *previous* (the file it replaces) and its history as its history.

    At most :data:`HISTORY_LIMIT` runs in all; a previous file of another target keeps
    its runs too (pooling picks matching ones), so one file can serve a branch's runs.
    """
    if previous is None:
        return dict(document)
    runs = [_run_document(previous), *(_run_document(run) for run in previous.history)]
    return {**document, "history": runs[: HISTORY_LIMIT - 1]}


def _run_document(run: Baseline) -> dict[str, Any]:
    """One run of a loaded baseline as its JSON object again (the history's entries)."""
    return {
        "created": run.created,
        "target": run.target,
        "release_candidate": run.release_candidate,
        "environment": run.environment,
        "models": run.models,
        "checks": [_record_document(record) for record in run.checks.values()],
    }


def _record_document(record: BaselineCheck) -> dict[str, Any]:
    return {
        "key": record.key,
        "name": record.name,
        "nodeid": record.nodeid,
        "metric": record.metric,
        "value": record.value,
        "unit": record.unit,
        "budget": record.budget,
        "provenance": record.provenance,
        "samples_ns": None if record.samples_ns is None else list(record.samples_ns),
        "percentile": record.percentile,
        "extra": record.extra,
    }


def pooled_baseline(baseline: Baseline) -> Baseline:
    """*baseline* whose latency and throughput records pool the matching history runs.

    A history run joins the pool when its environment and target match the newest run's
    (:func:`environment_differences` finds nothing) and its record of the same key has
    the same metric, unit, provenance, percentile and scaling.  When the newest run has
    a host-speed canary, every pooled run's samples are scaled to it (runs without one
    are left out), so the pool is the newest host speed's; the pooled figure is the
    median of the runs' figures, scaled alike.
    """
    matching = [
        run
        for run in baseline.history
        if not environment_differences(
            run.environment,
            baseline.environment,
            baseline_target=run.target,
            current_target=baseline.target,
        )
    ]
    if not matching:
        return baseline
    checks = {key: _pooled(record, matching) for key, record in baseline.checks.items()}
    runs = max((int(r.extra.get("pooled_runs", 1)) for r in checks.values()), default=1)
    return replace(baseline, checks=checks, pooled_runs=runs)


def _pooled(record: BaselineCheck, runs: Sequence[Baseline]) -> BaselineCheck:
    if record.family not in SAMPLED_FAMILIES or record.samples_ns is None or record.value is None:
        return record
    reference = _canary_of(record)
    samples, values = list(record.samples_ns), [record.value]
    for run in runs[: HISTORY_LIMIT - 1]:
        other = run.checks.get(record.key)
        scale = _pool_scale(record, other, reference)
        if other is None or scale is None or other.samples_ns is None or other.value is None:
            continue
        samples += [round(sample * scale) for sample in other.samples_ns]
        values.append(other.value * scale if record.family == LATENCY else other.value / scale)
    if len(values) == 1:
        return record
    extra = {**record.extra, "pooled_runs": len(values)}
    value = float(statistics.median(values))
    return replace(record, samples_ns=tuple(samples), value=value, extra=extra)


def _pool_scale(
    record: BaselineCheck, other: BaselineCheck | None, reference: float | None
) -> float | None:
    """The factor that puts *other*'s samples at *record*'s host speed; None: not poolable."""
    if other is None or other.samples_ns is None:
        return None
    same = (other.metric, other.unit, other.provenance, other.percentile) == (
        record.metric,
        record.unit,
        record.provenance,
        record.percentile,
    )
    if not same or any(other.extra.get(k) != record.extra.get(k) for k in _POOLED_EXTRA):
        return None
    if reference is None:
        return 1.0
    canary = _canary_of(other)
    return None if canary is None else reference / canary


def _canary_of(record: BaselineCheck) -> float | None:
    canary = record.extra.get(metrics.HOST_CANARY)
    value = canary.get("ns_per_op") if isinstance(canary, Mapping) else None
    return float(value) if _is_number(value) and value > 0 else None


def save_baseline(path: Path, document: Mapping[str, Any]) -> None:
    """Write *document* to *path* atomically, creating the parent directories."""
    text = json.dumps(document, indent=2, allow_nan=False) + "\n"
    atomic_write_text(Path(path), text)


def load_baseline(path: Path) -> Baseline:
    """Read and validate a baseline; any problem is one :class:`BaselineError` line."""
    path = Path(path)
    return parse_baseline(_read_json(path), source=path)


def parse_baseline(document: Any, *, source: Path | None = None) -> Baseline:
    """Validate a baseline document already parsed from JSON (see :func:`load_baseline`)."""
    try:
        return _parse(document, source)
    except _Invalid as problem:
        raise BaselineError(f"{source or 'baseline'}: {problem}") from None


class _Invalid(Exception):
    """A validation problem, before the file name is put in front of it."""


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BaselineError(
            f"{path}: no such baseline file (save one with --deploy-save {path})"
        ) from None
    except IsADirectoryError:
        raise BaselineError(f"{path}: is a directory, not a baseline file") from None
    except UnicodeDecodeError as exc:
        raise BaselineError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise BaselineError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise BaselineError(
            f"{path}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:
        raise BaselineError(
            f"{path}: not a baseline: arrays or objects nested too deeply"
        ) from None
    except ValueError as exc:  # NaN or Infinity, an integer of more digits than Python reads
        raise BaselineError(f"{path}: not valid JSON: {str(exc).splitlines()[0]}") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _parse(document: Any, source: Path | None) -> Baseline:
    if not isinstance(document, dict):
        raise _Invalid(f"expected a JSON object, got {_json_type(document)}")
    _check_schema(document)
    version = document.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _Invalid(f"'version' must be a whole number >= 1, got {version!r}")
    if version > BASELINE_VERSION:
        raise _Invalid(
            f"written by a newer pytest-deploycheck (version {version});"
            f" this one reads version {BASELINE_VERSION}"
        )
    run = _parse_run(document, version, source)
    raw_history = document.get("history")
    raw_history = [] if raw_history is None else raw_history
    if not isinstance(raw_history, list):
        raise _Invalid(f"'history' must be a list of runs, got {_json_type(raw_history)}")
    history = []
    for index, entry in enumerate(raw_history):
        if not isinstance(entry, dict):
            raise _Invalid(f"history[{index}]: expected an object, got {_json_type(entry)}")
        try:
            history.append(_parse_run(entry, version, source))
        except _Invalid as problem:
            raise _Invalid(f"history[{index}]: {problem}") from None
    return replace(run, history=tuple(history))


def _parse_run(document: Mapping[str, Any], version: int, source: Path | None) -> Baseline:
    """One run's fields: the top level of the file, or one entry of its history."""
    created = _field(document, "created", str, "a string")
    target = _field(document, "target", (str, type(None)), "a string or null")
    environment = _field(document, "environment", dict, "an object")
    records = _field(document, "checks", list, "a list")
    checks: dict[str, BaselineCheck] = {}
    for index, record in enumerate(records):
        check = _parse_check(record, index)
        if check.key in checks:
            raise _Invalid(f"checks[{index}]: duplicate key {check.key!r}")
        checks[check.key] = check
    models = document.get("models")
    models = {} if models is None else models
    if not isinstance(models, dict) or not all(isinstance(m, dict) for m in models.values()):
        raise _Invalid(f"'models' must be an object of model records, got {_json_type(models)}")
    candidate = document.get("release_candidate")
    if candidate is not None and not isinstance(candidate, bool):
        raise _Invalid(f"'release_candidate' must be true, false or null, got {candidate!r}")
    return Baseline(target, environment, created, checks, version, source, models, candidate)


def _check_schema(document: Mapping[str, Any]) -> None:
    if "schema" not in document:
        hint = " (this looks like a report.json)" if "schema_version" in document else ""
        raise _Invalid(
            f"not a pytest-deploycheck baseline: no 'schema' field{hint};"
            " write one with --deploy-save PATH"
        )
    if document["schema"] != BASELINE_SCHEMA:
        raise _Invalid(
            f"not a pytest-deploycheck baseline: schema {document['schema']!r},"
            f" expected {BASELINE_SCHEMA!r}"
        )


def _field(
    record: Mapping[str, Any],
    name: str,
    kind: type | tuple[type, ...],
    wanted: str,
    where: str = "",
) -> Any:
    if name not in record:
        raise _Invalid(f"{where}missing field {name!r}")
    value = record[name]
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _types(kind)):
        raise _Invalid(f"{where}{name!r} must be {wanted}, got {_json_type(value)}")
    return value


def _types(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


_NUMBER_OR_NULL = ((int, float, type(None)), "a number or null")


def _parse_check(record: Any, index: int) -> BaselineCheck:
    where = f"checks[{index}]: "
    if not isinstance(record, dict):
        raise _Invalid(f"{where}expected an object, got {_json_type(record)}")
    key = _field(record, "key", str, "a string", where)
    where = f"checks[{index}] ({key}): "
    extra = record.get("extra", {})
    if not isinstance(extra, dict):
        raise _Invalid(f"{where}'extra' must be an object, got {_json_type(extra)}")
    value = _finite(_field(record, "value", *_NUMBER_OR_NULL, where), "value", where)
    budget = record.get("budget")
    budget = _finite(budget, "budget", where) if _is_number(budget) else None
    percentile = (
        _field(record, "percentile", *_NUMBER_OR_NULL, where) if "percentile" in record else None
    )
    percentile = _finite(percentile, "percentile", where)
    return BaselineCheck(
        key=key,
        name=_field(record, "name", str, "a string", where),
        nodeid=_field(record, "nodeid", str, "a string", where),
        metric=_field(record, "metric", str, "a string", where),
        value=value,
        unit=_field(record, "unit", str, "a string", where),
        budget=budget,
        provenance=str(record.get("provenance", "measured")),
        samples_ns=_samples(record.get("samples_ns"), where),
        percentile=percentile,
        extra=extra,
    )


def _finite(number: float | None, name: str, where: str) -> float | None:
    """*number* as a finite float; 1e400 (read as inf) or 10**400 (too large) refused."""
    if number is None:
        return None
    try:
        converted = float(number)
    except OverflowError:
        converted = math.inf
    if not math.isfinite(converted):
        raise _Invalid(f"{where}{name!r} must be a finite number, got {_json_type(number)}")
    return converted


def _samples(raw: Any, where: str) -> tuple[int, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise _Invalid(
            f"{where}'samples_ns' must be a list of whole numbers, got {_json_type(raw)}"
        )
    for position, sample in enumerate(raw):
        if isinstance(sample, bool) or not isinstance(sample, int) or sample < 0:
            raise _Invalid(
                f"{where}samples_ns[{position}] must be a whole number of nanoseconds >= 0,"
                f" got {sample!r}"
            )
        if sample >= 2**63:  # past what numpy's int64 holds
            raise _Invalid(
                f"{where}samples_ns[{position}] must be under 2**63 nanoseconds,"
                f" got {_json_type(sample)}"
            )
    return tuple(raw)


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    names.update({list: "a list", dict: "an object"})
    return f"{names.get(type(value), type(value).__name__)} ({_shown(value)})"


def _shown(value: object) -> str:
    if isinstance(value, int) and value.bit_length() > 128:
        return f"about {int(value.bit_length() * math.log10(2)) + 1} digits"
    try:
        return json.dumps(value)[:40]
    except (TypeError, ValueError, RecursionError):
        return type(value).__name__


# --------------------------------------------------------------------------- environment


@dataclass(frozen=True)
class _Aspect:
    label: str
    path: tuple[str, ...]
    material: bool
    minor_version: bool = False


# Material: anything that moves the figures themselves.  The CPU and its count decide
# latency; onnxruntime and numpy do the work; Python's minor version changes the
# interpreter's overhead around each call; the target decides threads and pinning.
# Informational: the plugin's own version (an upgrade would otherwise force every team
# to re-save its baselines; the measurement rules are versioned in the changelog), the
# host's total memory (peak memory is the process's own, not the host's) and the
# platform string (it changes with every kernel patch; the CPU and count already say
# what matters).
_ASPECTS = (
    _Aspect("CPU model", ("host", "cpu_model"), True),
    _Aspect("CPU architecture", ("host", "machine"), True),
    _Aspect("logical CPUs", ("host", "logical_cpus"), True),
    _Aspect("usable CPUs", ("host", "usable_cpus"), True),
    _Aspect("onnxruntime", ("packages", "onnxruntime"), True),
    _Aspect("numpy", ("packages", "numpy"), True),
    _Aspect("Python", ("python",), True, minor_version=True),
    _Aspect("pytest-deploycheck", ("packages", "pytest-deploycheck"), False),
    _Aspect("host memory (MB)", ("host", "memory_total_mb"), False),
    _Aspect("platform", ("host", "platform"), False),
)


def environment_differences(
    baseline_env: Mapping[str, Any],
    current_env: Mapping[str, Any],
    *,
    baseline_target: str | None,
    current_target: str | None,
) -> list[str]:
    """What differs between the baseline's environment and this run's, one line each.

    Compared: the target, CPU model and architecture, logical and usable CPU counts,
    the onnxruntime and numpy versions and Python's minor version; these move the
    figures, so the gates warn or refuse on them (``on_environment_mismatch``).  A
    figure recorded on one side only counts as a difference: sameness cannot be shown.
    See :func:`environment_notes` for differences that are only reported.
    """
    lines = []
    if baseline_target != current_target:
        lines.append(_difference("target", baseline_target, current_target))
    lines += _aspect_lines(baseline_env, current_env, material=True)
    return lines


def environment_notes(baseline_env: Mapping[str, Any], current_env: Mapping[str, Any]) -> list[str]:
    """Differences that do not invalidate a comparison (plugin version, host memory)."""
    return _aspect_lines(baseline_env, current_env, material=False)


def _aspect_lines(
    baseline_env: Mapping[str, Any], current_env: Mapping[str, Any], *, material: bool
) -> list[str]:
    lines = []
    for aspect in _ASPECTS:
        if aspect.material != material:
            continue
        old, new = _lookup(baseline_env, aspect), _lookup(current_env, aspect)
        if old is None and new is None:
            continue
        if old != new:
            lines.append(_difference(aspect.label, old, new))
    return lines


def _lookup(env: Mapping[str, Any], aspect: _Aspect) -> Any:
    value: Any = env
    for part in aspect.path:
        value = value.get(part) if isinstance(value, Mapping) else None
    if aspect.minor_version and isinstance(value, str):
        return ".".join(value.split(".")[:2])
    return value


def _difference(label: str, old: object, new: object) -> str:
    def shown(value: object) -> str:
        return "not recorded" if value is None else str(value)

    return f"{label}: {shown(old)} in the baseline, {shown(new)} now"
