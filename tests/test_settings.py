"""Unit tests of settings.py: command line, then environment, then config file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_deploycheck.config.schema import ConfigError
from pytest_deploycheck.config.settings import ENV_CONFIG, ENV_TARGET, Settings, resolve_settings

DEVICES = """
[[tool.deploycheck.devices]]
name = "edge-a"
[[tool.deploycheck.devices]]
name = "edge-b"
[[tool.deploycheck.devices]]
name = "edge-c"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project whose pyproject names edge-a as its target."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "pyproject.toml").write_text(
        '[tool.deploycheck]\ntarget = "edge-a"\n' + DEVICES, encoding="utf-8"
    )
    return root


def resolve(root: Path, **kwargs: Any) -> Settings:
    kwargs.setdefault("invocation_dir", root)
    settings = resolve_settings(rootdir=root, **kwargs)
    assert settings is not None
    return settings


def resolve_error(root: Path, **kwargs: Any) -> str:
    kwargs.setdefault("invocation_dir", root)
    with pytest.raises(ConfigError) as excinfo:
        resolve_settings(rootdir=root, **kwargs)
    return str(excinfo.value)


# --------------------------------------------------------------------------- target


def test_command_line_target_beats_environment_and_config(project: Path) -> None:
    settings = resolve(project, cli_target="edge-c", environ={ENV_TARGET: "edge-b"})

    assert settings.target == "edge-c"
    assert settings.target_source == "--deploy-target"


def test_environment_target_beats_config(project: Path) -> None:
    settings = resolve(project, environ={ENV_TARGET: "edge-b"})

    assert settings.target == "edge-b"
    assert settings.target_source == ENV_TARGET


def test_config_target_is_used_when_nothing_else_names_one(project: Path) -> None:
    settings = resolve(project, environ={})

    assert settings.target == "edge-a"
    assert settings.target_source == "target in pyproject.toml"


def test_an_empty_environment_target_is_ignored(project: Path) -> None:
    assert resolve(project, environ={ENV_TARGET: ""}).target == "edge-a"


def test_no_target_anywhere(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.deploycheck]\n" + DEVICES, encoding="utf-8")

    settings = resolve(tmp_path)

    assert settings.target is None
    assert settings.evidence_dir == tmp_path / "deploycheck-evidence" / "no-target"


def test_a_comma_in_the_target_is_one_target_per_run(project: Path) -> None:
    message = resolve_error(project, cli_target="edge-a,edge-b")

    assert "--deploy-target 'edge-a,edge-b'" in message
    assert "one target per run" in message


def test_a_comma_in_the_environment_target_is_refused_too(project: Path) -> None:
    message = resolve_error(project, environ={ENV_TARGET: "edge-a,edge-c"})

    assert message.startswith(ENV_TARGET)
    assert "one target per run" in message


def test_unknown_target_lists_the_valid_names_and_its_source(project: Path) -> None:
    message = resolve_error(project, cli_target="edge-z")

    assert message.startswith("--deploy-target: ")
    assert "unknown device 'edge-z'" in message
    assert "edge-a, edge-b, edge-c" in message


def test_target_for_a_config_without_devices_says_to_add_them(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.deploycheck]\n", encoding="utf-8")

    message = resolve_error(tmp_path, cli_target="edge-a")

    assert "defines no devices" in message


def test_target_without_any_config_file_points_to_deploy_config(tmp_path: Path) -> None:
    message = resolve_error(tmp_path, cli_target="edge-c")

    assert message.startswith("--deploy-target 'edge-c': no deploycheck configuration found")
    assert str(tmp_path / "pyproject.toml") in message
    assert "--deploy-config" in message


def test_environment_target_without_any_config_file_is_an_error(tmp_path: Path) -> None:
    message = resolve_error(tmp_path, environ={ENV_TARGET: "edge-c"})

    assert message.startswith(f"{ENV_TARGET} 'edge-c'")
    assert "--deploy-config" in message


def test_unconfigured_project_gets_no_settings(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n", encoding="utf-8")

    assert resolve_settings(rootdir=tmp_path, invocation_dir=tmp_path) is None


# --------------------------------------------------------------------------- config file


def test_explicit_config_path_is_relative_to_the_invocation_dir(tmp_path: Path) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "staging.toml").write_text('[[devices]]\nname = "edge-s"\n', encoding="utf-8")

    settings = resolve(
        tmp_path / "elsewhere", invocation_dir=tmp_path, cli_config="configs/staging.toml"
    )

    assert settings.config.device_names == ["edge-s"]
    assert settings.project_dir == configs


def test_environment_config_path_is_used(tmp_path: Path) -> None:
    (tmp_path / "dc.toml").write_text('[[devices]]\nname = "edge-e"\n', encoding="utf-8")

    settings = resolve(tmp_path, environ={ENV_CONFIG: "dc.toml"})

    assert settings.config.device_names == ["edge-e"]


def test_command_line_config_beats_environment_and_ini(tmp_path: Path) -> None:
    for name in ("cli", "env", "ini"):
        (tmp_path / f"{name}.toml").write_text(f'[[devices]]\nname = "{name}"\n', encoding="utf-8")

    settings = resolve(
        tmp_path, cli_config="cli.toml", environ={ENV_CONFIG: "env.toml"}, ini_config="ini.toml"
    )

    assert settings.config.device_names == ["cli"]


def test_environment_config_beats_ini(tmp_path: Path) -> None:
    for name in ("env", "ini"):
        (tmp_path / f"{name}.toml").write_text(f'[[devices]]\nname = "{name}"\n', encoding="utf-8")

    settings = resolve(tmp_path, environ={ENV_CONFIG: "env.toml"}, ini_config="ini.toml")

    assert settings.config.device_names == ["env"]


def test_ini_config_path_is_relative_to_the_rootdir(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "dc.toml").write_text('[[devices]]\nname = "edge-i"\n', encoding="utf-8")

    settings = resolve(root, invocation_dir=tmp_path, ini_config="dc.toml")

    assert settings.config.device_names == ["edge-i"]


def test_explicit_config_path_that_does_not_exist_is_named(tmp_path: Path) -> None:
    message = resolve_error(tmp_path, cli_config="nope/deploycheck.toml")

    assert message.startswith("--deploy-config nope/deploycheck.toml: file not found")
    assert str(tmp_path / "nope" / "deploycheck.toml") in message


def test_explicit_pyproject_without_the_table_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n", encoding="utf-8")

    message = resolve_error(tmp_path, cli_config="pyproject.toml")

    assert "has no [tool.deploycheck] table" in message


def test_config_found_in_the_rootdir(project: Path) -> None:
    settings = resolve(project)

    assert settings.config.source == project / "pyproject.toml"
    assert settings.project_dir == project


# --------------------------------------------------------------------------- evidence dir


def test_evidence_dir_is_base_slash_target(project: Path) -> None:
    settings = resolve(project, cli_target="edge-c")

    assert settings.evidence_dir == project / "deploycheck-evidence" / "edge-c"


def test_configured_evidence_dir_is_relative_to_the_config_file(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "pyproject.toml").write_text(
        '[tool.deploycheck]\nevidence_dir = "out"\n' + DEVICES, encoding="utf-8"
    )

    settings = resolve(root, invocation_dir=tmp_path, cli_target="edge-b")

    assert settings.evidence_dir == root / "out" / "edge-b"


def test_command_line_evidence_dir_is_relative_to_the_invocation_dir(
    project: Path, tmp_path: Path
) -> None:
    invocation = tmp_path / "cwd"

    settings = resolve(project, invocation_dir=invocation, cli_evidence_dir="ev")

    assert settings.evidence_dir == invocation / "ev" / "edge-a"


def test_absolute_command_line_evidence_dir_is_kept(project: Path, tmp_path: Path) -> None:
    absolute = tmp_path / "abs"

    settings = resolve(project, cli_evidence_dir=str(absolute), cli_target="edge-b")

    assert settings.evidence_dir == absolute / "edge-b"


@pytest.mark.parametrize("option", ["cli_config", "cli_evidence_dir"])
def test_home_of_an_unknown_user_on_the_command_line_is_a_config_error(
    project: Path, option: str
) -> None:
    message = resolve_error(project, **{option: "~no-such-user-deploycheck/x"})

    assert "~no-such-user-deploycheck/x" in message


# --------------------------------------------------------------------------- soak cap

SOAK_ENV = "DEPLOYCHECK_SOAK_MINUTES"


@pytest.fixture
def capped_project(tmp_path: Path) -> Path:
    """A project whose pyproject caps soaks at 5 minutes."""
    root = tmp_path / "capped"
    root.mkdir()
    (root / "pyproject.toml").write_text(
        "[tool.deploycheck]\nsoak_max_minutes = 5\n" + DEVICES, encoding="utf-8"
    )
    return root


def test_no_soak_cap_anywhere_runs_what_the_markers_say(project: Path) -> None:
    settings = resolve(project, environ={})

    assert settings.soak_max_minutes is None
    assert settings.soak_cap_source == ""


def test_command_line_soak_cap_beats_environment_and_config(capped_project: Path) -> None:
    settings = resolve(capped_project, cli_soak_minutes="0.5", environ={SOAK_ENV: "2"})

    assert settings.soak_max_minutes == 0.5
    assert settings.soak_cap_source == "--deploy-soak-minutes=0.5"


def test_environment_soak_cap_beats_config(capped_project: Path) -> None:
    settings = resolve(capped_project, environ={SOAK_ENV: "2"})

    assert settings.soak_max_minutes == 2.0
    assert settings.soak_cap_source == f"{SOAK_ENV}=2"


def test_config_soak_cap_names_the_config_file(capped_project: Path) -> None:
    settings = resolve(capped_project, environ={SOAK_ENV: ""})

    assert settings.soak_max_minutes == 5.0
    assert settings.soak_cap_source == "soak_max_minutes in pyproject.toml"


@pytest.mark.parametrize(
    ("kwargs", "source"),
    [
        ({"cli_soak_minutes": "full"}, "--deploy-soak-minutes"),
        ({"cli_soak_minutes": " Full "}, "--deploy-soak-minutes"),
        ({"environ": {SOAK_ENV: "FULL"}}, SOAK_ENV),
    ],
)
def test_full_lifts_a_configured_soak_cap(
    capped_project: Path, kwargs: dict[str, Any], source: str
) -> None:
    settings = resolve(capped_project, **kwargs)

    assert settings.soak_max_minutes is None
    assert settings.soak_cap_source == source


def test_full_on_the_command_line_beats_a_cap_in_the_environment(capped_project: Path) -> None:
    settings = resolve(capped_project, cli_soak_minutes="full", environ={SOAK_ENV: "0.1"})

    assert settings.soak_max_minutes is None


@pytest.mark.parametrize("value", ["0", "-1", "abc", "nan", "inf", "-inf", ""])
def test_bad_command_line_soak_cap_names_the_option_and_what_is_valid(
    project: Path, value: str
) -> None:
    message = resolve_error(project, cli_soak_minutes=value)

    assert message.startswith(f"--deploy-soak-minutes {value!r}: expected a number of minutes > 0")
    assert "or 'full'" in message


@pytest.mark.parametrize("value", ["0", "-1", "abc", "nan", "inf"])
def test_bad_environment_soak_cap_names_the_variable(project: Path, value: str) -> None:
    message = resolve_error(project, environ={SOAK_ENV: value})

    assert message.startswith(f"{SOAK_ENV} {value!r}: expected a number of minutes > 0")
    assert "or 'full'" in message


@pytest.mark.parametrize("value", ["0", "-1", '"abc"', "nan", "inf"])
def test_bad_configured_soak_cap_names_the_key(tmp_path: Path, value: str) -> None:
    (tmp_path / "pyproject.toml").write_text(
        f"[tool.deploycheck]\nsoak_max_minutes = {value}\n" + DEVICES, encoding="utf-8"
    )

    message = resolve_error(tmp_path)

    assert message.startswith("pyproject.toml: [tool.deploycheck]: soak_max_minutes: expected")


# --------------------------------------------------------------------------- partial runs

PARTIAL_ENV = "DEPLOYCHECK_ALLOW_PARTIAL"


def test_a_partial_run_is_not_judged_unless_asked(project: Path) -> None:
    settings = resolve(project)

    assert (settings.allow_partial, settings.allow_partial_source) == (False, "")


def test_command_line_allow_partial_beats_environment(project: Path) -> None:
    settings = resolve(project, cli_allow_partial=True, environ={PARTIAL_ENV: "0"})

    assert (settings.allow_partial, settings.allow_partial_source) == (
        True,
        "--deploy-allow-partial",
    )


@pytest.mark.parametrize(("value", "allowed"), [("1", True), (" Yes ", True), ("off", False)])
def test_environment_allow_partial_beats_config(tmp_path: Path, value: str, allowed: bool) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.deploycheck]\nallow_partial = true\n" + DEVICES, encoding="utf-8"
    )
    settings = resolve(tmp_path, environ={PARTIAL_ENV: value})

    assert (settings.allow_partial, settings.allow_partial_source) == (
        allowed,
        f"{PARTIAL_ENV}={value}",
    )


def test_configured_allow_partial_names_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.deploycheck]\nallow_partial = true\n" + DEVICES, encoding="utf-8"
    )
    settings = resolve(tmp_path)

    assert (settings.allow_partial, settings.allow_partial_source) == (
        True,
        "allow_partial in pyproject.toml",
    )


def test_bad_environment_allow_partial_names_the_variable_and_the_valid_words(
    project: Path,
) -> None:
    message = resolve_error(project, environ={PARTIAL_ENV: "maybe"})

    assert message.startswith(f"{PARTIAL_ENV}='maybe': expected 1, true, yes or on")
    assert "0, false, no or off" in message


def test_configured_allow_partial_must_be_a_boolean(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.deploycheck]\nallow_partial = "yes"\n' + DEVICES, encoding="utf-8"
    )

    message = resolve_error(tmp_path)

    assert "allow_partial: expected true or false" in message


# --------------------------------------------------------------------------- timing lock


def test_timed_checks_hold_the_host_lock_by_default(project: Path) -> None:
    settings = resolve(project)
    assert (settings.timing_lock, settings.timing_lock_source) == (
        "host",
        "timing_lock in pyproject.toml",
    )
    assert settings.lock_dir is None


def test_the_command_line_lock_mode_beats_the_environment(project: Path) -> None:
    env = {"DEPLOYCHECK_TIMING_LOCK": "host"}
    settings = resolve(project, cli_timing_lock="off", environ=env)
    assert (settings.timing_lock, settings.timing_lock_source) == ("off", "--deploy-timing-lock")
    settings = resolve(project, environ={"DEPLOYCHECK_TIMING_LOCK": "off"})
    assert (settings.timing_lock, settings.timing_lock_source) == ("off", "DEPLOYCHECK_TIMING_LOCK")


@pytest.mark.parametrize("value", ["", "on", "HOST", "disjoint"])
def test_a_bad_lock_mode_names_the_option_and_the_valid_ones(project: Path, value: str) -> None:
    assert resolve_error(project, cli_timing_lock=value) == (
        f"--deploy-timing-lock {value!r}: expected 'host' (timed checks run one at a time,"
        " a host-wide lock) or 'off' (they may overlap under xdist)"
    )


def test_the_lock_dir_comes_from_the_environment(project: Path, tmp_path: Path) -> None:
    settings = resolve(project, environ={"DEPLOYCHECK_LOCK_DIR": str(tmp_path)})
    assert settings.lock_dir == tmp_path
    problem = resolve_error(project, environ={"DEPLOYCHECK_LOCK_DIR": str(tmp_path / "nope")})
    assert problem.startswith(f"DEPLOYCHECK_LOCK_DIR='{tmp_path / 'nope'}': not a directory;")
