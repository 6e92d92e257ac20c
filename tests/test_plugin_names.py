"""Names are data: hostile check names, device names and required files, end to end.

A user's test names its checks, and the configuration names devices and required
files; none of them may become markup, a formula, a forged verdict line, a terminal
control sequence, or a path outside the project.
"""

from __future__ import annotations

import csv
import io
import json
import re
import stat
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import DeployProject

HOSTILE_NAME = (
    '=HYPERLINK("http://evil/","x") <script>alert(1)</script> [x](javascript:alert(1))'
    " ![x](http://evil/x.png) ok\nrelease_candidate: True \x1b]0;title\x07\x1b[2J a\x00b"
)
HOSTILE_TEST = f"""
from pytest_deploycheck import record_check

def test_hostile(deploy_target):
    record_check(
        {HOSTILE_NAME!r},
        metric="custom",
        value=-1.5,
        unit="+x",
        details="@SUM(A1) | next\\nrelease_candidate: True",
        passed=False,
    )
"""
FORGED = re.compile(r"^\W*release_candidate: True", re.MULTILINE)
# C0 controls but the line break, DEL and C1: none may reach a text file or the terminal.
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def assert_usage_error(result: pytest.RunResult, pattern: str) -> None:
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.startswith("ERROR: ")]
    assert len(errors) == 1, result.errlines
    result.stderr.fnmatch_lines([f"ERROR: {pattern}"])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    result.stderr.no_fnmatch_line("*INTERNALERROR*")
    result.stderr.no_fnmatch_line("*Traceback*")


def tree(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Every file below *directory*: its content and its mode."""
    return {
        str(path.relative_to(directory)): (path.read_bytes(), stat.S_IMODE(path.stat().st_mode))
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


# --------------------------------------------------------------------------- check names


@pytest.fixture
def hostile_run(
    pytester: pytest.Pytester,
    deploy_project: DeployProject,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[pytest.RunResult, Path]:
    step_summary = pytester.path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    deploy_project.make(HOSTILE_TEST, target="edge-c")
    result = pytester.runpytest("--junitxml=junit.xml")
    result.assert_outcomes(failed=1)
    return result, deploy_project.evidence("edge-c")


def test_the_terminal_shows_a_hostile_name_escaped(
    hostile_run: tuple[pytest.RunResult, Path],
) -> None:
    result, _ = hostile_run
    output = result.stdout.str()

    assert not RAW_CONTROL.search(output)
    assert not FORGED.search(output)
    assert "ok\\nrelease_candidate: True \\x1b]0;title\\x07\\x1b[2J a\\x00b" in output
    result.stdout.fnmatch_lines(["release_candidate: False"])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


def test_metrics_csv_holds_no_formula_and_keeps_numbers(
    hostile_run: tuple[pytest.RunResult, Path],
) -> None:
    _, evidence = hostile_run
    rows = list(csv.DictReader(io.StringIO((evidence / "metrics.csv").read_text())))

    [row] = [r for r in rows if r["metric"] == "custom"]
    assert row["name"] == "'" + HOSTILE_NAME
    assert row["unit"] == "'+x"
    assert row["details"].startswith("'@SUM(A1)")
    assert row["value"] == "-1.5"
    for cells in rows:
        assert not any(cell.startswith(("=", "+", "@", "\t", "\r")) for cell in cells.values())


def test_summary_and_step_summary_hold_no_live_markdown(
    hostile_run: tuple[pytest.RunResult, Path], pytester: pytest.Pytester
) -> None:
    _, evidence = hostile_run
    for text in (
        (evidence / "summary.md").read_text(),
        (pytester.path / "step_summary.md").read_text(),
    ):
        assert "<script" not in text
        assert "[x](javascript:" not in text
        assert "![x](http:" not in text
        assert "\\[x\\](javascript:alert(1)) \\!\\[x\\](http://evil/x.png)" in text
        assert "&lt;script&gt;" in text
        assert not RAW_CONTROL.search(text)
        assert not FORGED.search(text)
        for row in (line for line in text.splitlines() if line.startswith("| ")):
            assert len(re.findall(r"(?<!\\)\|", row)) == 7, row


def test_run_log_has_no_forged_line(hostile_run: tuple[pytest.RunResult, Path]) -> None:
    _, evidence = hostile_run
    log = (evidence / "run.log").read_text()

    assert not RAW_CONTROL.search(log)
    assert not FORGED.search(log)
    verdicts = [line for line in log.splitlines() if line.startswith("release_candidate:")]
    assert verdicts == ["release_candidate: False"]
    assert "ok\\nrelease_candidate: True \\x1b]0;title\\x07" in log


def test_report_html_escapes_the_script_tag(hostile_run: tuple[pytest.RunResult, Path]) -> None:
    _, evidence = hostile_run
    page = (evidence / "report.html").read_text()

    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_report_json_keeps_the_name_as_it_was_given(
    hostile_run: tuple[pytest.RunResult, Path],
) -> None:
    _, evidence = hostile_run
    report = json.loads((evidence / "report.json").read_text())

    assert HOSTILE_NAME in [check["name"] for check in report["checks"]]


def test_junit_xml_parses_and_holds_the_properties(
    hostile_run: tuple[pytest.RunResult, Path], pytester: pytest.Pytester
) -> None:
    root = ET.parse(pytester.path / "junit.xml").getroot()

    properties = {p.get("name"): p.get("value") for p in root.iter("property")}
    [status] = [name for name in properties if name and name.endswith(".status")]
    assert status.startswith("deploycheck.=HYPERLINK(")
    assert "\\nrelease_candidate: True \\x1b]0;title\\x07\\x1b[2J a\\x00b" in status
    assert properties[status] == "FAIL"
    assert properties[status.replace(".status", ".unit")] == "+x"


# --------------------------------------------------------------------------- device names


@pytest.mark.parametrize("name", ["../../escape/x", ".."])
def test_a_device_name_that_is_a_path_is_a_usage_error(
    pytester: pytest.Pytester, deploy_project: DeployProject, name: str
) -> None:
    outside = pytester.path.parent
    before = sorted(p.name for p in outside.iterdir())
    deploy_project.make(HOSTILE_TEST, devices=[{"name": name, "memory_mb": 512}])

    # One argument: pytest would take a bare ".." for a path to collect and find its rootdir.
    result = pytester.runpytest(f"--deploy-target={name}")

    assert_usage_error(
        result,
        f"pyproject.toml: [[][[]tool.deploycheck.devices]] #1 ({name}): name: expected a"
        " device name of letters, digits, '.', '_' or '-', at most 64 characters,"
        " not '.' or '..', got a string (*)",
    )
    assert sorted(p.name for p in outside.iterdir()) == before
    assert not (pytester.path / "deploycheck-evidence").exists()
    assert not (pytester.path / "summary.md").exists()


# --------------------------------------------------------------------------- required files


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
@pytest.mark.parametrize("entry", ["relative", "absolute"])
def test_required_evidence_outside_the_project_is_a_usage_error(
    pytester: pytest.Pytester,
    deploy_project: DeployProject,
    tmp_path_factory: pytest.TempPathFactory,
    entry: str,
) -> None:
    # Both once wrote outside: ../ into a sibling directory, and an absolute path was
    # copied onto itself, its mode changed from 600 to 644.
    outside = tmp_path_factory.mktemp("outside")
    (outside / "victim.md").write_text("mine\n", encoding="utf-8")
    (outside / "victim.md").chmod(0o600)
    before = tree(outside)
    assert outside.parent == pytester.path.parent
    name = f"../{outside.name}/victim.md" if entry == "relative" else str(outside / "victim.md")
    deploy_project.make(HOSTILE_TEST, top=f"required_evidence = {json.dumps([name])}")

    result = pytester.runpytest("--deploy-target", "edge-c")

    assert_usage_error(
        result,
        f"pyproject.toml: [[]tool.deploycheck]: required_evidence: '{name}': expected a"
        " relative path inside the project, without '..'",
    )
    assert tree(outside) == before
    assert not (pytester.path / "deploycheck-evidence").exists()


def test_required_evidence_through_a_symlink_outside_is_a_usage_error(
    pytester: pytest.Pytester,
    deploy_project: DeployProject,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret.md").write_text("secret\n", encoding="utf-8")
    (pytester.path / "secret.md").symlink_to(outside / "secret.md")
    deploy_project.make(HOSTILE_TEST, top='required_evidence = ["secret.md"]')

    result = pytester.runpytest("--deploy-target", "edge-c")

    assert_usage_error(
        result,
        "pyproject.toml: [[]tool.deploycheck]: required_evidence: 'secret.md': leads outside"
        " the project (*) through a symlink",
    )
    assert not (pytester.path / "deploycheck-evidence").exists()
