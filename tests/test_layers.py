"""The package's layers (docs/design.md, "Layers"), read from the source's imports: no cycle between modules or
between folders, and the rules that keep each layer below the ones that use it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "glit"


def _module(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """module -> the glit modules it imports (at top level or inside a function: both are dependencies)."""
    modules = {_module(p): p for p in SRC.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("glit"):
                found = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules]
                deps.update(found or [node.module])
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.startswith("glit"))
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def _folder(module: str) -> str:
    """The layer a module belongs to: its folder under glit (glit.search.budget -> search), or the module itself."""
    return module.split(".")[1] if module.count(".") else module


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of nodes, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def _folders(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for module, deps in graph.items():
        if module in ("glit", "glit.__main__", "glit.cli"):  # the package's API and the CLI sit on top of every layer
            continue
        out.setdefault(_folder(module), set()).update(_folder(d) for d in deps if _folder(d) != _folder(module))
    return out


def test_no_module_imports_itself_back():
    assert _cycle(_imports()) is None, " -> ".join(_cycle(_imports()))


def test_no_folder_imports_itself_back():
    cycle = _cycle(_folders(_imports()))
    assert cycle is None, " -> ".join(cycle)


@pytest.mark.parametrize("layer, forbidden", [
    ("config", {"search", "scoring", "train", "nn", "data", "recipes", "report"}),  # the schema sits low
    ("search", {"train", "nn", "data", "config", "scoring", "recipes", "report"}),  # search needs no torch
    ("space", {"cost", "presets", "nn", "train", "search", "config"}),
    ("recipes", {"report"}),  # the CLI renders a finished folder; recipes only write folders
    ("report", {"cost", "presets", "recipes", "scoring", "search", "train", "nn", "data"}),  # a pure reader
])
def test_layer_rules(layer, forbidden):
    reached = _folders(_imports()).get(layer, set())
    assert not reached & forbidden, f"glit.{layer} imports {sorted(reached & forbidden)}"


def test_search_code_imports_no_torch():
    for path in (SRC / "search").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names] + \
            [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
        assert not [n for n in names if n.split(".")[0] == "torch"], path
