"""Which of a test's models can be timed against the release's file of them.

The saved baseline records each model file's path and SHA-256 (:mod:`.rollback`).  A
model whose file changed since, while the release's file is still where the baseline
says (by path and hash: a file rewritten in place is not the release's any more), can be
paired with it in the same run (:mod:`..checks.duet`).  Everything else is said in one
reason: an unchanged model needs no pair, a missing release file cannot be timed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..checks.duet import DuetPair, DuetPlan
from .rollback import SHORT_HASH, file_sha256

if TYPE_CHECKING:
    from ..checks.models import ModelSet
    from .baseline import Baseline

RELEASE_SUFFIX = " (release)"


class ReleaseModels:
    """The release's model files of one baseline, hashed once per file and run."""

    def __init__(
        self, baseline: Baseline, project_dir: Path, release_dir: Path | None = None
    ) -> None:
        self.baseline = baseline
        self.project_dir = project_dir
        self.release_dir = release_dir
        self._hashes: dict[tuple[str, int, int], str | None] = {}

    def plan(self, models: ModelSet, names: Sequence[str]) -> DuetPlan | None:
        """The pairs for a test that runs the configured models *names*; None: nothing to do."""
        pairs: list[DuetPair] = []
        skipped: list[str] = []
        for name in names:
            found = self._pair(models, name)
            if isinstance(found, DuetPair):
                pairs.append(found)
            elif found:
                skipped.append(found)
        if not pairs and not skipped:
            return None
        return DuetPlan(tuple(pairs), tuple(skipped))

    def _pair(self, models: ModelSet, name: str) -> DuetPair | str | None:
        """The pair for *name*, why there is none (str), or None when it is unchanged."""
        record = self.baseline.models.get(name)
        if not record or not record.get("sha256"):
            return None
        candidate = models[name]
        release_sha = str(record["sha256"])
        if self._sha(candidate.path) == release_sha:
            return None
        release_path = self._release_file(str(record.get("path") or ""), release_sha)
        short = release_sha[:SHORT_HASH]
        shown = f"{name}: the release's file {record.get('path')} (sha256 {short})"
        if release_path is None or self._sha(release_path) != release_sha:
            where = " or in --deploy-release-dir" if self.release_dir is not None else ""
            return f"{shown} is not on disk{where}: compared with the saved run only"
        return self._loaded(models, name, release_path, record, shown)

    def _loaded(
        self,
        models: ModelSet,
        name: str,
        path: Path,
        record: dict[str, Any],
        shown: str,
    ) -> DuetPair | str:
        candidate = models[name]
        try:
            release = models.load_path(path, name + RELEASE_SUFFIX, candidate.input_shapes)
        except Exception as exc:  # a release file this runtime cannot load: no pair, say why
            return f"{shown} does not load: {str(exc).splitlines()[0] if str(exc) else exc!r}"
        problem = candidate.signature_difference(release)
        if problem is not None:
            return f"{shown} cannot be paired: {problem}"
        return DuetPair(name, candidate, release, str(record.get("path")), str(record["sha256"]))

    def _release_file(self, recorded: str, sha: str) -> Path | None:
        """Where the release's file is: at its recorded path in the project, else in the
        release's checkout (``--deploy-release-dir``), either only with the same hash."""
        if not recorded:
            return None
        path = Path(recorded)
        if path.is_absolute():
            return path
        places = [self.project_dir / path]
        if self.release_dir is not None:
            places.append(self.release_dir / self._within_project(path))
        return next((p for p in places if self._sha(p) == sha), places[0])

    def _within_project(self, path: Path) -> Path:
        """*path* as the release's checkout holds it: the project may sit in a subfolder."""
        root = self.release_dir
        if root is None:
            return path
        for parent in [self.project_dir, *self.project_dir.parents]:
            if (root / self.project_dir.relative_to(parent) / path).is_file():
                return self.project_dir.relative_to(parent) / path
        return path

    def _sha(self, path: Path) -> str | None:
        try:
            stat = path.stat()
        except OSError:
            return None
        key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
        if key not in self._hashes:
            try:
                self._hashes[key] = file_sha256(path)
            except OSError:
                self._hashes[key] = None
        return self._hashes[key]
