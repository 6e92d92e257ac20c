"""Where a run's settings come from: command line, then environment, then config file.

One resolver for every option so that ``--deploy-target``, ``DEPLOYCHECK_TARGET`` and
``target = ...`` cannot drift apart.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from .files import UnsafePathError, contained
from .names import (
    ENV_ALLOW_PARTIAL,
    ENV_CONFIG,
    ENV_EMULATE,
    ENV_HTML_REPORT,
    ENV_JSON_REPORT,
    ENV_LOCK_DIR,
    ENV_RELEASE_DIR,
    ENV_SOAK_MINUTES,
    ENV_TARGET,
    ENV_TIMING_LOCK,
)
from .regression import parse_compare_fail
from .schema import (
    EMULATE_MODES,
    EMULATE_RULE,
    PYPROJECT,
    STANDALONE,
    TIMING_LOCK_MODES,
    ConfigError,
    DeployConfig,
    config_file_problem,
    expand_user,
    find_config_file,
    load_config,
)

NO_TARGET_DIR = "no-target"


@dataclass(frozen=True)
class Settings:
    """Everything a run needs to know before the first test is collected."""

    config: DeployConfig
    target: str | None
    target_source: str
    evidence_dir: Path
    project_dir: Path
    baseline: Path | None = None
    baseline_source: str = ""
    save_baseline: Path | None = None
    soak_max_minutes: float | None = None
    soak_cap_source: str = ""
    allow_partial: bool = False
    allow_partial_source: str = ""
    timing_lock: str = "host"
    timing_lock_source: str = ""
    emulate: str = "auto"
    emulate_source: str = ""
    lock_dir: Path | None = None
    compare_fail: str = ""  # the --deploy-compare-fail text, when the tolerances came from it
    json_report: Path | None = None  # --deploy-json: a copy of report.json for a CI step
    html_report: Path | None = None  # --deploy-html: a copy of report.html
    fleet: tuple[str, ...] = ()  # --deploy-target a,b: every device runs (target is the first)
    release_dir: Path | None = None  # --deploy-release-dir: the release's checkout


def resolve_settings(
    *,
    rootdir: Path,
    invocation_dir: Path,
    cli_target: str | None = None,
    cli_config: str | None = None,
    cli_evidence_dir: str | None = None,
    cli_baseline: str | None = None,
    cli_save: str | None = None,
    cli_soak_minutes: str | None = None,
    cli_allow_partial: bool = False,
    cli_timing_lock: str | None = None,
    cli_emulate: str | None = None,
    cli_compare_fail: str | None = None,
    cli_json: str | None = None,
    cli_html: str | None = None,
    cli_release_dir: str | None = None,
    ini_config: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings | None:
    """The run's settings, or None when the project does not use deploycheck at all."""
    env = environ or {}
    cli_lock = _cli_timing_lock(cli_timing_lock)
    _check_emulate("--deploy-emulate", cli_emulate)
    config_path = _config_path(rootdir, invocation_dir, cli_config, env, ini_config)
    target, target_source = _pick(
        ("--deploy-target", cli_target), (ENV_TARGET, env.get(ENV_TARGET) or None)
    )
    if config_path is None:
        if target is not None:
            raise ConfigError(
                f"{target_source} {target!r}: no deploycheck configuration found; looked for"
                f" [tool.deploycheck] in {rootdir / PYPROJECT} and for {rootdir / STANDALONE};"
                " pass --deploy-config PATH"
            )
        return None
    config = _with_compare_fail(load_config(config_path), cli_compare_fail)
    if target is None and config.target is not None:
        target, target_source = config.target, f"target in {config_path.name}"
    fleet: tuple[str, ...] = ()
    if target is not None:
        fleet = _validate_target(config, target, target_source)
        target = fleet[0]
    baseline, baseline_source = _baseline(config, invocation_dir, cli_baseline)
    soak_cap, soak_source = _soak_cap(config, cli_soak_minutes, env)
    allow_partial, partial_source = _allow_partial(config, cli_allow_partial, env)
    timing_lock, lock_source = _timing_lock(config, cli_lock, env)
    emulate, emulate_source = _emulate(config, cli_emulate, env)
    return Settings(
        config=config,
        target=target,
        target_source=target_source,
        fleet=fleet if len(fleet) > 1 else (),
        evidence_dir=_evidence_dir(config, invocation_dir, cli_evidence_dir, target),
        project_dir=config_path.parent,
        baseline=baseline,
        baseline_source=baseline_source,
        save_baseline=_cli_path(cli_save, invocation_dir, "--deploy-save") if cli_save else None,
        soak_max_minutes=soak_cap,
        soak_cap_source=soak_source,
        allow_partial=allow_partial,
        allow_partial_source=partial_source,
        timing_lock=timing_lock,
        timing_lock_source=lock_source,
        emulate=emulate,
        emulate_source=emulate_source,
        lock_dir=_lock_dir(env),
        compare_fail=cli_compare_fail or "",
        release_dir=_release_dir(config, invocation_dir, cli_release_dir, env),
        json_report=_report_copy(
            ("--deploy-json", cli_json, ENV_JSON_REPORT, "json_report"), config, invocation_dir, env
        ),
        html_report=_report_copy(
            ("--deploy-html", cli_html, ENV_HTML_REPORT, "html_report"), config, invocation_dir, env
        ),
    )


def _report_copy(
    names: tuple[str, str | None, str, str],
    config: DeployConfig,
    invocation_dir: Path,
    env: Mapping[str, str],
) -> Path | None:
    """Where a copy of report.json or report.html goes: option, env var, config key.

    Refused at start-up where it could never be written: a directory, or a parent
    that is a file or not writable.  A missing parent is created when writing.
    """
    option, cli_value, env_name, key = names
    value, source = _pick((option, cli_value or None), (env_name, env.get(env_name) or None))
    if value is not None:
        path = _cli_path(value, invocation_dir, source)
    elif getattr(config, key) is not None:
        path, value, source = getattr(config, key), str(getattr(config, key)), key
    else:
        return None
    problem = _unwritable(path)
    if problem:
        example = "report.json" if key == "json_report" else "report.html"
        raise ConfigError(
            f"{source} {value}: {problem}; name a file in a writable directory,"
            f" e.g. {Path(value) / example if path.is_dir() else example}"
        )
    return path


def _release_dir(
    config: DeployConfig, invocation_dir: Path, cli_value: str | None, env: Mapping[str, str]
) -> Path | None:
    """The release's checkout, for pairing a changed model with its release file.

    Option, then env var, then config key (relative to the config file); it must be an
    existing directory, since a pair looked for in a typo finds nothing silently.
    """
    value, source = _pick(
        ("--deploy-release-dir", cli_value or None),
        (ENV_RELEASE_DIR, env.get(ENV_RELEASE_DIR) or None),
    )
    if value is not None:
        path = _cli_path(value, invocation_dir, source)
    elif config.release_dir is not None:
        path, value, source = config.release_dir, str(config.release_dir), "release_dir"
    else:
        return None
    if not path.is_dir():
        raise ConfigError(
            f"{source} {value}: not a directory; name the release's checkout, e.g."
            " git worktree add ../release main, then --deploy-release-dir=../release"
        )
    return path


def _unwritable(path: Path) -> str:
    """Why *path* can never be written as a file, or ''."""
    if path.is_dir():
        return "is a directory"
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"{parent} is not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{parent} is not writable"
    return ""


def _with_compare_fail(config: DeployConfig, cli_value: str | None) -> DeployConfig:
    """*config* with the ``--deploy-compare-fail`` tolerances on top of its regression table."""
    if not cli_value:
        return config
    try:
        overrides = parse_compare_fail(cli_value)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return replace(
        config,
        regression={**config.regression, **overrides},
        tolerances=config.tolerances.with_overrides(overrides),
    )


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def _allow_partial(
    config: DeployConfig, cli_value: bool, env: Mapping[str, str]
) -> tuple[bool, str]:
    """Whether a run that leaves deploy tests out may be judged, and who said so.

    A partial run is False by default: ``--deploy-allow-partial`` (or the environment
    variable, or ``allow_partial = true``) asks for a verdict on the selection instead.
    """
    if cli_value:
        return True, "--deploy-allow-partial"
    value = env.get(ENV_ALLOW_PARTIAL)
    if value is not None:
        word = value.strip().lower()
        if word not in _TRUE + _FALSE:
            raise ConfigError(
                f"{ENV_ALLOW_PARTIAL}={value!r}: expected 1, true, yes or on (judge a partial"
                " run) or 0, false, no or off (a partial run is not a release candidate)"
            )
        return word in _TRUE, f"{ENV_ALLOW_PARTIAL}={value}"
    if config.allow_partial:
        where = config.source.name if config.source else "config"
        return True, f"allow_partial in {where}"
    return False, ""


def _cli_timing_lock(value: str | None) -> str | None:
    """The command line's mode, checked before any configuration is read."""
    if value is not None and value not in TIMING_LOCK_MODES:
        raise ConfigError(_lock_mode_problem("--deploy-timing-lock", value))
    return value


def _lock_mode_problem(source: str, value: str) -> str:
    return (
        f"{source} {value!r}: expected 'host' (timed checks run one at a time, a host-wide"
        " lock) or 'off' (they may overlap under xdist)"
    )


def _timing_lock(
    config: DeployConfig, cli_value: str | None, env: Mapping[str, str]
) -> tuple[str, str]:
    """How timed checks share the host, and who said so: ``host`` unless turned off."""
    value, source = _pick(
        ("--deploy-timing-lock", cli_value),
        (ENV_TIMING_LOCK, env.get(ENV_TIMING_LOCK) or None),
    )
    if value is None:
        where = config.source.name if config.source else "config"
        return config.timing_lock, f"timing_lock in {where}"
    if value not in TIMING_LOCK_MODES:
        raise ConfigError(_lock_mode_problem(source, value))
    return value, source


def _check_emulate(source: str, value: str | None) -> None:
    """A mode named on the command line or in the environment, checked before the config."""
    if value is not None and value not in EMULATE_MODES:
        raise ConfigError(f"{source} {value!r}: {EMULATE_RULE}")


def _emulate(
    config: DeployConfig, cli_value: str | None, env: Mapping[str, str]
) -> tuple[str, str]:
    """How the target's limits are emulated, and who said so: ``auto`` unless set."""
    value, source = _pick(
        ("--deploy-emulate", cli_value), (ENV_EMULATE, env.get(ENV_EMULATE) or None)
    )
    if value is None:
        where = config.source.name if config.source else "config"
        return config.emulate, f"emulate in {where}"
    _check_emulate(source, value)
    return value, source


def _lock_dir(env: Mapping[str, str]) -> Path | None:
    """The directory of the host lock file when the environment moves it (else: temp dir)."""
    value = env.get(ENV_LOCK_DIR) or None
    if value is None:
        return None
    path = _expand(value, ENV_LOCK_DIR)
    if not path.is_dir():
        raise ConfigError(
            f"{ENV_LOCK_DIR}={value!r}: not a directory; name an existing directory that"
            " every run to be serialized can reach (default: the system temp directory)"
        )
    return path


def _soak_cap(
    config: DeployConfig, cli_value: str | None, env: Mapping[str, str]
) -> tuple[float | None, str]:
    """The longest a soak may run in this run, in minutes; None runs what markers say.

    Pull requests run short soaks and the nightly job the full ones, from the same
    tests: ``--deploy-soak-minutes=0.5`` (or the environment variable, or
    ``soak_max_minutes`` in the config) shortens every soak, and ``full`` lifts a
    configured cap.
    """
    value, source = _pick(
        ("--deploy-soak-minutes", cli_value),
        (ENV_SOAK_MINUTES, env.get(ENV_SOAK_MINUTES) or None),
    )
    if value is None:
        if config.soak_max_minutes is None:
            return None, ""
        where = config.source.name if config.source else "config"
        return config.soak_max_minutes, f"soak_max_minutes in {where}"
    if value.strip().lower() == "full":
        return None, source
    try:
        minutes = float(value)
    except ValueError:
        minutes = math.nan
    if not (math.isfinite(minutes) and minutes > 0):
        raise ConfigError(
            f"{source} {value!r}: expected a number of minutes > 0 (e.g. 0.5) or 'full'"
            " (run every soak for the minutes its marker gives)"
        )
    return minutes, f"{source}={value}"


def _cli_path(value: str, invocation_dir: Path, source: str) -> Path:
    path = _expand(value, source)
    return path if path.is_absolute() else invocation_dir / path


def _baseline(
    config: DeployConfig, invocation_dir: Path, cli_value: str | None
) -> tuple[Path | None, str]:
    """The baseline to compare with; one named on the command line must exist.

    One named in the config may not exist yet (the first run on main saves it), so
    that case is reported by the run instead of refused here.
    """
    if cli_value:
        path = _cli_path(cli_value, invocation_dir, "--deploy-baseline")
        if path.is_dir():
            raise ConfigError(f"--deploy-baseline {cli_value}: is a directory, not a baseline file")
        if not path.is_file():
            raise ConfigError(f"--deploy-baseline {cli_value}: file not found ({path})")
        return path, "--deploy-baseline"
    if config.baseline is not None:
        return config.baseline, f"baseline in {config.source.name if config.source else 'config'}"
    return None, ""


def _pick(*candidates: tuple[str, str | None]) -> tuple[str | None, str]:
    for source, value in candidates:
        if value is not None:
            return value, source
    return None, ""


def _config_path(
    rootdir: Path,
    invocation_dir: Path,
    cli_config: str | None,
    env: Mapping[str, str],
    ini_config: str | None,
) -> Path | None:
    explicit, source = _pick(
        ("--deploy-config", cli_config),
        (ENV_CONFIG, env.get(ENV_CONFIG) or None),
        ("deploy_config (ini)", ini_config or None),
    )
    if explicit is None:
        return find_config_file(rootdir)
    base = rootdir if source == "deploy_config (ini)" else invocation_dir
    path = _expand(explicit, source)
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        problem = config_file_problem(path) if path.is_dir() else "file not found"
        raise ConfigError(f"{source} {explicit}: {problem} ({path})")
    return path


def _expand(value: str, source: str) -> Path:
    try:
        return expand_user(value)
    except ConfigError as exc:
        raise ConfigError(f"{source} {exc}") from None


def _validate_target(config: DeployConfig, target: str, source: str) -> tuple[str, ...]:
    """The targets *target* names: one, or several devices that each have a ``host``."""
    names = tuple(dict.fromkeys(name.strip() for name in target.split(",")))
    if len(names) > 1:
        for name in names:
            _validate_target(config, name, source)
        without = [name for name in names if not config.device(name).host]
        if without:
            raise ConfigError(
                f"{source} {target!r}: one target per run, unless every target has a host"
                f" (an execnet gateway spec); {without[0]!r} has none: add host = ... to its"
                " row, or run pytest once per target"
            )
        return names
    if not config.devices:
        raise ConfigError(
            f"{source} {target!r}: {config.source} defines no devices; add a [[devices]] table"
        )
    try:
        config.device(target)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return (target,)


def _evidence_dir(
    config: DeployConfig, invocation_dir: Path, cli_value: str | None, target: str | None
) -> Path:
    if cli_value:
        base = _expand(cli_value, "--deploy-evidence-dir")
        base = base if base.is_absolute() else invocation_dir / base
    else:
        base = config.evidence_dir
    try:
        # The schema allows only safe device names; this holds even if it did not.
        return contained(base, target or NO_TARGET_DIR)
    except UnsafePathError as exc:
        raise ConfigError(f"target {exc}") from None
