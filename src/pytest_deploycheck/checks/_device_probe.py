"""Run on a device through an execnet gateway: where it is, and its model files' SHA-256.

Sent as source by ``gateway.remote_exec`` before the xdist worker starts there, so it
imports nothing but the standard library (the package may not even import there yet).
It receives a list of paths (relative to the gateway's working directory) and sends
back one dict.
"""

from __future__ import annotations

import hashlib
import platform
import socket
import sys
from importlib import metadata
from pathlib import Path
from typing import Any


def sha256_or_none(path: str) -> str | None:
    digest = hashlib.sha256()
    try:
        with Path(path).open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith(("model name", "Model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def describe(paths: list[str]) -> dict[str, Any]:
    return {
        "hostname": socket.gethostname(),
        "cpu_model": cpu_model(),
        "machine": platform.machine(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "onnxruntime": version("onnxruntime"),
        "cwd": str(Path.cwd()),
        "sha256": {path: sha256_or_none(path) for path in paths},
    }


if __name__ == "__channelexec__":
    channel.send(describe(channel.receive()))  # type: ignore[name-defined]  # noqa: F821
