"""Starting the user's own HTTP service under test, and tearing it down completely.

A service is a child process in a process group of its own, told a free loopback port
through the ``{port}`` placeholder, and judged ready when its ``ready`` path answers
2xx.  What can go wrong at start is worded for the person who wrote the command, as
one line that ends with the service's last stderr lines: the command cannot be run,
it exits before it is ready, it is never ready, or it listens somewhere else.  A port
that another process took between our choice and the service's bind is not the
user's fault, so it is retried on another port.

Output goes to unlinked temporary files, never pipes: a chatty service would block
on a full pipe nobody reads.  Teardown signals the whole group (and any descendant
that left it), so no grandchild keeps memory or a port after the test.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, NoReturn

import psutil

from ..config.escape import log_text
from ..config.services import PORT_PLACEHOLDER, PYTHON_PLACEHOLDER, ServiceSpec, toml_key
from .children import kill_group, popen_group
from .http import HttpClient, HttpError

if TYPE_CHECKING:
    from .netguard import Attempt

LOOPBACK = "127.0.0.1"
OFFLINE_SITE = Path(__file__).with_name("_offline_site")
PORT_ATTEMPTS = 3
POLL_FIRST_S = 0.005  # short first: cold start is measured at the first 2xx answer
POLL_MAX_S = 0.05
READY_REQUEST_TIMEOUT_S = 1.0
LISTEN_GRACE_S = 1.0  # listening elsewhere this long (and not on the port) is an error
STDERR_TAIL_LINES = 5
TAIL_LINE_CHARS = 200
TAIL_BYTES = 64 * 1024
GONE_WAIT_S = 2.0  # for killed processes to vanish
_PORT_TAKEN = re.compile(r"address already in use|eaddrinuse|errno 98\b|errno 48\b", re.I)

Clock = Callable[[], float]
PortFinder = Callable[[], int]
Sleep = Callable[[float], None]
Spawn = Callable[..., "subprocess.Popen[Any]"]  # popen_group's signature


class ServiceError(Exception):
    """A service that could not be started or made ready: one line, with its stderr tail."""


class _PortTaken(Exception):
    """The service could not bind its port (someone took it meanwhile): try another."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the kernel's pick; it may be taken before use)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


def with_port(text: str, port: int) -> str:
    """*text* with ``{port}`` and ``{python}`` replaced; other braces are left alone.

    ``{python}`` is the interpreter pytest runs under, so that a Python service starts
    in the same virtualenv as the tests without a path written into the config.
    """
    return text.replace(PORT_PLACEHOLDER, str(port)).replace(PYTHON_PLACEHOLDER, sys.executable)


class _Output:
    """A child's stdout or stderr in an unlinked file, readable while the child writes."""

    def __init__(self) -> None:
        # Closed in close(), by the service's stop() or a failed start.
        self.file: IO[bytes] | None = tempfile.TemporaryFile()  # noqa: SIM115
        self._final = b""

    def tail_bytes(self) -> bytes:
        if self.file is None:
            return self._final
        fd = self.file.fileno()
        size = os.fstat(fd).st_size
        start = max(0, size - TAIL_BYTES)
        # pread leaves the offset the child shares with us untouched.
        return os.pread(fd, size - start, start)

    def tail(self, lines: int) -> list[str]:
        text = self.tail_bytes().decode("utf-8", errors="replace")
        kept = [line.strip() for line in text.splitlines() if line.strip()]
        return kept[-lines:] if lines > 0 else []

    def close(self) -> None:
        if self.file is not None:
            self._final = self.tail_bytes()
            self.file.close()
            self.file = None


class RunningService:
    """A started, ready service: its URL, a client for it, its process tree and cold start."""

    def __init__(
        self,
        spec: ServiceSpec,
        *,
        port: int,
        command: tuple[str, ...],
        process: subprocess.Popen[bytes],
        outputs: tuple[_Output, _Output],
        client: HttpClient,
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.port = port
        self.command = command
        self.url = f"http://{LOOPBACK}:{port}"
        self.client = client
        self.pid = process.pid
        self.cold_start_ms = 0.0
        self._process = process
        self._stdout, self._stderr = outputs
        self._stopped = False
        # The blocked attempts of an ``offline`` service (see _offline_environment).
        self.network_log: Path | None = None

    @property
    def returncode(self) -> int | None:
        """The service's exit code once it has exited, else None."""
        return self._process.poll()

    def pids(self) -> list[int]:
        """The service's pid and every descendant's (what its memory is the sum of)."""
        return [proc.pid for proc in _tree(self.pid)]

    def rss_bytes(self) -> int:
        """The resident memory of the whole process tree: a worker pool counts too."""
        total = 0
        for proc in _tree(self.pid):
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
        return total

    def stderr_tail(self, n: int = STDERR_TAIL_LINES) -> list[str]:
        """The last *n* non-blank lines the service wrote to stderr."""
        return self._stderr.tail(n)

    def stdout_tail(self, n: int = STDERR_TAIL_LINES) -> list[str]:
        """The last *n* non-blank lines the service wrote to stdout."""
        return self._stdout.tail(n)

    def network_attempts(self) -> list[Attempt]:
        """What an ``offline`` service tried to reach beyond loopback and was refused."""
        if self.network_log is None or not self.network_log.exists():
            return []
        from .netguard import read_child_attempts

        return read_child_attempts(self.network_log)

    def stop(self) -> None:
        """SIGTERM to the group, ``stop_timeout_s`` to exit, then SIGKILL; safe to repeat."""
        if self._stopped:
            return
        self._stopped = True
        try:
            self.client.close()
            terminate_tree(self._process, self.spec.stop_timeout_s)
        finally:
            self._close_files()

    def abort(self) -> None:
        """SIGKILL the group at once (a start that failed has nothing to shut down cleanly)."""
        self._stopped = True
        self.client.close()
        descendants = _tree(self.pid)[1:]
        kill_group(self._process)
        _signal_each(descendants, signal.SIGKILL)  # those that left the group too
        self._close_files()

    def _close_files(self) -> None:
        """The captured output, and an offline service's attempt log (read by now)."""
        self._stdout.close()
        self._stderr.close()
        if self.network_log is not None:
            self.network_log.unlink(missing_ok=True)

    def __enter__(self) -> RunningService:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RunningService({self.name!r}, url={self.url!r}, pid={self.pid})"


# --------------------------------------------------------------------------- starting


def start_service(
    spec: ServiceSpec,
    *,
    project_dir: Path,
    clock: Clock = time.perf_counter,
    port_finder: PortFinder = free_port,
    sleep: Sleep = time.sleep,
    spawn: Spawn | None = None,
) -> RunningService:
    """Start *spec* on a free loopback port and return it once ``ready`` answers 2xx.

    ``cold_start_ms`` is process start to the first 2xx ready answer.  Raises
    :class:`ServiceError` (one line, with the stderr tail) when it cannot be started.
    *spawn* starts the process (``popen_group``'s signature): a limited cgroup's
    ``popen`` runs the service under the target's enforced limits.
    """
    cwd = _working_dir(spec, project_dir)
    taken: list[str] = []
    for _ in range(PORT_ATTEMPTS):
        port = port_finder()
        try:
            return _start_on(spec, port, cwd, clock, sleep, spawn)
        except _PortTaken as exc:
            taken.append(str(port))
            last = str(exc)
    raise ServiceError(
        _line(spec, f"its port was taken on each of {PORT_ATTEMPTS} tries ({', '.join(taken)})")
        + f"; {last}"
    )


def _working_dir(spec: ServiceSpec, project_dir: Path) -> Path:
    cwd = project_dir / spec.cwd if spec.cwd is not None else project_dir
    if not cwd.is_dir():
        raise ServiceError(_line(spec, f"cwd {str(cwd)!r} is not a directory"))
    return cwd


def _start_on(
    spec: ServiceSpec, port: int, cwd: Path, clock: Clock, sleep: Sleep, spawn: Spawn | None
) -> RunningService:
    service, started = _launch(spec, port, cwd, clock, spawn)
    try:
        service.cold_start_ms = _wait_ready(service, started, clock, sleep)
        _check_loopback_only(service)
    except BaseException:
        service.abort()
        raise
    return service


def _launch(
    spec: ServiceSpec, port: int, cwd: Path, clock: Clock, spawn: Spawn | None = None
) -> tuple[RunningService, float]:
    command = tuple(with_port(arg, port) for arg in spec.command)
    env = {**os.environ, **{key: with_port(value, port) for key, value in spec.env.items()}}
    env, network_log = _offline_environment(spec, env)
    outputs = (_Output(), _Output())
    client = HttpClient(f"http://{LOOPBACK}:{port}", timeout_s=READY_REQUEST_TIMEOUT_S)
    started = clock()
    try:
        process = (spawn or popen_group)(
            command,
            stdin=subprocess.DEVNULL,
            stdout=outputs[0].file,
            stderr=outputs[1].file,
            env=env,
            cwd=cwd,
        )
    except OSError as exc:
        for output in outputs:
            output.close()
        raise ServiceError(_line(spec, _cannot_run(command, exc))) from None
    running = RunningService(
        spec, port=port, command=command, process=process, outputs=outputs, client=client
    )
    running.network_log = network_log
    return running, started


def _offline_environment(
    spec: ServiceSpec, env: dict[str, str]
) -> tuple[dict[str, str], Path | None]:
    """For an ``offline`` service: the socket block's variables and a log of its attempts.

    A Python service picks the block up through the ``sitecustomize`` module in
    :data:`OFFLINE_SITE`, put first on its ``PYTHONPATH``: it installs the same audit
    hook the plugin's own children use, loopback allowed (the service must answer), and
    appends every blocked attempt to the log, which offline tests read.  A service that
    is not Python, or that brings its own ``sitecustomize``, is not blocked.
    """
    if not spec.offline:
        return env, None
    from .netguard import NetworkPolicy, child_environment

    handle, name = tempfile.mkstemp(prefix="deploycheck-service-net-", suffix=".jsonl")
    os.close(handle)
    log = Path(name)
    path = os.pathsep.join(p for p in (str(OFFLINE_SITE), env.get("PYTHONPATH", "")) if p)
    blocked = child_environment(NetworkPolicy(allow_loopback=True), log)
    return {**env, **blocked, "PYTHONPATH": path}, log


def _cannot_run(command: tuple[str, ...], exc: OSError) -> str:
    program = command[0]
    if isinstance(exc, FileNotFoundError):
        return f"cannot run {program!r}: no such program (not on PATH, or no such file)"
    if isinstance(exc, PermissionError):
        return f"cannot run {program!r}: permission denied (is it executable?)"
    return f"cannot run {program!r}: {exc.strerror or exc}"


def _wait_ready(service: RunningService, started: float, clock: Clock, sleep: Sleep) -> float:
    """Milliseconds from process start to the first 2xx ready answer; raises otherwise."""
    deadline = started + service.spec.startup_timeout_s
    watch = _ListenWatch(service.port)
    delay = POLL_FIRST_S
    last = "no answer yet"
    while True:
        _raise_if_exited(service)
        remaining = deadline - clock()
        if remaining <= 0:
            raise _not_ready(service, last, watch.elsewhere)
        answered, last = _ask_ready(service, min(READY_REQUEST_TIMEOUT_S, remaining))
        if answered:
            return (clock() - started) * 1000.0
        watch.look(service, clock())
        sleep(max(0.0, min(delay, deadline - clock())))
        delay = min(delay * 1.5, POLL_MAX_S)


def _ask_ready(service: RunningService, timeout_s: float) -> tuple[bool, str]:
    """(whether ``ready`` answered 2xx, what it answered otherwise)."""
    try:
        answer = service.client.get(service.spec.ready, timeout_s=timeout_s)
    except HttpError as exc:
        return False, str(exc).rsplit(": ", 1)[-1]
    return answer.ok, f"it answered {answer.status_code}"


def _raise_if_exited(service: RunningService) -> None:
    code = service.returncode
    if code is None:
        return
    tail = service.stderr_tail(STDERR_TAIL_LINES)
    if any(_PORT_TAKEN.search(line) for line in tail):
        raise _PortTaken(_stderr_part(tail))
    ready = f"GET {service.spec.ready} answered 2xx on {service.url}"
    raise _failure(service, f"{_exit_text(code)} before {ready}")


def _exit_text(code: int) -> str:
    if code >= 0:
        return f"exited with code {code}"
    try:
        return f"was killed by {signal.Signals(-code).name} (exit code {code})"
    except ValueError:
        return f"exited with code {code}"


def _not_ready(service: RunningService, last: str, elsewhere: list[str]) -> ServiceError:
    spec = service.spec
    what = (
        f"was not ready within {spec.startup_timeout_s:g} s (startup_timeout_s):"
        f" GET {spec.ready} on {service.url}: {last}"
    )
    if elsewhere:
        what += f"; it listens on {', '.join(elsewhere)}"
    return _failure(service, what)


class _ListenWatch:
    """Notices a service that listens, but not on its port, for longer than a grace time.

    A service may open another socket first (a metrics port, a worker's) and bind the
    given port a moment later, hence the grace rather than failing at first sight.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.elsewhere: list[str] = []
        self._since: float | None = None

    def look(self, service: RunningService, now: float) -> None:
        addresses = listening_addresses(service.pid)
        if not addresses or any(port == self.port for _, port in addresses):
            self._since, self.elsewhere = None, []
            return
        self.elsewhere = [_address(ip, port) for ip, port in addresses]
        self._since = now if self._since is None else self._since
        if now - self._since >= LISTEN_GRACE_S:
            where = f"listens on {', '.join(self.elsewhere)}, not {LOOPBACK}:{self.port}"
            raise _failure(service, f"{where} — bind to the {PORT_PLACEHOLDER} placeholder")


def _check_loopback_only(service: RunningService) -> None:
    """A ready service must not also listen beyond loopback: tests never open the host."""
    exposed = [
        _address(ip, port) for ip, port in listening_addresses(service.pid) if not _is_loopback(ip)
    ]
    if exposed:
        where = f"listens on {', '.join(exposed)}, not only {LOOPBACK}:{service.port}"
        raise _failure(service, f"{where} — bind to {LOOPBACK} (a service under test stays on it)")


def _is_loopback(ip: str) -> bool:
    try:
        address = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool(address.is_loopback or (mapped is not None and mapped.is_loopback))


def _address(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _line(spec: ServiceSpec, what: str) -> str:
    return log_text(f"service {toml_key(spec.name)}: {what}")


def _failure(service: RunningService, what: str) -> ServiceError:
    """The one-line error: the service, what went wrong, and its last stderr lines."""
    return ServiceError(f"{_line(service.spec, what)}; {_stderr_part(service.stderr_tail())}")


def _stderr_part(tail: list[str]) -> str:
    if not tail:
        return "stderr: (empty)"
    cut = [
        line if len(line) <= TAIL_LINE_CHARS else line[: TAIL_LINE_CHARS - 3] + "..."
        for line in tail
    ]
    return log_text("stderr: " + " | ".join(cut))


def command_text(command: Iterable[str]) -> str:
    """*command* as a shell would show it, for messages and run.log."""
    return log_text(shlex.join(list(command)))


# --------------------------------------------------------------------------- process tree


def _tree(pid: int) -> list[psutil.Process]:
    """*pid* and its descendants that are still alive (gone ones are skipped)."""
    try:
        leader = psutil.Process(pid)
        return [leader, *leader.children(recursive=True)]
    except psutil.Error:
        return []


def listening_addresses(pid: int) -> list[tuple[str, int]]:
    """(ip, port) of every TCP socket the process tree of *pid* listens on."""
    found: list[tuple[str, int]] = []
    for proc in _tree(pid):
        for conn in _connections(proc):
            if conn.status == psutil.CONN_LISTEN and conn.laddr:
                found.append((conn.laddr.ip, conn.laddr.port))
    return sorted(set(found))


def _connections(proc: psutil.Process) -> list[Any]:
    # net_connections since psutil 6; connections before (still present, deprecated).
    method = getattr(proc, "net_connections", None) or proc.connections
    try:
        return list(method(kind="tcp"))
    except psutil.Error:
        return []


def terminate_tree(process: subprocess.Popen[Any], timeout_s: float) -> None:
    """SIGTERM the group and every descendant, wait up to *timeout_s*, then SIGKILL them."""
    descendants = _tree(process.pid)[1:]
    _signal_group(process.pid, signal.SIGTERM)
    _signal_each(descendants, signal.SIGTERM)  # those that left the group too
    deadline = time.monotonic() + timeout_s
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout_s)
    _wait_gone(descendants, deadline)
    _signal_each(descendants, signal.SIGKILL)
    kill_group(process)
    _wait_gone(descendants, time.monotonic() + GONE_WAIT_S)


def _signal_group(pid: int, signum: int) -> None:
    killpg = getattr(os, "killpg", None)
    if killpg is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            killpg(pid, signum)


def _signal_each(procs: list[psutil.Process], signum: int) -> None:
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signum)


def _wait_gone(procs: list[psutil.Process], deadline: float) -> None:
    """Until every process has exited (a zombie nobody reaps counts as gone) or *deadline*."""
    while any(_alive(proc) for proc in procs) and time.monotonic() < deadline:
        time.sleep(0.01)


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


# --------------------------------------------------------------------------- the fixture's set


class ServiceSet(Mapping[str, RunningService]):
    """The configured services by name, each started on first access and kept running.

    What ``deploy_services`` is: ``services["api"]`` starts ``api`` once (per session,
    per xdist worker) and returns the same :class:`RunningService` afterwards.  A start
    that failed is remembered and raised again, so a broken service costs its start-up
    timeout once, not once per test.  *fail* turns a :class:`ServiceError`'s line into
    the caller's failure (the plugin's one-line test failure); by default it raises.
    ``touched`` holds the names looked up since it was last cleared: the services a
    test body used, whose memory a check then judges.
    """

    def __init__(
        self,
        specs: Mapping[str, ServiceSpec],
        *,
        project_dir: Path,
        fail: Callable[[str], NoReturn] | None = None,
        spawn: Spawn | None = None,
    ) -> None:
        self.specs = dict(specs)
        self._spawn = spawn
        self.project_dir = project_dir
        self.touched: dict[str, None] = {}
        self._fail = fail or _raise_service_error
        self._running: dict[str, RunningService] = {}
        self._failed: dict[str, str] = {}
        self._lock = threading.Lock()

    def __getitem__(self, name: str) -> RunningService:
        try:
            return self.get_running(name)
        except ServiceError as exc:
            self._fail(str(exc))

    def get_running(self, name: str) -> RunningService:
        """The started service *name*, or a :class:`ServiceError` (unknown, failed, exited)."""
        if name not in self.specs:
            raise ServiceError(unknown_service(name, self.specs))
        self.touched[name] = None
        with self._lock:
            if name in self._failed:
                raise ServiceError(self._failed[name])
            service = self._running.get(name)
            if service is None:
                service = self._start(name)
        _raise_if_gone(service)
        return service

    def _start(self, name: str) -> RunningService:
        try:
            service = start_service(
                self.specs[name], project_dir=self.project_dir, spawn=self._spawn
            )
        except ServiceError as exc:
            self._failed[name] = str(exc)
            raise
        self._running[name] = service
        return service

    def running(self) -> dict[str, RunningService]:
        """The services started so far and not stopped, by name."""
        return dict(self._running)

    def stop_all(self) -> None:
        """Stop every started service, each with its whole process group."""
        with self._lock:
            running, self._running = self._running, {}
        for service in running.values():
            service.stop()

    def __iter__(self) -> Iterator[str]:
        return iter(self.specs)

    def __len__(self) -> int:
        return len(self.specs)

    def __contains__(self, name: object) -> bool:
        return name in self.specs

    def __repr__(self) -> str:
        return f"ServiceSet({sorted(self.specs)!r}, running={sorted(self._running)!r})"


def _raise_service_error(message: str) -> NoReturn:
    raise ServiceError(message)


def _raise_if_gone(service: RunningService) -> None:
    """A service that exited during the session is an error, not a connection refused later."""
    code = service.returncode
    if code is not None:
        what = f"{_exit_text(code)} during the session (it was ready at {service.url})"
        raise _failure(service, what)


def unknown_service(name: object, specs: Mapping[str, ServiceSpec]) -> str:
    """``deploy_services['x']``: no such service, with the configured names (and a guess)."""
    import difflib  # only on the error path

    names = sorted(specs)
    shown = log_text(repr(name))
    if not names:
        return (
            f"deploy_services[{shown}]: no service is configured: add a"
            f' [tool.deploycheck.services.NAME] table with command = [..., "{PORT_PLACEHOLDER}"]'
        )
    close = difflib.get_close_matches(str(name), names, n=1) if isinstance(name, str) else []
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    listing = ", ".join(toml_key(n) for n in names)
    return log_text(f"deploy_services[{shown}]: no such service{hint}; configured: {listing}")
