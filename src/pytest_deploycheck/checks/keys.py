"""Names of the data checks carry in ``Check.extra`` for the reports to render.

The checks write these keys and the report reads them, so they are defined here, in
the layer that writes them, and the report imports them (imports only go down).
"""

from __future__ import annotations

# The Markdown section an accuracy check contributes to failure_cases.md.
FAILURE_CASES_KEY = "failure_cases_markdown"
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
