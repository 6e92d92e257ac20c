"""pytest hooks of pytest-deploycheck: options, markers, fixtures and the summary.

Thin on purpose: every decision lives in the plain modules beside this one.  Nothing
heavy (onnxruntime, numpy) is imported here, so installing the plugin costs suites
that do not use it nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from .config.names import ENV_CONFIG, ENV_TARGET, HELP_LINES, MARKER_NAMES

if TYPE_CHECKING:
    from .config.schema import DeployConfig, Device
    from .session import DeploySession

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
SAVE_HELP = (
    "Save this run's figures (with raw latency samples) as a baseline JSON file for"
    " later --deploy-baseline comparisons"
)
BASELINE_HELP = (
    "Compare this run with a saved baseline and fail on significant regressions"
    " (config key baseline)"
)
SOAK_MINUTES_HELP = (
    "Run each soak for at most M minutes (pull requests), or 'full' for the minutes each"
    " soak marker gives (nightly); env DEPLOYCHECK_SOAK_MINUTES, config key soak_max_minutes."
    " A shortened soak says so in the verdict"
)
NO_SUMMARY_HELP = "Do not print the deploy readiness section (evidence files are still written)"

if TYPE_CHECKING:
    from .checks.models import ModelSet
    from .measure.runtime import DeployModel

MARKERS = HELP_LINES
DEPLOY_MARKERS = frozenset(MARKER_NAMES)

STATE_KEY = pytest.StashKey["DeploySession | None"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(GROUP, "deployment acceptance checks (pytest-deploycheck)")
    group.addoption("--deploy-target", dest="deploy_target", metavar="NAME", help=TARGET_HELP)
    group.addoption("--deploy-config", dest="deploy_config", metavar="PATH", help=CONFIG_HELP)
    group.addoption(
        "--deploy-evidence-dir", dest="deploy_evidence_dir", metavar="DIR", help=EVIDENCE_HELP
    )
    group.addoption("--deploy-save", dest="deploy_save", metavar="PATH", help=SAVE_HELP)
    group.addoption("--deploy-baseline", dest="deploy_baseline", metavar="PATH", help=BASELINE_HELP)
    group.addoption(
        "--deploy-soak-minutes", dest="deploy_soak_minutes", metavar="M", help=SOAK_MINUTES_HELP
    )
    group.addoption(
        "--deploy-no-summary", dest="deploy_no_summary", action="store_true", help=NO_SUMMARY_HELP
    )
    parser.addini("deploy_config", CONFIG_HELP, type="string", default="")


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    if not _may_be_configured(config):
        config.stash[STATE_KEY] = None
        return
    from .config.schema import ConfigError
    from .config.settings import resolve_settings

    try:
        settings = resolve_settings(
            rootdir=config.rootpath,
            invocation_dir=config.invocation_params.dir,
            cli_target=config.getoption("deploy_target"),
            cli_config=config.getoption("deploy_config"),
            cli_evidence_dir=config.getoption("deploy_evidence_dir"),
            cli_baseline=config.getoption("deploy_baseline"),
            cli_save=config.getoption("deploy_save"),
            cli_soak_minutes=config.getoption("deploy_soak_minutes"),
            ini_config=config.getini("deploy_config"),
            environ=os.environ,
        )
    except ConfigError as exc:
        raise pytest.UsageError(*exc.args) from None
    session = None
    if settings is not None:
        # Imported only for configured projects: the run-time machinery (readiness,
        # evidence, measurement) costs start-up time unrelated suites must not pay.
        from .session import DeploySession

        session = DeploySession(config, settings)
    config.stash[STATE_KEY] = session
    if session is not None:
        config.pluginmanager.register(session, "deploycheck-session")


def _may_be_configured(config: pytest.Config) -> bool:
    """Whether this run could use deploycheck at all, decided without parsing anything.

    A suite that never uses the plugin stops here, so it imports none of the
    configuration machinery; anything that could configure a run goes the full way.
    """
    asked = any(
        config.getoption(name)
        for name in (
            "deploy_target",
            "deploy_config",
            "deploy_baseline",
            "deploy_save",
            "deploy_soak_minutes",
        )
    )
    if asked or config.getini("deploy_config") or os.environ.get(ENV_TARGET):
        return True
    if os.environ.get(ENV_CONFIG) or (config.rootpath / "deploycheck.toml").is_file():
        return True
    pyproject = config.rootpath / "pyproject.toml"
    try:
        return b"tool.deploycheck" in pyproject.read_bytes()
    except OSError:
        return False


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
        elif name == "offline":
            _check_offline_marker(metafunc)
        else:
            _check_budget_marker(metafunc, config, name)


def _parametrize_devices(metafunc: pytest.Metafunc, config: DeployConfig) -> None:
    marker = metafunc.definition.get_closest_marker("device_fit")
    assert marker is not None
    where = f"{metafunc.definition.nodeid}: @pytest.mark.device_fit"
    if "deploy_device" not in metafunc.fixturenames:
        pytest.fail(f"{where} needs the test to take the deploy_device argument", pytrace=False)
    from .checks import fitmarker as fitcheck

    problem = fitcheck.marker_problem(marker.args, marker.kwargs, config)
    if problem:
        pytest.fail(f"{metafunc.definition.nodeid}: {problem}", pytrace=False)
    if not config.devices:
        pytest.fail(f"{where}: {config.source} defines no devices", pytrace=False)
    metafunc.parametrize("deploy_device", list(config.devices), ids=config.device_names)


def _check_offline_marker(metafunc: pytest.Metafunc) -> None:
    from .checks.offline import OfflineMarkerError, parse_offline_marker

    marker = metafunc.definition.get_closest_marker("offline")
    assert marker is not None
    try:
        parse_offline_marker(marker.args, marker.kwargs)
        return
    except OfflineMarkerError as exc:
        message = f"{metafunc.definition.nodeid}: {exc}"
    pytest.fail(message, pytrace=False)


def _check_budget_marker(metafunc: pytest.Metafunc, config: DeployConfig, name: str) -> None:
    from .config.schema import ConfigError
    from .session import budget_request

    nodeid = metafunc.definition.nodeid
    request = budget_request(metafunc.definition, name, config)
    if name == "soak" and "benchmark" in metafunc.fixturenames:
        pytest.fail(
            f"{nodeid}: @soak calls the test body itself, for minutes; it cannot soak a"
            " pytest-benchmark test: drop the benchmark argument or the soak marker",
            pytrace=False,
        )
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
    from .checks.models import ModelSet

    session = _session(pytestconfig)
    return ModelSet(session.settings.config, session.target_device)


@pytest.fixture(scope="session")
def deploy_model(deploy_models: ModelSet, deploy_config: DeployConfig) -> DeployModel:
    """The default model (``default_model``, else ``optimized``), loaded for the target."""
    from .config.schema import ConfigError

    try:
        name = deploy_config.resolve_default_model()
    except ConfigError as exc:
        pytest.fail(str(exc), pytrace=False)
    return _load(deploy_models, name)


@pytest.fixture(scope="session")
def deploy_model_loader(deploy_models: ModelSet) -> Callable[..., DeployModel]:
    """Load any .onnx file with the target's settings: ``loader(path, name=None)``."""
    from .measure.runtime import ModelLoadError

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
    from .measure.runtime import ModelLoadError

    try:
        return models[name]
    except ModelLoadError as exc:
        pytest.fail(str(exc), pytrace=False)
