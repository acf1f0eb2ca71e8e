"""The worker: the composition root that owns the table of job kinds and runs the huey consumer.

``hfops worker`` starts it; ``make run`` starts it next to the console. :data:`HANDLERS` maps each job kind
to its feature's handler (``fn(ctx: JobContext) -> dict``); :func:`execute_job` runs one job with that table
in this process (the CLI's in-process runs and the tests use it). Handlers commit page by page (sync) or
batch by batch (evals) so that a killed job resumes; the worker re-queues jobs a killed worker left running.
The nightly periodic task enqueues ``eval_nightly`` with the worker's own resolved settings.

Roles (``hfops worker --role``): ``all`` (the default) is the single-machine worker: it owns the store, runs
every job and, with the Redis queue, also serves the compute queue; ``writer`` owns the store and runs the
jobs (sync, publish, the eval runs' loops and writes) but computes no batch; ``compute`` serves only the
compute queue (:mod:`hfops.remote.broker`) and never opens a store. ``writer`` and ``compute`` need
``[queue] backend = "redis"``; with the SQLite queue the batches are computed in the owner's process.
"""

from __future__ import annotations

import logging
from typing import Any

from huey import crontab
from huey.consumer import Consumer

from hfops import discovery, jobs, ledger, publish, queue, search_index
from hfops.config import Settings, load_settings
from hfops.errors import ConfigError, JobError
from hfops.evals import nightly, runs
from hfops.models import jobs as model_jobs
from hfops.net import install_log_scrubber
from hfops.refine import lab
from hfops.store import connect, utcnow

log = logging.getLogger("hfops.worker")

# Queue polling: a queued job starts within ~0.5 s however long the worker idled (huey's default backs
# off to 10 s between polls); one indexed SELECT per poll costs next to nothing.
POLL_INITIAL_DELAY = 0.1
POLL_MAX_DELAY = 0.5
POLL_BACKOFF = 1.15
ROLES = ("all", "writer", "compute")
# How long a stopping worker waits for its running jobs to reach their next batch (docker stop and systemd
# send SIGKILL 10 s after SIGTERM); a second Ctrl-C or SIGTERM stops at once.
STOP_WAIT_SECONDS = 8.0


def build_handlers() -> jobs.HandlerTable:
    """The table of job kinds -> handlers (each kind once)."""
    table = jobs.HandlerTable()
    table.register("sync", discovery.sync_job)
    table.register("eval_run", runs.eval_run_job)
    table.register("eval_nightly", nightly.nightly_job)
    table.register("publish", publish.publish_job)
    table.register("models_pull", model_jobs.models_pull_job)
    table.register("models_check", model_jobs.models_check_job)
    table.register("refine_bulk", lab.refine_bulk_job)
    return table


HANDLERS = build_handlers()


class JobConsumer(Consumer):
    """huey's consumer, whose stop also tells the running jobs to stop at their next batch.

    huey's graceful stop (Ctrl-C) waits for the running tasks; an eval run or a full sync can take many
    minutes, so each job instead stops at its next batch and stays resumable (:data:`jobs.WORKER_STOPPING`).
    SIGTERM (``docker stop``, systemd, ``kill``) stops the same way: huey's own SIGTERM left the process at
    once, with a job thread in the middle of its batch (native code running as the interpreter exited), the
    job's progress of that batch unsaved. The wait is bounded by :data:`STOP_WAIT_SECONDS`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, shutdown_timeout=STOP_WAIT_SECONDS, **kwargs)
        self._signal_actions[self._interrupt_sig] = (False, True)  # (restart, graceful), as for SIGINT

    def stop(self, graceful: bool = False) -> None:
        jobs.WORKER_STOPPING.set()
        super().stop(graceful=graceful)


def execute_job(db_path: str, job_id: int) -> dict[str, Any]:
    """Run job ``job_id`` to completion in this process with the worker's handlers."""
    return jobs.execute_job(db_path, job_id, HANDLERS)


def enqueue_nightly(db_path: str, settings: Settings) -> int | None:
    """The periodic task: queue this slot's ``eval_nightly`` job, unless a worker already did (then None).

    huey fires the task once in the scheduled minute in every consumer, and again in a worker restarted
    within that minute; the slot is the minute, so the store gets one nightly job per night.
    """
    slot = utcnow()[: len("YYYY-MM-DDTHH:MM")]
    job_id = jobs.enqueue_unless_created_since(db_path, "eval_nightly", slot, {}, settings)
    if job_id is None:
        log.info("the nightly run of this slot is already queued")
    return job_id


def _add_nightly(huey: Any, db_path: str, settings: Settings) -> None:
    schedule = crontab(hour=str(settings.eval.nightly_hour), minute=str(settings.eval.nightly_minute))

    @huey.periodic_task(schedule, name="hfops.nightly")
    def nightly() -> None:
        enqueue_nightly(db_path, settings)


def _add_search_indexing(huey: Any, db_path: str) -> None:
    @huey.periodic_task(crontab(), name="hfops.search_index")  # every minute: other writers' models too
    def index_search() -> None:
        search_index.catch_up(db_path, stop=jobs.WORKER_STOPPING.is_set)


def run_worker(db_path: str, settings: Settings | None = None, workers: int = 1, role: str = "all") -> None:
    """Run the consumer(s) of ``role`` in the foreground until interrupted.

    A store owner (``all``/``writer``) re-queues jobs a killed worker left running; a ``compute`` worker
    serves the compute queue only and never opens the store at ``db_path``.
    """
    install_log_scrubber()
    if role not in ROLES:
        raise ConfigError(f"unknown worker role {role!r} (choose one of {', '.join(ROLES)})")
    settings = settings or load_settings(None, **{"store.path": db_path})
    redis = settings.queue.backend == "redis"
    if role != "all" and not redis:
        raise ConfigError(
            f"--role {role} needs the Redis queue: pass --queue redis://HOST:6379/0 "
            '(or set [queue] backend = "redis" and url)'
        )
    compute = None
    if redis and role in ("all", "compute"):
        from hfops.remote.broker import ComputeService

        compute = ComputeService(settings.queue.url, workers=workers)
    if role == "compute":
        assert compute is not None
        compute.run()
        if compute.refused:
            raise JobError(compute.refused)
        return
    if redis:  # the store owner runs every job on its own store, whatever path the enqueuer saw
        queue.set_executor(lambda _enqueued_path, job_id: execute_job(db_path, job_id))
    else:
        queue.set_executor(execute_job)
    huey = queue.get_huey(db_path, settings)
    _add_nightly(huey, db_path, settings)
    _add_search_indexing(huey, db_path)
    db = connect(db_path)
    ledger.install(db_path, settings)  # every Hub/Inference response of this process into the store's ledger
    for job_id in jobs.interrupted_jobs(db):
        log.warning("re-queuing job %s left running by a previous worker", job_id)
        queue.submit(db_path, job_id, settings)
    consumer = JobConsumer(
        huey,
        workers=workers,
        worker_type="thread",
        periodic=True,
        check_worker_health=True,
        initial_delay=POLL_INITIAL_DELAY,
        max_delay=POLL_MAX_DELAY,
        backoff=POLL_BACKOFF,
    )
    if compute is not None:
        compute.start()
    jobs.WORKER_STOPPING.clear()
    try:
        consumer.run()
    finally:
        jobs.WORKER_STOPPING.clear()  # the jobs have stopped; jobs run in this process later are not stopped
        if compute is not None:
            compute.stop()
