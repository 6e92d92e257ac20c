"""Peak memory of a workload, measured in a fresh child process.

Measuring inside the pytest process would count every other test's models, pytest's
own state and whatever the allocator kept from earlier work.  Instead the test runs
alone in a child pytest process; the child records its resident set size at four
points and the kernel's high-water mark at the end:

- ``interpreter``: the bare interpreter, before pytest is imported;
- ``harness``: after pytest and its plugins started, before collection (excluded:
  a device runs no test framework);
- ``before_setup``: just before the test's fixtures are set up;
- ``peak``: the process's own peak resident set size (``VmHWM`` on Linux, ``ru_maxrss``
  elsewhere).

The reported footprint is ``interpreter + (peak - harness)``: the interpreter plus
everything the test module, its fixtures and its body loaded and touched -- runtime,
model, arenas, buffers.  The model-attributable part is ``peak - before_setup``.
MB means 10^6 bytes throughout.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import accelerator as accel
from .cgroups import LimitedGroup
from .children import popen_group, run_group

CHILD_ENV = "DEPLOYCHECK_MEMORY_CHILD"
# Started by path, not with -m: -m would import this package (and pytest) before the
# child could read the bare interpreter's footprint.
CHILD_SCRIPT = Path(__file__).with_name("_memory_child.py")
REPEAT_ENV = "DEPLOYCHECK_MEMORY_REPEAT"
MB = 1e6


class MemoryMeasurementError(RuntimeError):
    """The child process could not measure the workload; the message says why."""


class OomKilled(MemoryMeasurementError):
    """The kernel's OOM killer ended the child at the target's limit (a failed check)."""

    def __init__(self, message: str, peak_mb: float | None, enforced: str) -> None:
        super().__init__(message)
        self.peak_mb = peak_mb
        self.enforced = enforced


@dataclass(frozen=True)
class MemoryResult:
    """The memory figures of one workload, in MB (10^6 bytes)."""

    footprint_mb: float
    model_mb: float
    process_peak_mb: float
    interpreter_mb: float
    harness_mb: float
    repeat: int
    cgroup_peak_mb: float | None = None  # the limited group's own peak, where enforced
    enforced: str = ""  # what the group enforced, e.g. "cgroup v1; memory limit 512 MB"
    # GPU memory in use while the child's session was loaded (measure/accelerator.py).
    accelerator: accel.AcceleratorMemory | None = None

    def display(self) -> str:
        text = (
            f"peak {self.footprint_mb:.1f} MB (runtime and model {self.model_mb:.1f} MB;"
            f" {self.repeat} calls in a child process)"
        )
        return text if self.accelerator is None else f"{text}; {self.accelerator.line()}"

    def as_extra(self) -> dict[str, Any]:
        return {
            "footprint_mb": round(self.footprint_mb, 3),
            "model_mb": round(self.model_mb, 3),
            "process_peak_mb": round(self.process_peak_mb, 3),
            "interpreter_mb": round(self.interpreter_mb, 3),
            "harness_mb": round(self.harness_mb, 3),
            "repeat": self.repeat,
            "method": (
                "child process peak RSS (VmHWM; ru_maxrss off Linux) minus test-harness start-up"
            ),
            **(self.accelerator.as_extra() if self.accelerator is not None else {}),
            **self._enforced_extra(),
        }

    def _enforced_extra(self) -> dict[str, Any]:
        """The limited group's own peak beside VmHWM, where the target's limit was enforced."""
        if not self.enforced:
            return {}
        peak = None if self.cgroup_peak_mb is None else round(self.cgroup_peak_mb, 3)
        return {"cgroup_peak_mb": peak, "enforced": self.enforced}


def result_from_probe(probe: Mapping[str, Any], repeat: int) -> MemoryResult:
    """Turn the child's raw byte counts into the reported figures."""
    interpreter = float(probe["interpreter_bytes"])
    harness = float(probe["harness_bytes"])
    before_setup = float(probe.get("before_setup_bytes") or harness)
    peak = max(float(probe["peak_bytes"]), harness)
    return MemoryResult(
        footprint_mb=(interpreter + peak - harness) / MB,
        model_mb=max(peak - before_setup, 0.0) / MB,
        process_peak_mb=peak / MB,
        interpreter_mb=interpreter / MB,
        harness_mb=(harness - interpreter) / MB,
        repeat=repeat,
    )


def measure_in_child(
    nodeid: str,
    pytest_args: Sequence[str],
    *,
    cwd: Path,
    repeat: int,
    timeout_s: float,
    accelerator_gpu: int | None = None,
    group: LimitedGroup | None = None,
) -> MemoryResult:
    """Run the test *nodeid* alone in a fresh pytest process and return its memory.

    The child runs the test body *repeat* times so that arenas and caches reach their
    steady size; *timeout_s* bounds the whole child run (start-up, set-up, the body),
    after which the child's process group is killed.  A failure in the child is raised
    with the child's own reason.  *accelerator_gpu*: the GPU whose memory in use is read
    before the child starts and, in the child, after the body ran.  In a limited
    *group* (the target's memory enforced) the group's peak is reported too, and an OOM
    kill raises :class:`OomKilled`.
    """
    gpu_before = accel.gpu_memory_used_mb(accelerator_gpu) if accelerator_gpu is not None else None
    with tempfile.TemporaryDirectory(prefix="deploycheck-memory-") as tmp:
        out = Path(tmp) / "probe.json"
        env = {**os.environ, CHILD_ENV: str(out), REPEAT_ENV: str(repeat)}
        env.update(accel.child_env(accelerator_gpu))
        command = [sys.executable, str(CHILD_SCRIPT), nodeid, *pytest_args]
        try:
            # Its own process group, killed whole on the timeout or an interrupt here.
            spawn = group.popen if group is not None else popen_group
            completed = run_group(command, cwd=cwd, env=env, timeout_s=timeout_s, spawn=spawn)
        except subprocess.TimeoutExpired:
            raise MemoryMeasurementError(
                f"the child process did not finish within {timeout_s:g} s"
            ) from None
        _raise_if_oom_killed(group, completed.returncode)
        if not out.is_file():
            raise MemoryMeasurementError(_child_failure(completed))
        probe = json.loads(out.read_text(encoding="utf-8"))
    if probe.get("outcome") != "passed":
        reason = probe.get("reason") or _child_failure(completed)
        raise MemoryMeasurementError(f"the test failed in the child process: {reason}")
    gpu = accel.from_readings(accelerator_gpu, gpu_before, probe.get("accelerator_used_mb"))
    result = dataclasses.replace(result_from_probe(probe, repeat), accelerator=gpu)
    return result if group is None else _with_group_peak(result, group)


def _with_group_peak(result: MemoryResult, group: LimitedGroup) -> MemoryResult:
    peak = group.peak_bytes()
    cgroup_peak = None if peak is None else peak / MB
    return dataclasses.replace(result, cgroup_peak_mb=cgroup_peak, enforced=group.describe())


def _raise_if_oom_killed(group: LimitedGroup | None, returncode: int) -> None:
    """An OOM kill in the group is the check's answer, not a broken measurement."""
    if group is None or not group.oom_killed(returncode):
        return
    peak = group.peak_bytes()
    raise OomKilled(group.oom_line(), None if peak is None else peak / MB, group.describe())


def _child_failure(completed: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in (completed.stdout + completed.stderr).splitlines() if line.strip()]
    last = lines[-1] if lines else "no output"
    return f"the child process exited with code {completed.returncode}: {last}"


def child_repeat() -> int | None:
    """In a measuring child: how often to run the body; None in a normal run."""
    if CHILD_ENV not in os.environ:
        return None
    return max(int(os.environ.get(REPEAT_ENV, "1")), 1)


def current_rss_bytes() -> int:
    """Resident set size now; cheap on Linux, psutil elsewhere."""
    statm = Path("/proc/self/statm")
    if statm.is_file():
        resident_pages = int(statm.read_text().split()[1])
        return resident_pages * os.sysconf("SC_PAGE_SIZE")
    import psutil

    return int(psutil.Process().memory_info().rss)


_mallinfo2: Any = None


def heap_in_use_bytes() -> int | None:
    """Bytes the C allocator has handed out and not got back (glibc ``mallinfo2``).

    Resident memory can hide a leak for a while: freed memory stays resident, and a
    leak first fills those holes before the process grows.  The allocator's own count
    of bytes in use grows from the first leaked byte.  It covers malloc (native code,
    numpy buffers, large Python objects), not Python's small-object arenas, which only
    show in the resident set.  None where glibc's ``mallinfo2`` (2.33+) is missing.
    """
    global _mallinfo2
    if _mallinfo2 is None:
        _mallinfo2 = _load_mallinfo2() or False
    if _mallinfo2 is False:
        return None
    info = _mallinfo2()
    return int(info.uordblks + info.hblkhd)


def _load_mallinfo2() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    class MallInfo2(ctypes.Structure):
        _fields_ = [
            (name, ctypes.c_size_t)
            for name in (
                "arena",
                "ordblks",
                "smblks",
                "hblks",
                "hblkhd",
                "usmblks",
                "fsmblks",
                "uordblks",
                "fordblks",
                "keepcost",
            )
        ]

    try:
        function = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):  # musl, older glibc
        return None
    function.restype = MallInfo2
    function.argtypes = []
    return function


def peak_rss_bytes() -> int:
    """The process's own high-water resident set size, as the kernel keeps it.

    On Linux this is ``VmHWM`` from ``/proc/self/status``.  ``getrusage``'s
    ``ru_maxrss`` would be wrong there for a measuring child: exec carries the
    high-water mark of the image it replaced over, and a child spawned with vfork (as
    ``subprocess`` does) replaced its parent's, so a child of a 500 MB pytest process
    reported 490 MB while its own peak was 14 MB.
    """
    hwm = _status_kib(b"VmHWM:")
    if hwm is not None:
        return hwm * 1024
    try:
        import resource
    except ImportError:  # Windows
        import psutil

        info = psutil.Process().memory_info()
        return int(getattr(info, "peak_wset", info.rss))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _status_kib(field: bytes) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (the kernel's kB are KiB); None elsewhere."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(field):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def write_probe(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(dict(data)), encoding="utf-8")
    os.replace(tmp, path)
