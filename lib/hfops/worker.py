"""The worker: a huey consumer over the store's SQLite file that executes jobs.

``hfops worker`` starts it; ``make run`` starts it next to the console. Huey's own tables live in the
same SQLite file as the store (one file of state). The worker is the process that owns the store's job
writes: handlers run here and commit page by page (sync) or batch by batch (evals) so that a killed job
resumes. Inside each handler the compute is kept apart from the writes — fetching and parsing a page
(``discovery.HubSource.pages`` / ``parse_record``) and scoring a batch (``evals.runs`` via the backends and
``evals.stats``) return values, and separate functions store them — which is the seam along which a
``RedisHuey`` deployment would run the compute on other machines and keep the writes here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from huey import SqliteHuey, crontab
from huey.consumer import Consumer

from hfops.jobs import execute_job, interrupted_jobs
from hfops.store import connect

log = logging.getLogger("hfops.worker")
_HUEYS: dict[str, SqliteHuey] = {}
_TASKS: dict[str, Callable[..., Any]] = {}


def get_huey(db_path: str, nightly_hour: int = 2, nightly_minute: int = 0) -> SqliteHuey:
    """The huey instance for the store at ``db_path`` (tasks registered once per instance)."""
    key = str(Path(db_path).resolve())
    if key not in _HUEYS:
        connect(db_path)  # make sure the store exists and is migrated before huey adds its tables
        huey = SqliteHuey(name="hfops", filename=db_path, timeout=30, results=False)

        @huey.task(name="hfops.run_job")
        def run_job(path: str, job_id: int) -> None:
            execute_job(path, job_id)

        @huey.periodic_task(crontab(hour=str(nightly_hour), minute=str(nightly_minute)), name="hfops.nightly")
        def nightly() -> None:
            from hfops.jobs import enqueue

            enqueue(db_path, "eval_nightly", {})

        _HUEYS[key] = huey
        _TASKS[key] = run_job
    return _HUEYS[key]


def run_job_task(huey: SqliteHuey) -> Callable[..., Any]:
    """The ``run_job`` task of a huey instance from :func:`get_huey`."""
    for key, instance in _HUEYS.items():
        if instance is huey:
            return _TASKS[key]
    raise KeyError("huey instance not created by get_huey")


def run_worker(db_path: str, workers: int = 1, nightly_hour: int = 2, nightly_minute: int = 0) -> None:
    """Run the consumer in the foreground until interrupted; re-queue jobs a killed worker left running."""
    huey = get_huey(db_path, nightly_hour, nightly_minute)
    db = connect(db_path)
    task = run_job_task(huey)
    for job_id in interrupted_jobs(db):
        log.warning("re-queuing job %s left running by a previous worker", job_id)
        task(db_path, job_id)
    consumer = Consumer(huey, workers=workers, worker_type="thread", periodic=True, check_worker_health=True)
    consumer.run()
