"""One run, one evidence set: the earlier set moved aside when a run starts, a marker
saying the run is in progress, and the earlier set put back when the run kept nothing.

At the start of a run (by the xdist controller, never a worker or a measuring child):

1. stale temporaries of an interrupted write (``.<name>.<random>.tmp``) are removed;
2. the evidence files of the run before move into ``previous/``, replacing an older
   ``previous/`` -- report.json first, so that a kill half-way leaves no verdict, never
   an old verdict beside some of the new files;
3. for a run with a target, report.json (``"status": "running"``, ``release_candidate:
   false``), summary.md and run.log say "run in progress or died".

A session killed at any point from then on leaves that unambiguous state.  The writer
writes report.json last (report.writer), so a kill during the final writes leaves the
marker's verdict in place, beside files of this run only.  This was chosen over writing
the set into a temporary directory and renaming it into place: a directory cannot
replace a non-empty one in one rename, the evidence directory may be a mount point or
held open by a CI step, and the marker must be there from the start anyway.

Only the plugin's own files move: the report files, failure_cases.md, the soak CSVs
and the required evidence.  Anything else kept in the directory stays where it is.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

from ..config.evidence_names import (
    FAILURE_CASES_FILE,
    PREVIOUS_DIR,
    REPORT_FILE,
    REPORT_FILES,
    RUN_LOG_FILE,
    SUMMARY_FILE,
    TIMESERIES_PREFIX,
    TIMESERIES_SUFFIX,
)
from ..config.files import atomic_write_text
from ..verdict.completeness import STATUS_RUNNING
from .evidence import REPORT_SCHEMA_VERSION

IN_PROGRESS = "run in progress or died"


@dataclass(frozen=True)
class RunMarker:
    """What the in-progress marker says about the run that wrote it."""

    target: str
    command_line: tuple[str, ...]
    started: float
    pid: int = 0


@dataclass(frozen=True)
class EvidenceStart:
    """What the start of a run did to its evidence directory, to settle at the end."""

    evidence_dir: Path
    set_aside: tuple[str, ...] = ()  # moved into previous/
    superseded: Path | None = None  # the older previous/, deleted once this run kept a set
    marked: tuple[str, ...] = ()  # the marker files written
    created: Path | None = None  # the outermost directory this run created for it
    left_behind: tuple[str, ...] = ()  # earlier files that could not be moved
    error: str | None = None


def begin_evidence_set(
    evidence_dir: Path, *, required: Sequence[str], marker: RunMarker | None
) -> EvidenceStart:
    """Set the earlier evidence aside and, given a *marker*, mark the run in progress.

    Without a marker (a run without a target, never a release candidate) nothing is
    created; an existing directory is still set aside, so no earlier file counts.
    A file that cannot be moved or written is reported, never raised.
    """
    created = _outermost_missing(evidence_dir)
    if created is not None and marker is None:
        return EvidenceStart(evidence_dir)
    set_aside: tuple[str, ...] = ()
    superseded = None
    try:
        evidence_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(evidence_dir)
        set_aside, superseded = _set_aside(evidence_dir, required)
        marked = _write_marker(evidence_dir, marker) if marker is not None else ()
    except OSError as exc:
        return EvidenceStart(
            evidence_dir,
            set_aside=set_aside,
            superseded=superseded,
            created=created,
            left_behind=tuple(our_entries(evidence_dir, required)),
            error=f"{evidence_dir}: {exc.strerror or exc}",
        )
    return EvidenceStart(evidence_dir, set_aside, superseded, marked, created)


def settle_evidence_set(start: EvidenceStart, *, kept: bool) -> None:
    """At the end: drop the older previous/ if this run kept a set, else put all back.

    A run that ran no deploy test keeps nothing: the directory is left as it was.
    """
    if kept:
        if start.superseded is not None:
            shutil.rmtree(start.superseded, ignore_errors=True)
        return
    directory, previous = start.evidence_dir, start.evidence_dir / PREVIOUS_DIR
    with contextlib.suppress(OSError):
        for name in start.marked:
            (directory / name).unlink(missing_ok=True)
        for name in sorted(start.set_aside, key=lambda n: n == REPORT_FILE):  # report last
            os.replace(previous / name, directory / name)
        if start.set_aside:
            previous.rmdir()
        if start.superseded is not None:
            os.replace(start.superseded, previous)
        if start.created is not None:
            _remove_empty_up_to(directory, start.created)


def our_entries(evidence_dir: Path, required: Sequence[str]) -> list[str]:
    """The entries of *evidence_dir* that belong to an evidence set (not previous/)."""
    names = {*REPORT_FILES, FAILURE_CASES_FILE}
    names.update(PurePath(name).parts[0] for name in required if PurePath(name).parts)
    try:
        entries = sorted(os.listdir(evidence_dir))
    except OSError:
        return []
    return [
        name
        for name in entries
        if name != PREVIOUS_DIR
        and not _is_temporary(name)
        and (name in names or _is_timeseries(name))
    ]


def remove_stale_temporaries(evidence_dir: Path) -> list[str]:
    """Remove what an interrupted write left (``.X.tmp`` files, staging directories)."""
    removed = []
    for entry in os.scandir(evidence_dir):
        if not _is_temporary(entry.name):
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
        removed.append(entry.name)
    return removed


def running_report(marker: RunMarker) -> dict[str, object]:
    """report.json while the run is in progress: not a release candidate, and why."""
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "status": STATUS_RUNNING,
        "partial": True,
        "target": marker.target,
        "verdict": {
            "release_candidate": False,
            "reasons": [running_reason(marker)],
            "counts": {},
            "caveats": [],
        },
        "checks": [],
        "failed_tests": [],
        "command_line": list(marker.command_line),
        "started": _utc(marker.started),
        "pid": marker.pid,
    }


def running_reason(marker: RunMarker) -> str:
    return (
        f"{IN_PROGRESS}: started {_utc(marker.started)} (pid {marker.pid}), no verdict"
        f" yet; the evidence of the run before is in {PREVIOUS_DIR}/"
    )


def _set_aside(evidence_dir: Path, required: Sequence[str]) -> tuple[tuple[str, ...], Path | None]:
    """Move the earlier set into previous/ through a staging directory, report.json first."""
    ours = our_entries(evidence_dir, required)
    if not ours:
        return (), None
    staging = Path(tempfile.mkdtemp(prefix=".previous.", suffix=".tmp", dir=evidence_dir))
    for name in sorted(ours, key=lambda n: n != REPORT_FILE):
        os.replace(evidence_dir / name, staging / name)
    previous, superseded = evidence_dir / PREVIOUS_DIR, None
    if os.path.lexists(previous):
        superseded = evidence_dir / f".superseded.{os.getpid()}.{time.time_ns()}.tmp"
        os.replace(previous, superseded)
    os.replace(staging, previous)
    return tuple(ours), superseded


def _write_marker(evidence_dir: Path, marker: RunMarker) -> tuple[str, ...]:
    """summary.md and run.log, then report.json: each says the run is in progress."""
    reason = running_reason(marker)
    summary = (
        f"# Deploy readiness: {marker.target}\n\n**release_candidate: False**"
        f" (status: {STATUS_RUNNING})\n\n- {reason}\n"
    )
    log = f"{_utc(marker.started)} release_candidate: False (status: {STATUS_RUNNING})\n"
    log += f"{reason}\ncommand line: {json.dumps(list(marker.command_line))}\n"
    atomic_write_text(evidence_dir / SUMMARY_FILE, summary)
    atomic_write_text(evidence_dir / RUN_LOG_FILE, log)
    document = json.dumps(running_report(marker), indent=2) + "\n"
    atomic_write_text(evidence_dir / REPORT_FILE, document)
    return (SUMMARY_FILE, RUN_LOG_FILE, REPORT_FILE)


def _outermost_missing(directory: Path) -> Path | None:
    """The outermost of *directory* and its parents that does not exist yet, if any."""
    missing = None
    for candidate in (directory, *directory.parents):
        if candidate.exists():
            break
        missing = candidate
    return missing


def _remove_empty_up_to(directory: Path, outermost: Path) -> None:
    """Remove *directory* and its parents up to *outermost*, while they are empty."""
    for candidate in (directory, *directory.parents):
        candidate.rmdir()
        if candidate == outermost:
            return


def _is_temporary(name: str) -> bool:
    return name.startswith(".") and name.endswith(".tmp")


def _is_timeseries(name: str) -> bool:
    return name.startswith(TIMESERIES_PREFIX) and name.endswith(TIMESERIES_SUFFIX)


def _utc(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))
