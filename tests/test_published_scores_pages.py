"""Published MTEB scores beside our own: the candidate detail view shows them with their source and revision,
and a retrieval Leaderboard carries them as a column of their own (never mixed into our metric columns)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from hfops.discovery import sync_snapshot
from hfops.paths import HUB_SNAPSHOT
from hfops.views import candidates as cand_view
from hfops.views import leaderboard as board_view
from tests.console_kit import open_console
from tests.standins.inference import InferenceStandIn

MODEL = "BAAI/bge-base-en-v1.5"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("published") / "hfops.db")
    sync_snapshot(path, HUB_SNAPSHOT)
    return path


def test_detail_view_shows_published_scores(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_console(store, monkeypatch, "pages/candidates.py", timeout=60).run()
    at.selectbox(key="cand_detail").set_value(MODEL).run()
    assert not at.exception
    published = next(f.value for f in at.dataframe if "published" in f.value.columns)
    scores = dict(zip(published["task"], published["published"].astype(float), strict=True))
    assert "MSMARCO" in scores and 0 < scores["MSMARCO"] < 1
    assert any("Published by MTEB" in c.value for c in at.caption)


def test_a_model_without_published_scores_says_so(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_console(store, monkeypatch, "pages/candidates.py", timeout=60).run()
    at.selectbox(key="cand_detail").set_value("HuggingFaceTB/SmolLM2-135M-Instruct").run()
    assert any("No published MTEB scores" in c.value for c in at.caption)


def test_leaderboard_keeps_published_numbers_in_their_own_column(store: str) -> None:
    from hfops.store import get_db

    frame = pd.DataFrame(
        {
            "model_id": [MODEL, "sentence-transformers/all-MiniLM-L6-v2", "baseline:bm25"],
            "ndcg@10": [0.50, 0.60, 0.40],
            "examples": [200, 200, 200],
        }
    )
    shown = board_view.with_published(get_db(store), frame, "retrieval")
    assert list(shown["ndcg@10"]) == [0.50, 0.60, 0.40]  # ours untouched
    assert pd.isna(shown[board_view.PUBLISHED_COLUMN].iloc[2])  # the baseline has no published score
    assert shown[board_view.PUBLISHED_COLUMN].iloc[0] > 0
    assert board_view.with_published(get_db(store), frame, "qa") is frame


def test_leaderboard_says_when_the_rankings_disagree() -> None:
    frame = pd.DataFrame(
        {
            "model_id": ["a/one", "b/two"],
            "ndcg@10": [0.61, 0.55],
            board_view.PUBLISHED_COLUMN: [0.36, 0.41],
            "examples": [200, 200],
        }
    )
    notice = board_view.ranking_notice(frame, "retrieval", "ms_marco")
    assert notice is not None and "disagree" in notice and "a/one" in notice
    agreeing = frame.assign(**{board_view.PUBLISHED_COLUMN: [0.41, 0.36]})
    assert board_view.ranking_notice(agreeing, "retrieval", "ms_marco") is None


def published_of_candidates(store: str) -> dict[str, float]:
    """The published MSMARCO nDCG@10 of every candidate, straight from hfops.reference."""
    from hfops import reference, registry
    from hfops.store import get_db

    db = get_db(store)
    found, _ = registry.list_candidates(db, page_size=100_000)
    refs = reference.references_for_models(db, [str(r.model_id) for r in found])
    return reference.published_retrieval_scores(refs)


def test_candidates_table_sorts_by_the_published_score(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 12: the published retrieval score as an optional column and sort key of the Candidates table."""
    at = open_console(store, monkeypatch, "pages/candidates.py", timeout=60).run()
    table = next(d for d in at.dataframe if d.key == "cand_table")
    assert cand_view.PUBLISHED not in table.value.columns  # optional: not there by default

    at.selectbox(key="cand_sort").set_value(cand_view.PUBLISHED).run()
    assert not at.exception
    table = next(d for d in at.dataframe if d.key == "cand_table").value
    published = published_of_candidates(store)
    assert len(published) >= 40  # the embedded default's candidates with an MSMARCO score
    head = sorted(published, key=lambda m: (-published[m], m))[: len(table)]
    assert table["model_id"].tolist()[: len(head)] == head
    assert table[cand_view.PUBLISHED].tolist()[: len(head)] == pytest.approx([published[m] for m in head])
    rest = table.iloc[len(head) :]  # then the models without a published score, by our score
    assert rest[cand_view.PUBLISHED].isna().all()
    assert rest["score"].tolist() == sorted(rest["score"], reverse=True)

    at.toggle(key="cand_desc").set_value(False).run()
    table = next(d for d in at.dataframe if d.key == "cand_table").value
    assert table["model_id"].tolist()[:5] == sorted(published, key=lambda m: (published[m], m))[:5]


def test_published_column_can_be_shown_beside_our_score(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_console(store, monkeypatch, "pages/candidates.py", timeout=60).run()
    at.toggle(key="cand_published_column").set_value(True).run()
    table = next(d for d in at.dataframe if d.key == "cand_table").value
    columns = table.columns.tolist()
    assert columns.index(cand_view.PUBLISHED) == columns.index("score") + 1  # its own column, never mixed
    published = published_of_candidates(store)
    for model_id, value in zip(table["model_id"], table[cand_view.PUBLISHED], strict=True):
        if model_id in published:
            assert value == pytest.approx(published[model_id])
        else:
            assert pd.isna(value)


def test_published_sort_pages_through_both_parts(db_path: str) -> None:
    """Models with a published score first (by it), then the others by our score, page after page."""
    from hfops import registry
    from hfops.store import connect
    from tests.registry_rows import add_candidates, numbered

    add_candidates(db_path, numbered(9))  # org/model-000 .. 008, scores descending
    published = {"org/model-007": 0.41, "org/model-003": 0.52, "org/model-005": 0.41}
    db = connect(db_path)
    shown = []
    for page in (1, 2, 3, 4):
        rows, total = cand_view.list_candidates(
            db, registry.CandidateFilter(), cand_view.PUBLISHED, True, page, 2, published
        )
        assert total == 9
        shown += [r.model_id for r in rows]
    rest = [f"org/model-{i:03d}" for i in (0, 1, 2, 4, 6)]
    assert shown == ["org/model-003", "org/model-005", "org/model-007", *rest[:5]]
    rows, _ = cand_view.list_candidates(
        db, registry.CandidateFilter(min_score=0.985), cand_view.PUBLISHED, True, 1, 10, published
    )
    kept = [
        "org/model-003",
        "org/model-005",
        "org/model-000",
        "org/model-001",
        "org/model-002",
        "org/model-004",
    ]
    assert [r.model_id for r in rows] == kept  # scores 0.990 .. 0.985; model-007 is filtered out
    with pytest.raises(registry.RegistryError):
        cand_view.list_candidates(db, registry.CandidateFilter(), "published; DROP TABLE models")


def test_candidates_json_carries_the_published_reference(store: str) -> None:
    """Issue 12: `hfops candidates --json` gives ``reference``: {source, revision, scores} or null."""
    import json
    import os
    import subprocess

    from hfops import reference
    from tests.browser import hfops_command

    out = subprocess.run(
        [*hfops_command(), "candidates", "--json", "--limit", "5000", "--db", store],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    rows = {r["model_id"]: r for r in json.loads(out.stdout)}
    expected = reference.reference_for(MODEL, None)
    assert expected is not None
    got = rows[MODEL]["reference"]
    assert got["source"] == expected.source and got["scores"]["MSMARCO"] == pytest.approx(expected.msmarco)
    assert set(got) == {"source", "revision", "scores"} and got["revision"]
    assert rows["HuggingFaceTB/SmolLM2-135M-Instruct"]["reference"] is None


def test_the_leaderboard_page_says_when_measured_and_published_rankings_disagree(
    db_path: str, tmp_path: Path, standin: InferenceStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real runs (API-backed; the inference stand-in's vectors differ by model) of models MTEB scored."""
    from hfops import worker
    from hfops.config import load_settings
    from hfops.evals import runs

    config = tmp_path / "hfops.toml"
    config.write_text(f'[inference]\nbase_url = "{standin.url}"\n')
    monkeypatch.setenv("HUGGINGFACE_API_KEY", "hf_published_scores_test_key")
    settings = load_settings(config, **{"store.path": db_path})
    models = ["BAAI/bge-base-en-v1.5", "intfloat/e5-large", "BAAI/bge-small-en", "intfloat/e5-base-v2"]
    for model in models:
        made = runs.submit_run(
            db_path, model, "retrieval", "ms_marco", 8, settings, enqueue=False, config_path=str(config)
        )
        worker.execute_job(db_path, made["job_id"])
    at = open_console(db_path, monkeypatch, "pages/leaderboard.py", timeout=60)
    at.selectbox(key="board_task").set_value("retrieval").run()
    at.selectbox(key="board_dataset").set_value("ms_marco").run()
    assert not at.exception, [e.value for e in at.exception]
    board = next(f.value for f in at.dataframe if board_view.PUBLISHED_COLUMN in f.value.columns)
    assert set(models) <= set(board["model_id"])
    expected = board_view.ranking_notice(board, "retrieval", "ms_marco")
    shown = board[["model_id", "ndcg@10", board_view.PUBLISHED_COLUMN]].to_dict("list")
    assert expected is not None, f"these runs agree with MTEB everywhere; pick other models: {shown}"
    assert expected in [unescape(w.value) for w in at.warning]


def unescape(text: str) -> str:
    """Markdown escapes removed (the page shows text through ``plain``)."""
    return re.sub(r"\\(.)", r"\1", text)
