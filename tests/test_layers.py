"""The package's layers hold: the import-linter contracts in pyproject.toml pass, and no gankit module imports itself
back through a chain of others (imports inside functions count: they run too, and they are how cycles hide)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

grimp = pytest.importorskip("grimp", reason="import-linter (and its grimp) come with the test extra")

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_pass():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    assert lint_imports.exists(), f"{lint_imports} is missing: install the test extra (pip install -e '.[test]')"
    done = subprocess.run([str(lint_imports), "--no-cache", "--no-logo"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"lint-imports failed:\n{done.stdout}\n{done.stderr}"
    assert "0 broken" in done.stdout, done.stdout


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of ``graph`` (module -> modules it imports), iteratively (no
    recursion limit), each component sorted; only components of more than one module, or a module importing
    itself, are returned."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph.get(node, ()):
                    found.append(sorted(component))
    return found


def test_strongly_connected_finds_a_cycle_and_ignores_a_chain():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert sorted(strongly_connected(graph)) == [["a", "b", "c"], ["e"]]
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_import_cycle_among_gankit_modules():
    graph = grimp.build_graph("gankit")  # every import statement, at module level or inside a function
    modules = {m for m in graph.modules if m == "gankit" or m.startswith("gankit.")}
    imports = {m: {n for n in graph.find_modules_directly_imported_by(m) if n in modules} for m in modules}
    cycles = strongly_connected(imports)
    message = "\n".join(f"a cycle of {len(c)} modules: {', '.join(c)}" for c in cycles)
    assert not cycles, f"gankit's modules import each other in a circle:\n{message}"
