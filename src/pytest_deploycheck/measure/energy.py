"""Measured energy per inference from Linux powercap (RAPL) counters, where a host has them.

Most hosts have no power meter, so power stays a *declared* figure (model and device
``power_w`` in the config).  Where Linux exposes RAPL energy counters under
``/sys/class/powercap``, this module measures the energy spent during a window of
inference calls and labels it *measured*.

What the figure is, and is not: RAPL counts the energy of the whole CPU package
(cores, caches, uncore, integrated GPU), plus DRAM when those zones are asked for,
for *everything* the host runs, not only this process.  It is an upper bound on the
workload's energy on this host, never an isolated figure, and never the power of the
target device.

The sysfs facts this relies on (kernel ABI ``sysfs-class-powercap`` and the driver
sources):

* ``/sys/class/powercap`` lists control types and zones side by side:
  ``intel-rapl`` (control type), ``intel-rapl:0`` (package zone), ``intel-rapl:0:0``
  (subzone).  Each zone has ``name``, ``energy_uj`` (microjoules, wrapping around at
  ``max_energy_range_uj``) and ``enabled`` (power *capping* on/off: counters run
  either way, so it is not consulted).
* Top-level zones are named ``package-N`` (``package-N-die-M`` on multi-die parts) or
  ``psys`` (the whole platform, on client parts).  Subzones ``core``/``uncore`` are
  parts of their package; a ``dram`` subzone is a separate RAPL domain that the
  package figure does *not* include.
* The MSR driver registers the ``intel-rapl`` control type on AMD Zen CPUs too; the
  mainline kernel has no ``amd-rapl`` control type, so none is looked for.
* ``intel-rapl-mmio:N`` is the same package read through MMIO on some Intel client
  parts: adding it would count the package twice, so it is ignored.
* ``energy_uj`` is readable by root only since Linux 5.10 and the November 2020
  stable updates (CVE-2020-8694, "PLATYPUS"); containers may also mask the tree.
  Both are common, so absence and refusal become a reason, never an exception.

What is summed: every ``package-*`` zone (all sockets), plus the ``dram`` subzones of
those packages when ``include_dram`` is set.  A ``psys`` zone already contains the
package energy, so it is only noted, and used alone on a host with no package zone.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

POWERCAP_ROOT = Path("/sys/class/powercap")
# Another sysfs root: a container with the host's sysfs mounted elsewhere, or a test.
ENV_POWERCAP_ROOT = "DEPLOYCHECK_POWERCAP_ROOT"

Reader = Callable[[Path], str]
"""Reads one sysfs file; injectable so tests can simulate refusals and counter values."""

ZoneKind = Literal["package", "dram", "psys"]

_ZONE = re.compile(r"^intel-rapl:(\d+)$")
_SUBZONE = re.compile(r"^intel-rapl:(\d+):(\d+)$")
_ROOT_ONLY = (
    "energy_uj is readable by root only since Linux 5.10 (CVE-2020-8694); "
    "run as root or grant read access to measure energy"
)
_SCOPES = {
    frozenset({"package"}): "whole CPU package",
    frozenset({"package", "dram"}): "whole CPU package and DRAM",
    frozenset({"psys"}): "whole platform (psys)",
}


class EnergyCounterError(Exception):
    """A counter file that is missing, refused or unreadable; ``str()`` is the reason."""


@dataclass(frozen=True)
class EnergyZone:
    """One RAPL counter that is summed: its label, zone directory and wrap-around range."""

    name: str
    path: Path
    max_range_uj: int
    kind: ZoneKind = "package"

    @property
    def energy_file(self) -> Path:
        return self.path / "energy_uj"


def counter_delta(before_uj: int, after_uj: int, max_range_uj: int) -> int:
    """Microjoules between two reads of a counter that wraps at *max_range_uj*.

    A single wrap between the reads is assumed; the kernel reports the range, not the
    counter's unit, so a wrap may undercount by one counter unit (tens of µJ).
    """
    delta = after_uj - before_uj
    if delta < 0:
        delta += max_range_uj
    return delta


def _read_text(path: Path) -> str:
    return path.read_text(encoding="ascii", errors="replace")


def _read(reader: Reader, path: Path) -> str:
    try:
        return reader(path).strip()
    except PermissionError:
        raise EnergyCounterError(
            f"energy counters not readable: {path}: permission denied ({_ROOT_ONLY})"
        ) from None
    except OSError as exc:
        detail = exc.strerror or str(exc) or type(exc).__name__
        raise EnergyCounterError(f"energy counters not readable: {path}: {detail}") from None


def _read_uint(reader: Reader, path: Path) -> int:
    text = _read(reader, path)
    if not text.isascii() or not text.isdigit():
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise EnergyCounterError(
            f"energy counters not usable: {path}: expected a whole number, got {shown!r}"
        )
    return int(text)


def _zone(path: Path, name: str, kind: ZoneKind, reader: Reader) -> EnergyZone:
    range_file = path / "max_energy_range_uj"
    max_range = _read_uint(reader, range_file)
    if max_range <= 0:
        raise EnergyCounterError(f"energy counters not usable: {range_file}: range is 0")
    return EnergyZone(name, path, max_range, kind)


def _listdir(path: Path) -> list[Path]:
    try:
        return list(path.iterdir())
    except OSError as exc:
        detail = exc.strerror or str(exc) or type(exc).__name__
        raise EnergyCounterError(f"energy counters not readable: {path}: {detail}") from None


def _scan(root: Path, include_dram: bool, reader: Reader) -> tuple[list[EnergyZone], list[str]]:
    """Zones to sum and notes on zones deliberately left out (see the module docstring)."""
    tops: dict[int, Path] = {}
    subs: dict[tuple[int, int], Path] = {}
    for entry in _listdir(root):
        if (match := _ZONE.match(entry.name)) and entry.is_dir():
            tops[int(match.group(1))] = entry
        elif (match := _SUBZONE.match(entry.name)) and entry.is_dir():
            subs[(int(match.group(1)), int(match.group(2)))] = entry
    for index, top in tops.items():
        # Under /sys/devices/virtual/powercap subzones live inside their package.
        for entry in _listdir(top):
            match = _SUBZONE.match(entry.name)
            if match and int(match.group(1)) == index and entry.is_dir():
                subs.setdefault((index, int(match.group(2))), entry)

    packages: list[EnergyZone] = []
    platform: list[EnergyZone] = []
    for index in sorted(tops):
        path = tops[index]
        name = _read(reader, path / "name")
        if name.startswith("package"):
            packages.append(_zone(path, name, "package", reader))
            if include_dram:
                for key in sorted(k for k in subs if k[0] == index):
                    if _read(reader, subs[key] / "name") == "dram":
                        packages.append(_zone(subs[key], f"{name}/dram", "dram", reader))
        elif name == "psys":
            platform.append(_zone(path, name, "psys", reader))
    if not packages:
        return platform, []
    notes = [
        f"psys zone {zone.path.name} (whole platform) not summed: it already includes"
        " the package energy"
        for zone in platform
    ]
    return packages, notes


def find_zones(
    root: Path = POWERCAP_ROOT, *, include_dram: bool = False, reader: Reader | None = None
) -> list[EnergyZone]:
    """The RAPL zones whose energy is summed: ``package-*`` zones (with their ``dram``
    subzones if asked), else a lone ``psys`` zone; ``[]`` when *root* does not exist.

    *root* is the class directory, where every zone is listed by its sysfs id.

    Raises EnergyCounterError when the tree or a zone's ``name`` or range cannot be read.
    """
    if not root.is_dir():
        return []
    return _scan(root, include_dram, reader or _read_text)[0]


def _fmt(value: float) -> str:
    """Three significant figures without exponents for everyday magnitudes."""
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


@dataclass(frozen=True)
class EnergyReading:
    """Energy counted over a window, with what the counters cover.

    The figure is the whole CPU package (and DRAM when summed) including every other
    process on the host: an upper bound on the workload's energy, not an isolated one.
    """

    joules: float
    seconds: float
    zones: tuple[str, ...]
    scope: str = "whole CPU package"

    @property
    def watts(self) -> float | None:
        """Average power over the window; None for a window of no measurable length."""
        return self.joules / self.seconds if self.seconds > 0 else None

    def per_call_mj(self, calls: int) -> float:
        """Millijoules per inference call, the window's energy shared equally."""
        if calls <= 0:
            raise ValueError(f"calls must be positive, got {calls}")
        return self.joules * 1000.0 / calls

    def label(self) -> str:
        """Where the figure comes from, so no reader mistakes it for an isolated one."""
        return f"measured: RAPL {' + '.join(self.zones)}, {self.scope} incl. other processes"

    def describe(self, calls: int | None = None) -> str:
        """E.g. ``1.82 mJ per inference, 14.3 W average (measured: RAPL package-0, ...)``."""
        watts = self.watts
        power = f"{_fmt(watts)} W average" if watts is not None else "no elapsed time"
        if calls is None:
            amount = f"{_fmt(self.joules)} J over {_fmt(self.seconds)} s"
        else:
            amount = f"{_fmt(self.per_call_mj(calls))} mJ per inference"
        return f"{amount}, {power} ({self.label()})"

    def as_dict(self, calls: int | None = None) -> dict[str, Any]:
        """JSON-ready, with the provenance spelled out for reports."""
        data: dict[str, Any] = {
            "provenance": "measured",
            "method": "RAPL",
            "zones": list(self.zones),
            "scope": self.scope,
            "includes_other_processes": True,
            "joules": self.joules,
            "seconds": self.seconds,
            "watts": self.watts,
        }
        if calls is not None:
            data["calls"] = calls
            data["mj_per_call"] = self.per_call_mj(calls)
        return data


class EnergyMeter:
    """One measurement window over the summed RAPL counters.

    Absence, refusal and garbage never raise: ``available`` turns False and ``reason``
    says why, so a session without counters keeps its declared power figures.  Each
    read folds one counter wrap per zone into a running total, so for windows longer
    than a wrap period (minutes at full load) call ``sample()`` now and then.
    """

    def __init__(
        self,
        zones: Sequence[EnergyZone],
        *,
        reason: str = "",
        notes: Sequence[str] = (),
        clock: Callable[[], float] = time.perf_counter,
        reader: Reader | None = None,
    ) -> None:
        self.zones = tuple(zones)
        self.reason = reason or ("" if self.zones else "no energy counters: no zones given")
        self.notes = tuple(notes)
        self._clock = clock
        self._reader = reader or _read_text
        self._started_at: float | None = None
        self._last: list[int] = []
        self._total_uj = 0
        kinds = frozenset(zone.kind for zone in self.zones)
        self._scope = _SCOPES.get(kinds, "whole CPU package")

    @classmethod
    def open(
        cls,
        root: Path = POWERCAP_ROOT,
        clock: Callable[[], float] = time.perf_counter,
        reader: Reader | None = None,
        *,
        include_dram: bool = False,
    ) -> EnergyMeter:
        """A meter over the host's counters, or an unavailable one that says why."""
        read = reader or _read_text
        if not root.is_dir():
            return cls((), reason=f"no energy counters: {root} not found", clock=clock)
        try:
            zones, notes = _scan(root, include_dram, read)
            if not zones:
                return cls(
                    (),
                    reason=f"no energy counters: no RAPL package zone (intel-rapl:N) in {root}",
                    clock=clock,
                )
            meter = cls(zones, notes=notes, clock=clock, reader=read)
            meter._read_all()  # probe now: a refusal belongs in the reason, not mid-run
        except EnergyCounterError as exc:
            return cls((), reason=str(exc), clock=clock)
        return meter

    @property
    def available(self) -> bool:
        return not self.reason

    def start(self) -> None:
        """Open the window: remember every counter and the time (no-op when unavailable)."""
        if not self.available:
            return
        try:
            self._last = self._read_all()
        except EnergyCounterError as exc:
            self.reason = str(exc)
            return
        self._total_uj = 0
        self._started_at = self._clock()

    def sample(self) -> EnergyReading | None:
        """Energy since ``start()`` without closing the window; None when unavailable."""
        if not self.available:
            return None
        if self._started_at is None:
            raise RuntimeError("EnergyMeter.sample() called before start()")
        try:
            now = self._read_all()
        except EnergyCounterError as exc:
            self.reason = str(exc)
            return None
        for i, zone in enumerate(self.zones):
            self._total_uj += counter_delta(self._last[i], now[i], zone.max_range_uj)
        self._last = now
        return EnergyReading(
            joules=self._total_uj / 1e6,
            seconds=self._clock() - self._started_at,
            zones=tuple(zone.name for zone in self.zones),
            scope=self._scope,
        )

    def stop(self) -> EnergyReading | None:
        """Close the window and return its energy; None when unavailable."""
        if not self.available:
            return None
        reading = self.sample()
        self._started_at = None
        return reading

    def _read_all(self) -> list[int]:
        values = []
        for zone in self.zones:
            value = _read_uint(self._reader, zone.energy_file)
            if value > zone.max_range_uj:
                raise EnergyCounterError(
                    f"energy counters not usable: {zone.energy_file}: {value} exceeds"
                    f" max_energy_range_uj {zone.max_range_uj}"
                )
            values.append(value)
        return values


def unavailable_note(reason: str) -> str:
    """The report line for a session whose energy is not measured."""
    return (
        f"energy not measured ({reason}); power stays declared"
        " (model and device power_w from the config)"
    )


def judge_power(
    measured_watts: float | None, declared_model_w: float | None, device_w: float | None
) -> tuple[None, str]:
    """Text comparing measured host power with the declared figures; never a verdict.

    The verdict slot is always None, by decision: the measured figure is the *host's*
    CPU package including other processes, not the target device's draw, so it can
    neither fail a device budget (the host may be far hungrier than the device) nor
    pass one (the device may be a different chip).  Device fit keeps judging power
    on the declared figures; this line only puts the measurement beside them.
    """
    declared = []
    if declared_model_w is not None:
        declared.append(f"model declares {declared_model_w:g} W")
    if device_w is not None:
        declared.append(f"device budget {device_w:g} W")
    stated = "; ".join(declared) if declared else "no power declared"
    if measured_watts is None:
        return None, f"power not measured; {stated}"
    text = f"host CPU package averaged {_fmt(measured_watts)} W (measured); {stated}"
    return None, (
        f"{text} (informational: host package power includes other processes and is"
        " not the device's power)"
    )


def host_meter(environ: Mapping[str, str] = os.environ) -> EnergyMeter:
    """The meter over this host's counters (or the root ``DEPLOYCHECK_POWERCAP_ROOT`` names)."""
    root = environ.get(ENV_POWERCAP_ROOT)
    return EnergyMeter.open(Path(root) if root else POWERCAP_ROOT)
