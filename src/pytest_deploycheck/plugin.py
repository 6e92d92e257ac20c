"""pytest hooks of pytest-deploycheck: options, markers, fixtures and the summary.

Thin on purpose: every decision lives in the plain modules beside this one.  Nothing
heavy (onnxruntime, numpy) is imported here, so installing the plugin costs suites
that do not use it nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator
from dataclasses import replace
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from .config.names import ENV_CONFIG, ENV_TARGET
from .markers import HELP_LINES, ItemMarkers, Mark, deploy_marks, read_markers

if TYPE_CHECKING:
    from .config.schema import DeployConfig, Device
    from .session import DeploySession

GROUP = "deploycheck"
TARGET_HELP = (
    f"Device of the devices table this run is for (env {ENV_TARGET}, config key target);"
    " one target per run, or several (a,b) when every one has a host: a fleet run"
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
ALLOW_PARTIAL_HELP = (
    "Judge a run that leaves deploy tests out (-k, -m, --deselect, --lf, a path, -x): the"
    " verdict may be True, with a caveat; env DEPLOYCHECK_ALLOW_PARTIAL, config key"
    " allow_partial. Without it such a run is not a release candidate"
)
COMPARE_FAIL_HELP = (
    "Regression tolerances for this run, e.g. latency_pct=10,memory_mb=20 (the keys of"
    " [tool.deploycheck.regression]); they override the config, per-check overrides included"
)
TIMING_LOCK_HELP = (
    "host: timed checks (latency, throughput, soak, cold start, memory) run one at a time"
    " on this host, across xdist workers and other runs, under a lock file in the temp"
    " directory (env DEPLOYCHECK_LOCK_DIR moves it); off: no lock. Env"
    " DEPLOYCHECK_TIMING_LOCK, config key timing_lock; default host"
)
RELEASE_DIR_HELP = (
    "The release's checkout (env DEPLOYCHECK_RELEASE_DIR, config key release_dir): a"
    " changed model is timed beside the release's file found there at the path the"
    " baseline records"
)
JSON_HELP = (
    "Also write report.json to PATH (env DEPLOYCHECK_JSON, config key json_report); the"
    " evidence directory keeps its own copy"
)
HTML_HELP = (
    "Also write report.html to PATH (env DEPLOYCHECK_HTML, config key html_report); the"
    " evidence directory keeps its own copy"
)
EMULATE_HELP = (
    "auto: the target's memory_mb and cores enforced on the host by a cgroup (Linux, where"
    " writable), else pinned cores with a note; enforce: cgroup limits or a start-up error;"
    " pin: pinned cores only; off: nothing pinned. Env DEPLOYCHECK_EMULATE, config key"
    " emulate; default auto"
)
NO_SUMMARY_HELP = "Do not print the deploy readiness section (evidence files are still written)"

if TYPE_CHECKING:
    from .checks.models import ModelSet
    from .measure.runtime import DeployModel
    from .measure.service import RunningService, ServiceSet

STATE_KEY = pytest.StashKey["DeploySession | None"]()
# The markers read for each test function, until its items are collected: keyed by
# (collector node id, function name), as pytest_generate_tests sees only the definition.
PENDING_KEY = pytest.StashKey[dict[tuple[str, str], ItemMarkers]]()


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
        "--deploy-allow-partial",
        dest="deploy_allow_partial",
        action="store_true",
        help=ALLOW_PARTIAL_HELP,
    )
    group.addoption(
        "--deploy-compare-fail",
        dest="deploy_compare_fail",
        metavar="EXPR[,EXPR...]",
        help=COMPARE_FAIL_HELP,
    )
    group.addoption(
        "--deploy-timing-lock",
        dest="deploy_timing_lock",
        metavar="host|off",
        help=TIMING_LOCK_HELP,
    )
    group.addoption(
        "--deploy-emulate",
        dest="deploy_emulate",
        metavar="auto|enforce|pin|off",
        help=EMULATE_HELP,
    )
    group.addoption(
        "--deploy-release-dir", dest="deploy_release_dir", metavar="DIR", help=RELEASE_DIR_HELP
    )
    group.addoption("--deploy-json", dest="deploy_json", metavar="PATH", help=JSON_HELP)
    group.addoption("--deploy-html", dest="deploy_html", metavar="PATH", help=HTML_HELP)
    group.addoption(
        "--deploy-no-summary", dest="deploy_no_summary", action="store_true", help=NO_SUMMARY_HELP
    )
    parser.addini("deploy_config", CONFIG_HELP, type="string", default="")


def pytest_configure(config: pytest.Config) -> None:
    for line in HELP_LINES:
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
            # A fleet's worker runs for its own device (the controller names it).
            cli_target=_worker_target(config) or config.getoption("deploy_target"),
            cli_config=config.getoption("deploy_config"),
            cli_evidence_dir=config.getoption("deploy_evidence_dir"),
            cli_baseline=config.getoption("deploy_baseline"),
            cli_save=config.getoption("deploy_save"),
            cli_soak_minutes=config.getoption("deploy_soak_minutes"),
            cli_allow_partial=bool(config.getoption("deploy_allow_partial")),
            cli_timing_lock=config.getoption("deploy_timing_lock"),
            cli_emulate=config.getoption("deploy_emulate"),
            cli_compare_fail=config.getoption("deploy_compare_fail"),
            cli_json=config.getoption("deploy_json"),
            cli_html=config.getoption("deploy_html"),
            cli_release_dir=config.getoption("deploy_release_dir"),
            ini_config=config.getini("deploy_config"),
            environ=os.environ,
        )
    except ConfigError as exc:
        raise pytest.UsageError(*exc.args) from None
    session = None
    if settings is not None:
        # Imported only for configured projects: the run-time machinery (readiness,
        # evidence, measurement) costs start-up time unrelated suites must not pay.
        from .session import open_session

        session = open_session(config, settings)  # registers its hooks
    config.stash[STATE_KEY] = session


def _worker_target(config: pytest.Config) -> str | None:
    """The target an xdist worker of a fleet run measures, as its controller sent it."""
    workerinput = getattr(config, "workerinput", None) or {}
    target = workerinput.get("deploycheck_target")
    return target if isinstance(target, str) else None


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
            "deploy_allow_partial",
            "deploy_timing_lock",
            "deploy_emulate",
            "deploy_compare_fail",
            "deploy_json",
            "deploy_html",
            "deploy_release_dir",
        )
    )
    if asked or config.getini("deploy_config") or os.environ.get(ENV_TARGET):
        return True
    if os.environ.get(ENV_CONFIG) or (config.rootpath / "deploycheck.toml").is_file():
        return True
    pyproject = config.rootpath / "pyproject.toml"
    try:
        # Not b"tool.deploycheck": "[tool]" then "deploycheck = ..." configures it too.
        return b"deploycheck" in pyproject.read_bytes()
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
    """Read the test's deploy markers once; a bad one fails that test alone, at setup."""
    definition = metafunc.definition
    marks = deploy_marks(definition)
    if not marks:
        return
    if metafunc.config.stash.get(STATE_KEY, None) is None:
        pytest.fail(
            f"{definition.nodeid}: @pytest.mark.{marks[0].name} needs a deploycheck"
            " configuration: add a [tool.deploycheck] table to pyproject.toml (it may be"
            " empty) or pass --deploy-config PATH",
            pytrace=False,
        )
    config = _session(metafunc.config).settings.config
    found = read_markers(definition.nodeid, marks, config)
    problems = found.problems + _fixture_problems(metafunc, marks, found, config)
    if problems and metafunc.config.getoption("collectonly"):
        pytest.fail("\n".join(problems), pytrace=False)  # --co sets up nothing to fail at
    pending = metafunc.config.stash.setdefault(PENDING_KEY, {})
    pending[_definition_key(definition)] = replace(found, problems=problems)
    if not problems:
        _parametrize(metafunc, found, config)


def _definition_key(item: pytest.Item) -> tuple[str, str]:
    parent = item.parent.nodeid if item.parent is not None else ""
    return parent, getattr(item, "originalname", item.name)


def _fixture_problems(
    metafunc: pytest.Metafunc, marks: list[Mark], found: ItemMarkers, config: DeployConfig
) -> tuple[str, ...]:
    """What the markers ask of the test itself: its arguments, a devices table."""
    nodeid = metafunc.definition.nodeid
    names = {mark.name for mark in marks}
    fixtures = metafunc.fixturenames
    problems = []
    if "device_fit" in names and "deploy_device" not in fixtures:
        problems.append(
            f"{nodeid}: @pytest.mark.device_fit needs the test to take the deploy_device argument"
        )
    if found.fit is not None and not config.devices:
        problems.append(f"{nodeid}: @pytest.mark.device_fit: {config.source} defines no devices")
    if "soak" in names and "benchmark" in fixtures:
        problems.append(
            f"{nodeid}: @soak calls the test body itself, for minutes; it cannot soak a"
            " pytest-benchmark test: drop the benchmark argument or the soak marker"
        )
    throughput = found.budget("throughput_over")
    batches = throughput["batch"] if throughput is not None else ()
    if len(batches) > 1 and "deploy_batch" not in fixtures:
        problems.append(
            f"{nodeid}: @throughput_over(batch={list(batches)}) runs once per batch size;"
            " the test must take the deploy_batch argument"
        )
    return tuple(problems)


def _parametrize(metafunc: pytest.Metafunc, found: ItemMarkers, config: DeployConfig) -> None:
    """One test per device (device_fit) and per batch size (throughput_over), in mark order."""
    throughput = found.budget("throughput_over")
    batches = throughput["batch"] if throughput is not None else ()
    for name in found.requests:  # the marks' order is the order of the test id's parts
        if name == "device_fit":
            metafunc.parametrize("deploy_device", list(config.devices), ids=config.device_names)
        elif name == "throughput_over" and len(batches) > 1:
            metafunc.parametrize("deploy_batch", batches, ids=[f"batch{b}" for b in batches])


def pytest_itemcollected(item: pytest.Item) -> None:
    pending = item.config.stash.get(PENDING_KEY, None)
    found = pending.get(_definition_key(item)) if pending else None
    if found is not None:
        from .session import MARKERS_KEY

        item.stash[MARKERS_KEY] = found


def pytest_collection_finish(session: pytest.Session) -> None:
    session.config.stash.get(PENDING_KEY, {}).clear()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test whose markers were bad fails here, before its fixtures, in one line each."""
    if item.config.stash.get(STATE_KEY, None) is None:
        return
    from .session import MARKERS_KEY

    found = item.stash.get(MARKERS_KEY, None)
    if found is not None and found.problems:
        pytest.fail("\n".join(found.problems), pytrace=False)


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
        _fail_alone(str(exc))
    return _load(deploy_models, name)


@pytest.fixture(scope="session")
def deploy_model_loader(deploy_models: ModelSet) -> Callable[..., DeployModel]:
    """Load any .onnx file with the target's settings: ``loader(path, name=None)``."""
    from .measure.runtime import ModelLoadError

    def load(path: str, name: str | None = None, input_shapes: Any = None) -> DeployModel:
        try:
            return deploy_models.load_path(path, name, input_shapes)
        except ModelLoadError as exc:
            _fail_alone(str(exc))

    return load


@pytest.fixture
def deploy_batch(request: pytest.FixtureRequest) -> int:
    """The batch size of a throughput_over test (1 unless the marker says otherwise)."""
    session = request.config.stash.get(STATE_KEY, None)
    if session is None:
        return 1
    from .session import item_markers

    throughput = item_markers(request.node, session.settings.config).budget("throughput_over")
    return 1 if throughput is None else int(throughput["batch"][0])


@pytest.fixture(scope="session")
def deploy_services(pytestconfig: pytest.Config) -> Generator[ServiceSet, None, None]:
    """The configured services by name: ``deploy_services["api"]`` starts it on first use.

    Each runs on 127.0.0.1 and a free port until the session ends (per xdist worker),
    then is stopped with its whole process group.  An unknown name or a service that
    cannot start fails the test in one line.
    """
    from .measure.service import ServiceSet

    session = _session(pytestconfig)
    settings = session.settings
    # One limited group for the services of this worker: they share the target's memory.
    with session.emulation.group() as group:
        services = ServiceSet(
            settings.config.services,
            project_dir=settings.project_dir,
            fail=_fail_alone,
            **({"spawn": group.popen} if group is not None else {}),
        )
        try:
            yield services
        finally:
            services.stop_all()


@pytest.fixture(scope="session")
def deploy_service(deploy_services: ServiceSet, deploy_config: DeployConfig) -> RunningService:
    """The default service (``default_service``, else the only one), started and ready."""
    from .config.schema import ConfigError

    try:
        name = deploy_config.resolve_default_service()
    except ConfigError as exc:
        _fail_alone(str(exc))
    return deploy_services[name]


def _fail_alone(message: str) -> NoReturn:
    """Fail with *message* alone, also from an ``except`` block.

    ``pytest.fail`` there chains the caught error, and the message it already holds
    is printed twice around "During handling of the above exception".
    """
    __tracebackhide__ = True
    raise pytest.fail.Exception(message, pytrace=False) from None


def _load(models: ModelSet, name: str) -> DeployModel:
    from .measure.runtime import ModelLoadError

    try:
        return models[name]
    except ModelLoadError as exc:
        _fail_alone(str(exc))
