"""SQL aggregates over the store, shared by the Prometheus collector and the Observability page.

Everything is read from durable rows written by every process (discovery, eval runs, the refine call
log), so numbers survive restarts and count all writers. Queries are aggregates; the only table that
grows without bound (``refine_calls``) is read by id range (the collector folds in new rows only,
see :class:`hfops.observability.collector.RefineTally`) or by the indexed ``created_at`` (the page).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from hfops.evals import tasks
from hfops.observability.thresholds import (
    EVAL_RUN_END_STATUSES,
    INFERENCE_OUTCOMES,
    LATENCY_BUCKETS_MS,
    OPEN_CANDIDATE_STATUSES,
    RATE_LIMIT_REASONS,
    SYNC_END_STATUSES,
    eval_datasets,
)
from hfops.store import parse_ts, rows

UNKNOWN = "none"  # label value for a missing pipeline tag / licence


def epoch_sql(column: str) -> str:
    """SQL for the Unix time (seconds, float) of an ISO-8601 ``...Z`` column (NULL stays NULL)."""
    return f"((julianday({column}) - 2440587.5) * 86400.0)"


# --- histograms ---------------------------------------------------------------------------------------------


@dataclass
class Histogram:
    """A cumulative histogram over :data:`LATENCY_BUCKETS_MS` (counts of observations <= each bound)."""

    cumulative: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS_MS))
    count: int = 0
    sum_ms: float = 0.0

    def add(self, other: Histogram) -> None:
        self.cumulative = [a + b for a, b in zip(self.cumulative, other.cumulative, strict=True)]
        self.count += other.count
        self.sum_ms += other.sum_ms

    def buckets(self) -> list[tuple[float, int]]:
        """``(upper bound in seconds, cumulative count)``, ending with ``(inf, count)``."""
        return [(ms / 1000, n) for ms, n in zip(LATENCY_BUCKETS_MS, self.cumulative, strict=True)] + [
            (math.inf, self.count)
        ]

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile in seconds, interpolated exactly like PromQL's ``histogram_quantile``."""
        return histogram_quantile(q, self.buckets())


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """PromQL ``histogram_quantile`` over cumulative ``(le, count)`` buckets (last le = +Inf).

    None if empty.
    """
    if not buckets or buckets[-1][1] <= 0 or math.isnan(q):
        return None
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    total = buckets[-1][1]
    rank = q * total
    index = next(i for i, (_, count) in enumerate(buckets) if count >= rank)
    if index == len(buckets) - 1:
        return buckets[-2][0] if len(buckets) > 1 else None
    if index == 0 and buckets[0][0] <= 0:
        return buckets[0][0]
    start, below = (0.0, 0.0) if index == 0 else buckets[index - 1]
    end, count = buckets[index]
    in_bucket = count - below
    return start + (end - start) * ((rank - below) / in_bucket) if in_bucket else end


# --- refine call log ----------------------------------------------------------------------------------------


@dataclass
class RefineTotals:
    """Refine calls folded into latency histograms and HF Inference counters."""

    latency: dict[str, Histogram] = field(default_factory=dict)  # end to end, by source (local | hf)
    hf_api: Histogram = field(default_factory=Histogram)  # wait for the HF answer (requests sent only)
    requests: Counter[str] = field(default_factory=Counter)  # HF requests sent, by outcome
    rate_limited: Counter[str] = field(default_factory=Counter)  # by RATE_LIMIT_REASONS
    attempts: int = 0  # wanted HF requests: sent + refused by the limiter or a cooldown
    calls: int = 0

    def add(self, other: RefineTotals) -> None:
        for source, hist in other.latency.items():
            self.latency.setdefault(source, Histogram()).add(hist)
        self.hf_api.add(other.hf_api)
        self.requests.update(other.requests)
        self.rate_limited.update(other.rate_limited)
        self.attempts += other.attempts
        self.calls += other.calls

    def all_latency(self) -> Histogram:
        """End-to-end latency over every source."""
        total = Histogram()
        for hist in self.latency.values():
            total.add(hist)
        return total

    def success_rate(self) -> float | None:
        sent = sum(self.requests.values())
        return self.requests["ok"] / sent if sent else None

    def rate_limited_share(self) -> float | None:
        return sum(self.rate_limited.values()) / self.attempts if self.attempts else None


def _bucket_columns(column: str, condition: str = "") -> str:
    guard = f"{condition} AND " if condition else ""
    return ", ".join(f"SUM(CASE WHEN {guard}{column} <= {ms} THEN 1 ELSE 0 END)" for ms in LATENCY_BUCKETS_MS)


def refine_totals(
    db: sqlite_utils.Database, where: str, params: list[Any], group: str | None = None
) -> dict[Any, RefineTotals]:
    """Refine calls matching ``where`` folded into :class:`RefineTotals`, one per value of SQL ``group``."""
    n_buckets = len(LATENCY_BUCKETS_MS)
    requested = "hf_requested = 1 AND hf_latency_ms IS NOT NULL"
    sql = (
        f"SELECT {group or 'NULL'} AS g, source, hf_requested, outcome, bypass_reason, COUNT(*), "
        "SUM(latency_ms), "
        f"{_bucket_columns('latency_ms')}, "
        f"SUM(CASE WHEN {requested} THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN {requested} THEN hf_latency_ms ELSE 0 END), "
        f"{_bucket_columns('hf_latency_ms', requested)} "
        f"FROM refine_calls WHERE {where} GROUP BY g, source, hf_requested, outcome, bypass_reason"
    )
    out: dict[Any, RefineTotals] = {}
    for row in db.execute(sql, params).fetchall():
        key, source, hf_requested, outcome, bypass = row[:5]
        n, latency_sum = int(row[5]), float(row[6] or 0.0)
        buckets = [int(v or 0) for v in row[7 : 7 + n_buckets]]
        hf_n, hf_sum = int(row[7 + n_buckets] or 0), float(row[8 + n_buckets] or 0.0)
        hf_buckets = [int(v or 0) for v in row[9 + n_buckets : 9 + 2 * n_buckets]]
        totals = out.setdefault(key, RefineTotals())
        totals.calls += n
        totals.latency.setdefault(source, Histogram()).add(Histogram(buckets, n, latency_sum))
        totals.hf_api.add(Histogram(hf_buckets, hf_n, hf_sum))
        if hf_requested:
            totals.requests[outcome] += n
            totals.attempts += n
            if outcome == "rate_limited":
                totals.rate_limited["hub_429"] += n
        elif bypass == "rate_limited":
            totals.rate_limited["limiter"] += n
            totals.attempts += n
        elif bypass == "cooldown":
            totals.rate_limited["cooldown"] += n
            totals.attempts += n
    return out


def max_refine_id(db: sqlite_utils.Database) -> int:
    """The highest committed refine call id (0 when none)."""
    return int(db.execute("SELECT COALESCE(MAX(id), 0) FROM refine_calls").fetchone()[0])


# --- registry, evals, sync ----------------------------------------------------------------------------------


def candidates_found(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Candidates by ``pipeline_tag``, ``license`` and ``status`` (``n``)."""
    return rows(
        db,
        f"SELECT COALESCE(NULLIF(m.pipeline_tag, ''), '{UNKNOWN}') AS pipeline_tag, "
        f"COALESCE(NULLIF(m.license, ''), '{UNKNOWN}') AS license, c.status, COUNT(*) AS n "
        "FROM candidates c JOIN models m ON m.model_id = c.model_id GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    )


def open_candidates(found: list[dict[str, Any]]) -> int:
    """How many candidates are still open (candidate, evaluating, shadow)."""
    return sum(r["n"] for r in found if r["status"] in OPEN_CANDIDATE_STATUSES)


def models_discovered(db: sqlite_utils.Database) -> int:
    """Every model ever stored by discovery (rows are never deleted)."""
    return int(db.execute("SELECT COUNT(*) FROM models").fetchone()[0])


def custom_sets(db: sqlite_utils.Database) -> list[tuple[str, str]]:
    """The registered custom eval sets as ``(task, name)``."""
    from hfops.evals import custom

    return [(s.task, s.name) for s in custom.list_sets(db)]


def datasets(db: sqlite_utils.Database) -> tuple[str, ...]:
    """Every dataset runs can use: the task table's, then the registered custom sets."""
    return eval_datasets(name for _, name in custom_sets(db))


def eval_run_counts(db: sqlite_utils.Database) -> dict[tuple[str, str], int]:
    """Eval runs by ``(dataset, status)``; every known dataset (built-in or custom) x end status is present
    (zeros included)."""
    counts = {(d, s): 0 for d in datasets(db) for s in EVAL_RUN_END_STATUSES}
    for dataset, status, n in db.execute("SELECT dataset, status, COUNT(*) FROM eval_runs GROUP BY 1, 2"):
        counts[(dataset, status)] = int(n)
    return counts


def last_eval_run_end(db: sqlite_utils.Database) -> float | None:
    """Unix time the most recent eval run ended (succeeded or failed), or None."""
    found = db.execute(
        "SELECT finished_at FROM eval_runs "
        "WHERE status IN ('succeeded', 'failed') AND finished_at IS NOT NULL "
        "ORDER BY julianday(finished_at) DESC LIMIT 1"
    ).fetchone()
    return _epoch(found[0]) if found else None


def store_created(db: sqlite_utils.Database) -> float | None:
    """Unix time the store was created (its first migration), or None."""
    found = db.execute("SELECT MIN(applied_at) FROM schema_migrations").fetchone()
    return _epoch(found[0]) if found else None


def _epoch(value: str | None) -> float | None:
    moment = parse_ts(value)
    return None if moment is None else moment.timestamp()


def score_scale(task: str) -> float:
    """Divide stored values by this to get 0-1 (QA metrics are stored 0-100, retrieval metrics 0-1)."""
    spec = tasks.TASK_SPECS.get(task)
    return spec.score_scale if spec is not None else 1.0


def latest_scores(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """For each (model, task, dataset): its metrics (0-1) from the latest succeeded run it took part in,
    as the candidate or as the production side (so baselines and promoted models have scores too)."""
    found = rows(
        db,
        "WITH roles AS ("
        " SELECT id AS run_id, model_id AS model, 'candidate' AS system, task, dataset, finished_at"
        " FROM eval_runs WHERE status = 'succeeded'"
        " UNION ALL SELECT id, production_id, 'production', task, dataset, finished_at"
        " FROM eval_runs WHERE status = 'succeeded'),"
        " ranked AS (SELECT *, ROW_NUMBER() OVER (PARTITION BY model, task, dataset"
        " ORDER BY julianday(finished_at) DESC, run_id DESC) AS rn FROM roles)"
        " SELECT r.model, r.task, r.dataset, r.run_id, r.system, r.finished_at, m.metric, m.value"
        " FROM ranked r JOIN eval_metrics m ON m.run_id = r.run_id AND m.system = r.system"
        " WHERE r.rn = 1 AND m.value IS NOT NULL ORDER BY r.task, r.dataset, r.model, m.metric",
    )
    for row in found:
        row["value"] = float(row["value"]) / score_scale(row["task"])
    return found


@dataclass(frozen=True)
class Serving:
    """What serves a task: a promoted model, or the task's baseline when nobody promoted one."""

    task: str
    model: str
    promoted: bool

    @property
    def role(self) -> str:
        return "promoted" if self.promoted else "baseline"


def serving(db: sqlite_utils.Database) -> dict[str, Serving]:
    """What serves each task of the task table."""
    from hfops import registry

    out = {}
    for task, spec in tasks.TASK_SPECS.items():
        promoted = registry.production_model(db, task)
        out[task] = Serving(task, promoted or spec.baseline, promoted is not None)
    return out


def production_models(db: sqlite_utils.Database) -> dict[str, str]:
    """The model serving each task: the promoted one, else the task's baseline."""
    return {task: s.model for task, s in serving(db).items()}


@dataclass
class SyncHealth:
    """Hub sync health: last success, its duration, run and error counts."""

    last_success: float | None  # Unix time the last successful sync finished
    last_duration: float | None  # seconds
    runs: dict[str, int]  # by end status (zeros included)
    errors: int  # error messages recorded over all runs


def sync_health(db: sqlite_utils.Database) -> SyncHealth:
    """Sync health from ``sync_runs``."""
    runs = dict.fromkeys(SYNC_END_STATUSES, 0)
    errors = 0
    for status, n, errs in db.execute(
        "SELECT status, COUNT(*), "
        "SUM(CASE WHEN json_valid(errors) THEN json_array_length(errors) ELSE 0 END) "
        "FROM sync_runs GROUP BY status"
    ):
        errors += int(errs or 0)
        if status in runs:
            runs[status] = int(n)
    last = db.execute(
        "SELECT started_at, finished_at FROM sync_runs "
        "WHERE status = 'succeeded' AND finished_at IS NOT NULL "
        "ORDER BY julianday(finished_at) DESC, id DESC LIMIT 1"
    ).fetchone()
    started, finished = (_epoch(last[0]), _epoch(last[1])) if last else (None, None)
    return SyncHealth(
        last_success=finished,
        last_duration=max(0.0, finished - started) if finished is not None and started is not None else None,
        runs=runs,
        errors=errors,
    )


def inference_outcomes(totals: RefineTotals) -> dict[str, int]:
    """Requests by outcome with every known outcome present (zeros included)."""
    out = dict.fromkeys(INFERENCE_OUTCOMES, 0)
    out.update(totals.requests)
    return out


def rate_limit_reasons(totals: RefineTotals) -> dict[str, int]:
    """Rate-limited requests by reason with every reason present (zeros included)."""
    out = dict.fromkeys(RATE_LIMIT_REASONS, 0)
    out.update(totals.rate_limited)
    return out
