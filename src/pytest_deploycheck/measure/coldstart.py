"""Cold boot: the time from a fresh process to its first inference result.

A service that scales to zero, or a device that boots on demand, pays for importing
the runtime, building the session and the first (slow) inference on every start; an
in-process benchmark never sees any of it.  Each run spawns a new interpreter that
loads the model with the target's settings and runs once (see
:mod:`._coldstart_child`).  The parent's clock runs from just before the process is
spawned to the moment the child's result line arrives, so start-up of the
interpreter counts and the child's teardown does not.  The child reports its own
phases, which explain the total, and its memory when the first result is ready.

Before every run the model file is evicted from the operating system's page cache
(:func:`.pagecache.drop_file_cache`, ``posix_fadvise``, no privileges needed) and its
residency is measured, so each process reads the model from storage as after a boot.
Where that is impossible -- no ``posix_fadvise`` (macOS, Windows), a file system that
keeps files in memory (tmpfs), pages another process maps -- the result's
``cache_note`` says so.  Only the model file is dropped: the interpreter, numpy and the
runtime's libraries stay as warm as the host left them, since dropping the whole cache
needs root.  Run-to-run noise remains, which is why the verdict uses the median and the
minimum and maximum are shown beside it.

This module imports neither numpy nor onnxruntime: only the child does.
"""

from __future__ import annotations

import contextlib
import json
import math
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from . import pagecache
from ._coldstart_child import EXIT_MODEL_ERROR, MARKER
from .cgroups import LimitedGroup
from .children import kill_group, popen_group

if TYPE_CHECKING:
    from .runtime import SessionSettings

CHILD_SCRIPT = Path(__file__).resolve().with_name("_coldstart_child.py")
MARKER_BYTES = MARKER.encode()
EXIT_GRACE_S = 10.0  # how long a child may take to exit after it reported
SCOPE_NOTE = (
    "only the model file is dropped: the interpreter and libraries are as warm as the host"
    " left them"
)
_UNVERIFIED_DISPLAY = "model file cache dropped, not verified"


class ColdStartError(RuntimeError):
    """A cold start that produced no result; the message names the model and why."""


@dataclass(frozen=True)
class ColdStartRun:
    """One fresh process: its total as the parent saw it, the child's phases and memory.

    *rss_mb* is the child's resident set size when its first result was ready and
    *peak_rss_mb* the most it had resident until then (MB of 10**6 bytes; None where the
    OS does not say).  *cache_resident_before* and *cache_resident_after* are the
    fractions of the model file in the page cache before and after the drop, the latter
    being the state the process started with; *cache_dropped* is None when no drop was
    attempted (``drop_cache=False``).
    """

    total_ms: float
    import_ms: float
    session_ms: float
    first_inference_ms: float
    rss_mb: float | None = None
    peak_rss_mb: float | None = None
    cache_resident_before: float | None = None
    cache_resident_after: float | None = None
    cache_dropped: bool | None = None

    @property
    def process_ms(self) -> float:
        """What the phases do not cover: spawning, interpreter start-up, feeds, reporting."""
        return max(0.0, self.total_ms - self.import_ms - self.session_ms - self.first_inference_ms)


@dataclass(frozen=True)
class ColdStartResult:
    """Cold-start times of ``n`` fresh processes; the phases are means over the runs.

    The memory figures are over the runs that reported memory (None when none did);
    *cache_note* says in one line what state the model file's page cache was in.
    """

    runs_ms: tuple[float, ...]
    p50_ms: float
    max_ms: float
    min_ms: float
    import_ms: float
    session_ms: float
    first_inference_ms: float
    process_ms: float
    n: int
    rss_p50_mb: float | None = None
    rss_max_mb: float | None = None
    peak_rss_max_mb: float | None = None
    cache_note: str = ""
    runs: tuple[ColdStartRun, ...] = ()

    @classmethod
    def from_runs(cls, runs: tuple[ColdStartRun, ...], cache_note: str = "") -> ColdStartResult:
        totals = tuple(run.total_ms for run in runs)
        rss = [run.rss_mb for run in runs if run.rss_mb is not None]
        peaks = [run.peak_rss_mb for run in runs if run.peak_rss_mb is not None]
        return cls(
            runs_ms=totals,
            p50_ms=statistics.median(totals),
            max_ms=max(totals),
            min_ms=min(totals),
            import_ms=statistics.fmean(run.import_ms for run in runs),
            session_ms=statistics.fmean(run.session_ms for run in runs),
            first_inference_ms=statistics.fmean(run.first_inference_ms for run in runs),
            process_ms=statistics.fmean(run.process_ms for run in runs),
            n=len(runs),
            rss_p50_mb=statistics.median(rss) if rss else None,
            rss_max_mb=max(rss) if rss else None,
            peak_rss_max_mb=max(peaks) if peaks else None,
            cache_note=cache_note or cache_summary(runs),
            runs=runs,
        )

    def display(self) -> str:
        """``cold start p50 412 ms (n=5; min 398, max 455), 74.1 MB at first result; ...``.

        One line: the time's distribution, the median memory when the first result was
        ready, and how many runs found the model file out of the page cache.
        """
        memory = (
            "memory at first result not measured"
            if self.rss_p50_mb is None
            else f"{self.rss_p50_mb:.1f} MB at first result"
        )
        return (
            f"cold start p50 {self.p50_ms:.0f} ms (n={self.n}; min {self.min_ms:.0f},"
            f" max {self.max_ms:.0f}), {memory}; {cache_display(self.runs)}"
        )

    def notes(self) -> tuple[str, ...]:
        """The summary's note when a run's page cache could not be dropped."""
        if any(run.cache_dropped is False for run in self.runs):
            return (f"cold start: {self.cache_note}",)
        return ()

    def as_extra(self) -> dict[str, Any]:
        """The figures as JSON-serializable data for the evidence files."""
        return {
            "runs_ms": list(self.runs_ms),
            "p50_ms": self.p50_ms,
            "min_ms": self.min_ms,
            "max_ms": self.max_ms,
            "n": self.n,
            "mean_phases_ms": {
                "process": self.process_ms,
                "import": self.import_ms,
                "session": self.session_ms,
                "first_inference": self.first_inference_ms,
            },
            "rss_p50_mb": self.rss_p50_mb,
            "rss_max_mb": self.rss_max_mb,
            "peak_rss_max_mb": self.peak_rss_max_mb,
            "cache_note": self.cache_note,
            "uncached_runs": sum(run.cache_resident_after == 0.0 for run in self.runs),
            "runs": [{**asdict(run), "process_ms": run.process_ms} for run in self.runs],
        }


def cache_display(runs: Sequence[ColdStartRun]) -> str:
    """The page-cache part of the display: ``model file uncached 5/5 runs``."""
    n = len(runs)
    known = [run.cache_resident_after for run in runs if run.cache_resident_after is not None]
    uncached = sum(fraction == 0.0 for fraction in known)
    if any(run.cache_dropped is not None for run in runs):
        return f"model file uncached {uncached}/{n} runs" if known else _UNVERIFIED_DISPLAY
    if not known:
        return "model file cache left as is"
    return f"model file cache left as is (resident {n - uncached}/{n} runs)"


def cache_summary(
    runs: Sequence[ColdStartRun], drops: Sequence[pagecache.CacheDrop] | None = None
) -> str:
    """One line on the model file's page cache over all runs, for ``cache_note``.

    *drops* are the attempts behind the runs (their notes give the reasons for
    failures); without them the line is built from the runs' fractions alone.
    """
    n = len(runs)
    if not any(run.cache_dropped is not None for run in runs):
        known = [run.cache_resident_after for run in runs if run.cache_resident_after is not None]
        state = (
            f"resident at start of {sum(f > 0.0 for f in known)}/{n} runs"
            if known
            else "residency not measured"
        )
        return f"model file page cache left as is (drop_cache=False): {state}"
    parts = []
    uncached = sum(run.cache_dropped is True and run.cache_resident_after == 0.0 for run in runs)
    if uncached:
        parts.append(f"model file not in page cache at start of {uncached}/{n} runs")
    unverified = sum(run.cache_dropped is True and run.cache_resident_after is None for run in runs)
    if unverified:
        parts.append(
            f"model file page cache dropped but not verified before {unverified}/{n} runs"
            " (page residency cannot be measured here)"
        )
    failed = [i for i, run in enumerate(runs) if run.cache_dropped is False]
    if failed:
        reason = (
            drops[failed[0]].note
            if drops is not None and len(drops) == n
            else "model file page cache could not be dropped"
        )
        parts.append(f"{reason} ({len(failed)}/{n} runs)")
    return "; ".join(parts) + f"; {SCOPE_NOTE}"


def measure_cold_start(
    model_path: Path,
    settings: SessionSettings,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
    runs: int = 5,
    timeout_s: float = 60.0,
    *,
    name: str | None = None,
    drop_cache: bool = True,
    group: LimitedGroup | None = None,
) -> ColdStartResult:
    """Start *runs* fresh processes that load *model_path* and run it once; time each.

    *timeout_s* bounds each run.  *name* is the model's configured name, used in
    error messages (the file's stem by default).  With *drop_cache* (the default) the
    model file is evicted from the page cache before every run where the OS allows it;
    either way its residency is recorded per run and summarised in ``cache_note``.
    Raises :class:`ColdStartError` when a child reports a model error, fails, or
    exceeds the timeout.  In a limited *group* every child runs under the target's
    enforced limits, and an OOM kill there is the error.
    """
    _check_arguments(runs, timeout_s)
    model_name = name or Path(model_path).stem
    command = [
        sys.executable,
        str(CHILD_SCRIPT),
        _child_arguments(model_name, model_path, settings, input_shapes),
    ]
    label = f"model {model_name!r} ({model_path})"
    measured: list[ColdStartRun] = []
    drops: list[pagecache.CacheDrop] = []
    for _ in range(runs):
        drop = _prepare_cache(Path(model_path), drop_cache)
        try:
            run = _run_once(command, timeout_s, label, group)
        except ColdStartError:
            if group is not None and group.oom_killed(-9):
                raise ColdStartError(f"{label}: {group.oom_line()}") from None
            raise
        drops.append(drop)
        measured.append(
            replace(
                run,
                cache_resident_before=drop.resident_before,
                cache_resident_after=drop.resident_after,
                cache_dropped=drop.dropped if drop_cache else None,
            )
        )
    done = tuple(measured)
    return ColdStartResult.from_runs(done, cache_summary(done, drops))


def _prepare_cache(model_path: Path, drop_cache: bool) -> pagecache.CacheDrop:
    """Drop the model file's cache (or only measure it); problems become the note.

    A file that cannot be opened is left to the child, whose error names the model.
    """
    try:
        if drop_cache:
            return pagecache.drop_file_cache(model_path)
        resident = pagecache.residency(model_path)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return pagecache.CacheDrop(
            None,
            None,
            dropped=False,
            method=pagecache.NO_METHOD,
            note=f"model file page cache not measured ({reason})",
        )
    return pagecache.CacheDrop(
        resident,
        resident,
        dropped=False,
        method=pagecache.NO_METHOD,
        note="model file page cache left as is",
    )


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


def _run_once(
    command: list[str], timeout_s: float, label: str, group: LimitedGroup | None = None
) -> ColdStartRun:
    """Spawn one child and time it until its result line; always reap the child."""
    with tempfile.TemporaryFile() as stderr:
        lines: queue.Queue[tuple[int, bytes | None]] = queue.Queue()
        started = time.perf_counter_ns()
        # Its own process group: killed whole on the timeout or an interrupt here.
        spawn = group.popen if group is not None else popen_group
        process = spawn(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr)
        assert process.stdout is not None
        reader = threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True)
        reader.start()
        try:
            arrived, line = _wait_for_result(lines, timeout_s, label)
        except BaseException:  # the timeout, Ctrl-C, anything: the group goes too
            kill_group(process)
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


def _reap(process: subprocess.Popen[bytes], reader: threading.Thread) -> None:
    """Wait for the child to exit (killing one that hangs after reporting), then its group."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=EXIT_GRACE_S)
    kill_group(process)
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
        rss_mb=_optional_float(payload.get("rss_mb")),
        peak_rss_mb=_optional_float(payload.get("peak_rss_mb")),
    )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _failure_message(label: str, returncode: int | None, stderr: IO[bytes]) -> str:
    stderr.seek(0)
    text = stderr.read().decode("utf-8", errors="replace")
    last = next((line.strip() for line in reversed(text.splitlines()) if line.strip()), "")
    reason = last or "no error output"
    if returncode == EXIT_MODEL_ERROR:
        return f"{label}: {reason}"
    return f"{label}: cold-start process exited with code {returncode}: {reason}"
