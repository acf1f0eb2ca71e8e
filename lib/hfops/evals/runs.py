"""Shadow runs: a candidate and the task's production model on the same examples, as a resumable job.

Lifecycle of a run (``eval_runs.status``): ``queued`` -> ``running`` -> ``succeeded`` | ``failed``.

- :func:`submit_run` checks the request (task, dataset, both systems available), stores the run and
  creates its job (``eval_run``) — enqueued for the worker, or left for the caller to execute in-process.
- :func:`execute_run` (the job) loads the dataset, prepares both systems, then walks the examples in
  batches; each batch's per-example rows (inputs, outputs, scores, latency, error) are committed together,
  so a killed run resumes where it stopped and ends with exactly one row per example
  (``UNIQUE(run_id, example_id)``). A failed example keeps its error and scores 0; a backend failing
  ``[eval] max_consecutive_errors`` times in a row stops the run (resumable) instead of burning the rest.
- At the end the metrics, bootstrap CIs, delta and recommendation are recomputed from the stored rows.
  A registry candidate moves ``candidate|shadow -> evaluating`` at start and to ``shadow`` (promote /
  keep shadowing) or back to ``candidate`` (reject) at the end, each move audited with ``eval_run:<id>``.
  Promotion itself stays an operator decision (the Leaderboard page or ``hfops status set``).

The nightly job (:func:`nightly`) evaluates every ``candidate``/``shadow`` model that has no run on the
current dataset version.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlite_utils

from hfops import jobs, registry
from hfops.config import Settings, load_settings
from hfops.errors import EvalError, HfopsError
from hfops.evals import DATASETS, TASKS
from hfops.evals.backends import BASELINES, BackendError, Outcome, resolve_system
from hfops.evals.cache import InferenceCache
from hfops.evals.data import EvalSet, Example, dataset_version, load_eval_set
from hfops.evals.stats import RunMetrics, SystemResults, compute_run_metrics, example_scores, primary_metric
from hfops.store import dumps, get_db, loads, one, rows, utcnow, write_tx

RUN_STATUSES = ("queued", "running", "succeeded", "failed")
EVALUABLE_STATUSES = ("candidate", "shadow")
ProgressFn = Callable[..., None]



def _settings_for(db_path: str, params: dict[str, Any]) -> Settings:
    return load_settings(params.get("config"), **{"store.path": db_path})


def _check_request(task: str, dataset: str, limit: int | None) -> None:
    if task not in TASKS:
        raise EvalError(f"unknown task {task!r} (choose {' or '.join(TASKS)})")
    if dataset not in DATASETS:
        raise EvalError(f"unknown dataset {dataset!r} (choose {' or '.join(DATASETS)})")
    if limit is not None and limit < 1:
        raise EvalError("--limit must be at least 1")


def production_for(db: sqlite_utils.Database, task: str, candidate: str) -> str:
    """The model a candidate is compared with: the promoted model of the task, else the task's baseline."""
    promoted = registry.production_model(db, task)
    if promoted and promoted != candidate:
        return promoted
    return BASELINES[task]


def submit_run(
    db_path: str,
    model_id: str,
    task: str,
    dataset: str,
    limit: int | None = None,
    settings: Settings | None = None,
    backend: str = "auto",
    production: str | None = None,
    enqueue: bool = True,
    config_path: str | None = None,
) -> dict[str, int]:
    """Validate and store a run and its job; ``enqueue`` hands the job to the worker.

    Returns ``{"run_id", "job_id"}``. Raises :class:`EvalError`/:class:`BackendError` for a bad request
    (unknown task/dataset, a model that cannot run here) before anything is stored.
    """
    settings = settings or load_settings(config_path, **{"store.path": db_path})
    model_id = (model_id or "").strip()
    if not model_id:
        raise EvalError("a model id is required")
    _check_request(task, dataset, limit)
    db = get_db(db_path)
    production_id = (production or "").strip() or production_for(db, task, model_id)
    if production_id == model_id:
        raise EvalError(f"{model_id} cannot be compared with itself")
    candidate = resolve_system(model_id, task, settings, backend)
    try:
        prod = resolve_system(production_id, task, settings)
    except BackendError as exc:
        raise EvalError(f"production model {production_id} cannot be evaluated: {exc}") from None
    params = {"model": model_id, "task": task, "dataset": dataset, "limit": limit, "backend": backend,
              "production": production_id, "source": settings.eval.source, "config": config_path}
    now = utcnow()
    with write_tx(db):
        run_id = int(db.execute(
            "INSERT INTO eval_runs (model_id, production_id, task, dataset, dataset_source, dataset_version, "
            "sample_limit, candidate_backend, candidate_revision, production_backend, production_revision, "
            "primary_metric, params, status, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, '', ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?)",
            [model_id, production_id, task, dataset, settings.eval.source, limit, candidate.backend,
             candidate.revision, prod.backend, prod.revision, primary_metric(task, dataset), dumps(params), now, now],
        ).lastrowid)
    job_params = {"run_id": run_id, "config": config_path}
    if enqueue:
        job_id = jobs.enqueue(db_path, "eval_run", job_params)
    else:
        job_id = jobs.create_job(db, "eval_run", job_params)
    with write_tx(db):
        db.execute("UPDATE eval_runs SET job_id = ? WHERE id = ?", [job_id, run_id])
    return {"run_id": run_id, "job_id": job_id}


def get_run(db: sqlite_utils.Database, run_id: int) -> dict[str, Any] | None:
    """One run with decoded JSON columns and its metric rows, or None."""
    run = one(db, "SELECT * FROM eval_runs WHERE id = ?", [run_id])
    if run is None:
        return None
    run["params"] = loads(run["params"], {})
    run["recommendation_rule"] = loads(run["recommendation_rule"])
    run["metrics"] = rows(db, "SELECT * FROM eval_metrics WHERE run_id = ? ORDER BY rowid", [run_id])
    return run


def _update_run(db: sqlite_utils.Database, run_id: int, **fields: Any) -> None:
    fields["updated_at"] = utcnow()
    assignments = ", ".join(f"{k} = ?" for k in fields)
    db.execute(f"UPDATE eval_runs SET {assignments} WHERE id = ?", [*fields.values(), run_id])


def _candidate_status(db: sqlite_utils.Database, model_id: str) -> str | None:
    found = one(db, "SELECT status FROM candidates WHERE model_id = ?", [model_id])
    return found["status"] if found else None


def _move(db: sqlite_utils.Database, model_id: str, to_status: str, reason: str, run_id: int) -> None:
    registry.set_status(db, model_id, to_status, reason, actor="eval", evidence=f"eval_run:{run_id}")


def _start_status(db: sqlite_utils.Database, run: dict[str, Any]) -> None:
    """``candidate|shadow -> evaluating`` when a run starts or resumes (a killed run is still evaluating)."""
    current = _candidate_status(db, run["model_id"])
    if current is None:
        return
    with write_tx(db):
        if run["status_before"] is None:
            _update_run(db, run["id"], status_before=current)
        if current in EVALUABLE_STATUSES:
            _move(db, run["model_id"], "evaluating", f"shadow eval run {run['id']} started "
                  f"({run['task']} on {run['dataset']})", run["id"])


def _end_status(db: sqlite_utils.Database, run: dict[str, Any], target: str | None, reason: str) -> str | None:
    """Leave ``evaluating``: to ``target`` (or back to the status before the run when None)."""
    current = _candidate_status(db, run["model_id"])
    if current != "evaluating":
        return current
    destination = target or run["status_before"] or "candidate"
    if destination == "evaluating":
        return current
    _move(db, run["model_id"], destination, reason, run["id"])
    return destination


def _example_payload(example: Example, evalset: EvalSet) -> tuple[dict[str, Any], dict[str, Any]]:
    if evalset.task == "retrieval":
        pool = len(example.candidates) if example.candidates is not None else len(evalset.corpus)
        return {"query": example.query, "pool": pool}, {"relevant": example.relevant}
    return {"query": example.query, "context": example.context}, {"answers": example.answers}


def _primary_of(scores: dict[str, float], metric: str) -> float:
    return float(scores.get(metric, 0.0))


def _store_batch(db: sqlite_utils.Database, run: dict[str, Any], evalset: EvalSet, batch: list[tuple[int, Example]],
                 cand: list[Outcome], prod: list[Outcome], cache: InferenceCache, calls: int) -> None:
    metric = primary_metric(evalset.task, evalset.dataset)
    now = utcnow()
    values = []
    for (position, example), c, p in zip(batch, cand, prod, strict=True):
        inputs, expected = _example_payload(example, evalset)
        c_scores = example_scores(evalset.task, evalset.dataset, expected, c.output, c.error)
        p_scores = example_scores(evalset.task, evalset.dataset, expected, p.output, p.error)
        c_primary, p_primary = _primary_of(c_scores, metric), _primary_of(p_scores, metric)
        values.append((
            run["id"], example.id, position, dumps(inputs), dumps(expected), dumps(c.output), dumps(p.output),
            dumps(c_scores), dumps(p_scores), c_primary, p_primary, c_primary - p_primary, c.latency_ms,
            p.latency_ms, int(c.cached), int(p.cached), c.error, p.error, now,
        ))
    with write_tx(db):
        db.conn.executemany(
            "INSERT OR IGNORE INTO eval_examples (run_id, example_id, position, input, expected, candidate_output, "
            "production_output, candidate_scores, production_scores, candidate_primary, production_primary, delta, "
            "candidate_latency_ms, production_latency_ms, candidate_cached, production_cached, candidate_error, "
            "production_error, created_at) VALUES (" + ", ".join("?" * 19) + ")",
            values,
        )
        db.execute(
            "UPDATE eval_runs SET done = (SELECT COUNT(*) FROM eval_examples WHERE run_id = ?), "
            "candidate_errors = (SELECT COUNT(*) FROM eval_examples WHERE run_id = ? AND candidate_error IS NOT NULL), "
            "production_errors = (SELECT COUNT(*) FROM eval_examples WHERE run_id = ? AND production_error IS NOT NULL), "
            "cache_hits = cache_hits + ?, cache_misses = cache_misses + ?, model_calls = model_calls + ?, "
            "updated_at = ? WHERE id = ?",
            [run["id"], run["id"], run["id"], cache.stats.hits, cache.stats.misses, calls, now, run["id"]],
        )
    cache.stats.hits = cache.stats.misses = 0


def _error_streak(outcomes: list[Outcome], streak: list[str], batch: list[tuple[int, Example]]) -> list[str]:
    """Example ids of the current run of consecutive failures of one system (reset by a success)."""
    for (_, example), outcome in zip(batch, outcomes, strict=True):
        if outcome.error is None:
            streak = []
        else:
            streak = [*streak, example.id]
    return streak


def _results(stored: list[dict[str, Any]], side: str) -> SystemResults:
    return SystemResults(
        scores=[loads(r[f"{side}_scores"], {}) for r in stored],
        outputs=[loads(r[f"{side}_output"]) for r in stored],
        errors=[r[f"{side}_error"] for r in stored],
    )


def recompute_metrics(db: sqlite_utils.Database, run_id: int, settings: Settings) -> RunMetrics:
    """Metrics, CIs and recommendation of a run, recomputed from its stored per-example rows."""
    run = one(db, "SELECT task, dataset FROM eval_runs WHERE id = ?", [run_id])
    if run is None:
        raise EvalError(f"no eval run {run_id}")
    stored = rows(db, "SELECT * FROM eval_examples WHERE run_id = ? ORDER BY position", [run_id])
    expected = [loads(r["expected"], {}) for r in stored]
    return compute_run_metrics(run["task"], run["dataset"], expected, _results(stored, "candidate"),
                               _results(stored, "production"), settings.eval.bootstrap_samples,
                               settings.eval.min_examples, settings.eval.max_error_rate)


def _finish(db: sqlite_utils.Database, run: dict[str, Any], settings: Settings) -> dict[str, Any]:
    metrics = recompute_metrics(db, run["id"], settings)
    primary_c = metrics.get("candidate", metrics.primary)
    primary_p = metrics.get("production", metrics.primary)
    primary_d = metrics.get("delta", metrics.primary)
    target = {"promote": "shadow", "keep shadowing": "shadow", "reject": "candidate"}.get(metrics.recommendation)
    with write_tx(db):
        db.execute("DELETE FROM eval_metrics WHERE run_id = ?", [run["id"]])
        db.conn.executemany(
            "INSERT INTO eval_metrics (run_id, system, model_id, metric, value, ci_low, ci_high, n) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(run["id"], r.system, run["production_id"] if r.system == "production" else run["model_id"],
              r.metric, r.value, r.ci_low, r.ci_high, r.n) for r in metrics.rows],
        )
        status_after = _end_status(
            db, run, target, f"shadow eval run {run['id']}: {metrics.recommendation} ({metrics.reason})"
        )
        _update_run(
            db, run["id"], status="succeeded", finished_at=utcnow(), error=None, message=metrics.reason,
            candidate_score=primary_c.value if primary_c else None,
            production_score=primary_p.value if primary_p else None,
            delta=primary_d.value if primary_d else None,
            delta_ci_low=primary_d.ci_low if primary_d else None,
            delta_ci_high=primary_d.ci_high if primary_d else None,
            recommendation=metrics.recommendation, recommendation_reason=metrics.reason,
            recommendation_rule=dumps(metrics.rule), status_after=status_after,
        )
    return summary(db, run["id"])


def summary(db: sqlite_utils.Database, run_id: int) -> dict[str, Any]:
    """The headline of a run (what the job returns and the CLI prints)."""
    run = get_run(db, run_id)
    if run is None:
        raise EvalError(f"no eval run {run_id}")
    keys = ("id", "status", "model_id", "production_id", "task", "dataset", "dataset_version", "total", "done",
            "candidate_errors", "production_errors", "primary_metric", "candidate_score", "production_score",
            "delta", "delta_ci_low", "delta_ci_high", "recommendation", "recommendation_reason", "status_after",
            "cache_hits", "cache_misses", "model_calls", "error")
    out = {k: run[k] for k in keys}
    out["run_id"] = out.pop("id")
    return out


def execute_run(db_path: str, run_id: int, progress: ProgressFn | None = None) -> dict[str, Any]:
    """Execute (or resume) run ``run_id`` to the end; see the module docstring."""
    db = get_db(db_path)
    run = get_run(db, run_id)
    if run is None:
        raise EvalError(f"no eval run {run_id}")
    if run["status"] == "succeeded":
        return summary(db, run_id)
    report = progress or (lambda *a, **k: None)
    settings = _settings_for(db_path, run["params"])
    settings.eval.source = run["dataset_source"]
    with write_tx(db):
        _update_run(db, run_id, status="running", started_at=run["started_at"] or utcnow(), error=None,
                    finished_at=None)
    try:
        evalset = load_eval_set(settings, run["dataset"], run["task"], run["sample_limit"])
        if run["dataset_version"] and run["dataset_version"] != evalset.version:
            raise EvalError(f"the {run['dataset']} dataset changed since run {run_id} started "
                            f"({run['dataset_version']} -> {evalset.version}); start a new run")
        with write_tx(db):
            _update_run(db, run_id, dataset_version=evalset.version, dataset_location=evalset.location,
                        total=len(evalset.examples), example_ids_hash=evalset.example_ids_hash)
        run = get_run(db, run_id) or run
        _start_status(db, run)
        run = get_run(db, run_id) or run
        result = _walk(db, run, evalset, settings, report)
    except Exception as exc:
        message = str(exc) if isinstance(exc, HfopsError) else f"{type(exc).__name__}: {exc}"
        with write_tx(db):
            _update_run(db, run_id, status="failed", error=message, finished_at=utcnow())
            fresh = get_run(db, run_id) or run
            _end_status(db, fresh, None, f"shadow eval run {run_id} failed: {message[:200]}")
        raise
    return result


def _walk(db: sqlite_utils.Database, run: dict[str, Any], evalset: EvalSet, settings: Settings,
          report: ProgressFn) -> dict[str, Any]:
    total = len(evalset.examples)
    done_ids = {r[0] for r in db.execute("SELECT example_id FROM eval_examples WHERE run_id = ?", [run["id"]])}
    todo = [(i, e) for i, e in enumerate(evalset.examples) if e.id not in done_ids]
    report(len(done_ids), total, f"run {run['id']}: preparing {run['model_id']} and {run['production_id']}",
           force=True)
    if todo:
        candidate = resolve_system(run["model_id"], run["task"], settings, run["params"].get("backend", "auto"))
        production = resolve_system(run["production_id"], run["task"], settings)
        cache = InferenceCache(db)
        for system in (candidate, production):
            try:
                system.prepare(evalset, cache)
            except BackendError as exc:
                raise EvalError(f"{system.model_id}: could not prepare the corpus: {exc}") from None
        with write_tx(db):
            db.execute(
                "UPDATE eval_runs SET model_calls = model_calls + ?, cache_hits = cache_hits + ?, "
                "cache_misses = cache_misses + ? WHERE id = ?",
                [candidate.calls + production.calls, cache.stats.hits, cache.stats.misses, run["id"]],
            )
        cache.stats.hits = cache.stats.misses = 0
        streaks: dict[str, list[str]] = {"candidate": [], "production": []}
        size = max(1, settings.eval.batch_size)
        done = len(done_ids)
        for start in range(0, len(todo), size):
            batch = todo[start:start + size]
            examples = [e for _, e in batch]
            calls_before = candidate.calls + production.calls
            cand = candidate.run(examples, evalset, cache)
            prod = production.run(examples, evalset, cache)
            calls = candidate.calls + production.calls - calls_before
            _store_batch(db, run, evalset, batch, cand, prod, cache, calls)
            done += len(batch)
            for side, outcomes, system in (("candidate", cand, candidate), ("production", prod, production)):
                streaks[side] = _error_streak(outcomes, streaks[side], batch)
                if len(streaks[side]) >= settings.eval.max_consecutive_errors:
                    _drop(db, run["id"], streaks[side])
                    last = next(o.error for o in reversed(outcomes) if o.error)
                    raise EvalError(
                        f"stopped: {system.model_id} failed {len(streaks[side])} examples in a row "
                        f"(last error: {last}); those examples were not kept, resume the run when the backend "
                        "is back"
                    )
            report(done, total, f"run {run['id']}: {done}/{total} examples")
    report(total, total, f"run {run['id']}: computing metrics", force=True)
    return _finish(db, get_run(db, run["id"]) or run, settings)


def _drop(db: sqlite_utils.Database, run_id: int, example_ids: list[str]) -> None:
    with write_tx(db):
        for start in range(0, len(example_ids), 500):
            part = example_ids[start:start + 500]
            db.execute(f"DELETE FROM eval_examples WHERE run_id = ? AND example_id IN ({', '.join('?' for _ in part)})",
                       [run_id, *part])
        db.execute("UPDATE eval_runs SET done = (SELECT COUNT(*) FROM eval_examples WHERE run_id = ?) WHERE id = ?",
                   [run_id, run_id])


def run_for_job(db: sqlite_utils.Database, job_id: int) -> dict[str, Any] | None:
    """The eval run executed by job ``job_id`` (for progress on the console)."""
    found = one(db, "SELECT id FROM eval_runs WHERE job_id = ? ORDER BY id DESC LIMIT 1", [job_id])
    return get_run(db, found["id"]) if found else None


@jobs.handler("eval_run")
def eval_run_job(db_path: str, params: dict[str, Any], progress: jobs.Progress) -> dict[str, Any]:
    """Worker job: ``{"run_id": N}`` — execute or resume that run."""
    if "run_id" not in params:
        raise EvalError("eval_run job needs a run_id (create runs with submit_run)")
    return execute_run(db_path, int(params["run_id"]), progress)


# --- nightly --------------------------------------------------------------------------------------------------


def plan_nightly(db_path: str, settings: Settings) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """``(planned, skipped)``: (model, task, dataset) combinations without a run on the current dataset version.

    Candidates in ``candidate``/``shadow`` status with a known task are considered; a model that cannot run
    here (not local, no API key) is skipped with the reason. Runs that failed do not count as done.
    """
    db = get_db(db_path)
    tags = list(registry.TASK_OF_PIPELINE)
    models = rows(
        db,
        "SELECT c.model_id, m.pipeline_tag FROM candidates c JOIN models m ON m.model_id = c.model_id "
        f"WHERE c.status IN ('candidate', 'shadow') AND m.pipeline_tag IN ({', '.join('?' for _ in tags)}) "
        "ORDER BY c.score DESC, c.model_id",
        tags,
    )
    versions = {d: dataset_version(settings, d) for d in DATASETS}
    planned: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    for model in models:
        task = registry.TASK_OF_PIPELINE[model["pipeline_tag"]]
        try:
            resolve_system(model["model_id"], task, settings)
        except BackendError as exc:
            skipped.append({"model": model["model_id"], "reason": str(exc)})
            continue
        for dataset in DATASETS:
            existing = one(
                db,
                "SELECT id FROM eval_runs WHERE model_id = ? AND task = ? AND dataset = ? AND status != 'failed' "
                "AND (dataset_version = ? OR (dataset_version = '' AND status IN ('queued', 'running')))",
                [model["model_id"], task, dataset, versions[dataset]],
            )
            if existing is None:
                planned.append({"model": model["model_id"], "task": task, "dataset": dataset})
    return planned, skipped


def nightly(db_path: str, settings: Settings, progress: ProgressFn | None = None,
            config_path: str | None = None) -> dict[str, Any]:
    """Run every planned nightly evaluation in this process, one after the other; failures are reported."""
    report = progress or (lambda *a, **k: None)
    planned, skipped = plan_nightly(db_path, settings)
    results = []
    for i, item in enumerate(planned):
        report(i, len(planned), f"nightly: {item['model']} {item['task']} on {item['dataset']}", force=True)
        try:
            ids = submit_run(db_path, item["model"], item["task"], item["dataset"], settings.eval.default_limit,
                             settings, enqueue=False, config_path=config_path)
        except HfopsError as exc:
            results.append({**item, "error": str(exc)})
            continue
        outcome = jobs.execute_job(db_path, ids["job_id"])
        results.append({**item, **ids, "recommendation": outcome.get("recommendation"), "error": outcome.get("error")})
    report(len(planned), len(planned), "nightly: done", force=True)
    return {"planned": len(planned), "runs": results, "skipped": skipped}


@jobs.handler("eval_nightly")
def eval_nightly_job(db_path: str, params: dict[str, Any], progress: jobs.Progress) -> dict[str, Any]:
    """Worker job (the huey periodic task enqueues it): evaluate candidates without a current run."""
    return nightly(db_path, _settings_for(db_path, params), progress, params.get("config"))


# --- queries for the console and the CLI ----------------------------------------------------------------------


def list_runs(db: sqlite_utils.Database, limit: int = 50, model_id: str | None = None, task: str | None = None,
              dataset: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
    """Most recent runs first, optionally filtered."""
    clauses, params = [], []
    for column, value in (("model_id", model_id), ("task", task), ("dataset", dataset), ("status", status)):
        if value:
            clauses.append(f"{column} = ?")
            params.append(value)
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    return rows(
        db,
        "SELECT id, status, model_id, production_id, task, dataset, dataset_version, total, done, candidate_errors, "
        "production_errors, primary_metric, candidate_score, production_score, delta, delta_ci_low, delta_ci_high, "
        f"recommendation, job_id, error, created_at, finished_at FROM eval_runs{where} ORDER BY id DESC LIMIT ?",
        [*params, limit],
    )


def run_examples(db: sqlite_utils.Database, run_id: int, disagreements_only: bool = False,
                 limit: int = 500) -> list[dict[str, Any]]:
    """Per-example rows of a run, decoded; ``disagreements_only`` keeps examples where the two systems
    score differently (or one failed), largest |delta| first."""
    where = "run_id = ?"
    order = "position"
    if disagreements_only:
        where += (" AND (ABS(delta) > 1e-9 OR (candidate_error IS NULL) != (production_error IS NULL) "
                  "OR candidate_output != production_output)")
        order = "ABS(delta) DESC, position"
    found = rows(db, f"SELECT * FROM eval_examples WHERE {where} ORDER BY {order} LIMIT ?", [run_id, limit])
    for row in found:
        for key in ("input", "expected", "candidate_output", "production_output", "candidate_scores",
                    "production_scores"):
            row[key] = loads(row[key])
    return found


def leaderboard(db: sqlite_utils.Database, task: str, dataset: str) -> list[dict[str, Any]]:
    """Every model evaluated on ``task``/``dataset`` (as candidate or production) with the metrics of its
    latest succeeded run, best primary score first."""
    latest = rows(
        db,
        "SELECT em.model_id, MAX(em.run_id) AS run_id FROM eval_metrics em JOIN eval_runs r ON r.id = em.run_id "
        "WHERE r.task = ? AND r.dataset = ? AND r.status = 'succeeded' AND em.system != 'delta' "
        "GROUP BY em.model_id",
        [task, dataset],
    )
    board = []
    for entry in latest:
        metrics = rows(
            db,
            "SELECT metric, value, ci_low, ci_high, n FROM eval_metrics WHERE run_id = ? AND model_id = ? "
            "AND system != 'delta'",
            [entry["run_id"], entry["model_id"]],
        )
        run = one(db, "SELECT * FROM eval_runs WHERE id = ?", [entry["run_id"]]) or {}
        runs = db.execute(
            "SELECT COUNT(*) FROM eval_runs WHERE status = 'succeeded' AND task = ? AND dataset = ? "
            "AND (model_id = ? OR production_id = ?)",
            [task, dataset, entry["model_id"], entry["model_id"]],
        ).fetchone()[0]
        row: dict[str, Any] = {
            "model_id": entry["model_id"],
            "status": _candidate_status(db, entry["model_id"]) or ("baseline" if entry["model_id"].startswith("baseline:")
                                                                  else "not in registry"),
            "role": "candidate" if run.get("model_id") == entry["model_id"] else "production",
            "runs": runs,
            "latest_run": entry["run_id"],
            "dataset_version": run.get("dataset_version"),
            "examples": run.get("total"),
            "recommendation": run.get("recommendation") if run.get("model_id") == entry["model_id"] else None,
            "evaluated_at": run.get("finished_at"),
        }
        for m in metrics:
            row[m["metric"]] = m["value"]
            row[f"{m['metric']} CI"] = f"{m['ci_low']:.3g} to {m['ci_high']:.3g}" if m["ci_low"] is not None else ""
        board.append(row)
    primary = primary_metric(task, dataset)
    board.sort(key=lambda r: (-(r.get(primary) if r.get(primary) is not None else float("-inf")), r["model_id"]))
    return board


def latest_scores(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Latest value of every (model, task, dataset, metric) from succeeded runs (for observability)."""
    return rows(
        db,
        "SELECT em.model_id, r.task, r.dataset, em.metric, em.value, em.ci_low, em.ci_high, em.run_id, r.finished_at "
        "FROM eval_metrics em JOIN eval_runs r ON r.id = em.run_id "
        "WHERE r.status = 'succeeded' AND em.system != 'delta' AND em.run_id = ("
        "  SELECT MAX(em2.run_id) FROM eval_metrics em2 JOIN eval_runs r2 ON r2.id = em2.run_id "
        "  WHERE em2.model_id = em.model_id AND em2.metric = em.metric AND r2.task = r.task "
        "  AND r2.dataset = r.dataset AND r2.status = 'succeeded' AND em2.system != 'delta') "
        "ORDER BY em.model_id, r.task, r.dataset, em.metric",
    )
