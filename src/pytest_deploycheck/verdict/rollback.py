"""Rollback: when a candidate is not ready, which release to go back to.

The previous release's saved report is the baseline (``--deploy-save`` on the release
run, ``--deploy-baseline`` or ``baseline =`` on later runs).  It records each model
file's path, SHA-256 and size.  Comparing them with this run's files tells what the
candidate changed, and a candidate that is not a release candidate gets one line
naming the model files to roll back to -- and whether they are still on disk where
the release had them, or must come back from the release's artifacts.

The check is informational (it never changes the verdict): the verdict already says
why the candidate failed, this says what to do about it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..checks.metrics import ROLLBACK
from ..checks.record import Check

if TYPE_CHECKING:
    from ..config.schema import DeployConfig
    from .baseline import Baseline

CHUNK = 1 << 20
SHORT_HASH = 12


def file_sha256(path: Path) -> str:
    """The file's SHA-256, read in chunks so a large model does not fill memory."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def model_records(config: DeployConfig, project_dir: Path) -> dict[str, dict[str, Any]]:
    """Each configured model's file: path (relative to the project when inside it),
    SHA-256 and size; a file that cannot be read is recorded with its error."""
    records: dict[str, dict[str, Any]] = {}
    for name, spec in config.models.items():
        path = spec.path
        shown = _relative(path, project_dir)
        try:
            records[name] = {
                "path": shown,
                "sha256": file_sha256(path),
                "bytes": path.stat().st_size,
            }
        except OSError as exc:
            records[name] = {"path": shown, "sha256": None, "error": exc.strerror or str(exc)}
    return records


def _relative(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(path)


def rollback_check(
    baseline: Baseline,
    current: Mapping[str, Mapping[str, Any]],
    *,
    release_candidate: bool,
    project_dir: Path,
) -> Check:
    """What changed since the release, and -- when the candidate failed -- what to restore."""
    release = baseline.models
    where = baseline.describe()
    if not release:
        text = (
            f"{where} records no model files (saved by an older pytest-deploycheck):"
            " save the release again with --deploy-save to name a rollback target"
        )
        return _check(None, text, [], release_candidate, {}, notes=(text,))
    changed = [
        name
        for name, record in release.items()
        if current.get(name, {}).get("sha256") != record.get("sha256")
    ]
    added = sorted(set(current) - set(release))
    figure = f"{len(changed)} of {len(release)} model files changed since {where}"
    if added:
        figure += f"; new: {', '.join(added)}"
    targets = [_target(name, release[name], project_dir) for name in (changed or list(release))]
    extra = {
        "release": where,
        "release_created": baseline.created,
        "release_was_candidate": baseline.release_candidate,
        "changed": changed,
        "added": added,
        "rollback_to": {name: dict(release[name]) for name in (changed or list(release))},
    }
    caveats = []
    if not release_candidate:
        if changed:
            caveats.append(f"roll back to {where}: " + "; ".join(targets))
        else:
            caveats.append(
                f"the model files are those of {where}: the failure comes from the code,"
                " the environment or the budgets, not the models; roll the code back"
            )
        if baseline.release_candidate is False:
            caveats.append(f"{where} was itself not a release candidate")
    return _check(len(changed), figure, caveats, release_candidate, extra)


def _target(name: str, record: Mapping[str, Any], project_dir: Path) -> str:
    sha = str(record.get("sha256") or "")
    path = Path(str(record.get("path") or ""))
    full = path if path.is_absolute() else project_dir / path
    text = f"{name} = {record.get('path')} (sha256 {sha[:SHORT_HASH]})"
    try:
        on_disk = full.is_file() and file_sha256(full) == sha
    except OSError:
        on_disk = False
    if on_disk:
        return f"{text}, still on disk there"
    return f"{text}, not on disk any more: restore it from the release's artifacts"


def _check(
    changed: int | None,
    figure: str,
    caveats: list[str],
    release_candidate: bool,
    extra: dict[str, Any],
    notes: tuple[str, ...] = (),
) -> Check:
    return Check(
        name="rollback",
        metric=ROLLBACK,
        value=changed,
        unit="models changed" if changed is not None else "",
        passed=True,
        gating=False,
        provenance="measured",
        details=figure,
        extra={**extra, "candidate": release_candidate},
        display=figure,
        notes=notes,
        caveats=tuple(caveats),
    )
