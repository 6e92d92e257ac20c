"""Accelerator memory in use, where the device's provider lets us read it.

onnxruntime's Python API has no figure for the memory a CUDA session holds: its
allocator statistics (``AllocatorGetStats``) are C/C++ only, and the CUDA arena grows
without telling Python.  ``nvidia-smi`` does know, for the whole GPU: so a memory
measurement of a device that asks for CUDA or TensorRT reads ``memory.used`` of the
device's GPU before the measuring child starts and again while its session is loaded,
after the test body ran.  Where ``nvidia-smi`` is absent or fails, nothing is reported:
no figure rather than a made-up one.  The figure is the whole GPU's, other processes
included, which is why the reading before the measurement is kept beside it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..config.providers import nvidia_gpu

if TYPE_CHECKING:
    from ..config.schema import Device

GPU_ENV = "DEPLOYCHECK_ACCELERATOR_GPU"
NVIDIA_SMI = "nvidia-smi"
SOURCE = "nvidia-smi"
QUERY_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class AcceleratorMemory:
    """GPU memory in use while a workload's session was loaded, in MB (as nvidia-smi
    counts them: MiB)."""

    gpu: int
    used_mb: float
    before_mb: float | None = None
    source: str = SOURCE

    def line(self) -> str:
        """``accelerator memory: 812 MB in use on GPU 0 (nvidia-smi)``."""
        return f"accelerator memory: {self.used_mb:.0f} MB in use on GPU {self.gpu} ({self.source})"

    def as_extra(self) -> dict[str, Any]:
        return {
            "accelerator_memory": self.line(),
            "accelerator_memory_mb": self.used_mb,
            "accelerator_memory_before_mb": self.before_mb,
            "accelerator_gpu": self.gpu,
            "accelerator_memory_source": self.source,
        }


def gpu_memory_used_mb(gpu: int) -> float | None:
    """``memory.used`` of GPU *gpu* from nvidia-smi, or None where it cannot be read."""
    executable = shutil.which(NVIDIA_SMI)
    if executable is None:
        return None
    command = [
        executable,
        "--query-gpu=memory.used",
        "--format=csv,noheader,nounits",
        f"--id={gpu}",
    ]
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=QUERY_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return _parse_used(completed.stdout) if completed.returncode == 0 else None


def _parse_used(stdout: str) -> float | None:
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    try:
        return float(lines[0]) if lines else None
    except ValueError:  # "[N/A]" or "[Not Supported]" on some boards
        return None


def gpu_to_read() -> int | None:
    """In a measuring child: the GPU whose memory the parent asked for, else None."""
    value = os.environ.get(GPU_ENV, "")
    return int(value) if value.isdigit() else None


def child_env(gpu: int | None) -> dict[str, str]:
    """The environment entry that asks a measuring child to read *gpu* (none: empty)."""
    return {} if gpu is None else {GPU_ENV: str(gpu)}


def from_readings(gpu: int | None, before: Any, during: Any) -> AcceleratorMemory | None:
    """The figure from the readings before and during a measurement, when there is one."""
    if gpu is None or not isinstance(during, int | float) or isinstance(during, bool):
        return None
    before_mb = float(before) if isinstance(before, int | float) else None
    return AcceleratorMemory(gpu=gpu, used_mb=float(during), before_mb=before_mb)


def gpu_of(device: Device | None) -> int | None:
    """The NVIDIA GPU whose memory a measurement on *device* reads, or None: the device
    asks for no CUDA or TensorRT provider, or there is no target."""
    if device is None:
        return None
    return nvidia_gpu(device.execution_providers, device.provider_options)
