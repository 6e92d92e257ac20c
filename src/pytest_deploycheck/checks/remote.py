"""Deploy tests on a real device through pytest-xdist: the gateway, the check, provenance.

The device row's ``host`` is an execnet gateway spec; the plugin hands it to xdist as
``--tx`` (see :func:`plan_gateways`).  Before the xdist worker starts on the device, the
controller probes it over the same gateway (:mod:`._device_probe`): its host name, CPU,
Python and onnxruntime, and the SHA-256 of the project's model files, which must match
the controller's -- figures measured on other models would be judged as these.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config.schema import DeployConfig, Device

EXECMODEL_PREFIX = "execmodel=main_thread_only//"  # xdist puts it in front of every spec
FLEET_ID = "id="  # a fleet's gateways are named after their devices
MEASURED_ON_KEY = "measured_on"  # a check's extra: where its figure was measured


@dataclass(frozen=True)
class GatewayPlan:
    """What the xdist options become for a run on a device, and the line that says so."""

    tx: list[str]
    dist: str
    note: str


def plan_gateways(
    device: Device, *, user_tx: list[str], numprocesses: object, dist: str
) -> GatewayPlan:
    """The ``--tx``/``--dist`` of a run of *device*'s tests on the device.

    A ``--tx`` the user gave is kept (the device row's host is then not added);
    ``-n N`` would start local workers, which measure this host, so one gateway to
    the device takes their place.  ``--dist each``: the one worker runs every test.
    """
    if user_tx and not numprocesses:
        return GatewayPlan(
            list(user_tx),
            dist if dist != "no" else "each",
            f"deploycheck: {device.name} runs through the --tx given: {', '.join(user_tx)}"
            f" (the devices table's host {device.host!r} is not added)",
        )
    replaced = f"; -n {numprocesses} replaced by one worker on the device" if numprocesses else ""
    return GatewayPlan(
        [device.host],
        "each",
        f"deploycheck: {device.name} runs on its host {device.host}{replaced}",
    )


class FleetError(ValueError):
    """A fleet run that cannot be set up, in one line."""


def plan_fleet(devices: list[Device], *, user_tx: list[str], numprocesses: object) -> GatewayPlan:
    """One gateway per device, its execnet id the device's name, each running every test."""
    names = ",".join(device.name for device in devices)
    if user_tx and not numprocesses:
        raise FleetError(
            f"--deploy-target {names}: a fleet run makes one gateway per device from its"
            f" host key; drop --tx {' --tx '.join(user_tx)}"
        )
    replaced = f"; -n {numprocesses} replaced by one worker per device" if numprocesses else ""
    shown = "; ".join(f"{device.name} on {device.host}" for device in devices)
    return GatewayPlan(
        [f"{FLEET_ID}{device.name}//{device.host}" for device in devices],
        "each",
        f"deploycheck: fleet of {len(devices)}: {shown}{replaced}",
    )


def spec_text(spec: object) -> str:
    """A gateway's spec as the user wrote it (xdist's execmodel and a fleet's id taken off)."""
    text = str(getattr(spec, "_spec", spec)).removeprefix(EXECMODEL_PREFIX)
    if text.startswith(FLEET_ID):
        text = text.partition("//")[2]
    return text


def model_hashes(config: DeployConfig, base: Path) -> dict[str, str]:
    """SHA-256 of each configured model file, keyed by its path relative to *base*."""
    hashes: dict[str, str] = {}
    for spec in config.models.values():
        path = Path(spec.path)
        if path.is_file():
            hashes[os.path.relpath(path, base)] = _sha256(path)
    return hashes


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def probe(gateway: Any, paths: list[str]) -> dict[str, Any]:
    """Where *gateway* runs and the SHA-256 of *paths* there (None: not readable)."""
    from . import _device_probe

    channel = gateway.remote_exec(_device_probe)
    channel.send(paths)
    found: dict[str, Any] = channel.receive(timeout=120)
    channel.waitclose(timeout=30)
    return found


def mismatch(target: str, expected: dict[str, str], found: dict[str, Any]) -> str | None:
    """The one line that fails a run on a device whose models are not the controller's."""
    remote = found.get("sha256", {})
    where = f"{found.get('hostname', '?')}:{found.get('cwd', '?')}"
    for path, digest in expected.items():
        theirs = remote.get(path)
        if theirs is None:
            return (
                f"{target}: {path} is missing on the device ({where}):"
                " copy the project's models to the device"
            )
        if theirs != digest:
            return (
                f"{target}: {path} differs from the controller's (sha256 {theirs[:12]}.. vs"
                f" {digest[:12]}..): copy the project's models to the device"
            )
    return None


def provenance(gateway_spec: str, found: dict[str, Any]) -> dict[str, Any]:
    """What a check measured on the device records: gateway, host, CPU, versions."""
    return {
        "gateway": gateway_spec,
        "hostname": found.get("hostname"),
        "cpu_model": found.get("cpu_model"),
        "machine": found.get("machine"),
        "platform": found.get("platform"),
        "python": found.get("python"),
        "onnxruntime": found.get("onnxruntime"),
    }
