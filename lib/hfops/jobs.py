"""Jobs: long work (sync, evals) recorded in the store and executed by the worker.

A job row holds its kind, parameters, status (queued | running | succeeded | failed), progress
(done / total / message), error and result. Handlers are registered per kind with :func:`handler`;
each receives the store path, its parameters and a :class:`Progress`, and returns a JSON-able result.
The console enqueues (:func:`enqueue`) and polls (:func:`get_job`); it never runs a handler itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from hfops.errors import HfopsError, JobError
from hfops.store import dumps, get_db, loads, one, rows, utcnow, write_tx

log = logging.getLogger("hfops.jobs")
JOB_STATUSES = ("queued", "running", "succeeded", "failed")
Handler = Callable[[str, dict[str, Any], "Progress"], dict[str, Any]]
_HANDLERS: dict[str, Handler] = {}



def handler(kind: str) -> Callable[[Handler], Handler]:
    """Register the function that executes jobs of ``kind``."""

    def register(fn: Handler) -> Handler:
        _HANDLERS[kind] = fn
        return fn

    return register


def import_handlers() -> None:
    """Import the modules that register job handlers (sync, eval_run, eval_nightly, publish)."""
    import hfops.discovery  # noqa: F401
    import hfops.evals.runs  # noqa: F401
    import hfops.publish  # noqa: F401


@dataclass
class Progress:
    """Reports a job's progress to the store, throttled to one write per ``interval`` seconds."""

    db_path: str
    job_id: int
    interval: float = 0.5
    _last: float = 0.0

    def __call__(self, done: int, total: int | None = None, message: str | None = None, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.interval and (total is None or done < total):
            return
        self._last = now
        db = get_db(self.db_path)
        with write_tx(db):
            db.execute(
                "UPDATE jobs SET done = ?, total = COALESCE(?, total), message = COALESCE(?, message), "
                "heartbeat_at = ? WHERE id = ?",
                [done, total, message, utcnow(), self.job_id],
            )


def create_job(db: sqlite_utils.Database, kind: str, params: dict[str, Any] | None = None) -> int:
    """Insert a queued job row and return its id (does not enqueue it in the worker)."""
    with write_tx(db):
        cursor = db.execute(
            "INSERT INTO jobs (kind, params, status, created_at) VALUES (?, ?, 'queued', ?)",
            [kind, dumps(params or {}), utcnow()],
        )
        return int(cursor.lastrowid)


def enqueue(db_path: str, kind: str, params: dict[str, Any] | None = None) -> int:
    """Create a job and hand it to the worker's queue; returns the job id."""
    import_handlers()
    if kind not in _HANDLERS:
        raise JobError(f"unknown job kind {kind!r} (known: {', '.join(sorted(_HANDLERS))})")
    from hfops.worker import get_huey, run_job_task

    job_id = create_job(get_db(db_path), kind, params)
    run_job_task(get_huey(db_path))(db_path, job_id)
    return job_id


def _decode(job: dict[str, Any]) -> dict[str, Any]:
    job["params"] = loads(job["params"], {})
    job["result"] = loads(job["result"])
    return job


def get_job(db: sqlite_utils.Database, job_id: int) -> dict[str, Any] | None:
    """One job with decoded params and result, or None."""
    job = one(db, "SELECT * FROM jobs WHERE id = ?", [job_id])
    return _decode(job) if job else None


def list_jobs(db: sqlite_utils.Database, kind: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """Most recent jobs first, optionally of one kind."""
    if kind:
        found = rows(db, "SELECT * FROM jobs WHERE kind = ? ORDER BY id DESC LIMIT ?", [kind, limit])
    else:
        found = rows(db, "SELECT * FROM jobs ORDER BY id DESC LIMIT ?", [limit])
    return [_decode(j) for j in found]


def execute_job(db_path: str, job_id: int) -> dict[str, Any]:
    """Run one job to completion in this process, recording status, progress, result or error."""
    import_handlers()
    db = get_db(db_path)
    job = get_job(db, job_id)
    if job is None:
        raise JobError(f"no job {job_id}")
    if job["status"] == "succeeded":
        return job["result"] or {}
    with write_tx(db):
        db.execute(
            "UPDATE jobs SET status = 'running', started_at = COALESCE(started_at, ?), heartbeat_at = ?, "
            "error = NULL WHERE id = ?",
            [utcnow(), utcnow(), job_id],
        )
    progress = Progress(db_path, job_id)
    try:
        fn = _HANDLERS.get(job["kind"])
        if fn is None:
            raise JobError(f"unknown job kind {job['kind']!r}")
        result = fn(db_path, job["params"], progress)
    except Exception as exc:  # recorded for the operator; the worker keeps running
        expected = isinstance(exc, HfopsError)
        message = str(exc) if expected else f"{type(exc).__name__}: {exc}"
        with write_tx(db):
            db.execute(
                "UPDATE jobs SET status = 'failed', error = ?, finished_at = ? WHERE id = ?",
                [message, utcnow(), job_id],
            )
        if expected:
            log.warning("job %s failed: %s", job_id, message)
        else:
            log.error("job %s failed unexpectedly", job_id, exc_info=True)
        return {"error": message}
    with write_tx(db):
        db.execute(
            "UPDATE jobs SET status = 'succeeded', result = ?, finished_at = ?, done = MAX(done, COALESCE(total, 0)) "
            "WHERE id = ?",
            [dumps(result), utcnow(), job_id],
        )
    return result


def interrupted_jobs(db: sqlite_utils.Database) -> list[int]:
    """Jobs left ``running`` by a killed worker: the worker re-runs them at start (handlers resume)."""
    return [r[0] for r in db.execute("SELECT id FROM jobs WHERE status = 'running' ORDER BY id")]
