"""A real service started on loopback: ready, reachable, measured, and torn down completely.

Each test starts tests/services/echo_service.py (standard library only) as the user's
service.  Every start is bounded by its startup_timeout_s and every teardown by its
stop_timeout_s, so no test can hang; nothing asserts a duration.
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import psutil
import pytest

from pytest_deploycheck.config.services import ServiceSpec
from pytest_deploycheck.measure import service as service_module
from pytest_deploycheck.measure.service import (
    PORT_ATTEMPTS,
    RunningService,
    ServiceError,
    free_port,
    start_service,
)

ECHO = Path(__file__).resolve().parent / "services" / "echo_service.py"
STARTUP_S = 60.0  # generous: a busy 2-core host under -n auto starts Python slowly
GONE_S = 10.0


def echo_spec(*options: str, **keys: object) -> ServiceSpec:
    fields: dict[str, object] = {"startup_timeout_s": STARTUP_S, **keys}
    command = (sys.executable, str(ECHO), "--port", "{port}", *options)
    return ServiceSpec(name="echo", command=command, **fields)  # type: ignore[arg-type]


def start(spec: ServiceSpec, tmp_path: Path, **options: object) -> RunningService:
    return start_service(spec, project_dir=tmp_path, **options)  # type: ignore[arg-type]


def failure(spec: ServiceSpec, tmp_path: Path, **options: object) -> str:
    with pytest.raises(ServiceError) as caught:
        start(spec, tmp_path, **options)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("service echo: ")
    return message


def gone(pid: int) -> bool:
    """Whether *pid* has ended (a zombie that init has yet to reap counts as ended)."""
    deadline = time.monotonic() + GONE_S
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def echo(tmp_path: Path) -> Iterator[RunningService]:
    with start(echo_spec("--spawn-child"), tmp_path) as running:
        yield running


def test_the_service_is_ready_on_loopback(echo: RunningService) -> None:
    assert echo.url == f"http://127.0.0.1:{echo.port}"
    assert echo.name == "echo"
    assert echo.returncode is None
    assert echo.client.get("/health").json() == {"ok": True}


def test_the_client_posts_json(echo: RunningService) -> None:
    answer = echo.client.post("/echo", json={"image": [0.5, 1.5]})
    assert answer.status_code == 200
    assert answer.json() == {"echo": {"image": [0.5, 1.5]}}


def test_the_cold_start_is_measured(echo: RunningService) -> None:
    assert echo.cold_start_ms > 0


def test_the_cold_start_is_read_on_the_given_clock(tmp_path: Path) -> None:
    ticks = iter(range(0, 10**6, 2))  # seconds; each read of the clock is 2 s later
    with start(echo_spec(startup_timeout_s=10**6), tmp_path, clock=lambda: next(ticks)) as running:
        assert running.cold_start_ms > 0
        assert running.cold_start_ms % 2000 == 0


def test_the_tree_holds_the_service_and_its_child(echo: RunningService) -> None:
    info = echo.client.get("/info").json()
    assert info["pid"] == echo.pid
    assert echo.pids()[0] == echo.pid
    assert info["child_pid"] in echo.pids()
    assert echo.rss_bytes() > 0


def test_stderr_is_captured(echo: RunningService) -> None:
    assert echo.stderr_tail(1) == [f"echo service listening on 127.0.0.1:{echo.port}"]
    assert echo.stdout_tail() == []


def test_stop_ends_the_whole_group(tmp_path: Path) -> None:
    running = start(echo_spec("--spawn-child"), tmp_path)
    child = running.client.get("/info").json()["child_pid"]
    running.stop()
    assert gone(running.pid)
    assert gone(child)
    assert running.returncode is not None
    running.stop()  # again: nothing to do, no error
    assert running.stderr_tail(1)  # still readable after the stop


def test_a_child_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    spec = echo_spec("--child-ignores-term", stop_timeout_s=0.2)
    with start(spec, tmp_path) as running:
        child = running.client.get("/info").json()["child_pid"]
    assert gone(running.pid)
    assert gone(child)


def test_the_port_can_come_through_the_environment(tmp_path: Path) -> None:
    spec = ServiceSpec(
        name="echo",
        command=(sys.executable, str(ECHO)),
        env={"ECHO_PORT": "{port}"},
        startup_timeout_s=STARTUP_S,
    )
    with start(spec, tmp_path) as running:
        assert running.client.get("/health").status_code == 200


def test_the_service_runs_in_its_cwd(tmp_path: Path) -> None:
    (tmp_path / "service").mkdir()
    spec = ServiceSpec(
        name="echo",
        command=(sys.executable, "../echo.py", "--port", "{port}"),
        cwd=Path("service"),
        startup_timeout_s=STARTUP_S,
    )
    (tmp_path / "echo.py").write_text(ECHO.read_text(encoding="utf-8"), encoding="utf-8")
    with start(spec, tmp_path) as running:
        assert running.client.get("/health").ok


def test_a_missing_cwd_is_one_line(tmp_path: Path) -> None:
    message = failure(echo_spec(cwd=Path("nowhere")), tmp_path)
    assert "nowhere' is not a directory" in message


def test_an_exit_before_ready_names_the_code_and_the_stderr(tmp_path: Path) -> None:
    message = failure(echo_spec("--exit-code", "3"), tmp_path)
    assert "exited with code 3 before GET /health answered 2xx" in message
    assert "stderr: echo service starting" in message
    assert message.endswith("echo service: told to exit before binding")


def test_never_ready_is_a_timeout(tmp_path: Path) -> None:
    message = failure(echo_spec("--sleep-before-bind", "120", startup_timeout_s=1), tmp_path)
    assert (
        "was not ready within 1 s (startup_timeout_s): GET /health on http://127.0.0.1:" in message
    )
    assert "stderr: echo service starting" in message


def test_a_ready_path_that_never_answers_2xx_says_what_it_answered(tmp_path: Path) -> None:
    message = failure(echo_spec("--health-status", "503", startup_timeout_s=1), tmp_path)
    assert "it answered 503" in message


def test_listening_on_another_port_is_named(tmp_path: Path) -> None:
    other = free_port()
    message = failure(echo_spec("--bind-port", str(other)), tmp_path)
    assert f"listens on 127.0.0.1:{other}, not 127.0.0.1:" in message
    assert "bind to the {port} placeholder" in message
    assert "stderr: echo service starting" in message


def test_listening_beyond_loopback_is_refused(tmp_path: Path) -> None:
    message = failure(echo_spec("--host", "0.0.0.0"), tmp_path)
    assert "listens on 0.0.0.0:" in message
    assert "bind to 127.0.0.1" in message


def test_a_missing_program_is_one_line(tmp_path: Path) -> None:
    spec = ServiceSpec(name="echo", command=("no-such-program-deploycheck", "{port}"))
    message = failure(spec, tmp_path)
    assert message == (
        "service echo: cannot run 'no-such-program-deploycheck':"
        " no such program (not on PATH, or no such file)"
    )


def test_a_file_that_is_not_executable_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "serve.txt").write_text("not a program\n")
    spec = ServiceSpec(name="echo", command=(str(tmp_path / "serve.txt"), "{port}"))
    assert "permission denied" in failure(spec, tmp_path)


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port another process holds (a listening socket of this test)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_a_port_taken_meanwhile_is_retried_on_another(tmp_path: Path, held_port: int) -> None:
    ports = iter([held_port, free_port()])
    with start(echo_spec(), tmp_path, port_finder=lambda: next(ports)) as running:
        assert running.port != held_port
        assert running.client.get("/health").ok


def test_a_port_taken_on_every_try_gives_up(tmp_path: Path, held_port: int) -> None:
    calls: list[int] = []

    def always_taken() -> int:
        calls.append(held_port)
        return held_port

    message = failure(echo_spec(), tmp_path, port_finder=always_taken)
    assert len(calls) == PORT_ATTEMPTS
    assert f"its port was taken on each of {PORT_ATTEMPTS} tries" in message
    assert "Address already in use" in message


def test_a_failed_start_leaves_no_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[int] = []
    real_popen = service_module.popen_group

    def recording(*args: object, **kwargs: object) -> object:
        process = real_popen(*args, **kwargs)  # type: ignore[arg-type]
        started.append(process.pid)
        return process

    monkeypatch.setattr(service_module, "popen_group", recording)
    failure(echo_spec("--spawn-child", "--health-status", "500", startup_timeout_s=1), tmp_path)
    assert started and all(gone(pid) for pid in started)


def test_a_service_killed_by_a_signal_says_which(tmp_path: Path) -> None:
    code = "import os, signal, sys; print('dying', file=sys.stderr); os.kill(os.getpid(), 9)"
    spec = ServiceSpec(name="echo", command=(sys.executable, "-c", code, "{port}"))
    message = failure(spec, tmp_path)
    assert "was killed by SIGKILL (exit code -9) before GET /health" in message
    assert message.endswith("stderr: dying")


# --------------------------------------------------------------------------- ServiceSet


def test_service_set_starts_each_service_once_and_stops_all(tmp_path: Path) -> None:
    from pytest_deploycheck.measure.service import ServiceSet

    services = ServiceSet({"echo": echo_spec()}, project_dir=tmp_path)
    try:
        first = services["echo"]
        assert services["echo"] is first
        assert list(services) == ["echo"] and len(services) == 1 and "echo" in services
        assert services.touched == {"echo": None}
        assert services.running() == {"echo": first}
    finally:
        services.stop_all()
    assert gone(first.pid)
    assert services.running() == {}


def test_service_set_remembers_a_failed_start(tmp_path: Path) -> None:
    from pytest_deploycheck.measure.service import ServiceSet

    starts: list[str] = []

    def fail(message: str) -> NoReturn:
        starts.append(message)
        raise ServiceError(message)

    services = ServiceSet({"echo": echo_spec("--exit-code", "5")}, project_dir=tmp_path, fail=fail)
    for _ in range(2):
        with pytest.raises(ServiceError, match="exited with code 5"):
            services["echo"]
    assert starts[0] == starts[1]  # the same line, the service started only once


@pytest.mark.parametrize(
    ("specs", "expected"),
    [
        ({}, "deploy_services['api']: no service is configured: add a [tool.deploycheck."),
        ({"apo": None}, "deploy_services['api']: no such service (did you mean 'apo'?); "),
    ],
)
def test_unknown_service_names_the_configured_ones(specs: dict[str, Any], expected: str) -> None:
    from pytest_deploycheck.measure.service import unknown_service

    assert unknown_service("api", specs).startswith(expected)


def test_python_in_a_command_is_the_interpreter_pytest_runs_under() -> None:
    import sys

    from pytest_deploycheck.measure.service import with_port

    assert with_port("{python}", 8080) == sys.executable
    assert with_port('{"a": 1} {port}', 8080) == '{"a": 1} 8080'
