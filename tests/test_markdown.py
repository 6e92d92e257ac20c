"""Unit tests of mdreport.py: the Markdown summary built from a report.json document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_deploycheck.checks.record import Check
from pytest_deploycheck.report.markdown import append_step_summary, readiness_markdown
from pytest_deploycheck.verdict.decide import decide
from pytest_deploycheck.verdict.run import fit_groups

DEVICES = ("edge-a", "edge-c")


def check(name: str, **fields: Any) -> Check:
    defaults: dict[str, Any] = {"metric": "latency_p95", "value": 61.2, "unit": "ms"}
    return Check(name=name, **{**defaults, **fields})


def fit_check(device: str, *, fits: bool, price: float, target: bool) -> Check:
    reasons = [] if fits else ["memory", "power"]
    status = "FIT" if fits else "CHECK memory,power"
    return Check(
        name=f"device_fit[optimized@{device}]",
        metric="device_fit",
        value=status,
        passed=fits,
        provenance="declared",
        gating=target,
        extra={
            "device": device,
            "status": status,
            "fits": fits,
            "reasons": reasons,
            "details": [] if fits else [f"memory: needs 700 MB, {device} has 512"],
            "price_usd": price,
            "needs": "700 MB (declared), 10 W (declared), offline",
            "is_target": target,
        },
        models=("optimized",),
    )


def latency(passed: bool = True, **extra: Any) -> Check:
    return check(
        "latency_under_80",
        value=61.2 if passed else 95.0,
        budget=80.0,
        passed=passed,
        display=f"p95 {61.2 if passed else 95.0} ms (n=412, 95% CI 59.8\u201363.0)",
        notes=("host has 2 usable CPUs, target has 4: measured with 2",),
        extra={"samples_ns": [60_000_000, 61_000_000, 62_000_000], **extra},
    )


def regression(passed: bool) -> Check:
    """A comparison check as gates.py records it: the change in % against a tolerance."""
    return check(
        "regression[latency_under_80]",
        metric="regression",
        value=25.0,
        unit="%",
        budget=10.0,
        passed=passed,
        extra={
            "kind": "regression" if not passed else "unchanged",
            "old": 76.0,
            "new": 95.0,
            "change": 25.0,
            "p_value": 0.0012,
        },
        display="+25.0% vs baseline (p=0.0012)",
    )


def make_report(checks: list[Check], **more: Any) -> dict[str, Any]:
    """A report.json document as report.writer.report_document builds it."""
    verdict = decide(checks, target="edge-c")
    return {
        "schema_version": 1,
        "target": "edge-c",
        "verdict": verdict.as_dict(),
        "checks": [c.as_dict() for c in checks],
        "device_fit": [g.as_dict(DEVICES) for g in fit_groups(checks)],
        "failed_tests": [],
        "command_line": ["pytest", "--deploy-target", "edge-c"],
        "environment": {
            "python": "3.11.7",
            "packages": {"onnxruntime": "1.17.0", "numpy": None},
            "host": {"cpu_model": "AMD EPYC", "usable_cpus": 2},
            "timestamp": "2026-01-02T03:04:05+00:00",
        },
        **more,
    }


def passing_report() -> dict[str, Any]:
    return make_report(
        [
            latency(),
            check("memory_under_1000", metric="peak_memory", value=700.0, unit="MB",
                  budget=1000.0, provenance="declared"),
            check("has_failure_cases", metric="evidence_file", value="failure_cases.md",
                  unit="", display="failure_cases.md written"),
            fit_check("edge-a", fits=False, price=60, target=False),
            fit_check("edge-c", fits=True, price=120, target=True),
        ],
        evidence_files=["metrics.csv", "report.json"],
    )  # fmt: skip


def failing_report() -> dict[str, Any]:
    return make_report(
        [
            latency(passed=False),
            regression(passed=False),
            check("evil|<script>alert(1)</script>", value=3.0, budget=2.0, passed=False,
                  details="a | b <b>bold</b>"),
        ]
    )  # fmt: skip


def rows(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("|")]


def test_a_passing_run_opens_with_the_target_and_a_true_verdict() -> None:
    lines = readiness_markdown(passing_report()).splitlines()

    assert lines[0] == "## Deploy readiness: edge-c"
    assert "✅ **release_candidate: True**" in lines
    assert "4 PASS · 0 FAIL · 0 INCONCLUSIVE · 1 INFO" in lines


def test_a_failing_run_lists_its_reasons_under_the_false_verdict() -> None:
    text = readiness_markdown(failing_report())

    assert "❌ **release_candidate: False**\n" in text
    assert "- latency_under_80: 95 ms (budget 80 ms)" in text
    assert "- regression\\[latency_under_80\\]: 25 % (budget 10 %)" in text


def test_the_checks_table_has_budget_figure_and_verdict_per_check() -> None:
    table = rows(readiness_markdown(passing_report()))

    assert table[0] == "| check | budget | measured | baseline | change | verdict |"
    assert table[2] == (
        "| latency_under_80 | 80 ms | p95 61.2 ms (n=412, 95% CI 59.8\u201363.0)"
        " | — | — | ✅ PASS |"
    )
    assert "| memory_under_1000 | 1000 MB | 700 MB (declared) | — | — | ✅ PASS |" in table
    assert "| has_failure_cases | — | failure_cases.md written | — | — | ✅ PASS |" in table


def test_device_fits_of_other_devices_are_only_in_the_fit_table() -> None:
    text = readiness_markdown(passing_report())

    assert "| device_fit\\[optimized@edge-c\\] | — | FIT (declared) | — | — | ✅ PASS |" in text
    assert "device_fit\\[optimized@edge-a" not in text


def test_a_regression_check_fills_baseline_and_change_of_its_check() -> None:
    table = rows(readiness_markdown(failing_report()))

    assert table[2] == (
        "| latency_under_80 | 80 ms | p95 95.0 ms (n=412, 95% CI 59.8\u201363.0) | 76 ms"
        " | regression: +25.0% vs baseline (p=0.0012) | ❌ FAIL · regression ❌ FAIL |"
    )
    assert not any(row.startswith("| regression[") for row in table)


def test_a_regression_check_without_its_check_keeps_its_own_row() -> None:
    missing = check(
        "regression[old_check]",
        metric="regression",
        value=None,
        unit="",
        gating=False,
        display="not run this time",
        extra={"kind": "missing"},
    )

    table = rows(readiness_markdown(make_report([latency(), missing])))

    assert table[3] == "| regression\\[old_check\\] | — | not run this time | — | — | ℹ️ INFO |"  # noqa: RUF001


def test_without_its_words_a_change_is_computed_from_the_two_figures() -> None:
    drop = check("accuracy_drop_ok", metric="accuracy_drop", value=0.004, unit="", budget=0.01)
    base = check("regression[accuracy_drop_ok]", metric="regression", value=0.004, unit="",
                 extra={"kind": "unchanged", "old": 0.0, "new": 0.004})  # fmt: skip
    memory = check("memory_under_512", metric="peak_memory", value=110.0, unit="MB")
    grown = check(
        "regression[memory_under_512]",
        metric="regression",
        value=10.0,
        unit="%",
        passed=False,
        extra={"kind": "regression", "old": 100.0, "new": 110.0, "p_value": 0.5},
    )

    table = rows(readiness_markdown(make_report([drop, base, memory, grown])))

    assert table[2] == "| accuracy_drop_ok | 0.01 | 0.004 | 0 | unchanged: +0.004 | ✅ PASS |"
    assert table[3] == (
        "| memory_under_512 | — | 110 MB | 100 MB | regression: +10.0% (p=0.5)"
        " | ✅ PASS · regression ❌ FAIL |"
    )


def test_pipes_and_markup_are_escaped_in_cells_and_reasons() -> None:
    text = readiness_markdown(failing_report())

    assert "<script" not in text
    assert "| evil\\|&lt;script&gt;alert(1)&lt;/script&gt; | 2 ms | 3 ms |" in text
    assert (
        "- evil\\|&lt;script&gt;alert(1)&lt;/script&gt;: 3 ms (budget 2 ms)"
        " - a \\| b &lt;b&gt;bold&lt;/b&gt;\n" in text
    )
    for row in rows(text):
        assert row.replace("\\|", "").count("|") == 7, row


def test_the_fit_table_names_the_target_and_the_cheapest_fit() -> None:
    text = readiness_markdown(passing_report())

    assert "### Device fit: optimized" in text
    assert "Needs 700 MB (declared), 10 W (declared), offline." in text
    assert "| edge-a | CHECK memory,power — memory: needs 700 MB, edge-a has 512 | 60 USD |" in text
    assert "| edge-c (target) | FIT | 120 USD |" in text
    assert "Cheapest device that fits: edge-c (120 USD)." in text


def test_no_fitting_device_is_said_plainly() -> None:
    report = make_report([fit_check("edge-a", fits=False, price=60, target=True)])

    assert "No device in the table fits." in readiness_markdown(report)


def test_notes_appear_once_and_evidence_and_command_are_listed() -> None:
    report = passing_report()
    report["checks"].append(report["checks"][0])

    text = readiness_markdown(report)

    assert text.count("- host has 2 usable CPUs, target has 4: measured with 2") == 1
    assert "- metrics.csv\n- report.json\n" in text
    assert "Reproduce: `pytest --deploy-target edge-c`" in text
    assert "Run on AMD EPYC (2 usable CPUs), Python 3.11.7, onnxruntime 1.17.0" in text
    assert "numpy" not in text  # not installed: nothing to say
    assert text.endswith("at 2026-01-02T03:04:05+00:00.\n")


def test_the_command_and_directory_are_literal_code_spans() -> None:
    report = passing_report()
    report["command_line"] = ["pytest", "-k", "a or `b`|c"]
    report["evidence_dir"] = "/ci/evidence"

    text = readiness_markdown(report)

    assert "In `/ci/evidence`:\n\n- metrics.csv\n" in text
    assert "Reproduce: ``pytest -k 'a or `b`|c'``" in text


def test_the_same_report_gives_the_same_text() -> None:
    assert readiness_markdown(failing_report()) == readiness_markdown(failing_report())


def test_an_empty_report_is_not_a_release_candidate() -> None:
    text = readiness_markdown({})

    assert "## Deploy readiness: no target" in text
    assert "❌ **release_candidate: False**" in text
    assert "No readiness check ran." in text


def test_the_step_summary_is_appended_with_a_trailing_newline(tmp_path: Path) -> None:
    summary = tmp_path / "step_summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")

    assert append_step_summary(summary, "## first") is None
    assert append_step_summary(summary, "second\n") is None

    assert summary.read_text(encoding="utf-8") == "earlier step\n## first\nsecond\n"


def test_an_unwritable_step_summary_is_reported_not_raised(tmp_path: Path) -> None:
    problem = append_step_summary(tmp_path / "missing" / "summary.md", "text")

    assert problem is not None
    assert str(tmp_path / "missing" / "summary.md") in problem
    assert append_step_summary(tmp_path, "text") is not None  # a directory


def test_identical_passing_rows_are_one_row_with_a_count() -> None:
    def offline(nodeid: str, passed: bool = True) -> Check:
        return check(
            "offline",
            metric="network_attempts",
            value=0 if passed else 1,
            unit="attempts",
            budget=0,
            passed=passed,
            nodeid=nodeid,
            display="no network attempt" if passed else "1 blocked attempt",
        )

    report = make_report([offline("a"), latency(), offline("b"), offline("c", passed=False)])

    table = rows(readiness_markdown(report))

    assert sum(1 for row in table if row.startswith("| offline (2 tests) |")) == 1
    assert sum(1 for row in table if row.startswith("| offline |")) == 1  # the failure
