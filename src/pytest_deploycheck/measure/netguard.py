"""A socket-level network block for offline deploy checks.

A model that is meant to run air-gapped must not phone home: a hub download, a
telemetry call or a DNS lookup on the inference path fails in production, often
only after a timeout.  While :func:`network_blocked` is active, every network
operation made through Python's :mod:`socket` module is judged against a
:class:`NetworkPolicy`; a forbidden one raises :class:`NetworkBlockedError` (an
``OSError`` with ``ENETUNREACH``, as on a machine without a network) and is
recorded in an :class:`AttemptLog`, so a check fails even when the workload
swallows the error and carries on.

How: a ``sys.addaudithook`` hook watches the socket audit events (``connect``,
``sendto``, ``sendmsg``, ``getaddrinfo``, ``gethostbyname``, ``gethostbyaddr``,
``getnameinfo``).  Raising from the hook aborts the operation before it happens.
Unlike monkeypatching, this also catches code that uses ``_socket`` directly or
holds its own ``from socket import getaddrinfo`` reference.  Audit hooks cannot be
removed, so the hook is installed once per loaded copy of this file and does almost
nothing while no block is active.

Covered:

* Python-level sockets in this process, from every thread (the block is process
  wide while it is active);
* the child processes that deploycheck itself starts: they call
  :func:`install_from_environment` first thing, with the variables from
  :func:`child_environment`, and report their blocked attempts through a JSON-lines
  file (:func:`read_child_attempts`).

Not covered:

* native code that opens sockets or resolves names without Python's socket module
  (C++ libraries, some runtimes' own HTTP clients);
* processes that the workload spawns itself;
* ``sock.connect(("host.name", port))`` with a host *name*: the socket module
  resolves it before the audit event fires, so the lookup goes out even though the
  connect is then blocked;
* connections opened before the block started (pooled keep-alive connections):
  only new connects and datagram sends are judged.

For a kernel-level block on Linux, run the whole suite in a namespace without a
network: ``unshare -rn pytest ...``.

Always allowed: ``AF_UNIX`` (and ``AF_NETLINK``) sockets, which are local, and
name resolution of numeric addresses or no host at all (``getaddrinfo(None, ...)``,
``getaddrinfo("127.0.0.1", ...)``), which never leaves the machine; the connect that
follows is what gets judged.  Loopback (127.0.0.0/8, ``::1``, ``::ffff:127.x``, and
the unspecified ``0.0.0.0``/``::`` that a connect maps to the local host) is blocked
unless the policy allows it; every other address is always blocked.  Note that
allowing every loopback port also allows a local DNS stub (``127.0.0.53:53``) that
a pure-Python resolver might query; list ports instead where that matters.

This module imports only the standard library and nothing from its own package: a
child process loads it by file path (``importlib.util.spec_from_file_location``)
without importing pytest or the plugin.  It does not use postponed annotations, so
it loads even when the caller does not register it in ``sys.modules``.
"""

import errno
import ipaddress
import json
import os
import socket
import sys
import threading
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

ENV_OFFLINE = "DEPLOYCHECK_OFFLINE"
"""Set in a child's environment (to :meth:`NetworkPolicy.to_env`) to block its network."""
ENV_OFFLINE_LOG = "DEPLOYCHECK_OFFLINE_LOG"
"""Where a child appends its blocked attempts, one JSON object a line."""

MAX_PORT = 65535
SUMMARY_ADDRESSES = 5  # distinct addresses that AttemptLog.summary() names before "and N more"
RECORD_LIMIT = 1000  # attempts of each outcome an AttemptLog keeps: a retry loop stays bounded
MARKER_HINT = "@pytest.mark.offline"

_POLICED_EVENTS = frozenset(
    {
        "socket.connect",
        "socket.sendto",
        "socket.sendmsg",
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "socket.gethostbyaddr",
        "socket.getnameinfo",
    }
)
_LOCAL_FAMILIES = frozenset(
    family
    for family in (getattr(socket, "AF_UNIX", None), getattr(socket, "AF_NETLINK", None))
    if family is not None
)
_IP_FAMILIES = frozenset({socket.AF_INET, socket.AF_INET6})
_VERBS = {
    "connect": "connect to",
    "sendto": "send to",
    "sendmsg": "send to",
    "resolve": "resolve",
    "reverse-resolve": "reverse-resolve",
}
_POLICY_EXPECTED = f"expected True, False or a list of port numbers 1-{MAX_PORT}"


def _is_port(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_PORT


@dataclass(frozen=True)
class NetworkPolicy:
    """What an offline check may still reach: nothing, every loopback port, or some.

    ``allow_loopback=True`` opens every loopback port; otherwise ``loopback_ports``
    names the only loopback ports that are open (none by default), e.g. a local model
    server the test starts itself.  Non-loopback addresses are never allowed: an
    offline check that could reach some remote host would not be offline.
    """

    allow_loopback: bool = False
    loopback_ports: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        if not isinstance(self.allow_loopback, bool):
            raise ValueError(f"allow_loopback: {_POLICY_EXPECTED}, got {self.allow_loopback!r}")
        ports = self.loopback_ports
        if not isinstance(ports, Collection) or isinstance(ports, (str, bytes)):
            raise ValueError(f"loopback_ports: expected port numbers 1-{MAX_PORT}, got {ports!r}")
        if not all(_is_port(port) for port in ports):
            raise ValueError(f"loopback_ports: expected port numbers 1-{MAX_PORT}, got {ports!r}")
        if self.allow_loopback and ports:
            raise ValueError(
                "NetworkPolicy: allow_loopback=True already opens every loopback port;"
                f" give loopback_ports only with allow_loopback=False, got {sorted(ports)}"
            )
        object.__setattr__(self, "loopback_ports", frozenset(ports))

    @classmethod
    def from_marker_value(cls, value: object) -> "NetworkPolicy":
        """The policy for a marker's ``allow_loopback`` value: False, True or a list of ports.

        Raises ``ValueError`` with a one-line message saying what is valid, so a typo in
        a marker fails the collection of that test rather than silently opening ports.
        """
        if value is True:
            return cls(allow_loopback=True)
        if value is False:
            return cls()
        if isinstance(value, (list, tuple, set, frozenset)):
            bad = [port for port in value if not _is_port(port)]
            if not bad:
                return cls(loopback_ports=frozenset(value))
            raise ValueError(
                f"allow_loopback: {_POLICY_EXPECTED}, got {value!r}"
                f" ({bad[0]!r} is not a port number)"
            )
        raise ValueError(f"allow_loopback: {_POLICY_EXPECTED}, got {value!r}")

    def to_marker_value(self) -> bool | list[int]:
        """The ``allow_loopback`` value that gives this policy back (ports sorted)."""
        if self.allow_loopback:
            return True
        return sorted(self.loopback_ports) if self.loopback_ports else False

    @property
    def any_loopback(self) -> bool:
        """Whether some loopback traffic is allowed, which makes resolving ``localhost`` fine."""
        return self.allow_loopback or bool(self.loopback_ports)

    def allows_loopback_port(self, port: int | None) -> bool:
        """Whether a connect or send to this loopback port may go ahead."""
        return self.allow_loopback or (port is not None and port in self.loopback_ports)

    def describe(self) -> str:
        """One line for reports, e.g. ``network blocked (loopback allowed on port 8080)``."""
        if self.allow_loopback:
            return "network blocked (loopback allowed)"
        if not self.loopback_ports:
            return "network blocked"
        ports = sorted(self.loopback_ports)
        noun = "port" if len(ports) == 1 else "ports"
        return f"network blocked (loopback allowed on {noun} {', '.join(map(str, ports))})"

    def to_env(self) -> str:
        """JSON for :data:`ENV_OFFLINE`, read back by :meth:`from_env` in a child."""
        return json.dumps({"allow_loopback": self.to_marker_value()})

    @classmethod
    def from_env(cls, text: str) -> "NetworkPolicy":
        """The policy that :meth:`to_env` wrote; ``ValueError`` on anything else.

        A child that was asked to block and cannot read how must fail, not run with
        its network open.
        """
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if not isinstance(data, dict) or set(data) != {"allow_loopback"}:
            raise ValueError(
                f'{ENV_OFFLINE}: expected JSON like {{"allow_loopback": false}}, got {text!r}'
            )
        return cls.from_marker_value(data["allow_loopback"])


@dataclass(frozen=True)
class Attempt:
    """One network operation seen while a block was active, and whether it went ahead.

    ``kind`` is ``connect``, ``sendto``, ``sendmsg``, ``resolve`` or
    ``reverse-resolve``; ``address`` is written for people: ``93.184.216.34:443``,
    ``[::1]:8080``, ``pypi.org:443``.
    """

    kind: str
    address: str
    allowed: bool

    def describe(self) -> str:
        """``connect to 127.0.0.1:5555``, ``resolve pypi.org:443``: for messages."""
        return f"{_VERBS.get(self.kind, self.kind)} {self.address}"

    def to_json(self) -> str:
        """One line of a child's attempt log."""
        return json.dumps(
            {"kind": self.kind, "address": self.address, "allowed": self.allowed},
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, line: str) -> "Attempt":
        """The attempt :meth:`to_json` wrote; ``ValueError`` on anything else."""
        data = json.loads(line)
        if not isinstance(data, dict):
            raise ValueError(f"not an attempt: {line!r}")
        kind, address, allowed = data.get("kind"), data.get("address"), data.get("allowed")
        if not (isinstance(kind, str) and isinstance(address, str) and isinstance(allowed, bool)):
            raise ValueError(f"not an attempt: {line!r}")
        return cls(kind, address, allowed)


class NetworkBlockedError(OSError):
    """A network operation refused by an offline check; the message names the address.

    An ``OSError`` with ``errno.ENETUNREACH``, so code written to survive a lost network
    sees what it would see on an air-gapped machine.  ``attempt`` is the refused
    :class:`Attempt`.
    """

    code: int = errno.ENETUNREACH

    def __init__(self, attempt: Attempt, hint: str = "") -> None:
        message = f"network access blocked (offline check): {attempt.describe()}"
        if hint:
            message = f"{message}; {hint}"
        super().__init__(self.code, message)
        self.attempt = attempt
        self.hint = hint

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.attempt, self.hint))


class NameResolutionBlockedError(NetworkBlockedError, socket.gaierror, socket.herror):
    """A refused name lookup, forward or reverse.

    Also a ``socket.gaierror`` and a ``socket.herror``, the errors that callers of
    ``getaddrinfo``/``getnameinfo`` and ``gethostbyname``/``gethostbyaddr`` catch.  Its
    errno is ``EAI_NONAME`` ("name not known"), a definite answer, so retry loops that
    only retry temporary failures give up at once.
    """

    code: int = socket.EAI_NONAME


class AttemptLog:
    """The network attempts seen while a block was active; filled from any thread.

    With a ``path``, blocked attempts are also appended there as JSON lines (see
    :func:`read_child_attempts`): that is how a child process reports to its parent.
    At most :data:`RECORD_LIMIT` attempts of each outcome are kept; ``blocked_count``
    counts them all.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._lock = threading.RLock()  # reentrant: a signal handler may connect mid-record
        self._attempts: list[Attempt] = []
        self._kept = {True: 0, False: 0}
        self._blocked_count = 0

    def record(self, attempt: Attempt) -> None:
        """Keep ``attempt``; a blocked one also goes to the file, if there is one."""
        with self._lock:
            if not attempt.allowed:
                self._blocked_count += 1
            if self._kept[attempt.allowed] < RECORD_LIMIT:
                self._kept[attempt.allowed] += 1
                self._attempts.append(attempt)
        if self.path is not None and not attempt.allowed:
            _append_line(self.path, attempt.to_json())

    @property
    def attempts(self) -> list[Attempt]:
        """Every kept attempt, allowed or not, in the order they happened."""
        with self._lock:
            return list(self._attempts)

    @property
    def blocked(self) -> list[Attempt]:
        """The kept attempts that were refused: a non-empty list fails an offline check."""
        return [attempt for attempt in self.attempts if not attempt.allowed]

    @property
    def blocked_count(self) -> int:
        """How many attempts were refused, including any beyond the kept ones."""
        with self._lock:
            return self._blocked_count

    def summary(self) -> str:
        """One line naming the distinct refused addresses, at most five, then "and N more"."""
        with self._lock:
            blocked = [attempt for attempt in self._attempts if not attempt.allowed]
            total = self._blocked_count
        if not total:
            return "no blocked network attempts"
        counts: dict[str, int] = {}
        for attempt in blocked:
            key = attempt.describe()
            counts[key] = counts.get(key, 0) + 1
        names = [f"{key} (x{n})" if n > 1 else key for key, n in counts.items()]
        shown = ", ".join(names[:SUMMARY_ADDRESSES])
        more = len(names) - SUMMARY_ADDRESSES
        if more > 0:
            shown = f"{shown} and {more} more"
        noun = "attempt" if total == 1 else "attempts"
        return f"{total} blocked network {noun}: {shown}"


def _append_line(path: Path, line: str) -> None:
    # One write with O_APPEND: lines from several threads or processes never interleave.
    # A log that cannot be written must not turn the refusal into a different error.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError:
        return
    try:
        os.write(fd, (line + "\n").encode())
    except OSError:
        pass
    finally:
        os.close(fd)


def read_child_attempts(log_path: Path) -> list[Attempt]:
    """The blocked attempts that child processes appended to ``log_path``.

    A missing file means no child tried anything.  A line that cannot be read (a child
    killed mid-write) is skipped rather than hiding the attempts that were recorded.
    """
    try:
        text = Path(log_path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    attempts = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            attempts.append(Attempt.from_json(line))
        except ValueError:
            continue
    return attempts


# ---------------------------------------------------------------- judging an audit event

_Scope = Literal["loopback", "localhost", "remote"]
# loopback: a connect or send to a loopback address, judged by port;
# localhost: a lookup that stays on this machine (localhost, a loopback address);
# remote: anything else.


@dataclass(frozen=True)
class _Target:
    kind: str
    address: str
    scope: _Scope
    port: int | None = None


def _text(value: object) -> str:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("ascii", "backslashreplace")
    return str(value)


def _parse_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])  # drop an IPv6 zone ("%eth0")
    except ValueError:
        return None


def _is_local_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_unspecified


def _is_localhost_name(host: str) -> bool:
    name = host.lower().rstrip(".")
    return name == "localhost" or name.endswith(".localhost")


def _format_address(host: str, port: object = None) -> str:
    shown = f"[{host}]" if ":" in host and port is not None else host
    return shown if port is None else f"{shown}:{_text(port)}"


def _send_target(kind: str, sock: object, address: object) -> _Target | None:
    """A connect or datagram send: judged by family, then by address and port."""
    if address is None:  # sendmsg on a connected socket: its connect was judged
        return None
    if isinstance(address, (str, bytes, bytearray)):  # an AF_UNIX path
        return None
    family = getattr(sock, "family", None)
    if family in _LOCAL_FAMILIES:
        return None
    if family not in _IP_FAMILIES or not isinstance(address, tuple) or len(address) < 2:
        name = getattr(family, "name", family)
        return _Target(kind, f"{name} address {address!r}", "remote")
    host, port = _text(address[0]), address[1]
    number = port if isinstance(port, int) else None
    text = _format_address(host, port)
    ip = _parse_ip(host)
    if ip is not None:
        return _Target(kind, text, "loopback" if _is_local_ip(ip) else "remote", number)
    if host == "" or _is_localhost_name(host):  # "" is INADDR_ANY: this machine
        return _Target(kind, text, "loopback", number)
    return _Target(kind, text, "remote", number)


def _lookup_target(host_value: object, port: object = None) -> _Target | None:
    """A forward lookup: free for a numeric address, judged for a name."""
    if host_value is None:
        return None
    host = _text(host_value)
    if host == "" or _parse_ip(host) is not None:
        return None
    scope: _Scope = "localhost" if _is_localhost_name(host) else "remote"
    return _Target("resolve", _format_address(host, port), scope)


def _reverse_target(host_value: object, port: object = None) -> _Target | None:
    """A reverse lookup: local for a loopback address or ``localhost``, else remote."""
    host = _text(host_value)
    ip = _parse_ip(host)
    local = _is_local_ip(ip) if ip is not None else _is_localhost_name(host)
    scope: _Scope = "localhost" if local else "remote"
    return _Target("reverse-resolve", _format_address(host, port), scope)


def _target(event: str, args: tuple[Any, ...]) -> _Target | None:
    """What ``event`` tries to reach, or None for an operation that is not network."""
    if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        return _send_target(event.removeprefix("socket."), args[0], args[1])
    if event == "socket.getaddrinfo":
        return _lookup_target(args[0], args[1])
    if event == "socket.gethostbyname":
        return _lookup_target(args[0])
    if event == "socket.gethostbyaddr":
        return _reverse_target(args[0])
    sockaddr = args[0]  # socket.getnameinfo
    if isinstance(sockaddr, tuple) and len(sockaddr) >= 2:
        return _reverse_target(sockaddr[0], sockaddr[1])
    return _Target("reverse-resolve", repr(sockaddr), "remote")


def _permits(policy: NetworkPolicy, target: _Target) -> bool:
    if target.scope == "loopback":
        return policy.allows_loopback_port(target.port)
    if target.scope == "localhost":
        return policy.any_loopback
    return False


def _hint(target: _Target) -> str:
    if target.scope == "loopback":
        if target.port is not None and _is_port(target.port):
            return f"allow loopback ports with {MARKER_HINT}(allow_loopback=[{target.port}])"
        return f"allow loopback with {MARKER_HINT}(allow_loopback=True)"
    if target.scope == "localhost":
        return f"allow loopback with {MARKER_HINT}(allow_loopback=True) or a list of ports"
    if target.kind in ("resolve", "reverse-resolve"):
        return "name lookups leave the machine; an offline check may reach loopback only"
    return "an offline check may reach loopback only; load models and data from local files"


# ---------------------------------------------------------------- process-wide state


@dataclass(frozen=True, eq=False)
class _Block:
    policy: NetworkPolicy
    log: AttemptLog


_state_lock = threading.Lock()
_active: tuple[_Block, ...] = ()  # replaced whole under the lock; the hook reads it unlocked
_hook_installed = False
_environment_block: _Block | None = None


def _audit_hook(event: str, args: tuple[Any, ...]) -> None:
    # Runs for every audited event in the process (opens, imports, ...): stay cheap.
    blocks = _active
    if not blocks or event not in _POLICED_EVENTS:
        return
    try:
        target = _target(event, args)
    except Exception:  # an address shape we do not know: refuse rather than guess
        target = _Target(event.removeprefix("socket."), repr(args[1:]), "remote")
    if target is None:
        return
    allowed = all(_permits(block.policy, target) for block in blocks)
    attempt = Attempt(target.kind, target.address, allowed)
    for block in blocks:
        block.log.record(attempt)
    if not allowed:
        lookup = target.kind in ("resolve", "reverse-resolve")
        error = NameResolutionBlockedError if lookup else NetworkBlockedError
        raise error(attempt, _hint(target))


def _install_hook() -> None:
    global _hook_installed
    with _state_lock:
        if not _hook_installed:
            sys.addaudithook(_audit_hook)
            _hook_installed = True


def _activate(block: _Block) -> None:
    global _active
    _install_hook()
    with _state_lock:
        _active = (*_active, block)


def _deactivate(block: _Block) -> None:
    global _active
    with _state_lock:
        _active = tuple(active for active in _active if active is not block)


def blocking_active() -> bool:
    """Whether some block is active in this process right now."""
    return bool(_active)


@contextmanager
def network_blocked(policy: NetworkPolicy) -> Iterator[AttemptLog]:
    """Block the network of the whole process (all threads) for the ``with`` body.

    Yields the :class:`AttemptLog` that records every judged attempt, so a check can
    fail on attempts the workload caught and ignored.  On exit, normal or not, the
    process is as it was before.

    Blocks nest, from one thread or several: an operation goes ahead only if every
    active block allows it (an inner block can only narrow an outer one), and every
    active block's log records it.  Each block ends independently of the others.
    """
    block = _Block(policy, AttemptLog())
    _activate(block)
    try:
        yield block.log
    finally:
        _deactivate(block)


def child_environment(policy: NetworkPolicy, log_path: Path | None = None) -> dict[str, str]:
    """Variables to add to a child's environment so that it blocks too.

    The child must call :func:`install_from_environment` first thing.  With
    ``log_path``, it appends its blocked attempts there as JSON lines
    (:func:`read_child_attempts`), since its exceptions never reach the parent.
    """
    env = {ENV_OFFLINE: policy.to_env()}
    if log_path is not None:
        env[ENV_OFFLINE_LOG] = os.fspath(log_path)
    return env


def install_from_environment(environ: Mapping[str, str] = os.environ) -> AttemptLog | None:
    """In a child: block the network for the rest of the process if the parent asked.

    Returns None when :data:`ENV_OFFLINE` is not set, else the process's log (which
    also appends to the file named by :data:`ENV_OFFLINE_LOG`, if set).  A second call
    returns the same log; a policy that cannot be read raises ``ValueError``.
    """
    global _environment_block
    text = environ.get(ENV_OFFLINE)
    if not text:
        return None
    policy = NetworkPolicy.from_env(text)
    log_path = environ.get(ENV_OFFLINE_LOG)
    with _state_lock:
        if _environment_block is not None:
            return _environment_block.log
        block = _Block(policy, AttemptLog(Path(log_path) if log_path else None))
        _environment_block = block
    _activate(block)
    return block.log
