"""The bad-input corpus: each class of bad input ends in its own outcome, never a crash.

A person who gets something wrong sees one line naming the file, option, marker or
call and what would be valid (README, Errors):

* a bad configuration file or option: pytest stops with a usage error, one line;
* a bad marker argument: that test errors at setup, one line per problem;
* a bad call from a test (feeds, assert_accuracy_drop, record_check, strategies): the
  test fails on the user's own line with the one-line error, no plugin frame shown;
* a bad file met at the end of the run (a baseline) or a report that cannot be
  written: the verdict is printed, False, and the evidence that was written parses.

Never an INTERNALERROR, and never a traceback of the plugin, in any of them.  Each
case runs a real, in-process pytest session on a project built for it.
"""

from __future__ import annotations

import csv
import errno
import json
import math
import re
import tempfile
from collections.abc import Callable
from datetime import date, time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pytest_deploycheck
from pytest_deploycheck.config.regression import TOLERANCE_RULES
from pytest_deploycheck.config.schema import VALID_KEYS, ConfigError, load_config, parse_config
from pytest_deploycheck.report import html, writer

if TYPE_CHECKING:
    from conftest import DeployProject

MODELS = Path(__file__).resolve().parent / "models"
PLUGIN_DIR = str(Path(pytest_deploycheck.__file__).resolve().parent)
# A budget far from a no-op's latency settles in a few hundred calls; the limit is a cap.
QUICK = "max_time_s=10"


def assert_no_crash(result: pytest.RunResult) -> None:
    """No INTERNALERROR, no Python traceback and no frame of the plugin's own code."""
    for lines in (result.stdout, result.stderr):
        lines.no_fnmatch_line("*INTERNALERROR*")
        lines.no_fnmatch_line("*Traceback*")
        lines.no_fnmatch_line("*During handling of the above exception*")
    frames = [line for line in result.outlines + result.errlines if PLUGIN_DIR in line]
    assert not frames, f"plugin frames shown: {frames}"


def assert_usage_error(result: pytest.RunResult, message: str) -> None:
    """pytest stopped at start-up with exactly one ``ERROR:`` line, matching *message*."""
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.startswith("ERROR:")]
    assert len(errors) == 1, errors
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
    assert_no_crash(result)


def assert_evidence_parses(evidence: Path) -> dict[str, Any]:
    """report.json is strict JSON (no NaN, no Infinity) and metrics.csv is CSV."""

    def refuse(constant: str) -> Any:
        raise AssertionError(f"report.json holds {constant}, which JSON does not allow")

    report: dict[str, Any] = json.loads(
        (evidence / "report.json").read_text(encoding="utf-8"), parse_constant=refuse
    )
    with (evidence / "metrics.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows and rows[0], "metrics.csv has no header"
    return report


# --------------------------------------------------------------------------- config files

NUMBER_DEVICE = '[[tool.deploycheck.devices]]\nname = "edge-c"\n'
LONG_DIGITS = "1" + "0" * 400

CONFIG_CASES = [
    pytest.param(
        {"bin.toml": b"\x00\xff\xfe\x00 not text"},
        ["--deploy-config", "bin.toml"],
        "*bin.toml: not UTF-8 text: byte 0xff at offset 1 (line 1, column 2);"
        " save the file as UTF-8",
        id="binary-file",
    ),
    pytest.param(
        {"deploycheck.toml": 'target = "café"\n'.encode("latin-1")},
        [],
        "*deploycheck.toml: not UTF-8 text: byte 0xe9 at offset 13 (line 1, column 14)*",
        id="latin-1-byte",
    ),
    pytest.param(
        {"pyproject.toml": b"[tool]\ndeploycheck = 5\n"},
        [],
        "pyproject.toml: [[]tool.deploycheck[]]: expected a table, got a whole number (5)",
        id="table-is-a-number",
    ),
    pytest.param(
        {"pyproject.toml": b'tool.deploycheck = "edge-c"\n'},
        [],
        "pyproject.toml: [[]tool.deploycheck[]]: expected a table, got a string ('edge-c')",
        id="table-is-a-string",
    ),
    pytest.param(
        {"pyproject.toml": f"[tool.deploycheck.budgets]\nlatency_ms = {LONG_DIGITS}\n".encode()},
        [],
        "*budgets[]]: latency_ms: expected a finite number, got a whole number (*digits)",
        id="integer-too-large-for-a-float",
    ),
    pytest.param(
        {"deploycheck.toml": ("x = 1" + "0" * 5000 + "\n").encode()},
        [],
        "*deploycheck.toml: invalid TOML: Exceeds the limit (4300 digits)*",
        id="integer-of-5000-digits",
    ),
    pytest.param(
        {"pyproject.toml": f"{NUMBER_DEVICE}latency_factor = 1e308\n".encode()},
        [],
        "*(edge-c): latency_factor: expected a number from 1e-12 to 1e12, got 1e+308",
        id="latency-factor-1e308",
    ),
    pytest.param(
        {"pyproject.toml": f"{NUMBER_DEVICE}latency_factor = 1e-13\n".encode()},
        [],
        "*(edge-c): latency_factor: expected a number from 1e-12 to 1e12, got 1e-13",
        id="latency-factor-1e-13",
    ),
    pytest.param(
        {"pyproject.toml": f"{NUMBER_DEVICE}cpus = 100000000000000000000\n".encode()},
        [],
        "*(edge-c): cpus: expected a whole number *, got a whole number (100000000000000000000)",
        id="cpus-1e20",
    ),
    pytest.param(
        {"pyproject.toml": b"[tool.deploycheck.budgets]\nmemory_mb = nan\n"},
        [],
        "*budgets[]]: memory_mb: expected a finite number, got nan",
        id="nan",
    ),
    pytest.param(
        {"pyproject.toml": b'[tool.deploycheck.budgets]\nlatency_ms = "nan"\n'},
        [],
        "*budgets[]]: latency_ms: expected a number, got a string ('nan')",
        id="nan-string",
    ),
    pytest.param(
        {"pyproject.toml": b"[tool.deploycheck.budgets]\ncold_start_ms = -inf\n"},
        [],
        "*budgets[]]: cold_start_ms: expected a finite number, got -inf",
        id="minus-infinity",
    ),
    pytest.param(
        {"deploycheck.toml": ("x = " + "[" * 100_000 + "]" * 100_000 + "\n").encode()},
        [],
        "*deploycheck.toml: invalid TOML: *",
        id="nested-100000-deep",
    ),
    pytest.param(
        {"conf/deploycheck.toml": b""},
        ["--deploy-config", "conf"],
        "--deploy-config conf: is a directory; give the pyproject.toml or deploycheck.toml"
        " file in it*",
        id="directory-as-config",
    ),
    pytest.param(
        {},
        ["--deploy-config", "nowhere.toml"],
        "--deploy-config nowhere.toml: file not found*",
        id="missing-config",
    ),
]


@pytest.mark.parametrize(("files", "args", "message"), CONFIG_CASES)
def test_a_bad_config_file_is_one_usage_error_line(
    pytester: pytest.Pytester, files: dict[str, bytes], args: list[str], message: str
) -> None:
    for relative, content in files.items():
        path = pytester.path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    pytester.makepyfile("def test_nothing(): pass\n")

    assert_usage_error(pytester.runpytest(*args), message)


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--deploy-soak-minutes", "nan"], "--deploy-soak-minutes 'nan': expected a number*"),
        (["--deploy-soak-minutes", "1e400"], "--deploy-soak-minutes '1e400': expected a number*"),
        (["--deploy-soak-minutes", "-1"], "--deploy-soak-minutes '-1': expected a number*"),
        (["--deploy-target", ""], "--deploy-target: unknown device ''*"),
        (["--deploy-target", "edge-a,edge-b"], "--deploy-target 'edge-a,edge-b': one target*"),
        (["--deploy-target", "edge-z"], "--deploy-target: unknown device 'edge-z'*"),
        (["--deploy-baseline", "."], "--deploy-baseline .: is a directory, not a baseline file"),
        (["--deploy-baseline", "none.json"], "--deploy-baseline none.json: file not found*"),
    ],
)
def test_a_bad_option_is_one_usage_error_line(
    deploy_project: DeployProject, args: list[str], message: str
) -> None:
    deploy_project.make("def test_nothing(): pass\n")

    assert_usage_error(deploy_project.pytester.runpytest(*args), message)


# --------------------------------------------------------------------------- markers


@pytest.mark.parametrize(
    ("source", "problems"),
    [
        pytest.param(
            "@latency_under(80)\n@latency_under(20)",
            ["*::test_marked: @latency_under given twice on the same test; give one"],
            id="stacked-twice",
        ),
        pytest.param(
            "@latency_under(80, min_samples=500, max_samples=100)",
            ["*: @latency_under min_samples: 500 is more than max_samples (100);*"],
            id="min-over-max-samples",
        ),
        pytest.param(
            "@latency_under(10**400)",
            ["*: @latency_under ms: expected a number from 1e-12 to 1e12, got a whole number*"],
            id="budget-10**400",
        ),
        pytest.param(
            "@latency_under(1e-13)",
            ["*: @latency_under ms: expected a number from 1e-12 to 1e12, got 1e-13"],
            id="budget-1e-13",
        ),
        pytest.param(
            "@latency_under(float('nan'))",
            ["*: @latency_under ms: expected a finite number > 0, got nan"],
            id="budget-nan",
        ),
        pytest.param(
            "@latency_under('fast', percentile=200, confidence=2, warmup=-1)",
            [
                "*: @latency_under ms: cannot read 'fast'*",
                "*: @latency_under percentile: expected a percentile between 0 and 100, got 200",
                "*: @latency_under confidence: expected a confidence in*, got 2",
                "*: @latency_under warmup: expected a whole number >= 0, got -1",
            ],
            id="every-bad-argument-reported",
        ),
        pytest.param(
            "@memory_under('1e400MB')",
            ["*: @memory_under mb: expected a finite number > 0, got '1e400MB'"],
            id="size-1e400",
        ),
        pytest.param(
            "@throughput_over(100, batch=[10**20])",
            ["*: @throughput_over batch: expected a whole number from 1 to 1e12, got 1*"],
            id="batch-1e20",
        ),
        pytest.param(
            "@soak(10**400)",
            ["*: @soak minutes: expected a number from 1e-12 to 1e12, got a whole number*"],
            id="soak-10**400",
        ),
        pytest.param(
            "@pytest.mark.offline(allow_loopback='yes')",
            ["*: @pytest.mark.offline: allow_loopback: expected True, False or a list*"],
            id="offline-not-a-flag",
        ),
    ],
)
def test_a_bad_marker_errors_its_test_in_one_line_per_problem(
    deploy_project: DeployProject, source: str, problems: list[str]
) -> None:
    tests = (
        "import pytest\n"
        "from pytest_deploycheck import latency_under, memory_under, throughput_over, soak\n"
        f"{source}\ndef test_marked():\n    pass\n"
    )
    project = deploy_project.replace(target="edge-c")
    project.make(tests)
    result = project.pytester.runpytest()

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(problems, consecutive=True)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert_no_crash(result)
    assert_evidence_parses(project.evidence())


# --------------------------------------------------------------------------- calls from a test

CALL_HEADER = """\
import numpy as np
from pytest_deploycheck import assert_accuracy_drop
from pytest_deploycheck.checks.record import record_check
from pytest_deploycheck.strategies import feeds, perturbed

X = np.zeros((4, 4), np.float32)
Y = np.zeros(4, np.int64)

"""


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("deploy_model.run([1, 2])", "*feeds must be a dict of input name -> numpy array*"),
        ("deploy_model.run({'nope': X})", "*model 'optimized': unknown input 'nope'*"),
        ("deploy_model.run({'x': 'abc'})", "*input 'x': expected a numpy array of float32*"),
        (
            "deploy_model.run({'x': np.zeros((1, 5), np.float32)})",
            "*model 'optimized', input 'x': expected float32 [[]batch, 4[]]*",
        ),
        (
            "assert_accuracy_drop('baseline', deploy_model, (X, Y), max_drop=0.1)",
            "E * baseline must be a model (e.g. deploy_models[[]'baseline'[]]) *,"
            " got str 'baseline'",
        ),
        (
            "assert_accuracy_drop(deploy_model, deploy_model, [1, 2, 3], max_drop=0.1)",
            "E * data item 0 is *",
        ),
        (
            "assert_accuracy_drop(deploy_model, deploy_model, (X, Y), max_drop=float('nan'))",
            "E * max_drop must be a finite number >= 0, got nan",
        ),
        (
            "assert_accuracy_drop(deploy_model, deploy_model, (X, Y), 0.1, relative='yes')",
            "E * relative must be True or False, got 'yes'",
        ),
        (
            "assert_accuracy_drop(deploy_model, deploy_model, (X, Y), 0.1, batch_size=0)",
            "E * batch_size must be an integer >= 1, got 0",
        ),
        ("record_check(5, metric='m', value=1, passed=True)", "E * a check needs a name*"),
        ("feeds('optimized')", "E * feeds: expected a loaded model *, got str 'optimized'"),
        ("feeds(deploy_model, batch=0)", "E * model 'optimized': batch must be a whole number*"),
        (
            "perturbed(feeds(deploy_model), scale=float('inf'))",
            "E * perturbed: scale must be a number >= 0 and finite, got inf",
        ),
    ],
)
def test_a_bad_call_fails_on_the_users_line_with_one_error(
    deploy_project: DeployProject, call: str, message: str
) -> None:
    project = deploy_project.replace(
        target="edge-c",
        models={"optimized": {"path": "models/tiny.onnx"}},
        files={"models/tiny.onnx": MODELS / "tiny_linear.onnx"},
    )
    project.make(f"{CALL_HEADER}def test_call(deploy_model):\n    {call}\n")
    result = project.pytester.runpytest()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([message])
    assert_no_crash(result)
    assert_evidence_parses(project.evidence())


# --------------------------------------------------------------------------- the end of a run

BASELINE_HEAD = '{"schema": "pytest-deploycheck/baseline", "version": 1, "created": "x",'


@pytest.mark.parametrize(
    ("content", "details"),
    [
        pytest.param(
            (
                f'{BASELINE_HEAD} "target": "edge-c", "environment": {{}}, "checks": [{{"key": "k",'
                f' "name": "n", "nodeid": "", "metric": "latency", "unit": "ms",'
                f' "value": {LONG_DIGITS}}}]}}'
            ).encode(),
            "*'value' must be a finite number, got a number (about 401 digits)",
            id="value-10**400",
        ),
        pytest.param(
            b"[" * 100_000 + b"]" * 100_000,
            "*: not a baseline: arrays or objects nested too deeply",
            id="nested-100000-deep",
        ),
        pytest.param(b'{"a": "\xff"}', "*: not UTF-8 text (byte 7)", id="latin-1-byte"),
        pytest.param(
            b'{"value": NaN}', "*: not valid JSON: NaN is not a number JSON allows", id="nan"
        ),
    ],
)
def test_a_bad_baseline_fails_the_verdict_and_the_evidence_still_parses(
    deploy_project: DeployProject, content: bytes, details: str
) -> None:
    project = deploy_project.replace(target="edge-c")
    (project.path / "baseline.json").write_bytes(content)
    project.make("def test_nothing(deploy_target):\n    pass\n")
    result = project.pytester.runpytest("--deploy-baseline", "baseline.json")

    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["release_candidate: False", f"  - baseline: unreadable*{details}"])
    assert_no_crash(result)
    report = assert_evidence_parses(project.evidence())
    assert report["verdict"]["release_candidate"] is False


def broken_renderer(report: object) -> str:
    raise ValueError("math domain error")


def full_disk(original: Callable[..., None], name: str) -> Callable[..., None]:
    def write(path: Path, text: str) -> None:
        if Path(path).name == name:
            raise OSError(errno.ENOSPC, "No space left on device")
        original(path, text)

    return write


@pytest.mark.parametrize(
    ("break_it", "lost", "note"),
    [
        pytest.param(
            lambda monkeypatch: monkeypatch.setattr(html, "render_html", broken_renderer),
            "report.html",
            "report.html: ValueError: math domain error",
            id="a-renderer-fails",
        ),
        pytest.param(
            lambda monkeypatch: monkeypatch.setattr(
                writer, "atomic_write_text", full_disk(writer.atomic_write_text, "summary.md")
            ),
            "summary.md",
            "summary.md: No space left on device",
            id="the-disk-is-full",
        ),
    ],
)
def test_a_file_that_cannot_be_written_leaves_the_others_and_fails_the_verdict(
    deploy_project: DeployProject,
    monkeypatch: pytest.MonkeyPatch,
    break_it: Callable[[pytest.MonkeyPatch], None],
    lost: str,
    note: str,
) -> None:
    project = deploy_project.replace(target="edge-c")
    project.make(
        "from pytest_deploycheck.checks.record import record_check\n"
        "def test_checked(deploy_target):\n"
        "    record_check('checked', metric='custom', value=1, passed=True)\n"
    )
    break_it(monkeypatch)
    result = project.pytester.runpytest()

    # The check passed; the run is still no release candidate: its evidence is not whole.
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "release_candidate: False",
            f"  - evidence not written: *{note}",
            f"evidence not written: *{note}",
        ]
    )
    assert_no_crash(result)
    evidence = project.evidence()
    report = assert_evidence_parses(evidence)
    assert report["verdict"]["release_candidate"] is False
    assert any(lost in reason for reason in report["verdict"]["reasons"])
    written = {"metrics.csv", "report.json", "summary.md", "report.html", "run.log"} - {lost}
    assert written <= {path.name for path in evidence.iterdir()}
    (files,) = [line for line in result.outlines if line.startswith("evidence_files: ")]
    assert lost not in files  # what is there of it is the start marker's, not this run's
    assert "release_candidate: False" in (evidence / "run.log").read_text(encoding="utf-8")


def test_figures_at_the_ends_of_the_range_still_draw_the_report(
    deploy_project: DeployProject,
) -> None:
    # 1e-12 ms over a latency factor of 1e12 is a host budget of 1e-24 ms: the chart's
    # log scale once took log10 of a tick rounded to 0 and lost the report at the end.
    device = {"name": "edge-c", "cpus": 1, "latency_factor": 1e12}
    tests = (
        "from pytest_deploycheck import latency_under\n"
        f"@latency_under(1e-12, {QUICK})\ndef test_tiny():\n    pass\n"
        f"@latency_under(1e12, {QUICK})\ndef test_huge():\n    pass\n"
    )
    project = deploy_project.replace(target="edge-c", devices=(device,))
    project.make(tests)
    result = project.pytester.runpytest()

    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["release_candidate: False", "evidence_files: *report.html*"])
    assert_no_crash(result)
    evidence = project.evidence()
    assert_evidence_parses(evidence)
    page = (evidence / "report.html").read_text(encoding="utf-8")
    assert page.count("<svg") == 2
    coordinates = re.findall(r'\b(?:x|y|x1|x2|y1|y2|cx|cy)="([^"]*)"', page)
    assert coordinates and all(math.isfinite(float(c)) for c in coordinates)


# --------------------------------------------------------------------------- fuzzing the schema

texts = st.text(max_size=16) | st.sampled_from(["nan", "inf", "~", "~nobody/x", "a" * 5000])
numbers = (
    st.integers()
    | st.integers(min_value=10**300, max_value=10**400)
    | st.floats()
    | st.sampled_from([1e308, 1e-13, 5e-324, -0.0, math.nan, math.inf, 2**63])
)
leaves = st.none() | st.booleans() | numbers | texts | st.datetimes() | st.dates() | st.times()
values = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)


def keys_of(schema: str) -> st.SearchStrategy[str]:
    return st.sampled_from(list(VALID_KEYS[schema])) | st.text(max_size=10)


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    """Every table of the schema at once, each key valid or not, each value anything TOML has."""
    raw = draw(st.dictionaries(keys_of("top"), values, max_size=3))
    raw["budgets"] = draw(st.dictionaries(keys_of("budgets"), values, max_size=3) | values)
    raw["devices"] = draw(
        st.lists(st.dictionaries(keys_of("devices"), values, max_size=4), max_size=2) | values
    )
    raw["models"] = draw(
        st.dictionaries(st.text(max_size=8), st.dictionaries(keys_of("models"), values), max_size=2)
        | values
    )
    tolerances = st.dictionaries(st.sampled_from(list(TOLERANCE_RULES)) | st.text(), values)
    regression = draw(st.dictionaries(keys_of("regression"), values, max_size=3))
    regression["checks"] = draw(st.dictionaries(st.text(max_size=8), tolerances) | values)
    raw["regression"] = regression
    return raw


FUZZ_SOURCE = Path(tempfile.gettempdir()) / "deploycheck-corpus-fuzz" / "pyproject.toml"


@settings(max_examples=200, deadline=None)
@given(raw=configs())
def test_any_configuration_parses_or_raises_only_a_config_error(raw: dict[str, Any]) -> None:
    try:
        parse_config(raw, source=FUZZ_SOURCE)
    except ConfigError as exc:
        assert all(isinstance(line, str) and "\n" not in line for line in exc.args)


@settings(max_examples=100, deadline=None)
@given(content=st.binary(max_size=64) | st.text(max_size=64).map(str.encode))
def test_any_bytes_as_a_config_file_load_or_raise_only_a_config_error(
    tmp_path_factory: pytest.TempPathFactory, content: bytes
) -> None:
    path = tmp_path_factory.mktemp("bytes") / "deploycheck.toml"
    path.write_bytes(content)
    try:
        load_config(path)
    except ConfigError as exc:
        assert len(exc.args) >= 1 and all("\n" not in line for line in exc.args)


def test_dates_and_times_are_worded_not_crashed_on() -> None:
    # TOML has dates and times; the schema must word them, not crash on them.
    with pytest.raises(ConfigError, match=r"target: expected a string, got date"):
        parse_config({"target": date(2024, 1, 1)})
    with pytest.raises(ConfigError, match=r"memory_mb: expected a number, got time"):
        parse_config({"budgets": {"memory_mb": time(1, 2)}})
