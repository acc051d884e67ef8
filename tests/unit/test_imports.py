"""The package's import graph: no cycles, and the stage boundaries the README promises."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "harness"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """Every harness module ``path`` imports (function-level imports too; ``if TYPE_CHECKING:`` blocks are
    annotations only and do not run)."""
    tree = ast.parse(path.read_text())
    skipped = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
        for n in ast.walk(node)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        found |= {n for n in names if n in modules}
    return found


def graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(files)
    edges = {name: imports_of(path, modules) - {name} for name, path in files.items()}
    # importing a.b.c runs a/__init__ and a/b/__init__ first
    for name in list(edges):
        parents = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
        for target in list(edges[name]):
            edges[name] |= {
                p
                for p in {".".join(target.split(".")[:i]) for i in range(1, target.count(".") + 1)}
                if p in modules and p not in parents and p != name
            }
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_package_has_no_import_cycle():
    assert find_cycle(graph()) is None, " -> ".join(find_cycle(graph()) or [])


def test_the_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_only_the_tune_stage_imports_ray():
    importers = {
        module_name(p)
        for p in PACKAGE.rglob("*.py")
        if any(n == "ray" or n.startswith("ray.") for n in _external_imports(p))
    }
    assert importers <= {"harness.tune.ray_search", "harness.tune.searchers", "harness.tune.tracking"}, importers


def _external_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize(
    "module",
    ["harness.report.tables", "harness.report.plots", "harness.cli.report", "harness.records", "harness.models.pairs"],
)
def test_the_report_stage_and_the_registries_import_neither_torch_nor_ray(module):
    code = f"import sys, {module}; print(sorted(m for m in ('torch', 'ray') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# The pipeline's layers, bottom up (STYLE.md: cli -> benchmark/report -> tune -> train -> models ->
# features/corpus -> config/records). A module imports its own layer's modules and lower ones only; the
# benchmark and report stages sit side by side and import neither each other. Top-level modules not
# named here (config, records, books, store, errors, paths, logs ...) are the bottom layer, except the
# ``python -m harness.search`` style shims, which are the CLI's.
LAYERS = {
    "harness.corpus": 1,
    "harness.features": 1,
    "harness.models": 2,
    "harness.train": 3,
    "harness.tune": 4,
    "harness.benchmark": 5,
    "harness.report": 5,
    "harness.cli": 6,
    "harness.search": 6,
    "harness.validate": 6,
    "harness.data": 6,
}


def layer(module: str) -> tuple[int, str]:
    """(level, stage) of a module: its stage package's level, else 0 (the bottom: plain data and tools). A
    package's ``__main__`` (``python -m harness.report``) is an entry point, never imported: the CLI's."""
    if module.endswith(".__main__"):
        return LAYERS["harness.cli"], "harness.cli"
    for prefix, level in LAYERS.items():
        if module == prefix or module.startswith(prefix + "."):
            return level, prefix
    return 0, "harness"


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    found = []
    for module, targets in sorted(edges.items()):
        mine, stage = layer(module)
        for target in sorted(targets):
            theirs, other = layer(target)
            if theirs > mine or (theirs == mine and mine > 0 and other != stage and mine == 5):
                found.append(f"{module} -> {target}")
    return found


def test_imports_flow_downward_only():
    assert upward_imports(graph()) == []


def test_the_direction_check_finds_a_planted_upward_import():
    edges = {
        "harness.models.hub": {"harness.models.pairs", "harness.config"},
        "harness.report.tables": {"harness.cli.report"},
        "harness.benchmark.stage": {"harness.report.tables", "harness.tune.selection"},
        "harness.records": {"harness.train.fit"},
    }
    assert upward_imports(edges) == [
        "harness.benchmark.stage -> harness.report.tables",
        "harness.records -> harness.train.fit",
        "harness.report.tables -> harness.cli.report",
    ]
