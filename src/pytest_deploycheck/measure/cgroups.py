"""The target's memory and cores enforced on the host with Linux cgroups.

Pinning and comparing a measured peak with ``memory_mb`` cannot show what the
device's kernel would do at its limit: a workload that it would OOM-kill at 512 MB
passes.  Here the measuring children run in a cgroup whose memory limit is the
target's, with swap off, and whose cpuset is the target's cores, so the kernel
enforces both.

Two layouts are supported, each found from ``/proc/self/cgroup``:

- **v2** (unified): a child group of this process's own cgroup, which must be
  writable (a delegated subtree, or root) with ``memory`` in its
  ``cgroup.subtree_control`` (``cpuset`` too, for the cores);
- **v1**: a child group of this process's group in the ``memory`` hierarchy (and in
  the ``cpuset`` one, for the cores), e.g. ``memory/<current>/deploycheck-<pid>-<n>``.

Every path goes through *root*, so tests run this logic against a fake tree.

A child is put in the group before it runs any of the workload: it is started as
``sh -c 'read _ <&3; exec "$@"'``, which waits on a pipe; the parent writes the
child's pid into the group and only then lets it ``exec`` the workload.  A
``preexec_fn`` would do the write between fork and exec in Python, which is unsafe
in a parent with threads (the runtime's pools, the watchdog): it can deadlock.  The
shell is tiny and charged before the move, so the group's figures are the workload's.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .children import popen_group

ROOT = Path("/sys/fs/cgroup")
# Moves the cgroup mount the probe looks at: a test's fake tree, or a missing path to
# see a run where the host allows no cgroups.
ROOT_ENV = "DEPLOYCHECK_CGROUP_ROOT"
PROC_SELF_CGROUP = Path("/proc/self/cgroup")
MEMINFO = Path("/proc/meminfo")
MB = 1e6
CFS_PERIOD_US = 100_000
REMOVE_WAIT_S = 2.0  # for the killed leftovers of a group to leave it
# Waits on the pipe until the parent has put it in the group, then becomes the workload.
# By path, not "<&N": dash takes single-digit descriptors only.
GATE = 'read _ < /dev/fd/{fd}; exec "$@"'
_counter = itertools.count()


@dataclass(frozen=True)
class Unsupported:
    """Why the limits cannot be enforced on this host (one line)."""

    reason: str


@dataclass(frozen=True)
class CgroupSupport:
    """Where limited groups can be made: the parent directory of each controller.

    ``memory`` is the parent for the memory limit; ``cpuset`` and ``cpu`` are None
    where that controller cannot be used (v2: the same directory as ``memory``).
    """

    version: int
    memory: Path
    cpuset: Path | None = None
    cpu: Path | None = None
    meminfo: Path = MEMINFO

    def describe(self) -> str:
        return f"cgroup v{self.version} under {self.memory}"


@dataclass(frozen=True)
class TargetLimits:
    """What the group enforces: memory in MB (10^6 bytes), cores, a CPU share.

    ``cpu_quota`` is the number of CPUs' worth of time per period (``cpu.max``);
    None leaves the CPU time unthrottled.
    """

    memory_mb: float | None
    cpus: list[int] | None = None
    cpu_quota: float | None = None


def probe(
    root: Path | None = None,
    proc_self_cgroup: Path = PROC_SELF_CGROUP,
    *,
    platform: str = sys.platform,
) -> CgroupSupport | Unsupported:
    """Whether this process may make limited groups, and where; else why not.

    *root* is the cgroup mount (``$DEPLOYCHECK_CGROUP_ROOT``, else /sys/fs/cgroup).
    """
    root = root or Path(os.environ.get(ROOT_ENV) or ROOT)
    if not platform.startswith("linux"):
        return Unsupported(f"cgroups are Linux-only; this host is {platform}")
    try:
        lines = proc_self_cgroup.read_text(encoding="ascii").splitlines()
    except OSError as exc:
        return Unsupported(f"cannot read {proc_self_cgroup} ({exc.strerror})")
    paths = _controller_paths(lines)
    if (root / "cgroup.controllers").is_file() and "" in paths:
        return _probe_v2(root, paths[""])
    if "memory" in paths:
        return _probe_v1(root, paths)
    return Unsupported(f"no cgroup memory controller in {proc_self_cgroup}")


def _controller_paths(lines: Sequence[str]) -> dict[str, str]:
    """``{controller: path}`` from /proc/self/cgroup; the v2 line under ``""``."""
    paths: dict[str, str] = {}
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3:
            for name in parts[1].split(","):
                paths[name] = parts[2]
    return paths


def _under(mount: Path, path: str) -> Path:
    return mount / path.lstrip("/") if path.strip("/") else mount


def _probe_v2(root: Path, path: str) -> CgroupSupport | Unsupported:
    own = _under(root, path)
    control = own / "cgroup.subtree_control"
    try:
        enabled = control.read_text(encoding="ascii").split()
    except OSError as exc:
        return Unsupported(f"cgroup v2: cannot read {control} ({exc.strerror})")
    if "memory" not in enabled:
        return Unsupported(f"cgroup v2: the memory controller is not enabled in {control}")
    if not _writable(own):
        return Unsupported(f"cgroup v2: {own} is not writable (not root, no delegated subtree)")
    cpuset = own if "cpuset" in enabled else None
    return CgroupSupport(2, own, cpuset=cpuset, cpu=own if "cpu" in enabled else None)


def _probe_v1(root: Path, paths: dict[str, str]) -> CgroupSupport | Unsupported:
    memory = _under(root / "memory", paths["memory"])
    if not (memory / "memory.limit_in_bytes").is_file():
        return Unsupported(f"cgroup v1: no memory.limit_in_bytes in {memory}")
    if not _writable(memory):
        return Unsupported(f"cgroup v1: {memory} is not writable (needs root)")
    found: dict[str, Path | None] = {"cpuset": None, "cpu": None}
    for name, marker in (("cpuset", "cpuset.cpus"), ("cpu", "cpu.cfs_quota_us")):
        if name in paths:
            parent = _under(root / name, paths[name])
            found[name] = parent if (parent / marker).is_file() and _writable(parent) else None
    return CgroupSupport(1, memory, cpuset=found["cpuset"], cpu=found["cpu"])


def _writable(path: Path) -> bool:
    return path.is_dir() and os.access(path, os.W_OK | os.X_OK)


def _kernel_rmdir(directory: Path) -> None:
    """Kill what is left in the group, wait (bounded) until it has left, remove it."""
    _empty(directory)
    os.rmdir(directory)


@dataclass(frozen=True)
class CgroupFs:
    """How groups are made and removed; the kernel's way unless a test fakes it."""

    mkdir: Callable[[Path], None] = os.mkdir
    rmdir: Callable[[Path], None] = _kernel_rmdir


KERNEL = CgroupFs()


class GroupError(RuntimeError):
    """A limited group could not be made or used; the message says which file."""


@dataclass
class LimitedGroup:
    """One limited group (a directory per v1 hierarchy); a context manager that removes it."""

    support: CgroupSupport
    limits: TargetLimits
    dirs: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fs: CgroupFs = KERNEL

    @property
    def memory_dir(self) -> Path:
        return self.dirs[0]

    def __enter__(self) -> LimitedGroup:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()

    def add_pid(self, pid: int) -> None:
        """Move process *pid* into the group, in every hierarchy it has."""
        for directory in self.dirs:
            _write(directory / "cgroup.procs", str(pid))

    def popen(self, command: Sequence[str], **options: Any) -> subprocess.Popen[Any]:
        """``popen_group(command)``, with the child in this group before it execs."""
        read_end, write_end = os.pipe()
        try:
            options["pass_fds"] = (*options.get("pass_fds", ()), read_end)
            gate = ["/bin/sh", "-c", GATE.format(fd=read_end), "deploycheck-gate"]
            process = popen_group([*gate, *command], **options)
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        try:
            self.add_pid(process.pid)
            os.write(write_end, b"go\n")
        except BaseException:
            _kill(process)
            raise
        finally:
            os.close(write_end)
        return process

    def peak_bytes(self) -> int | None:
        """The group's own high-water memory (v2 ``memory.peak``, v1 ``max_usage_in_bytes``)."""
        name = "memory.peak" if self.support.version == 2 else "memory.max_usage_in_bytes"
        return _read_int(self.memory_dir / name)

    def oom_killed(self, returncode: int | None = None) -> bool:
        """Whether the kernel's OOM killer killed a process of the group.

        v2 counts ``oom_kill`` in ``memory.events``; v1 in ``memory.oom_control``
        (kernel 4.13+).  Where v1 lacks the counter, a child killed by SIGKILL while
        ``memory.failcnt`` shows the limit was hit counts as an OOM kill.
        """
        name = "memory.events" if self.support.version == 2 else "memory.oom_control"
        counters = _read_counters(self.memory_dir / name)
        if "oom_kill" in counters:
            return counters["oom_kill"] > 0
        failed = _read_int(self.memory_dir / "memory.failcnt") or 0
        return failed > 0 and returncode == -signal.SIGKILL

    def oom_line(self) -> str:
        """The failure of a child the OOM killer ended, with the group's peak."""
        peak = self.peak_bytes()
        before = f" (peak before the kill {peak / MB:.0f} MB)" if peak is not None else ""
        return (
            f"killed by the OOM killer at the target's {self.limits.memory_mb:g} MB limit{before}"
        )

    def describe(self) -> str:
        """What the group enforces, for the evidence: version, limit, swap, cores."""
        parts = [f"cgroup v{self.support.version}"]
        if self.limits.memory_mb is not None:
            swap = "" if any(n.startswith("swap") for n in self.notes) else ", swap off"
            parts.append(f"memory limit {self.limits.memory_mb:g} MB{swap}")
        if self.limits.cpus and self.support.cpuset is not None:
            parts.append("cpuset " + ",".join(str(cpu) for cpu in self.limits.cpus))
        return "; ".join(parts)

    def remove(self) -> None:
        """Kill what is left in the group, then remove it; safe to call twice."""
        for directory in reversed(self.dirs):
            if directory.is_dir():
                with contextlib.suppress(FileNotFoundError):
                    self.fs.rmdir(directory)
        self.dirs.clear()


@contextlib.contextmanager
def create_limited_group(
    support: CgroupSupport, limits: TargetLimits, *, fs: CgroupFs = KERNEL
) -> Iterator[LimitedGroup]:
    """A new group with *limits* applied, removed when the block ends (exceptions too)."""
    group = LimitedGroup(support, limits, fs=fs)
    try:
        _make(group)
        yield group
    finally:
        group.remove()


def _make(group: LimitedGroup) -> None:
    support, limits = group.support, group.limits
    name = f"deploycheck-{os.getpid()}-{next(_counter)}"
    group.dirs.append(_mkdir(group.fs, support.memory / name))
    if limits.memory_mb is not None:
        _limit_memory(group, int(limits.memory_mb * MB))
    if limits.cpus:
        _limit_cpus(group, name, limits.cpus)
    if limits.cpu_quota is not None:
        _limit_quota(group, name, limits.cpu_quota)


def _mkdir(fs: CgroupFs, path: Path) -> Path:
    try:
        fs.mkdir(path)
    except OSError as exc:
        raise GroupError(f"cannot create cgroup {path} ({exc.strerror})") from None
    return path


def _limit_memory(group: LimitedGroup, limit: int) -> None:
    parent, own = group.support.memory, group.memory_dir
    if group.support.version == 2:
        _write(own / "memory.max", str(limit))
        if (parent / "memory.swap.max").is_file():
            _write(own / "memory.swap.max", "0")
        elif _host_swap(group.support.meminfo):
            group.notes.append("swap could not be limited (no memory.swap.max)")
        return
    _write(own / "memory.limit_in_bytes", str(limit))
    if (parent / "memory.memsw.limit_in_bytes").is_file():  # memory plus swap: no swap
        _write(own / "memory.memsw.limit_in_bytes", str(limit))
    elif _host_swap(group.support.meminfo):
        group.notes.append(
            "swap could not be limited (no memory.memsw.limit_in_bytes: swapaccount is off)"
        )


def _host_swap(meminfo: Path) -> bool:
    with contextlib.suppress(OSError, ValueError):
        for line in meminfo.read_text(encoding="ascii").splitlines():
            if line.startswith("SwapTotal:"):
                return int(line.split()[1]) > 0
    return False


def _limit_cpus(group: LimitedGroup, name: str, cpus: list[int]) -> None:
    parent = group.support.cpuset
    text = ",".join(str(cpu) for cpu in sorted(cpus))
    if parent is None:
        group.notes.append("no usable cpuset controller: the cores are pinned by affinity only")
        return
    if group.support.version == 2:
        _write(group.memory_dir / "cpuset.cpus", text)
        return
    own = _mkdir(group.fs, parent / name)
    group.dirs.append(own)
    # A v1 cpuset takes no task until it has memory nodes: the parent's, as they are.
    _write(own / "cpuset.mems", _read_text(parent / "cpuset.mems"))
    _write(own / "cpuset.cpus", text)


def _limit_quota(group: LimitedGroup, name: str, quota: float) -> None:
    parent = group.support.cpu
    microseconds = max(int(quota * CFS_PERIOD_US), 1000)
    if parent is None:
        group.notes.append("no usable cpu controller: the CPU time is not throttled")
        return
    if group.support.version == 2:
        _write(group.memory_dir / "cpu.max", f"{microseconds} {CFS_PERIOD_US}")
        return
    own = _mkdir(group.fs, parent / name)
    group.dirs.append(own)
    _write(own / "cpu.cfs_period_us", str(CFS_PERIOD_US))
    _write(own / "cpu.cfs_quota_us", str(microseconds))


def _write(path: Path, text: str) -> None:
    try:
        with open(path, "w", encoding="ascii") as handle:
            handle.write(text)
    except OSError as exc:
        raise GroupError(f"cannot write {text!r} to {path} ({exc.strerror})") from None


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii").strip()
    except OSError as exc:
        raise GroupError(f"cannot read {path} ({exc.strerror})") from None


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _read_counters(path: Path) -> dict[str, int]:
    """``name value`` lines (memory.events, memory.oom_control) as a dict."""
    counters: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in path.read_text(encoding="ascii").splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                counters[parts[0]] = int(parts[1])
    return counters


def _pids(directory: Path) -> list[int]:
    with contextlib.suppress(OSError):
        text = (directory / "cgroup.procs").read_text(encoding="ascii")
        return [int(word) for word in text.split() if word.isdigit()]
    return []


def _empty(directory: Path) -> None:
    """SIGKILL what is left in the group and wait (bounded) until it has left."""
    deadline = time.monotonic() + REMOVE_WAIT_S
    while (pids := _pids(directory)) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)


def _kill(process: subprocess.Popen[Any]) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


def cpus_for(count: int | None) -> list[int] | None:
    """The target's cores on the host: the lowest-numbered usable ones (as pinning picks)."""
    if count is None or not hasattr(os, "sched_getaffinity"):
        return None
    return sorted(os.sched_getaffinity(0))[:count]


class EmulationUnavailable(RuntimeError):
    """``enforce`` was asked for where cgroups cannot be used (one line: why)."""


@dataclass(frozen=True)
class Emulation:
    """How this run emulates the target: the mode, the group's limits, the gap if any.

    ``support`` is None where no limit is enforced; ``note`` then says why (empty when
    nothing was asked for: no memory_mb and no cpus, or the mode is pin or off).
    """

    mode: str
    support: CgroupSupport | None = None
    limits: TargetLimits | None = None
    note: str = ""

    @property
    def enforced(self) -> bool:
        return self.support is not None and self.limits is not None

    @contextlib.contextmanager
    def group(self) -> Iterator[LimitedGroup | None]:
        """A fresh limited group for one measurement, removed after it; None if not enforced."""
        if self.support is None or self.limits is None:
            yield None
            return
        with create_limited_group(self.support, self.limits) as group:
            yield group


def resolve_emulation(
    mode: str,
    limits: TargetLimits,
    *,
    probe_fn: Callable[[], CgroupSupport | Unsupported] = probe,
    trial: bool = True,
) -> Emulation:
    """The run's emulation for *mode* (auto, enforce, pin, off) and the target's *limits*.

    ``auto`` enforces where the host allows it, else falls back to pinning with a note;
    ``enforce`` raises :class:`EmulationUnavailable` there instead.
    """
    if mode in ("pin", "off"):
        return Emulation(mode)
    if limits.memory_mb is None and not limits.cpus:
        return Emulation(mode)
    found = probe_fn()
    if trial and not isinstance(found, Unsupported):
        found = _trial(found, limits)
    if isinstance(found, Unsupported):
        if mode == "enforce":
            raise EmulationUnavailable(
                f"--deploy-emulate=enforce: the target's limits cannot be enforced on this"
                f" host: {found.reason}; use --deploy-emulate=pin (or auto) to pin cores only"
            )
        return Emulation(
            "pin", note=f"the target's limits were not enforced (cores pinned only): {found.reason}"
        )
    return Emulation("enforce", found, limits)


def _trial(support: CgroupSupport, limits: TargetLimits) -> CgroupSupport | Unsupported:
    """Make and remove one group: a writable-looking tree may still refuse (a read-only mount)."""
    try:
        with create_limited_group(support, limits):
            pass
    except (GroupError, OSError) as exc:
        return Unsupported(str(exc))
    return support
