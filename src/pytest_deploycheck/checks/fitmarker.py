"""The ``device_fit`` marker's logic: read its arguments, judge one device, record a check.

Kept apart from the plugin so it can be tested without running pytest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..config.schema import ConfigError, DeployConfig, Device
from .fit import check_fit, combined_needs
from .record import Check

SIGNATURE = "device_fit(model=None, *, all_devices=False)"
HELP = (
    f"{SIGNATURE}: run the test once per device of the devices table (deploy_device"
    " fixture) and check that the model fits it; model is a configured model name or a"
    " list of models that run together (default: the default model). A misfit fails on"
    " the deploy target and is reported for the other devices, unless all_devices=True"
)


class MarkerError(ValueError):
    """A marker written with arguments that cannot work."""


@dataclass(frozen=True)
class FitRequest:
    models: tuple[str, ...]
    all_devices: bool | None  # None: use the config's all_devices_must_fit


def parse_fit_marker(
    args: Sequence[Any], kwargs: Mapping[str, Any], config: DeployConfig
) -> FitRequest:
    """Validate the marker's arguments against the configured models."""
    unknown = sorted(set(kwargs) - {"model", "all_devices"})
    if unknown:
        raise MarkerError(
            f"@pytest.mark.device_fit: unknown argument {unknown[0]!r};"
            f" the signature is {SIGNATURE}"
        )
    if len(args) > 1 or (args and "model" in kwargs):
        raise MarkerError("@pytest.mark.device_fit: give the model once")
    model = args[0] if args else kwargs.get("model")
    all_devices = kwargs.get("all_devices")
    if all_devices is not None and not isinstance(all_devices, bool):
        raise MarkerError(
            f"@pytest.mark.device_fit: all_devices must be True or False, got {all_devices!r}"
        )
    return FitRequest(_model_names(model, config), all_devices)


def marker_problem(args: Sequence[Any], kwargs: Mapping[str, Any], config: DeployConfig) -> str:
    """What is wrong with the marker's arguments, or an empty string."""
    try:
        parse_fit_marker(args, kwargs, config)
    except MarkerError as exc:
        return str(exc)
    return ""


def _model_names(model: Any, config: DeployConfig) -> tuple[str, ...]:
    try:
        if model is None:
            names: tuple[str, ...] = (config.resolve_default_model(),)
        elif isinstance(model, str):
            names = (model,)
        elif isinstance(model, (list, tuple)) and model and all(isinstance(m, str) for m in model):
            names = tuple(model)
        else:
            raise MarkerError(
                "@pytest.mark.device_fit: model must be a model name or a list of names,"
                f" got {model!r}"
            )
        for name in names:
            config.model(name)
    except ConfigError as exc:
        raise MarkerError(f"@pytest.mark.device_fit: {exc}") from None
    return names


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
        metric="device_fit",
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
            "models": list(request.models),
            "needs": needs.describe(),
            "needs_detail": needs.as_dict(),
            "is_target": device.name == target,
        },
    )
