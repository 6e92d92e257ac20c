"""The static marker help lines match what the marker modules generate."""

from __future__ import annotations

from pytest_deploycheck.checks import fitmarker as fitcheck
from pytest_deploycheck.checks import offline as offlinecheck
from pytest_deploycheck.config.names import HELP_LINES, MARKER_NAMES
from pytest_deploycheck.markers_table import BUDGET_MARKERS


def test_help_lines_are_generated_from_the_implementations() -> None:
    generated = (
        fitcheck.HELP,
        *(marker.help for marker in BUDGET_MARKERS.values()),
        offlinecheck.HELP,
    )
    assert generated == HELP_LINES


def test_marker_names_match_the_help_lines() -> None:
    assert tuple(line.split("(", 1)[0] for line in HELP_LINES) == MARKER_NAMES
