"""The device_fit marker's arguments (markers.py) and the check it records (checks/fit.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_deploycheck.checks.fit import judge_fit
from pytest_deploycheck.config.schema import DeployConfig, Device, ModelSpec
from pytest_deploycheck.markers import (
    DEVICE_FIT,
    FitRequest,
    MarkerError,
    parse_fit_marker,
    read_markers,
)

EDGE_A = Device("edge-a", memory_mb=512, power_w=8, offline=True, price_usd=60)
EDGE_B = Device("edge-b", memory_mb=2048, power_w=15, offline=False, price_usd=90)
EDGE_C = Device("edge-c", memory_mb=4096, power_w=25, offline=True, price_usd=120)


def make_config(*model_names: str, **kwargs: Any) -> DeployConfig:
    specs = {
        "optimized": ModelSpec(
            "optimized", Path("int8.onnx"), memory_mb=700, power_w=10, requires_offline=True
        ),
        "baseline": ModelSpec("baseline", Path("fp32.onnx"), memory_mb=820, power_w=12),
        "detector": ModelSpec("detector", Path("det.onnx"), memory_mb=300, power_w=4),
        "undeclared": ModelSpec("undeclared", Path("u.onnx")),
    }
    names = model_names or ("optimized", "baseline")
    return DeployConfig(
        source=Path("/project/pyproject.toml"),
        table="[tool.deploycheck]",
        models={name: specs[name] for name in names},
        devices=(EDGE_A, EDGE_B, EDGE_C),
        **kwargs,
    )


def marker_error(*args: Any, config: DeployConfig | None = None, **kwargs: Any) -> str:
    with pytest.raises(MarkerError) as excinfo:
        parse_fit_marker(args, kwargs, config or make_config())
    return str(excinfo.value)


# --------------------------------------------------------------------------- arguments


def test_positional_model() -> None:
    request = parse_fit_marker(("baseline",), {}, make_config())

    assert request == FitRequest(models=("baseline",), all_devices=None)


def test_model_keyword() -> None:
    assert parse_fit_marker((), {"model": "baseline"}, make_config()).models == ("baseline",)


def test_model_list_runs_together() -> None:
    request = parse_fit_marker((), {"model": ["optimized", "baseline"]}, make_config())

    assert request.models == ("optimized", "baseline")


def test_model_tuple_is_accepted_too() -> None:
    assert parse_fit_marker((("optimized", "baseline"),), {}, make_config()).models == (
        "optimized",
        "baseline",
    )


def test_no_model_uses_the_default_model() -> None:
    assert parse_fit_marker((), {}, make_config()).models == ("optimized",)


def test_no_model_uses_the_configured_default_model() -> None:
    config = make_config("optimized", "baseline", default_model="baseline")

    assert parse_fit_marker((), {}, config).models == ("baseline",)


def test_no_model_and_no_default_among_several_lists_them() -> None:
    message = marker_error(config=make_config("baseline", "detector"))

    assert "default_model" in message
    assert "baseline, detector" in message


def test_all_devices_option() -> None:
    request = parse_fit_marker(("optimized",), {"all_devices": True}, make_config())

    assert request.all_devices is True


def test_unknown_keyword_is_named_with_the_signature() -> None:
    message = marker_error(modle="optimized")

    assert "@pytest.mark.device_fit" in message
    assert "unknown argument 'modle'" in message
    assert "all_devices" in message


def test_model_given_twice_is_refused() -> None:
    assert "give the model once" in marker_error("optimized", model="baseline")


def test_two_positional_models_are_refused() -> None:
    assert "give the model once" in marker_error("optimized", "baseline")


@pytest.mark.parametrize("value", ["yes", 1, 0])
def test_all_devices_must_be_a_bool(value: object) -> None:
    message = marker_error(all_devices=value)

    assert f"all_devices must be True or False, got {value!r}" in message


def test_unknown_model_name_lists_the_valid_ones() -> None:
    message = marker_error("optimised")

    assert "@pytest.mark.device_fit" in message
    assert "unknown model 'optimised'" in message
    assert "did you mean 'optimized'?" in message
    assert "optimized, baseline" in message


def test_unknown_model_in_a_list_is_named() -> None:
    assert "unknown model 'ghost'" in marker_error(model=["optimized", "ghost"])


@pytest.mark.parametrize("model", [3, [], ["optimized", 3], {"optimized": 1}])
def test_model_of_the_wrong_type_is_refused(model: object) -> None:
    message = marker_error(model=model)

    assert "model must be a model name or a list of names" in message


@dataclass(frozen=True)
class FakeMark:
    name: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


def test_reading_a_valid_marker_has_no_problem() -> None:
    mark = FakeMark("device_fit", ("optimized",), {"all_devices": False})
    found = read_markers("test_x.py::test_fit", [mark], make_config())

    assert found.problems == ()
    assert found.fit == FitRequest(models=("optimized",), all_devices=False)


def test_reading_a_bad_marker_is_its_problem_line() -> None:
    mark = FakeMark("device_fit", kwargs={"model": "ghost"})
    (problem,) = read_markers("test_x.py::test_fit", [mark], make_config()).problems

    assert problem.startswith("test_x.py::test_fit: @pytest.mark.device_fit: ")
    assert "unknown model 'ghost'" in problem
    assert "\n" not in problem


def test_help_starts_with_the_signature() -> None:
    assert DEVICE_FIT.help.startswith(DEVICE_FIT.signature + ": ")
    assert DEVICE_FIT.signature == "device_fit(model=None, *, all_devices=False)"


# --------------------------------------------------------------------------- judging


def judge(
    device: Device,
    *models: str,
    target: str | None = "edge-c",
    all_devices: bool | None = None,
    config: DeployConfig | None = None,
    measured: dict[str, float] | None = None,
) -> Any:
    request = FitRequest(models or ("optimized",), all_devices)
    return judge_fit(config or make_config(), device, request, target, measured)


def test_misfit_on_the_target_gates() -> None:
    check = judge(EDGE_A, target="edge-a")

    assert check.gating is True
    assert check.status == "FAIL"
    assert check.extra["is_target"] is True


def test_misfit_off_the_target_is_reported_not_gating() -> None:
    check = judge(EDGE_A, target="edge-c")

    assert check.gating is False
    assert check.passed is False
    assert check.status == "INFO"
    assert check.extra["is_target"] is False


def test_fit_on_the_target_passes() -> None:
    check = judge(EDGE_C, target="edge-c")

    assert (check.gating, check.status) == (True, "PASS")


def test_without_a_target_no_fit_gates() -> None:
    assert judge(EDGE_C, target=None).gating is False


def test_all_devices_marker_option_makes_every_device_gate() -> None:
    assert judge(EDGE_A, target="edge-c", all_devices=True).gating is True


def test_all_devices_config_key_makes_every_device_gate() -> None:
    config = make_config(all_devices_must_fit=True)

    assert judge(EDGE_A, target="edge-c", config=config).gating is True


def test_marker_all_devices_false_overrides_the_config_key() -> None:
    config = make_config(all_devices_must_fit=True)

    assert judge(EDGE_A, target="edge-c", config=config, all_devices=False).gating is False


def test_check_name_value_and_details() -> None:
    check = judge(EDGE_A)

    assert check.name == "device_fit[optimized@edge-a]"
    assert check.metric == "device_fit"
    assert check.value == "CHECK memory,power"
    assert check.budget is None
    assert check.provenance == "declared"
    assert check.details == "memory: needs 700 MB, edge-a has 512; power: needs 10 W, edge-a has 8"


def test_check_extra_carries_the_fit_table_row() -> None:
    check = judge(EDGE_B)
    extra = check.extra

    assert extra["device"] == "edge-b"
    assert extra["status"] == "CHECK offline"
    assert extra["fits"] is False
    assert extra["reasons"] == ["offline"]
    assert extra["price_usd"] == 90
    assert check.models == ("optimized",)
    assert extra["needs"] == "700 MB (declared), 10 W (declared), offline"
    assert extra["needs_detail"]["memory_mb"] == 700


def test_models_running_together_are_named_and_summed() -> None:
    check = judge(EDGE_C, "optimized", "detector", config=make_config("optimized", "detector"))

    assert check.name == "device_fit[optimized+detector@edge-c]"
    assert check.extra["needs_detail"]["memory_mb"] == 1000
    assert check.extra["needs_detail"]["power_w"] == 14
    assert check.models == ("optimized", "detector")


def test_measured_memory_with_a_declared_power_need_stays_declared() -> None:
    check = judge(EDGE_A, measured={"optimized": 400})

    assert check.provenance == "declared"
    assert check.value == "CHECK power"
    assert "400 MB (measured), 10 W (declared)" in check.extra["needs"]


def test_measured_memory_alone_makes_the_check_measured() -> None:
    check = judge(
        EDGE_C, "undeclared", config=make_config("undeclared"), measured={"undeclared": 9}
    )

    assert check.provenance == "measured"
    assert check.value == "FIT (unchecked: power)"


def test_undeclared_figures_are_named_in_the_value() -> None:
    check = judge(EDGE_C, "undeclared", config=make_config("undeclared"))

    assert check.passed is True
    assert check.value == "FIT (unchecked: memory,power)"
