"""Cold start: the time from a fresh process to its first inference result.

A service that scales to zero, or a device that boots on demand, pays for importing
the runtime, building the session and the first (slow) inference on every start; an
in-process benchmark never sees any of it.  Each run spawns a new interpreter that
loads the model with the target's settings and runs once (see
:mod:`._coldstart_child`).  The parent's clock runs from just before the process is
spawned to the moment the child's result line arrives, so start-up of the
interpreter counts and the child's teardown does not.  The child reports its own
phases, which explain the total.

The operating system's file cache is as warm as the host left it; it cannot be
dropped without privileges, so the first run may be slower than the rest -- which is
why the verdict uses the median and the maximum is shown beside it.

This module imports neither numpy nor onnxruntime: only the child does.
"""

from __future__ import annotations

import json
import math
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ._coldstart_child import EXIT_MODEL_ERROR, MARKER

if TYPE_CHECKING:
    from .runtime import SessionSettings

CHILD_SCRIPT = Path(__file__).resolve().with_name("_coldstart_child.py")
MARKER_BYTES = MARKER.encode()
EXIT_GRACE_S = 10.0  # how long a child may take to exit after it reported


class ColdStartError(RuntimeError):
    """A cold start that produced no result; the message names the model and why."""


@dataclass(frozen=True)
class ColdStartRun:
    """One fresh process: its total as the parent saw it, and the child's own phases."""

    total_ms: float
    import_ms: float
    session_ms: float
    first_inference_ms: float

    @property
    def process_ms(self) -> float:
        """What the phases do not cover: spawning, interpreter start-up, feeds, reporting."""
        return max(0.0, self.total_ms - self.import_ms - self.session_ms - self.first_inference_ms)


@dataclass(frozen=True)
class ColdStartResult:
    """Cold-start times of ``n`` fresh processes; the phases are means over the runs."""

    runs_ms: tuple[float, ...]
    p50_ms: float
    max_ms: float
    import_ms: float
    session_ms: float
    first_inference_ms: float
    process_ms: float
    n: int
    runs: tuple[ColdStartRun, ...] = ()

    @classmethod
    def from_runs(cls, runs: tuple[ColdStartRun, ...]) -> ColdStartResult:
        totals = tuple(run.total_ms for run in runs)
        return cls(
            runs_ms=totals,
            p50_ms=statistics.median(totals),
            max_ms=max(totals),
            import_ms=statistics.fmean(run.import_ms for run in runs),
            session_ms=statistics.fmean(run.session_ms for run in runs),
            first_inference_ms=statistics.fmean(run.first_inference_ms for run in runs),
            process_ms=statistics.fmean(run.process_ms for run in runs),
            n=len(runs),
            runs=runs,
        )

    def display(self) -> str:
        """``cold start p50 412 ms, max 455 ms (n=5; process 40, import 180, ...)``."""
        return (
            f"cold start p50 {self.p50_ms:.0f} ms, max {self.max_ms:.0f} ms (n={self.n};"
            f" process {self.process_ms:.0f}, import {self.import_ms:.0f},"
            f" session {self.session_ms:.0f}, first run {self.first_inference_ms:.0f} ms)"
        )

    def as_extra(self) -> dict[str, Any]:
        """The figures as JSON-serializable data for the evidence files."""
        return {
            "runs_ms": list(self.runs_ms),
            "p50_ms": self.p50_ms,
            "max_ms": self.max_ms,
            "n": self.n,
            "mean_phases_ms": {
                "process": self.process_ms,
                "import": self.import_ms,
                "session": self.session_ms,
                "first_inference": self.first_inference_ms,
            },
            "runs": [{**asdict(run), "process_ms": run.process_ms} for run in self.runs],
        }


def measure_cold_start(
    model_path: Path,
    settings: SessionSettings,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
    runs: int = 5,
    timeout_s: float = 60.0,
    *,
    name: str | None = None,
) -> ColdStartResult:
    """Start *runs* fresh processes that load *model_path* and run it once; time each.

    *timeout_s* bounds each run.  *name* is the model's configured name, used in
    error messages (the file's stem by default).  Raises :class:`ColdStartError`
    when a child reports a model error, fails, or exceeds the timeout.
    """
    _check_arguments(runs, timeout_s)
    model_name = name or Path(model_path).stem
    command = [
        sys.executable,
        str(CHILD_SCRIPT),
        _child_arguments(model_name, model_path, settings, input_shapes),
    ]
    label = f"model {model_name!r} ({model_path})"
    measured = tuple(_run_once(command, timeout_s, label) for _ in range(runs))
    return ColdStartResult.from_runs(measured)


def _check_arguments(runs: int, timeout_s: float) -> None:
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise ValueError(f"cold start: runs must be a whole number >= 1, got {runs!r}")
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)):
        raise ValueError(
            f"cold start: timeout_s must be a number of seconds > 0, got {timeout_s!r}"
        )
    if not (timeout_s > 0 and math.isfinite(timeout_s)):
        raise ValueError(
            f"cold start: timeout_s must be a number of seconds > 0, got {timeout_s!r}"
        )


def _child_arguments(
    name: str,
    model_path: Path,
    settings: SessionSettings,
    input_shapes: Mapping[str, tuple[int, ...]] | None,
) -> str:
    return json.dumps(
        {
            "name": name,
            "path": str(Path(model_path).resolve()),
            "settings": asdict(settings),
            "input_shapes": {k: list(v) for k, v in (input_shapes or {}).items()},
        }
    )


def _run_once(command: list[str], timeout_s: float, label: str) -> ColdStartRun:
    """Spawn one child and time it until its result line; always reap the child."""
    with tempfile.TemporaryFile() as stderr:
        lines: queue.Queue[tuple[int, bytes | None]] = queue.Queue()
        started = time.perf_counter_ns()
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr
        )
        assert process.stdout is not None
        reader = threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True)
        reader.start()
        try:
            arrived, line = _wait_for_result(lines, timeout_s, label)
        except ColdStartError:
            _stop(process)
            raise
        finally:
            _reap(process, reader)
        if line is None:
            raise ColdStartError(_failure_message(label, process.returncode, stderr))
    return _parse_result(line, (arrived - started) / 1e6, label)


def _read_lines(stream: IO[bytes], lines: queue.Queue[tuple[int, bytes | None]]) -> None:
    """Timestamp the result line the moment it is read; then drain until end of file."""
    with stream:
        for raw in stream:
            if raw.startswith(MARKER_BYTES):
                lines.put((time.perf_counter_ns(), raw[len(MARKER_BYTES) :]))
    lines.put((time.perf_counter_ns(), None))


def _wait_for_result(
    lines: queue.Queue[tuple[int, bytes | None]], timeout_s: float, label: str
) -> tuple[int, bytes | None]:
    try:
        return lines.get(timeout=timeout_s)
    except queue.Empty:
        raise ColdStartError(
            f"{label}: no cold-start result within {timeout_s:g} s (raise timeout_s if the"
            " model is expected to take longer)"
        ) from None


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()


def _reap(process: subprocess.Popen[bytes], reader: threading.Thread) -> None:
    """Wait for the child to exit (killing one that hangs after reporting)."""
    try:
        process.wait(timeout=EXIT_GRACE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    reader.join(timeout=EXIT_GRACE_S)


def _parse_result(line: bytes, total_ms: float, label: str) -> ColdStartRun:
    try:
        payload = json.loads(line)
    except ValueError:
        raise ColdStartError(f"{label}: unreadable cold-start result: {line[:80]!r}") from None
    if "error" in payload:
        raise ColdStartError(str(payload["error"]))
    return ColdStartRun(
        total_ms=total_ms,
        import_ms=float(payload["import_ms"]),
        session_ms=float(payload["session_ms"]),
        first_inference_ms=float(payload["first_inference_ms"]),
    )


def _failure_message(label: str, returncode: int | None, stderr: IO[bytes]) -> str:
    stderr.seek(0)
    text = stderr.read().decode("utf-8", errors="replace")
    last = next((line.strip() for line in reversed(text.splitlines()) if line.strip()), "")
    reason = last or "no error output"
    if returncode == EXIT_MODEL_ERROR:
        return f"{label}: {reason}"
    return f"{label}: cold-start process exited with code {returncode}: {reason}"
