"""Jobs: the mechanism for long work (sync, evals, publish) recorded in the store and run by the worker.

A job row holds its kind, parameters (with the resolved settings of whoever enqueued it), status, progress
(done / total / message), error and result. Statuses: ``queued`` -> ``running`` -> ``succeeded`` | ``failed``
| ``cancelled`` (an operator asked it to stop; :func:`resume` queues it again and the handler resumes).

This module knows no feature: a handler is any function ``fn(ctx: JobContext) -> dict`` and the composition
root (:mod:`hfops.worker`) owns the table of kinds -> handlers (:class:`HandlerTable`; a kind registered
twice is an error, as huey refuses duplicate task names). The console enqueues (:func:`enqueue`) and polls
(:func:`get_job`); it never runs a handler itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from hfops import queue
from hfops.config import Settings, load_settings, settings_from_mapping, settings_to_mapping
from hfops.errors import HfopsError, JobError
from hfops.net import one_line
from hfops.records import Record
from hfops.store import dumps, get_db, loads, one, rows, utcnow, write_tx

log = logging.getLogger("hfops.jobs")
JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
ACTIVE_STATUSES = ("queued", "running")


@dataclass
class Progress:
    """Reports a job's progress to the store, throttled to one write per ``interval`` seconds."""

    db_path: str
    job_id: int
    interval: float = 0.5
    _last: float = 0.0

    def __call__(
        self, done: int, total: int | None = None, message: str | None = None, force: bool = False
    ) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.interval and (total is None or done < total):
            return
        self._last = now
        db = get_db(self.db_path)
        with write_tx(db):
            db.execute(
                "UPDATE jobs SET done = ?, total = COALESCE(?, total), message = COALESCE(?, message), "
                "heartbeat_at = ? WHERE id = ?",
                [done, total, None if message is None else one_line(message, 500), utcnow(), self.job_id],
            )

    def note(self, message: str) -> None:
        """Replace the progress message only (e.g. "waiting 42 s for the Hub's api window")."""
        db = get_db(self.db_path)
        with write_tx(db):
            db.execute(
                "UPDATE jobs SET message = ?, heartbeat_at = ? WHERE id = ?",
                [one_line(message, 500), utcnow(), self.job_id],
            )


@dataclass
class JobContext:
    """What a handler gets: the store, its parameters, the resolved settings, progress and cancellation."""

    db_path: str
    job_id: int
    kind: str
    params: dict[str, Any]
    settings: Settings
    progress: Progress

    def cancelled(self) -> bool:
        """Whether to stop now (poll between batches; return a partial result): an operator asked this job
        to stop, or the worker running it is stopping."""
        if WORKER_STOPPING.is_set():
            return True
        return self.cancel_requested()

    def cancel_requested(self) -> bool:
        """Whether an operator asked this job to stop."""
        row = (
            get_db(self.db_path)
            .execute("SELECT cancel_requested_at FROM jobs WHERE id = ?", [self.job_id])
            .fetchone()
        )
        return bool(row and row[0])


Handler = Callable[[JobContext], dict[str, Any]]

# Set while the worker of this process stops (Ctrl-C): running jobs stop at their next batch and stay
# resumable; the next worker re-runs them (:func:`interrupted_jobs`).
WORKER_STOPPING = threading.Event()
STOPPED_WITH_THE_WORKER = "stopped with the worker; resumes when a worker starts"


@dataclass
class HandlerTable:
    """Kinds -> handler functions; registering a kind twice is a :class:`JobError`."""

    _handlers: dict[str, Handler] = field(default_factory=dict)

    def register(self, kind: str, fn: Handler) -> None:
        if kind in self._handlers:
            raise JobError(f"job kind {kind!r} is registered twice")
        self._handlers[kind] = fn

    def get(self, kind: str) -> Handler | None:
        return self._handlers.get(kind)

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(sorted(self._handlers))

    def __contains__(self, kind: object) -> bool:
        return kind in self._handlers

    def __iter__(self) -> Iterator[str]:
        return iter(self.kinds)


@dataclass
class Job(Record):
    """One job row, decoded."""

    id: int
    kind: str
    params: dict[str, Any]
    status: str
    done: int
    total: int | None
    message: str | None
    error: str | None
    result: dict[str, Any] | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    heartbeat_at: str | None
    cancel_requested_at: str | None = None
    interrupted_at: str | None = None
    settings: dict[str, Any] | None = None  # the enqueuer's resolved settings, as stored

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES


def _job(row: Mapping[str, Any]) -> Job:
    data = dict(row)
    data["params"] = loads(data["params"], {})
    data["result"] = loads(data["result"])
    data["settings"] = loads(data.get("settings"))
    return Job(**data)


def create_job(
    db: sqlite_utils.Database,
    kind: str,
    params: dict[str, Any] | None = None,
    settings: Settings | None = None,
) -> int:
    """Insert a queued job row with its parameters and settings; returns its id (not handed to the worker)."""
    job_id = _insert_job(db, kind, params, settings, None)
    assert job_id is not None
    return job_id


def _insert_job(
    db: sqlite_utils.Database,
    kind: str,
    params: dict[str, Any] | None,
    settings: Settings | None,
    unless_created_since: str | None,
) -> int | None:
    """The job insert; with ``unless_created_since``, none (None) when a job of ``kind`` was created since.

    The check and the insert are one write transaction, so two processes firing one slot create one job.
    """
    stored_settings = dumps(settings_to_mapping(settings)) if settings is not None else None
    with write_tx(db):
        if unless_created_since is not None and one(
            db, "SELECT id FROM jobs WHERE kind = ? AND created_at >= ?", [kind, unless_created_since]
        ):
            return None
        cursor = db.execute(
            "INSERT INTO jobs (kind, params, settings, status, created_at) VALUES (?, ?, ?, 'queued', ?)",
            [kind, dumps(params or {}), stored_settings, utcnow()],
        )
        return int(cursor.lastrowid or 0)


def enqueue(
    db_path: str, kind: str, params: dict[str, Any] | None = None, settings: Settings | None = None
) -> int:
    """Create a job and hand it to the worker's queue; returns the job id.

    ``settings`` are the enqueuer's resolved settings, stored with the job (the handler never reloads a
    config file); without them the defaults with this store are recorded.
    """
    job_id = enqueue_unless_created_since(db_path, kind, None, params, settings)
    assert job_id is not None
    return job_id


def enqueue_unless_created_since(
    db_path: str,
    kind: str,
    since: str | None,
    params: dict[str, Any] | None = None,
    settings: Settings | None = None,
) -> int | None:
    """:func:`enqueue`, unless a job of ``kind`` was created at or after ``since`` (then None).

    A periodic task fires once per schedule slot in every worker that runs it, and again in a worker
    restarted within the slot; this keeps it to one job per slot.
    """
    resolved = settings if settings is not None else load_settings(None, **{"store.path": db_path})
    job_id = _insert_job(get_db(db_path), kind, params, resolved, since)
    if job_id is not None:
        queue.submit(db_path, job_id, resolved)
    return job_id


def get_job(db: sqlite_utils.Database, job_id: int) -> Job | None:
    """One job, or None."""
    found = one(db, "SELECT * FROM jobs WHERE id = ?", [job_id])
    return _job(found) if found else None


def list_jobs(
    db: sqlite_utils.Database,
    kind: str | None = None,
    limit: int = 20,
    statuses: tuple[str, ...] | None = None,
) -> list[Job]:
    """Most recent jobs first, optionally of one kind and of some statuses."""
    clauses, args = [], []
    if kind:
        clauses.append("kind = ?")
        args.append(kind)
    if statuses:
        clauses.append(f"status IN ({', '.join('?' for _ in statuses)})")
        args.extend(statuses)
    where = f"WHERE {' AND '.join(clauses)} " if clauses else ""
    return [_job(r) for r in rows(db, f"SELECT * FROM jobs {where}ORDER BY id DESC LIMIT ?", [*args, limit])]


def active_jobs(db: sqlite_utils.Database, kind: str | None = None, limit: int = 20) -> list[Job]:
    """Queued or running jobs (the one filter every page uses)."""
    return list_jobs(db, kind, limit, ACTIVE_STATUSES)


def job_settings(job: Job, db_path: str) -> Settings:
    """The settings stored with a job (older rows without them: the defaults with this store)."""
    stored = job.settings
    settings = settings_from_mapping(stored) if isinstance(stored, dict) else load_settings(None)
    settings.store.path = db_path
    return settings


def _finish(db: sqlite_utils.Database, job_id: int, status: str, **values: Any) -> None:
    assignments = ", ".join(f"{name} = ?" for name in values)
    with write_tx(db):
        db.execute(
            f"UPDATE jobs SET status = ?, finished_at = ?{', ' if values else ''}{assignments} WHERE id = ?",
            [status, utcnow(), *values.values(), job_id],
        )


def execute_job(db_path: str, job_id: int, handlers: HandlerTable | Mapping[str, Handler]) -> dict[str, Any]:
    """Run one job to completion in this process with ``handlers``, recording status, progress, result or
    error.

    The worker's table is :data:`hfops.worker.HANDLERS` (``hfops.worker.execute_job`` runs a job with it); a
    feature running its own job in-process passes ``{kind: its_handler}``.
    """
    db = get_db(db_path)
    job = get_job(db, job_id)
    if job is None:
        raise JobError(f"no job {job_id}")
    if job.status == "succeeded":
        return job.result or {}
    if job.cancel_requested_at:
        _finish(db, job_id, "cancelled")
        return {"cancelled": True}
    with write_tx(db):
        db.execute(
            "UPDATE jobs SET status = 'running', started_at = COALESCE(started_at, ?), heartbeat_at = ?, "
            "error = NULL, finished_at = NULL WHERE id = ?",
            [utcnow(), utcnow(), job_id],
        )
    try:
        fn = handlers.get(job.kind)
        if fn is None:
            raise JobError(f"unknown job kind {job.kind!r}")
        context = JobContext(
            db_path, job_id, job.kind, job.params, job_settings(job, db_path), Progress(db_path, job_id)
        )
        from hfops.ledger.hub_window import RunRef, process_scope

        # Waits for the Hub's rate-limit window, in this thread or a pool the handler starts, show on the job.
        with process_scope(lambda notice: context.progress.note(notice.message), RunRef("job", job_id)):
            result = fn(context)
    except Exception as exc:  # recorded for the operator; the worker keeps running
        expected = isinstance(exc, HfopsError)
        message = one_line(exc if expected else f"{type(exc).__name__}: {exc}", 2000)
        _finish(db, job_id, "failed", error=message)
        if expected:
            log.warning("job %s failed: %s", job_id, message)
        else:
            log.error("job %s failed unexpectedly", job_id, exc_info=True)
        return {"error": message}
    if context.cancel_requested():
        _finish(db, job_id, "cancelled", result=dumps(result))
        return {**result, "cancelled": True}
    if WORKER_STOPPING.is_set():  # left running: the next worker's start re-runs it where it stopped
        with write_tx(db):
            db.execute(
                "UPDATE jobs SET message = ?, interrupted_at = ? WHERE id = ?",
                [STOPPED_WITH_THE_WORKER, utcnow(), job_id],
            )
        return {**result, "interrupted": True}
    with write_tx(db):
        db.execute(
            "UPDATE jobs SET status = 'succeeded', result = ?, finished_at = ?, "
            "done = MAX(done, COALESCE(total, 0)) "
            "WHERE id = ?",
            [dumps(result), utcnow(), job_id],
        )
    return result


def cancel(db: sqlite_utils.Database, job_id: int) -> Job:
    """Ask a queued or running job to stop; the handler stops at its next batch (status ``cancelled``)."""
    job = get_job(db, job_id)
    if job is None:
        raise JobError(f"no job {job_id}")
    if not job.active:
        raise JobError(f"job {job_id} is {job.status}; only queued or running jobs can be cancelled")
    with write_tx(db):
        db.execute("UPDATE jobs SET cancel_requested_at = ? WHERE id = ?", [utcnow(), job_id])
    return get_job(db, job_id) or job


def reopen(db: sqlite_utils.Database, job_id: int) -> Job:
    """Make a cancelled or failed job ``queued`` again, not handed to the worker (to run it in-process)."""
    job = get_job(db, job_id)
    if job is None:
        raise JobError(f"no job {job_id}")
    if job.status not in ("cancelled", "failed"):
        raise JobError(f"job {job_id} is {job.status}; only cancelled or failed jobs can be reopened")
    with write_tx(db):
        db.execute(
            "UPDATE jobs SET status = 'queued', cancel_requested_at = NULL, error = NULL, finished_at = NULL "
            "WHERE id = ?",
            [job_id],
        )
    return get_job(db, job_id) or job


def resume(db_path: str, job_id: int) -> Job:
    """Queue a cancelled or failed job again (its handler resumes where it stopped)."""
    job = reopen(get_db(db_path), job_id)
    queue.submit(db_path, job_id, job_settings(job, db_path))
    return job


def interrupted_jobs(db: sqlite_utils.Database) -> list[int]:
    """Jobs left ``running`` by a killed worker, marked with the time they were found (the worker re-runs
    them)."""
    found = [r[0] for r in db.execute("SELECT id FROM jobs WHERE status = 'running' ORDER BY id")]
    if found:
        with write_tx(db):
            db.execute(
                f"UPDATE jobs SET interrupted_at = ?, message = 'interrupted (worker stopped); resuming' "
                f"WHERE id IN ({', '.join('?' for _ in found)})",
                [utcnow(), *found],
            )
    return found
