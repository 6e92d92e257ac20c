"""Issue 15 points 3 and 5 as users see them: an OCR-like model judged with item_metric=,
and the words a newcomer reads without the README (the device-fit legend)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import DeployProject

FIT_TEST = """
import pytest

@pytest.mark.device_fit(model="optimized")
def test_optimized_fits(deploy_device):
    pass
"""

LEGEND = "CHECK means does not fit: the device falls short on each constraint named"

# The README's decoding protocol: a callable decode(X_batch) -> one output per item.
OCR_TESTS = """
import numpy as np
from pytest_deploycheck import assert_accuracy_drop

WORDS = ["7SEG", "A|B", "<b>x</b>", "0O0"]
IMAGES = np.arange(12, dtype=np.float32).reshape(12, 1)
TEXTS = [WORDS[i % 4] for i in range(12)]


def recogniser(misread):
    def decode(batch):
        rows = batch[:, 0].astype(int)
        return ["?" if i in misread else WORDS[i % 4] for i in rows]
    decode.name = "int8" if misread else "fp32"
    return decode


def exact(label, output):
    return label == output


def test_ocr_kept():
    assert_accuracy_drop(recogniser(()), recogniser(()), (IMAGES, TEXTS), max_drop=0.05,
                         item_metric=exact, batch_size=4)


def test_ocr_lost():
    assert_accuracy_drop(recogniser(()), recogniser({2, 6}), (IMAGES, TEXTS), max_drop=0.05,
                         item_metric=exact, batch_size=4, name="ocr_drop")
"""


def test_the_device_fit_line_keeps_check_and_says_what_it_means(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(FIT_TEST)
    result = pytester.runpytest("--deploy-target", "edge-c")
    result.stdout.fnmatch_lines(
        [
            "device fit: edge-a CHECK memory,power · edge-b CHECK offline · edge-c FIT",
            f"  {LEGEND}",
            "  for optimized: 700 MB (declared), 10 W (declared), offline",
        ]
    )
    summary = (deploy_project.evidence("edge-c") / "summary.md").read_text()
    assert f"{LEGEND}.\n" in summary
    assert "| edge-a | CHECK memory,power" in summary


def test_a_fitting_table_needs_no_legend(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(FIT_TEST, devices=("edge-c",))
    result = pytester.runpytest("--deploy-target", "edge-c")
    result.stdout.fnmatch_lines(["device fit: edge-c FIT"])
    result.stdout.no_fnmatch_line("*CHECK means does not fit*")


def test_an_ocr_model_through_the_decoding_protocol(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(OCR_TESTS)
    result = pytester.runpytest("--deploy-target", "edge-c")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: exact drop 0.1667 > 0.05: baseline 1, optimized 0.8333"
            " (n=12, agreement 0.8333, *at batch 4)*;"
            " scores: each item scored by item_metric 'exact'*",
            "accuracy_drop_ok*0.000 (baseline 1 → 1)*PASS",
        ]
    )
    text = (deploy_project.evidence("edge-c") / "failure_cases.md").read_text()
    assert "## ocr_drop: int8 against fp32" in text
    # Decoded outputs are data: a | or a tag in an OCR string cannot break the table.
    assert (
        "| 2 | &lt;b&gt;x&lt;/b&gt; | &lt;b&gt;x&lt;/b&gt; (1.000) | ? (0.000) | regression |"
        in text
    )
    assert "| 6 | &lt;b&gt;x&lt;/b&gt; |" in text
    assert "- McNemar exact test: 2 regressions, 0 fixed, p = 0.5" in text
    assert "<b>" not in text
