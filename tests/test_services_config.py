"""The [tool.deploycheck.services] table: what a valid service is, and one line per mistake."""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_deploycheck.config.schema import ConfigError
from pytest_deploycheck.config.services import (
    DEFAULT_READY,
    DEFAULT_STARTUP_TIMEOUT_S,
    DEFAULT_STOP_TIMEOUT_S,
    ServiceSpec,
    default_service,
    parse_services,
    toml_key,
)

COMMAND = ["python", "-m", "app", "--port", "{port}"]


def parse(table: object, project_dir: Path | None = None, source: str = "pyproject.toml") -> Any:
    return parse_services(table, source=source, project_dir=project_dir or Path.cwd())


def problem(table: object, tmp_path: Path, source: str = "pyproject.toml") -> str:
    with pytest.raises(ConfigError) as caught:
        parse(table, tmp_path, source)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_minimal_service_gets_the_defaults(tmp_path: Path) -> None:
    specs = parse({"api": {"command": COMMAND}}, tmp_path)
    spec = specs["api"]
    assert spec == ServiceSpec(name="api", command=tuple(COMMAND))
    assert spec.ready == DEFAULT_READY == "/health"
    assert spec.startup_timeout_s == DEFAULT_STARTUP_TIMEOUT_S == 30
    assert spec.stop_timeout_s == DEFAULT_STOP_TIMEOUT_S == 5
    assert dict(spec.env) == {}
    assert spec.cwd is None


def test_every_key_is_read(tmp_path: Path) -> None:
    (tmp_path / "service").mkdir()
    body = {
        "command": ["./serve", "--workers", "2"],
        "ready": "/ready?deep=1",
        "startup_timeout_s": 12,
        "env": {"PORT": "{port}", "LOG_LEVEL": "info"},
        "cwd": "service",
        "stop_timeout_s": 0.5,
    }
    spec = parse({"api": body}, tmp_path)["api"]
    assert spec.command == ("./serve", "--workers", "2")
    assert spec.ready == "/ready?deep=1"
    assert spec.startup_timeout_s == 12.0
    assert dict(spec.env) == {"PORT": "{port}", "LOG_LEVEL": "info"}
    assert spec.cwd == PurePath("service")
    assert spec.stop_timeout_s == 0.5
    assert spec.as_dict()["env"] == {"PORT": "{port}", "LOG_LEVEL": "info"}
    hash(spec)  # frozen and usable as a key, env and all


def test_no_table_means_no_services(tmp_path: Path) -> None:
    assert parse(None, tmp_path) == {}
    assert parse({}, tmp_path) == {}


def test_the_spec_cannot_be_changed(tmp_path: Path) -> None:
    spec = parse({"api": {"command": COMMAND, "env": {"A": "{port}"}}}, tmp_path)["api"]
    with pytest.raises(TypeError):
        spec.env["A"] = "other"  # type: ignore[index]


@pytest.mark.parametrize(
    "command",
    [[], "python -m app --port {port}", [1, "{port}"], ["", "{port}"], None, {"a": 1}],
)
def test_a_command_must_be_an_argv_list(command: object, tmp_path: Path) -> None:
    message = problem({"api": {"command": command}}, tmp_path)
    assert message.startswith("pyproject.toml: [tool.deploycheck.services.api] command must")
    assert '["python", "-m", "app", "--port", "{port}"]' in message


def test_the_command_is_required(tmp_path: Path) -> None:
    message = problem({"api": {"ready": "/health"}}, tmp_path)
    assert message == (
        "pyproject.toml: [tool.deploycheck.services.api] needs a command,"
        ' e.g. command = ["python", "-m", "app", "--port", "{port}"]'
    )


def test_the_port_placeholder_is_required_somewhere(tmp_path: Path) -> None:
    message = problem({"api": {"command": ["python", "-m", "app"]}}, tmp_path)
    assert "put {port} in command or in an env value" in message


def test_the_port_may_come_through_the_environment(tmp_path: Path) -> None:
    spec = parse({"api": {"command": ["serve"], "env": {"PORT": "{port}"}}}, tmp_path)["api"]
    assert spec.command == ("serve",)


def test_an_unknown_key_lists_the_valid_ones(tmp_path: Path) -> None:
    message = problem({"api": {"command": COMMAND, "redy": "/x"}}, tmp_path)
    assert "unknown key 'redy' (did you mean ready?)" in message
    valid = "command, cwd, env, offline, ready, startup_timeout_s, stop_timeout_s"
    assert f"valid keys: {valid}" in message


@pytest.mark.parametrize("ready", ["health", "", "/he alth", "//evil.example/x", 5, "/a\nb"])
def test_ready_must_be_a_path(ready: object, tmp_path: Path) -> None:
    message = problem({"api": {"command": COMMAND, "ready": ready}}, tmp_path)
    assert "ready must be an HTTP path starting with '/'" in message


@pytest.mark.parametrize("key", ["startup_timeout_s", "stop_timeout_s"])
@pytest.mark.parametrize("value", [0, -1, True, "5", float("inf"), float("nan"), 10**6])
def test_timeouts_must_be_positive_seconds(key: str, value: object, tmp_path: Path) -> None:
    message = problem({"api": {"command": COMMAND, key: value}}, tmp_path)
    assert f"{key} must be a number of seconds > 0" in message


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ("PORT={port}", 'must be a table of NAME = "value"'),
        ({"WORKERS": 2}, 'WORKERS must be a string, e.g. WORKERS = "2"'),
        ({"A=B": "x"}, "expected a name without '='"),
        ({"A": ["x"]}, "A must be a string"),
    ],
)
def test_env_is_a_table_of_strings(env: object, expected: str, tmp_path: Path) -> None:
    message = problem({"api": {"command": COMMAND, "env": env}}, tmp_path)
    assert expected in message


@pytest.mark.parametrize("cwd", ["/etc", "../elsewhere", "a/../../b", "", 3])
def test_cwd_stays_inside_the_project(cwd: object, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    message = problem({"api": {"command": COMMAND, "cwd": cwd}}, project)
    assert "[tool.deploycheck.services.api] cwd must be a directory" in message


def test_the_services_value_must_be_a_table(tmp_path: Path) -> None:
    message = problem(["api"], tmp_path)
    assert message == (
        "pyproject.toml: [tool.deploycheck.services] must be a table of services,"
        " e.g. [tool.deploycheck.services.api]"
    )


def test_a_service_must_be_a_table(tmp_path: Path) -> None:
    message = problem({"api": "python -m app"}, tmp_path)
    assert message.startswith("pyproject.toml: [tool.deploycheck.services.api] must be a table")


def test_every_problem_is_reported_one_line_each(tmp_path: Path) -> None:
    table = {"a": {"command": []}, "b": {"command": COMMAND, "ready": "x"}, "c": {"cmd": 1}}
    with pytest.raises(ConfigError) as caught:
        parse(table, tmp_path)
    lines = caught.value.args
    assert len(lines) == 4  # a's command; b's ready; c's unknown key and missing command
    assert all("\n" not in line and line.startswith("pyproject.toml: [") for line in lines)


def test_a_standalone_file_names_its_own_table(tmp_path: Path) -> None:
    message = problem({"api": {"command": []}}, tmp_path, source="deploycheck.toml")
    assert message.startswith("deploycheck.toml: [services.api] command must")


def test_names_are_quoted_and_escaped_in_messages(tmp_path: Path) -> None:
    message = problem({'my "api"\n': {"command": []}}, tmp_path)
    assert '[tool.deploycheck.services."my \\"api\\"\\n"] command must' in message


@given(st.text(max_size=20))
def test_any_name_is_data(name: str) -> None:
    specs = parse({name: {"command": COMMAND}})
    assert list(specs) == [name]
    key = toml_key(name)
    assert "\n" not in key and "\x1b" not in key


def spec(name: str) -> ServiceSpec:
    return ServiceSpec(name=name, command=tuple(COMMAND))


def test_the_only_service_is_the_default() -> None:
    assert default_service({"api": spec("api")}) == "api"


def test_default_service_picks_among_several() -> None:
    services = {"api": spec("api"), "worker": spec("worker")}
    assert default_service(services, "worker") == "worker"


def test_several_services_need_a_default() -> None:
    services = {"api": spec("api"), "worker": spec("worker")}
    with pytest.raises(ConfigError, match=r"2 services \(api, worker\): set default_service"):
        default_service(services, source="pyproject.toml")


def test_the_default_must_be_a_service() -> None:
    with pytest.raises(
        ConfigError, match=r"default_service 'web' is not a service; configured: api"
    ):
        default_service({"api": spec("api")}, "web", source="pyproject.toml")


def test_no_service_says_how_to_add_one() -> None:
    with pytest.raises(
        ConfigError, match=r"no service configured: add \[tool.deploycheck.services.NAME\]"
    ):
        default_service({}, source="pyproject.toml")


# --------------------------------------------------------------------------- in the config file


def test_pyproject_services_load_into_the_deploy_config(tmp_path: Path) -> None:
    from pytest_deploycheck.config.schema import load_config

    (tmp_path / "pyproject.toml").write_text(
        '[tool.deploycheck]\ndefault_service = "api"\n'
        '[tool.deploycheck.services.api]\ncommand = ["app", "--port", "{port}"]\n'
        '[tool.deploycheck.services.worker]\ncommand = ["w", "{port}"]\nready = "/up"\n',
        encoding="utf-8",
    )
    config = load_config(tmp_path / "pyproject.toml")
    assert sorted(config.services) == ["api", "worker"]
    assert config.services["worker"].ready == "/up"
    assert config.resolve_default_service() == "api"
    data = config.as_dict()
    assert data["default_service"] == "api"
    assert data["services"]["api"]["command"] == ["app", "--port", "{port}"]


def test_deploycheck_toml_takes_services_at_the_top(tmp_path: Path) -> None:
    from pytest_deploycheck.config.schema import load_config

    (tmp_path / "deploycheck.toml").write_text(
        '[services.api]\ncommand = ["app", "{port}"]\nbogus = 1\n', encoding="utf-8"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "deploycheck.toml")
    assert str(caught.value).startswith(
        "deploycheck.toml: [services.api] has the unknown key 'bogus'"
    )


def test_a_config_without_services_has_none(tmp_path: Path) -> None:
    from pytest_deploycheck.config.schema import parse_config

    config = parse_config({}, source=tmp_path / "pyproject.toml")
    assert config.services == {}
    assert config.default_service is None
    with pytest.raises(ConfigError, match="no service configured"):
        config.resolve_default_service()


def test_default_service_must_name_a_service(tmp_path: Path) -> None:
    from pytest_deploycheck.config.schema import parse_config

    raw = {"default_service": "apj", "services": {"api": {"command": COMMAND}}}
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, source=tmp_path / "pyproject.toml")
    assert str(caught.value) == (
        "pyproject.toml: [tool.deploycheck]: default_service: unknown service 'apj'"
        " (did you mean 'api'?); services defines: api"
    )


def test_config_error_is_one_class_wherever_it_is_imported_from() -> None:
    from pytest_deploycheck.config import errors, schema, services

    assert schema.ConfigError is errors.ConfigError is services.ConfigError
