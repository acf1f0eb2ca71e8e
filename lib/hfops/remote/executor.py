"""The seam between an eval run's loop and where its batches are computed.

The run loop (:func:`hfops.evals.runs._walk`) asks a :class:`BatchExecutor` for each batch's outputs and
stores them itself (the store owner writes; nothing else does). Which executor is used follows the queue
backend, nothing else:

- ``[queue] backend = "sqlite"``: :class:`LocalExecutor`, in this process with the store's inference cache
  (the same code the loop ran inline before).
- ``backend = "redis"``: :class:`RemoteExecutor`, through the compute queue (:mod:`hfops.remote.broker`).
  A window of batches is queued ahead; batch keys are content-addressed, so an owner that stopped and came
  back (the job resumed) adopts the results that waited in Redis instead of queueing the work again.
  While it waits it reports which worker computes the batch, re-queues a batch whose worker stopped beating
  (killed mid-batch) and surfaces a refusal (a worker of another payload schema version).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from huey.api import Error as HueyError
from redis.exceptions import RedisError

from hfops.config import Settings, settings_to_mapping
from hfops.errors import EvalError, JobError, RemoteError
from hfops.evals.cache import InferenceCache
from hfops.evals.data import EvalSet, Example
from hfops.evals.records import EvalRun
from hfops.remote import broker
from hfops.remote.compute import BatchComputer, BatchOutputs, Counts, MemoryCache
from hfops.remote.payload import SCHEMA_VERSION, eval_batch, outcomes_from

if TYPE_CHECKING:
    import sqlite_utils

log = logging.getLogger("hfops.remote")

Batch = Sequence[tuple[int, Example]]
ProgressFn = Callable[..., None]
CancelledFn = Callable[[], bool]

WINDOW = 8  # batches queued ahead of the one being stored (bounds the work left behind by a cancel)
WAIT_SLICE = 0.5  # seconds the owner blocks on a result notification before checking cancel and leases
WATCH_SECONDS = 1.0  # how often the owner checks claims, heartbeats and refusals while it waits
ORPHAN_SECONDS = 2.0  # a batch neither queued, claimed nor answered for this long is queued again


class BatchExecutor(Protocol):
    """Computes a run's batches; the caller stores each one, then says so with :meth:`stored`."""

    def prepare(self) -> Counts:
        """Prepare the systems (or publish what remote workers need); the calls and cache counts it took."""
        ...

    def compute(self, batch: Batch) -> BatchOutputs | None:
        """The outputs of ``batch`` (one of the planned batches, in order); None when the run
        was cancelled."""
        ...

    def stored(self, batch: Batch) -> None:
        """``batch`` is committed to the store: forget what was kept for it."""
        ...

    def close(self) -> None:
        """The run walked every batch: release what was published for it."""
        ...


def batch_executor(
    db: sqlite_utils.Database,
    run: EvalRun,
    evalset: EvalSet,
    settings: Settings,
    batches: Sequence[Batch],
    report: ProgressFn,
    cancelled: CancelledFn,
    done: int,
) -> BatchExecutor:
    """The executor for ``settings``: in-process with the SQLite queue, the compute workers with Redis."""
    if settings.queue.backend == "redis":
        return RemoteExecutor(settings.queue.url, run, evalset, settings, batches, report, cancelled, done)
    return LocalExecutor(db, run, evalset, settings)


class LocalExecutor:
    """In this process, with the store's inference cache."""

    def __init__(self, db: sqlite_utils.Database, run: EvalRun, evalset: EvalSet, settings: Settings) -> None:
        self.db, self.run, self.evalset, self.settings = db, run, evalset, settings
        self.computer: BatchComputer | None = None

    def prepare(self) -> Counts:
        run = self.run
        self.computer = BatchComputer(
            run.model_id,
            run.production_id,
            run.task,
            self.settings,
            InferenceCache(self.db),
            run.params.get("backend", "auto"),
        )
        return self.computer.prepare(self.evalset)

    def compute(self, batch: Batch) -> BatchOutputs | None:
        if self.computer is None:
            raise JobError("prepare() comes before compute()")
        return self.computer.compute([e for _, e in batch], self.evalset)

    def stored(self, batch: Batch) -> None:
        return None

    def close(self) -> None:
        return None


def _ids(batch: Batch) -> tuple[str, ...]:
    return tuple(e.id for _, e in batch)


class RemoteExecutor:
    """Through the compute queue on Redis: payloads out, outputs back through huey's result storage."""

    def __init__(
        self,
        url: str,
        run: EvalRun,
        evalset: EvalSet,
        settings: Settings,
        batches: Sequence[Batch],
        report: ProgressFn,
        cancelled: CancelledFn,
        done: int,
    ) -> None:
        self.url, self.run, self.evalset = url, run, evalset
        self.report, self.cancelled = report, cancelled
        self.done, self.total = done, len(evalset.examples)
        self.huey = broker.compute_huey(url)
        self.task = broker.compute_task(url)
        self.corpus_key = f"{broker.corpus_key(evalset.corpus)}:run{run.id}" if evalset.corpus else ""
        mapping = settings_to_mapping(settings)
        mapping["store"]["path"] = ""  # compute workers have no store
        self.payloads: list[dict[str, Any]] = []
        self.index: dict[tuple[str, ...], int] = {}
        for position, batch in enumerate(batches):
            payload = eval_batch(
                run.id,
                run.task,
                evalset,
                {
                    "model_id": run.model_id,
                    "backend": run.params.get("backend", "auto"),
                    "revision": run.candidate_revision or None,
                },
                {"model_id": run.production_id, "revision": run.production_revision or None},
                mapping,
                [e for _, e in batch],
                self.corpus_key,
            )
            self.payloads.append(payload)
            self.index[_ids(batch)] = position
        self.sent: set[int] = set()
        self.finished: set[int] = set()
        self.head = 0
        self.systems: dict[str, Any] | None = None
        self._beats: dict[str, tuple[Any, float]] = {}
        self._orphans: dict[str, float] = {}
        self._refusals: set[str] = set()
        self._last_watch = 0.0
        self._note = ""

    # --- the executor interface -----------------------------------------------------------------------------

    def prepare(self) -> Counts:
        try:
            if self.corpus_key and not self.huey.storage.has_data_for_key(self.corpus_key):
                self.huey.put(self.corpus_key, dict(self.evalset.corpus))
            self._top_up()
        except RedisError as exc:
            raise self._unreachable(exc) from None
        return Counts()  # the workers prepare; their counts come back with their first batch

    def compute(self, batch: Batch) -> BatchOutputs | None:
        position = self.index[_ids(batch)]
        key = self.payloads[position]["key"]
        try:
            self.head = position
            self._top_up()
            while not self.huey.storage.has_data_for_key(key):
                if self.cancelled():
                    return None
                self.huey.storage.wait_result(key, timeout=WAIT_SLICE)
                if time.monotonic() - self._last_watch >= WATCH_SECONDS:
                    self._watch(position)
            value = self.huey.get(key, peek=True)
        except RedisError as exc:
            raise self._unreachable(exc) from None
        return self._outputs(position, batch, value)

    def stored(self, batch: Batch) -> None:
        position = self.index[_ids(batch)]
        self.finished.add(position)
        self.done += len(batch)
        try:
            self._forget(position)
        except RedisError as exc:  # the rows are committed; a key left behind is only clutter
            log.warning("could not clean up batch %s in Redis: %s", self.payloads[position]["key"], exc)

    def _forget(self, position: int) -> None:
        key = self.payloads[position]["key"]
        for name in (key, broker.claim_key(key), broker.refusal_key(key)):
            self.huey.delete(name)

    def close(self) -> None:
        if self.corpus_key:
            try:
                self.huey.delete(self.corpus_key)
            except RedisError as exc:
                log.warning("could not remove the corpus of run %s from Redis: %s", self.run.id, exc)

    # --- queueing, adoption, leases -------------------------------------------------------------------------

    def _unreachable(self, exc: Exception) -> RemoteError:
        return RemoteError(f"the compute queue at {broker.redacted(self.url)} is unreachable: {exc}")

    def _enqueue(self, position: int) -> None:
        payload = self.payloads[position]
        self.huey.enqueue(self.task.s(payload, id=payload["key"]))

    def _top_up(self) -> None:
        """Queue the batches of the window not sent yet, adopting those a previous owner already queued."""
        wanted = [
            p
            for p in range(self.head, min(len(self.payloads), self.head + WINDOW))
            if p not in self.sent and p not in self.finished
        ]
        if not wanted:
            return
        queued = {task.id for task in self.huey.pending()}
        for position in wanted:
            key = self.payloads[position]["key"]
            known = (
                key in queued
                or self.huey.storage.has_data_for_key(key)
                or self.huey.get(broker.claim_key(key), peek=True) is not None
            )
            if known:
                log.info("run %s: batch %s adopted (queued or computed before)", self.run.id, key)
            else:
                self._enqueue(position)
            self.sent.add(position)

    def _requeue(self, position: int, why: str) -> None:
        key = self.payloads[position]["key"]
        log.warning("run %s: %s; batch %s queued again", self.run.id, why, key)
        self.huey.delete(broker.claim_key(key))
        self._orphans.pop(key, None)
        self._enqueue(position)

    def _watch(self, waiting_for: int) -> None:
        """Re-queue lost batches, note refusals, report what the run is waiting for."""
        now = self._last_watch = time.monotonic()
        queued = {task.id for task in self.huey.pending()}
        computing: list[str] = []
        refused: list[str] = []
        for position in sorted(self.sent - self.finished):
            key = self.payloads[position]["key"]
            if self.huey.storage.has_data_for_key(key):
                continue
            refusal = self.huey.get(broker.refusal_key(key), peek=True)
            if refusal is not None:
                refused.append(str(refusal.get("message")))
                if key not in self._refusals:
                    self._refusals.add(key)
                    log.error("run %s: %s", self.run.id, refusal.get("message"))
            claim = self.huey.get(broker.claim_key(key), peek=True)
            if claim is not None:
                self._orphans.pop(key, None)
                worker = str(claim.get("worker"))
                beat = self.huey.get(broker.worker_key(worker), peek=True)
                token = beat.get("beat") if isinstance(beat, dict) else None
                seen = self._beats.get(worker)
                if seen is None or seen[0] != token:
                    self._beats[worker] = (token, now)
                elif now - seen[1] > broker.LEASE_SECONDS:
                    self._beats.pop(worker, None)
                    self._requeue(position, f"compute worker {worker} stopped while {claim.get('phase')}")
                    continue
                detail = f": {claim['detail']}" if claim.get("detail") else ""
                computing.append(f"{worker} ({claim.get('phase')}{detail})")
            elif key in queued:
                self._orphans.pop(key, None)
            else:
                first = self._orphans.setdefault(key, now)
                if now - first >= ORPHAN_SECONDS:
                    self._requeue(position, "a batch was neither queued, computing nor answered")
        waiting = self.payloads[waiting_for]["key"]
        state = "queued, no compute worker has taken it yet" if waiting in queued else "being computed"
        parts = [
            f"run {self.run.id}: {self.done}/{self.total} examples; waiting for batch "
            f"{waiting_for + 1}/{len(self.payloads)} ({state})"
        ]
        if computing:
            parts.append(f"computing on {', '.join(sorted(set(computing)))}")
        if refused:
            parts.append(f"refused: {refused[-1]}")
        self._note = "; ".join(parts)
        self.report(self.done, self.total, self._note)  # also the job's heartbeat while it waits

    # --- results --------------------------------------------------------------------------------------------

    def _outputs(self, position: int, batch: Batch, value: Any) -> BatchOutputs:
        where = f"batch {position + 1}/{len(self.payloads)} of run {self.run.id}"
        if isinstance(value, HueyError) or not isinstance(value, dict) or value.get("failed"):
            self._forget(position)  # a resumed run computes this batch again
        if isinstance(value, HueyError):
            raise JobError(
                f"{where} failed on a compute worker after {broker.TASK_RETRIES} retries: "
                f"{value.metadata.get('error')}"
            )
        if not isinstance(value, dict) or value.get("schema") != SCHEMA_VERSION:
            raise JobError(f"{where}: a result of another payload schema came back ({value!r:.200})")
        if value.get("failed"):
            raise EvalError(f"{where}: {value['failed']}")
        systems = value["systems"]
        if self.systems is None:
            self.systems = systems
        elif systems != self.systems:
            raise EvalError(
                f"{where}: compute worker {value.get('worker')} evaluates {systems}, another worker "
                f"evaluated {self.systems}; the results would not be comparable (install the same models "
                "and packages on every compute worker, then resume the run)"
            )
        candidate = outcomes_from(value["candidate"])
        production = outcomes_from(value["production"])
        if len(candidate) != len(batch) or len(production) != len(batch):
            raise JobError(f"{where}: {len(candidate)} outcomes came back for {len(batch)} examples")
        cache = MemoryCache(max_entries=0)
        cache.stats.hits, cache.stats.misses = int(value["cache_hits"]), int(value["cache_misses"])
        return BatchOutputs(candidate, production, int(value["calls"]), cache)
