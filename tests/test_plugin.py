"""The plugin as users run it: pytester runs of real pytest sessions."""

from __future__ import annotations

import csv
import subprocess
import sys
import textwrap
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


def assert_usage_error(result: pytest.RunResult, *patterns: str) -> None:
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {p}" for p in patterns])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    result.stderr.no_fnmatch_line("*INTERNALERROR*")
    result.stderr.no_fnmatch_line("*Traceback*")


# --------------------------------------------------------------------------- registration


def test_help_shows_one_deploycheck_group(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "deployment acceptance checks (pytest-deploycheck):",
            "*--deploy-target=NAME*",
            "*--deploy-config=PATH*",
            "*--deploy-evidence-dir=DIR*",
            "*--deploy-no-summary*",
        ]
    )
    result.stdout.fnmatch_lines(["*deploy_config (string):*"])


def test_markers_lists_device_fit_with_its_signature(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(
        ["@pytest.mark.device_fit(model=None, *, all_devices=False): run the test once per*"]
    )


def test_plugin_can_be_disabled(pytester: pytest.Pytester, deploy_project: DeployProject) -> None:
    deploy_project.make(FIT_TEST)
    result = pytester.runpytest("-p", "no:deploycheck", "--deploy-target", "edge-c")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unrecognized arguments: --deploy-target*"])


def test_unconfigured_project_is_left_alone(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain(): assert True")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*deploy readiness*")
    assert not (pytester.path / "deploycheck-evidence").exists()


# --------------------------------------------------------------------------- device fit


def test_device_fit_parametrizes_over_the_devices_table(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(FIT_TEST)
    result = pytester.runpytest("-v", "--deploy-target", "edge-c")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "*test_optimized_fits[[]edge-a[]] PASSED*",
            "*test_optimized_fits[[]edge-b[]] PASSED*",
            "*test_optimized_fits[[]edge-c[]] PASSED*",
        ]
    )


def test_reference_fit_table_and_cheapest_device(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(FIT_TEST)
    result = pytester.runpytest("--deploy-target", "edge-c")
    result.stdout.fnmatch_lines(
        [
            "*= deploy readiness: edge-c =*",
            "device_fit[[]optimized@edge-c[]]*FIT*declared*PASS",
            "device fit: edge-a CHECK memory,power · edge-b CHECK offline · edge-c FIT",
            "  for optimized: 700 MB (declared), 10 W (declared), offline",
            "  cheapest device that fits: edge-c (120 USD)",
            "release_candidate: True",
            "evidence_files: ['metrics.csv', 'report.json', 'summary.md', 'report.html',"
            " 'run.log']",
        ]
    )


def test_misfit_on_the_target_fails_with_every_reason(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(FIT_TEST)
    result = pytester.runpytest("--deploy-target", "edge-a")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*device_fit[[]optimized@edge-a[]]: CHECK memory,power - memory: needs 700 MB,"
            " edge-a has 512; power: needs 10 W, edge-a has 8",
            "release_candidate: False",
            "  - device_fit[[]optimized@edge-a[]]: CHECK memory,power*",
        ]
    )


def test_misfits_off_target_are_reported_not_failed(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(FIT_TEST)
    result = pytester.runpytest("--deploy-target", "edge-c")
    result.assert_outcomes(passed=3)
    result.stdout.no_fnmatch_line("device_fit[[]optimized@edge-a[]]*")


def test_all_devices_marker_option_fails_every_misfit(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    tests = FIT_TEST.replace('model="optimized"', 'model="optimized", all_devices=True')
    deploy_project.make(tests)
    result = pytester.runpytest("--deploy-target", "edge-c")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        ["*@edge-b[]]: CHECK offline - offline: required, edge-b is online-only"]
    )


def test_all_devices_config_key_fails_every_misfit(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(FIT_TEST, top="all_devices_must_fit = true")
    result = pytester.runpytest("--deploy-target", "edge-c")
    result.assert_outcomes(passed=1, failed=2)


def test_models_running_together_are_summed(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    tests = """
import pytest

@pytest.mark.device_fit(model=["baseline", "optimized"])
def test_pair(deploy_device):
    pass
"""
    deploy_project.make(tests)
    result = pytester.runpytest("--deploy-target", "edge-c")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "device fit: edge-a CHECK memory,power · edge-b CHECK power,offline · edge-c FIT",
            "  for baseline + optimized: 1520 MB (declared), 22 W (declared), offline",
        ]
    )


def test_device_fit_defaults_to_the_default_model(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    tests = "import pytest\n\n@pytest.mark.device_fit\ndef test_fit(deploy_device): pass\n"
    deploy_project.make(tests, top='default_model = "baseline"')
    result = pytester.runpytest("--deploy-target", "edge-c")
    result.stdout.fnmatch_lines(["  for baseline: 820 MB (declared)*"])


def test_the_test_body_still_runs_and_can_fail(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    tests = FIT_TEST.replace("pass", "assert deploy_device.cpus >= 2, 'needs two cores'")
    deploy_project.make(tests)
    result = pytester.runpytest("--deploy-target", "edge-c")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*needs two cores*"])


# --------------------------------------------------------------------------- marker errors


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        (
            'device_fit(model="optimised")',
            "*unknown model 'optimised' (did you mean 'optimized'?)*optimized, baseline*",
        ),
        ('device_fit(model="optimized", devices=2)', "*unknown argument 'devices'*"),
        ('device_fit(all_devices="yes")', "*all_devices must be True or False, got 'yes'*"),
        ("device_fit(model=3)", "*model must be a model name or a list of names, got 3*"),
    ],
)
def test_bad_marker_arguments_fail_collection_in_one_line(
    pytester: pytest.Pytester, deploy_project: DeployProject, marker: str, message: str
) -> None:
    tests = f"import pytest\n\n@pytest.mark.{marker}\ndef test_fit(deploy_device): pass\n"
    deploy_project.make(tests)
    result = pytester.runpytest("--deploy-target", "edge-c")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*test_deploy.py::test_fit: @pytest.mark.device_fit: " + message])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    result.stdout.no_fnmatch_line("*Traceback*")


def test_device_fit_needs_the_deploy_device_argument(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    tests = "import pytest\n\n@pytest.mark.device_fit\ndef test_fit(): pass\n"
    deploy_project.make(tests)
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*needs the test to take the deploy_device argument*"])


def test_device_fit_without_configuration_is_a_clear_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(FIT_TEST)
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*device_fit needs a deploycheck configuration*"])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


BAD_AND_GOOD_MARKERS = """
import pytest

@pytest.mark.device_fit(model="optimised")
def test_bad_fit(deploy_device): pass

@pytest.mark.latency_under(-1)
@pytest.mark.offline(strict="no")
def test_two_bad_markers(): pass

@pytest.mark.device_fit(model="optimized")
def test_good_fit(deploy_device): pass

def test_plain(): pass
"""


def test_every_bad_marker_of_a_module_fails_its_own_test(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(BAD_AND_GOOD_MARKERS)
    result = pytester.runpytest("--deploy-target", "edge-c")
    # The good tests of the module still run: test_good_fit once per device, test_plain.
    result.assert_outcomes(passed=4, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_bad_fit*",
            "test_deploy.py::test_bad_fit: @pytest.mark.device_fit: unknown model 'optimised'*",
        ]
    )
    bad = "test_deploy.py::test_two_bad_markers"
    result.stdout.fnmatch_lines([f"{bad}: @latency_under ms: expected a finite number > 0, got -1"])
    result.stdout.fnmatch_lines(
        [f"{bad}: @pytest.mark.offline: strict: expected True or False, got 'no'"]
    )
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    result.stdout.no_fnmatch_line("*Traceback*")


def test_collect_only_reports_a_bad_marker_as_a_collection_error(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(BAD_AND_GOOD_MARKERS)
    result = pytester.runpytest("--collect-only", "--deploy-target", "edge-c")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["test_deploy.py::test_bad_fit: @pytest.mark.device_fit: unknown model 'optimised'*"]
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.no_fnmatch_line("*Traceback*")


COUNT_MARKER_READS = """
import pytest_deploycheck.markers as markers

READ = []


def counting(parse):
    def read(self, *args, **kwargs):
        READ.append(self.name)
        return parse(self, *args, **kwargs)

    return read


for kind in {type(marker) for marker in markers.MARKERS.values()}:
    kind.parse = counting(kind.parse)


def pytest_sessionfinish(session):
    print("MARKERS-READ:", " ".join(sorted(READ)))
"""


def test_each_marker_is_read_once_at_collection(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    tests = """
import pytest

@pytest.mark.device_fit(model="optimized")
def test_fit(deploy_device): pass

@pytest.mark.offline
@pytest.mark.throughput_over(1, batch=[1, 2], max_time_s=1)
def test_batches(deploy_batch): pass
"""
    deploy_project.make(tests)
    pytester.makeconftest(COUNT_MARKER_READS)
    # Subprocess: the conftest patches the marker table, which must not outlive the run.
    result = pytester.runpytest_subprocess("-s", "--deploy-target", "edge-c")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["*MARKERS-READ: device_fit offline throughput_over"])


# --------------------------------------------------------------------------- configuration errors


def test_toml_syntax_error_names_file_and_line(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", deploycheck='target = "edge-c"\n[[devices]\nname = 1\n')
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest()
    assert_usage_error(result, "*deploycheck.toml: invalid TOML: *(at line 2, column *)")


def test_pyproject_syntax_error_is_reported_by_pytest_itself(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml('[tool.deploycheck]\ntarget = "edge-c\n')
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest()
    assert_usage_error(result, "*pyproject.toml: *")


def test_unknown_key_suggests_the_closest_valid_one(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(
        FIT_TEST, extra="[[tool.deploycheck.devices]]\nname = 'edge-d'\nmemry_mb = 1\n"
    )
    result = pytester.runpytest()
    assert_usage_error(
        result,
        "pyproject.toml: [[][[]tool.deploycheck.devices[]][]] #4 (edge-d): unknown key"
        " 'memry_mb'; did you mean 'memory_mb'? valid keys: name, memory_mb, *",
    )


def test_every_problem_is_reported_one_line_each(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(
        FIT_TEST,
        top="evidence_dir = 3\n[tool.deploycheck.budgets]\nlatency_ms = -5\n",
        extra="[[tool.deploycheck.devices]]\nname = 'edge-a'\n",
    )
    result = pytester.runpytest()
    assert_usage_error(
        result,
        "*evidence_dir: expected a string, got a whole number (3)",
        "*[[]tool.deploycheck.budgets[]]: latency_ms: expected a number > 0, got -5",
        "*#4 (edge-a): duplicate device name 'edge-a' (first defined in #1)",
    )


def test_missing_model_file_is_named(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(FIT_TEST)
    (pytester.path / "models" / "int8.onnx").unlink()
    result = pytester.runpytest()
    assert_usage_error(
        result, "*[[]tool.deploycheck.models.optimized[]]: path: model file not found: *int8.onnx"
    )


def test_unknown_target_lists_the_valid_names(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(FIT_TEST)
    result = pytester.runpytest("--deploy-target", "edge-x")
    assert_usage_error(
        result, "--deploy-target: unknown device 'edge-x'*defines: edge-a, edge-b, edge-c"
    )


def test_one_target_per_run(pytester: pytest.Pytester, deploy_project: DeployProject) -> None:
    deploy_project.make(FIT_TEST)
    result = pytester.runpytest("--deploy-target", "edge-a,edge-c")
    assert_usage_error(
        result, "*one target per run, unless every target has a host*run pytest once per target*"
    )


def test_target_without_configuration(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--deploy-target", "edge-c")
    assert_usage_error(
        result, "--deploy-target 'edge-c': no deploycheck configuration found*--deploy-config PATH"
    )


# --------------------------------------------------------------------------- configuration sources


def test_standalone_deploycheck_toml(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(FIT_TEST)
    text = (pytester.path / "pyproject.toml").read_text()
    (pytester.path / "pyproject.toml").unlink()
    (pytester.path / "deploycheck.toml").write_text(
        text.replace("[tool.deploycheck]\n", "").replace("tool.deploycheck.", "")
    )
    result = pytester.runpytest("--deploy-target", "edge-c")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["release_candidate: True"])


def test_explicit_config_path_and_environment_target(
    pytester: pytest.Pytester, deploy_project: DeployProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    deploy_project.make(FIT_TEST)
    (pytester.path / "pyproject.toml").rename(pytester.path / "deploy.pyproject.toml")
    config = pytester.path / "conf" / "pyproject.toml"
    config.parent.mkdir()
    (pytester.path / "deploy.pyproject.toml").rename(config)
    (pytester.path / "models").rename(pytester.path / "conf" / "models")
    monkeypatch.setenv("DEPLOYCHECK_TARGET", "edge-b")
    result = pytester.runpytest("--deploy-config", str(config))
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*= deploy readiness: edge-b =*"])


def test_config_target_is_used_and_cli_overrides_it(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(FIT_TEST, top='target = "edge-a"')
    pytester.runpytest().stdout.fnmatch_lines(["*= deploy readiness: edge-a =*"])
    pytester.runpytest("--deploy-target", "edge-c").stdout.fnmatch_lines(
        ["*= deploy readiness: edge-c =*"]
    )


def test_deploy_target_fixture(pytester: pytest.Pytester, deploy_project: DeployProject) -> None:
    tests = """
def test_target(deploy_target, deploy_device, deploy_config):
    assert deploy_target.name == "edge-c"
    assert deploy_device is deploy_target
    assert deploy_target.cpus == 4 and deploy_target.execution_providers == (
        "CPUExecutionProvider",
    )
    assert deploy_config.device("edge-a").price_usd == 60
"""
    deploy_project.make(tests)
    pytester.runpytest("--deploy-target", "edge-c").assert_outcomes(passed=1)


def test_deploy_target_fixture_skips_without_a_target(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make("def test_target(deploy_target): pass\n")
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*no deploy target selected*"])


# --------------------------------------------------------------------------- verdict and evidence


def test_verdict_is_false_when_no_deploy_check_ran(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make("def test_unrelated(): pass\n", top='target = "edge-c"')
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "release_candidate: False",
            "  - no deploy check ran",
            "no deploy test ran: evidence files not written",
        ]
    )
    assert not (pytester.path / "deploycheck-evidence").exists()


def test_verdict_is_false_without_a_target(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(FIT_TEST)
    result = pytester.runpytest()
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        ["*= deploy readiness: no target =*", "release_candidate: False", "*no deploy target*"]
    )


def test_a_failing_deploy_test_blocks_the_verdict(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    tests = FIT_TEST + "\ndef test_broken(deploy_target):\n    raise RuntimeError('boom')\n"
    deploy_project.make(tests)
    result = pytester.runpytest("--deploy-target", "edge-c")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        ["release_candidate: False", "  - test_deploy.py::test_broken: test failed"]
    )


def test_a_failed_user_check_fails_its_test(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    tests = """
from pytest_deploycheck import record_check

def test_model_size(deploy_target):
    record_check("model_size_under_5", metric="file_size", value=7.4, unit="MB",
                 budget=5.0, passed=False, details="the int8 file grew")
"""
    deploy_project.make(tests)
    result = pytester.runpytest("--deploy-target", "edge-c")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "model_size_under_5: 7.4 MB (budget 5 MB) - the int8 file grew",
            "release_candidate: False",
        ]
    )


def test_user_checks_are_recorded_through_record_check(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    tests = """
from pytest_deploycheck import record_check

def test_model_size(deploy_target):
    size_mb = 7.4
    check = record_check("model_size_under_10", metric="file_size", value=size_mb, unit="MB",
                         budget=10.0, passed=size_mb <= 10.0, provenance="measured")
    assert check.passed
"""
    deploy_project.make(tests)
    result = pytester.runpytest("--deploy-target", "edge-c")
    result.stdout.fnmatch_lines(
        ["model_size_under_10  7.4 MB  budget 10 MB  measured  PASS", "release_candidate: True"]
    )


def test_evidence_files_hold_the_checks_and_the_run(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(FIT_TEST, top='required_evidence = ["failure_cases.md"]')
    pytester.makefile(".md", failure_cases="# known failure cases\n")
    result = pytester.runpytest("--deploy-target", "edge-c")
    result.stdout.fnmatch_lines(["has_failure_cases*failure_cases.md present*PASS"])
    evidence = deploy_project.evidence("edge-c")
    with (evidence / "metrics.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["name"] for r in rows] == [
        "device_fit[optimized@edge-a]",
        "device_fit[optimized@edge-b]",
        "device_fit[optimized@edge-c]",
        "has_failure_cases",
    ]
    assert [r["status"] for r in rows] == ["INFO", "INFO", "PASS", "PASS"]
    report = deploy_project.report("edge-c")
    assert report["target"] == "edge-c"
    assert report["verdict"]["release_candidate"] is True
    assert report["device_fit"][0]["table"] == {
        "edge-a": "CHECK memory,power",
        "edge-b": "CHECK offline",
        "edge-c": "FIT",
    }
    assert report["device_fit"][0]["cheapest_fit"] == {"device": "edge-c", "price_usd": 120}
    assert report["command_line"][0] == "pytest"
    assert "--deploy-target" in report["command_line"]
    assert set(report["environment"]["packages"]) >= {"onnxruntime", "numpy", "pytest"}
    assert report["environment"]["host"]["logical_cpus"] >= 1
    assert report["configuration"]["devices"][0]["name"] == "edge-a"
    assert not [p for p in evidence.iterdir() if p.name.endswith(".tmp")]


def test_missing_required_evidence_fails_the_verdict(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(FIT_TEST, top='required_evidence = ["failure_cases.md"]')
    result = pytester.runpytest("--deploy-target", "edge-c")
    result.stdout.fnmatch_lines(
        ["has_failure_cases*failure_cases.md missing*FAIL", "release_candidate: False"]
    )


def test_evidence_dir_option_and_no_summary(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(FIT_TEST)
    result = pytester.runpytest(
        "--deploy-target", "edge-c", "--deploy-evidence-dir", "out", "--deploy-no-summary"
    )
    result.stdout.no_fnmatch_line("*deploy readiness*")
    assert (pytester.path / "out" / "edge-c" / "metrics.csv").is_file()


def test_failure_report_carries_a_deploycheck_section(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(FIT_TEST)
    result = pytester.runpytest("--deploy-target", "edge-a")
    result.stdout.fnmatch_lines(
        ["*- deploycheck checks -*", "device_fit[[]optimized@edge-a[]]: FAIL*"]
    )


# --------------------------------------------------------------------------- xdist and start-up


def test_xdist_controller_prints_one_complete_verdict(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    pytest.importorskip("xdist")
    tests = (
        FIT_TEST
        + "\n@pytest.mark.device_fit(model='baseline')\ndef test_b(deploy_device):\n    pass\n"
    )
    deploy_project.make(tests, top='required_evidence = ["metrics.csv"]')
    # Subprocess: xdist workers are separate interpreters anyway.
    result = pytester.runpytest_subprocess("-n", "2", "--deploy-target", "edge-c")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(
        [
            "*= deploy readiness: edge-c =*",
            "device fit: edge-a CHECK memory,power · edge-b CHECK offline · edge-c FIT",
            "device fit: edge-a CHECK memory,power · edge-b CHECK offline · edge-c FIT",
            "release_candidate: True",
        ]
    )
    assert result.stdout.str().count("= deploy readiness") == 1
    rows = (pytester.path / "deploycheck-evidence" / "edge-c" / "metrics.csv").read_text()
    assert len(rows.strip().splitlines()) == 1 + 6 + 1


def test_runs_with_xdist_disabled(pytester: pytest.Pytester, deploy_project: DeployProject) -> None:
    deploy_project.make(FIT_TEST)
    result = pytester.runpytest("-p", "no:xdist", "--deploy-target", "edge-c")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["release_candidate: True"])


def test_startup_imports_nothing_heavy(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(FIT_TEST)
    pytester.makeconftest(
        textwrap.dedent(
            """
            import sys

            def pytest_sessionfinish(session):
                heavy = sorted({"numpy", "onnxruntime"} & set(sys.modules))
                print("HEAVY-MODULES:", heavy or "none")
            """
        )
    )
    # Subprocess: a fresh interpreter, so modules imported by this test run don't count.
    result = pytester.runpytest_subprocess(
        "-s", "-p", "no:benchmark", "-p", "no:hypothesispytest", "--deploy-target", "edge-c"
    )
    result.stdout.fnmatch_lines(["*HEAVY-MODULES: none"])
    result.assert_outcomes(passed=3)


def test_importing_the_package_imports_nothing_heavy() -> None:
    code = (
        "import sys, pytest_deploycheck, pytest_deploycheck.plugin;"
        "print(sorted({'numpy', 'onnxruntime', 'hypothesis'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
