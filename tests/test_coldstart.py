"""Cold start measured in fresh processes: structure, phases and readable failures.

Timings are never compared with a bound here: only their presence and shape.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_deploycheck import _coldstart_child, coldstart
from pytest_deploycheck.coldstart import (
    ColdStartError,
    ColdStartResult,
    ColdStartRun,
    measure_cold_start,
)
from pytest_deploycheck.runtime import SessionSettings

MODELS = Path(__file__).parent / "models"
TINY = MODELS / "tiny_linear.onnx"


def test_two_runs_give_two_positive_timings_and_phases() -> None:
    result = measure_cold_start(TINY, SessionSettings(intra_op_threads=1), runs=2)
    assert result.n == 2
    assert len(result.runs_ms) == 2
    assert all(ms > 0 for ms in result.runs_ms)
    assert min(result.runs_ms) <= result.p50_ms <= result.max_ms == max(result.runs_ms)
    for run in result.runs:
        assert run.import_ms > 0 and run.session_ms > 0 and run.first_inference_ms > 0
        assert run.process_ms >= 0
    assert re.fullmatch(
        r"cold start p50 \d+ ms, max \d+ ms \(n=2; process \d+, import \d+,"
        r" session \d+, first run \d+ ms\)",
        result.display(),
    )
    extra = json.loads(json.dumps(result.as_extra()))
    assert extra["n"] == 2
    assert len(extra["runs"]) == 2
    assert set(extra["mean_phases_ms"]) == {"process", "import", "session", "first_inference"}


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
    runs = (
        ColdStartRun(total_ms=400.0, import_ms=180.0, session_ms=120.0, first_inference_ms=9.0),
        ColdStartRun(total_ms=455.0, import_ms=200.0, session_ms=130.0, first_inference_ms=11.0),
        ColdStartRun(total_ms=412.0, import_ms=160.0, session_ms=110.0, first_inference_ms=7.0),
    )
    result = ColdStartResult.from_runs(runs)
    assert result.runs_ms == (400.0, 455.0, 412.0)
    assert (result.p50_ms, result.max_ms, result.n) == (412.0, 455.0, 3)
    assert result.display() == (
        "cold start p50 412 ms, max 455 ms (n=3; process 113, import 180, session 120,"
        " first run 9 ms)"
    )


def test_importing_the_parent_modules_stays_cheap() -> None:
    code = (
        "import sys, pytest_deploycheck.coldstart, pytest_deploycheck.emulation;"
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
    }
    assert lines[-1] == "IMPORTED []"
