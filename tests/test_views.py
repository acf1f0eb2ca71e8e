"""Pages hold widgets only: no SQL and no store access in pages/, Streamlit only in pages/, app.py and
hfops.console, one view-model module per page, and pure report code (no store, no jobs)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "pages").glob("*.py"))
# SQL statements as this code base writes them (upper-case keywords) in Python strings.
SQL = re.compile(
    r"\bSELECT\b[\s\S]{0,200}?\bFROM\s+[a-z_]+\b|\bINSERT\s+INTO\b|\bUPDATE\s+\w+\s+SET\b|\bDELETE\s+FROM\b"
    r"|\bCREATE\s+TABLE\b|\bJOIN\s+\w+\s+\w+\s+ON\b",
)
STORE_MODULES = ("sqlite3", "sqlite_utils", "hfops.store")
# Pages whose view model lives in hfops.views (the Refine Lab's logic is hfops.refine.lab).
VIEW_OF_PAGE = {"candidates", "evals", "leaderboard", "status", "observability", "demo"}


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at top level or inside functions."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def strings(path: Path) -> list[str]:
    return [
        n.value
        for n in ast.walk(ast.parse(path.read_text()))
        if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]


def test_the_sql_detector_sees_sql() -> None:
    assert SQL.search("SELECT c.model_id FROM candidates c JOIN models m ON m.model_id = c.model_id")
    assert SQL.search("UPDATE jobs SET status = 'queued'") and SQL.search("INSERT INTO t VALUES (1)")
    assert not SQL.search("Select a row to open its detail; update the filters from the sidebar")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_pages_hold_no_sql_and_no_store_access(page: Path) -> None:
    sql = [s for s in strings(page) if SQL.search(s)]
    assert sql == [], f"{page.name} holds SQL: {sql}"
    calls = [
        n
        for n in ast.walk(ast.parse(page.read_text()))
        if isinstance(n, ast.Attribute) and n.attr in ("execute", "executemany", "executescript", "query")
    ]
    assert calls == [], f"{page.name} runs queries itself"
    store = sorted(m for m in imported_modules(page) if m.startswith(STORE_MODULES))
    assert store == [], f"{page.name} imports {store}: go through hfops.console.db() and a view model"


def test_only_pages_app_and_console_import_streamlit() -> None:
    users = sorted(
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "lib").rglob("*.py")
        if any(m == "streamlit" or m.startswith("streamlit.") for m in imported_modules(p))
    )
    # the page helpers, and the launcher that serves them (it imports Streamlit only when it runs)
    assert users == ["lib/hfops/console.py", "lib/hfops/console_server.py"]


def test_each_page_has_its_view_model() -> None:
    for name in VIEW_OF_PAGE:
        page = ROOT / "pages" / f"{name}.py"
        assert f"hfops.views.{name}" in imported_modules(page), f"{page.name} does not use hfops.views.{name}"
        assert (ROOT / "lib" / "hfops" / "views" / f"{name}.py").is_file()


def test_the_report_is_pure() -> None:
    imports = imported_modules(ROOT / "lib" / "hfops" / "publish" / "report.py")
    impure = {
        m for m in imports if m.startswith(("hfops.store", "hfops.jobs", "sqlite", "hfops.publish.hub"))
    }
    assert impure == set()
    assert {"hfops.store", "hfops.jobs"}.isdisjoint(imports)
