"""The hooks that run deploy checks once a project is configured.

Registered by the plugin for configured runs only: a project without deploycheck
configuration never pays for them.  Per-item state lives in ``item.stash``.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .checks import budget as budgetchecks
from .checks.fit import judge_fit
from .checks.record import Check, CheckRecorder, configured_budgets, recording
from .config.escape import log_text, xml_text
from .config.schema import DeployConfig, Device
from .config.settings import Settings
from .markers import DEPLOY_MARKERS, BudgetRequest, ItemMarkers, deploy_marks, read_markers
from .measure import memory
from .measure.accelerator import gpu_of
from .measure.cgroups import Emulation, GroupError, LimitedGroup
from .measure.hostlock import TimingLock, lock_path
from .measure.progress import ProgressSink
from .report.writer import write_run_files
from .terminal import TerminalProgressSink, write_readiness_section
from .verdict.decide import describe_failure
from .verdict.run import ReadinessRun, RunOutcome

if TYPE_CHECKING:
    from types import FrameType

    from .checks.services import ServiceRss
    from .markers import OfflineRequest
    from .measure.netguard import AttemptLog
    from .report.evidence_set import EvidenceStart
    from .verdict.release_models import ReleaseModels

DEPLOY_FIXTURES = frozenset(
    {
        "deploy_target",
        "deploy_device",
        "deploy_config",
        "deploy_model",
        "deploy_models",
        "deploy_model_loader",
        "deploy_batch",
        "deploy_service",
        "deploy_services",
    }
)
TIMED_MARKERS = ("latency_under", "throughput_over", "soak", "capacity_over")


RECORDER_KEY = pytest.StashKey[CheckRecorder]()
OFFLINE_KEY = pytest.StashKey["OfflineRun"]()
MARKERS_KEY = pytest.StashKey[ItemMarkers]()  # set at collection by the plugin


def item_markers(node: pytest.Item, config: DeployConfig, name: str | None = None) -> ItemMarkers:
    """The deploy markers of *node* as collection read them.

    Read now, once, for a test collection never saw with them: a marker added later by
    a hook (``add_marker``) or a fixture (``applymarker``); *name* is the one asked for.
    """
    found = node.stash.get(MARKERS_KEY, None)
    if found is None or (
        name is not None
        and name not in found.requests
        and not found.problems
        and node.get_closest_marker(name) is not None
    ):
        found = read_markers(node.nodeid, deploy_marks(node), config)
        node.stash[MARKERS_KEY] = found
    return found


def budget_request(node: pytest.Item, name: str, config: DeployConfig) -> BudgetRequest:
    """The validated arguments of the marker *name* on *node*, or a one-line failure."""
    found = item_markers(node, config, name)
    request = found.budget(name)
    if request is None:
        pytest.fail("\n".join(found.problems) or f"{node.nodeid}: no @{name}", pytrace=False)
    return request


class DeploySession:
    """The hooks that only matter once a project is configured; one per pytest run."""

    def __init__(self, config: pytest.Config, settings: Settings, *, member: bool = False) -> None:
        self.settings = settings
        self.is_worker = hasattr(config, "workerinput")
        self.show_summary = not config.getoption("deploy_no_summary")
        self.run = ReadinessRun(
            settings.config,
            settings.target,
            settings.evidence_dir,
            settings.project_dir,
            command_line=["pytest", *config.invocation_params.args],
            baseline=settings.baseline,
            save_baseline=settings.save_baseline,
            step_summary=_step_summary_path(),
            allow_partial=settings.allow_partial,
        )
        self.outcome: RunOutcome | None = None
        self.evidence_start: EvidenceStart | None = None
        self.signals = InterruptSignals()
        self.interrupted_by: str | None = None
        self.timing = TimingLock(settings.timing_lock, lock_path(settings.lock_dir))
        # A fleet's member (FleetSession) leaves xdist to the fleet.
        self.device_note = None
        if self.judges() and not member:
            self.device_note = _run_on_device(config, self.target_device)
        if config.pluginmanager.hasplugin("xdist") and not member:
            config.pluginmanager.register(XdistHooks(self), "deploycheck-xdist")
        self.emulation = _emulation(config, settings, self.target_device, self.device_note)

    def judges(self) -> bool:
        """Whether this process judges the run: the xdist controller, not a measuring child."""
        return not self.is_worker and memory.child_repeat() is None

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Mark the run in progress before any test runs, so that a run that dies says so.

        The earlier evidence moves to ``previous/`` and report.json says "running" with
        ``release_candidate: false`` (report.evidence_set); SIGTERM is made to end the
        run as Ctrl-C does, so that an interrupted run still writes what it has.
        """
        config = session.config
        if not self.judges() or config.getoption("collectonly"):
            return
        self.signals.install()
        if config.getoption("lf", False) and _last_failed(config):
            self.run.leave_out("--lf runs only the tests that failed in the last run")
        from .report.evidence_set import RunMarker, begin_evidence_set

        # A run without a target is never a release candidate: no marker is needed.
        target = self.settings.target
        marker = None
        if target is not None:
            marker = RunMarker(target, tuple(self.run.command_line), self.run.started, os.getpid())
        self.evidence_start = begin_evidence_set(
            self.settings.evidence_dir,
            required=self.settings.config.required_evidence,
            marker=marker,
        )
        self.run.inherited = self.evidence_start.left_behind
        if self.evidence_start.error:
            self.run.caveat(
                f"the evidence of the run before could not all be set aside in previous/"
                f" ({self.evidence_start.error}): files it left do not count for this run"
            )

    def pytest_deselected(self, items: Sequence[pytest.Item]) -> None:
        """Deploy tests left out by -k, -m, --deselect, --lf or --sw make the run partial.

        xdist workers collect and deselect; the controller reads their lists from
        ``workeroutput`` when each worker goes down (XdistHooks).
        """
        nodeids = [item.nodeid for item in items if _is_deploy_test(item)]
        if not nodeids:
            return
        workeroutput = getattr(items[0].config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput.setdefault(DESELECTED_OUTPUT, []).extend(nodeids)
        self.run.add_deselected(nodeids)

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        """What interrupted the run, for its verdict: a signal, Ctrl-C or pytest.exit."""
        text = str(excinfo.value).strip()
        self.interrupted_by = excinfo.typename + (f": {text}" if text else "")

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.signals.restore()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, object, object]:
        recorder = CheckRecorder(item.nodeid)
        item.stash[RECORDER_KEY] = recorder
        request = self._offline_request(item)
        budgets = self.settings.config.budgets  # assert_accuracy_drop's default max_drop
        if request is None:
            with recording(recorder), configured_budgets(budgets):
                return (yield)
        from .checks.offline import network_policy
        from .measure.netguard import child_environment, network_blocked

        policy = network_policy(request)
        # The block covers setup (a model fixture that downloads), the body, teardown
        # and the child processes the measurements start, which inherit the variables.
        with tempfile.TemporaryDirectory(prefix="deploycheck-offline-") as tmp:
            children_log = Path(tmp) / "attempts.jsonl"
            with (
                network_blocked(policy) as log,
                _environment(child_environment(policy, children_log)),
                recording(recorder),
                configured_budgets(budgets),
            ):
                item.stash[OFFLINE_KEY] = OfflineRun(request, log, children_log)
                return (yield)

    def _offline_request(self, item: pytest.Item) -> OfflineRequest | None:
        """The network policy of *item*: its marker, or its models' requires_offline."""
        from .checks.offline import for_models

        config = self.settings.config
        request = item_markers(item, config, "offline").offline
        if request is not None:
            return request
        if not config.enforce_requires_offline:
            return None
        needing = [m for m in _models_run_by(item, config) if config.models[m].requires_offline]
        return for_models(needing) if needing else None

    def progress_sink(self, config: pytest.Config, nodeid: str) -> ProgressSink:
        """The terminal, at normal verbosity or more; nothing on xdist workers or -q."""
        from .measure.progress import NullSink

        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if self.is_worker or reporter is None or config.get_verbosity() < 0:
            return NullSink()
        capture = config.pluginmanager.get_plugin("capturemanager")
        return TerminalProgressSink(reporter, capture, nodeid, verbose=config.get_verbosity() > 0)

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
        timed = [n for n in TIMED_MARKERS if pyfuncitem.get_closest_marker(n)]
        if "benchmark" in pyfuncitem.funcargs:
            return None
        if not timed:
            # memory_under alone: the body runs only in the measuring child, under its
            # timeout, and never here as well (twice the time, its memory in this process).
            # A service test runs here: its memory is the service's, sampled from here.
            memory_alone = pyfuncitem.get_closest_marker("memory_under") is not None
            return True if memory_alone and not _uses_services(pyfuncitem) else None
        workload = _workload(pyfuncitem)
        recorder = pyfuncitem.stash[RECORDER_KEY]
        for name in timed:
            timed_check = functools.partial(self._timed_check, pyfuncitem, name, workload)
            check = recorder.add(self._scheduled(pyfuncitem, timed_check))
            hang = check.extra.get("hang")
            if hang:  # the body hung: the other timed markers would hang as well
                summary = f"{check.name}: {check.details}"
                pytest.fail(_hang_text(hang["stack"], summary, pyfuncitem.nodeid), pytrace=False)
        return True

    def _timed_check(
        self, item: pytest.Function, name: str, workload: Callable[[], object]
    ) -> Check:
        config = self.settings.config
        request = budget_request(item, name, config)
        sink = self.progress_sink(item.config, item.nodeid)
        on_stuck = self._stuck_handler(item)
        if name == "soak":
            from .checks.soak import SoakCap, soak_check

            return soak_check(
                request,
                workload,
                budgets=config.budgets,
                device=self.target_device,
                cap=SoakCap(self.settings.soak_max_minutes, self.settings.soak_cap_source),
                sink=sink,
                label=item.name,
                on_stuck=on_stuck,
                memory=self._service_rss(item),
            )
        if name == "capacity_over" or (
            name == "latency_under" and (request["qps"] or request["clients"])
        ):
            return self._load_check(item, request, workload, sink)
        if name == "latency_under":
            check = budgetchecks.latency_check(
                request,
                workload,
                default_percentile=config.budgets.latency_percentile,
                device=self.target_device,
                sink=sink,
                label=item.name,
                on_stuck=on_stuck,
            )
            return self._paired(item, workload, check)
        batch: int = item.funcargs.get("deploy_batch", request["batch"][0])  # type: ignore[assignment]
        check = budgetchecks.throughput_check(
            request,
            workload,
            batch=batch,
            device=self.target_device,
            sink=sink,
            label=item.name,
            on_stuck=on_stuck,
        )
        return self._paired(item, workload, check)

    def _load_check(
        self,
        item: pytest.Function,
        request: BudgetRequest,
        workload: Callable[[], object],
        sink: ProgressSink,
    ) -> Check:
        """latency_under under load (qps= open-loop, clients=) or capacity_over."""
        from .checks import load

        device, label = self.target_device, item.name
        if request.marker.name == "capacity_over":
            return load.capacity_check(request, workload, device=device, sink=sink, label=label)
        judge = load.open_loop_check if request["qps"] else load.clients_check
        percentile = self.settings.config.budgets.latency_percentile
        return judge(
            request, workload, default_percentile=percentile, device=device, sink=sink, label=label
        )

    def _paired(self, item: pytest.Function, workload: Callable[[], object], check: Check) -> Check:
        """*check* with the paired A/B timing against the release's model, where one exists.

        Still inside the timing lock: the pair is timed right after the check, on the
        same cores (see :mod:`.checks.duet`).
        """
        from .checks.duet import with_duet
        from .checks.models import ModelSet

        release = self._release_models
        models = item.funcargs.get("deploy_models")
        if release is None or not isinstance(models, ModelSet):
            return check
        plan = release.plan(models, _models_run_by(item, self.settings.config))
        return with_duet(check, workload, plan, self.target_device)

    @functools.cached_property
    def _release_models(self) -> ReleaseModels | None:
        """The saved baseline's model files, loaded once; None without a readable one.

        A baseline that cannot be read is reported by the verdict (``baseline`` check);
        here it only means there is nothing to pair with.
        """
        path = self.settings.baseline
        if path is None or not path.is_file():
            return None
        from .verdict.baseline import BaselineError, load_baseline
        from .verdict.release_models import ReleaseModels

        try:
            baseline = load_baseline(path)
        except (BaselineError, OSError):
            return None
        return ReleaseModels(baseline, self.settings.project_dir, self.settings.release_dir)

    def _scheduled(self, item: pytest.Item, measure: Callable[[], Check]) -> Check:
        """*measure* holding the host's timing lock: one timed check at a time per host.

        The lock is taken before the measurement's clock starts, so the wait is not in
        its figure; the check records the wait and how it was scheduled.
        """
        from .checks import metrics
        from .measure.hostlock import TimingLockTimeout

        try:
            with self.timing.hold(item.nodeid) as hold:
                check = measure()
        except TimingLockTimeout as exc:
            raise pytest.fail.Exception(str(exc), pytrace=False) from None
        scheduling = {
            metrics.TIMING_LOCK_KEY: hold.mode,
            metrics.LOCK_WAIT_KEY: hold.waited_s if hold.mode == "host" else None,
            metrics.TIMING_LOCK_NOTE_KEY: hold.note,
        }
        return replace(check, extra={**check.extra, **scheduling})

    def _stuck_handler(self, item: pytest.Item) -> Callable[[Check], None]:
        """What the watchdog calls when a hung call cannot be interrupted: the last word.

        Runs on the watchdog's thread while the test's thread is stuck in the call, so
        pytest cannot finish the session: the evidence is written here, with the hung
        check and the test failed (verdict False), then the process ends.  An xdist
        worker leaves the evidence to the controller, which counts its crashed test as
        failed.
        """

        def hung_beyond_recovery(check: Check) -> None:
            summary = f"{check.name}: {check.details}"
            _say_on_terminal(
                item.config, _hang_text(check.extra["hang"]["stack"], summary, item.nodeid)
            )
            if self.judges():
                ended = f"{item.nodeid} hung in a call that could not be interrupted"
                self.run.add_checks([replace(check, nodeid=item.nodeid)])
                self.run.add_test_outcome(item.nodeid, True, f"{summary} in {item.nodeid}")
                self.run.interrupt(ended)
                self.outcome = write_run_files(self.run.finish())
                self._settle_evidence(kept=True)
                verdict = self.outcome.verdict.release_candidate
                _say_on_terminal(
                    item.config, f"\nrelease_candidate: {verdict} (the session ended: {ended})\n"
                )
            os._exit(int(pytest.ExitCode.TESTS_FAILED))

        return hung_beyond_recovery

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        self._judge_fit(item)
        try:
            result = yield
            if memory.child_repeat() is None and isinstance(item, pytest.Function):
                self._after_body(item)
        finally:
            # Also when the body raised; after the measuring children ran, so that their
            # attempts (appended to the children's log) count too.
            self._record_offline(item)
        recorder = item.stash[RECORDER_KEY]
        missed = [c for c in recorder.checks if c.blocks_release]
        if missed:
            pytest.fail("\n".join(log_text(describe_failure(c)) for c in missed), pytrace=False)
        return result

    def _record_offline(self, item: pytest.Item) -> None:
        run = item.stash.get(OFFLINE_KEY, None)
        if run is None:
            return
        from .checks.offline import offline_check
        from .measure.netguard import read_child_attempts

        attempts = [*run.log.attempts, *read_child_attempts(run.children_log)]
        attempts += _service_attempts(item)
        item.stash[RECORDER_KEY].add(offline_check(run.request, attempts))

    def _after_body(self, item: pytest.Function) -> None:
        """Checks that need the body to have run once: benchmark, memory, cold start."""
        recorder = item.stash[RECORDER_KEY]
        config = self.settings.config
        benchmark = item.funcargs.get("benchmark")
        if benchmark is not None and item.get_closest_marker("latency_under"):
            recorder.add(self._benchmark_check(item, benchmark))
        if item.get_closest_marker("memory_under"):
            recorder.add(self._scheduled(item, lambda: self._memory_check(item)))
        if item.get_closest_marker("cold_start_under"):
            request = budget_request(item, "cold_start_under", config)
            recorder.add(self._scheduled(item, lambda: self._cold_start_check(item, request)))
        if item.get_closest_marker("batching_window"):
            batching = budget_request(item, "batching_window", config)
            recorder.add(self._scheduled(item, lambda: self._batching_check(item, batching)))

    def _benchmark_check(self, item: pytest.Function, benchmark: Any) -> Check:
        request = budget_request(item, "latency_under", self.settings.config)
        stats = getattr(benchmark, "stats", None)
        samples = list(getattr(getattr(stats, "stats", None), "data", None) or [])
        if not samples:
            return budgetchecks.unsampled_benchmark_check(request, xdist=_xdist_active(item))
        # pytest-benchmark keeps how the fixture was called only in a private field.
        mode = str(getattr(benchmark, "_mode", "") or "")
        return budgetchecks.benchmark_check(
            request,
            samples,
            default_percentile=self.settings.config.budgets.latency_percentile,
            device=self.target_device,
            pedantic=mode.startswith("benchmark.pedantic"),
        )

    def _memory_check(self, item: pytest.Function) -> Check:
        config = self.settings.config
        request = budget_request(item, "memory_under", config)
        if _uses_services(item):
            return self._service_memory_check(item, request)
        try:
            with self.emulation.group() as group:
                result = self._measure_memory(item, request, group)
        except memory.OomKilled as exc:
            from .checks.emulation import oom_check

            return oom_check(request, exc, _models_used(item, request, config))
        except (memory.MemoryMeasurementError, GroupError) as exc:
            message = f"memory_under: {exc}"
        else:
            check = budgetchecks.memory_check(
                request,
                result,
                device=self.target_device,
                models=_models_used(item, request, config),
            )
            # Where the limits could not be enforced, the run's notes say so once, and why.
            return replace(check, notes=(*check.notes, *filter(None, [self.emulation.note])))
        pytest.fail(message, pytrace=False)

    def _measure_memory(
        self, item: pytest.Function, request: BudgetRequest, group: LimitedGroup | None
    ) -> memory.MemoryResult:
        """The memory child run, in *group* where the target's limits are enforced."""
        return memory.measure_in_child(
            item.nodeid,
            self._child_args(item.config),
            cwd=item.config.rootpath,
            repeat=request["repeat"],
            timeout_s=request["timeout_s"],
            accelerator_gpu=gpu_of(self.target_device),
            group=group,
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
        # The parent holds the timing lock while its child measures: the child takes none.
        return [*args, "--deploy-timing-lock", "off", "--deploy-no-summary"]

    def _service_memory_check(self, item: pytest.Function, request: BudgetRequest) -> Check:
        """memory_under on a service test: the services' tree RSS while the body runs here."""
        from .checks.services import NoServiceRunning, service_memory_check

        services = item.funcargs["deploy_services"]
        default = None
        if "deploy_service" in item.fixturenames:
            default = self.settings.config.resolve_default_service()
        try:
            return service_memory_check(
                request,
                _workload(item),
                services,  # type: ignore[arg-type]
                default=default,
                device=self.target_device,
            )
        except NoServiceRunning as exc:
            raise pytest.fail.Exception(str(exc), pytrace=False) from None

    def _service_rss(self, item: pytest.Function) -> ServiceRss | None:
        """A soak on a service test follows the services' memory, not this process's."""
        if not _uses_services(item):
            return None
        from .checks.services import ServiceRss

        default = None
        if "deploy_service" in item.fixturenames:
            default = self.settings.config.resolve_default_service()
        return ServiceRss(item.funcargs["deploy_services"], default)  # type: ignore[arg-type]

    def _service_cold_start_check(self, request: BudgetRequest) -> Check:
        from .checks.services import service_cold_start_check
        from .measure.service import ServiceError

        spec = self.settings.config.services[request["service"]]
        try:
            return service_cold_start_check(
                request, spec, project_dir=self.settings.project_dir, device=self.target_device
            )
        except ServiceError as exc:
            raise pytest.fail.Exception(f"cold_start_under: {exc}", pytrace=False) from None

    def _cold_start_check(self, item: pytest.Function, request: BudgetRequest) -> Check:
        from .measure.coldstart import ColdStartError, measure_cold_start
        from .measure.runtime import SessionSettings

        if request.options.get("service"):
            return self._service_cold_start_check(request)
        config = self.settings.config
        spec = config.model(request["model"] or config.resolve_default_model())
        try:
            with self.emulation.group() as group:
                result = measure_cold_start(
                    spec.path,
                    SessionSettings.for_device(self.target_device),
                    spec.input_shapes,
                    runs=request["runs"],
                    timeout_s=request["timeout_s"],
                    name=spec.name,
                    drop_cache=request["drop_cache"],
                    group=group,
                )
        except (ColdStartError, GroupError) as exc:
            message = f"cold_start_under: {exc}"
        else:
            return budgetchecks.cold_start_check(request, result, device=self.target_device)
        pytest.fail(message, pytrace=False)

    def _batching_check(self, item: pytest.Function, request: BudgetRequest) -> Check:
        """The model's example inputs at batch n behind the batcher, per setting."""
        from .checks import load
        from .checks.models import ModelSet

        config = self.settings.config
        name = request["model"] or config.resolve_default_model()
        models = item.funcargs.get("deploy_models")
        if not isinstance(models, ModelSet):
            models = ModelSet(config, self.target_device)
        model = models[name]
        largest = max(request["max_batch"])
        try:
            for size in range(1, largest + 1):  # every feed pool built before the clock runs
                model.run(model.example_inputs(batch=size))
        except Exception as exc:
            pytest.fail(f"batching_window: model {name!r} at batch {size}: {exc}", pytrace=False)

        def run_batch(size: int) -> object:
            return model.run(model.example_inputs(batch=size))

        return load.batching_check(
            request,
            run_batch,
            model=name,
            device=self.target_device,
            sink=self.progress_sink(item.config, item.nodeid),
            label=item.name,
        )

    def _judge_fit(self, item: pytest.Item) -> Check | None:
        callspec = getattr(item, "callspec", None)
        if callspec is None or "deploy_device" not in callspec.params:
            return None
        config = self.settings.config
        request = item_markers(item, config, "device_fit").fit
        if request is None:
            return None
        device: Device = callspec.params["deploy_device"]
        check = judge_fit(config, device, request, self.settings.target)
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
            properties = junit_properties(new)
            item.user_properties.extend(properties)
            report.user_properties = [*report.user_properties, *properties]
        if new or _is_deploy_test(item):
            report.deploycheck_test = True  # type: ignore[attr-defined]
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        raw = getattr(report, "deploycheck_checks", None)
        if raw:
            where = getattr(getattr(report, "node", None), "deploycheck_where", None)
            self.run.add_checks([_measured_on(Check.from_dict(data), where) for data in raw])
        crash = getattr(report, "deploycheck_crash", None)
        if crash and report.failed:
            self.run.add_crash(report.nodeid, crash)
        elif getattr(report, "deploycheck_test", False):
            self.run.add_test_outcome(report.nodeid, report.failed, _failure_reason(report))

    @pytest.hookimpl(tryfirst=True)  # before junitxml's, which writes the file
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        # Runs before the terminal summary; only the controller judges and writes.
        self.signals.restore()
        if not self.judges():
            return
        if not (self.run.has_activity or self.settings.target):
            self._settle_evidence(kept=False)
            return
        self._note_how_it_ended(session)
        test_checks = {(c.nodeid, c.name) for c in self.run.checks}
        outcome = self.run.finish()
        # A target run with no deploy test has nothing to keep: no evidence is written,
        # and the evidence set aside at start goes back where it was.
        copies = self._report_copies()
        self.outcome = write_run_files(outcome, copies) if self.run.has_activity else outcome
        self._settle_evidence(kept=self.run.has_activity)
        # A False verdict for a target fails the run once deploy tests ran (or the target
        # was asked for explicitly): CI must not merge on a missed budget or a regression.
        explicit = self.settings.target_source in ("--deploy-target", "DEPLOYCHECK_TARGET")
        judged = self.settings.target is not None and (self.run.has_activity or explicit)
        if judged and not self.outcome.verdict.release_candidate and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        _record_junit(session.config, self.outcome, test_checks, judged=judged)

    def _report_copies(self) -> dict[str, Path]:
        """report.json and report.html where ``--deploy-json`` / ``--deploy-html`` want them."""
        from .config.evidence_names import HTML_FILE, REPORT_FILE

        wanted = {REPORT_FILE: self.settings.json_report, HTML_FILE: self.settings.html_report}
        return {name: path for name, path in wanted.items() if path is not None}

    def _note_how_it_ended(self, session: pytest.Session) -> None:
        """Tell the run whether it was interrupted, or stopped before every deploy test."""
        status = session.exitstatus
        if status == pytest.ExitCode.INTERRUPTED or self.signals.received:
            self.run.interrupt(self.signals.received or self.interrupted_by or "KeyboardInterrupt")
            return
        if status == pytest.ExitCode.INTERNAL_ERROR:
            self.run.interrupt("pytest internal error")
            return
        if session.config.getoption("collectonly"):
            return
        # Collected here (not under xdist, whose controller collects nothing) but never
        # reported: -x, --maxfail or --sw stopped the session before them.
        unrun = [
            item.nodeid
            for item in getattr(session, "items", ())
            if item.nodeid not in self.run.deploy_tests and _is_deploy_test(item)
        ]
        if unrun:
            why = session.shouldfail or session.shouldstop
            stopped = f" ({why})" if isinstance(why, str) else ""
            self.run.leave_out(
                f"stopped early{stopped}: {len(unrun)} collected deploy test(s) did not run"
            )

    def _settle_evidence(self, *, kept: bool) -> None:
        if self.evidence_start is None:
            return
        from .report.evidence_set import settle_evidence_set

        settle_evidence_set(self.evidence_start, kept=kept)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.outcome is None or not self.show_summary:
            return
        write_readiness_section(
            terminalreporter, self.outcome, deploy_tests_ran=self.run.has_activity
        )


DESELECTED_OUTPUT = "deploycheck_deselected"  # the deploy tests a worker deselected


class XdistHooks:
    """The controller's side of xdist: crashed workers and what workers deselected.

    Registered only when xdist is present (as pytest-randomly does), so that its hook
    names are known.
    """

    def __init__(self, deploy: DeploySession) -> None:
        self.deploy = deploy

    def pytest_report_header(self) -> str | None:
        return self.deploy.device_note

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        device = self.deploy.target_device
        if device is not None and self.deploy.device_note:
            _probe_device(node, device, self.deploy.settings)

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem: str, report: pytest.TestReport, sched: Any) -> None:
        """A test whose worker crashed is a failed deploy test, whatever the test was.

        The controller collects nothing, so it cannot tell a deploy test from another;
        a crash is never a pass, and it takes the checks of the test with it.
        """
        worker = getattr(getattr(report, "node", None), "gateway", None)
        name = f"worker {worker.id!r}" if worker is not None else "its xdist worker"
        report.deploycheck_crash = f"{name} crashed while running it"  # type: ignore[attr-defined]

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        output = getattr(node, "workeroutput", None) or {}
        self.deploy.run.add_deselected(list(output.get(DESELECTED_OUTPUT, ())))


def open_session(config: pytest.Config, settings: Settings) -> DeploySession:
    """The run's session, its hooks registered; a fleet's controller gets a FleetSession.

    Returned: the session the fixtures and collection read (a fleet's first target).
    """
    from .checks.environment import MEASURED_ON

    MEASURED_ON.clear()  # a run's own devices only, also for in-process pytester runs
    fleet = settings.fleet and not hasattr(config, "workerinput")
    if fleet and memory.child_repeat() is None:
        dispatcher = FleetSession(config, settings)
        config.pluginmanager.register(dispatcher, "deploycheck-session")
        return dispatcher.first
    session = DeploySession(config, settings)
    config.pluginmanager.register(session, "deploycheck-session")
    return session


class FleetSession:
    """The controller of a fleet run: one readiness run per target, each on its device.

    xdist starts one gateway per device, named after it, and ``--dist each`` runs the
    whole collection on every one (each worker as its own target, sent in
    ``workerinput``); every report goes to the run of its worker's target, and each
    target gets its own evidence directory, readiness section and verdict.
    """

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        base = settings.evidence_dir.parent
        self.members = {
            name: DeploySession(
                config,
                replace(settings, target=name, evidence_dir=base / name, fleet=()),
                member=True,
            )
            for name in settings.fleet
        }
        self.first = next(iter(self.members.values()))
        self.note = _run_fleet(config, [settings.config.device(n) for n in settings.fleet])
        self.crashes = XdistHooks(self.first)

    def _member_of(self, node: object) -> list[DeploySession]:
        name = getattr(getattr(node, "gateway", None), "id", None)
        member = self.members.get(name) if isinstance(name, str) else None
        return [member] if member is not None else list(self.members.values())

    def pytest_report_header(self) -> str | None:
        return self.note

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        for member in self.members.values():
            member.pytest_sessionstart(session)

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        for member in self.members.values():
            member.pytest_keyboard_interrupt(excinfo)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        for member in self.members.values():
            member.pytest_unconfigure(config)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for member in self._member_of(getattr(report, "node", None)):
            member.pytest_runtest_logreport(report)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Each target judged on its own; any False target fails the run."""
        for member in self.members.values():
            member.pytest_sessionfinish(session)
        line = self.overall_line()
        summary = _step_summary_path()
        if line and summary is not None:
            with contextlib.suppress(OSError), summary.open("a", encoding="utf-8") as handle:
                handle.write(f"\n**{line}**\n")

    def overall_line(self) -> str | None:
        verdicts = {
            name: member.outcome.verdict.release_candidate
            for name, member in self.members.items()
            if member.outcome is not None
        }
        if not verdicts:
            return None
        each = ", ".join(f"{name}: {verdict}" for name, verdict in verdicts.items())
        return f"fleet release_candidate: {all(verdicts.values())} ({each})"

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        for member in self.members.values():
            member.pytest_terminal_summary(terminalreporter)
        line = self.overall_line()
        if line and self.first.show_summary:
            terminalreporter.write_sep("=", "deploy readiness: fleet")
            terminalreporter.write_line(line)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """Name the worker's target, then probe its device (models' SHA-256, provenance)."""
        name = node.gateway.id
        member = self.members.get(name)
        if member is None or member.target_device is None:
            return
        node.workerinput["deploycheck_target"] = name
        _probe_device(node, member.target_device, member.settings)

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem: str, report: pytest.TestReport, sched: Any) -> None:
        self.crashes.pytest_handlecrashitem(crashitem, report, sched)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        output = getattr(node, "workeroutput", None) or {}
        for member in self._member_of(node):
            member.run.add_deselected(list(output.get(DESELECTED_OUTPUT, ())))


class InterruptSignals:
    """SIGTERM, like Ctrl-C, raises KeyboardInterrupt in the main thread during the run.

    pytest turns a KeyboardInterrupt into an interrupted session that still finishes
    (the verdict, the evidence, the summary); by default SIGTERM ends the process on
    the spot.  SIGINT gets the same handler, which also names the signal.  Installed
    only over the default handlers, only in the main thread, and restored at the end.
    """

    def __init__(self) -> None:
        self.saved: dict[signal.Signals, Any] = {}
        self.received: str | None = None

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        defaults = {signal.SIGTERM: signal.SIG_DFL, signal.SIGINT: signal.default_int_handler}
        for number, default in defaults.items():
            if signal.getsignal(number) is default:
                self.saved[number] = signal.signal(number, self._interrupt)

    def restore(self) -> None:
        for number, previous in self.saved.items():
            if signal.getsignal(number) == self._interrupt:
                signal.signal(number, previous)
        self.saved.clear()

    def _interrupt(self, signum: int, frame: FrameType | None) -> None:
        self.received = signal.Signals(signum).name
        raise KeyboardInterrupt(f"{self.received} received")


@dataclass
class OfflineRun:
    """An offline test in progress: what it asked for and where attempts are logged."""

    request: OfflineRequest
    log: AttemptLog
    children_log: Path


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Generator[None, None, None]:
    """Set environment variables for the block (children inherit them), then restore."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def _models_run_by(item: pytest.Item, config: DeployConfig) -> list[str]:
    """The configured models a test runs: its model fixtures and its markers' model=."""
    from .config.schema import ConfigError

    names = set(getattr(item, "fixturenames", ()))
    models: list[str] = []
    if _requests_every_model(item):
        models += list(config.models)
    cold_start = item.get_closest_marker("cold_start_under")
    default_cold_start = cold_start is not None and not (
        cold_start.kwargs.get("model") or cold_start.kwargs.get("service")
    )
    if "deploy_model" in names or default_cold_start:
        with contextlib.suppress(ConfigError):
            models.append(config.resolve_default_model())
    for marker_name in ("memory_under", "cold_start_under"):
        marker = item.get_closest_marker(marker_name)
        model = marker.kwargs.get("model") if marker is not None else None
        if isinstance(model, str):
            models.append(model)
    return [m for m in dict.fromkeys(models) if m in config.models]


def _requests_every_model(item: pytest.Item) -> bool:
    """Whether the test, or a fixture other than deploy_model, asks for deploy_models.

    ``fixturenames`` is the whole closure, and deploy_model itself depends on
    deploy_models: a test of the default model alone must not count every model.
    """
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return "deploy_models" in getattr(item, "fixturenames", ())
    if "deploy_models" in info.argnames:
        return True
    return any(
        "deploy_models" in definition.argnames
        for name, definitions in info.name2fixturedefs.items()
        if name not in ("deploy_model", "deploy_model_loader")
        for definition in definitions
    )


def _service_attempts(item: pytest.Item) -> list[Any]:
    """The blocked attempts of the ``offline`` services a test talks to, since they started.

    A service started under the block (``offline = true``) logs what it tried; an offline
    test that uses services judges theirs with its own, so a service that phones home
    fails the test that proves it serves offline.
    """
    services = getattr(item, "funcargs", {}).get("deploy_services")
    running = getattr(services, "running", None)
    if running is None:
        return []
    return [attempt for service in running().values() for attempt in service.network_attempts()]


def _last_failed(config: pytest.Config) -> bool:
    """Whether pytest's cache holds failures for --lf to select (it runs all without)."""
    cache = getattr(config, "cache", None)
    return bool(cache is not None and cache.get("cache/lastfailed", {}))


def _step_summary_path() -> Path | None:
    """GitHub Actions' job summary file, where the readiness table is appended."""
    value = os.environ.get("GITHUB_STEP_SUMMARY")
    return Path(value) if value else None


def junit_properties(checks: list[Check]) -> list[tuple[str, object]]:
    """Each check's figures as JUnit XML properties (``--junitxml``).

    Names and text values are made XML-safe here: pytest escapes ``&<>`` but writes a
    property's name as it is, and a NUL or an ESC in it leaves junit.xml unparseable.
    """
    properties: list[tuple[str, object]] = []
    for check in checks:
        prefix = f"deploycheck.{check.name}"
        properties += [
            (f"{prefix}.status", check.status),
            (f"{prefix}.value", check.value),
            (f"{prefix}.unit", check.unit),
            (f"{prefix}.budget", check.budget),
            (f"{prefix}.provenance", check.provenance),
        ]
    return [
        (xml_text(name), xml_text(value) if isinstance(value, str) else value)
        for name, value in properties
        if value not in (None, "")
    ]


def _record_junit(
    config: pytest.Config,
    outcome: RunOutcome,
    test_checks: set[tuple[str, str]],
    *,
    judged: bool,
) -> None:
    """The verdict in ``--junitxml``: suite properties, and a test case per failing gate.

    pytest offers no public handle on its JUnit writer outside a test (the
    ``record_testsuite_property`` fixture reaches it per test), so it is found among
    the registered plugins by the method that fixture calls; the gate cases go
    through the writer's own report hook, so ``failures=`` counts them, while the
    terminal's counts (and ``assert_outcomes``) stay the tests'.
    """
    writer = _junit_writer(config)
    if writer is None:
        return
    from .report.junit import gate_cases, session_checks, suite_properties

    # The run-wide checks' figures (a rollback's too, which never fails) are suite
    # properties, named as a test's checks are: deploycheck.<check>.status, ...
    run_wide = junit_properties(session_checks(outcome, test_checks))
    for name, value in [*suite_properties(outcome), *run_wide]:
        writer.add_global_property(name, value)
    for case in gate_cases(outcome, test_checks, judged=judged):
        for when in ("call", "teardown"):
            failed = case.failed and when == "call"
            report = pytest.TestReport(
                case.nodeid,
                ("deploycheck", None, case.name),
                {},
                "failed" if failed else "passed",
                case.text if failed else None,
                when,
            )
            writer.pytest_runtest_logreport(report)


def _junit_writer(config: pytest.Config) -> Any:
    """pytest's junitxml plugin object of this run (the controller's), or None."""
    for plugin in config.pluginmanager.get_plugins():
        if callable(getattr(plugin, "add_global_property", None)) and callable(
            getattr(plugin, "pytest_runtest_logreport", None)
        ):
            return plugin
    return None


def _section_text(checks: list[Check]) -> str:
    """The report section of a test's checks, one line each, control characters shown."""
    return "\n".join(
        log_text(
            f"{c.name}: {c.status} value={c.value} budget={c.budget} ({c.provenance})"
            + (f" {c.details}" if c.details else "")
        )
        for c in checks
    )


def _failure_reason(report: pytest.TestReport) -> str:
    """The last line of a failure, which is where pytest puts the reason."""
    if not report.failed:
        return ""
    lines = [line.strip() for line in report.longreprtext.splitlines() if line.strip()]
    reason = lines[-1] if lines else ""
    return f"{reason} (in {report.when})" if report.when != "call" else reason


def _is_model_error(error: BaseException) -> bool:
    runtime = sys.modules.get("pytest_deploycheck.measure.runtime")  # loaded only once a model is
    if runtime is None:
        return False
    errors = (runtime.ModelLoadError, runtime.ModelInputError, runtime.ModelRunError)
    return isinstance(error, errors)


def _hang_text(stack: str, summary: str, nodeid: str) -> str:
    """The failure of a hung measurement: the stack where it hung, then the reason line."""
    return f"stack of the hung call (most recent call last):\n{stack}{summary} in {nodeid}"


def _say_on_terminal(config: pytest.Config, text: str) -> None:
    """Write past pytest's output capture, which a process about to end never flushes."""
    capture = config.pluginmanager.get_plugin("capturemanager")
    with contextlib.suppress(Exception):  # the last words must not fail the exit
        if capture is not None:
            capture.suspend_global_capture(in_=True)
    sys.stderr.write(text)
    sys.stderr.flush()


def _emulation(
    config: pytest.Config, settings: Settings, device: Device | None, remote: str | None
) -> Emulation:
    """How this process emulates the target (``--deploy-emulate``); one line where it cannot.

    Nothing is probed in a measuring child (it runs inside the group already) nor on a
    controller that sends the run to a real device (the device's own limits apply).
    """
    from .measure import cgroups, pinning

    mode = settings.emulate
    if mode == "off":
        before = pinning.set_pinning_off(True)

        def restore() -> None:
            pinning.set_pinning_off(before)

        config.add_cleanup(restore)
    if device is None or remote or memory.child_repeat() is not None:
        return Emulation(mode)
    limits = cgroups.TargetLimits(device.memory_mb, cgroups.cpus_for(device.cpus))
    try:
        return cgroups.resolve_emulation(mode, limits)
    except cgroups.EmulationUnavailable as exc:
        raise pytest.UsageError(f"{exc} ({settings.emulate_source})") from None


def _run_on_device(config: pytest.Config, device: Device | None) -> str | None:
    """Send the run to *device* through xdist when its row has a host; the line saying so.

    Called from pytest_configure, before xdist's own (trylast) starts its DSession, and
    after its pytest_cmdline_main turned -n into --tx specs.
    """
    if device is None or not device.host:
        return None
    if not config.pluginmanager.hasplugin("xdist"):
        raise pytest.UsageError(
            f"device {device.name!r} has host = {device.host!r}: running the tests there"
            " needs pytest-xdist; install it (pip install pytest-xdist)"
        )
    if config.getoption("collectonly"):
        return None
    from .checks.remote import plan_gateways

    option = config.option
    plan = plan_gateways(
        device, user_tx=list(option.tx or ()), numprocesses=option.numprocesses, dist=option.dist
    )
    option.tx, option.dist = plan.tx, plan.dist
    return plan.note


def _run_fleet(config: pytest.Config, devices: list[Device]) -> str | None:
    """One gateway per device of a fleet run, named after it; the header line."""
    names = ", ".join(device.name for device in devices)
    if not config.pluginmanager.hasplugin("xdist"):
        raise pytest.UsageError(
            f"--deploy-target {names}: running the tests on the devices needs"
            " pytest-xdist; install it (pip install pytest-xdist)"
        )
    if config.getoption("collectonly"):
        return None
    from .checks.remote import FleetError, plan_fleet

    option = config.option
    try:
        plan = plan_fleet(devices, user_tx=list(option.tx or ()), numprocesses=option.numprocesses)
    except FleetError as exc:
        raise pytest.UsageError(str(exc)) from None
    option.tx, option.dist = plan.tx, plan.dist
    return plan.note


def _probe_device(node: Any, device: Device, settings: Settings) -> None:
    """Probe *device* before its worker starts: where it is, and its models' SHA-256.

    Models that differ from the controller's end the run here, in one line: their
    figures would be judged as this project's models.
    """
    from .checks import remote
    from .checks.environment import MEASURED_ON

    expected = remote.model_hashes(settings.config, node.config.invocation_params.dir)
    found = remote.probe(node.gateway, list(expected))
    problem = remote.mismatch(device.name, expected, found)
    if problem:
        pytest.exit(problem, returncode=pytest.ExitCode.USAGE_ERROR)
    where = remote.provenance(remote.spec_text(node.gateway.spec), found)
    node.deploycheck_where = where
    MEASURED_ON[device.name] = where


def _measured_on(check: Check, where: dict[str, Any] | None) -> Check:
    """*check* with where its figure was measured, when a device measured it."""
    if where is None:
        return check
    from .checks.remote import MEASURED_ON_KEY

    return replace(check, extra={**check.extra, MEASURED_ON_KEY: where})


def _xdist_active(item: pytest.Item) -> bool:
    """xdist as pytest-benchmark sees it, which then disables itself: -n/--dist or a worker."""
    dist = item.config.getoption("dist", "no")
    return dist not in (None, "no") or bool(os.environ.get("PYTEST_XDIST_WORKER"))


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


def _uses_services(item: pytest.Item) -> bool:
    """Whether the test takes deploy_service or deploy_services (its closure counts)."""
    names = getattr(item, "fixturenames", ())
    return "deploy_service" in names or "deploy_services" in names


def _is_deploy_test(item: pytest.Item) -> bool:
    if any(True for name in DEPLOY_MARKERS for _ in item.iter_markers(name)):
        return True
    return any(name in DEPLOY_FIXTURES for name in getattr(item, "fixturenames", ()))


# --------------------------------------------------------------------------- fixtures
