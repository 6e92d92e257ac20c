"""The names of the files a run leaves in its evidence directory.

Defined once, at the bottom layer: the report writes these files, and the verdict
must know which of them this run produces (a ``required_evidence`` entry that the run
writes itself counts as present) without importing the report.
"""

from __future__ import annotations

import re

METRICS_FILE = "metrics.csv"
REPORT_FILE = "report.json"
SUMMARY_FILE = "summary.md"
HTML_FILE = "report.html"
RUN_LOG_FILE = "run.log"
# Written only when an accuracy check compared a baseline and an optimized model.
FAILURE_CASES_FILE = "failure_cases.md"
# Every run that writes evidence writes these, in this order.
REPORT_FILES = (METRICS_FILE, REPORT_FILE, SUMMARY_FILE, HTML_FILE, RUN_LOG_FILE)
# The evidence set of the run before, moved aside when a run starts.
PREVIOUS_DIR = "previous"
TIMESERIES_PREFIX, TIMESERIES_SUFFIX = "soak_", ".csv"


def timeseries_file_name(nodeid: str, check_name: str) -> str:
    """``soak_<test>_<check>.csv``: readable, and a safe file name on every OS."""
    test = nodeid.rsplit("::", 1)[-1] if nodeid else "session"
    stem = re.sub(r"[^A-Za-z0-9.-]+", "_", f"{test}_{check_name}").strip("_.")
    return f"{TIMESERIES_PREFIX}{stem[:120]}{TIMESERIES_SUFFIX}"
