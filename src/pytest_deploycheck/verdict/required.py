"""Required evidence: a run is not a release candidate without the files it must leave.

``required_evidence = ["failure_cases.md"]`` in the configuration makes each file a
gating ``has_<stem>`` check, judged at the end of the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..checks.record import Check


def required_evidence_check(
    name: str, evidence_dir: Path, project_dir: Path, produced: Sequence[str]
) -> Check:
    """A ``has_<stem>`` check: the file exists in the evidence or the project directory.

    Files this run writes itself count as present; anything else must be on disk.
    """
    stem = Path(name).stem
    candidates = [evidence_dir / name, project_dir / name]
    found = next((p for p in candidates if p.is_file()), None)
    if name in produced:
        state, where, passed = "written", f"written by this run to {evidence_dir}", True
    elif found is not None:
        state, where, passed = "present", f"found at {found}", True
    else:
        state, where = "missing", f"looked in {evidence_dir} and {project_dir}"
        passed = False
    return Check(
        name=f"has_{stem}",
        metric="evidence_file",
        value=name,
        passed=passed,
        provenance="measured",
        details=where,
        extra={"display": f"{name} {state}", "path": str(found) if found else None},
    )
