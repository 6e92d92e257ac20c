"""Atomic file writes, for every layer that leaves a file behind.

Each file is written to a synced temporary sibling and renamed into place, so an
interrupted run leaves the previous file or the new one, never half of either.  It
lives at the bottom layer because the baseline (verdict) and the evidence (report)
both write files this way.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_write_text(path: Path, text: str) -> Path:
    """Write *text* to *path* so that readers see the old file or the whole new one."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write *data* via a synced temporary sibling renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600; evidence is read by other users (CI artifact uploads).
        os.chmod(tmp_name, 0o666 & ~_UMASK)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    return path
