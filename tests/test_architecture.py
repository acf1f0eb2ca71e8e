"""The layout's rules, checked on the source: no import cycle in the library (top-level and function-level
imports alike), no SQL and no store access in pages/, Streamlit imported only by the console layer, and the
pure modules importing neither the store nor the job mechanism."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIB = ROOT / "lib" / "hfops"
PAGES = ROOT / "pages"

# Modules that compute without state: they may not import the store, jobs or the worker (directly or not).
PURE = (
    "hfops.discovery.facts",
    "hfops.discovery.rule",
    "hfops.discovery.score",
    "hfops.evals.scoring",
    "hfops.evals.stats",
    "hfops.evals.tasks",
    "hfops.publish.report",
    "hfops.net",
    "hfops.errors",
)
STATEFUL = ("hfops.store", "hfops.jobs", "hfops.worker", "hfops.queue")


def module_name(path: Path) -> str:
    parts = path.relative_to(LIB.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def library_modules() -> dict[str, Path]:
    return {module_name(p): p for p in LIB.rglob("*.py") if "metrics" not in p.relative_to(LIB).parts[:1]}


def imported(path: Path, name: str, known: set[str]) -> Iterator[str]:
    """Every hfops module ``path`` imports, anywhere in the file (functions included)."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            # ``from pkg import sub`` imports the submodule; ``from pkg import name`` the package itself.
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in known else module for a in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target.startswith("hfops") and target != name:
                yield target


def import_graph() -> dict[str, set[str]]:
    modules = library_modules()
    known = set(modules)
    graph = {name: set(imported(path, name, known)) for name, path in modules.items()}
    # Importing a submodule runs its package's __init__ first.
    for name in list(graph):
        for target in list(graph[name]):
            parent = target.rpartition(".")[0]
            while parent:
                if parent in graph and parent != name and not name.startswith(parent + "."):
                    graph[name].add(parent)
                parent = parent.rpartition(".")[0]
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_the_library_import_graph_has_no_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_import_no_state(module: str) -> None:
    graph = import_graph()
    if module not in graph:
        pytest.skip(f"{module} does not exist")
    leaks = reachable(graph, module) & set(STATEFUL)
    assert not leaks, f"{module} reaches {sorted(leaks)}"


SQL = re.compile(
    r"\b(SELECT\b.*\bFROM\b|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+(TABLE|INDEX)|"
    r"ALTER\s+TABLE)|\.execute(many)?\(|\bsqlite3\b|\bsqlite_utils\b"
)


@pytest.mark.parametrize("page", sorted(PAGES.glob("*.py")) + [ROOT / "app.py"], ids=lambda p: p.name)
def test_pages_hold_no_sql(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    found = [line.strip() for line in text.splitlines() if SQL.search(line)]
    assert not found, f"{page.name} holds SQL or store access: {found[:3]}"


def test_the_sql_check_would_catch_a_query() -> None:
    assert SQL.search('rows(db, "SELECT model_id FROM candidates")')
    assert SQL.search("db.execute('UPDATE jobs SET status = 1')")
    assert not SQL.search('st.selectbox("Select a model", options)')
