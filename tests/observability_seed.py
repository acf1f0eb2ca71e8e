"""A store seeded with exact, known rows for the observability tests (plain SQL into the real tables).

:func:`seed` writes registry rows, eval runs with metrics, sync runs and refine calls relative to ``now``;
:data:`EXPECTED` holds the series values a scrape must report, and :data:`EXPECTED_STATES` the alert
states the page must compute, both worked out by hand from these rows (see the comments).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hfops.store import connect, write_tx
from tests.registry_rows import add_candidates, model_row

# Registry: 6 candidates (3 open: candidate, shadow, evaluating; org/emb-p and org/gen-a promoted, so both
# tasks have a promoted production model) and one model that is not a candidate.
CANDIDATES = [
    {
        "model_id": "org/emb-p",
        "pipeline_tag": "feature-extraction",
        "license": "apache-2.0",
        "status": "promoted",
    },
    {
        "model_id": "org/emb-a",
        "pipeline_tag": "feature-extraction",
        "license": "apache-2.0",
        "status": "candidate",
    },
    {
        "model_id": "org/emb-b",
        "pipeline_tag": "feature-extraction",
        "license": "apache-2.0",
        "status": "shadow",
    },
    {"model_id": "org/emb-c", "pipeline_tag": "sentence-similarity", "license": "mit", "status": "rejected"},
    {
        "model_id": "org/gen-a",
        "pipeline_tag": "text-generation",
        "license": "apache-2.0",
        "status": "promoted",
    },
    {"model_id": "org/gen-b", "pipeline_tag": "text-generation", "license": None, "status": "evaluating"},
]

# Eval runs: (id, candidate, production, task, dataset, status, finished hours ago, candidate metrics,
# production metrics). QA metrics are stored 0-100 like the eval module stores them.
RUNS: list[tuple[Any, ...]] = [
    (
        1,
        "org/emb-a",
        "org/emb-p",
        "retrieval",
        "ms_marco",
        "succeeded",
        30,
        {"ndcg@10": 0.62, "mrr@10": 0.5},
        {"ndcg@10": 0.55, "mrr@10": 0.45},
    ),
    (
        2,
        "org/emb-b",
        "org/emb-p",
        "retrieval",
        "ms_marco",
        "succeeded",
        2,
        {"ndcg@10": 0.81},
        {"ndcg@10": 0.56},
    ),
    (
        3,
        "org/gen-b",
        "org/gen-a",
        "qa",
        "squad_v2",
        "succeeded",
        3,
        {"f1": 55.0, "exact": 40.0},
        {"f1": 72.0},
    ),
    (4, "org/gen-b", "org/gen-a", "qa", "ms_marco", "failed", 1, {}, {}),
    (5, "org/emb-a", "org/emb-p", "retrieval", "squad_v2", "running", None, {}, {}),
    (6, "org/emb-b", "org/emb-p", "retrieval", "squad_v2", "queued", None, {}, {}),
]

# Refine calls: (source, latency_ms, outcome, bypass_reason, hf_requested, hf_latency_ms, minutes ago).
CALLS: list[tuple[Any, ...]] = [
    ("local", 12.0, "skipped", None, 0, None, 5),
    ("local", 18.0, "skipped", "no_key", 0, None, 5),
    ("hf", 420.0, "ok", None, 1, 400.0, 4),
    ("hf", 650.0, "ok", None, 1, 610.0, 4),
    ("local", 530.0, "timeout", "timeout", 1, 500.0, 3),
    ("local", 40.0, "rate_limited", "rate_limited", 1, 30.0, 3),  # the server answered 429
    ("local", 15.0, "skipped", "rate_limited", 0, None, 2),  # our shared limiter had no permit
    ("local", 14.0, "skipped", "cooldown", 0, None, 2),
    ("local", 900.0, "http_error", "http_error", 1, 480.0, 120),
    ("local", 8.0, "skipped", None, 0, None, 120),
]

# Sync runs: (status, started hours ago, duration seconds, errors).
SYNCS: list[tuple[Any, ...]] = [
    ("succeeded", 50, 30.0, ["skipped a: bad record"]),
    ("failed", 10, 5.0, ["page 3 failed", "gave up"]),
    ("succeeded", 3, 12.5, []),
]


def ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def seed(db_path: str, now: datetime | None = None) -> datetime:
    """Write the rows above into a fresh store at ``db_path``; return the ``now`` they are relative to."""
    now = now or datetime.now(UTC)
    add_candidates(db_path, [dict(c) for c in CANDIDATES])
    db = connect(db_path)
    with write_tx(db):
        db["models"].insert(model_row("org/not-a-candidate", matches_rule=0))
        for run_id, model, production, task, dataset, status, hours, cand, prod in RUNS:
            finished = ts(now - timedelta(hours=hours)) if hours is not None else None
            started = ts(now - timedelta(hours=(hours or 0) + 0.5))
            db.execute(
                "INSERT INTO eval_runs (id, model_id, production_id, task, dataset, dataset_source, "
                "dataset_version, status, created_at, started_at, finished_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, 'local', 'v1', ?, ?, ?, ?, ?)",
                [
                    run_id,
                    model,
                    production,
                    task,
                    dataset,
                    status,
                    started,
                    started,
                    finished,
                    finished or started,
                ],
            )
            for system, system_model, values in (
                ("candidate", model, cand),
                ("production", production, prod),
            ):
                for metric, value in values.items():
                    db.execute(
                        "INSERT INTO eval_metrics (run_id, system, model_id, metric, value, n) "
                        "VALUES (?, ?, ?, ?, ?, 50)",
                        [run_id, system, system_model, metric, value],
                    )
            if "ndcg@10" in cand and "ndcg@10" in prod:
                db.execute(
                    "INSERT INTO eval_metrics (run_id, system, model_id, metric, value, n) "
                    "VALUES (?, 'delta', ?, 'ndcg@10', ?, 50)",
                    [run_id, model, cand["ndcg@10"] - prod["ndcg@10"]],
                )
        for status, hours, duration, errors in SYNCS:
            started = now - timedelta(hours=hours)
            db.execute(
                "INSERT INTO sync_runs (source, mode, started_at, finished_at, status, errors) "
                "VALUES (?, 'full', ?, ?, ?, ?)",
                [
                    "http://hub.test",
                    ts(started),
                    ts(started + timedelta(seconds=duration)),
                    status,
                    json.dumps(errors),
                ],
            )
    for call in CALLS:
        add_call(db, now, *call)
    db.conn.close()
    return now


def add_call(
    db: Any,
    now: datetime,
    source: str,
    latency_ms: float,
    outcome: str,
    bypass: str | None,
    hf_requested: int,
    hf_latency_ms: float | None,
    minutes_ago: float,
) -> None:
    """Insert one refine_calls row (the columns the router writes)."""
    with write_tx(db):
        db.execute(
            "INSERT INTO refine_calls (created_at, query_hash, query_chars, source, model, outcome, "
            "bypass_reason, hf_requested, latency_ms, hf_latency_ms, budget_ms, within_budget, caller) "
            "VALUES (?, 'h', 10, ?, 'm', ?, ?, ?, ?, ?, 800, ?, 'tests')",
            [
                ts(now - timedelta(minutes=minutes_ago)),
                source,
                outcome,
                bypass,
                hf_requested,
                latency_ms,
                hf_latency_ms,
                int(latency_ms <= 800),
            ],
        )


LOCAL_LATENCIES = [12, 18, 530, 40, 15, 14, 900, 8]
HF_LATENCIES = [420, 650]
HF_API_LATENCIES = [400, 610, 500, 30, 480]
BOUNDS = [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.5, 2.5, 5.0]


def cumulative(latencies_ms: list[float]) -> dict[str, float]:
    """Expected ``le -> count`` of a histogram over the latencies (by hand, independent of the collector)."""
    out = {repr(b): float(sum(1 for v in latencies_ms if v <= b * 1000 + 1e-9)) for b in BOUNDS}
    out["+Inf"] = float(len(latencies_ms))
    return out


# Series a scrape of the seeded store reports (timestamps excluded: they depend on ``now``).
EXPECTED: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {
    (
        "sarvanom_hf_candidates_found",
        (("license", "apache-2.0"), ("pipeline_tag", "feature-extraction"), ("status", "candidate")),
    ): 1,
    (
        "sarvanom_hf_candidates_found",
        (("license", "apache-2.0"), ("pipeline_tag", "feature-extraction"), ("status", "shadow")),
    ): 1,
    (
        "sarvanom_hf_candidates_found",
        (("license", "mit"), ("pipeline_tag", "sentence-similarity"), ("status", "rejected")),
    ): 1,
    (
        "sarvanom_hf_candidates_found",
        (("license", "apache-2.0"), ("pipeline_tag", "feature-extraction"), ("status", "promoted")),
    ): 1,
    (
        "sarvanom_hf_candidates_found",
        (("license", "apache-2.0"), ("pipeline_tag", "text-generation"), ("status", "promoted")),
    ): 1,
    (
        "sarvanom_hf_candidates_found",
        (("license", "none"), ("pipeline_tag", "text-generation"), ("status", "evaluating")),
    ): 1,
    ("sarvanom_hf_models_discovered_total", ()): 7,
    ("sarvanom_shadow_eval_runs_total", (("status", "succeeded"),)): 3,
    ("sarvanom_shadow_eval_runs_total", (("status", "failed"),)): 1,
    ("sarvanom_shadow_eval_runs_active", (("status", "queued"),)): 1,
    ("sarvanom_shadow_eval_runs_active", (("status", "running"),)): 1,
    ("sarvanom_hf_datasets_eval_total", (("dataset", "ms_marco"), ("status", "failed"))): 1,
    ("sarvanom_hf_datasets_eval_total", (("dataset", "ms_marco"), ("status", "succeeded"))): 2,
    ("sarvanom_hf_datasets_eval_total", (("dataset", "squad_v2"), ("status", "failed"))): 0,
    ("sarvanom_hf_datasets_eval_total", (("dataset", "squad_v2"), ("status", "succeeded"))): 1,
    # latest run per (model, task, dataset), either side; QA divided by 100; delta rows excluded
    (
        "sarvanom_hf_eval_scores",
        (("dataset", "ms_marco"), ("metric", "ndcg@10"), ("model", "org/emb-a"), ("task", "retrieval")),
    ): 0.62,
    (
        "sarvanom_hf_eval_scores",
        (("dataset", "ms_marco"), ("metric", "mrr@10"), ("model", "org/emb-a"), ("task", "retrieval")),
    ): 0.5,
    (
        "sarvanom_hf_eval_scores",
        (("dataset", "ms_marco"), ("metric", "ndcg@10"), ("model", "org/emb-b"), ("task", "retrieval")),
    ): 0.81,
    (
        "sarvanom_hf_eval_scores",
        (("dataset", "ms_marco"), ("metric", "ndcg@10"), ("model", "org/emb-p"), ("task", "retrieval")),
    ): 0.56,
    (
        "sarvanom_hf_eval_scores",
        (("dataset", "squad_v2"), ("metric", "f1"), ("model", "org/gen-b"), ("task", "qa")),
    ): 0.55,
    (
        "sarvanom_hf_eval_scores",
        (("dataset", "squad_v2"), ("metric", "exact"), ("model", "org/gen-b"), ("task", "qa")),
    ): 0.40,
    (
        "sarvanom_hf_eval_scores",
        (("dataset", "squad_v2"), ("metric", "f1"), ("model", "org/gen-a"), ("task", "qa")),
    ): 0.72,
    (
        "sarvanom_hf_production_model",
        (("model", "org/emb-p"), ("role", "promoted"), ("task", "retrieval")),
    ): 1,
    ("sarvanom_hf_production_model", (("model", "org/gen-a"), ("role", "promoted"), ("task", "qa"))): 1,
    **{
        ("sarvanom_refine_latency_seconds_bucket", (("le", le), ("source", "local"))): n
        for le, n in cumulative(LOCAL_LATENCIES).items()
    },
    ("sarvanom_refine_latency_seconds_count", (("source", "local"),)): 8,
    ("sarvanom_refine_latency_seconds_sum", (("source", "local"),)): 1.537,
    **{
        ("sarvanom_refine_latency_seconds_bucket", (("le", le), ("source", "hf"))): n
        for le, n in cumulative(HF_LATENCIES).items()
    },
    ("sarvanom_refine_latency_seconds_count", (("source", "hf"),)): 2,
    ("sarvanom_refine_latency_seconds_sum", (("source", "hf"),)): 1.07,
    **{
        ("sarvanom_refiner_latency_hf_api_seconds_bucket", (("le", le),)): n
        for le, n in cumulative(HF_API_LATENCIES).items()
    },
    ("sarvanom_refiner_latency_hf_api_seconds_count", ()): 5,
    ("sarvanom_refiner_latency_hf_api_seconds_sum", ()): 2.02,
    ("sarvanom_hf_inference_requests_total", (("outcome", "ok"),)): 2,
    ("sarvanom_hf_inference_requests_total", (("outcome", "timeout"),)): 1,
    ("sarvanom_hf_inference_requests_total", (("outcome", "rate_limited"),)): 1,
    ("sarvanom_hf_inference_requests_total", (("outcome", "credits_exhausted"),)): 0,
    ("sarvanom_hf_inference_requests_total", (("outcome", "http_error"),)): 1,
    ("sarvanom_hf_inference_requests_total", (("outcome", "invalid_output"),)): 0,
    ("sarvanom_hf_inference_attempts_total", ()): 7,
    ("sarvanom_hf_inference_rate_limited_total", (("reason", "hub_429"),)): 1,
    ("sarvanom_hf_inference_rate_limited_total", (("reason", "limiter"),)): 1,
    ("sarvanom_hf_inference_rate_limited_total", (("reason", "cooldown"),)): 1,
    ("sarvanom_hf_sync_last_duration_seconds", ()): 12.5,
    ("sarvanom_hf_sync_runs_total", (("status", "succeeded"),)): 2,
    ("sarvanom_hf_sync_runs_total", (("status", "failed"),)): 1,
    ("sarvanom_hf_sync_runs_total", (("status", "interrupted"),)): 0,
    ("sarvanom_hf_sync_runs_total", (("status", "partial"),)): 0,
    ("sarvanom_hf_sync_errors_total", ()): 3,
    # the free-tier ledger (nothing recorded; without settings no allowance gauge)
    ("sarvanom_hf_inference_used_requests", ()): 0,
    ("sarvanom_hf_inference_used_tokens", (("direction", "input"),)): 0,
    ("sarvanom_hf_inference_used_tokens", (("direction", "output"),)): 0,
    ("sarvanom_hf_inference_month_closed", ()): 0,
}

# Timestamps of the real clock (not ``now``): when the store was created, when the month's allowance resets.
EXPECTED_CLOCK = (
    "sarvanom_store_created_timestamp_seconds",
    "sarvanom_hf_inference_allowance_reset_timestamp_seconds",
)

# Timestamps relative to ``now`` (seconds before it).
EXPECTED_AGES = {
    "sarvanom_shadow_eval_last_run_timestamp_seconds": 3600.0,  # run 4 failed 1 h ago
    "sarvanom_hf_sync_last_success_timestamp_seconds": 3 * 3600
    - 12.5,  # last sync started 3 h ago, took 12.5 s
}

# Alert states the page computes at ``now`` (key -> (state, value)).
#  - open candidates 3 -> ok; last eval run ended 1 h ago -> ok
#  - refine p95 over 15 min: calls 1-8, 8 observations, rank 7.6 falls in the (0.6, 0.7] bucket holding
#    one call (650 ms) above 7 -> 0.6 + 0.1 * 0.6 = 0.66 s -> ok
#  - last hour: 4 requests sent, 2 ok -> 0.5 -> alert; rate limited 429 + limiter + cooldown = 3 of
#    4 + 2 wanted -> 0.5 -> alert
#  - eval runs ended in 24 h: ms_marco run 2 ok + run 4 failed -> 0.5 -> alert; squad_v2 run 3 -> 1.0 ok
#  - production scores: retrieval = org/emb-p (promoted), 0.56 on ms_marco (run 2) -> alert, none on squad_v2;
#    qa = org/gen-a (promoted), f1 0.72 on squad_v2 -> ok, none on ms_marco (run 4 failed)
#  - last successful sync ~3 h ago -> ok; runs and syncs exist: the "never yet" rules are settled (ok)
#  - no settings given: the allowance is unknown (no data); the month is not closed -> ok
EXPECTED_STATES: dict[str, tuple[str, float | None]] = {
    "HfCandidatesNone": ("ok", 3.0),
    "ShadowEvalStale": ("ok", 3600.0),
    "ShadowEvalNeverRan": ("ok", None),
    "RefineLatencyP95High": ("ok", 0.66),
    "HfInferenceSuccessLow": ("alert", 0.5),
    "HfInferenceRateLimitedHigh": ("alert", 0.5),
    "HfDatasetsEvalSuccessLow[ms_marco]": ("alert", 0.5),
    "HfDatasetsEvalSuccessLow[squad_v2]": ("ok", 1.0),
    "HfEvalScoreLow[retrieval/ms_marco/ndcg@10]": ("alert", 0.56),
    "HfEvalScoreLow[retrieval/squad_v2/ndcg@10]": ("no data", None),
    "HfEvalScoreLow[qa/squad_v2/f1]": ("ok", 0.72),
    "HfEvalScoreLow[qa/ms_marco/rougeL]": ("no data", None),
    "HfSyncStale": ("ok", 3 * 3600 - 12.5),
    "HfSyncNeverSucceeded": ("ok", None),
    "HfInferenceAllowanceHigh": ("no data", None),
    "HfInferenceClosedForTheMonth": ("ok", 0.0),
}
