"""The package's layers: imports only go down, and there is no import cycle.

The folder tree is the architecture (README, Development > Architecture): config at
the bottom, then measurement, then checks, then the verdict, then the reports, with
the pytest-facing modules on top.  This test reads every module with ``ast`` (nothing
is imported) so a new upward import fails here, naming the line.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "pytest_deploycheck"
NAME = "pytest_deploycheck"

# What each layer may import from the package (besides itself).  "stats" is the one
# statistics module: the verdict's gates and the reports' charts read it too.
ALLOWED: dict[str, set[str]] = {
    "config": set(),
    "measure": {"config"},
    "markers": {"config"},
    "checks": {"config", "measure", "markers"},
    "verdict": {"config", "measure.stats", "checks", "markers"},
    "report": {"config", "measure.stats", "checks", "verdict"},
    "strategies": {"measure"},
    "terminal": {"config", "checks", "verdict", "report", "measure"},
    "session": {"config", "measure", "markers", "checks", "verdict", "report", "terminal"},
    "plugin": {"config", "markers", "checks", "measure", "session"},
    "__init__": {"config", "markers", "checks", "measure"},
}
# The memory child is a pytest run of one test in a fresh process: it must import pytest.
PYTEST_FACING = {"plugin", "session", "terminal", "markers", "measure._memory_child"}


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        yield ".".join(parts), path


def layer_of(module: str) -> str:
    return module.split(".")[0]


def package_imports(module: str, path: Path) -> Iterator[tuple[int, str]]:
    """(line, imported module inside the package) for every import of *path*."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    here = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(NAME + "."):
                    yield node.lineno, alias.name[len(NAME) + 1 :]
        elif isinstance(node, ast.ImportFrom):
            yield from _from_import(node, here)


def _from_import(node: ast.ImportFrom, here: list[str]) -> Iterator[tuple[int, str]]:
    if node.level == 0:
        if node.module and node.module.startswith(NAME + "."):
            base = node.module[len(NAME) + 1 :]
        elif node.module == NAME:
            base = ""
        else:
            return
    else:
        anchor = here[: len(here) - (node.level - 1)] if node.level > 1 else here
        base = ".".join([*anchor, *([node.module] if node.module else [])])
    for alias in node.names:
        # ``from .measure import stats`` imports the module measure.stats.
        candidate = f"{base}.{alias.name}" if base else alias.name
        if (PACKAGE / (candidate.replace(".", "/") + ".py")).is_file() or (
            PACKAGE / candidate.replace(".", "/")
        ).is_dir():
            yield node.lineno, candidate
        elif base:
            yield node.lineno, base


def allowed(importer: str, imported: str) -> bool:
    own, other = layer_of(importer), layer_of(imported)
    if own == other:
        return True
    grants = ALLOWED[own]
    return other in grants or any(imported == g or imported.startswith(g + ".") for g in grants)


def test_every_module_belongs_to_a_layer() -> None:
    unknown = sorted({layer_of(m) for m, _ in modules()} - set(ALLOWED) - {""})
    assert not unknown, f"modules outside the layers of ALLOWED: {unknown}"


def test_imports_only_go_down() -> None:
    upward = [
        f"{path.relative_to(PACKAGE)}:{line}: {module} imports {imported}"
        for module, path in modules()
        for line, imported in package_imports(module, path)
        if not allowed(module, imported)
    ]
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_no_import_cycle_between_modules() -> None:
    graph = {
        module: {imported for _, imported in package_imports(module, path)}
        for module, path in modules()
    }
    cycle = _find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_only_the_pytest_facing_modules_import_pytest() -> None:
    importers = sorted(
        module
        for module, path in modules()
        if not {module, layer_of(module)} & PYTEST_FACING and _imports_pytest(path)
    )
    assert not importers, f"core modules that import pytest: {importers}"


def _imports_pytest(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(
            a.name.split(".")[0] == "pytest" for a in node.names
        ):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "pytest":
            return True
    return False


@pytest.mark.parametrize(
    ("importer", "imported", "ok"),
    [
        ("checks.budget", "measure.latency", True),
        ("measure.soak", "verdict.gates", False),
        ("config.schema", "checks.record", False),
        ("report.html", "measure.stats", True),
        ("report.html", "measure.latency", False),
        ("verdict.run", "report.evidence", False),
    ],
)
def test_the_rule_itself(importer: str, imported: str, ok: bool) -> None:
    assert allowed(importer, imported) is ok


def test_the_walker_sees_relative_and_absolute_imports(tmp_path: Path) -> None:
    # Parsed as if it lived at checks/_walker_probe.py.
    source = (
        "from ..measure import stats\n"
        "from ..verdict.decide import decide\n"
        "import pytest_deploycheck.report.html\n"
        "def f():\n    from . import record\n"
    )
    tree_path = tmp_path / "probe.py"
    tree_path.write_text(source)
    found = {imported for _, imported in package_imports("checks._walker_probe", tree_path)}
    assert found == {"measure.stats", "verdict.decide", "report.html", "checks.record"}
