"""The worker: the composition root that owns the table of job kinds and runs the huey consumer.

``hfops worker`` starts it; ``make run`` starts it next to the console. :data:`HANDLERS` maps each job kind
to its feature's handler (``fn(ctx: JobContext) -> dict``); :func:`execute_job` runs one job with that table
in this process (the CLI's in-process runs and the tests use it). Handlers commit page by page (sync) or
batch by batch (evals) so that a killed job resumes; the worker re-queues jobs a killed worker left running.
The nightly periodic task enqueues ``eval_nightly`` with the worker's own resolved settings.
"""

from __future__ import annotations

import logging
from typing import Any

from huey import crontab
from huey.consumer import Consumer

from hfops import discovery, jobs, publish, queue
from hfops.config import Settings, load_settings
from hfops.evals import nightly, runs
from hfops.models import jobs as model_jobs
from hfops.net import install_log_scrubber
from hfops.store import connect

log = logging.getLogger("hfops.worker")

# Queue polling: a queued job starts within ~0.5 s however long the worker idled (huey's default backs
# off to 10 s between polls); one indexed SELECT per poll costs next to nothing.
POLL_INITIAL_DELAY = 0.1
POLL_MAX_DELAY = 0.5
POLL_BACKOFF = 1.15


def build_handlers() -> jobs.HandlerTable:
    """The table of job kinds -> handlers (each kind once)."""
    table = jobs.HandlerTable()
    table.register("sync", discovery.sync_job)
    table.register("eval_run", runs.eval_run_job)
    table.register("eval_nightly", nightly.nightly_job)
    table.register("publish", publish.publish_job)
    table.register("models_pull", model_jobs.models_pull_job)
    table.register("models_check", model_jobs.models_check_job)
    return table


HANDLERS = build_handlers()


def execute_job(db_path: str, job_id: int) -> dict[str, Any]:
    """Run job ``job_id`` to completion in this process with the worker's handlers."""
    return jobs.execute_job(db_path, job_id, HANDLERS)


def _add_nightly(huey: Any, db_path: str, settings: Settings) -> None:
    schedule = crontab(hour=str(settings.eval.nightly_hour), minute=str(settings.eval.nightly_minute))

    @huey.periodic_task(schedule, name="hfops.nightly")
    def nightly() -> None:
        jobs.enqueue(db_path, "eval_nightly", {}, settings)


def run_worker(db_path: str, settings: Settings | None = None, workers: int = 1) -> None:
    """Run the consumer in the foreground until interrupted; re-queue jobs a killed worker left running."""
    install_log_scrubber()
    settings = settings or load_settings(None, **{"store.path": db_path})
    queue.set_executor(execute_job)
    huey = queue.get_huey(db_path, settings)
    _add_nightly(huey, db_path, settings)
    db = connect(db_path)
    for job_id in jobs.interrupted_jobs(db):
        log.warning("re-queuing job %s left running by a previous worker", job_id)
        queue.submit(db_path, job_id, settings)
    consumer = Consumer(
        huey,
        workers=workers,
        worker_type="thread",
        periodic=True,
        check_worker_health=True,
        initial_delay=POLL_INITIAL_DELAY,
        max_delay=POLL_MAX_DELAY,
        backoff=POLL_BACKOFF,
    )
    consumer.run()
