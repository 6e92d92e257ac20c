"""CI outputs as their readers expect them: JUnit XML, report paths, width, report.html."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conftest import DeployProject

FIT_TEST = """
import pytest

@pytest.mark.device_fit(model="optimized")
def test_optimized_fits(deploy_device):
    pass
"""
MISSING = 'required_evidence = ["failure_cases.md"]'


def junit(path: Path) -> ET.Element:
    """The one <testsuite> of a pytest JUnit file."""
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None
    return suite


def suite_properties(suite: ET.Element) -> dict[str, str]:
    node = suite.find("properties")
    assert node is not None, "no suite-level <properties>"
    return {str(p.get("name")): str(p.get("value")) for p in node.iter("property")}


def cases(suite: ET.Element) -> dict[str, ET.Element]:
    return {f"{c.get('classname')}::{c.get('name')}": c for c in suite.iter("testcase")}


# --------------------------------------------------------------------------- JUnit XML


@pytest.mark.parametrize("xdist", [False, True], ids=["plain", "xdist"])
def test_a_failing_gate_is_a_junit_failure(
    pytester: pytest.Pytester, deploy_project: DeployProject, xdist: bool
) -> None:
    deploy_project.make(FIT_TEST, top=MISSING)
    args = ["--deploy-target", "edge-c", "--junitxml=junit.xml"] + (["-n", "2"] if xdist else [])
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    suite = junit(pytester.path / "junit.xml")

    properties = suite_properties(suite)
    assert properties["deploycheck.release_candidate"] == "False"
    assert any("failure_cases.md" in properties[k] for k in properties if ".reason." in k)
    assert properties["deploycheck.has_failure_cases.status"] == "FAIL"
    found = cases(suite)
    gate = found["deploycheck::has_failure_cases"].find("failure")
    assert gate is not None and "failure_cases.md" in str(gate.get("message"))
    verdict = found["deploycheck::release_candidate"].find("failure")
    assert verdict is not None and "failure_cases.md" in (verdict.text or "")
    assert int(str(suite.get("failures"))) == 2  # the gate and the verdict; the test passed
    # The terminal counts the tests alone.
    result.assert_outcomes(passed=3)


def test_a_passing_run_says_true_and_fails_nothing(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(FIT_TEST)
    pytester.runpytest("--deploy-target", "edge-c", "--junitxml=junit.xml").assert_outcomes(
        passed=3
    )
    suite = junit(pytester.path / "junit.xml")

    assert suite_properties(suite)["deploycheck.release_candidate"] == "True"
    assert suite.get("failures") == "0"
    verdict = cases(suite)["deploycheck::release_candidate"]
    assert verdict.find("failure") is None


def test_a_run_without_a_target_has_no_verdict_case(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(FIT_TEST)
    pytester.runpytest("--junitxml=junit.xml").assert_outcomes(passed=3)
    suite = junit(pytester.path / "junit.xml")

    assert "deploycheck::release_candidate" not in cases(suite)
    assert suite.get("failures") == "0"


# --------------------------------------------------------------------------- report paths


def test_report_copies_go_where_the_options_say(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(FIT_TEST)
    result = pytester.runpytest(
        "--deploy-target", "edge-c", "--deploy-json=ci/out/r.json", "--deploy-html=ci/r.html"
    )
    result.assert_outcomes(passed=3)
    evidence = deploy_project.evidence("edge-c")

    copied = json.loads((pytester.path / "ci" / "out" / "r.json").read_text())
    assert copied == json.loads((evidence / "report.json").read_text())
    assert copied["verdict"]["release_candidate"] is True
    page = (pytester.path / "ci" / "r.html").read_text()
    assert page == (evidence / "report.html").read_text()


def test_report_copies_from_env_and_config(
    pytester: pytest.Pytester, deploy_project: DeployProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    deploy_project.make(FIT_TEST, top='html_report = "pages/report.html"')
    monkeypatch.setenv("DEPLOYCHECK_JSON", str(pytester.path / "env.json"))
    pytester.runpytest("--deploy-target", "edge-c").assert_outcomes(passed=3)

    assert json.loads((pytester.path / "env.json").read_text())["target"] == "edge-c"
    assert "release_candidate" in (pytester.path / "pages" / "report.html").read_text()


@pytest.mark.parametrize("option", ["--deploy-json", "--deploy-html"])
def test_a_report_path_that_is_a_directory_is_a_usage_error(
    pytester: pytest.Pytester, deploy_project: DeployProject, option: str
) -> None:
    deploy_project.make(FIT_TEST)
    (pytester.path / "somedir").mkdir()
    result = pytester.runpytest("--deploy-target", "edge-c", f"{option}=somedir")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {option} somedir: is a directory; *somedir/report.*"])
    result.stderr.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


def test_a_report_copy_that_cannot_be_written_fails_the_verdict(
    pytester: pytest.Pytester, deploy_project: DeployProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    deploy_project.make(FIT_TEST)
    target = pytester.path / "ci" / "r.json"
    # Writable at start-up, a directory by the time the report is copied.
    pytester.makeconftest(
        f"def pytest_collection_finish(session):\n    import os; os.makedirs({str(target)!r})\n"
    )
    result = pytester.runpytest("--deploy-target", "edge-c", f"--deploy-json={target}")

    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    result.stdout.fnmatch_lines(
        ["release_candidate: False", f"  - evidence not written: {target}: *"]
    )
    report = deploy_project.report("edge-c")
    assert report["verdict"]["release_candidate"] is False


# --------------------------------------------------------------------------- terminal width

LONG_TEST = """
import pytest

@pytest.mark.device_fit(model="optimized")
def test_optimized_fits(deploy_device):
    pass
"""


def summary(output: str) -> list[str]:
    """The deploy readiness section's lines, up to pytest's final line."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if "deploy readiness" in line)
    return [line for line in lines[start + 1 :] if not line.startswith("=")]


@pytest.mark.parametrize("columns", [80, 200])
def test_the_summary_fits_the_terminal(
    pytester: pytest.Pytester,
    deploy_project: DeployProject,
    monkeypatch: pytest.MonkeyPatch,
    columns: int,
) -> None:
    long_name = "required_" + "x" * 150 + ".md"
    deploy_project.make(LONG_TEST, top=f'required_evidence = ["{long_name}"]')
    monkeypatch.setenv("COLUMNS", str(columns))
    result = pytester.runpytest("--deploy-target", "edge-c")
    lines = summary(result.stdout.str())

    too_wide = [
        line
        for line in lines
        if len(line) > columns and not line.startswith(("evidence_files: ", "evidence_dir: "))
    ]
    assert not too_wide
    assert "release_candidate: False" in lines
    # Every row still says its status; the figures are under it when they do not fit.
    assert any(line.startswith("device_fit[") and line.endswith("PASS") for line in lines)
    assert any(line.rstrip().endswith("FAIL") for line in lines)
    assert any(long_name in line for line in lines) is (columns == 200)


# --------------------------------------------------------------------------- report.html


class Page(HTMLParser):
    """What the tests read of report.html: headers, rows, links, scripts, svgs."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.headers: list[str] = []
        self.rows = 0
        self.links: list[str] = []
        self.tags: set[str] = set()
        self.banner = ""
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.tags.add(tag)
        if found.get("id"):
            self.ids.add(str(found["id"]))
        if tag == "a" and found.get("href"):
            self.links.append(str(found["href"]))
        if tag == "tr" and self.stack.count("table") == 1 and "tbody" in self.stack:
            self.rows += 1 if not self.headers_done else 0
        self.stack.append(tag)
        if tag == "section":
            self.in_banner = found.get("aria-label") == "verdict"

    headers_done = False
    in_banner = False

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.headers_done = True  # only the first table: the checks
        while self.stack and self.stack.pop() != tag:
            pass
        if tag == "section":
            self.in_banner = False

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1] == "th" and not self.headers_done:
            self.headers.append(data)
        if self.in_banner:
            self.banner += data


def parse(page: str) -> Page:
    parser = Page()
    parser.feed(page)
    return parser


def test_the_page_counts_its_rows_puts_status_early_and_links_the_evidence(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(FIT_TEST, top=MISSING)
    pytester.runpytest("--deploy-target", "edge-c")
    evidence = deploy_project.evidence("edge-c")
    page = parse((evidence / "report.html").read_text())

    assert page.headers[:2] == ["check", "status"]
    assert f"{page.rows} checks shown:" in page.banner
    assert "script" not in page.tags
    files = [link for link in page.links if not link.startswith("#")]
    assert files, "no evidence links"
    for link in files:
        assert link.startswith("./") and (evidence / link[2:]).is_file(), link
    assert "./report.json" in files and "./metrics.csv" in files
    assert not any(link.startswith(("http:", "https:", "//")) for link in page.links)


def test_a_soak_series_is_drawn_and_hostile_names_are_escaped() -> None:
    from pytest_deploycheck.report.html import render_html

    rows = [[t, "run", 100 + t, 10 * t, 0, 1.0 + t / 10, 2.0 + t / 10, 3.0, 50.0] for t in range(6)]
    name = "soak_<script>alert(1)</script>"
    report = {
        "target": "edge-c",
        "verdict": {"release_candidate": True, "reasons": [], "counts": {}},
        "checks": [{"name": name, "status": "PASS", "value": 1.0, "unit": "MB/h"}],
        "evidence_files": ["metrics.csv", "soak.csv"],
        "soak_series": [{"name": name, "file": "soak.csv", "rows": rows}],
    }
    text = render_html(report)
    page = parse(text)

    assert "script" not in page.tags
    assert "&lt;script&gt;" in text
    assert "soak-1" in page.ids and "svg" in page.tags and "polyline" in page.tags
    assert "#soak-1" in page.links and "./soak.csv" in page.links
    assert text.count("<polyline") == 4  # RSS and heap; p50 and p95


def test_a_report_path_under_a_file_is_a_usage_error(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(FIT_TEST)
    (pytester.path / "afile").write_text("")
    result = pytester.runpytest("--deploy-target", "edge-c", "--deploy-json=afile/r.json")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --deploy-json afile/r.json: *afile is not a directory; *"])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
