"""The compute queue on Redis (huey's ``RedisHuey``) and the compute worker that serves it.

One huey instance, ``hfops_compute``, carries one task, ``hfops.compute_batch(payload)``: the store owner
enqueues a batch (payload in, see :mod:`hfops.remote.payload`), a compute worker anywhere runs it and
returns its outputs through huey's result storage. Everything else the two sides tell each other also lives
in huey's storage (``huey.put`` / ``huey.get``), under these keys:

- ``hfops:worker:<host:pid>``: the worker's heartbeat, a counter rewritten every :data:`HEARTBEAT_SECONDS`.
- ``hfops:claim:<task id>``: which worker runs a batch and in which phase (preparing / computing).
- ``hfops:refused:<task id>``: a worker refused that payload (another schema version), with the reason.
- ``hfops:corpus:<sha>``: a run's corpus, published once by the owner (content-addressed).

A worker killed mid-batch stops beating; the owner notices the stale claim after :data:`LEASE_SECONDS` and
puts the batch back on the queue (huey's own retries cover exceptions inside the task: :data:`TASK_RETRIES`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from huey import RedisHuey
from huey.api import Task, TaskWrapper
from huey.consumer import Consumer
from redis.exceptions import RedisError

from hfops import progress
from hfops.config import settings_from_mapping
from hfops.errors import HfopsError, JobError, RemoteError
from hfops.evals.data import EvalSet
from hfops.queue import redacted
from hfops.remote.acquire import worker_system
from hfops.remote.compute import BatchComputer, Counts, MemoryCache
from hfops.remote.payload import (
    EVAL_BATCH,
    PING,
    SCHEMA_VERSION,
    SchemaMismatch,
    check_schema,
    digest,
    example_from,
    outcome_data,
)

log = logging.getLogger("hfops.remote")

COMPUTE_QUEUE = "hfops_compute"
TASK_NAME = "hfops.compute_batch"
HEARTBEAT_SECONDS = 1.0
LEASE_SECONDS = 10.0  # a claim whose worker has not beaten for this long is lost: the batch is re-queued
TASK_RETRIES = 2  # huey retries of a batch whose compute raised (a crash, not an expected failure)
TASK_RETRY_DELAY = 1.0
PREPARED_RUNS = 2  # prepared systems a worker keeps (one per run it serves), oldest dropped first
POLL_INITIAL_DELAY = 0.1
POLL_MAX_DELAY = 0.5
POLL_BACKOFF = 1.15

# The store path a compute worker's settings hold: one that never exists (an empty path is the working
# directory to Path(...).exists(), which the resolver would take for a store holding added folders).
NO_STORE = os.path.join(os.devnull, "no-store-on-a-compute-worker")

_HUEYS: dict[str, RedisHuey] = {}
_TASKS: dict[str, TaskWrapper] = {}
_service: ComputeService | None = None


def worker_key(name: str) -> str:
    return f"hfops:worker:{name}"


def claim_key(task_id: str) -> str:
    return f"hfops:claim:{task_id}"


def refusal_key(task_id: str) -> str:
    return f"hfops:refused:{task_id}"


def corpus_key(corpus: dict[str, str]) -> str:
    return f"hfops:corpus:{digest(corpus)}" if corpus else ""


def compute_huey(url: str) -> RedisHuey:
    """The compute queue at ``url`` with its one task registered (one instance per URL and process)."""
    if url not in _HUEYS:
        huey = RedisHuey(
            name=COMPUTE_QUEUE,
            url=url,
            results=True,
            store_none=False,
            store_intermediate_errors=False,  # a batch that will be retried has no result yet
            notify_result=True,  # the owner blocks on a result instead of polling for it
        )
        _TASKS[url] = huey.task(
            name=TASK_NAME, retries=TASK_RETRIES, retry_delay=TASK_RETRY_DELAY, context=True
        )(_compute_batch)
        _HUEYS[url] = huey
    return _HUEYS[url]


def compute_task(url: str) -> TaskWrapper:
    """The ``hfops.compute_batch`` task of the queue at ``url``."""
    compute_huey(url)
    return _TASKS[url]


def worker_name() -> str:
    """This process as a compute worker: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _compute_batch(payload: dict[str, Any], task: Task | None = None) -> dict[str, Any] | None:
    """The task body: only a process serving the queue (:class:`ComputeService`) runs it."""
    if _service is None:
        raise JobError("this process is not a compute worker (start one with `hfops worker --role compute`)")
    return _service.handle(payload, task)


@dataclass
class _Prepared:
    computer: BatchComputer
    evalset: EvalSet
    ready: bool = False
    pending: Counts = field(default_factory=Counts)  # prepare counts not yet reported with a batch


class ComputeService:
    """A compute worker: serves the compute queue, never opens a store, beats while it runs."""

    def __init__(self, url: str, workers: int = 1) -> None:
        self.url = url
        self.name = worker_name()
        self.huey = compute_huey(url)
        self.workers = max(1, workers)
        self.refused: str | None = None
        self._prepared: OrderedDict[str, _Prepared] = OrderedDict()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._beater: threading.Thread | None = None
        self.consumer = Consumer(
            self.huey,
            workers=self.workers,
            worker_type="thread",
            periodic=False,
            check_worker_health=True,
            initial_delay=POLL_INITIAL_DELAY,
            max_delay=POLL_MAX_DELAY,
            backoff=POLL_BACKOFF,
        )

    # --- lifecycle ------------------------------------------------------------------------------------------

    def _install(self) -> None:
        global _service
        try:
            self.huey.storage.conn.ping()  # a wrong URL fails here, before any task is taken
        except RedisError as exc:
            raise RemoteError(f"the compute queue at {redacted(self.url)} is unreachable: {exc}") from None
        _service = self
        self._beat()
        self._beater = threading.Thread(target=self._beat_loop, name="hfops-heartbeat", daemon=True)
        self._beater.start()
        log.info("compute worker %s on %s (payload schema %s)", self.name, redacted(self.url), SCHEMA_VERSION)

    def run(self) -> None:
        """Serve the queue in the foreground until interrupted (or a payload is refused)."""
        self._install()
        try:
            self.consumer.run()
        finally:
            self.close()

    def start(self) -> None:
        """Serve the queue in background threads (the ``all`` role, next to the jobs consumer)."""
        self._install()
        self.consumer.start()

    def stop(self) -> None:
        """Stop taking batches, let the running ones finish, stop beating."""
        self.consumer.stop(graceful=True)
        self.close()

    def close(self) -> None:
        self._stopping.set()
        if self._beater is not None:
            self._beater.join(timeout=5)
        try:
            self.huey.delete(worker_key(self.name))
        except Exception:  # Redis gone: the owner sees the heartbeat stop anyway
            log.debug("could not remove the heartbeat of %s", self.name, exc_info=True)

    def _beat(self, count: int = 0) -> None:
        self.huey.put(worker_key(self.name), {"beat": count, "schema": SCHEMA_VERSION, "at": time.time()})

    def _beat_loop(self) -> None:
        count = 1
        while not self._stopping.wait(HEARTBEAT_SECONDS):
            try:
                self._beat(count)
            except Exception as exc:  # Redis unreachable for a moment: keep trying
                log.warning("heartbeat of %s failed: %s", self.name, exc)
            count += 1

    # --- tasks ----------------------------------------------------------------------------------------------

    def refuse(self, task: Task | None, message: str) -> None:
        """Refuse a payload of another schema: put it back for a worker that speaks it, stop serving."""
        log.error("%s", message)
        # the refusal and the payload go back to Redis before the stop: once the stop flag is set, the
        # consumer's main thread may end the process before this (daemon) task thread runs another line,
        # and the owner would see its batch vanish, with no reason given
        if task is not None:
            self.huey.put(refusal_key(task.id), {"worker": self.name, "message": message})
            self.huey.enqueue(task)
        self.refused = message
        self.consumer.stop_flag.set()  # take no further task (this thread's loop ends after this one)

    def _claim(self, task: Task | None, phase: str, detail: str = "") -> None:
        if task is not None:
            claim = {"worker": self.name, "phase": phase, "at": time.time(), "detail": detail}
            self.huey.put(claim_key(task.id), claim)

    def _claims(self, task: Task | None, phase: str) -> Callable[..., None]:
        """A progress report ``(done, total, message, force=False)`` into a batch's claim, which the owner
        shows in the job's message: written at most once a second, and always for a new phase or the last
        count."""
        last = [0.0]

        def report(done: int, total: int, message: str, force: bool = False) -> None:
            now = time.monotonic()
            if force or now - last[0] >= HEARTBEAT_SECONDS or (total and done >= total):
                last[0] = now
                self._claim(task, phase, message)

        return report

    def _acquiring(self, task: Task | None, side: str, model_id: str) -> Callable[[int, int, str], None]:
        """Download progress of a batch's model, into its claim."""
        claim = self._claims(task, "acquiring")

        def report(done: int, total: int, message: str) -> None:
            claim(done, total, f"{side} {model_id}: {message or f'{done}/{total} bytes'}")

        return report

    def handle(self, payload: dict[str, Any], task: Task | None) -> dict[str, Any] | None:
        """Compute one payload; a failure the operator must see comes back as ``failed``."""
        try:
            check_schema(payload, self.name)
        except SchemaMismatch as exc:
            self.refuse(task, str(exc))
            return None
        base = {"schema": SCHEMA_VERSION, "key": payload.get("key"), "worker": self.name}
        if payload.get("kind") == PING:
            return {**base, "pong": len(payload.get("examples") or [])}
        if payload.get("kind") != EVAL_BATCH:
            return {
                **base,
                "failed": f"compute worker {self.name}: unknown compute kind {payload.get('kind')!r}",
            }
        self._claim(task, "preparing")
        started = time.perf_counter()
        try:
            prepared = self._prepared_for(payload, task)
            examples = [example_from(e) for e in payload["examples"]]
            with prepared.computer.lock:
                if not prepared.ready:
                    self._claim(task, "preparing")  # after an acquisition's progress
                    # the corpus embedding's counts and time left, as a run on the owner reports them
                    with progress.scope(progress.Phases(self._claims(task, "preparing"))):
                        prepared.pending = prepared.computer.prepare(prepared.evalset)
                    prepared.ready = True
                prepared.computer.cache.stats.hits = prepared.computer.cache.stats.misses = 0
                self._claim(task, "computing")
                outputs = prepared.computer.compute(examples, prepared.evalset)
                extra, prepared.pending = prepared.pending, Counts()
        except HfopsError as exc:
            return {**base, "failed": f"compute worker {self.name}: {exc}"}
        computer = prepared.computer
        return {
            **base,
            "systems": {
                "candidate": computer.candidate.describe(),
                "production": computer.production.describe(),
            },
            "candidate": [outcome_data(o) for o in outputs.candidate],
            "production": [outcome_data(o) for o in outputs.production],
            "calls": outputs.calls + extra.calls,
            "cache_hits": outputs.cache.stats.hits + extra.cache_hits,
            "cache_misses": outputs.cache.stats.misses + extra.cache_misses,
            "seconds": time.perf_counter() - started,
        }

    def _prepared_for(self, payload: dict[str, Any], task: Task | None = None) -> _Prepared:
        ident = digest(
            [
                payload["candidate"],
                payload["production"],
                payload["task"],
                payload["dataset"],
                payload["dataset_version"],
                payload["corpus_key"],
                payload["settings"],
            ]
        )
        with self._lock:
            found = self._prepared.get(ident)
            if found is not None:
                self._prepared.move_to_end(ident)
                return found
            corpus: dict[str, str] = {}
            if payload["corpus_key"]:
                corpus = self.huey.get(payload["corpus_key"], peek=True)
                if corpus is None:
                    raise JobError(
                        f"the corpus of run {payload.get('run_id')} is no longer in Redis; resume the run "
                        "from the console (its owner publishes it again)"
                    )
            settings = settings_from_mapping(payload["settings"])
            settings.store.path = NO_STORE  # a compute worker has no store
            settings.models.cache_dir = ""  # nor the owner's folders: its own HF cache (HF_HUB_CACHE)
            evalset = EvalSet(
                payload["dataset"],
                payload["task"],
                payload.get("source", ""),
                payload["dataset_version"],
                "",
                [],
                corpus,
            )
            systems = tuple(
                worker_system(
                    payload[side]["model_id"],
                    payload["task"],
                    settings,
                    payload[side].get("backend", "auto"),
                    payload[side].get("revision"),
                    self._acquiring(task, side, payload[side]["model_id"]),
                )
                for side in ("candidate", "production")
            )
            computer = BatchComputer(
                payload["candidate"]["model_id"],
                payload["production"]["model_id"],
                payload["task"],
                settings,
                MemoryCache(),
                payload["candidate"].get("backend", "auto"),
                (systems[0], systems[1]),
            )
            found = _Prepared(computer, evalset)
            self._prepared[ident] = found
            while len(self._prepared) > PREPARED_RUNS:
                self._prepared.popitem(last=False)
            return found
