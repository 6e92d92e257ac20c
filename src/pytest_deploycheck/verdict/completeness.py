"""Whether a run is whole: complete, partial or interrupted, told apart.

``release_candidate: True`` is for a whole, finished run only.  A run that was
interrupted (Ctrl-C, SIGTERM, a KeyboardInterrupt in a body, ``pytest.exit``) is never
one; a run whose selection left deploy tests out (``-k``, ``-m``, ``--deselect``,
``--lf``, a path that leaves baseline checks out, ``-x``) is *partial*: False unless the
user asked for a verdict on the selection (``allow_partial``), and then it says so in a
caveat.  A test whose xdist worker crashed is a failed deploy test, and the crash a
reason of its own: its checks died with the worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from ..checks import metrics
from ..checks.record import Check
from .decide import Verdict

STATUS_RUNNING = "running"  # the marker a run writes at start; a run that died keeps it
STATUS_COMPLETE = "complete"
STATUS_PARTIAL = "partial"
STATUS_INTERRUPTED = "interrupted"
ALLOW_PARTIAL_HINT = (
    "run the whole suite, or pass --deploy-allow-partial for a verdict on the selection"
)
SHOWN = 5


@dataclass(frozen=True)
class RunEnd:
    """How the run went, as the session saw it: what it left out and how it stopped."""

    deselected: tuple[str, ...] = ()  # deploy tests taken out of the selection
    left_out: tuple[str, ...] = ()  # other reasons tests did not run (--lf, -x)
    interrupted: str | None = None  # what interrupted it (SIGTERM, KeyboardInterrupt)
    crashed: tuple[str, ...] = ()  # one line per test whose worker crashed
    caveats: tuple[str, ...] = ()  # about the run itself (its evidence directory)
    allow_partial: bool = False


@dataclass(frozen=True)
class Completeness:
    """The run's status, the reasons it blocks the verdict and the caveats it adds."""

    status: str = STATUS_COMPLETE
    reasons: tuple[str, ...] = ()
    caveats: tuple[str, ...] = ()

    @property
    def partial(self) -> bool:
        """Whether the evidence covers less than the whole readiness suite."""
        return self.status != STATUS_COMPLETE

    def applied_to(self, verdict: Verdict) -> Verdict:
        """*verdict* with this run's reasons first and its caveats last."""
        return replace(
            verdict,
            release_candidate=verdict.release_candidate and not self.reasons,
            reasons=(*self.reasons, *verdict.reasons),
            caveats=(*verdict.caveats, *self.caveats),
        )


def judge_completeness(checks: Sequence[Check], end: RunEnd) -> Completeness:
    """Interrupted beats partial beats complete; a crash blocks whatever the status."""
    partial = partial_lines(checks, end)
    reasons = list(end.crashed)
    caveats = list(end.caveats)
    if end.interrupted is not None:
        reasons.insert(
            0,
            f"run interrupted ({end.interrupted}): only the tests that finished are judged,"
            " and no interrupted run is a release candidate",
        )
        caveats.append("partial evidence: the run was interrupted; unfinished tests are missing")
        reasons += [f"{line}; {ALLOW_PARTIAL_HINT}" for line in partial]
        return Completeness(STATUS_INTERRUPTED, tuple(reasons), tuple(caveats))
    if not partial:
        return Completeness(STATUS_COMPLETE, tuple(reasons), tuple(caveats))
    if end.allow_partial:
        caveats += partial
    else:
        reasons = [f"{line}; {ALLOW_PARTIAL_HINT}" for line in partial] + reasons
    return Completeness(STATUS_PARTIAL, tuple(reasons), tuple(caveats))


def partial_lines(checks: Sequence[Check], end: RunEnd) -> list[str]:
    """One ``partial run: ...`` line per way the run left deploy tests or checks out."""
    lines = []
    if end.deselected:
        count = len(end.deselected)
        lines.append(
            f"partial run: {count} deploy test(s) deselected (-k, -m, --deselect, --lf or"
            f" --sw): {_shown(end.deselected)}"
        )
    lines += [f"partial run: {text}" for text in end.left_out]
    missing = baseline_checks_not_run(checks)
    if missing:
        lines.append(
            f"partial run: {len(missing)} check(s) in the baseline did not run (deselected,"
            f" deleted or renamed tests?): {_shown(missing)}"
        )
    return lines


def baseline_checks_not_run(checks: Sequence[Check]) -> list[str]:
    """The keys of the baseline's checks that this run did not record."""
    return [
        str(c.extra.get("key") or c.name)
        for c in checks
        if c.metric == metrics.REGRESSION and c.extra.get("kind") == "missing"
    ]


def _shown(names: Sequence[str]) -> str:
    return ", ".join(names[:SHOWN]) + (", ..." if len(names) > SHOWN else "")
