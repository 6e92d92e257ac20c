"""Unit tests of devicefit.py: every device judged against a workload's needs."""

from __future__ import annotations

from pathlib import Path

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
)
from pytest_deploycheck.config.schema import Device, ModelSpec

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
