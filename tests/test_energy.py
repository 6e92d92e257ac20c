"""Measured energy from powercap/RAPL counters, against fake sysfs trees in tmp_path."""

from __future__ import annotations

import errno
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_deploycheck.measure.energy import (
    EnergyCounterError,
    EnergyMeter,
    EnergyReading,
    EnergyZone,
    counter_delta,
    find_zones,
    judge_power,
    unavailable_note,
)

RANGE = 262_143_328_850  # a typical max_energy_range_uj


def zone(
    parent: Path, sysfs_id: str, name: str, energy_uj: int = 0, max_range: int = RANGE
) -> Path:
    """A zone directory laid out like the kernel's: name, energy_uj, range, enabled."""
    path = parent / sysfs_id
    path.mkdir()
    (path / "name").write_text(f"{name}\n")
    (path / "energy_uj").write_text(f"{energy_uj}\n")
    (path / "max_energy_range_uj").write_text(f"{max_range}\n")
    (path / "enabled").write_text("1\n")
    return path


def set_energy(path: Path, energy_uj: int) -> None:
    (path / "energy_uj").write_text(f"{energy_uj}\n")


def clock(*times: float) -> Callable[[], float]:
    """A clock that returns *times* in order, so seconds are exact and nothing sleeps."""
    ticks: Iterator[float] = iter(times)
    return lambda: next(ticks)


def refusing(target: Path, exc: OSError) -> Callable[[Path], str]:
    """A reader that raises *exc* for *target* and reads every other file."""

    def read(path: Path) -> str:
        if path == target:
            raise exc
        return path.read_text()

    return read


@pytest.fixture
def root(tmp_path: Path) -> Path:
    powercap = tmp_path / "powercap"
    powercap.mkdir()
    return powercap


# --- discovery --------------------------------------------------------------------


def test_package_zones_found_subzones_and_other_entries_ignored(root: Path) -> None:
    (root / "intel-rapl").mkdir()  # the control type itself, not a zone
    pkg0 = zone(root, "intel-rapl:0", "package-0")
    zone(root, "intel-rapl:0:0", "core")
    zone(root, "intel-rapl:0:1", "uncore")
    zone(root, "intel-rapl:0:2", "dram")
    pkg1 = zone(root, "intel-rapl:1", "package-1", max_range=65_532_610_987)
    zone(root, "intel-rapl-mmio:0", "package-0")  # the same package again, via MMIO
    zone(root, "dtpm:0", "soc")
    (root / "intel-rapl:7").write_text("not a directory")

    zones = find_zones(root)

    assert [z.name for z in zones] == ["package-0", "package-1"]
    assert [z.path for z in zones] == [pkg0, pkg1]
    assert [z.max_range_uj for z in zones] == [RANGE, 65_532_610_987]
    assert {z.kind for z in zones} == {"package"}


def test_zones_sorted_by_number_not_text(root: Path) -> None:
    for index in (10, 2, 0):
        zone(root, f"intel-rapl:{index}", f"package-{index}")
    assert [z.name for z in find_zones(root)] == ["package-0", "package-2", "package-10"]


def test_multi_die_package_names_count_as_packages(root: Path) -> None:
    zone(root, "intel-rapl:0", "package-0-die-0")
    zone(root, "intel-rapl:1", "package-0-die-1")
    assert [z.name for z in find_zones(root)] == ["package-0-die-0", "package-0-die-1"]


def test_subzones_nested_inside_their_package_are_ignored(root: Path) -> None:
    pkg = zone(root, "intel-rapl:0", "package-0")
    zone(pkg, "intel-rapl:0:0", "core")
    zone(pkg, "intel-rapl:0:1", "dram")
    assert [z.name for z in find_zones(root)] == ["package-0"]


@pytest.mark.parametrize("nested", [False, True])
def test_dram_subzones_added_only_when_asked(root: Path, nested: bool) -> None:
    pkg0 = zone(root, "intel-rapl:0", "package-0")
    pkg1 = zone(root, "intel-rapl:1", "package-1")
    zone(pkg0 if nested else root, "intel-rapl:0:0", "core")
    dram0 = zone(pkg0 if nested else root, "intel-rapl:0:1", "dram")
    dram1 = zone(pkg1 if nested else root, "intel-rapl:1:0", "dram")

    zones = find_zones(root, include_dram=True)

    assert [(z.name, z.kind) for z in zones] == [
        ("package-0", "package"),
        ("package-0/dram", "dram"),
        ("package-1", "package"),
        ("package-1/dram", "dram"),
    ]
    assert [z.path for z in zones if z.kind == "dram"] == [dram0, dram1]
    assert [z.name for z in find_zones(root)] == ["package-0", "package-1"]


def test_psys_is_noted_not_summed_when_packages_exist(root: Path) -> None:
    zone(root, "intel-rapl:0", "package-0", energy_uj=1_000_000)
    psys = zone(root, "intel-rapl:1", "psys", energy_uj=5_000_000)

    assert [z.name for z in find_zones(root)] == ["package-0"]
    meter = EnergyMeter.open(root, clock=clock(0.0, 1.0))
    assert meter.available
    assert len(meter.notes) == 1
    assert "psys" in meter.notes[0]
    assert "intel-rapl:1" in meter.notes[0]
    assert "not summed" in meter.notes[0]

    meter.start()
    set_energy(psys, 9_000_000)
    reading = meter.stop()
    assert reading is not None
    assert reading.joules == 0.0  # the psys counter moved, the package did not


def test_lone_psys_zone_is_used_and_labelled_platform(root: Path) -> None:
    psys = zone(root, "intel-rapl:0", "psys", energy_uj=0)
    meter = EnergyMeter.open(root, clock=clock(0.0, 2.0))
    assert [z.kind for z in meter.zones] == ["psys"]
    assert meter.notes == ()
    meter.start()
    set_energy(psys, 4_000_000)
    reading = meter.stop()
    assert reading is not None
    assert reading.joules == pytest.approx(4.0)
    assert "whole platform (psys)" in reading.describe()


def test_missing_root_is_unavailable_with_reason_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "powercap"
    assert find_zones(missing) == []

    meter = EnergyMeter.open(missing)

    assert not meter.available
    assert meter.reason == f"no energy counters: {missing} not found"
    meter.start()
    assert meter.sample() is None
    assert meter.stop() is None


def test_root_without_rapl_zones_is_unavailable(root: Path) -> None:
    zone(root, "intel-rapl-mmio:0", "package-0")
    zone(root, "intel-rapl:0", "unknown-domain")
    meter = EnergyMeter.open(root)
    assert not meter.available
    assert meter.reason == f"no energy counters: no RAPL package zone (intel-rapl:N) in {root}"


# --- windows ----------------------------------------------------------------------


def test_window_energy_seconds_watts_and_mj_per_call(root: Path) -> None:
    pkg = zone(root, "intel-rapl:0", "package-0", energy_uj=1_000_000)
    meter = EnergyMeter.open(root, clock=clock(100.0, 102.0))
    assert meter.available
    assert meter.reason == ""

    meter.start()
    set_energy(pkg, 3_500_000)
    reading = meter.stop()

    assert reading is not None
    assert reading.joules == pytest.approx(2.5)
    assert reading.seconds == pytest.approx(2.0)
    assert reading.watts == pytest.approx(1.25)
    assert reading.per_call_mj(1000) == pytest.approx(2.5)
    assert reading.zones == ("package-0",)


def test_counter_wraparound_gives_positive_energy(root: Path) -> None:
    pkg = zone(root, "intel-rapl:0", "package-0", energy_uj=999_000, max_range=1_000_000)
    meter = EnergyMeter.open(root, clock=clock(0.0, 1.0))
    meter.start()
    set_energy(pkg, 500)
    reading = meter.stop()
    assert reading is not None
    assert reading.joules == pytest.approx(1500 / 1e6)


def test_two_packages_are_summed_and_listed(root: Path) -> None:
    pkg0 = zone(root, "intel-rapl:0", "package-0", energy_uj=10)
    pkg1 = zone(root, "intel-rapl:1", "package-1", energy_uj=RANGE - 1_000_000)
    meter = EnergyMeter.open(root, clock=clock(0.0, 4.0))
    meter.start()
    set_energy(pkg0, 2_000_010)
    set_energy(pkg1, 1_000_000)  # this one wrapped
    reading = meter.stop()
    assert reading is not None
    assert reading.zones == ("package-0", "package-1")
    assert reading.joules == pytest.approx(4.0)
    assert reading.watts == pytest.approx(1.0)
    assert "RAPL package-0 + package-1" in reading.describe(10)


def test_dram_is_summed_when_asked_and_labelled(root: Path) -> None:
    pkg = zone(root, "intel-rapl:0", "package-0")
    dram = zone(root, "intel-rapl:0:0", "dram")
    meter = EnergyMeter.open(root, clock=clock(0.0, 1.0), include_dram=True)
    meter.start()
    set_energy(pkg, 3_000_000)
    set_energy(dram, 1_000_000)
    reading = meter.stop()
    assert reading is not None
    assert reading.joules == pytest.approx(4.0)
    assert reading.zones == ("package-0", "package-0/dram")
    assert "whole CPU package and DRAM incl. other processes" in reading.describe()


def test_sample_mid_window_then_stop(root: Path) -> None:
    pkg = zone(root, "intel-rapl:0", "package-0", energy_uj=0)
    meter = EnergyMeter.open(root, clock=clock(10.0, 11.0, 13.0))
    meter.start()
    set_energy(pkg, 1_000_000)

    mid = meter.sample()
    assert mid is not None
    assert (mid.joules, mid.seconds) == pytest.approx((1.0, 1.0))

    set_energy(pkg, 3_000_000)
    end = meter.stop()
    assert end is not None
    assert (end.joules, end.seconds) == pytest.approx((3.0, 3.0))


def test_samples_carry_a_long_window_across_several_wraps(root: Path) -> None:
    pkg = zone(root, "intel-rapl:0", "package-0", energy_uj=0, max_range=1_000_000)
    meter = EnergyMeter.open(root, clock=clock(*range(5)))
    meter.start()
    for value in (800_000, 600_000, 400_000):  # each step is +800_000 with a wrap
        set_energy(pkg, value)
        assert meter.sample() is not None
    set_energy(pkg, 200_000)
    reading = meter.stop()
    assert reading is not None
    assert reading.joules == pytest.approx(4 * 0.8)


def test_meter_can_be_restarted_for_a_new_window(root: Path) -> None:
    pkg = zone(root, "intel-rapl:0", "package-0", energy_uj=0)
    meter = EnergyMeter.open(root, clock=clock(0.0, 1.0, 5.0, 7.0))
    meter.start()
    set_energy(pkg, 1_000_000)
    assert meter.stop() is not None
    meter.start()
    set_energy(pkg, 1_500_000)
    second = meter.stop()
    assert second is not None
    assert (second.joules, second.seconds) == pytest.approx((0.5, 2.0))


def test_sample_or_stop_before_start_is_a_programming_error(root: Path) -> None:
    zone(root, "intel-rapl:0", "package-0")
    meter = EnergyMeter.open(root)
    with pytest.raises(RuntimeError, match="before start"):
        meter.sample()
    with pytest.raises(RuntimeError, match="before start"):
        meter.stop()


# --- refusals and garbage -----------------------------------------------------------


def test_unreadable_energy_counter_is_unavailable_with_clear_reason(root: Path) -> None:
    pkg = zone(root, "intel-rapl:0", "package-0")
    energy_file = pkg / "energy_uj"
    reader = refusing(energy_file, PermissionError(errno.EACCES, "Permission denied"))

    meter = EnergyMeter.open(root, reader=reader)

    assert not meter.available
    assert meter.reason.startswith(f"energy counters not readable: {energy_file}: ")
    assert "permission denied" in meter.reason
    assert "root" in meter.reason
    assert "CVE-2020-8694" in meter.reason
    meter.start()
    assert meter.sample() is None
    assert meter.stop() is None


def test_other_read_errors_name_the_file_and_the_error(root: Path) -> None:
    pkg = zone(root, "intel-rapl:0", "package-0")
    energy_file = pkg / "energy_uj"
    reader = refusing(energy_file, OSError(errno.ENODATA, "No data available"))
    meter = EnergyMeter.open(root, reader=reader)
    assert meter.reason == f"energy counters not readable: {energy_file}: No data available"


@pytest.mark.parametrize("content", ["n/a\n", "", "-5\n", "12.5\n", "x" * 100])
def test_garbage_counter_gives_reason_not_crash(root: Path, content: str) -> None:
    pkg = zone(root, "intel-rapl:0", "package-0")
    (pkg / "energy_uj").write_text(content)
    meter = EnergyMeter.open(root)
    assert not meter.available
    assert meter.reason.startswith(f"energy counters not usable: {pkg / 'energy_uj'}: ")
    assert "expected a whole number" in meter.reason
    assert len(meter.reason) < len(str(pkg)) + 130  # long garbage is cut short


@pytest.mark.parametrize("content", ["garbage", "0"])
def test_bad_range_gives_reason_and_find_zones_raises(root: Path, content: str) -> None:
    pkg = zone(root, "intel-rapl:0", "package-0")
    (pkg / "max_energy_range_uj").write_text(content)
    meter = EnergyMeter.open(root)
    assert not meter.available
    assert str(pkg / "max_energy_range_uj") in meter.reason
    with pytest.raises(EnergyCounterError, match="max_energy_range_uj"):
        find_zones(root)


def test_counter_above_its_range_is_refused(root: Path) -> None:
    zone(root, "intel-rapl:0", "package-0", energy_uj=2_000, max_range=1_000)
    meter = EnergyMeter.open(root)
    assert not meter.available
    assert "exceeds max_energy_range_uj 1000" in meter.reason


def test_counter_lost_mid_window_ends_measurement_without_raising(root: Path) -> None:
    pkg = zone(root, "intel-rapl:0", "package-0")
    meter = EnergyMeter.open(root, clock=clock(0.0, 1.0))
    meter.start()
    (pkg / "energy_uj").unlink()
    assert meter.stop() is None
    assert not meter.available
    assert str(pkg / "energy_uj") in meter.reason


def test_unreadable_zone_name_gives_reason(root: Path) -> None:
    pkg = zone(root, "intel-rapl:0", "package-0")
    reader = refusing(pkg / "name", PermissionError(errno.EACCES, "Permission denied"))
    meter = EnergyMeter.open(root, reader=reader)
    assert not meter.available
    assert str(pkg / "name") in meter.reason


# --- wording ----------------------------------------------------------------------


def test_describe_says_measured_rapl_and_what_it_covers() -> None:
    reading = EnergyReading(joules=2.5, seconds=2.0, zones=("package-0",))
    assert reading.describe(1000) == (
        "2.50 mJ per inference, 1.25 W average"
        " (measured: RAPL package-0, whole CPU package incl. other processes)"
    )
    assert reading.describe() == (
        "2.50 J over 2.00 s, 1.25 W average"
        " (measured: RAPL package-0, whole CPU package incl. other processes)"
    )
    text = EnergyReading(joules=28.6, seconds=2.0, zones=("package-0",)).describe(15714)
    assert text.startswith("1.82 mJ per inference, 14.3 W average (measured: RAPL")


def test_zero_length_window_has_no_watts() -> None:
    reading = EnergyReading(joules=0.0, seconds=0.0, zones=("package-0",))
    assert reading.watts is None
    assert "no elapsed time" in reading.describe(1)
    assert reading.as_dict()["watts"] is None


def test_per_call_needs_a_positive_count() -> None:
    reading = EnergyReading(joules=1.0, seconds=1.0, zones=("package-0",))
    with pytest.raises(ValueError, match="positive"):
        reading.per_call_mj(0)


def test_as_dict_is_json_ready_and_labelled_measured() -> None:
    reading = EnergyReading(joules=2.5, seconds=2.0, zones=("package-0", "package-1"))
    data = json.loads(json.dumps(reading.as_dict(calls=1000)))
    assert data["provenance"] == "measured"
    assert data["method"] == "RAPL"
    assert data["zones"] == ["package-0", "package-1"]
    assert data["includes_other_processes"] is True
    assert data["watts"] == pytest.approx(1.25)
    assert data["mj_per_call"] == pytest.approx(2.5)
    assert "calls" not in reading.as_dict()


def test_unavailable_note_keeps_power_declared() -> None:
    note = unavailable_note("no energy counters: /sys/class/powercap not found")
    assert "no energy counters: /sys/class/powercap not found" in note
    assert "not measured" in note
    assert "declared" in note


@pytest.mark.parametrize(
    ("measured", "model", "device", "expected"),
    [
        (None, 4.0, 6.0, "power not measured; model declares 4 W; device budget 6 W"),
        (None, None, None, "power not measured; no power declared"),
        (14.3, None, 6.0, "host CPU package averaged 14.3 W (measured); device budget 6 W"),
        (3.0, 4.0, None, "host CPU package averaged 3.00 W (measured); model declares 4 W"),
    ],
)
def test_judge_power_is_informational_never_a_verdict(
    measured: float | None, model: float | None, device: float | None, expected: str
) -> None:
    verdict, text = judge_power(measured, model, device)
    assert verdict is None
    assert text.startswith(expected)
    if measured is not None:
        assert "informational" in text
        assert "not the device's power" in text


# --- properties -------------------------------------------------------------------


@st.composite
def counter_steps(draw: st.DrawFn) -> tuple[int, int, int]:
    max_range = draw(st.integers(min_value=1, max_value=2**64))
    start = draw(st.integers(min_value=0, max_value=max_range - 1))
    increment = draw(st.integers(min_value=0, max_value=max_range - 1))
    return max_range, start, increment


@given(counter_steps())
def test_wraparound_corrected_energy_equals_the_increment(step: tuple[int, int, int]) -> None:
    max_range, start, increment = step
    end = (start + increment) % max_range
    assert counter_delta(start, end, max_range) == increment

    path = Path("/fake/intel-rapl:0")
    values = iter([start, end])  # read at start, read at stop
    meter = EnergyMeter(
        [EnergyZone("package-0", path, max_range)],
        clock=clock(0.0, 1.0),
        reader=lambda _path: f"{next(values)}\n",
    )
    meter.start()
    reading = meter.stop()
    assert reading is not None
    assert reading.joules == increment / 1e6
