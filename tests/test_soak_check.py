"""The soak marker's check: defaults, the run's cap, energy, and the evidence it carries."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_deploycheck.checks.soak import SoakCap, soak_check, soak_policy
from pytest_deploycheck.config.evidence_names import timeseries_file_name
from pytest_deploycheck.config.schema import Budgets, Device
from pytest_deploycheck.markers import SOAK, parse_budget_marker
from pytest_deploycheck.report.evidence import TIMESERIES_COLUMNS

SHORT = 0.01  # minutes: 0.6 s of real soaking


def request(*args: object, budgets: Budgets | None = None, **kwargs: object):  # type: ignore[no-untyped-def]
    return parse_budget_marker(SOAK, args, kwargs, budgets or Budgets())


def test_a_soak_without_minutes_runs_the_checklists_30_minutes() -> None:
    policy = soak_policy(request(), Budgets(), SoakCap())
    assert policy.duration_s == 30 * 60
    assert policy.growth_mb_per_h == 10
    assert policy.max_error_rate == 0
    assert policy.max_drift_pct is None


def test_marker_options_beat_the_config_which_beats_the_defaults() -> None:
    budgets = Budgets(
        soak_minutes=5,
        soak_growth_mb_per_hour=20,
        soak_error_rate=0.01,
        soak_latency_drift_pct=40,
    )
    from_config = soak_policy(request(budgets=budgets), budgets, SoakCap())
    assert (from_config.duration_s, from_config.growth_mb_per_h) == (300, 20)
    assert (from_config.max_error_rate, from_config.max_drift_pct) == (0.01, 40)
    marked = request(
        2, growth_mb_per_hour=3, max_error_rate=0, max_latency_drift_pct=25, budgets=budgets
    )
    policy = soak_policy(marked, budgets, SoakCap())
    assert (policy.duration_s, policy.growth_mb_per_h) == (120, 3)
    assert (policy.max_error_rate, policy.max_drift_pct) == (0, 25)


def test_minutes_may_be_written_with_a_unit() -> None:
    assert request("90s").budget == pytest.approx(1.5)
    assert request("2 h").budget == pytest.approx(120)


def test_the_cap_shortens_only_longer_soaks() -> None:
    cap = SoakCap(0.5, "--deploy-soak-minutes=0.5")
    long = soak_policy(request(30), Budgets(), cap)
    short = soak_policy(request(0.25), Budgets(), cap)
    assert (long.duration_s, long.configured_s, long.shortened) == (30, 1800, True)
    assert (short.duration_s, short.shortened) == (15, False)


def test_a_capped_soak_carries_a_caveat_naming_the_cap() -> None:
    check = soak_check(
        request(30),
        lambda: None,
        budgets=Budgets(),
        device=None,
        cap=SoakCap(SHORT, "--deploy-soak-minutes=0.01"),
    )
    assert check.name == "soak_30min"
    [caveat] = check.caveats
    assert caveat.startswith("soak_30min ran ")
    assert "of the 30 min its marker asks for (--deploy-soak-minutes=0.01)" in caveat
    assert check.extra["shortened_by"] == "--deploy-soak-minutes=0.01"
    assert check.extra["configured_minutes"] == 30
    assert check.extra["minutes_run"] < 1
    assert "of 30 min" in check.display


def test_a_full_soak_has_no_caveat_and_carries_its_time_series() -> None:
    check = soak_check(request(SHORT), lambda: None, budgets=Budgets(), device=None)
    assert check.caveats == ()
    assert check.extra["timeseries_columns"] == list(TIMESERIES_COLUMNS)
    rows = check.extra["timeseries"]
    assert rows  # how many depends on the machine's speed; what they hold does not
    warmup_s = check.extra["warmup_s"]
    assert all(row[1] == ("warmup" if row[0] < warmup_s else "judged") for row in rows)
    assert sum(row[3] for row in rows) == check.extra["calls"]
    assert check.unit == "MB/h" and check.budget == 10
    assert check.provenance == "measured"


def test_energy_is_noted_as_not_measured_without_counters(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DEPLOYCHECK_POWERCAP_ROOT", str(tmp_path / "absent"))
    check = soak_check(request(SHORT), lambda: None, budgets=Budgets(), device=None)
    assert check.extra["energy"] is None
    assert any(
        "energy not measured" in note and "absent" in note and "power stays declared" in note
        for note in check.notes
    )


def test_energy_per_inference_is_measured_from_rapl_counters(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A fake powercap tree whose package counter advances 1000 uJ on every read.
    zone = tmp_path / "powercap" / "intel-rapl:0"
    zone.mkdir(parents=True)
    (zone / "name").write_text("package-0\n")
    (zone / "max_energy_range_uj").write_text("262143328850\n")
    (zone / "energy_uj").write_text("5000\n")
    from pytest_deploycheck.measure import energy

    original = energy._read_text
    readings = iter(range(5000, 10**9, 1000))

    def advancing(path: Path) -> str:
        if path.name == "energy_uj":
            return f"{next(readings)}\n"
        return original(path)

    monkeypatch.setattr(energy, "_read_text", advancing)
    monkeypatch.setenv("DEPLOYCHECK_POWERCAP_ROOT", str(tmp_path / "powercap"))
    device = Device(name="edge", power_w=8)
    check = soak_check(request(SHORT), lambda: None, budgets=Budgets(), device=device)
    measured = check.extra["energy"]
    assert measured is not None
    assert measured["provenance"] == "measured"
    assert measured["joules"] > 0
    assert measured["calls"] == check.extra["calls"]
    assert "RAPL" in check.display and "measured" in check.display
    assert any("informational" in note for note in check.notes)


def test_timeseries_file_names_are_safe_and_readable() -> None:
    name = timeseries_file_name("tests/test_ops.py::test_shift[edge c/1]", "soak_30min")
    assert name == "soak_test_shift_edge_c_1_soak_30min.csv"
    assert timeseries_file_name("", "soak_1min") == "soak_session_soak_1min.csv"
