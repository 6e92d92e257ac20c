"""Evidence files: what a run leaves behind so a verdict can be audited later.

The content of metrics.csv, report.json and the soak time series (failure_cases.md
is :mod:`.failure_cases`).  Every file is written atomically (config.files); the
writer puts them all in place.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..checks.metrics import TIMESERIES_COLUMNS as TIMESERIES_COLUMNS
from ..checks.record import Check
from ..config.escape import csv_cell
from ..config.evidence_names import METRICS_FILE, REPORT_FILE
from ..config.files import atomic_write_bytes as atomic_write_bytes
from ..config.files import atomic_write_text as atomic_write_text
from ..config.files import contained

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


def metrics_csv(checks: Iterable[Check]) -> str:
    """One row per check, the columns of :data:`METRICS_COLUMNS`.

    Every cell goes through :func:`csv_cell`: a name or a detail that starts like a
    formula is text in a spreadsheet, and numbers stay numbers.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(METRICS_COLUMNS)
    for check in checks:
        row = check.as_dict()
        row["gating"] = str(check.gating).lower()
        writer.writerow([csv_cell(row[column]) for column in METRICS_COLUMNS])
    return buffer.getvalue()


def timeseries_csv(rows: Sequence[Sequence[Any]]) -> str:
    """A soak's time series, one row per sampling interval (:data:`TIMESERIES_COLUMNS`)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(TIMESERIES_COLUMNS)
    for row in rows:
        writer.writerow([csv_cell(value) for value in row])
    return buffer.getvalue()


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
    atomic_write_text(contained(evidence_dir, METRICS_FILE), metrics_csv(checks))
    document = {"schema_version": REPORT_SCHEMA_VERSION, **report}
    atomic_write_text(
        contained(evidence_dir, REPORT_FILE),
        json.dumps(document, indent=2, default=_json_default) + "\n",
    )
    return [METRICS_FILE, REPORT_FILE]
