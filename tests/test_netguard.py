"""The offline network block: what it refuses, what it lets through, and what it logs.

Every socket here is on loopback or AF_UNIX; refused operations never leave the
process, so no test needs (or uses) an external network.
"""

from __future__ import annotations

import _socket
import errno
import os
import pickle
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from socket import getaddrinfo as held_getaddrinfo

import pytest

from pytest_deploycheck.measure import netguard as offline
from pytest_deploycheck.measure.netguard import (
    ENV_OFFLINE,
    ENV_OFFLINE_LOG,
    Attempt,
    AttemptLog,
    NameResolutionBlockedError,
    NetworkBlockedError,
    NetworkPolicy,
    blocking_active,
    child_environment,
    install_from_environment,
    network_blocked,
    read_child_attempts,
)

BLOCKED = NetworkPolicy()
ANY_LOOPBACK = NetworkPolicy(allow_loopback=True)
UNRESOLVABLE = "deploycheck-offline-test.example"
TEST_NET = ("192.0.2.1", 53)  # TEST-NET-1: reserved for documentation, never routed


def _listener() -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    return listener


@pytest.fixture
def port() -> Iterator[int]:
    """A listening loopback TCP port; connects succeed through the backlog."""
    with _listener() as listener:
        yield listener.getsockname()[1]


@pytest.fixture
def other_port() -> Iterator[int]:
    with _listener() as listener:
        yield listener.getsockname()[1]


def connect(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10):
        pass


# ---------------------------------------------------------------- loopback connects


def test_a_connect_to_a_loopback_port_not_allowed_is_refused_and_logged(port: int) -> None:
    with (
        network_blocked(BLOCKED) as log,
        pytest.raises(NetworkBlockedError, match=rf"127\.0\.0\.1:{port}") as caught,
    ):
        connect(port)
    error = caught.value
    assert isinstance(error, OSError)
    assert error.errno == errno.ENETUNREACH
    assert "network access blocked (offline check)" in str(error)
    assert f"allow_loopback=[{port}]" in str(error)
    assert not isinstance(error, socket.gaierror)
    assert error.attempt == Attempt("connect", f"127.0.0.1:{port}", allowed=False)
    assert log.blocked == [error.attempt]
    assert log.blocked_count == 1


@pytest.mark.parametrize("allow", [True, "listed port"])
def test_the_same_connect_goes_ahead_when_loopback_is_allowed(port: int, allow: object) -> None:
    policy = NetworkPolicy.from_marker_value(True if allow is True else [port])
    with network_blocked(policy) as log:
        connect(port)
    assert log.blocked == []
    assert log.attempts == [Attempt("connect", f"127.0.0.1:{port}", allowed=True)]
    assert log.summary() == "no blocked network attempts"


def test_a_port_list_refuses_the_ports_it_does_not_list(port: int, other_port: int) -> None:
    with network_blocked(NetworkPolicy.from_marker_value([port])) as log:
        connect(port)
        with pytest.raises(NetworkBlockedError, match=rf"127\.0\.0\.1:{other_port}"):
            connect(other_port)
    assert [attempt.allowed for attempt in log.attempts] == [True, False]


def test_the_raw_socket_module_is_policed_too(port: int) -> None:
    raw = _socket.socket()  # the C socket type, beneath socket.socket
    try:
        with network_blocked(BLOCKED) as log:
            with pytest.raises(NetworkBlockedError):
                raw.connect(("127.0.0.1", port))
            with pytest.raises(NetworkBlockedError):
                raw.connect_ex(("127.0.0.1", port))  # raises rather than returning an errno
    finally:
        raw.close()
    assert len(log.blocked) == 2


def test_loopback_hosts_other_than_127_0_0_1_count_as_loopback(port: int) -> None:
    with network_blocked(BLOCKED), socket.socket() as sock:
        with pytest.raises(NetworkBlockedError, match=rf"localhost:{port}; allow loopback ports"):
            sock.connect(("localhost", port))
        with pytest.raises(NetworkBlockedError, match=rf"127\.1\.2\.3:{port}; allow loopback"):
            sock.connect(("127.1.2.3", port))


def test_ipv6_loopback_and_mapped_addresses_are_loopback() -> None:
    try:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    except OSError:
        pytest.skip("no IPv6 sockets here")
    with network_blocked(BLOCKED), sock:
        for host in ("::1", "::ffff:127.0.0.1"):
            with pytest.raises(NetworkBlockedError) as caught:
                sock.connect((host, 8080))
            assert caught.value.attempt.address == f"[{host}]:8080"
            assert "allow_loopback=[8080]" in str(caught.value)


# ---------------------------------------------------------------- name lookups


def test_resolving_a_host_name_is_refused_with_a_resolver_error() -> None:
    with network_blocked(ANY_LOOPBACK) as log:
        with pytest.raises(socket.gaierror, match=UNRESOLVABLE) as caught:
            socket.getaddrinfo(UNRESOLVABLE, 443)
        assert isinstance(caught.value, NetworkBlockedError)
        assert caught.value.errno == socket.EAI_NONAME
        with pytest.raises(socket.gaierror, match=UNRESOLVABLE):
            socket.gethostbyname(UNRESOLVABLE)
        with pytest.raises(socket.gaierror, match=UNRESOLVABLE):
            held_getaddrinfo(UNRESOLVABLE, "https")
        with pytest.raises(socket.gaierror, match=UNRESOLVABLE):
            _socket.getaddrinfo(UNRESOLVABLE, None)
    assert [attempt.address for attempt in log.blocked] == [
        f"{UNRESOLVABLE}:443",
        UNRESOLVABLE,
        f"{UNRESOLVABLE}:https",
        UNRESOLVABLE,
    ]
    assert {attempt.kind for attempt in log.blocked} == {"resolve"}


def test_reverse_lookups_of_remote_addresses_are_refused() -> None:
    with network_blocked(ANY_LOOPBACK) as log:
        with pytest.raises(socket.herror, match=r"reverse-resolve 192\.0\.2\.1"):
            socket.gethostbyaddr("192.0.2.1")
        with pytest.raises(socket.gaierror, match=r"reverse-resolve 192\.0\.2\.1:80"):
            socket.getnameinfo(("192.0.2.1", 80), 0)
    assert [attempt.kind for attempt in log.blocked] == ["reverse-resolve"] * 2


@pytest.mark.parametrize("name", ["localhost", "LOCALHOST.", "model.localhost"])
def test_localhost_names_are_refused_while_loopback_is(name: str) -> None:
    with network_blocked(BLOCKED), pytest.raises(NameResolutionBlockedError) as caught:
        socket.getaddrinfo(name, 80)
    assert f"resolve {name}:80; allow loopback with" in str(caught.value)


@pytest.mark.parametrize("policy", [ANY_LOOPBACK, NetworkPolicy(loopback_ports=frozenset({1}))])
def test_localhost_resolves_when_some_loopback_is_allowed(policy: NetworkPolicy) -> None:
    with network_blocked(policy) as log:
        addresses = socket.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)
    assert any(info[4][0] in ("127.0.0.1", "::1") for info in addresses)
    assert log.attempts == [Attempt("resolve", "localhost:80", allowed=True)]


def test_numeric_lookups_never_count_as_attempts() -> None:
    with network_blocked(BLOCKED) as log:
        assert socket.getaddrinfo("127.0.0.1", 80)
        assert socket.getaddrinfo(None, 80, socket.AF_INET, socket.SOCK_STREAM)
        assert socket.getaddrinfo("192.0.2.1", 80)
        assert socket.gethostbyname("127.0.0.1") == "127.0.0.1"
    assert log.attempts == []


# ---------------------------------------------------------------- datagrams and AF_UNIX


def test_udp_to_a_remote_address_is_refused_even_with_loopback_allowed() -> None:
    with network_blocked(ANY_LOOPBACK) as log, socket.socket(type=socket.SOCK_DGRAM) as udp:
        with pytest.raises(NetworkBlockedError, match=r"send to 192\.0\.2\.1:53; an offline"):
            udp.sendto(b"query", TEST_NET)
        with pytest.raises(NetworkBlockedError, match=r"192\.0\.2\.1:53"):
            udp.sendmsg([b"query"], [], 0, TEST_NET)
        with pytest.raises(NetworkBlockedError, match=r"192\.0\.2\.1:53"):
            udp.connect(TEST_NET)
    assert [attempt.kind for attempt in log.blocked] == ["sendto", "sendmsg", "connect"]


def test_udp_to_loopback_follows_the_port_list() -> None:
    with socket.socket(type=socket.SOCK_DGRAM) as receiver:
        receiver.settimeout(30)  # a guard against hanging, not a measurement
        receiver.bind(("127.0.0.1", 0))
        port = receiver.getsockname()[1]
        with socket.socket(type=socket.SOCK_DGRAM) as sender:
            with network_blocked(BLOCKED), pytest.raises(NetworkBlockedError):
                sender.sendto(b"x", ("127.0.0.1", port))
            with network_blocked(NetworkPolicy.from_marker_value([port])):
                sender.sendto(b"y", ("127.0.0.1", port))
        assert receiver.recv(16) == b"y"


def test_unix_sockets_are_always_allowed() -> None:
    with tempfile.TemporaryDirectory(prefix="dc") as folder:
        path = os.path.join(folder, "s")
        with network_blocked(BLOCKED) as log:
            left, right = socket.socketpair()
            with left, right:
                left.sendmsg([b"ping"])
                assert right.recv(16) == b"ping"
            with socket.socket(socket.AF_UNIX) as server, socket.socket(socket.AF_UNIX) as client:
                server.bind(path)
                server.listen(1)
                client.connect(path)
                client.sendall(b"pong")
                accepted, _ = server.accept()
                with accepted:
                    assert accepted.recv(16) == b"pong"
    assert log.attempts == []


# ---------------------------------------------------------------- the log and the state


def test_an_attempt_the_workload_swallows_is_still_logged(port: int) -> None:
    def phone_home() -> str:
        try:
            connect(port)
        except OSError:
            return "carried on without it"
        return "connected"

    with network_blocked(BLOCKED) as log:
        assert phone_home() == "carried on without it"
    assert log.summary() == f"1 blocked network attempt: connect to 127.0.0.1:{port}"


def test_the_summary_names_distinct_addresses_then_how_many_more() -> None:
    log = AttemptLog()
    for _ in range(3):
        log.record(Attempt("resolve", "pypi.org:443", allowed=False))
    for n in range(1, 8):
        log.record(Attempt("connect", f"10.0.0.{n}:80", allowed=False))
    log.record(Attempt("connect", "127.0.0.1:1", allowed=True))
    assert log.summary() == (
        "10 blocked network attempts: resolve pypi.org:443 (x3), connect to 10.0.0.1:80,"
        " connect to 10.0.0.2:80, connect to 10.0.0.3:80, connect to 10.0.0.4:80 and 3 more"
    )
    assert len(log.blocked) == 10
    assert len(log.attempts) == 11


def test_the_log_keeps_a_bounded_number_of_attempts_but_counts_all() -> None:
    log = AttemptLog()
    for _ in range(offline.RECORD_LIMIT + 5):
        log.record(Attempt("connect", "127.0.0.1:1", allowed=True))
    log.record(Attempt("connect", "10.0.0.1:80", allowed=False))
    assert len(log.attempts) == offline.RECORD_LIMIT + 1
    assert log.blocked == [Attempt("connect", "10.0.0.1:80", allowed=False)]
    assert log.blocked_count == 1


def test_connects_work_again_after_the_block(port: int) -> None:
    with network_blocked(BLOCKED):
        assert blocking_active()
    assert not blocking_active()
    connect(port)


def test_an_exception_inside_the_block_restores_the_network(port: int) -> None:
    with pytest.raises(RuntimeError, match="workload failed"), network_blocked(BLOCKED):
        raise RuntimeError("workload failed")
    assert not blocking_active()
    connect(port)


def test_a_connect_from_another_thread_is_refused_too(port: int) -> None:
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            connect(port)
        except BaseException as error:
            errors.append(error)

    with network_blocked(BLOCKED) as log:
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
    assert len(errors) == 1
    assert isinstance(errors[0], NetworkBlockedError)
    assert log.blocked == [Attempt("connect", f"127.0.0.1:{port}", allowed=False)]


def test_nested_blocks_narrow_and_both_logs_record(port: int, other_port: int) -> None:
    with network_blocked(ANY_LOOPBACK) as outer:
        with network_blocked(NetworkPolicy.from_marker_value([port])) as inner:
            connect(port)
            with pytest.raises(NetworkBlockedError):
                connect(other_port)
        connect(other_port)  # the inner block has ended; the outer one allows it
    with (
        network_blocked(BLOCKED) as outer_strict,
        network_blocked(ANY_LOOPBACK),
        pytest.raises(NetworkBlockedError),
    ):
        connect(port)  # an inner block cannot widen an outer one
    assert [a.allowed for a in inner.attempts] == [True, False]
    assert [a.allowed for a in outer.attempts] == [True, False, True]
    assert len(outer_strict.blocked) == 1
    assert not blocking_active()


def test_the_error_survives_pickling() -> None:
    error = NameResolutionBlockedError(Attempt("resolve", "pypi.org:443", False), "a hint")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is NameResolutionBlockedError
    assert (copy.errno, copy.strerror, copy.attempt) == (error.errno, error.strerror, error.attempt)


# ---------------------------------------------------------------- child processes

CHILD = textwrap.dedent(
    """
    import importlib.util, socket, sys
    spec = importlib.util.spec_from_file_location("_dc_offline", sys.argv[1])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # deliberately not registered in sys.modules
    log = module.install_from_environment()
    assert "pytest_deploycheck" not in sys.modules and "pytest" not in sys.modules
    print("installed" if log is not None else "not-installed")
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=10).close()
        print("connected")
    except OSError as error:
        print(type(error).__name__)
    """
)


def run_child(port: int, env: dict[str, str]) -> list[str]:
    base = {k: v for k, v in os.environ.items() if k not in (ENV_OFFLINE, ENV_OFFLINE_LOG)}
    result = subprocess.run(
        [sys.executable, "-c", CHILD, offline.__file__, str(port)],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_a_child_blocks_and_reports_its_attempts(port: int, tmp_path: Path) -> None:
    log_path = tmp_path / "attempts.jsonl"
    output = run_child(port, child_environment(BLOCKED, log_path))
    assert output == ["installed", "NetworkBlockedError"]
    assert read_child_attempts(log_path) == [Attempt("connect", f"127.0.0.1:{port}", allowed=False)]


def test_a_child_follows_its_policy_and_is_open_without_one(port: int, tmp_path: Path) -> None:
    log_path = tmp_path / "attempts.jsonl"
    policy = NetworkPolicy.from_marker_value([port])
    assert run_child(port, child_environment(policy, log_path)) == ["installed", "connected"]
    assert run_child(port, {}) == ["not-installed", "connected"]
    assert read_child_attempts(log_path) == []


def test_child_environment_names_the_policy_and_the_log(tmp_path: Path) -> None:
    assert child_environment(BLOCKED) == {ENV_OFFLINE: BLOCKED.to_env()}
    env = child_environment(ANY_LOOPBACK, tmp_path / "log")
    assert env == {ENV_OFFLINE: ANY_LOOPBACK.to_env(), ENV_OFFLINE_LOG: str(tmp_path / "log")}


def test_install_from_environment_does_nothing_when_not_asked() -> None:
    assert install_from_environment({}) is None
    assert install_from_environment({ENV_OFFLINE: ""}) is None
    assert not blocking_active()


def test_install_from_environment_refuses_an_unreadable_policy() -> None:
    with pytest.raises(ValueError, match=ENV_OFFLINE):
        install_from_environment({ENV_OFFLINE: "yes please"})
    assert not blocking_active()


def test_read_child_attempts_skips_what_it_cannot_read(tmp_path: Path) -> None:
    assert read_child_attempts(tmp_path / "missing.jsonl") == []
    log_path = tmp_path / "attempts.jsonl"
    attempt = Attempt("resolve", "pypi.org:443", allowed=False)
    log_path.write_text(f'{attempt.to_json()}\n\n[1, 2]\n{{"kind": "conn', encoding="utf-8")
    assert read_child_attempts(log_path) == [attempt]


def test_a_log_with_a_path_appends_blocked_attempts_only(tmp_path: Path) -> None:
    log_path = tmp_path / "attempts.jsonl"
    log = AttemptLog(log_path)
    log.record(Attempt("connect", "127.0.0.1:80", allowed=True))
    log.record(Attempt("connect", "10.0.0.1:80", allowed=False))
    assert read_child_attempts(log_path) == [Attempt("connect", "10.0.0.1:80", allowed=False)]


# ---------------------------------------------------------------- the policy


@pytest.mark.parametrize("value", ["yes", [0], [70000], 1.5, None, [True], ["8080"], 8080])
def test_a_bad_allow_loopback_value_says_what_is_valid(value: object) -> None:
    with pytest.raises(ValueError) as caught:
        NetworkPolicy.from_marker_value(value)
    message = str(caught.value)
    assert message.startswith(
        "allow_loopback: expected True, False or a list of port numbers 1-65535, got "
    )
    assert "\n" not in message


def test_a_policy_cannot_both_open_all_loopback_and_list_ports() -> None:
    with pytest.raises(ValueError, match="allow_loopback=True already opens every"):
        NetworkPolicy(allow_loopback=True, loopback_ports=frozenset({8080}))
    with pytest.raises(ValueError, match="loopback_ports: expected port numbers"):
        NetworkPolicy(loopback_ports=frozenset({0}))


@pytest.mark.parametrize(
    ("value", "description"),
    [
        (False, "network blocked"),
        (True, "network blocked (loopback allowed)"),
        ([], "network blocked"),
        ([8080], "network blocked (loopback allowed on port 8080)"),
        ((9000, 8080), "network blocked (loopback allowed on ports 8080, 9000)"),
    ],
)
def test_policies_describe_themselves_and_survive_the_environment(
    value: object, description: str
) -> None:
    policy = NetworkPolicy.from_marker_value(value)
    assert policy.describe() == description
    assert NetworkPolicy.from_env(policy.to_env()) == policy
    assert NetworkPolicy.from_marker_value(policy.to_marker_value()) == policy


@pytest.mark.parametrize(
    "text", ["", "true", "{}", '{"allow_loopback": "yes"}', '{"allow_loopback": [1], "x": 1}']
)
def test_an_unreadable_environment_policy_is_an_error(text: str) -> None:
    with pytest.raises(ValueError, match="allow_loopback"):
        NetworkPolicy.from_env(text)
