"""Cold start measured in fresh processes: structure, phases, memory, the model file's
page cache and readable failures.

Timings are never compared with a bound here: only their presence and shape.  The page
cache tests hold whether or not the file system honours the advice to drop it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from pytest_deploycheck.measure import _coldstart_child, coldstart, pagecache
from pytest_deploycheck.measure.coldstart import (
    ColdStartError,
    ColdStartResult,
    ColdStartRun,
    measure_cold_start,
)
from pytest_deploycheck.measure.runtime import SessionSettings

MODELS = Path(__file__).parent / "models"
TINY = MODELS / "tiny_linear.onnx"


def test_two_runs_give_two_positive_timings_and_phases() -> None:
    result = measure_cold_start(TINY, SessionSettings(intra_op_threads=1), runs=2)
    assert result.n == 2
    assert len(result.runs_ms) == 2
    assert all(ms > 0 for ms in result.runs_ms)
    assert result.min_ms == min(result.runs_ms) <= result.p50_ms
    assert result.p50_ms <= result.max_ms == max(result.runs_ms)
    for run in result.runs:
        assert run.import_ms > 0 and run.session_ms > 0 and run.first_inference_ms > 0
        assert run.process_ms >= 0
    assert re.fullmatch(
        r"cold start p50 \d+ ms \(n=2; min \d+, max \d+\), \d+\.\d MB at first result;"
        r" model file uncached [0-2]/2 runs",
        result.display(),
    )
    extra = json.loads(json.dumps(result.as_extra()))
    assert extra["n"] == 2
    assert len(extra["runs"]) == 2
    assert set(extra["mean_phases_ms"]) == {"process", "import", "session", "first_inference"}
    assert extra["runs_ms"] == list(result.runs_ms)
    assert (extra["p50_ms"], extra["min_ms"], extra["max_ms"]) == (
        result.p50_ms,
        result.min_ms,
        result.max_ms,
    )
    for key in ("rss_p50_mb", "rss_max_mb", "peak_rss_max_mb", "cache_note", "uncached_runs"):
        assert key in extra
    assert set(extra["runs"][0]) >= {
        "total_ms",
        "import_ms",
        "session_ms",
        "first_inference_ms",
        "process_ms",
        "rss_mb",
        "peak_rss_mb",
        "cache_resident_before",
        "cache_resident_after",
        "cache_dropped",
    }


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="memory is read from /proc")
def test_memory_at_the_first_result_is_reported() -> None:
    result = measure_cold_start(TINY, SessionSettings(intra_op_threads=1), runs=2)
    for run in result.runs:
        assert run.rss_mb is not None and run.rss_mb > 0
        assert run.peak_rss_mb is not None and run.peak_rss_mb >= run.rss_mb
    rss = sorted(run.rss_mb for run in result.runs if run.rss_mb is not None)
    assert result.rss_max_mb == rss[-1]
    assert result.rss_p50_mb is not None and rss[0] <= result.rss_p50_mb <= rss[-1]
    assert f"{result.rss_p50_mb:.1f} MB at first result" in result.display()


def test_the_cache_note_tells_what_the_file_system_did(tmp_path: Path) -> None:
    # Whatever the file system does with the advice, the note must match the measurement.
    model = tmp_path / TINY.name
    model.write_bytes(TINY.read_bytes())
    result = measure_cold_start(model, SessionSettings(intra_op_threads=1), runs=2)
    extra = result.as_extra()
    assert extra["cache_note"] == result.cache_note
    assert result.cache_note.endswith(coldstart.SCOPE_NOTE)
    uncached = sum(run.cache_resident_after == 0.0 for run in result.runs)
    assert extra["uncached_runs"] == uncached
    for run in result.runs:
        assert run.cache_dropped is not None
        if run.cache_resident_after is not None:
            assert run.cache_dropped == (run.cache_resident_after == 0.0)
    if uncached:
        assert f"model file not in page cache at start of {uncached}/2 runs" in result.cache_note
    if any(run.cache_dropped is False for run in result.runs):
        assert "could not be dropped" in result.cache_note or "partly" in result.cache_note
        assert result.notes() == (f"cold start: {result.cache_note}",)
    else:
        assert result.notes() == ()
    if all(run.cache_resident_after is not None for run in result.runs):
        assert result.display().endswith(f"; model file uncached {uncached}/2 runs")


def test_without_drop_cache_the_note_says_it_was_left_as_is() -> None:
    result = measure_cold_start(TINY, SessionSettings(), runs=1, drop_cache=False)
    assert result.cache_note.startswith("model file page cache left as is (drop_cache=False): ")
    assert result.runs[0].cache_dropped is None
    assert result.runs[0].cache_resident_before == result.runs[0].cache_resident_after
    assert "model file cache left as is" in result.display()
    assert result.notes() == ()


def test_a_cache_that_cannot_be_dropped_is_stated(monkeypatch: pytest.MonkeyPatch) -> None:
    drop_file_cache = pagecache.drop_file_cache

    def no_fadvise(path: Path) -> pagecache.CacheDrop:
        return drop_file_cache(path, measure=lambda _: 1.0, advise=None)

    monkeypatch.setattr(pagecache, "drop_file_cache", no_fadvise)
    result = measure_cold_start(TINY, SessionSettings(), runs=2)
    assert result.cache_note == (
        "model file page cache could not be dropped (posix_fadvise unavailable on this OS):"
        f" the file may be read from memory (2/2 runs); {coldstart.SCOPE_NOTE}"
    )
    assert result.display().endswith("; model file uncached 0/2 runs")
    assert result.notes() == (f"cold start: {result.cache_note}",)
    assert [run.cache_resident_after for run in result.runs] == [1.0, 1.0]


def test_configured_input_shapes_reach_the_child() -> None:
    shapes = MODELS / "shapes.onnx"
    result = measure_cold_start(shapes, SessionSettings(), {"tokens": (2, 5)}, runs=1)
    assert result.n == 1


def test_a_corrupt_model_is_one_readable_line() -> None:
    with pytest.raises(ColdStartError) as excinfo:
        measure_cold_start(MODELS / "not_a_model.onnx", SessionSettings(), runs=1, name="optimized")
    message = str(excinfo.value)
    assert "\n" not in message
    assert message.startswith("model 'optimized' (")
    assert message.endswith("not_a_model.onnx): not a valid ONNX model: Protobuf parsing failed.")


def test_a_missing_model_is_one_readable_line(tmp_path: Path) -> None:
    with pytest.raises(
        ColdStartError, match=r"^model 'gone' \(.*gone\.onnx\): model file not found$"
    ):
        measure_cold_start(tmp_path / "gone.onnx", SessionSettings(), runs=1)


def test_a_crashing_child_reports_its_last_stderr_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "child.py"
    script.write_text(
        "import sys\nprint('noise', file=sys.stderr)\nsys.exit('boom: out of luck')\n"
    )
    monkeypatch.setattr(coldstart, "CHILD_SCRIPT", script)
    with pytest.raises(ColdStartError) as excinfo:
        measure_cold_start(TINY, SessionSettings(), runs=1, name="optimized")
    assert str(excinfo.value) == (
        f"model 'optimized' ({TINY}): cold-start process exited with code 1: boom: out of luck"
    )


def test_a_child_without_a_result_times_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "child.py"
    script.write_text("import time\ntime.sleep(30)\n")
    monkeypatch.setattr(coldstart, "CHILD_SCRIPT", script)
    with pytest.raises(
        ColdStartError, match=r"no cold-start result within 0\.5 s \(raise timeout_s"
    ):
        measure_cold_start(TINY, SessionSettings(), runs=1, timeout_s=0.5)


@pytest.mark.skipif(os.name != "posix", reason="process groups")
def test_a_timed_out_child_is_killed_with_the_processes_it_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid_file = tmp_path / "grandchild.pid"
    script = tmp_path / "child.py"
    script.write_text(
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(300)\n"
    )
    monkeypatch.setattr(coldstart, "CHILD_SCRIPT", script)
    with pytest.raises(ColdStartError, match="no cold-start result within 5 s"):
        measure_cold_start(TINY, SessionSettings(), runs=1, timeout_s=5)
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 30
    while psutil.pid_exists(grandchild) and time.monotonic() < deadline:
        with contextlib.suppress(psutil.NoSuchProcess):
            if psutil.Process(grandchild).status() == psutil.STATUS_ZOMBIE:
                break
        time.sleep(0.05)
    else:
        assert not psutil.pid_exists(grandchild), "the child's own child outlived it"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"runs": 0}, "runs must be a whole number >= 1"),
        ({"runs": 2.0}, "runs must be a whole number >= 1"),
        ({"timeout_s": 0}, "timeout_s must be a number of seconds > 0"),
        ({"timeout_s": float("nan")}, "timeout_s must be a number of seconds > 0"),
    ],
)
def test_invalid_arguments_are_rejected(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        measure_cold_start(TINY, SessionSettings(), **kwargs)  # type: ignore[arg-type]


def test_result_summarises_runs() -> None:
    uncached = {"cache_resident_before": 1.0, "cache_resident_after": 0.0}
    runs = (
        ColdStartRun(400.0, 180.0, 120.0, 9.0, 74.0, 80.0, **uncached, cache_dropped=True),
        ColdStartRun(455.0, 200.0, 130.0, 11.0, 75.5, 81.0, **uncached, cache_dropped=True),
        ColdStartRun(412.0, 160.0, 110.0, 7.0, 74.1, 79.0, **uncached, cache_dropped=True),
    )
    result = ColdStartResult.from_runs(runs)
    assert result.runs_ms == (400.0, 455.0, 412.0)
    assert (result.p50_ms, result.min_ms, result.max_ms, result.n) == (412.0, 400.0, 455.0, 3)
    assert (result.rss_p50_mb, result.rss_max_mb, result.peak_rss_max_mb) == (74.1, 75.5, 81.0)
    assert result.display() == (
        "cold start p50 412 ms (n=3; min 400, max 455), 74.1 MB at first result;"
        " model file uncached 3/3 runs"
    )
    assert result.cache_note == (
        f"model file not in page cache at start of 3/3 runs; {coldstart.SCOPE_NOTE}"
    )
    assert result.as_extra()["mean_phases_ms"]["process"] == pytest.approx(340 / 3)


def test_runs_without_memory_or_cache_figures_still_summarise() -> None:
    runs = (
        ColdStartRun(total_ms=400.0, import_ms=180.0, session_ms=120.0, first_inference_ms=9.0),
    )
    result = ColdStartResult.from_runs(runs)
    assert result.rss_p50_mb is None and result.rss_max_mb is None
    assert result.display() == (
        "cold start p50 400 ms (n=1; min 400, max 400), memory at first result not measured;"
        " model file cache left as is"
    )
    assert result.cache_note == (
        "model file page cache left as is (drop_cache=False): residency not measured"
    )


@pytest.mark.parametrize(
    ("afters", "dropped", "display", "note"),
    [
        (
            [None, None],
            [True, True],
            "model file cache dropped, not verified",
            "model file page cache dropped but not verified before 2/2 runs"
            " (page residency cannot be measured here)",
        ),
        (
            [0.0, 1.0],
            [True, False],
            "model file uncached 1/2 runs",
            "model file not in page cache at start of 1/2 runs;"
            " model file page cache could not be dropped (1/2 runs)",
        ),
    ],
)
def test_cache_summaries(
    afters: list[float | None], dropped: list[bool], display: str, note: str
) -> None:
    runs = tuple(
        ColdStartRun(300.0, 100.0, 50.0, 1.0, cache_resident_after=a, cache_dropped=d)
        for a, d in zip(afters, dropped, strict=True)
    )
    assert coldstart.cache_display(runs) == display
    assert coldstart.cache_summary(runs) == f"{note}; {coldstart.SCOPE_NOTE}"


def test_importing_the_parent_modules_stays_cheap() -> None:
    code = (
        "import sys, pytest_deploycheck.measure.coldstart, pytest_deploycheck.measure.pinning;"
        " print(sorted(m for m in ('numpy', 'onnxruntime') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_child_imports_neither_pytest_nor_the_package() -> None:
    # run the child's code in a bare interpreter, then look at what it imported
    arguments = json.dumps({"name": "tiny", "path": str(TINY), "settings": {}, "input_shapes": {}})
    code = (
        "import runpy, sys\n"
        f"sys.argv = [{str(coldstart.CHILD_SCRIPT)!r}, {arguments!r}]\n"
        "try:\n"
        f"    runpy.run_path({str(coldstart.CHILD_SCRIPT)!r}, run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "names = ('pytest', 'pytest_deploycheck')\n"
        "print('IMPORTED', sorted(m for m in names if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = out.stdout.splitlines()
    assert lines[0].startswith(_coldstart_child.MARKER)
    assert set(json.loads(lines[0][len(_coldstart_child.MARKER) :])) == {
        "import_ms",
        "session_ms",
        "first_inference_ms",
        "rss_mb",
        "peak_rss_mb",
    }
    assert lines[-1] == "IMPORTED []"
