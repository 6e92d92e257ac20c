"""pytest hooks of pytest-deploycheck: options, markers, fixtures and the summary.

Thin on purpose: every decision lives in the plain modules beside this one.  Nothing
heavy (onnxruntime, numpy) is imported here, so installing the plugin costs suites
that do not use it nothing.
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import pytest

from . import budgetchecks, fitcheck, memory
from .budgets import BUDGET_MARKERS, BudgetMarkerError, BudgetRequest, parse_budget_marker
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

if TYPE_CHECKING:
    from .modelset import ModelSet
    from .runtime import DeployModel

DEPLOY_FIXTURES = frozenset(
    {
        "deploy_target",
        "deploy_device",
        "deploy_config",
        "deploy_model",
        "deploy_models",
        "deploy_model_loader",
        "deploy_batch",
    }
)
DEPLOY_MARKERS = frozenset({"device_fit", *BUDGET_MARKERS})
MARKERS = (fitcheck.HELP, *(marker.help for marker in BUDGET_MARKERS.values()))
TIMED_MARKERS = ("latency_under", "throughput_over")


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
    nodeid = metafunc.definition.nodeid
    names = [m.name for m in metafunc.definition.iter_markers() if m.name in DEPLOY_MARKERS]
    if not names:
        return
    if metafunc.config.stash.get(STATE_KEY, None) is None:
        pytest.fail(
            f"{nodeid}: @pytest.mark.{names[0]} needs a deploycheck configuration: add a"
            " [tool.deploycheck] table to pyproject.toml (it may be empty) or pass"
            " --deploy-config PATH",
            pytrace=False,
        )
    config = _session(metafunc.config).settings.config
    for name in dict.fromkeys(names):
        if name == "device_fit":
            _parametrize_devices(metafunc, config)
        else:
            _check_budget_marker(metafunc, config, name)


def _parametrize_devices(metafunc: pytest.Metafunc, config: DeployConfig) -> None:
    marker = metafunc.definition.get_closest_marker("device_fit")
    assert marker is not None
    where = f"{metafunc.definition.nodeid}: @pytest.mark.device_fit"
    if "deploy_device" not in metafunc.fixturenames:
        pytest.fail(f"{where} needs the test to take the deploy_device argument", pytrace=False)
    problem = fitcheck.marker_problem(marker.args, marker.kwargs, config)
    if problem:
        pytest.fail(f"{metafunc.definition.nodeid}: {problem}", pytrace=False)
    if not config.devices:
        pytest.fail(f"{where}: {config.source} defines no devices", pytrace=False)
    metafunc.parametrize("deploy_device", list(config.devices), ids=config.device_names)


def _check_budget_marker(metafunc: pytest.Metafunc, config: DeployConfig, name: str) -> None:
    nodeid = metafunc.definition.nodeid
    request = _budget_request(metafunc.definition, name, config, fail=True)
    model = request.options.get("model")
    if model is not None and model not in config.models:
        try:
            config.model(model)
        except ConfigError as exc:
            pytest.fail(f"{nodeid}: @{name} model: {exc}", pytrace=False)
    batches = request.options.get("batch", ())
    if len(batches) > 1:
        if "deploy_batch" not in metafunc.fixturenames:
            pytest.fail(
                f"{nodeid}: @{name}(batch={list(batches)}) runs once per batch size;"
                " the test must take the deploy_batch argument",
                pytrace=False,
            )
        metafunc.parametrize("deploy_batch", batches, ids=[f"batch{b}" for b in batches])


def _budget_request(
    node: pytest.Item | pytest.Function, name: str, config: DeployConfig, *, fail: bool = False
) -> BudgetRequest:
    marker = node.get_closest_marker(name)
    assert marker is not None
    try:
        return parse_budget_marker(BUDGET_MARKERS[name], marker.args, marker.kwargs, config.budgets)
    except BudgetMarkerError as exc:
        message = f"{node.nodeid}: {exc}"
    pytest.fail(message, pytrace=False)


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

    @property
    def target_device(self) -> Device | None:
        target = self.settings.target
        return self.settings.config.device(target) if target else None

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> bool | None:
        """Run the test body as a measured workload when a timing marker asks for it."""
        repeat = memory.child_repeat()
        if repeat is not None:
            if pyfuncitem.get_closest_marker("memory_under") is None:
                return None
            workload = _workload(pyfuncitem)
            for _ in range(repeat):
                workload()
            return True
        timed = [
            n for n in ("latency_under", "throughput_over") if pyfuncitem.get_closest_marker(n)
        ]
        if not timed or "benchmark" in pyfuncitem.funcargs:
            return None
        workload = _workload(pyfuncitem)
        recorder = pyfuncitem.stash[RECORDER_KEY]
        for name in timed:
            recorder.add(self._timed_check(pyfuncitem, name, workload))
        return True

    def _timed_check(
        self, item: pytest.Function, name: str, workload: Callable[[], object]
    ) -> Check:
        config = self.settings.config
        request = _budget_request(item, name, config)
        if name == "latency_under":
            return budgetchecks.latency_check(
                request,
                workload,
                default_percentile=config.budgets.latency_percentile,
                device=self.target_device,
            )
        batch: int = item.funcargs.get("deploy_batch", request["batch"][0])  # type: ignore[assignment]
        return budgetchecks.throughput_check(
            request, workload, batch=batch, device=self.target_device
        )

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        self._judge_fit(item)
        result = yield
        if memory.child_repeat() is None and isinstance(item, pytest.Function):
            self._after_body(item)
        recorder = item.stash[RECORDER_KEY]
        missed = [c for c in recorder.checks if c.gating and c.passed is not True]
        if missed:
            pytest.fail("\n".join(_miss_line(c) for c in missed), pytrace=False)
        return result

    def _after_body(self, item: pytest.Function) -> None:
        """Checks that need the body to have run once: benchmark, memory, cold start."""
        recorder = item.stash[RECORDER_KEY]
        config = self.settings.config
        benchmark = item.funcargs.get("benchmark")
        if benchmark is not None and item.get_closest_marker("latency_under"):
            recorder.add(self._benchmark_check(item, benchmark))
        if item.get_closest_marker("memory_under"):
            recorder.add(self._memory_check(item))
        if item.get_closest_marker("cold_start_under"):
            request = _budget_request(item, "cold_start_under", config)
            recorder.add(self._cold_start_check(item, request))

    def _benchmark_check(self, item: pytest.Function, benchmark: Any) -> Check:
        request = _budget_request(item, "latency_under", self.settings.config)
        stats = getattr(benchmark, "stats", None)
        samples = list(getattr(getattr(stats, "stats", None), "data", None) or [])
        if not samples:
            return Check(
                name=f"latency_under_{request.budget:g}",
                metric="latency",
                value=None,
                unit="ms",
                budget=request.budget,
                passed=None,
                details="pytest-benchmark took no samples (is --benchmark-disable set?)",
            )
        return budgetchecks.benchmark_check(
            request,
            samples,
            default_percentile=self.settings.config.budgets.latency_percentile,
            device=self.target_device,
        )

    def _memory_check(self, item: pytest.Function) -> Check:
        config = self.settings.config
        request = _budget_request(item, "memory_under", config)
        try:
            result = memory.measure_in_child(
                item.nodeid,
                self._child_args(item.config),
                cwd=item.config.rootpath,
                repeat=request["repeat"],
                timeout_s=request["timeout_s"],
            )
        except memory.MemoryMeasurementError as exc:
            pytest.fail(f"memory_under: {exc}", pytrace=False)
        return budgetchecks.memory_check(
            request, result, device=self.target_device, models=_models_used(item, request, config)
        )

    def _child_args(self, config: pytest.Config) -> list[str]:
        args = ["-p", "no:cacheprovider", "-q", "--rootdir", str(config.rootpath)]
        if config.inipath is not None:
            args += ["-c", str(config.inipath)]
        if config.pluginmanager.hasplugin("xdist"):
            args += ["-n", "0"]
        if self.settings.config.source is not None:
            args += ["--deploy-config", str(self.settings.config.source)]
        if self.settings.target:
            args += ["--deploy-target", self.settings.target]
        return [*args, "--deploy-no-summary"]

    def _cold_start_check(self, item: pytest.Function, request: BudgetRequest) -> Check:
        from .coldstart import ColdStartError, measure_cold_start
        from .runtime import SessionSettings

        config = self.settings.config
        spec = config.model(request["model"] or config.resolve_default_model())
        try:
            result = measure_cold_start(
                spec.path,
                SessionSettings.for_device(self.target_device),
                spec.input_shapes,
                runs=request["runs"],
                timeout_s=request["timeout_s"],
                name=spec.name,
            )
        except ColdStartError as exc:
            pytest.fail(f"cold_start_under: {exc}", pytrace=False)
        return budgetchecks.cold_start_check(request, result, device=self.target_device)

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
        if call.excinfo is not None and _is_model_error(call.excinfo.value):
            # The runtime's own message already names the model and the input.
            report.longrepr = f"{item.nodeid}: {call.excinfo.value}"
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
        in_child = memory.child_repeat() is not None
        if self.is_worker or in_child or not (self.run.has_activity or self.settings.target):
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


def _is_model_error(error: BaseException) -> bool:
    runtime = sys.modules.get("pytest_deploycheck.runtime")  # loaded only once a model is
    if runtime is None:
        return False
    errors = (runtime.ModelLoadError, runtime.ModelInputError, runtime.ModelRunError)
    return isinstance(error, errors)


def _miss_line(check: Check) -> str:
    if check.passed is None:
        return f"{check.name}: inconclusive: {check.details or 'the evidence did not settle it'}"
    return describe_failure(check)


def _workload(item: pytest.Function) -> Callable[[], object]:
    """The test body as a callable with its fixtures bound, as pytest would call it."""
    names = inspect.signature(item.obj).parameters
    arguments = {name: item.funcargs[name] for name in names if name in item.funcargs}
    function = item.obj
    return lambda: function(**arguments)


def _models_used(item: pytest.Function, request: BudgetRequest, config: DeployConfig) -> list[str]:
    """The model a memory figure belongs to: the marker's, or the default model's."""
    if request.options.get("model"):
        return [request["model"]]
    if "deploy_model" in item.fixturenames and config.models:
        return [config.resolve_default_model()]
    return []


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


@pytest.fixture(scope="session")
def deploy_models(pytestconfig: pytest.Config) -> ModelSet:
    """Every configured model by name, loaded on first use as the target runs it."""
    from .modelset import ModelSet

    session = _session(pytestconfig)
    return ModelSet(session.settings.config, session.target_device)


@pytest.fixture(scope="session")
def deploy_model(deploy_models: ModelSet, deploy_config: DeployConfig) -> DeployModel:
    """The default model (``default_model``, else ``optimized``), loaded for the target."""
    try:
        name = deploy_config.resolve_default_model()
    except ConfigError as exc:
        pytest.fail(str(exc), pytrace=False)
    return _load(deploy_models, name)


@pytest.fixture(scope="session")
def deploy_model_loader(deploy_models: ModelSet) -> Callable[..., DeployModel]:
    """Load any .onnx file with the target's settings: ``loader(path, name=None)``."""
    from .runtime import ModelLoadError

    def load(path: str, name: str | None = None, input_shapes: Any = None) -> DeployModel:
        try:
            return deploy_models.load_path(path, name, input_shapes)
        except ModelLoadError as exc:
            pytest.fail(str(exc), pytrace=False)

    return load


@pytest.fixture
def deploy_batch(request: pytest.FixtureRequest) -> int:
    """The batch size of a throughput_over test (1 unless the marker says otherwise)."""
    marker = request.node.get_closest_marker("throughput_over")
    batches = marker.kwargs.get("batch", 1) if marker is not None else 1
    if isinstance(batches, (list, tuple)):
        return int(batches[0])
    return int(batches)


def _load(models: ModelSet, name: str) -> DeployModel:
    from .runtime import ModelLoadError

    try:
        return models[name]
    except ModelLoadError as exc:
        pytest.fail(str(exc), pytrace=False)
