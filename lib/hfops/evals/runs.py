"""Shadow runs: a candidate and the task's production model on the same examples, as a resumable job.

Lifecycle of a run (``eval_runs.status``): ``queued`` -> ``running`` -> ``succeeded`` | ``failed`` |
``cancelled`` (the job was asked to stop; resumable).

- :func:`submit_run` checks the request (task, dataset, both systems available), stores the run and
  creates its job (``eval_run``) — enqueued for the worker, or left for the caller to execute in-process.
- :func:`execute_run` (the job, :func:`eval_run_job`) loads the dataset, prepares both systems, then walks
  the examples in batches; each batch's per-example rows (inputs, outputs, scores, latency, error) are
  committed together, so a killed or cancelled run resumes where it stopped and ends with exactly one row
  per example (``UNIQUE(run_id, example_id)``). A failed example keeps its error and scores 0; a backend
  failing ``[eval] max_consecutive_errors`` times in a row stops the run (resumable) instead of burning the
  rest.
- At the end the metrics, bootstrap CIs, delta and recommendation are recomputed from the stored rows.
  A registry candidate moves ``candidate|shadow -> evaluating`` at start and to ``shadow`` (promote /
  keep shadowing) or back to ``candidate`` (reject) at the end, each move audited with ``eval_run:<id>``.
  Promotion itself stays an operator decision (the Leaderboard page or ``hfops status set``).

The nightly batch lives in :mod:`hfops.evals.nightly`, the reads in :mod:`hfops.evals.queries` (re-exported
here for callers that import them from this module).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sqlite_utils

from hfops import jobs, registry
from hfops.config import Settings, load_settings
from hfops.errors import BackendError, EvalError, HfopsError
from hfops.evals import custom, tasks
from hfops.evals.backends import Outcome
from hfops.evals.backends.resolve import plan_system
from hfops.evals.cache import InferenceCache
from hfops.evals.data import EvalSet, Example
from hfops.evals.queries import (
    candidate_status,
    get_run,
    latest_scores,
    leaderboard,
    leaderboard_entries,
    list_runs,
    run_examples,
    run_for_job,
    summary,
)
from hfops.evals.records import EvalRun, RunSummary, SubmittedRun
from hfops.evals.stats import RunMetrics, SystemResults, compute_run_metrics, example_scores
from hfops.progress import Cancelled, Phase, Phases
from hfops.progress import scope as progress_scope
from hfops.remote.executor import batch_executor
from hfops.store import dumps, get_db, loads, one, rows, utcnow, write_tx

if TYPE_CHECKING:
    from hfops.jobs import JobContext

__all__ = [
    "EVALUABLE_STATUSES",
    "RUN_STATUSES",
    "BackendError",
    "EvalError",
    "candidate_status",
    "eval_run_job",
    "execute_run",
    "get_run",
    "latest_scores",
    "leaderboard",
    "leaderboard_entries",
    "list_runs",
    "production_for",
    "recompute_metrics",
    "run_examples",
    "run_for_job",
    "submit_run",
    "summary",
]

RUN_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
EVALUABLE_STATUSES = ("candidate", "shadow")
ProgressFn = Callable[..., None]
CancelledFn = Callable[[], bool]


def _never() -> bool:
    return False


def _quiet(*args: Any, **kwargs: Any) -> None:
    return None


def check_request(
    task: str, dataset: str, limit: int | None, db: sqlite_utils.Database | None = None
) -> None:
    """Raise :class:`EvalError` for an unknown task, an unknown dataset (built-in or custom) or a bad
    limit."""
    tasks.task_spec(task)
    if not tasks.is_builtin(dataset):
        if db is None or custom.find_set(db, dataset) is None:
            known = [*tasks.DATASET_NAMES, *(custom.set_names(db) if db is not None else [])]
            raise EvalError(f"unknown dataset {dataset!r} (choose {' or '.join(known)})")
    if db is not None:
        custom.check_task(db, dataset, task)
    if limit is not None and limit < 1:
        raise EvalError("--limit must be at least 1")


def production_for(db: sqlite_utils.Database, task: str, candidate: str) -> str:
    """The model a candidate is compared with: the promoted model of the task, else the task's baseline."""
    promoted = registry.production_model(db, task)
    if promoted and promoted != candidate:
        return promoted
    return tasks.baseline_of(task)


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
) -> SubmittedRun:
    """Validate and store a run and its job (with ``settings``); ``enqueue`` hands the job to the worker.

    Returns the run and job ids. Raises :class:`EvalError`/:class:`BackendError` for a bad request
    (unknown task/dataset, a model that cannot run here) before anything is stored.
    """
    settings = settings or load_settings(config_path, **{"store.path": db_path})
    model_id = (model_id or "").strip()
    if not model_id:
        raise EvalError("a model id is required")
    db = get_db(db_path)
    check_request(task, dataset, limit, db)
    production_id = (production or "").strip() or production_for(db, task, model_id)
    if production_id == model_id:
        raise EvalError(f"{model_id} cannot be compared with itself")
    candidate = plan_system(model_id, task, settings, backend)  # never downloads: the job does
    try:
        prod = plan_system(production_id, task, settings)
    except BackendError as exc:
        raise EvalError(f"production model {production_id} cannot be evaluated: {exc}") from None
    if "api" in (candidate.acquire, prod.acquire):  # the Inference API's monthly allowance (shared ledger)
        from hfops.ledger.inference_usage import ensure_eval_allowed

        ensure_eval_allowed(db, settings)
    source = settings.eval.source if tasks.is_builtin(dataset) else custom.SOURCE
    params = {
        "model": model_id,
        "task": task,
        "dataset": dataset,
        "limit": limit,
        "backend": backend,
        "production": production_id,
        "source": source,
        "config": config_path,
        "acquire": {"candidate": candidate.acquire, "production": prod.acquire},
    }
    now = utcnow()
    with write_tx(db):
        run_id = int(
            db.execute(
                "INSERT INTO eval_runs (model_id, production_id, task, dataset, dataset_source, "
                "dataset_version, sample_limit, candidate_backend, candidate_revision, production_backend, "
                "production_revision, primary_metric, params, status, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, '', ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?)",
                [
                    model_id,
                    production_id,
                    task,
                    dataset,
                    source,
                    limit,
                    candidate.backend,
                    candidate.revision,
                    prod.backend,
                    prod.revision,
                    tasks.primary_metric(task, dataset),
                    dumps(params),
                    now,
                    now,
                ],
            ).lastrowid
            or 0
        )
    job_params = {"run_id": run_id}
    if enqueue:
        job_id = jobs.enqueue(db_path, "eval_run", job_params, settings)
    else:
        job_id = jobs.create_job(db, "eval_run", job_params, settings)
    with write_tx(db):
        db.execute("UPDATE eval_runs SET job_id = ? WHERE id = ?", [job_id, run_id])
    return SubmittedRun(run_id=run_id, job_id=job_id)


# --- registry moves -----------------------------------------------------------------------------------------


def _update_run(db: sqlite_utils.Database, run_id: int, **fields: Any) -> None:
    fields["updated_at"] = utcnow()
    assignments = ", ".join(f"{k} = ?" for k in fields)
    db.execute(f"UPDATE eval_runs SET {assignments} WHERE id = ?", [*fields.values(), run_id])


def _move(db: sqlite_utils.Database, model_id: str, to_status: str, reason: str, run_id: int) -> None:
    registry.set_status(db, model_id, to_status, reason, actor="eval", evidence=f"eval_run:{run_id}")


def _start_status(db: sqlite_utils.Database, run: EvalRun) -> None:
    """``candidate|shadow -> evaluating`` when a run starts or resumes (a killed run is still evaluating)."""
    current = candidate_status(db, run.model_id)
    if current is None:
        return
    with write_tx(db):
        if run.status_before is None:
            _update_run(db, run.id, status_before=current)
        if current in EVALUABLE_STATUSES:
            _move(
                db,
                run.model_id,
                "evaluating",
                f"shadow eval run {run.id} started ({run.task} on {run.dataset})",
                run.id,
            )


def _end_status(db: sqlite_utils.Database, run: EvalRun, target: str | None, reason: str) -> str | None:
    """Leave ``evaluating``: to ``target`` (or back to the status before the run when None)."""
    current = candidate_status(db, run.model_id)
    if current != "evaluating":
        return current
    destination = target or run.status_before or "candidate"
    if destination == "evaluating":
        return current
    _move(db, run.model_id, destination, reason, run.id)
    return destination


# --- per-example rows ---------------------------------------------------------------------------------------


def _example_payload(example: Example, evalset: EvalSet) -> tuple[dict[str, Any], dict[str, Any]]:
    field = tasks.task_spec(evalset.task).expected_field
    if field == "relevant":
        pool = len(example.candidates) if example.candidates is not None else len(evalset.corpus)
        return {"query": example.query, "pool": pool}, {"relevant": example.relevant}
    return {"query": example.query, "context": example.context}, {"answers": example.answers}


def _store_batch(
    db: sqlite_utils.Database,
    run: EvalRun,
    evalset: EvalSet,
    batch: list[tuple[int, Example]],
    cand: list[Outcome],
    prod: list[Outcome],
    cache: InferenceCache,
    calls: int,
) -> None:
    metric = tasks.primary_metric(evalset.task, evalset.dataset)
    now = utcnow()
    values = []
    for (position, example), c, p in zip(batch, cand, prod, strict=True):
        inputs, expected = _example_payload(example, evalset)
        c_scores = example_scores(evalset.task, evalset.dataset, expected, c.output, c.error)
        p_scores = example_scores(evalset.task, evalset.dataset, expected, p.output, p.error)
        c_primary, p_primary = float(c_scores.get(metric, 0.0)), float(p_scores.get(metric, 0.0))
        values.append(
            (
                run.id,
                example.id,
                position,
                dumps(inputs),
                dumps(expected),
                dumps(c.output),
                dumps(p.output),
                dumps(c_scores),
                dumps(p_scores),
                c_primary,
                p_primary,
                c_primary - p_primary,
                c.latency_ms,
                p.latency_ms,
                int(c.cached),
                int(p.cached),
                c.error,
                p.error,
                now,
            )
        )
    with write_tx(db):
        db.conn.executemany(
            "INSERT OR IGNORE INTO eval_examples (run_id, example_id, position, input, expected, "
            "candidate_output, production_output, candidate_scores, production_scores, candidate_primary, "
            "production_primary, delta, candidate_latency_ms, production_latency_ms, candidate_cached, "
            "production_cached, candidate_error, production_error, created_at) "
            "VALUES (" + ", ".join("?" * 19) + ")",
            values,
        )
        db.execute(
            "UPDATE eval_runs SET done = (SELECT COUNT(*) FROM eval_examples WHERE run_id = ?), "
            "candidate_errors = (SELECT COUNT(*) FROM eval_examples WHERE run_id = ? "
            "AND candidate_error IS NOT NULL), "
            "production_errors = (SELECT COUNT(*) FROM eval_examples WHERE run_id = ? "
            "AND production_error IS NOT NULL), "
            "cache_hits = cache_hits + ?, cache_misses = cache_misses + ?, model_calls = model_calls + ?, "
            "updated_at = ? WHERE id = ?",
            [run.id, run.id, run.id, cache.stats.hits, cache.stats.misses, calls, now, run.id],
        )
    cache.stats.hits = cache.stats.misses = 0


def _error_streak(outcomes: list[Outcome], streak: list[str], batch: list[tuple[int, Example]]) -> list[str]:
    """Example ids of the current run of consecutive failures of one system (reset by a success)."""
    for (_, example), outcome in zip(batch, outcomes, strict=True):
        streak = [] if outcome.error is None else [*streak, example.id]
    return streak


def _drop(db: sqlite_utils.Database, run_id: int, example_ids: list[str]) -> None:
    with write_tx(db):
        for start in range(0, len(example_ids), 500):
            part = example_ids[start : start + 500]
            db.execute(
                "DELETE FROM eval_examples WHERE run_id = ? AND example_id IN "
                f"({', '.join('?' for _ in part)})",
                [run_id, *part],
            )
        db.execute(
            "UPDATE eval_runs SET done = (SELECT COUNT(*) FROM eval_examples WHERE run_id = ?) WHERE id = ?",
            [run_id, run_id],
        )


# --- metrics ------------------------------------------------------------------------------------------------


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
    return compute_run_metrics(
        run["task"],
        run["dataset"],
        expected,
        _results(stored, "candidate"),
        _results(stored, "production"),
        settings.eval.bootstrap_samples,
        settings.eval.min_examples,
        settings.eval.max_error_rate,
    )


def _finish(db: sqlite_utils.Database, run: EvalRun, settings: Settings) -> RunSummary:
    metrics = recompute_metrics(db, run.id, settings)
    primary_c = metrics.get("candidate", metrics.primary)
    primary_p = metrics.get("production", metrics.primary)
    primary_d = metrics.get("delta", metrics.primary)
    target = {"promote": "shadow", "keep shadowing": "shadow", "reject": "candidate"}.get(
        metrics.recommendation
    )
    with write_tx(db):
        db.execute("DELETE FROM eval_metrics WHERE run_id = ?", [run.id])
        db.conn.executemany(
            "INSERT INTO eval_metrics (run_id, system, model_id, metric, value, ci_low, ci_high, n) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    run.id,
                    r.system,
                    run.production_id if r.system == "production" else run.model_id,
                    r.metric,
                    r.value,
                    r.ci_low,
                    r.ci_high,
                    r.n,
                )
                for r in metrics.rows
            ],
        )
        status_after = _end_status(
            db, run, target, f"shadow eval run {run.id}: {metrics.recommendation} ({metrics.reason})"
        )
        _update_run(
            db,
            run.id,
            status="succeeded",
            finished_at=utcnow(),
            error=None,
            message=metrics.reason,
            candidate_score=primary_c.value if primary_c else None,
            production_score=primary_p.value if primary_p else None,
            delta=primary_d.value if primary_d else None,
            delta_ci_low=primary_d.ci_low if primary_d else None,
            delta_ci_high=primary_d.ci_high if primary_d else None,
            recommendation=metrics.recommendation,
            recommendation_reason=metrics.reason,
            recommendation_rule=dumps(metrics.rule),
            status_after=status_after,
        )
    return summary(db, run.id)


# --- execution ----------------------------------------------------------------------------------------------


def _load_set(db: sqlite_utils.Database, settings: Settings, run: EvalRun) -> EvalSet:
    from hfops.evals.data import load_eval_set

    if tasks.is_builtin(run.dataset):
        return load_eval_set(settings, run.dataset, run.task, run.sample_limit)
    return custom.load_custom_set(db, run.dataset, run.task, run.sample_limit)


def execute_run(
    db_path: str,
    run_id: int,
    settings: Settings,
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
) -> RunSummary:
    """Execute (or resume) run ``run_id`` with ``settings`` to the end, or until ``cancelled()``."""
    db = get_db(db_path)
    run = get_run(db, run_id)
    if run is None:
        raise EvalError(f"no eval run {run_id}")
    if run.status == "succeeded":
        return summary(db, run_id)
    report = progress or _quiet
    settings = copy.deepcopy(settings)
    settings.store.path = db_path
    settings.eval.source = run.dataset_source if run.dataset_source != custom.SOURCE else settings.eval.source
    with write_tx(db):
        _update_run(
            db, run_id, status="running", started_at=run.started_at or utcnow(), error=None, finished_at=None
        )
    phases = Phases(report, prefix=f"run {run_id}: ")
    try:
        with progress_scope(phases, cancelled):
            return _execute(db, run, settings, phases, cancelled or _never)
    except Exception as exc:
        message = str(exc) if isinstance(exc, HfopsError) else f"{type(exc).__name__}: {exc}"
        with write_tx(db):
            _update_run(db, run_id, status="failed", error=message, finished_at=utcnow())
            fresh = get_run(db, run_id) or run
            _end_status(db, fresh, None, f"shadow eval run {run_id} failed: {message[:200]}")
        raise


def _execute(
    db: sqlite_utils.Database,
    run: EvalRun,
    settings: Settings,
    phases: Phases,
    cancelled: CancelledFn,
) -> RunSummary:
    """The run's phases in order, each reported (:mod:`hfops.progress`): the dataset, both models, the
    systems' preparation (a corpus embedded or indexed), the examples, the metrics."""
    run_id = run.id
    phases.start(f"loading the {run.dataset} dataset")
    evalset = _load_set(db, settings, run)
    if run.dataset_version and run.dataset_version != evalset.version:
        raise EvalError(
            f"the {run.dataset} dataset changed since run {run_id} started "
            f"({run.dataset_version} -> {evalset.version}); start a new run"
        )
    with write_tx(db):
        _update_run(
            db,
            run_id,
            dataset_version=evalset.version,
            dataset_location=evalset.location,
            total=len(evalset.examples),
            example_ids_hash=evalset.example_ids_hash,
        )
    run = get_run(db, run_id) or run
    _acquire(db, run, settings, phases)
    run = get_run(db, run_id) or run
    _start_status(db, run)
    run = get_run(db, run_id) or run
    return _walk(db, run, evalset, settings, phases, cancelled)


def _acquire(db: sqlite_utils.Database, run: EvalRun, settings: Settings, phases: Phases) -> None:
    """The job's first step: obtain both systems as planned (a download when planned so, progress in
    bytes) and store where each runs from (``resolved.record()``: source, revision, file hashes)."""
    planned = run.params.get("acquire") or {}
    for side, model_id, backend in (
        ("candidate", run.model_id, run.params.get("backend", "auto")),
        ("production", run.production_id, "auto"),
    ):
        how = planned.get(side, "local")
        step = _acquisition_steps(phases, f"{side} {model_id}")
        from hfops.remote.acquire import owner_system  # with the Redis queue the compute workers acquire

        got = owner_system(how, model_id, run.task, settings, backend, step)
        with write_tx(db):
            _update_run(
                db,
                run.id,
                **{
                    f"{side}_backend": got.backend,
                    f"{side}_revision": got.revision,
                    f"{side}_source": dumps(got.record) if got.record else None,
                },
            )


def _acquisition_steps(phases: Phases, what: str) -> Callable[[int, int, str], None]:
    """The progress of acquiring ``what`` (``candidate acme/model``) as phases: the acquisition, each step
    without counts by its message, the transfer in megabytes (reported from the download threads)."""
    phases.start(f"acquiring {what}")
    download: list[Phase] = []

    def step(done: int, total: int, message: str) -> None:
        if not total:
            phases.start(f"{what}: {message}")
        elif not download:  # the transfer's first report
            download.append(phases.start(f"downloading {what}", total, done, _megabytes))
        else:
            download[0].advance(done, total)

    return step


def _megabytes(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:.1f} MB"


def _cancel(db: sqlite_utils.Database, run: EvalRun, done: int, total: int) -> RunSummary:
    message = f"cancelled after {done}/{total} examples; resume with: hfops eval --resume {run.id}"
    with write_tx(db):
        _update_run(db, run.id, status="cancelled", message=message, finished_at=utcnow())
        _end_status(db, get_run(db, run.id) or run, None, f"shadow eval run {run.id} cancelled")
    return summary(db, run.id)


def _walk(
    db: sqlite_utils.Database,
    run: EvalRun,
    evalset: EvalSet,
    settings: Settings,
    phases: Phases,
    cancelled: CancelledFn,
) -> RunSummary:
    """Compute the missing examples batch by batch through the run's executor and store each batch here.

    The executor (:func:`hfops.remote.executor.batch_executor`) computes in this process with the SQLite
    queue, or on the compute workers with Redis; either way only this loop writes the run's rows.
    """

    total = len(evalset.examples)
    done_ids = {r[0] for r in db.execute("SELECT example_id FROM eval_examples WHERE run_id = ?", [run.id])}
    todo = [(i, e) for i, e in enumerate(evalset.examples) if e.id not in done_ids]
    done = len(done_ids)
    if todo:
        phases.start(f"preparing {run.model_id} and {run.production_id}")
        size = max(1, settings.eval.batch_size)
        batches = [todo[start : start + size] for start in range(0, len(todo), size)]
        executor = batch_executor(db, run, evalset, settings, batches, phases.report, cancelled, done)
        try:
            counts = executor.prepare()  # a corpus embedded or indexed, reported phase by phase
        except Cancelled:  # between two chunks of the corpus; those embedded are cached
            return _cancel(db, run, done, total)
        with write_tx(db):
            db.execute(
                "UPDATE eval_runs SET model_calls = model_calls + ?, cache_hits = cache_hits + ?, "
                "cache_misses = cache_misses + ? WHERE id = ?",
                [counts.calls, counts.cache_hits, counts.cache_misses, run.id],
            )
        streaks: dict[str, list[str]] = {"candidate": [], "production": []}
        scoring = phases.start("scoring examples", total, done)
        for batch in batches:
            if cancelled():
                return _cancel(db, run, done, total)
            scoring.expect(done + len(batch))  # a generative system counts its examples as it answers
            outputs = executor.compute(batch)
            if outputs is None:  # cancelled while waiting for the batch
                return _cancel(db, run, done, total)
            _store_batch(
                db, run, evalset, batch, outputs.candidate, outputs.production, outputs.cache, outputs.calls
            )
            executor.stored(batch)
            done += len(batch)
            for side, outcomes, model_id in (
                ("candidate", outputs.candidate, run.model_id),
                ("production", outputs.production, run.production_id),
            ):
                streaks[side] = _error_streak(outcomes, streaks[side], batch)
                if len(streaks[side]) >= settings.eval.max_consecutive_errors:
                    _drop(db, run.id, streaks[side])
                    last = next(o.error for o in reversed(outcomes) if o.error)
                    raise EvalError(
                        f"stopped: {model_id} failed {len(streaks[side])} examples in a row "
                        f"(last error: {last}); those examples were not kept, resume the run when the "
                        "backend is back"
                    )
            scoring.advance(done)
        executor.close()
    phases.start(f"computing metrics on {total} examples")
    return _finish(db, get_run(db, run.id) or run, settings)


def eval_run_job(ctx: JobContext) -> dict[str, Any]:
    """Worker job ``{"run_id": N}``: execute or resume that run with the enqueuer's settings."""
    if "run_id" not in ctx.params:
        raise EvalError("eval_run job needs a run_id (create runs with submit_run)")
    return execute_run(
        ctx.db_path, int(ctx.params["run_id"]), ctx.settings, ctx.progress, ctx.cancelled
    ).to_dict()
