"""The compute step of an eval run, shared by the in-process path and the remote compute workers.

:class:`BatchComputer` resolves the run's two systems, prepares them on the corpus (index or embed it) and
answers batches of examples: exactly what the run loop did inline before, so the local executor and a remote
worker produce the same outputs for the same batch. In-process it reads and fills the store's inference
cache; on a compute worker (no store) a :class:`MemoryCache` in the worker's memory plays that part.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hfops.config import Settings
from hfops.errors import BackendError, EvalError
from hfops.evals.backends import Outcome, System, resolve_system
from hfops.evals.cache import CacheKey, CacheStats, InferenceCache
from hfops.evals.data import EvalSet, Example

MEMORY_CACHE_ENTRIES = 200_000  # embeddings or texts a compute worker keeps (oldest dropped first)


class MemoryCache(InferenceCache):
    """The inference cache of a compute worker: the same interface, values in this process's memory."""

    def __init__(self, max_entries: int = MEMORY_CACHE_ENTRIES) -> None:  # no store: no super().__init__
        self.stats = CacheStats()
        self.max_entries = max_entries
        self._values: OrderedDict[tuple[str, str, str, str], tuple[str, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def _get(self, key: CacheKey, hashes: Sequence[str]) -> dict[str, tuple[str, bytes]]:
        with self._lock:
            found = {}
            for h in hashes:
                value = self._values.get((key.backend, key.model, key.revision, h))
                if value is not None:
                    found[h] = value
            return found

    def _put(self, key: CacheKey, items: Iterable[tuple[str, str, bytes]]) -> None:
        with self._lock:
            for h, kind, value in items:
                self._values[(key.backend, key.model, key.revision, h)] = (kind, value)
            while len(self._values) > self.max_entries:
                self._values.popitem(last=False)


@dataclass
class Counts:
    """Model calls and cache hits/misses of one step."""

    calls: int = 0
    cache_hits: int = 0
    cache_misses: int = 0


@dataclass
class BatchOutputs:
    """What computing one batch produced: one outcome per example and system, and the step's counts."""

    candidate: list[Outcome]
    production: list[Outcome]
    calls: int
    cache: InferenceCache  # its ``stats`` hold the batch's hits and misses (the store owner resets them)


class BatchComputer:
    """A run's candidate and production systems, prepared once, answering batch after batch."""

    def __init__(
        self,
        model_id: str,
        production_id: str,
        task: str,
        settings: Settings,
        cache: InferenceCache,
        backend: str = "auto",
        systems: tuple[System, System] | None = None,
    ) -> None:
        """Resolve both systems here (the local path), or take ``systems`` a compute worker acquired."""
        if systems is None:
            systems = (
                resolve_system(model_id, task, settings, backend),
                resolve_system(production_id, task, settings),
            )
        self.candidate: System = systems[0]
        self.production: System = systems[1]
        self.cache = cache
        self.lock = threading.Lock()  # systems are not thread-safe: one batch at a time

    def prepare(self, evalset: EvalSet) -> Counts:
        """Prepare both systems on ``evalset`` (cached where possible); the calls and cache counts it took."""
        for system in (self.candidate, self.production):
            try:
                system.prepare(evalset, self.cache)
            except BackendError as exc:
                raise EvalError(f"{system.model_id}: could not prepare the corpus: {exc}") from None
        counts = Counts(
            self.candidate.calls + self.production.calls, self.cache.stats.hits, self.cache.stats.misses
        )
        self.cache.stats.hits = self.cache.stats.misses = 0
        return counts

    def compute(self, examples: Sequence[Example], evalset: EvalSet) -> BatchOutputs:
        """Both systems' outcomes for ``examples`` (failures are per-example errors, not exceptions)."""
        calls_before = self.candidate.calls + self.production.calls
        cand = self.candidate.run(examples, evalset, self.cache)
        prod = self.production.run(examples, evalset, self.cache)
        calls = self.candidate.calls + self.production.calls - calls_before
        return BatchOutputs(cand, prod, calls, self.cache)
