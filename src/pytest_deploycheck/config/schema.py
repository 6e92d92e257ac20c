"""The deploycheck configuration: target, budgets, models and the devices table.

Read from ``[tool.deploycheck]`` in pyproject.toml, or the same keys at the top of a
``deploycheck.toml``.  Everything is validated up front so that a typo surfaces at
start-up as one line naming the file, the table and the key, never as a wrong figure
half-way through a run.  This module imports no pytest: the plugin turns
:class:`ConfigError` into ``pytest.UsageError``.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError as ConfigError
from .escape import log_text
from .files import is_inside
from .providers import OptionValue, parse_provider_options, provider_names
from .regression import (
    CHECKS_KEY,
    HOST_DRIFT_KEY,
    MODE_KEY,
    TOLERANCE_RULES,
    Tolerances,
    host_drift_problem,
    mode_problem,
    tolerance_problem,
)
from .services import ServiceSpec, default_service, parse_services
from .units import MAX_FIGURE, as_float, figure_problem, shown

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

PYPROJECT = "pyproject.toml"
STANDALONE = "deploycheck.toml"
DEFAULT_EVIDENCE_DIR = "deploycheck-evidence"
DEFAULT_EXECUTION_PROVIDERS = ("CPUExecutionProvider",)
MAX_CPUS = 1024  # a device's cores; the runtime's thread pool is sized from it
# A device name becomes the evidence directory's name: nothing that could leave it.
DEVICE_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
DEVICE_NAME_RULE = "letters, digits, '.', '_' or '-', at most 64 characters, not '.' or '..'"


@dataclass(frozen=True)
class Device:
    """One row of the devices table: what a target can hold and how it runs models."""

    name: str
    memory_mb: float | None = None
    power_w: float | None = None
    offline: bool | None = None
    cpus: int | None = None
    price_usd: float | None = None
    execution_providers: tuple[str, ...] = DEFAULT_EXECUTION_PROVIDERS
    latency_factor: float | None = None
    description: str = ""
    host: str = ""  # an execnet gateway spec (xdist --tx): the tests then run there
    # provider -> option -> value (config/providers.py): passed to onnxruntime as strings.
    provider_options: Mapping[str, Mapping[str, OptionValue]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "memory_mb": self.memory_mb,
            "power_w": self.power_w,
            "offline": self.offline,
            "cpus": self.cpus,
            "price_usd": self.price_usd,
            "execution_providers": list(self.execution_providers),
            "latency_factor": self.latency_factor,
            "description": self.description,
            "host": self.host,
            "provider_options": {k: dict(v) for k, v in self.provider_options.items()},
        }


@dataclass(frozen=True)
class ModelSpec:
    """A named model file with the facts its owner declares about it."""

    name: str
    path: Path
    memory_mb: float | None = None
    power_w: float | None = None
    requires_offline: bool = False
    input_shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    description: str = ""
    # The batch size the model is deployed with: accuracy is evaluated at it.
    batch: int = 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path),
            "memory_mb": self.memory_mb,
            "power_w": self.power_w,
            "requires_offline": self.requires_offline,
            "input_shapes": {k: list(v) for k, v in self.input_shapes.items()},
            "description": self.description,
            "batch": self.batch,
        }


@dataclass(frozen=True)
class Budgets:
    """Budget defaults used by checks that are written without an explicit budget."""

    latency_ms: float | None = None
    latency_percentile: float = 95.0
    memory_mb: float | None = None
    accuracy_drop: float | None = None
    throughput_items_per_s: float | None = None
    cold_start_ms: float | None = None
    soak_minutes: float | None = None
    soak_growth_mb_per_hour: float | None = None
    soak_error_rate: float | None = None
    soak_latency_drift_pct: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "latency_ms": self.latency_ms,
            "latency_percentile": self.latency_percentile,
            "memory_mb": self.memory_mb,
            "accuracy_drop": self.accuracy_drop,
            "throughput_items_per_s": self.throughput_items_per_s,
            "cold_start_ms": self.cold_start_ms,
            "soak_minutes": self.soak_minutes,
            "soak_growth_mb_per_hour": self.soak_growth_mb_per_hour,
            "soak_error_rate": self.soak_error_rate,
            "soak_latency_drift_pct": self.soak_latency_drift_pct,
        }


@dataclass(frozen=True)
class DeployConfig:
    """The validated configuration of one project."""

    source: Path | None = None
    table: str = ""
    target: str | None = None
    default_model: str | None = None
    evidence_dir: Path = Path(DEFAULT_EVIDENCE_DIR)
    required_evidence: tuple[str, ...] = ()
    all_devices_must_fit: bool = False
    budgets: Budgets = field(default_factory=Budgets)
    baseline: Path | None = None
    regression: Mapping[str, Any] = field(default_factory=dict)  # as written, for the record
    tolerances: Tolerances = field(default_factory=Tolerances)  # the same table, built
    models: Mapping[str, ModelSpec] = field(default_factory=dict)
    devices: tuple[Device, ...] = ()
    soak_max_minutes: float | None = None
    enforce_requires_offline: bool = False
    # A run that leaves deploy tests out may still be judged (a caveat says so).
    allow_partial: bool = False
    # How timed checks share the host: "host" (one at a time, a host-wide lock) or "off".
    timing_lock: str = "host"
    emulate: str = "auto"
    services: Mapping[str, ServiceSpec] = field(default_factory=dict)
    default_service: str | None = None
    # Extra copies of report.json / report.html where a CI step wants them.
    json_report: Path | None = None
    html_report: Path | None = None
    # Where the release's checkout is (its model files at their recorded paths), for
    # the paired A/B timing of a changed model (verdict.release_models).
    release_dir: Path | None = None

    @property
    def device_names(self) -> list[str]:
        return [device.name for device in self.devices]

    def device(self, name: str) -> Device:
        """The device called *name*, or a ConfigError that lists the valid names."""
        for device in self.devices:
            if device.name == name:
                return device
        raise ConfigError(_unknown_name_message("device", name, self.device_names, self._where()))

    def model(self, name: str) -> ModelSpec:
        """The model called *name*, or a ConfigError that lists the valid names."""
        if name in self.models:
            return self.models[name]
        raise ConfigError(_unknown_name_message("model", name, list(self.models), self._where()))

    def resolve_default_model(self) -> str:
        """The model a test gets when it names none.

        ``default_model`` when set, else the model called ``optimized`` (the name the
        documentation uses), else the only model.
        """
        if self.default_model is not None:
            return self.default_model
        if "optimized" in self.models:
            return "optimized"
        if len(self.models) == 1:
            return next(iter(self.models))
        names = ", ".join(sorted(self.models)) or "none configured"
        raise ConfigError(
            f"{self._where()}: no default model: set default_model to one of: {names}"
        )

    def resolve_default_service(self) -> str:
        """The service ``deploy_service`` starts: ``default_service``, else the only one."""
        return default_service(self.services, self.default_service, source=self._source_name())

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": str(self.source) if self.source else None,
            "target": self.target,
            "default_model": self.default_model,
            "evidence_dir": str(self.evidence_dir),
            "required_evidence": list(self.required_evidence),
            "all_devices_must_fit": self.all_devices_must_fit,
            "budgets": self.budgets.as_dict(),
            "baseline": str(self.baseline) if self.baseline else None,
            "regression": dict(self.regression),
            "models": {name: spec.as_dict() for name, spec in self.models.items()},
            "devices": [device.as_dict() for device in self.devices],
            "soak_max_minutes": self.soak_max_minutes,
            "enforce_requires_offline": self.enforce_requires_offline,
            "allow_partial": self.allow_partial,
            "timing_lock": self.timing_lock,
            "emulate": self.emulate,
            "services": {name: spec.as_dict() for name, spec in self.services.items()},
            "default_service": self.default_service,
            "json_report": str(self.json_report) if self.json_report else None,
            "html_report": str(self.html_report) if self.html_report else None,
            "release_dir": str(self.release_dir) if self.release_dir else None,
        }

    def _source_name(self) -> str:
        return self.source.name if self.source is not None else "deploycheck configuration"

    def _where(self) -> str:
        if self.source is None:
            return "deploycheck configuration"
        return f"{self.source.name} {self.table}".strip()


# --------------------------------------------------------------------------- discovery


def find_config_file(rootdir: Path) -> Path | None:
    """The config file that applies to *rootdir*, or None when the project has none.

    A ``deploycheck.toml`` and a ``[tool.deploycheck]`` table in the same directory
    would silently shadow one another, so that is an error.
    """
    standalone = rootdir / STANDALONE
    pyproject = rootdir / PYPROJECT
    has_table = pyproject.is_file() and _pyproject_has_table(pyproject)
    if standalone.is_file() and has_table:
        raise ConfigError(
            f"both {standalone} and [tool.deploycheck] in {pyproject} configure deploycheck;"
            " keep one of them"
        )
    if standalone.is_file():
        return standalone
    return pyproject if has_table else None


def _pyproject_has_table(path: Path) -> bool:
    document = _read_toml(path)
    tool = document.get("tool")
    return isinstance(tool, dict) and "deploycheck" in tool


def load_config(path: Path) -> DeployConfig:
    """Read and validate *path* (a pyproject.toml or a deploycheck.toml)."""
    problem = config_file_problem(path)
    if problem:
        raise ConfigError(f"{path}: {problem}")
    document = _read_toml(path)
    if path.name == PYPROJECT:
        tool = document.get("tool", {})
        if not isinstance(tool, dict) or "deploycheck" not in tool:
            raise ConfigError(f"{path}: has no [tool.deploycheck] table")
        return parse_config(tool["deploycheck"], source=path, table="[tool.deploycheck]")
    return parse_config(document, source=path, table="")


def config_file_problem(path: Path) -> str | None:
    """Why *path* cannot be a configuration file (missing, a directory), or None."""
    if path.is_dir():
        return f"is a directory; give the {PYPROJECT} or {STANDALONE} file in it"
    if not path.is_file():
        return "configuration file not found"
    return None


def read_text(path: Path) -> str:
    """The file's text, decoded as UTF-8 (as TOML files are).

    A file in another encoding (a latin-1 ``é``) or a binary file is a ConfigError
    naming the file and where the first undecodable byte is, not a UnicodeDecodeError.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: {undecodable(data, exc)}") from None


def undecodable(data: bytes, error: UnicodeDecodeError) -> str:
    """Where *data* stops being UTF-8, in words: the byte, its offset, line and column."""
    line = data.count(b"\n", 0, error.start) + 1
    column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
    return (
        f"not UTF-8 text: byte 0x{data[error.start]:02x} at offset {error.start}"
        f" (line {line}, column {column}); save the file as UTF-8"
    )


def _read_toml(path: Path) -> dict[str, Any]:
    text = read_text(path)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid TOML: arrays or tables nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise ConfigError(f"{path}: invalid TOML: {_first_line(str(exc))}") from None


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else "unreadable"


# --------------------------------------------------------------------------- validation

Converter = Callable[[Any], Any]


class _Errors:
    """Collects every problem so that one run reports them all, one line each."""

    def __init__(self, source: Path | None) -> None:
        self.source = source
        self.lines: list[str] = []

    def add(self, where: str, message: str) -> None:
        prefix = self.source.name if self.source is not None else "deploycheck configuration"
        line = f"{prefix}: {where}: {message}" if where else f"{prefix}: {message}"
        self.lines.append(log_text(line))  # one line, whatever the names in it hold

    def raise_if_any(self) -> None:
        if self.lines:
            error = ConfigError(self.lines[0])
            error.args = tuple(self.lines)
            raise error


class _Invalid(Exception):
    """Raised by a converter; carries what would be valid."""


def _number(*, positive: bool = True, allow_zero: bool = False) -> Converter:
    def convert(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Invalid(f"expected a number, got {_describe(value)}")
        number = as_float(value)
        if not math.isfinite(number):
            written = value if isinstance(value, float) else _describe(value)
            raise _Invalid(f"expected a finite number, got {written}")
        if positive and (number < 0 or (number == 0 and not allow_zero)):
            bound = ">= 0" if allow_zero else "> 0"
            raise _Invalid(f"expected a number {bound}, got {shown(value)}")
        problem = figure_problem(abs(number), allow_zero=allow_zero or not positive)
        if problem:
            raise _Invalid(f"{problem}, got {shown(value)}")
        return number

    return convert


def _percentile(value: Any) -> float:
    number: float = _number()(value)
    if not 0 < number < 100:
        raise _Invalid(f"expected a percentile between 0 and 100 (exclusive), got {value}")
    return number


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _Invalid(f"expected a whole number >= 1, got {_describe(value)}")
    if value > MAX_FIGURE:
        raise _Invalid(f"expected a whole number from 1 to 1e12, got {_describe(value)}")
    return value


def _cpu_count(value: Any) -> int:
    # The count sizes onnxruntime's thread pool: 5000 took minutes to build, 10**30 is
    # a bare TypeError from its bindings.
    count = _positive_int(value)
    if count > MAX_CPUS:
        raise _Invalid(f"expected a whole number of cores from 1 to {MAX_CPUS}, got {count}")
    return count


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"expected true or false, got {_describe(value)}")
    return value


TIMING_LOCK_MODES = ("host", "off")
# How the target's limits are emulated on the host; "auto" enforces where it can.
EMULATE_MODES = ("auto", "enforce", "pin", "off")
EMULATE_RULE = (
    "expected 'auto' (cgroup limits where the host allows them, else pinned cores),"
    " 'enforce' (cgroup limits or a start-up error), 'pin' (pinned cores only) or 'off'"
)


def _emulate(value: Any) -> str:
    if value not in EMULATE_MODES:
        raise _Invalid(f"{EMULATE_RULE}, got {_describe(value)}")
    return str(value)


def _timing_lock(value: Any) -> str:
    if value not in TIMING_LOCK_MODES:
        raise _Invalid(
            f"expected 'host' (timed checks run one at a time, a host-wide lock) or 'off',"
            f" got {_describe(value)}"
        )
    return str(value)


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"expected a string, got {_describe(value)}")
    return value


def _name(value: Any) -> str:
    text = _string(value).strip()
    if not text or any(ch.isspace() or ch in ",[]" for ch in text):
        raise _Invalid(
            f"expected a non-empty name without spaces, commas or brackets, got {value!r}"
        )
    return text


def _device_name(value: Any) -> str:
    text = _string(value).strip()
    if not DEVICE_NAME.fullmatch(text) or text in (".", ".."):
        raise _Invalid(f"expected a device name of {DEVICE_NAME_RULE}, got {_describe(value)}")
    return text


GATEWAY_KINDS = ("popen", "ssh", "socket", "vagrant_ssh")
GATEWAY_KEYS = ("id", "chdir", "python", "nice", "dont_write_bytecode", "execmodel", "ssh_config")
GATEWAY_RULE = (
    "an execnet gateway spec as xdist's --tx takes it, e.g."
    " 'ssh=pi@edge-c.local//python=/opt/venv/bin/python//chdir=/home/pi/project'"
    " or 'popen//python=/usr/bin/python3'"
)


def gateway_spec(text: str) -> str:
    """*text* if it has the shape of one execnet gateway spec, else a one-line error.

    Checked here, without execnet: a typo in a device row is a config error at start-up,
    not a failed connection minutes later.  ``N*`` and ``via=`` are xdist's business.
    """
    parts = text.strip().split("//")
    keys = [part.partition("=")[0] for part in parts]
    kinds = [key for key in keys if key in GATEWAY_KINDS]
    unknown = [
        k for k in keys if k not in (*GATEWAY_KINDS, *GATEWAY_KEYS) and not k.startswith("env:")
    ]
    bare = [p for p in parts if ("=" not in p and p != "popen") or p.endswith("=")]
    if len(kinds) != 1 or unknown or bare or "*" in keys[0]:
        raise _Invalid(f"expected {GATEWAY_RULE}, got {text!r}")
    return text.strip()


def _string_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _Invalid(f"expected a list of non-empty strings, got {_describe(value)}")
    return tuple(value)


def _shapes(value: Any) -> dict[str, tuple[int, ...]]:
    if not isinstance(value, dict):
        raise _Invalid(
            "expected a table of input name = list of whole numbers, e.g. { image = [1, 1, 8, 8] }"
        )
    shapes: dict[str, tuple[int, ...]] = {}
    for input_name, dims in value.items():
        valid = (
            isinstance(dims, list)
            and dims
            and all(
                isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= MAX_FIGURE
                for d in dims
            )
        )
        if not valid:
            raise _Invalid(
                f"input {input_name!r}: expected a list of whole numbers >= 1 (at most 1e12),"
                f" got {_describe(dims)}"
            )
        shapes[input_name] = tuple(dims)
    return shapes


def _describe(value: Any) -> str:
    kind = {
        bool: "a boolean",
        int: "a whole number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)
    return f"{kind} ({shown(value)})"


@dataclass(frozen=True)
class _Key:
    convert: Converter
    required: bool = False


_TOP_KEYS: dict[str, _Key] = {
    "target": _Key(_name),
    "default_model": _Key(_name),
    "evidence_dir": _Key(_string),
    "required_evidence": _Key(_string_list),
    "all_devices_must_fit": _Key(_boolean),
    "baseline": _Key(_string),
    "json_report": _Key(_string),
    "release_dir": _Key(_string),
    "html_report": _Key(_string),
    "soak_max_minutes": _Key(_number()),
    "enforce_requires_offline": _Key(_boolean),
    "allow_partial": _Key(_boolean),
    "timing_lock": _Key(_timing_lock),
    "emulate": _Key(_emulate),
    "budgets": _Key(lambda v: v),
    "regression": _Key(lambda v: v),
    "models": _Key(lambda v: v),
    "devices": _Key(lambda v: v),
    "services": _Key(lambda v: v),
    "default_service": _Key(_string),
}

_BUDGET_KEYS: dict[str, _Key] = {
    "latency_ms": _Key(_number()),
    "latency_percentile": _Key(_percentile),
    "memory_mb": _Key(_number()),
    "accuracy_drop": _Key(_number(allow_zero=True)),
    "throughput_items_per_s": _Key(_number()),
    "cold_start_ms": _Key(_number()),
    "soak_minutes": _Key(_number()),
    "soak_growth_mb_per_hour": _Key(_number()),
    "soak_error_rate": _Key(lambda v: _unit_interval(v)),
    "soak_latency_drift_pct": _Key(_number()),
}


def _unit_interval(value: Any) -> float:
    number: float = _number(allow_zero=True)(value)
    if number > 1:
        raise _Invalid(f"expected a fraction of calls from 0 to 1, e.g. 0.001, got {value}")
    return number


def _tolerance(key: str) -> Converter:
    """The converter of one regression tolerance, by the rule config/regression.py gives it."""

    def convert(value: Any) -> float:
        problem = tolerance_problem(key, value)
        if problem:
            raise _Invalid(problem)
        return float(value)

    return convert


def _host_drift_policy(value: Any) -> str:
    problem = host_drift_problem(value)
    if problem:
        raise _Invalid(problem)
    return str(value)


def _mismatch_policy(value: Any) -> str:
    problem = mode_problem(value)
    if problem:
        raise _Invalid(problem)
    return str(value)


_TOLERANCE_KEYS: dict[str, _Key] = {key: _Key(_tolerance(key)) for key in TOLERANCE_RULES}
_REGRESSION_KEYS: dict[str, _Key] = {
    **_TOLERANCE_KEYS,
    MODE_KEY: _Key(_mismatch_policy),
    HOST_DRIFT_KEY: _Key(_host_drift_policy),
    CHECKS_KEY: _Key(lambda v: v),
}

_MODEL_KEYS: dict[str, _Key] = {
    "path": _Key(_string, required=True),
    "memory_mb": _Key(_number()),
    "power_w": _Key(_number()),
    "requires_offline": _Key(_boolean),
    "input_shapes": _Key(_shapes),
    "description": _Key(_string),
    "batch": _Key(_positive_int),
}

_DEVICE_KEYS: dict[str, _Key] = {
    "name": _Key(_device_name, required=True),
    "memory_mb": _Key(_number()),
    "power_w": _Key(_number()),
    "offline": _Key(_boolean),
    "cpus": _Key(_cpu_count),
    "price_usd": _Key(_number(allow_zero=True)),
    "execution_providers": _Key(lambda value: provider_names(_string_list(value))),
    "provider_options": _Key(lambda value: value),  # checked against the providers below
    "latency_factor": _Key(_number()),
    "description": _Key(_string),
    "host": _Key(lambda value: gateway_spec(_string(value))),
}

VALID_KEYS: Mapping[str, Sequence[str]] = {
    "top": tuple(_TOP_KEYS),
    "budgets": tuple(_BUDGET_KEYS),
    "regression": tuple(_REGRESSION_KEYS),
    "models": tuple(_MODEL_KEYS),
    "devices": tuple(_DEVICE_KEYS),
}


def _validate_table(
    raw: Mapping[str, Any], schema: Mapping[str, _Key], where: str, errors: _Errors
) -> dict[str, Any]:
    """Convert the known keys of *raw*; report unknown, missing and ill-typed ones."""
    values: dict[str, Any] = {}
    for key, value in raw.items():
        spec = schema.get(key)
        if spec is None:
            errors.add(where, _unknown_key_message(key, schema))
            continue
        try:
            values[key] = spec.convert(value)
        except _Invalid as exc:
            errors.add(where, f"{key}: {exc}")
    for key, spec in schema.items():
        if spec.required and key not in raw:
            errors.add(where, f"missing required key {key!r}")
    return values


def _unknown_key_message(key: str, schema: Mapping[str, _Key]) -> str:
    import difflib  # only on the error path: it is slow to import

    close = difflib.get_close_matches(key, list(schema), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown key {key!r}; {hint}valid keys: {', '.join(schema)}"


def _unknown_name_message(kind: str, name: str, valid: Sequence[str], where: str) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    listing = ", ".join(valid) if valid else f"none: add a {kind}s table"
    return f"unknown {kind} {name!r}{hint}; {where} defines: {listing}"


def parse_config(
    raw: Mapping[str, Any], *, source: Path | None = None, table: str = "[tool.deploycheck]"
) -> DeployConfig:
    """Validate the parsed TOML table *raw* and build a :class:`DeployConfig`.

    Relative paths are resolved against the directory of *source* (the current
    directory when there is none).  Every problem is collected; the raised
    :class:`ConfigError` carries one line per problem in ``args``.
    """
    errors = _Errors(source)
    base = source.parent if source is not None else Path.cwd()
    prefix = f"{table.strip('[]')}." if table else ""
    if not isinstance(raw, Mapping):
        errors.add(table, f"expected a table, got {_describe(raw)}")
        errors.raise_if_any()
    top = _validate_table(raw, _TOP_KEYS, table, errors)
    budgets = _parse_budgets(raw.get("budgets", {}), f"[{prefix}budgets]", errors)
    regression = _parse_regression(raw.get("regression", {}), f"{prefix}regression", errors)
    models = _parse_models(raw.get("models", {}), prefix, base, errors)
    devices = _parse_devices(raw.get("devices", []), prefix, errors)
    services = _parse_services(raw.get("services"), source, base, errors)
    errors.raise_if_any()
    config = DeployConfig(
        source=source,
        table=table,
        target=top.get("target"),
        default_model=top.get("default_model"),
        evidence_dir=_resolve_or_report(
            base, top.get("evidence_dir", DEFAULT_EVIDENCE_DIR), table, "evidence_dir", errors
        ),
        required_evidence=_required_evidence(top.get("required_evidence", ()), base, table, errors),
        all_devices_must_fit=top.get("all_devices_must_fit", False),
        budgets=budgets,
        baseline=_resolve_or_report(base, top["baseline"], table, "baseline", errors)
        if "baseline" in top
        else None,
        regression=regression,
        tolerances=Tolerances.from_validated(regression),
        models=models,
        devices=devices,
        soak_max_minutes=top.get("soak_max_minutes"),
        enforce_requires_offline=top.get("enforce_requires_offline", False),
        allow_partial=top.get("allow_partial", False),
        timing_lock=top.get("timing_lock", "host"),
        emulate=top.get("emulate", "auto"),
        services=services,
        default_service=top.get("default_service"),
        json_report=_optional_path(base, top, table, "json_report", errors),
        html_report=_optional_path(base, top, table, "html_report", errors),
        release_dir=_optional_path(base, top, table, "release_dir", errors),
    )
    _check_references(config, errors)
    errors.raise_if_any()
    return config


def _resolve(base: Path, value: str) -> Path:
    path = expand_user(value)
    return path if path.is_absolute() else base / path


def expand_user(value: str) -> Path:
    """``~`` expanded, or a ConfigError when the home directory is unknown."""
    try:
        return Path(value).expanduser()
    except RuntimeError:
        raise ConfigError(f"{value}: cannot expand '~': the home directory is unknown") from None


def _optional_path(
    base: Path, top: Mapping[str, Any], where: str, key: str, errors: _Errors
) -> Path | None:
    """The path *key* names, relative to the config file's directory; None if not set."""
    return _resolve_or_report(base, top[key], where, key, errors) if key in top else None


def _resolve_or_report(base: Path, value: str, where: str, key: str, errors: _Errors) -> Path:
    try:
        return _resolve(base, value)
    except ConfigError as exc:
        errors.add(where, f"{key}: {exc}")
        return base / DEFAULT_EVIDENCE_DIR


def _required_evidence(
    names: Sequence[str], base: Path, where: str, errors: _Errors
) -> tuple[str, ...]:
    """The entries that are relative paths inside the project; the others reported.

    An entry is looked for (and copied into the evidence) under the project and the
    evidence directory, so one that leads out of either would read or write elsewhere.
    """
    inside = []
    for name in names:
        path = Path(name)
        if path.is_absolute() or not path.parts or ".." in path.parts:
            problem = "expected a relative path inside the project, without '..'"
        elif not is_inside(base / path, base):
            problem = f"leads outside the project ({base}) through a symlink"
        else:
            inside.append(name)
            continue
        errors.add(where, f"required_evidence: {name!r}: {problem}")
    return tuple(inside)


def _parse_budgets(raw: Any, where: str, errors: _Errors) -> Budgets:
    if not isinstance(raw, Mapping):
        errors.add(where, f"expected a table, got {_describe(raw)}")
        return Budgets()
    return Budgets(**_validate_table(raw, _BUDGET_KEYS, where, errors))


def _parse_regression(raw: Any, name: str, errors: _Errors) -> dict[str, Any]:
    """Regression tolerances, with per-check overrides in [regression.checks.NAME]."""
    if not isinstance(raw, Mapping):
        errors.add(f"[{name}]", f"expected a table, got {_describe(raw)}")
        return {}
    values = _validate_table(raw, _REGRESSION_KEYS, f"[{name}]", errors)
    overrides = values.pop(CHECKS_KEY, {})
    if not isinstance(overrides, Mapping):
        errors.add(
            f"[{name}.{CHECKS_KEY}]",
            f"expected a table of check names, e.g. [{name}.{CHECKS_KEY}.latency_under_80],"
            f" got {_describe(overrides)}",
        )
        return values
    values[CHECKS_KEY] = {}
    for check, table in overrides.items():
        where = f"[{name}.{CHECKS_KEY}.{check}]"
        if not isinstance(table, Mapping):
            errors.add(where, f"expected a table of tolerances, got {_describe(table)}")
            continue
        values[CHECKS_KEY][str(check)] = _validate_table(table, _TOLERANCE_KEYS, where, errors)
    return values


def _parse_models(raw: Any, prefix: str, base: Path, errors: _Errors) -> dict[str, ModelSpec]:
    if not isinstance(raw, Mapping):
        errors.add(f"[{prefix}models]", f"expected a table of named models, got {_describe(raw)}")
        return {}
    models: dict[str, ModelSpec] = {}
    for name, table in raw.items():
        where = f"[{prefix}models.{name}]"
        if not isinstance(table, Mapping):
            errors.add(where, f"expected a table with at least a path, got {_describe(table)}")
            continue
        values = _validate_table(table, _MODEL_KEYS, where, errors)
        if "path" not in values:
            continue
        try:
            path = _resolve(base, values.pop("path"))
        except ConfigError as exc:
            errors.add(where, f"path: {exc}")
            continue
        problem = _model_file_problem(path)
        if problem:
            errors.add(where, f"path: {problem}")
            continue
        models[name] = ModelSpec(name=name, path=path, **values)
    return models


def _model_file_problem(path: Path) -> str | None:
    try:
        found = path.is_file()
    except OSError as exc:  # a name too long for the file system, a loop of symlinks
        return f"cannot be read: {path}: {exc.strerror or exc}"
    return None if found else f"model file not found: {path}"


def _parse_devices(raw: Any, prefix: str, errors: _Errors) -> tuple[Device, ...]:
    if not isinstance(raw, list):
        errors.add(
            f"[[{prefix}devices]]",
            f"expected an array of tables ([[{prefix}devices]]), got {_describe(raw)}",
        )
        return ()
    devices: list[Device] = []
    seen: dict[str, int] = {}
    for index, table in enumerate(raw, start=1):
        where = f"[[{prefix}devices]] #{index}"
        if not isinstance(table, Mapping):
            errors.add(where, f"expected a table, got {_describe(table)}")
            continue
        if isinstance(table.get("name"), str):
            where = f"{where} ({table['name']})"
        values = _validate_table(table, _DEVICE_KEYS, where, errors)
        if "name" not in values:
            continue
        name = values["name"]
        if name in seen:
            errors.add(where, f"duplicate device name {name!r} (first defined in #{seen[name]})")
            continue
        seen[name] = index
        if "provider_options" in values:
            providers = values.get("execution_providers", DEFAULT_EXECUTION_PROVIDERS)
            values["provider_options"], problems = parse_provider_options(
                values["provider_options"], providers
            )
            for problem in problems:
                errors.add(where, problem)
        devices.append(Device(**values))
    return tuple(devices)


def _parse_services(
    raw: Any, source: Path | None, base: Path, errors: _Errors
) -> dict[str, ServiceSpec]:
    """``[services.NAME]`` tables (config/services.py words their problems, one line each)."""
    name = source.name if source is not None else "deploycheck configuration"
    try:
        return parse_services(raw, source=name, project_dir=base)
    except ConfigError as exc:
        errors.lines.extend(log_text(str(line)) for line in exc.args)
        return {}


def _check_references(config: DeployConfig, errors: _Errors) -> None:
    where = config.table
    if config.target is not None and config.devices and config.target not in config.device_names:
        errors.add(
            where,
            "target: "
            + _unknown_name_message("device", config.target, config.device_names, "devices table"),
        )
    if config.target is not None and not config.devices:
        errors.add(
            where,
            f"target: {config.target!r} is set but no devices are defined;"
            f" add a [[{config.table.strip('[]') + '.' if config.table else ''}devices]] table",
        )
    if config.default_model is not None and config.default_model not in config.models:
        errors.add(
            where,
            "default_model: "
            + _unknown_name_message("model", config.default_model, list(config.models), "models"),
        )
    if config.default_service is not None and config.default_service not in config.services:
        errors.add(
            where,
            "default_service: "
            + _unknown_name_message(
                "service", config.default_service, list(config.services), "services"
            ),
        )
