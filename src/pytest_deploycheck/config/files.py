"""Atomic file writes, for every layer that leaves a file behind.

Each file is written to a synced temporary sibling and renamed into place, so an
interrupted run leaves the previous file or the new one, never half of either.  It
lives at the bottom layer because the baseline (verdict) and the evidence (report)
both write files this way.

A rewritten file keeps the mode it had (a new one gets the umask's), and
:func:`contained` keeps every evidence file inside its directory: a name is data,
never a way out of it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path, PurePath


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


class UnsafePathError(ValueError):
    """A file name that would lead outside the directory it must stay in."""


def contained(base: Path, name: str | PurePath) -> Path:
    """``base / name``, refused unless it stays inside *base*.

    *name* must be relative, without ``..`` parts, and no directory on the way may be a
    symlink that leads outside *base*.  The last part may be a symlink: an atomic write
    replaces the link itself and never writes where it points.
    """
    relative = PurePath(name)
    if relative.is_absolute() or relative.drive or not relative.parts or ".." in relative.parts:
        raise UnsafePathError(
            f"{str(name)!r}: expected a relative path inside {base}, without '..'"
        )
    path = base / relative
    if not is_inside(path.parent, base):
        raise UnsafePathError(f"{str(name)!r}: leads outside {base} through a symlink")
    return path


def is_inside(path: Path, base: Path) -> bool:
    """Whether *path*, symlinks followed, is *base* or below it (a symlink loop is not)."""
    try:
        return path.resolve().is_relative_to(base.resolve())
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop, before Python 3.13
        return False


def _mode_for(path: Path) -> int:
    """The mode an atomic write leaves: the file's own when it exists, else the umask's."""
    try:
        return os.stat(path).st_mode & 0o777  # never a set-id bit onto our own file
    except OSError:
        return 0o666 & ~_UMASK


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
        # mkstemp creates 0600; evidence is read by other users (CI artifact uploads),
        # and a file rewritten in place keeps the mode its owner gave it.
        os.chmod(tmp_name, _mode_for(path))
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    return path
