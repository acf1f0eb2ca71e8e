"""Published MTEB scores beside our own: the candidate detail view shows them with their source and revision,
and a retrieval Leaderboard carries them as a column of their own (never mixed into our metric columns)."""

from __future__ import annotations

import pandas as pd
import pytest

from hfops.discovery import sync_snapshot
from hfops.paths import HUB_SNAPSHOT
from hfops.views import leaderboard as board_view
from tests.console_kit import open_console

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
