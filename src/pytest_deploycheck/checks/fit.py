"""Device fit: which devices of the table can hold a model (or models running together).

A fit is a constraint table, not a leaderboard: each device gets every reason it
fails, so a person sees at once that a cheaper device fails on power *and* memory.
:func:`judge_fit` turns one device's fit into the check a ``device_fit`` test records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..config.schema import DeployConfig, Device, ModelSpec
from .metrics import DEVICE_FIT
from .record import Check

if TYPE_CHECKING:
    from ..markers import FitRequest

CONSTRAINTS = ("memory", "power", "offline")


@dataclass(frozen=True)
class Needs:
    """What a workload asks of a device, and where each figure comes from."""

    models: tuple[str, ...]
    memory_mb: float | None
    power_w: float | None
    requires_offline: bool
    memory_provenance: str = "declared"
    power_provenance: str = "declared"

    def describe(self) -> str:
        parts = [
            _amount(self.memory_mb, "MB", self.memory_provenance),
            _amount(self.power_w, "W", self.power_provenance),
            "offline" if self.requires_offline else "network allowed",
        ]
        return ", ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "models": list(self.models),
            "memory_mb": self.memory_mb,
            "memory_provenance": self.memory_provenance,
            "power_w": self.power_w,
            "power_provenance": self.power_provenance,
            "requires_offline": self.requires_offline,
        }


def _amount(value: float | None, unit: str, provenance: str) -> str:
    if value is None:
        return f"{unit} not declared"
    return f"{value:.4g} {unit} ({provenance})"


def combined_needs(
    models: Sequence[ModelSpec], measured_memory_mb: Mapping[str, float] | None = None
) -> Needs:
    """The needs of *models* running together: memory and power add up, offline if any.

    A measured memory figure replaces the declared one for that model.  When any
    model lacks a figure the sum would understate the need, so it is unknown.
    """
    measured = measured_memory_mb or {}
    memory: list[float | None] = [measured.get(m.name, m.memory_mb) for m in models]
    power = [m.power_w for m in models]
    memory_sources = {"measured" if m.name in measured else "declared" for m in models}
    return Needs(
        models=tuple(m.name for m in models),
        memory_mb=_sum_or_none(memory),
        power_w=_sum_or_none(power),
        requires_offline=any(m.requires_offline for m in models),
        memory_provenance="+".join(sorted(memory_sources)),
    )


def _sum_or_none(values: Iterable[float | None]) -> float | None:
    total = 0.0
    for value in values:
        if value is None:
            return None
        total += value
    return total


@dataclass(frozen=True)
class FitResult:
    """One device judged against one set of needs."""

    device: str
    reasons: tuple[str, ...]
    details: tuple[str, ...]
    unchecked: tuple[str, ...]
    price_usd: float | None

    @property
    def fits(self) -> bool:
        return not self.reasons

    @property
    def status(self) -> str:
        """``FIT`` or ``CHECK memory,power``; unjudged constraints are named too."""
        text = "FIT" if self.fits else "CHECK " + ",".join(self.reasons)
        if self.unchecked:
            text += f" (unchecked: {','.join(self.unchecked)})"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "status": self.status,
            "fits": self.fits,
            "reasons": list(self.reasons),
            "details": list(self.details),
            "unchecked": list(self.unchecked),
            "price_usd": self.price_usd,
        }


# The device-fit line keeps the seeds' ``edge-a CHECK memory,power`` wording; this one
# line (under 80 columns) says what it means to whoever reads it without the README.
FIT_LEGEND = "CHECK means does not fit: the device falls short on each constraint named"


def fit_legend(statuses: Iterable[str]) -> str | None:
    """The legend when a status says CHECK, else None (FIT alone needs none)."""
    return FIT_LEGEND if any(status.startswith("CHECK") for status in statuses) else None


def check_fit(device: Device, needs: Needs) -> FitResult:
    """Judge *device* against *needs* and keep every failing reason, in a fixed order."""
    reasons: list[str] = []
    details: list[str] = []
    unchecked: list[str] = []
    for constraint, need, capacity, unit in (
        ("memory", needs.memory_mb, device.memory_mb, "MB"),
        ("power", needs.power_w, device.power_w, "W"),
    ):
        if need is None:
            unchecked.append(constraint)
        elif capacity is None:
            reasons.append(constraint)
            details.append(f"{constraint}: needs {need:g} {unit}, {device.name} declares none")
        elif capacity < need:
            reasons.append(constraint)
            details.append(f"{constraint}: needs {need:g} {unit}, {device.name} has {capacity:g}")
    if needs.requires_offline and device.offline is not True:
        reasons.append("offline")
        state = "is online-only" if device.offline is False else "does not declare offline"
        details.append(f"offline: required, {device.name} {state}")
    return FitResult(
        device.name, tuple(reasons), tuple(details), tuple(unchecked), device.price_usd
    )


def fit_table(devices: Iterable[Device], needs: Needs) -> list[FitResult]:
    """Every device judged against *needs*, in table order."""
    return [check_fit(device, needs) for device in devices]


def cheapest_fit(results: Iterable[FitResult]) -> FitResult | None:
    """The cheapest device that passes every constraint.

    Devices without a price rank after priced ones; ties keep table order.
    """
    fitting = [r for r in results if r.fits]
    if not fitting:
        return None
    return min(fitting, key=lambda r: (r.price_usd is None, r.price_usd or 0.0))


def judge_fit(
    config: DeployConfig,
    device: Device,
    request: FitRequest,
    target: str | None,
    measured_memory_mb: Mapping[str, float] | None = None,
) -> Check:
    """The fit of *device* as a check; it gates only on the target or when all must fit."""
    needs = combined_needs([config.model(m) for m in request.models], measured_memory_mb)
    result = check_fit(device, needs)
    all_devices = (
        config.all_devices_must_fit if request.all_devices is None else request.all_devices
    )
    gating = all_devices or device.name == target
    return Check(
        name=f"device_fit[{'+'.join(request.models)}@{device.name}]",
        metric=DEVICE_FIT,
        value=result.status,
        budget=None,
        passed=result.fits,
        # Power is never measured here: a fit with a power need rests on a declared figure.
        provenance="measured"
        if needs.memory_provenance == "measured" and needs.power_w is None
        else "declared",
        details="; ".join(result.details),
        gating=gating,
        extra={
            **result.as_dict(),
            "needs": needs.describe(),
            "needs_detail": needs.as_dict(),
            "is_target": device.name == target,
        },
        models=tuple(request.models),
    )
