"""Unit tests of config.py: discovery, loading and validation of the deploycheck table."""

from __future__ import annotations

import math
import string
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_deploycheck.config.regression import Tolerances
from pytest_deploycheck.config.schema import (
    DEFAULT_EVIDENCE_DIR,
    VALID_KEYS,
    Budgets,
    ConfigError,
    DeployConfig,
    Device,
    ModelSpec,
    find_config_file,
    load_config,
    parse_config,
)

DEVICES_TOML = """
[[tool.deploycheck.devices]]
name = "edge-a"
memory_mb = 512
power_w = 8
offline = true
cpus = 1
price_usd = 60

[[tool.deploycheck.devices]]
name = "edge-c"
memory_mb = 4096
power_w = 25
offline = true
cpus = 4
price_usd = 120
"""


def write_pyproject(project: Path, body: str) -> Path:
    path = project / "pyproject.toml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def write_model(project: Path, relative: str = "models/m.onnx") -> Path:
    path = project / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"onnx")
    return path


def config_error(raw: Any, **kwargs: Any) -> ConfigError:
    with pytest.raises(ConfigError) as excinfo:
        parse_config(raw, **kwargs)
    return excinfo.value


def only_line(error: ConfigError) -> str:
    assert len(error.args) == 1, error.args
    return str(error.args[0])


# --------------------------------------------------------------------------- loading


def test_pyproject_table_loads_with_models_and_devices(tmp_path: Path) -> None:
    write_model(tmp_path, "models/classifier_int8.onnx")
    path = write_pyproject(
        tmp_path,
        """
        [tool.deploycheck]
        target = "edge-c"

        [tool.deploycheck.models.optimized]
        path = "models/classifier_int8.onnx"
        power_w = 10
        requires_offline = true
        """
        + DEVICES_TOML,
    )

    config = load_config(path)

    assert config.source == path
    assert config.target == "edge-c"
    assert config.device_names == ["edge-a", "edge-c"]
    assert config.device("edge-a") == Device(
        name="edge-a", memory_mb=512.0, power_w=8.0, offline=True, cpus=1, price_usd=60.0
    )
    optimized = config.model("optimized")
    assert optimized.power_w == 10.0
    assert optimized.requires_offline is True
    assert optimized.memory_mb is None


def test_standalone_deploycheck_toml_loads_keys_at_the_top(tmp_path: Path) -> None:
    write_model(tmp_path)
    path = tmp_path / "deploycheck.toml"
    path.write_text(
        'target = "edge-a"\n'
        "[models.m]\n"
        'path = "models/m.onnx"\n'
        "[[devices]]\n"
        'name = "edge-a"\n'
        "memory_mb = 512\n",
        encoding="utf-8",
    )

    config = load_config(path)

    assert config.target == "edge-a"
    assert list(config.models) == ["m"]
    assert config.device("edge-a").memory_mb == 512.0


def test_model_paths_resolve_relative_to_the_config_file(tmp_path: Path) -> None:
    project = tmp_path / "project"
    model = write_model(project, "models/m.onnx")
    path = write_pyproject(project, '[tool.deploycheck.models.m]\npath = "models/m.onnx"\n')

    config = load_config(path)

    assert config.model("m").path == model


def test_absolute_model_path_is_kept(tmp_path: Path) -> None:
    model = write_model(tmp_path / "elsewhere")
    project = tmp_path / "project"
    project.mkdir()
    path = write_pyproject(project, f"[tool.deploycheck.models.m]\npath = '{model}'\n")

    assert load_config(path).model("m").path == model


def test_evidence_dir_resolves_relative_to_the_config_file(tmp_path: Path) -> None:
    path = write_pyproject(tmp_path, '[tool.deploycheck]\nevidence_dir = "out/evidence"\n')

    assert load_config(path).evidence_dir == tmp_path / "out" / "evidence"


def test_defaults_of_an_empty_table(tmp_path: Path) -> None:
    path = write_pyproject(tmp_path, "[tool.deploycheck]\n")

    config = load_config(path)

    assert config.target is None
    assert config.models == {}
    assert config.devices == ()
    assert config.evidence_dir == tmp_path / DEFAULT_EVIDENCE_DIR
    assert config.budgets == Budgets()
    assert config.budgets.latency_percentile == 95.0
    assert config.all_devices_must_fit is False


def test_budgets_and_model_extras_are_read(tmp_path: Path) -> None:
    write_model(tmp_path)
    path = write_pyproject(
        tmp_path,
        """
        [tool.deploycheck]
        required_evidence = ["failure_cases.md"]
        all_devices_must_fit = true
        [tool.deploycheck.budgets]
        latency_ms = 80
        latency_percentile = 99
        accuracy_drop = 0
        [tool.deploycheck.models.m]
        path = "models/m.onnx"
        input_shapes = { image = [1, 1, 8, 8] }
        """,
    )

    config = load_config(path)

    assert config.budgets.latency_ms == 80.0
    assert config.budgets.latency_percentile == 99.0
    assert config.budgets.accuracy_drop == 0.0
    assert config.required_evidence == ("failure_cases.md",)
    assert config.all_devices_must_fit is True
    assert config.model("m").input_shapes == {"image": (1, 1, 8, 8)}


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "deploycheck.toml"
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config(missing)


def test_pyproject_without_the_table_cannot_be_loaded(tmp_path: Path) -> None:
    path = write_pyproject(tmp_path, "[tool.other]\nx = 1\n")
    with pytest.raises(ConfigError, match=r"has no \[tool\.deploycheck\] table"):
        load_config(path)


def test_toml_syntax_error_names_the_file_and_the_line(tmp_path: Path) -> None:
    path = write_pyproject(tmp_path, '[tool.deploycheck]\ntarget = "edge-a"\nmemory_mb = \n')

    with pytest.raises(ConfigError) as excinfo:
        load_config(path)

    message = str(excinfo.value)
    assert str(path) in message
    assert "invalid TOML" in message
    assert "line 3" in message


# --------------------------------------------------------------------------- discovery


def test_find_config_file_prefers_nothing_when_unconfigured(tmp_path: Path) -> None:
    assert find_config_file(tmp_path) is None


def test_find_config_file_ignores_a_pyproject_without_the_table(tmp_path: Path) -> None:
    write_pyproject(tmp_path, "[project]\nname = 'x'\n[tool.ruff]\nline-length = 100\n")

    assert find_config_file(tmp_path) is None


def test_find_config_file_finds_the_pyproject_table(tmp_path: Path) -> None:
    path = write_pyproject(tmp_path, "[tool.deploycheck]\n")

    assert find_config_file(tmp_path) == path


def test_find_config_file_finds_a_standalone_file(tmp_path: Path) -> None:
    write_pyproject(tmp_path, "[project]\nname = 'x'\n")
    standalone = tmp_path / "deploycheck.toml"
    standalone.write_text("", encoding="utf-8")

    assert find_config_file(tmp_path) == standalone


def test_standalone_file_and_pyproject_table_together_are_an_error(tmp_path: Path) -> None:
    write_pyproject(tmp_path, "[tool.deploycheck]\n")
    (tmp_path / "deploycheck.toml").write_text("", encoding="utf-8")

    with pytest.raises(ConfigError, match="keep one of them") as excinfo:
        find_config_file(tmp_path)

    assert "deploycheck.toml" in str(excinfo.value)
    assert "pyproject.toml" in str(excinfo.value)


# --------------------------------------------------------------------------- unknown keys


def test_unknown_device_key_names_file_table_and_closest_key(tmp_path: Path) -> None:
    path = write_pyproject(
        tmp_path, '[[tool.deploycheck.devices]]\nname = "edge-a"\nmemry_mb = 512\n'
    )

    with pytest.raises(ConfigError) as excinfo:
        load_config(path)

    line = only_line(excinfo.value)
    assert line.startswith("pyproject.toml: ")
    assert "[[tool.deploycheck.devices]] #1 (edge-a)" in line
    assert "unknown key 'memry_mb'" in line
    assert "did you mean 'memory_mb'?" in line


def test_unknown_top_key_suggests_the_closest_one() -> None:
    line = only_line(config_error({"targt": "edge-a"}))

    assert "[tool.deploycheck]" in line
    assert "did you mean 'target'?" in line


def test_unknown_key_without_a_close_match_lists_the_valid_keys() -> None:
    line = only_line(config_error({"budgets": {"zzzz": 1}}))

    assert "[tool.deploycheck.budgets]" in line
    assert "did you mean" not in line
    assert "valid keys: " + ", ".join(VALID_KEYS["budgets"]) in line


def test_unknown_model_key_names_the_model_table(tmp_path: Path) -> None:
    write_model(tmp_path)
    line = only_line(
        config_error(
            {"models": {"m": {"path": "models/m.onnx", "requires_ofline": True}}},
            source=tmp_path / "pyproject.toml",
        )
    )

    assert "[tool.deploycheck.models.m]" in line
    assert "did you mean 'requires_offline'?" in line


def test_standalone_file_errors_name_top_level_tables(tmp_path: Path) -> None:
    line = only_line(
        config_error(
            {"devices": [{"name": "edge-a", "memry_mb": 1}]},
            source=tmp_path / "deploycheck.toml",
            table="",
        )
    )

    assert line.startswith("deploycheck.toml: [[devices]] #1 (edge-a): ")


# --------------------------------------------------------------------------- wrong types


@pytest.mark.parametrize(
    ("device_key", "value", "expected"),
    [
        ("memory_mb", True, "expected a number, got a boolean (True)"),
        ("memory_mb", "512", "expected a number, got a string ('512')"),
        ("memory_mb", -1, "expected a number > 0, got -1"),
        ("memory_mb", 0, "expected a number > 0, got 0"),
        ("power_w", math.inf, "expected a finite number, got inf"),
        ("power_w", math.nan, "expected a finite number, got nan"),
        ("price_usd", -0.5, "expected a number >= 0, got -0.5"),
        ("cpus", 0, "expected a whole number >= 1"),
        ("cpus", 1.5, "expected a whole number >= 1"),
        ("cpus", True, "expected a whole number >= 1"),
        ("offline", "yes", "expected true or false, got a string ('yes')"),
        ("execution_providers", "CPUExecutionProvider", "expected a list of non-empty strings"),
    ],
)
def test_wrong_device_value_says_what_is_expected(
    device_key: str, value: object, expected: str
) -> None:
    line = only_line(config_error({"devices": [{"name": "edge-a", device_key: value}]}))

    assert f"[[tool.deploycheck.devices]] #1 (edge-a): {device_key}: {expected}" in line


def test_integer_too_large_for_a_float_is_a_config_error(tmp_path: Path) -> None:
    # TOML parsers accept integers of any size; the budget must still be refused cleanly.
    path = write_pyproject(tmp_path, "[tool.deploycheck.budgets]\nlatency_ms = 1" + "0" * 400)

    with pytest.raises(ConfigError) as excinfo:
        load_config(path)

    assert "latency_ms: expected a finite number" in only_line(excinfo.value)


def test_path_under_the_home_of_an_unknown_user_is_a_config_error(tmp_path: Path) -> None:
    path = write_pyproject(
        tmp_path, '[tool.deploycheck]\nevidence_dir = "~no-such-user-deploycheck/evidence"\n'
    )

    with pytest.raises(ConfigError) as excinfo:
        load_config(path)

    assert "evidence_dir" in only_line(excinfo.value)


def test_free_devices_are_allowed() -> None:
    config = parse_config({"devices": [{"name": "edge-a", "price_usd": 0}]})

    assert config.device("edge-a").price_usd == 0.0


@pytest.mark.parametrize(
    ("budget_key", "value", "expected"),
    [
        ("latency_ms", 0, "expected a number > 0"),
        ("latency_ms", "80ms", "expected a number, got a string"),
        ("latency_percentile", 100, "expected a percentile between 0 and 100"),
        ("latency_percentile", 150.0, "expected a percentile between 0 and 100"),
        ("latency_percentile", -5, "expected a number > 0"),
        ("accuracy_drop", -0.01, "expected a number >= 0"),
        ("cold_start_ms", math.inf, "expected a finite number"),
    ],
)
def test_wrong_budget_says_what_is_expected(budget_key: str, value: object, expected: str) -> None:
    line = only_line(config_error({"budgets": {budget_key: value}}))

    assert f"[tool.deploycheck.budgets]: {budget_key}: {expected}" in line


@pytest.mark.parametrize(
    ("top_key", "value", "expected"),
    [
        ("target", 3, "expected a string, got a whole number (3)"),
        ("target", "edge a", "expected a non-empty name without spaces"),
        ("target", "", "expected a non-empty name"),
        ("evidence_dir", 3, "expected a string"),
        ("required_evidence", "failure_cases.md", "expected a list of non-empty strings"),
        ("required_evidence", [""], "expected a list of non-empty strings"),
        ("all_devices_must_fit", 1, "expected true or false"),
    ],
)
def test_wrong_top_value_says_what_is_expected(top_key: str, value: object, expected: str) -> None:
    line = only_line(config_error({top_key: value}))

    assert f"[tool.deploycheck]: {top_key}: {expected}" in line


def test_device_name_with_a_comma_is_refused() -> None:
    line = only_line(config_error({"devices": [{"name": "edge-a,edge-b"}]}))

    assert "name: expected a device name of letters, digits, '.', '_' or '-'" in line


@pytest.mark.parametrize(
    "name", ["../../escape/x", "..", ".", "edge/a", "edge\\a", "x" * 65, "édge", "a\nb"]
)
def test_device_names_that_could_become_paths_are_refused(name: str) -> None:
    # The target's name is its evidence directory's name.
    line = only_line(config_error({"devices": [{"name": name}]}))

    assert line.startswith("deploycheck configuration: [[tool.deploycheck.devices]] #1 (")
    assert "name: expected a device name of letters, digits, '.', '_' or '-'," in line
    assert "at most 64 characters, not '.' or '..'" in line
    assert "\n" not in line


@pytest.mark.parametrize("name", ["edge-c", "Jetson_Orin.Nano-8GB", "x" * 64, "..x", "v1.2"])
def test_safe_device_names_are_kept(name: str) -> None:
    assert parse_config({"devices": [{"name": name}]}).device_names == [name]


def test_a_device_name_with_terminal_sequences_is_shown_escaped() -> None:
    line = only_line(config_error({"devices": [{"name": "ok\nrelease_candidate: True\x1b[2J"}]}))

    assert "#1 (ok\\nrelease_candidate: True\\x1b[2J)" in line
    assert "\x1b" not in line and "\n" not in line


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("../../victim.md", "expected a relative path inside the project, without '..'"),
        ("docs/../../victim.md", "expected a relative path inside the project, without '..'"),
        ("/etc/passwd", "expected a relative path inside the project, without '..'"),
        (".", "expected a relative path inside the project, without '..'"),
    ],
)
def test_required_evidence_outside_the_project_is_refused(
    tmp_path: Path, entry: str, problem: str
) -> None:
    line = only_line(
        config_error({"required_evidence": [entry]}, source=tmp_path / "pyproject.toml")
    )

    assert line == f"pyproject.toml: [tool.deploycheck]: required_evidence: {entry!r}: {problem}"


def test_required_evidence_through_a_symlink_outside_is_refused(tmp_path: Path) -> None:
    project, outside = tmp_path / "project", tmp_path / "outside"
    project.mkdir()
    outside.mkdir()
    (project / "docs").symlink_to(outside, target_is_directory=True)
    (project / "secret.md").symlink_to(outside / "secret.md")

    error = config_error(
        {"required_evidence": ["docs/notes.md", "secret.md"]}, source=project / "pyproject.toml"
    )

    where = "pyproject.toml: [tool.deploycheck]: required_evidence"
    assert error.args == (
        f"{where}: 'docs/notes.md': leads outside the project ({project}) through a symlink",
        f"{where}: 'secret.md': leads outside the project ({project}) through a symlink",
    )


def test_required_evidence_inside_the_project_is_kept(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "linked.md").symlink_to(tmp_path / "docs" / "notes.md")

    config = parse_config(
        {"required_evidence": ["failure_cases.md", "docs/notes.md", "linked.md"]},
        source=tmp_path / "pyproject.toml",
    )

    assert config.required_evidence == ("failure_cases.md", "docs/notes.md", "linked.md")


def test_input_shapes_must_be_lists_of_positive_whole_numbers(tmp_path: Path) -> None:
    write_model(tmp_path)
    line = only_line(
        config_error(
            {"models": {"m": {"path": "models/m.onnx", "input_shapes": {"image": [1, 0]}}}},
            source=tmp_path / "pyproject.toml",
        )
    )

    assert "input_shapes: input 'image': expected a list of whole numbers >= 1" in line


def test_tables_of_the_wrong_kind_are_reported() -> None:
    error = config_error({"budgets": 3, "models": [], "devices": {}})

    assert len(error.args) == 3
    assert "[tool.deploycheck.budgets]: expected a table" in error.args[0]
    assert "[tool.deploycheck.models]: expected a table of named models" in error.args[1]
    assert "[[tool.deploycheck.devices]]: expected an array of tables" in error.args[2]


def test_a_non_table_device_row_is_reported() -> None:
    line = only_line(config_error({"devices": ["edge-a"]}))

    assert "[[tool.deploycheck.devices]] #1: expected a table" in line


# --------------------------------------------------------------------------- structure


def test_duplicate_device_names_are_refused() -> None:
    line = only_line(
        config_error({"devices": [{"name": "edge-a"}, {"name": "edge-b"}, {"name": "edge-a"}]})
    )

    assert "#3 (edge-a)" in line
    assert "duplicate device name 'edge-a' (first defined in #1)" in line


def test_missing_model_file_is_named(tmp_path: Path) -> None:
    line = only_line(
        config_error(
            {"models": {"optimized": {"path": "models/int8.onnx"}}},
            source=tmp_path / "pyproject.toml",
        )
    )

    assert "[tool.deploycheck.models.optimized]" in line
    assert f"model file not found: {tmp_path / 'models' / 'int8.onnx'}" in line


def test_model_path_that_is_a_directory_is_not_a_model_file(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    line = only_line(
        config_error({"models": {"m": {"path": "models"}}}, source=tmp_path / "pyproject.toml")
    )

    assert "model file not found" in line


def test_model_without_path_is_refused() -> None:
    line = only_line(config_error({"models": {"m": {"power_w": 10}}}))

    assert "[tool.deploycheck.models.m]: missing required key 'path'" in line


def test_device_without_name_is_refused() -> None:
    line = only_line(config_error({"devices": [{"memory_mb": 512}]}))

    assert "[[tool.deploycheck.devices]] #1: missing required key 'name'" in line


def test_unknown_target_lists_the_valid_device_names() -> None:
    line = only_line(
        config_error({"target": "edge-x", "devices": [{"name": "edge-a"}, {"name": "edge-c"}]})
    )

    assert "target: unknown device 'edge-x'" in line
    assert "edge-a, edge-c" in line


def test_unknown_target_suggests_a_close_device_name() -> None:
    line = only_line(config_error({"target": "edge-cc", "devices": [{"name": "edge-c"}]}))

    assert "did you mean 'edge-c'?" in line


def test_target_without_a_devices_table_is_refused() -> None:
    line = only_line(config_error({"target": "edge-a"}))

    assert (
        "target: 'edge-a' is set but no devices are defined;"
        " add a [[tool.deploycheck.devices]] table"
    ) in line


def test_unknown_default_model_lists_the_valid_model_names(tmp_path: Path) -> None:
    write_model(tmp_path, "a.onnx")
    write_model(tmp_path, "b.onnx")
    line = only_line(
        config_error(
            {
                "default_model": "optimised",
                "models": {"baseline": {"path": "a.onnx"}, "optimized": {"path": "b.onnx"}},
            },
            source=tmp_path / "pyproject.toml",
        )
    )

    assert "default_model: unknown model 'optimised'" in line
    assert "did you mean 'optimized'?" in line
    assert "baseline, optimized" in line


def test_every_problem_is_reported_one_line_each(tmp_path: Path) -> None:
    error = config_error(
        {
            "evidence_dir": 3,
            "budgets": {"latency_ms": -5},
            "models": {"m": {"path": "missing.onnx"}},
            "devices": [{"name": "edge-a", "memry_mb": 1}, {"memory_mb": "big"}],
        },
        source=tmp_path / "pyproject.toml",
    )

    assert len(error.args) == 6
    assert all("\n" not in line for line in error.args)
    assert all(line.startswith("pyproject.toml: ") for line in error.args)
    joined = "\n".join(error.args)
    for fragment in (
        "evidence_dir: expected a string",
        "latency_ms: expected a number > 0",
        "model file not found",
        "unknown key 'memry_mb'",
        "memory_mb: expected a number, got a string",
        "missing required key 'name'",
    ):
        assert fragment in joined


def test_parse_config_refuses_a_non_table() -> None:
    line = only_line(config_error(["not", "a", "table"]))

    assert "expected a table" in line


# --------------------------------------------------------------------------- DeployConfig


def make_config(tmp_path: Path, *model_names: str, **kwargs: Any) -> DeployConfig:
    models = {name: ModelSpec(name=name, path=tmp_path / f"{name}.onnx") for name in model_names}
    return DeployConfig(source=tmp_path / "pyproject.toml", models=models, **kwargs)


def test_unknown_device_lookup_lists_the_valid_names(tmp_path: Path) -> None:
    config = make_config(tmp_path, devices=(Device("edge-a"), Device("edge-b")))

    with pytest.raises(ConfigError, match=r"unknown device 'edge-z'.*edge-a, edge-b"):
        config.device("edge-z")


def test_unknown_model_lookup_without_models_says_to_add_a_table(tmp_path: Path) -> None:
    config = make_config(tmp_path)

    with pytest.raises(ConfigError, match="none: add a models table"):
        config.model("optimized")


def test_default_model_is_the_configured_one(tmp_path: Path) -> None:
    config = make_config(tmp_path, "a", "b", default_model="b")

    assert config.resolve_default_model() == "b"


def test_default_model_is_the_only_model(tmp_path: Path) -> None:
    assert make_config(tmp_path, "solo").resolve_default_model() == "solo"


def test_default_model_is_optimized_among_several(tmp_path: Path) -> None:
    assert make_config(tmp_path, "baseline", "optimized").resolve_default_model() == "optimized"


def test_no_default_model_among_several_lists_them(tmp_path: Path) -> None:
    config = make_config(tmp_path, "b", "a")

    with pytest.raises(ConfigError, match="set default_model to one of: a, b"):
        config.resolve_default_model()


def test_as_dict_is_plain_data(tmp_path: Path) -> None:
    config = make_config(tmp_path, "m", devices=(Device("edge-a", memory_mb=512.0),))

    data = config.as_dict()

    assert data["models"]["m"]["path"] == str(tmp_path / "m.onnx")
    assert data["devices"][0]["name"] == "edge-a"
    assert data["devices"][0]["execution_providers"] == ["CPUExecutionProvider"]
    assert data["source"] == str(tmp_path / "pyproject.toml")


# --------------------------------------------------------------------------- properties

# Path-like strings too: "~name" is expanded to a home directory, or fails to be.
texts = st.text(max_size=12) | st.from_regex(r"~[a-z]{0,8}(/[a-z.]{1,8})?", fullmatch=True)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | texts,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


def key_names(schema: str) -> st.SearchStrategy[str]:
    return st.sampled_from(list(VALID_KEYS[schema])) | st.text(max_size=12)


@st.composite
def raw_configs(draw: st.DrawFn) -> dict[str, Any]:
    """Arbitrary JSON-like values under valid and invalid keys of one of the tables."""
    where = draw(st.sampled_from(["top", "devices", "models", "budgets"]))
    values = draw(st.dictionaries(key_names(where), json_values, max_size=4))
    if where == "devices":
        return {"devices": [values]}
    if where == "models":
        return {"models": {draw(st.text(max_size=8)): values}}
    if where == "budgets":
        return {"budgets": values}
    return values


# parse_config only reads the file system, so one directory serves every example.
FUZZ_SOURCE = Path(tempfile.gettempdir()) / "deploycheck-fuzz-project" / "pyproject.toml"


@settings(max_examples=300, deadline=None)
@given(raw=raw_configs())
def test_any_table_parses_or_raises_config_error(raw: dict[str, Any]) -> None:
    try:
        config = parse_config(raw, source=FUZZ_SOURCE)
    except ConfigError as exc:
        assert exc.args
        assert all(isinstance(line, str) and line for line in exc.args)
    else:
        assert isinstance(config, DeployConfig)


positive = st.floats(min_value=1e-3, max_value=1e9, allow_nan=False, allow_infinity=False)
# A device name becomes a directory name: ASCII letters, digits, '.', '_', '-', never . or ..
device_names = st.text(
    alphabet=st.sampled_from(string.ascii_letters + string.digits + "-_."), min_size=1, max_size=12
).filter(lambda name: name not in (".", ".."))


@st.composite
def device_tables(draw: st.DrawFn) -> list[dict[str, Any]]:
    names = draw(st.lists(device_names, min_size=1, max_size=5, unique=True))
    tables = []
    for name in names:
        table: dict[str, Any] = {"name": name}
        for key, strategy in (
            ("memory_mb", positive),
            ("power_w", positive),
            ("price_usd", positive | st.just(0)),
            ("latency_factor", positive),
            ("offline", st.booleans()),
            ("cpus", st.integers(min_value=1, max_value=256)),
        ):
            if draw(st.booleans()):
                table[key] = draw(strategy)
        tables.append(table)
    return tables


@given(tables=device_tables())
def test_valid_devices_round_trip_to_device_objects(tables: list[dict[str, Any]]) -> None:
    config = parse_config({"devices": tables})

    assert config.device_names == [table["name"] for table in tables]
    for table, device in zip(tables, config.devices, strict=True):
        assert device.as_dict() == {**Device(name=device.name).as_dict(), **table}


# --------------------------------------------------------------------------- regression


def test_regression_tolerances_and_per_check_overrides_parse() -> None:
    config = parse_config(
        {
            "baseline": "baselines/main.json",
            "regression": {
                "latency_pct": 15,
                "significance": 0.05,
                "on_environment_mismatch": "refuse",
                "checks": {"latency_under_80": {"latency_pct": 30}},
            },
        },
        source=Path("/project/pyproject.toml"),
    )
    assert config.baseline == Path("/project/baselines/main.json")
    assert config.regression == {
        "latency_pct": 15.0,
        "significance": 0.05,
        "on_environment_mismatch": "refuse",
        "checks": {"latency_under_80": {"latency_pct": 30.0}},
    }
    assert config.tolerances == Tolerances(
        latency_pct=15.0,
        significance=0.05,
        on_environment_mismatch="refuse",
        per_check={"latency_under_80": {"latency_pct": 30.0}},
    )
    assert config.as_dict()["regression"] == config.regression  # the record keeps what was set


@pytest.mark.parametrize(
    ("regression", "message"),
    [
        (
            {"latency_pc": 1},
            "[tool.deploycheck.regression]: unknown key 'latency_pc'; did you mean",
        ),
        ({"significance": 0.7}, "significance: expected a number in (0, 0.5], e.g. 0.01, got 0.7"),
        ({"on_environment_mismatch": "ignore"}, "expected one of 'warn', 'refuse', got 'ignore'"),
        ({"memory_pct": -1}, "memory_pct: expected a number >= 0 (percent), got -1"),
        (
            {"checks": {"x": {"foo": 1}}},
            "[tool.deploycheck.regression.checks.x]: unknown key 'foo'",
        ),
        ({"checks": {"x": 3}}, "[tool.deploycheck.regression.checks.x]: expected a table"),
        ({"checks": 3}, "[tool.deploycheck.regression.checks]: expected a table of check names"),
    ],
)
def test_bad_regression_tables_are_one_line_each(regression: dict, message: str) -> None:  # type: ignore[type-arg]
    line = only_line(config_error({"regression": regression}))
    assert message in line


# --------------------------------------------------------------------------- soak and offline keys


def test_soak_and_offline_keys_parse(tmp_path: Path) -> None:
    path = write_pyproject(
        tmp_path,
        """
        [tool.deploycheck]
        soak_max_minutes = 5
        enforce_requires_offline = true

        [tool.deploycheck.budgets]
        soak_minutes = 30
        soak_growth_mb_per_hour = 10
        soak_error_rate = 0.001
        soak_latency_drift_pct = 20.5
        """,
    )

    config = load_config(path)

    assert config.soak_max_minutes == 5.0
    assert config.enforce_requires_offline is True
    budgets = config.budgets
    assert (budgets.soak_minutes, budgets.soak_growth_mb_per_hour) == (30.0, 10.0)
    assert (budgets.soak_error_rate, budgets.soak_latency_drift_pct) == (0.001, 20.5)
    data = config.as_dict()
    assert (data["soak_max_minutes"], data["enforce_requires_offline"]) == (5.0, True)
    assert data["budgets"]["soak_error_rate"] == 0.001


def test_soak_and_offline_keys_default_to_unset() -> None:
    config = parse_config({})

    assert config.soak_max_minutes is None
    assert config.enforce_requires_offline is False
    assert config.budgets.soak_minutes is None
    assert config.budgets.soak_error_rate is None


@pytest.mark.parametrize("rate", [0, 1, 0.5])
def test_soak_error_rate_may_be_zero_to_one(rate: float) -> None:
    assert parse_config({"budgets": {"soak_error_rate": rate}}).budgets.soak_error_rate == rate


@pytest.mark.parametrize(
    ("top_key", "value", "expected"),
    [
        ("soak_max_minutes", 0, "expected a number > 0, got 0"),
        ("soak_max_minutes", -1, "expected a number > 0, got -1"),
        ("soak_max_minutes", "5", "expected a number, got a string ('5')"),
        ("soak_max_minutes", math.inf, "expected a finite number"),
        ("enforce_requires_offline", "yes", "expected true or false, got a string ('yes')"),
        ("enforce_requires_offline", 1, "expected true or false, got a whole number (1)"),
    ],
)
def test_wrong_soak_or_offline_value_is_one_line_naming_the_key(
    top_key: str, value: object, expected: str
) -> None:
    line = only_line(config_error({top_key: value}))

    assert f"[tool.deploycheck]: {top_key}: {expected}" in line


@pytest.mark.parametrize(
    ("budget_key", "value", "expected"),
    [
        ("soak_error_rate", 2, "expected a fraction of calls from 0 to 1, e.g. 0.001, got 2"),
        ("soak_error_rate", -0.1, "expected a number >= 0, got -0.1"),
        ("soak_error_rate", "0.1%", "expected a number, got a string"),
        ("soak_minutes", 0, "expected a number > 0, got 0"),
        ("soak_growth_mb_per_hour", True, "expected a number, got a boolean (True)"),
        ("soak_latency_drift_pct", math.nan, "expected a finite number"),
    ],
)
def test_wrong_soak_budget_is_one_line_naming_the_key(
    budget_key: str, value: object, expected: str
) -> None:
    line = only_line(config_error({"budgets": {budget_key: value}}))

    assert f"[tool.deploycheck.budgets]: {budget_key}: {expected}" in line


@pytest.mark.parametrize(
    ("raw", "suggestion"),
    [
        ({"soak_max_minute": 5}, "soak_max_minutes"),
        ({"enforce_require_offline": True}, "enforce_requires_offline"),
        ({"budgets": {"soak_minute": 5}}, "soak_minutes"),
        ({"budgets": {"soak_error_rat": 0.1}}, "soak_error_rate"),
    ],
)
def test_a_typo_in_a_soak_or_offline_key_suggests_the_key(
    raw: dict[str, Any], suggestion: str
) -> None:
    line = only_line(config_error(raw))

    assert f"did you mean {suggestion!r}?" in line


# --------------------------------------------------------------------------- undecodable files


def test_a_latin_1_byte_is_named_by_offset_line_and_column(tmp_path: Path) -> None:
    # Was a UnicodeDecodeError from tomllib: an INTERNALERROR at start-up.
    path = tmp_path / "deploycheck.toml"
    path.write_bytes('# devices\ntarget = "café"\n'.encode("latin-1"))

    with pytest.raises(ConfigError) as excinfo:
        load_config(path)

    assert only_line(excinfo.value) == (
        f"{path}: not UTF-8 text: byte 0xe9 at offset 23 (line 2, column 14);"
        " save the file as UTF-8"
    )


def test_a_binary_file_is_not_utf8_text(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x08\x07\x12\x04\xff\xfe\x00")

    with pytest.raises(ConfigError, match=r"model.onnx: not UTF-8 text: byte 0xff at offset 4"):
        load_config(path)


def test_a_directory_is_not_a_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_config(tmp_path)

    assert only_line(excinfo.value) == (
        f"{tmp_path}: is a directory; give the pyproject.toml or deploycheck.toml file in it"
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("x = " + "[" * 100_000 + "]" * 100_000, "invalid TOML: "),
        ("x = 1" + "0" * 5000, "invalid TOML: Exceeds the limit (4300 digits)"),
    ],
)
def test_toml_that_python_cannot_read_is_a_config_error(
    tmp_path: Path, text: str, problem: str
) -> None:
    # A RecursionError and a ValueError from tomllib, before: both INTERNALERRORs.
    path = tmp_path / "deploycheck.toml"
    path.write_text(text + "\n", encoding="utf-8")

    with pytest.raises(ConfigError) as excinfo:
        load_config(path)

    assert only_line(excinfo.value).startswith(f"{path}: {problem}")


@pytest.mark.parametrize(
    ("value", "described"), [(5, "a whole number (5)"), ("x", "a string ('x')"), ([1], "a list")]
)
def test_a_deploycheck_key_that_is_not_a_table_says_what_it_is(
    tmp_path: Path, value: object, described: str
) -> None:
    path = tmp_path / "pyproject.toml"
    toml = {5: "5", "x": '"x"', "[1]": "[1]"}.get(str(value), str(value))
    path.write_text(f"[tool]\ndeploycheck = {toml}\n", encoding="utf-8")

    with pytest.raises(ConfigError) as excinfo:
        load_config(path)

    line = only_line(excinfo.value)
    assert line.startswith(f"pyproject.toml: [tool.deploycheck]: expected a table, got {described}")


# --------------------------------------------------------------------------- figure range


@pytest.mark.parametrize(
    ("device_key", "value", "expected"),
    [
        ("latency_factor", 1e308, "expected a number from 1e-12 to 1e12, got 1e+308"),
        ("latency_factor", 1e-13, "expected a number from 1e-12 to 1e12, got 1e-13"),
        ("memory_mb", 5e-324, "expected a number from 1e-12 to 1e12, got 5e-324"),
        ("price_usd", 1e-300, "expected 0 or a number from 1e-12 to 1e12, got 1e-300"),
        ("cpus", 10**20, "expected a whole number from 1 to 1e12, got a whole number"),
    ],
)
def test_figures_outside_the_range_are_refused(
    device_key: str, value: object, expected: str
) -> None:
    # latency_factor = 1e308 passed and then broke the HTML report at the end of the run.
    line = only_line(config_error({"devices": [{"name": "edge-a", device_key: value}]}))

    assert f"#1 (edge-a): {device_key}: {expected}" in line


def test_the_ends_of_the_figure_range_are_figures() -> None:
    device = {"name": "edge-a", "latency_factor": 1e12, "memory_mb": 1e-12, "price_usd": 0}
    assert parse_config({"devices": [device]}).devices[0].latency_factor == 1e12


def test_an_input_shape_too_large_is_refused(tmp_path: Path) -> None:
    write_model(tmp_path, "m.onnx")
    models = {"m": {"path": "m.onnx", "input_shapes": {"x": [1, 10**13]}}}

    line = only_line(config_error({"models": models}, source=tmp_path / "pyproject.toml"))

    assert "input 'x': expected a list of whole numbers >= 1 (at most 1e12)" in line


def test_a_model_path_the_file_system_cannot_hold_is_a_config_error(tmp_path: Path) -> None:
    # os.stat's ENAMETOOLONG escaped Path.is_file().
    line = only_line(
        config_error({"models": {"m": {"path": "m" * 5000}}}, source=tmp_path / "pyproject.toml")
    )

    assert "[tool.deploycheck.models.m]: path: cannot be read: " in line
