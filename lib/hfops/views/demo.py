"""View model of the Demo page: the passage search, guided refinement samples and the leaderboard snapshot
(the logic is :mod:`hfops.demo`'s; this module shapes it for the page)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlite_utils

from hfops import demo
from hfops.config import Settings

BOARD_COLUMNS = (
    "model_id",
    "status",
    "role",
    "{metric}",
    "{metric} CI",
    "examples",
    "recommendation",
    "evaluated_at",
)

PassageSearch = demo.PassageSearch


LOADING_NOTE = (
    "MiniLM is loading in the background (BM25 answers meanwhile); its ranking appears here when ready."
)


def passage_search(settings: Settings) -> demo.PassageSearch:
    """The MiniLM + BM25 index over the shipped SQuAD v2 paragraphs (one per process; BM25 ready at once)."""
    return demo.shared_search(settings)


def search_caption(search: demo.PassageSearch) -> str:
    return (
        f"{search.paragraphs} SQuAD v2 paragraphs (dev sample, CC BY-SA 4.0) ranked for your question by "
        f"`{search.model_ids['MiniLM']}` (packaged, local) and by BM25. ✓ marks the paragraph a dataset "
        "question was written from."
    )


def unavailable_note(search: demo.PassageSearch) -> str:
    """Why a system has no ranking: still loading, or the reason it failed."""
    return LOADING_NOTE if search.dense_loading else f"MiniLM is unavailable: {search.dense_error}"


def guided_samples() -> dict[str, dict[str, Any]]:
    """The guided refinement samples by query."""
    return {s["query"]: s for s in demo.guided_samples()}


def refine_sample(query: str, settings: Settings) -> dict[str, Any]:
    return demo.refine_sample(query, settings)


@dataclass
class Board:
    """One task/dataset of the leaderboard snapshot."""

    key: str
    heading: str
    frame: pd.DataFrame


def boards(db: sqlite_utils.Database) -> list[Board]:
    """Every task/dataset with succeeded runs: the latest run per model, the primary metric's columns."""
    out = []
    for board in demo.leaderboard_snapshot(db):
        metric = board["primary"]
        frame = pd.DataFrame(board["rows"])
        wanted = [c.format(metric=metric) for c in BOARD_COLUMNS]
        out.append(
            Board(
                key=f"{board['task']}_{board['dataset']}",
                heading=f"**{board['task']} · {board['dataset']}** — primary metric {metric}, "
                "latest succeeded run per model",
                frame=frame[[c for c in wanted if c in frame.columns]],
            )
        )
    return out
