"""pytest hooks of pytest-deploycheck: options, markers, fixtures and the summary.

Thin on purpose: every decision lives in the plain modules beside this one.  Nothing
heavy (onnxruntime, numpy) is imported here, so installing the plugin costs suites
that do not use it nothing.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest

from . import fitcheck
from .checks import Check, CheckRecorder, recording
from .config import ConfigError, DeployConfig, Device
from .readiness import ReadinessRun, RunOutcome, summary_lines
from .settings import ENV_CONFIG, ENV_TARGET, Settings, resolve_settings
from .verdict import describe_failure

GROUP = "deploycheck"
TARGET_HELP = (
    f"Device of the devices table this run is for (env {ENV_TARGET}, config key target);"
    " one target per run"
)
CONFIG_HELP = (
    f"Path of a deploycheck.toml or a pyproject.toml with [tool.deploycheck] (env {ENV_CONFIG},"
    " ini deploy_config); default: found in the rootdir"
)
EVIDENCE_HELP = (
    "Directory for the evidence files (config key evidence_dir; default deploycheck-evidence);"
    " each target writes to a subdirectory named after it"
)
NO_SUMMARY_HELP = "Do not print the deploy readiness section (evidence files are still written)"

DEPLOY_FIXTURES = frozenset({"deploy_target", "deploy_device", "deploy_config"})
DEPLOY_MARKERS = frozenset({"device_fit"})
MARKERS = (fitcheck.HELP,)


STATE_KEY = pytest.StashKey["DeploySession | None"]()
RECORDER_KEY = pytest.StashKey[CheckRecorder]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(GROUP, "deployment acceptance checks (pytest-deploycheck)")
    group.addoption("--deploy-target", dest="deploy_target", metavar="NAME", help=TARGET_HELP)
    group.addoption("--deploy-config", dest="deploy_config", metavar="PATH", help=CONFIG_HELP)
    group.addoption(
        "--deploy-evidence-dir", dest="deploy_evidence_dir", metavar="DIR", help=EVIDENCE_HELP
    )
    group.addoption(
        "--deploy-no-summary", dest="deploy_no_summary", action="store_true", help=NO_SUMMARY_HELP
    )
    parser.addini("deploy_config", CONFIG_HELP, type="string", default="")


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    try:
        settings = resolve_settings(
            rootdir=config.rootpath,
            invocation_dir=config.invocation_params.dir,
            cli_target=config.getoption("deploy_target"),
            cli_config=config.getoption("deploy_config"),
            cli_evidence_dir=config.getoption("deploy_evidence_dir"),
            ini_config=config.getini("deploy_config"),
            environ=os.environ,
        )
    except ConfigError as exc:
        raise pytest.UsageError(*exc.args) from None
    session = None if settings is None else DeploySession(config, settings)
    config.stash[STATE_KEY] = session
    if session is not None:
        config.pluginmanager.register(session, "deploycheck-session")


def _session(config: pytest.Config) -> DeploySession:
    """The run's deploycheck session, or a failure that says how to configure one."""
    session = config.stash.get(STATE_KEY, None)
    if session is None:
        pytest.fail(
            "needs a deploycheck configuration: add [tool.deploycheck] to"
            f" {config.rootpath / 'pyproject.toml'} or pass --deploy-config PATH",
            pytrace=False,
        )
    return session


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("device_fit")
    if marker is None:
        return
    where = f"{metafunc.definition.nodeid}: @pytest.mark.device_fit"
    if metafunc.config.stash.get(STATE_KEY, None) is None:
        pytest.fail(
            f"{where} needs a deploycheck configuration: add [tool.deploycheck] to"
            " pyproject.toml or pass --deploy-config PATH",
            pytrace=False,
        )
    config = _session(metafunc.config).settings.config
    if "deploy_device" not in metafunc.fixturenames:
        pytest.fail(f"{where} needs the test to take the deploy_device argument", pytrace=False)
    problem = fitcheck.marker_problem(marker.args, marker.kwargs, config)
    if problem:
        pytest.fail(f"{metafunc.definition.nodeid}: {problem}", pytrace=False)
    if not config.devices:
        pytest.fail(f"{where}: {config.source} defines no devices", pytrace=False)
    metafunc.parametrize("deploy_device", list(config.devices), ids=config.device_names)


class DeploySession:
    """The hooks that only matter once a project is configured; one per pytest run."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.settings = settings
        self.is_worker = hasattr(config, "workerinput")
        self.show_summary = not config.getoption("deploy_no_summary")
        self.run = ReadinessRun(
            settings.config,
            settings.target,
            settings.evidence_dir,
            settings.project_dir,
            command_line=["pytest", *config.invocation_params.args],
        )
        self.outcome: RunOutcome | None = None

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, object, object]:
        recorder = CheckRecorder(item.nodeid)
        item.stash[RECORDER_KEY] = recorder
        with recording(recorder):
            return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        self._judge_fit(item)
        result = yield
        recorder = item.stash[RECORDER_KEY]
        missed = [c for c in recorder.checks if c.gating and c.passed is False]
        if missed:
            pytest.fail("\n".join(describe_failure(c) for c in missed), pytrace=False)
        return result

    def _judge_fit(self, item: pytest.Item) -> Check | None:
        marker = item.get_closest_marker("device_fit")
        callspec = getattr(item, "callspec", None)
        if marker is None or callspec is None or "deploy_device" not in callspec.params:
            return None
        config = self.settings.config
        request = fitcheck.parse_fit_marker(marker.args, marker.kwargs, config)
        device: Device = callspec.params["deploy_device"]
        check = fitcheck.judge_fit(config, device, request, self.settings.target)
        return item.stash[RECORDER_KEY].add(check)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        recorder = item.stash.get(RECORDER_KEY, None)
        new = recorder.drain() if recorder is not None else []
        if new:
            # Plain data set on the report travels with it to the xdist controller.
            report.deploycheck_checks = [c.as_dict() for c in new]  # type: ignore[attr-defined]
            report.sections.append(("deploycheck checks", _section_text(new)))
        if new or _is_deploy_test(item):
            report.deploycheck_test = True  # type: ignore[attr-defined]
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        raw = getattr(report, "deploycheck_checks", None)
        if raw:
            self.run.add_checks([Check.from_dict(data) for data in raw])
        if getattr(report, "deploycheck_test", False):
            self.run.add_test_outcome(report.nodeid, report.failed)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        # Runs before the terminal summary; only the controller judges and writes.
        if self.is_worker or not (self.run.has_activity or self.settings.target):
            return
        self.outcome = self.run.finish(write=self.run.has_activity)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.outcome is None or not self.show_summary:
            return
        terminalreporter.write_sep("=", f"deploy readiness: {self.settings.target or 'no target'}")
        lines = summary_lines(self.outcome, self.settings.config.device_names)
        if not self.run.has_activity:
            lines.append("no deploy test ran: evidence files not written")
        good = self.outcome.verdict.release_candidate
        for line in lines:
            if line.startswith("release_candidate:"):
                terminalreporter.write_line(line, green=good, red=not good, bold=True)
            else:
                terminalreporter.write_line(line)


def _section_text(checks: list[Check]) -> str:
    return "\n".join(
        f"{c.name}: {c.status} value={c.value} budget={c.budget} ({c.provenance})"
        + (f" {c.details}" if c.details else "")
        for c in checks
    )


def _is_deploy_test(item: pytest.Item) -> bool:
    if any(True for name in DEPLOY_MARKERS for _ in item.iter_markers(name)):
        return True
    return any(name in DEPLOY_FIXTURES for name in getattr(item, "fixturenames", ()))


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def deploy_config(pytestconfig: pytest.Config) -> DeployConfig:
    """The validated deploycheck configuration of this project."""
    return _session(pytestconfig).settings.config


@pytest.fixture(scope="session")
def deploy_target(pytestconfig: pytest.Config) -> Device:
    """The device this run is for; the test is skipped when no target is selected."""
    settings = _session(pytestconfig).settings
    if settings.target is None:
        pytest.skip("no deploy target selected: pass --deploy-target NAME or set target")
    return settings.config.device(settings.target)


@pytest.fixture
def deploy_device(deploy_target: Device) -> Device:
    """The device under test: one per row with @pytest.mark.device_fit, else the target."""
    return deploy_target
