"""View model of the Leaderboard page: every model evaluated on a task and dataset; the audited promote."""

from __future__ import annotations

import pandas as pd
import sqlite_utils

from hfops import registry
from hfops.evals import runs
from hfops.evals.stats import metric_names, primary_metric

NOT_PROMOTABLE = ("baseline", "not in registry", "promoted")
TRAILING_COLUMNS = ["runs", "latest_run", "examples", "recommendation", "dataset_version", "evaluated_at"]


def metrics_of(task: str, dataset: str) -> list[str]:
    return list(metric_names(task, dataset))


def sort_options(task: str, dataset: str) -> list[str]:
    return [*metrics_of(task, dataset), "model_id", "runs", "evaluated_at"]


def board_caption(task: str, dataset: str) -> str:
    return (
        f"Latest succeeded run per model; primary metric {primary_metric(task, dataset)}; "
        "retrieval metrics 0-1, QA metrics 0-100; CIs are bootstrap 95%."
    )


def board_frame(db: sqlite_utils.Database, task: str, dataset: str) -> pd.DataFrame:
    """The leaderboard rows as a frame (metrics as columns, their CIs next to them)."""
    entries = runs.leaderboard(db, task, dataset)
    columns = [
        "model_id",
        "status",
        "role",
        *[c for m in metrics_of(task, dataset) for c in (m, f"{m} CI")],
        *TRAILING_COLUMNS,
    ]
    return pd.DataFrame(entries, columns=columns)


def sorted_board(frame: pd.DataFrame, sort_by: str, ascending: bool) -> pd.DataFrame:
    """The board sorted by one column (missing values last; ties keep their order)."""
    return frame.sort_values(sort_by, ascending=ascending, na_position="last", kind="stable").reset_index(
        drop=True
    )


def promotable(frame: pd.DataFrame) -> pd.DataFrame:
    """Evaluated registry models that can be promoted (baselines, models outside the registry and promoted
    models cannot)."""
    return frame[~frame["status"].isin(list(NOT_PROMOTABLE))]


def promote(db: sqlite_utils.Database, frame: pd.DataFrame, model_id: str, reason: str) -> str:
    """Promote ``model_id`` (audited: the reason is required, the evidence is its latest run on this board);
    what happened, for the operator (unescaped)."""
    run_id = int(frame.loc[frame["model_id"] == model_id, "latest_run"].iloc[0])
    result = registry.set_status(
        db, model_id, "promoted", reason, actor="console", evidence=f"eval_run:{run_id}"
    )
    demoted = f"; {', '.join(result['demoted'])} moved to shadow" if result["demoted"] else ""
    return f"{model_id} promoted (was {result['from']}){demoted}."
