"""Reads of eval runs for the console, the CLI, observability and publishing: typed records, no writes."""

from __future__ import annotations

import sqlite_utils

from hfops.errors import EvalError
from hfops.evals.records import (
    EvalExample,
    EvalMetric,
    EvalRun,
    LatestScore,
    LeaderboardEntry,
    MetricValue,
    RunSummary,
)
from hfops.evals.tasks import primary_metric
from hfops.store import one, rows

BASELINE_PREFIX = "baseline:"


def candidate_status(db: sqlite_utils.Database, model_id: str) -> str | None:
    """The registry status of ``model_id``, or None when it is not a candidate."""
    found = one(db, "SELECT status FROM candidates WHERE model_id = ?", [model_id])
    return str(found["status"]) if found else None


def run_metrics(db: sqlite_utils.Database, run_id: int) -> list[EvalMetric]:
    """The metric rows of a run, in the order they were stored."""
    return [
        EvalMetric.from_row(r)
        for r in rows(db, "SELECT * FROM eval_metrics WHERE run_id = ? ORDER BY rowid", [run_id])
    ]


def get_run(db: sqlite_utils.Database, run_id: int) -> EvalRun | None:
    """One run with decoded JSON columns and its metric rows, or None."""
    found = one(db, "SELECT * FROM eval_runs WHERE id = ?", [run_id])
    return EvalRun.from_row(found, run_metrics(db, run_id)) if found else None


def summary(db: sqlite_utils.Database, run_id: int) -> RunSummary:
    """The headline of a run (what the job returns and the CLI prints).

    :class:`EvalError` when there is none.
    """
    run = get_run(db, run_id)
    if run is None:
        raise EvalError(f"no eval run {run_id}")
    return RunSummary.of(run)


def list_runs(
    db: sqlite_utils.Database,
    limit: int = 50,
    model_id: str | None = None,
    task: str | None = None,
    dataset: str | None = None,
    status: str | None = None,
) -> list[EvalRun]:
    """Most recent runs first, optionally filtered (without their metric rows)."""
    clauses, params = [], []
    for column, value in (("model_id", model_id), ("task", task), ("dataset", dataset), ("status", status)):
        if value:
            clauses.append(f"{column} = ?")
            params.append(value)
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    found = rows(db, f"SELECT * FROM eval_runs{where} ORDER BY id DESC LIMIT ?", [*params, limit])
    return [EvalRun.from_row(r) for r in found]


def run_for_job(db: sqlite_utils.Database, job_id: int) -> EvalRun | None:
    """The eval run executed by job ``job_id`` (for progress on the console)."""
    found = one(db, "SELECT id FROM eval_runs WHERE job_id = ? ORDER BY id DESC LIMIT 1", [job_id])
    return get_run(db, int(found["id"])) if found else None


def run_examples(
    db: sqlite_utils.Database, run_id: int, disagreements_only: bool = False, limit: int = 500
) -> list[EvalExample]:
    """Per-example rows of a run, decoded; ``disagreements_only`` keeps examples where the two systems
    score differently (or one failed), largest |delta| first."""
    where = "run_id = ?"
    order = "position"
    if disagreements_only:
        where += (
            " AND (ABS(delta) > 1e-9 OR (candidate_error IS NULL) != (production_error IS NULL) "
            "OR candidate_output != production_output)"
        )
        order = "ABS(delta) DESC, position"
    found = rows(db, f"SELECT * FROM eval_examples WHERE {where} ORDER BY {order} LIMIT ?", [run_id, limit])
    return [EvalExample.from_row(r) for r in found]


def latest_version(db: sqlite_utils.Database, task: str, dataset: str) -> str | None:
    """The dataset version of the newest succeeded run on ``task``/``dataset``, or None."""
    found = one(
        db,
        "SELECT dataset_version FROM eval_runs WHERE task = ? AND dataset = ? AND status = 'succeeded' "
        "ORDER BY id DESC LIMIT 1",
        [task, dataset],
    )
    return str(found["dataset_version"]) if found else None


def leaderboard_entries(
    db: sqlite_utils.Database, task: str, dataset: str, version: str | None = None
) -> list[LeaderboardEntry]:
    """Every model evaluated on ``task``/``dataset`` (as candidate or production) with the metrics of its
    latest succeeded run on one dataset version (``version``, default: that of the newest succeeded run, so
    runs on different versions are never ranked together), best primary score first."""
    version = version or latest_version(db, task, dataset)
    latest = rows(
        db,
        "SELECT em.model_id, MAX(em.run_id) AS run_id "
        "FROM eval_metrics em JOIN eval_runs r ON r.id = em.run_id "
        "WHERE r.task = ? AND r.dataset = ? AND r.dataset_version = ? AND r.status = 'succeeded' "
        "AND em.system != 'delta' GROUP BY em.model_id",
        [task, dataset, version],
    )
    board = []
    for entry in latest:
        model_id, run_id = str(entry["model_id"]), int(entry["run_id"])
        metrics = rows(
            db,
            "SELECT metric, value, ci_low, ci_high, n FROM eval_metrics WHERE run_id = ? AND model_id = ? "
            "AND system != 'delta'",
            [run_id, model_id],
        )
        run = one(db, "SELECT * FROM eval_runs WHERE id = ?", [run_id]) or {}
        count = db.execute(
            "SELECT COUNT(*) FROM eval_runs WHERE status = 'succeeded' AND task = ? AND dataset = ? "
            "AND dataset_version = ? AND (model_id = ? OR production_id = ?)",
            [task, dataset, version, model_id, model_id],
        ).fetchone()[0]
        is_candidate = run.get("model_id") == model_id
        board.append(
            LeaderboardEntry(
                model_id=model_id,
                status=candidate_status(db, model_id)
                or ("baseline" if model_id.startswith(BASELINE_PREFIX) else "not in registry"),
                role="candidate" if is_candidate else "production",
                runs=int(count),
                latest_run=run_id,
                dataset_version=run.get("dataset_version"),
                examples=run.get("total"),
                recommendation=run.get("recommendation") if is_candidate else None,
                evaluated_at=run.get("finished_at"),
                metrics={
                    str(m["metric"]): MetricValue(m["value"], m["ci_low"], m["ci_high"], int(m["n"]))
                    for m in metrics
                },
            )
        )
    primary = primary_metric(task, dataset)

    def rank(entry: LeaderboardEntry) -> tuple[float, str]:
        score = entry.score(primary)
        return (-(score if score is not None else float("-inf")), entry.model_id)

    return sorted(board, key=rank)


def leaderboard(
    db: sqlite_utils.Database, task: str, dataset: str, version: str | None = None
) -> list[dict[str, object]]:
    """:func:`leaderboard_entries` as flat table rows (``<metric>`` and ``<metric> CI`` columns)."""
    return [entry.to_row() for entry in leaderboard_entries(db, task, dataset, version)]


def latest_scores(db: sqlite_utils.Database) -> list[LatestScore]:
    """Latest value of every (model, task, dataset, metric) from succeeded runs (for observability)."""
    found = rows(
        db,
        "SELECT em.model_id, r.task, r.dataset, em.metric, em.value, em.ci_low, em.ci_high, em.run_id, "
        "r.finished_at "
        "FROM eval_metrics em JOIN eval_runs r ON r.id = em.run_id "
        "WHERE r.status = 'succeeded' AND em.system != 'delta' AND em.run_id = ("
        "  SELECT MAX(em2.run_id) FROM eval_metrics em2 JOIN eval_runs r2 ON r2.id = em2.run_id "
        "  WHERE em2.model_id = em.model_id AND em2.metric = em.metric AND r2.task = r.task "
        "  AND r2.dataset = r.dataset AND r2.status = 'succeeded' AND em2.system != 'delta') "
        "ORDER BY em.model_id, r.task, r.dataset, em.metric",
    )
    return [LatestScore.from_row(r) for r in found]
