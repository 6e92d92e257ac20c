"""Required evidence: a run is not a release candidate without the files it must leave.

``required_evidence = ["failure_cases.md"]`` in the configuration makes each file a
gating ``has_<stem>`` check, judged at the end of the run.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

from ..checks.metrics import EVIDENCE_FILE
from ..checks.record import Check
from ..config.files import UnsafePathError, contained


def required_evidence_check(
    name: str,
    evidence_dir: Path,
    project_dir: Path,
    produced: Sequence[str],
    *,
    inherited: Collection[str] = (),
) -> Check:
    """A ``has_<stem>`` check: the file exists in the evidence or the project directory.

    Files this run writes itself count as present; anything else must be on disk, and
    nothing an earlier run left counts: the session sets the earlier evidence aside in
    ``previous/`` at start, and *inherited* names what it could not move, whose copy in
    the evidence directory is not this run's.  The project's copy, kept beside the
    configuration, always counts.
    """
    stem = Path(name).stem
    try:
        candidates = [contained(evidence_dir, name), contained(project_dir, name)]
        if is_inherited(name, inherited):
            candidates = candidates[1:]
    except UnsafePathError as exc:  # the schema refuses these at start-up
        candidates, outside = [], str(exc)
    found = next((p for p in candidates if p.is_file()), None)
    if name in produced:
        state, where, passed = "written", f"written by this run to {evidence_dir}", True
    elif found is not None:
        state, where, passed = "present", f"found at {found}", True
    elif not candidates:
        state, where, passed = "refused", outside, False
    else:
        state, where = "missing", f"looked in {evidence_dir} and {project_dir}"
        passed = False
    return Check(
        name=f"has_{stem}",
        metric=EVIDENCE_FILE,
        value=name,
        passed=passed,
        provenance="measured",
        details=where,
        display=f"{name} {state}",
        extra={"path": str(found) if found else None},
    )


def is_inherited(name: str, inherited: Collection[str]) -> bool:
    """Whether *name* lies in an entry an earlier run left in the evidence directory."""
    parts = Path(name).parts
    return name in inherited or (bool(parts) and parts[0] in inherited)
