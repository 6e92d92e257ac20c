"""Evidence files: what a run leaves behind so a verdict can be audited later.

Every file is written to a temporary sibling and renamed into place, so an
interrupted run leaves the previous file or the new one, never half of either.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import platform
import re
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from ..checks.record import Check

METRICS_FILE = "metrics.csv"
FAILURE_CASES_FILE = "failure_cases.md"
FAILURE_CASES_KEY = "failure_cases_markdown"
REPORT_FILE = "report.json"
REPORT_SCHEMA_VERSION = 1
METRICS_COLUMNS = (
    "name",
    "status",
    "value",
    "unit",
    "budget",
    "provenance",
    "metric",
    "gating",
    "nodeid",
    "details",
)
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
VERSIONED_PACKAGES = ("pytest-deploycheck", "onnxruntime", "numpy", "pytest", "psutil")


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_write_text(path: Path, text: str) -> Path:
    """Write *text* to *path* so that readers see the old file or the whole new one."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write *data* via a synced temporary sibling renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600; evidence is read by other users (CI artifact uploads).
        os.chmod(tmp_name, 0o666 & ~_UMASK)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    return path


def metrics_csv(checks: Iterable[Check]) -> str:
    """One row per check, the columns of :data:`METRICS_COLUMNS`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(METRICS_COLUMNS)
    for check in checks:
        row = check.as_dict()
        row["value"] = _csv_value(check.value)
        row["budget"] = _csv_value(check.budget)
        row["gating"] = str(check.gating).lower()
        writer.writerow([row[column] for column in METRICS_COLUMNS])
    return buffer.getvalue()


def timeseries_csv(rows: Sequence[Sequence[Any]]) -> str:
    """A soak's time series, one row per sampling interval (:data:`TIMESERIES_COLUMNS`)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(TIMESERIES_COLUMNS)
    for row in rows:
        writer.writerow(["" if value is None else value for value in row])
    return buffer.getvalue()


def timeseries_file_name(nodeid: str, check_name: str) -> str:
    """``soak_<test>_<check>.csv``: readable, and a safe file name on every OS."""
    test = nodeid.rsplit("::", 1)[-1] if nodeid else "session"
    stem = re.sub(r"[^A-Za-z0-9.-]+", "_", f"{test}_{check_name}").strip("_.")
    return f"soak_{stem[:120]}.csv"


def _csv_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def package_versions(names: Sequence[str] = VERSIONED_PACKAGES) -> dict[str, str | None]:
    """Installed versions, read from metadata so that nothing heavy gets imported."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def host_description() -> dict[str, Any]:
    """The machine the figures were measured on."""
    import psutil  # deferred: only needed once a run reports

    usable: int | None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        usable = os.cpu_count()
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "memory_total_mb": round(psutil.virtual_memory().total / 1e6, 1),
    }


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def environment() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "packages": package_versions(),
        "host": host_description(),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def required_evidence_check(
    name: str, evidence_dir: Path, project_dir: Path, produced: Sequence[str]
) -> Check:
    """A ``has_<stem>`` check: the file exists in the evidence or the project directory.

    Files this run writes itself count as present; anything else must be on disk.
    """
    stem = Path(name).stem
    candidates = [evidence_dir / name, project_dir / name]
    found = next((p for p in candidates if p.is_file()), None)
    if name in produced:
        state, where, passed = "written", f"written by this run to {evidence_dir}", True
    elif found is not None:
        state, where, passed = "present", f"found at {found}", True
    else:
        state, where = "missing", f"looked in {evidence_dir} and {project_dir}"
        passed = False
    return Check(
        name=f"has_{stem}",
        metric="evidence_file",
        value=name,
        passed=passed,
        provenance="measured",
        details=where,
        extra={"display": f"{name} {state}", "path": str(found) if found else None},
    )


def failure_cases_document(sections: Sequence[str], handwritten: Path | None) -> str:
    """failure_cases.md: each accuracy check's section, then any hand-written notes.

    A hand-written failure_cases.md beside the config is kept, not replaced: its text
    follows the generated sections so the evidence holds both.
    """
    parts = [
        "# Failure cases\n\nGenerated by pytest-deploycheck from this run's accuracy checks.\n",
        *(section.strip() + "\n" for section in sections),
    ]
    if handwritten is not None:
        text = handwritten.read_text(encoding="utf-8", errors="replace").strip()
        parts.append(f"## Kept from {handwritten.name} beside the configuration\n\n{text}\n")
    return "\n".join(parts)


def _json_default(value: object) -> object:
    """numpy scalars and arrays, paths and the like, as JSON can hold them."""
    item = getattr(value, "tolist", None)
    if callable(item):
        return item()
    return str(value)


def write_evidence(
    evidence_dir: Path,
    checks: Sequence[Check],
    report: Mapping[str, Any],
) -> list[str]:
    """Write metrics.csv and report.json; return the file names written."""
    atomic_write_text(evidence_dir / METRICS_FILE, metrics_csv(checks))
    document = {"schema_version": REPORT_SCHEMA_VERSION, **report}
    atomic_write_text(
        evidence_dir / REPORT_FILE, json.dumps(document, indent=2, default=_json_default) + "\n"
    )
    return [METRICS_FILE, REPORT_FILE]
