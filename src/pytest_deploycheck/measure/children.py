"""Measuring child processes that never outlive their measurement.

The memory and cold-start measurements run the workload in child processes, which may
start children of their own (a pytest plugin's helper, a model server, a runtime's
worker pool).  Each child is started in a process group of its own and, on a timeout
or when the parent is interrupted (Ctrl-C, an exception), killed with its whole group:
no grandchild is left holding memory or a port.  A group of its own also means a
terminal's Ctrl-C reaches only the parent, which then ends the group itself.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable, Iterator, Sequence
from typing import Any

KILL_WAIT_S = 5.0  # for the killed child to be reaped


def popen_group(command: Sequence[str], **options: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen`` with the child leading a new session (POSIX; plain elsewhere)."""
    return subprocess.Popen(list(command), start_new_session=os.name == "posix", **options)


def kill_group(process: subprocess.Popen[Any]) -> None:
    """Kill *process* and every process of its group; then reap it."""
    killpg = getattr(os, "killpg", None)
    if killpg is not None and os.name == "posix":
        # The group outlives its leader while a grandchild is alive: kill it either way.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            killpg(process.pid, signal.SIGKILL)
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=KILL_WAIT_S)


@contextlib.contextmanager
def killed_on_error(process: subprocess.Popen[Any]) -> Iterator[subprocess.Popen[Any]]:
    """The block's child; killed with its group if the block raises (timeout, Ctrl-C)."""
    try:
        yield process
    except BaseException:
        kill_group(process)
        raise


def run_group(
    command: Sequence[str],
    *,
    timeout_s: float,
    spawn: Callable[..., subprocess.Popen[Any]] = popen_group,
    **options: Any,
) -> subprocess.CompletedProcess[str]:
    """Like ``subprocess.run(..., capture_output=True, text=True)`` in a group of its own.

    Raises ``subprocess.TimeoutExpired`` after killing the group when *timeout_s* passes.
    The group is also killed once the child exits, so no grandchild outlives the run.
    *spawn* starts it (``popen_group``'s signature), e.g. inside a limited cgroup.
    """
    process = spawn(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **options)
    with process, killed_on_error(process):
        stdout, stderr = process.communicate(timeout=timeout_s)
    kill_group(process)
    return subprocess.CompletedProcess(list(command), process.returncode, stdout, stderr)
