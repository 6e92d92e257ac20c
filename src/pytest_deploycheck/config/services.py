"""The ``[tool.deploycheck.services]`` table: the user's own HTTP services under test.

Each ``[tool.deploycheck.services.NAME]`` says how to start one service (an argv list,
never a shell line, so nothing is re-parsed) and how to know it is up (a ``ready``
path that answers 2xx).  ``{port}`` in the command or the environment is replaced by a
free loopback port chosen at start, so that parallel workers never fight over a fixed
port; a spec without it could not be told where to listen, so that is an error here,
at start-up, rather than a service that is never ready half-way through a run.

Validated up front like the rest of the configuration: every problem is one line
naming the file, the table and the key, with an example of what would be valid.
Service names are data: any TOML key, shown escaped, never used as a path.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from types import MappingProxyType
from typing import Any

from .errors import ConfigError
from .escape import log_text
from .files import is_inside
from .units import shown

PORT_PLACEHOLDER = "{port}"
PYTHON_PLACEHOLDER = "{python}"  # the interpreter pytest runs under (measure.service)
DEFAULT_READY = "/health"
DEFAULT_STARTUP_TIMEOUT_S = 30.0
DEFAULT_STOP_TIMEOUT_S = 5.0
MAX_STARTUP_TIMEOUT_S = 3600.0  # a service that needs longer is not a test fixture
MAX_STOP_TIMEOUT_S = 600.0
COMMAND_EXAMPLE = '["python", "-m", "app", "--port", "{port}"]'
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
# A ready path goes into a request line: no spaces, no controls, no second URL.
_READY_PATH = re.compile(r"/[!-~]*")


@dataclass(frozen=True)
class ServiceSpec:
    """How to start one service and how to know it is up.

    ``command`` and ``env`` still hold the ``{port}`` placeholder; the service layer
    substitutes the port it picked.  ``cwd`` is relative to the project directory
    (None: the project directory itself).
    """

    name: str
    command: tuple[str, ...]
    ready: str = DEFAULT_READY
    startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    cwd: PurePath | None = None
    stop_timeout_s: float = DEFAULT_STOP_TIMEOUT_S
    # Started under deploycheck's socket block (loopback only) when True: see
    # measure.service, which says how a Python service picks the block up.
    offline: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The spec as JSON-ready data, for report.json's configuration record."""
        return {
            "name": self.name,
            "command": list(self.command),
            "ready": self.ready,
            "startup_timeout_s": self.startup_timeout_s,
            "env": dict(self.env),
            "cwd": str(self.cwd) if self.cwd is not None else None,
            "stop_timeout_s": self.stop_timeout_s,
            "offline": self.offline,
        }


class _Invalid(Exception):
    """Raised by a key's converter; its text says what would be valid."""


def toml_key(name: str) -> str:
    """*name* as a TOML table key: bare when it can be, else quoted and escaped."""
    if _BARE_KEY.fullmatch(name):
        return name
    return '"' + log_text(name).replace('"', '\\"') + '"'


def services_table(source: str) -> str:
    """The dotted name of the services table in *source* (pyproject.toml or deploycheck.toml)."""
    return (
        "services" if PurePath(source).name == "deploycheck.toml" else "tool.deploycheck.services"
    )


class _Problems:
    """Every problem of the table, one line each, raised together as one ConfigError."""

    def __init__(self, source: str, table: str) -> None:
        self.source = source
        self.table = table
        self.lines: list[str] = []

    def add(self, name: str | None, message: str) -> None:
        where = f"[{self.table}.{toml_key(name)}]" if name is not None else f"[{self.table}]"
        self.lines.append(log_text(f"{self.source}: {where} {message}"))

    def raise_if_any(self) -> None:
        if self.lines:
            error = ConfigError(self.lines[0])
            error.args = tuple(self.lines)
            raise error


# --------------------------------------------------------------------------- key converters


def _command(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise _Invalid(f"must be a non-empty list of strings, e.g. {COMMAND_EXAMPLE}")
    if not value[0].strip():
        raise _Invalid(f"must start with a program to run, e.g. {COMMAND_EXAMPLE}")
    if any("\x00" in v for v in value):
        raise _Invalid("must not contain a NUL character")
    return tuple(value)


def _ready(value: Any) -> str:
    if not isinstance(value, str) or not _READY_PATH.fullmatch(value) or value.startswith("//"):
        raise _Invalid(
            f"must be an HTTP path starting with '/' without spaces, e.g. \"/health\","
            f" got {shown(value)}"
        )
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"must be true or false, got {shown(value)}")
    return value


def _seconds(limit: float) -> Callable[[Any], float]:
    def convert(value: Any) -> float:
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not is_number or not math.isfinite(value) or not 0 < value <= limit:
            raise _Invalid(
                f"must be a number of seconds > 0 and at most {limit:g}, got {shown(value)}"
            )
        return float(value)

    return convert


def _env(value: Any) -> Mapping[str, str]:
    if not isinstance(value, dict):
        raise _Invalid('must be a table of NAME = "value", e.g. { LOG_LEVEL = "info" }')
    for key, item in value.items():
        if not key or "=" in key or "\x00" in key:
            raise _Invalid(f"has the variable name {key!r}: expected a name without '=' or NUL")
        if not isinstance(item, str) or "\x00" in item:
            raise _Invalid(
                f'{key} must be a string, e.g. {key} = "{item}", got {shown(item)}'
                if isinstance(item, (int, float))
                else f"{key} must be a string without NUL, got {shown(item)}"
            )
    return MappingProxyType(dict(value))


_KEYS: dict[str, Callable[[Any], Any]] = {
    "command": _command,
    "ready": _ready,
    "startup_timeout_s": _seconds(MAX_STARTUP_TIMEOUT_S),
    "env": _env,
    "cwd": lambda v: v,  # checked against the project directory in _cwd
    "stop_timeout_s": _seconds(MAX_STOP_TIMEOUT_S),
    "offline": _flag,
}


def _cwd(value: Any, project_dir: Path) -> PurePath:
    """A directory inside the project: a test fixture never runs a service elsewhere."""
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise _Invalid(
            f'must be a directory relative to the project, e.g. "service", got {shown(value)}'
        )
    relative = PurePath(value)
    if relative.is_absolute() or not is_inside(project_dir / relative, project_dir):
        raise _Invalid(f"must be a directory inside the project ({project_dir}), got {value!r}")
    return relative


# --------------------------------------------------------------------------- parsing


def parse_services(table: object, *, source: str, project_dir: Path) -> dict[str, ServiceSpec]:
    """The services of ``[tool.deploycheck.services]``, or a ConfigError listing every problem.

    *table* is the TOML value of that key (None or absent: no services); *source* names
    the file in messages (``pyproject.toml``); *project_dir* anchors each ``cwd``.
    """
    problems = _Problems(source, services_table(source))
    if table is None:
        return {}
    if not isinstance(table, dict):
        problems.add(None, f"must be a table of services, e.g. [{problems.table}.api]")
        raise ConfigError(problems.lines[0])
    specs: dict[str, ServiceSpec] = {}
    for name, body in table.items():
        spec = _parse_one(str(name), body, problems, project_dir)
        if spec is not None:
            specs[spec.name] = spec
    problems.raise_if_any()
    return specs


def _parse_one(
    name: str, body: object, problems: _Problems, project_dir: Path
) -> ServiceSpec | None:
    if not isinstance(body, dict):
        problems.add(name, f"must be a table with a command, e.g. command = {COMMAND_EXAMPLE}")
        return None
    before = len(problems.lines)
    values = _converted(name, body, problems, project_dir)
    if "command" not in body:
        problems.add(name, f"needs a command, e.g. command = {COMMAND_EXAMPLE}")
    if len(problems.lines) > before:
        return None
    spec = ServiceSpec(name=name, **values)
    if not _uses_port(spec):
        problems.add(
            name,
            f"command must receive the port: put {PORT_PLACEHOLDER} in command or in an env"
            f' value, e.g. {COMMAND_EXAMPLE} or env = {{ PORT = "{PORT_PLACEHOLDER}" }}',
        )
        return None
    return spec


def _converted(
    name: str, body: dict[str, Any], problems: _Problems, project_dir: Path
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, value in body.items():
        if key not in _KEYS:
            problems.add(name, _unknown_key(key))
            continue
        try:
            values[key] = _cwd(value, project_dir) if key == "cwd" else _KEYS[key](value)
        except _Invalid as exc:
            problems.add(name, f"{key} {exc}")
    return values


def _unknown_key(key: str) -> str:
    import difflib  # only on the error path: it is slow to import

    close = difflib.get_close_matches(key, list(_KEYS), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"has the unknown key {key!r}{hint}; valid keys: {', '.join(sorted(_KEYS))}"


def _uses_port(spec: ServiceSpec) -> bool:
    texts = (*spec.command, *spec.env.values())
    return any(PORT_PLACEHOLDER in text for text in texts)


def default_service(
    services: Mapping[str, ServiceSpec],
    default: str | None = None,
    *,
    source: str = "deploycheck configuration",
) -> str:
    """The service ``deploy_service`` starts: *default* (``default_service``), else the only one.

    Two services and no ``default_service`` is ambiguous, so it is an error that lists
    the names rather than a silent pick.
    """
    names = ", ".join(toml_key(n) for n in sorted(services)) or "none configured"
    table = services_table(source)
    if default is not None:
        if default in services:
            return default
        raise ConfigError(
            log_text(f"{source}: default_service {default!r} is not a service; configured: {names}")
        )
    if len(services) == 1:
        return next(iter(services))
    if not services:
        raise ConfigError(
            f"{source}: no service configured: add [{table}.NAME] with command = {COMMAND_EXAMPLE}"
        )
    raise ConfigError(
        log_text(
            f"{source}: {len(services)} services ({names}): set default_service to one of them"
        )
    )
