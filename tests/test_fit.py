"""checks/fit.py: every device judged against a workload's needs, the check one
device_fit test records, and the device_fit marker's arguments (markers.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_deploycheck.checks.fit import (
    CONSTRAINTS,
    FitResult,
    Needs,
    cheapest_fit,
    check_fit,
    combined_needs,
    fit_table,
    judge_fit,
)
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
REFERENCE_DEVICES = (EDGE_A, EDGE_B, EDGE_C)


def model(
    name: str = "optimized",
    memory_mb: float | None = None,
    power_w: float | None = None,
    requires_offline: bool = False,
) -> ModelSpec:
    return ModelSpec(
        name=name,
        path=Path(f"{name}.onnx"),
        memory_mb=memory_mb,
        power_w=power_w,
        requires_offline=requires_offline,
    )


def needs(
    memory_mb: float | None = None, power_w: float | None = None, requires_offline: bool = False
) -> Needs:
    return Needs(("m",), memory_mb, power_w, requires_offline)


def table_line(results: list[FitResult]) -> list[str]:
    return [f"{r.device} {r.status}" for r in results]


# --------------------------------------------------------------------------- reference


def test_reference_example_gives_every_reason_per_device() -> None:
    optimized = model(memory_mb=700, power_w=10, requires_offline=True)

    results = fit_table(REFERENCE_DEVICES, combined_needs([optimized]))

    assert table_line(results) == [
        "edge-a CHECK memory,power",
        "edge-b CHECK offline",
        "edge-c FIT",
    ]


def test_smaller_model_still_fails_edge_a_on_power() -> None:
    optimized = model(memory_mb=350, power_w=10, requires_offline=True)

    result = check_fit(EDGE_A, combined_needs([optimized]))

    assert result.status == "CHECK power"
    assert result.details == ("power: needs 10 W, edge-a has 8",)


def test_details_give_the_figures_behind_each_reason() -> None:
    result = check_fit(EDGE_A, needs(memory_mb=700, power_w=10))

    assert result.details == (
        "memory: needs 700 MB, edge-a has 512",
        "power: needs 10 W, edge-a has 8",
    )


def test_online_only_device_is_named_as_such() -> None:
    result = check_fit(EDGE_B, needs(requires_offline=True))

    assert result.reasons == ("offline",)
    assert result.details == ("offline: required, edge-b is online-only",)


def test_device_that_does_not_declare_offline_fails_an_offline_model() -> None:
    result = check_fit(Device("edge-x"), needs(requires_offline=True))

    assert result.reasons == ("offline",)
    assert "does not declare offline" in result.details[0]


def test_online_device_fits_a_model_that_allows_network() -> None:
    assert check_fit(EDGE_B, needs(memory_mb=100, power_w=1)).fits


def test_exact_capacity_fits() -> None:
    assert check_fit(EDGE_A, needs(memory_mb=512, power_w=8)).status == "FIT"


def test_device_without_declared_capacity_fails_with_a_detail_saying_so() -> None:
    result = check_fit(Device("edge-x"), needs(memory_mb=100, power_w=5))

    assert result.reasons == ("memory", "power")
    assert result.details == (
        "memory: needs 100 MB, edge-x declares none",
        "power: needs 5 W, edge-x declares none",
    )


def test_undeclared_model_figure_is_listed_as_unchecked() -> None:
    result = check_fit(EDGE_C, combined_needs([model(memory_mb=700)]))

    assert result.fits
    assert result.unchecked == ("power",)
    assert result.status == "FIT (unchecked: power)"


def test_unchecked_figures_are_named_beside_a_misfit() -> None:
    result = check_fit(EDGE_B, needs(requires_offline=True))

    assert result.status == "CHECK offline (unchecked: memory,power)"


def test_fit_result_as_dict() -> None:
    data = check_fit(EDGE_A, needs(memory_mb=700)).as_dict()

    assert data == {
        "device": "edge-a",
        "status": "CHECK memory (unchecked: power)",
        "fits": False,
        "reasons": ["memory"],
        "details": ["memory: needs 700 MB, edge-a has 512"],
        "unchecked": ["power"],
        "price_usd": 60,
    }


def test_fit_table_keeps_table_order() -> None:
    devices = (EDGE_C, EDGE_A, EDGE_B)

    assert [r.device for r in fit_table(devices, needs())] == ["edge-c", "edge-a", "edge-b"]


# --------------------------------------------------------------------------- cheapest


def test_cheapest_fit_chooses_the_cheapest_fitting_device() -> None:
    devices = (
        Device("big", memory_mb=8192, price_usd=300),
        Device("mid", memory_mb=4096, price_usd=120),
        Device("also-big", memory_mb=8192, price_usd=200),
    )

    best = cheapest_fit(fit_table(devices, needs(memory_mb=1000)))

    assert best is not None
    assert best.device == "mid"


def test_cheapest_fit_ignores_a_cheaper_misfit() -> None:
    optimized = model(memory_mb=700, power_w=10, requires_offline=True)

    best = cheapest_fit(fit_table(REFERENCE_DEVICES, combined_needs([optimized])))

    assert best is not None
    assert best.device == "edge-c"


def test_unpriced_devices_rank_after_priced_ones() -> None:
    devices = (Device("unpriced", memory_mb=4096), Device("priced", memory_mb=4096, price_usd=999))

    best = cheapest_fit(fit_table(devices, needs(memory_mb=1)))

    assert best is not None
    assert best.device == "priced"


def test_a_free_device_is_cheaper_than_an_unpriced_one() -> None:
    devices = (Device("unpriced"), Device("free", price_usd=0))

    best = cheapest_fit(fit_table(devices, needs()))

    assert best is not None
    assert best.device == "free"


def test_price_ties_keep_table_order() -> None:
    devices = (Device("first", price_usd=10), Device("second", price_usd=10))

    best = cheapest_fit(fit_table(devices, needs()))

    assert best is not None
    assert best.device == "first"


def test_cheapest_fit_is_none_when_nothing_fits() -> None:
    assert cheapest_fit(fit_table(REFERENCE_DEVICES, needs(memory_mb=10_000))) is None


# --------------------------------------------------------------------------- needs


def test_models_running_together_add_up_and_need_offline_if_either_does() -> None:
    first = model("detector", memory_mb=300, power_w=4, requires_offline=False)
    second = model("classifier", memory_mb=250, power_w=5, requires_offline=True)

    together = combined_needs([first, second])

    assert together.models == ("detector", "classifier")
    assert together.memory_mb == 550
    assert together.power_w == 9
    assert together.requires_offline is True
    assert check_fit(EDGE_A, together).reasons == ("memory", "power")


def test_models_that_allow_network_together_do_not_require_offline() -> None:
    together = combined_needs([model("a"), model("b")])

    assert together.requires_offline is False


def test_one_undeclared_figure_makes_the_sum_unknown() -> None:
    together = combined_needs([model("a", memory_mb=300, power_w=4), model("b", power_w=5)])

    assert together.memory_mb is None
    assert together.power_w == 9
    assert check_fit(EDGE_C, together).unchecked == ("memory",)


def test_measured_memory_replaces_the_declared_figure() -> None:
    optimized = model(memory_mb=700, power_w=10)

    measured = combined_needs([optimized], measured_memory_mb={"optimized": 412.5})

    assert measured.memory_mb == 412.5
    assert measured.memory_provenance == "measured"
    assert measured.power_provenance == "declared"
    assert "412.5 MB (measured)" in measured.describe()
    assert check_fit(EDGE_A, measured).reasons == ("power",)


def test_measured_memory_counts_even_when_nothing_was_declared() -> None:
    measured = combined_needs([model()], measured_memory_mb={"optimized": 100})

    assert measured.memory_mb == 100
    assert measured.memory_provenance == "measured"


def test_mixed_provenance_names_both_sources() -> None:
    together = combined_needs(
        [model("a", memory_mb=300), model("b", memory_mb=200)], measured_memory_mb={"a": 310}
    )

    assert together.memory_mb == 510
    assert together.memory_provenance == "declared+measured"


def test_measured_figure_of_another_model_is_not_used() -> None:
    declared = combined_needs([model(memory_mb=700)], measured_memory_mb={"baseline": 10})

    assert declared.memory_mb == 700
    assert declared.memory_provenance == "declared"


def test_needs_describe_labels_every_figure() -> None:
    text = combined_needs([model(memory_mb=700, power_w=10, requires_offline=True)]).describe()

    assert text == "700 MB (declared), 10 W (declared), offline"


def test_needs_describe_says_what_is_not_declared() -> None:
    assert needs().describe() == "MB not declared, W not declared, network allowed"


def test_needs_as_dict() -> None:
    data = combined_needs([model(memory_mb=700, requires_offline=True)]).as_dict()

    assert data == {
        "models": ["optimized"],
        "memory_mb": 700,
        "memory_provenance": "declared",
        "power_w": None,
        "power_provenance": "declared",
        "requires_offline": True,
    }


# --------------------------------------------------------------------------- property

amounts = st.none() | st.floats(min_value=0.5, max_value=1e5, allow_nan=False)
devices = st.builds(
    Device,
    name=st.just("edge-x"),
    memory_mb=amounts,
    power_w=amounts,
    offline=st.none() | st.booleans(),
)
workloads = st.builds(
    Needs,
    models=st.just(("m",)),
    memory_mb=amounts,
    power_w=amounts,
    requires_offline=st.booleans(),
)


def violated(device: Device, workload: Needs) -> list[str]:
    """The constraints a device breaks, worked out independently of check_fit."""
    broken = []
    if workload.memory_mb is not None and (
        device.memory_mb is None or device.memory_mb < workload.memory_mb
    ):
        broken.append("memory")
    if workload.power_w is not None and (
        device.power_w is None or device.power_w < workload.power_w
    ):
        broken.append("power")
    if workload.requires_offline and device.offline is not True:
        broken.append("offline")
    return broken


@given(device=devices, workload=workloads)
def test_a_device_fits_iff_no_reason_is_given_in_constraint_order(
    device: Device, workload: Needs
) -> None:
    result = check_fit(device, workload)

    assert result.fits == (not result.reasons)
    assert result.status.startswith("FIT") == result.fits
    assert list(result.reasons) == violated(device, workload)
    assert list(result.reasons) == sorted(result.reasons, key=CONSTRAINTS.index)
    assert len(result.details) == len(result.reasons)


@pytest.mark.parametrize("constraint", CONSTRAINTS)
def test_each_constraint_alone_can_fail_a_device(constraint: str) -> None:
    workload = {
        "memory": needs(memory_mb=10_000),
        "power": needs(power_w=100),
        "offline": needs(requires_offline=True),
    }[constraint]

    assert check_fit(EDGE_B, workload).reasons == (constraint,)


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
