"""The memory probe's own readings, independent of the child-process machinery."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pytest_deploycheck.measure.memory import current_rss_bytes, peak_rss_bytes

PARENT_BYTES = 300_000_000


def test_the_peak_is_at_least_the_current_resident_size() -> None:
    assert peak_rss_bytes() >= current_rss_bytes() > 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="exec and vfork semantics")
def test_a_child_reports_its_own_peak_not_its_parents() -> None:
    # subprocess spawns with vfork: getrusage's ru_maxrss in the child would carry this
    # process's high-water mark over the exec.
    held = bytearray(PARENT_BYTES)
    code = "from pytest_deploycheck.measure.memory import peak_rss_bytes; print(peak_rss_bytes())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    del held
    assert int(out.stdout) < PARENT_BYTES / 2
