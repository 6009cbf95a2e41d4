"""The package's structure: no import cycles, modules of a readable size,
and the data flow of docs/DESIGN (arrays -> model definition -> back-end ->
inference -> draws -> prediction) visible in who imports whom."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "skhbnn"
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph() -> dict[str, set[str]]:
    """``{module: skhbnn modules it imports}``, module-level and inside
    functions alike (a lazy import still ties the two modules together)."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                target = _resolve(name, is_package, node)
                # "from . import x" / "from .pkg import mod" may name submodules
                found = [f"{target}.{alias.name}" for alias in node.names]
                found = [f if f in modules else target for f in found]
            else:
                continue
            targets |= {f for f in found if f in modules and f != name}
        graph[name] = targets
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    # A package's __init__ importing its own submodules is how packages
    # expose names, not a cycle: drop the edges from a submodule to the
    # __init__ of a package that contains it.
    for name in graph:
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}
    assert _cycles(graph) == []


def test_the_cycle_check_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]


@pytest.mark.parametrize("name", sorted(_modules()))
def test_modules_stay_readable(name):
    lines = len(_modules()[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines; split it by responsibility"


@pytest.mark.parametrize(
    "leaf", ["skhbnn.registry", "skhbnn.kernels.abi", "skhbnn.network", "skhbnn.datasets"]
)
def test_leaf_modules_import_nothing_from_skhbnn(leaf):
    assert import_graph()[leaf] == set()


def test_back_ends_do_not_know_the_estimators():
    """Data flows one way: the model definitions, kernels, inference and
    persistence never import an estimator module."""
    graph = import_graph()
    estimators = {
        "skhbnn.classifiers", "skhbnn.hierarchical", "skhbnn.regressors", "skhbnn.transfer",
        "skhbnn.hierarchical_regressor", "skhbnn.grouped", "skhbnn._base",
    }
    lower = [m for m in graph if m.startswith(("skhbnn.models", "skhbnn.kernels",
                                                "skhbnn.inference", "skhbnn.persistence"))]
    assert lower
    for module in lower:
        assert not graph[module] & estimators, module
