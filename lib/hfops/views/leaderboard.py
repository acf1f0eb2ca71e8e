"""View model of the Leaderboard page: every model evaluated on a task and dataset; the audited promote."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import sqlite_utils

from hfops import registry
from hfops.errors import RegistryError
from hfops.evals import custom, runs, tasks
from hfops.evals.stats import metric_names, primary_metric

TRAILING_COLUMNS = ["runs", "latest_run", "examples", "recommendation", "dataset_version", "evaluated_at"]


def dataset_options(db: sqlite_utils.Database, task: str) -> list[str]:
    """The datasets of ``task``: the built-in ones, then the stored custom sets."""
    return custom.dataset_choices(db, task)


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
    """Evaluated registry models the registry allows to promote (not baselines, models outside the registry,
    promoted, rejected or retired ones)."""
    allowed = [status for status, moves in registry.TRANSITIONS.items() if "promoted" in moves]
    return frame[frame["status"].isin(allowed)]


def promote(db: sqlite_utils.Database, frame: pd.DataFrame, model_id: str, reason: str) -> str:
    """Promote ``model_id`` (audited: the reason is required, the evidence is its latest run on this board);
    what happened, for the operator (unescaped)."""
    run_id = int(frame.loc[frame["model_id"] == model_id, "latest_run"].iloc[0])
    result = registry.set_status(
        db, model_id, "promoted", reason, actor="console", evidence=f"eval_run:{run_id}"
    )
    demoted = f"; {', '.join(result['demoted'])} moved to shadow" if result["demoted"] else ""
    return f"{model_id} promoted (was {result['from']}){demoted}."


# --- what is production, warnings, rollback -----------------------------------------------------------------

PRODUCTION_MARK = "★ production"
PRODUCTION_BASELINE_MARK = "★ production (baseline)"
PROMOTABLE_BACK = ("candidate", "evaluating", "shadow")  # statuses a rollback may promote again


@dataclass
class Production:
    """What serves a task now: the promoted model, or the task's baseline when none is promoted."""

    task: str
    model_id: str
    promoted: bool
    since: str | None = None
    evidence: str | None = None
    previous: str | None = None  # what a rollback puts back (None: the baseline)

    @property
    def summary(self) -> str:
        if not self.promoted:
            return f"Production for {self.task}: no model is promoted, the baseline {self.model_id} serves."
        evidence = f", evidence {self.evidence}" if self.evidence else ""
        return f"Production for {self.task}: {self.model_id} (promoted {self.since or '?'}{evidence})."

    @property
    def rollback_label(self) -> str:
        back = self.previous or f"the baseline {tasks.baseline_of(self.task)}"
        return f"Roll back: {back} back in production"


def _task_models_sql(task: str) -> tuple[str, list[str]]:
    tags = list(tasks.task_spec(task).pipeline_tags)
    return f"m.pipeline_tag IN ({', '.join('?' for _ in tags)})", tags


def production(db: sqlite_utils.Database, task: str) -> Production:
    """The production model of ``task`` (its promotion's time and evidence) and what a rollback restores:
    the last model of the task promoted before it that may be promoted again."""
    current = registry.production_model(db, task)
    if current is None:
        return Production(task, tasks.baseline_of(task), promoted=False)
    promoted_at = db.execute(
        "SELECT id, at, evidence FROM status_transitions WHERE model_id = ? AND to_status = 'promoted' "
        "ORDER BY id DESC LIMIT 1",
        [current],
    ).fetchone()
    since_id = promoted_at[0] if promoted_at else None
    same_task, tags = _task_models_sql(task)
    earlier = db.execute(
        "SELECT t.model_id FROM status_transitions t JOIN models m ON m.model_id = t.model_id "
        "JOIN candidates c ON c.model_id = t.model_id "
        f"WHERE t.to_status = 'promoted' AND t.model_id != ? AND {same_task} AND t.id < ? "
        f"AND c.status IN ({', '.join('?' for _ in PROMOTABLE_BACK)}) ORDER BY t.id DESC LIMIT 1",
        [current, *tags, since_id if since_id is not None else 2**62, *PROMOTABLE_BACK],
    ).fetchone()
    return Production(
        task,
        current,
        promoted=True,
        since=promoted_at[1] if promoted_at else None,
        evidence=promoted_at[2] if promoted_at else None,
        previous=earlier[0] if earlier else None,
    )


def mark_production(frame: pd.DataFrame, prod: Production) -> pd.DataFrame:
    """The board with a ``production`` column marking what serves the task now (first column after the id)."""
    mark = PRODUCTION_MARK if prod.promoted else PRODUCTION_BASELINE_MARK
    marked = frame.copy()
    marked.insert(1, "production", [mark if m == prod.model_id else "" for m in marked["model_id"]])
    return marked.rename(columns={"role": "side in latest run"})


def warnings(frame: pd.DataFrame, prod: Production) -> list[str]:
    """What an operator must not miss.

    Rejected latest runs, and a production model that lost its latest run.
    """
    out = []
    for row in frame.to_dict("records"):
        if row.get("recommendation") != "reject":
            continue
        if row["model_id"] == prod.model_id:
            out.append(
                f"The production model {row['model_id']} was rejected by its latest run {row['latest_run']}: "
                "consider rolling back."
            )
        else:
            out.append(
                f"{row['model_id']} was rejected by its latest run {row['latest_run']} "
                f"(status {row['status']}); production is still {prod.model_id}."
            )
    return out


def rollback(db: sqlite_utils.Database, task: str, reason: str = "") -> str:
    """Put the previous production model of ``task`` back (or the baseline, by demoting the current one to
    shadow), audited with actor ``console``; what happened, for the operator."""
    prod = production(db, task)
    if not prod.promoted:
        raise RegistryError(f"nothing to roll back: no model is promoted for {task}")
    why = reason.strip() or "one-click rollback from the Leaderboard"
    evidence = f"rollback:{prod.model_id}"
    if prod.previous:
        registry.set_status(
            db, prod.previous, "promoted", f"{why} (was {prod.model_id})", actor="console", evidence=evidence
        )
        return f"Rolled back {task}: {prod.previous} is production again; {prod.model_id} moved to shadow."
    registry.set_status(
        db, prod.model_id, "shadow", f"{why}: the baseline serves again", actor="console", evidence=evidence
    )
    return (
        f"Rolled back {task}: {prod.model_id} moved to shadow; the baseline {tasks.baseline_of(task)} serves."
    )


PUBLISHED_COLUMN = "published MTEB MSMARCO nDCG@10"  # the published number, never in our metric columns


def with_published(db: sqlite_utils.Database, frame: pd.DataFrame, task: str) -> pd.DataFrame:
    """Retrieval boards get the published MTEB MSMARCO nDCG@10 as a column of its own (empty when none)."""
    if frame.empty or task != "retrieval":
        return frame
    from hfops import reference

    published = reference.published_retrieval_scores(reference.references_for_models(db, frame["model_id"]))
    return frame.assign(**{PUBLISHED_COLUMN: frame["model_id"].map(published)})


def ranking_notice(frame: pd.DataFrame, task: str, dataset: str) -> str | None:
    """Where our measured and the published ranking of two models disagree, say so plainly (or None)."""
    if (
        task != "retrieval"
        or dataset != "ms_marco"
        or PUBLISHED_COLUMN not in frame
        or "ndcg@10" not in frame
    ):
        return None
    from hfops import reference

    both = frame.dropna(subset=["ndcg@10", PUBLISHED_COLUMN])
    measured = dict(zip(both["model_id"], both["ndcg@10"].astype(float), strict=True))
    published = dict(zip(both["model_id"], both[PUBLISHED_COLUMN].astype(float), strict=True))
    queries = (
        int(both["examples"].max()) if "examples" in both and not both["examples"].isna().all() else None
    )
    return reference.disagreement_notice(measured, published, queries=queries)
