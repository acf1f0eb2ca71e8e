"""The evaluated systems: dense and BM25 retrieval, generative and lexical QA.

- retrieval: :class:`DenseRetriever` over an :class:`~hfops.evals.backends.embedders.Embedder`, and the
  :class:`BM25Retriever` baseline (bm25s).
- qa: :class:`GenerativeQA` over a :class:`~hfops.evals.backends.generators.Generator`, and the
  :class:`LexicalQA` answer-sentence baseline.

The prompt style (copy a span, or answer in a sentence) comes from the task table
(:func:`hfops.evals.tasks.eval_spec`), never from the dataset's name.
"""

from __future__ import annotations

import importlib.metadata
import re
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from hfops import progress
from hfops.errors import BackendError
from hfops.evals.backends.base import EMBED_CHUNK, MAX_CONTEXT_CHARS, TOP_K, Outcome, System
from hfops.evals.backends.embedders import Embedder
from hfops.evals.backends.generators import ChatGenerator
from hfops.evals.cache import InferenceCache, input_hash
from hfops.evals.data import EvalSet, Example
from hfops.evals.scoring import normalize_answer
from hfops.evals.tasks import TASK_SPECS, eval_spec

BASELINES = {name: spec.baseline for name, spec in TASK_SPECS.items()}
NO_ANSWER_REPLY = "unanswerable"
SPAN_STYLE = (
    "Reply with the shortest span of the context that answers the question, copied exactly, "
    f"with no explanation. If the context does not contain the answer, reply exactly: {NO_ANSWER_REPLY}"
)
SENTENCE_STYLE = (
    "Reply with a short answer in one sentence, using only the passages. "
    f"If the passages do not contain the answer, reply exactly: {NO_ANSWER_REPLY}"
)


def _rank(scores: np.ndarray, ids: Sequence[str], k: int = TOP_K) -> list[str]:
    order = np.argsort(-scores, kind="stable")[:k]
    return [ids[i] for i in order]


# --- retrieval ----------------------------------------------------------------------------------------------


class DenseRetriever(System):
    """Rank documents by cosine similarity of embeddings (all cached per text)."""

    task = "retrieval"

    def __init__(self, embedder: Embedder) -> None:
        super().__init__()
        self.embedder = embedder
        self.model_id, self.backend, self.revision = embedder.model_id, embedder.backend, embedder.revision
        self._doc_ids: list[str] = []
        self._doc_index: dict[str, int] = {}
        self._doc_vectors = np.zeros((0, 0), dtype=np.float32)

    def embed_cached(
        self, texts: Sequence[str], cache: InferenceCache, phase: str = ""
    ) -> tuple[np.ndarray, list[bool]]:
        """Vectors for ``texts`` from the cache, computing (and storing) only the misses.

        With a ``phase`` (a corpus), the misses are embedded and cached :data:`EMBED_CHUNK` at a time, each
        chunk reported to the job's progress (``{phase} 640/1730``), and a cancelled job stops between chunks
        (:class:`hfops.progress.Cancelled`) with what it computed kept in the cache.
        """
        found = cache.get_embeddings(self.cache_key, texts)
        hashes = [input_hash(t) for t in texts]
        missing = list(dict.fromkeys(t for t, h in zip(texts, hashes, strict=True) if h not in found))
        if missing:
            already = len(set(hashes)) - len(missing)  # distinct texts found in the cache
            step = progress.phase(phase, already + len(missing), already) if phase else None
            size = EMBED_CHUNK if step is not None else len(missing)
            for start in range(0, len(missing), size):
                if step is not None:
                    progress.stop_if_cancelled()
                part = missing[start : start + size]
                vectors = self.embedder.embed(part)
                self.calls += len(part)
                cache.put_embeddings(self.cache_key, part, vectors)
                for text, vector in zip(part, vectors, strict=True):
                    found[input_hash(text)] = vector
                if step is not None:
                    step.advance(already + start + len(part))
        if not texts:
            return np.zeros((0, 0), dtype=np.float32), []
        computed = set(missing)
        cached = [t not in computed for t in texts]
        return np.stack([found[h] for h in hashes]).astype(np.float32), cached

    def prepare(self, evalset: EvalSet, cache: InferenceCache) -> None:
        self._doc_ids = list(evalset.corpus)
        self._doc_index = {d: i for i, d in enumerate(self._doc_ids)}
        self._doc_vectors, _ = self.embed_cached(
            [evalset.corpus[d] for d in self._doc_ids], cache, f"embedding the corpus with {self.model_id}"
        )

    def run(self, examples: Sequence[Example], evalset: EvalSet, cache: InferenceCache) -> list[Outcome]:
        started = time.perf_counter()
        try:
            queries, cached = self.embed_cached([e.query for e in examples], cache)
        except BackendError as exc:
            return [Outcome(error=str(exc)) for _ in examples]
        per_example = (time.perf_counter() - started) * 1000 / max(1, len(examples))
        outcomes = []
        for example, vector, was_cached in zip(examples, queries, cached, strict=True):
            t0 = time.perf_counter()
            if example.candidates is None:
                ranked = _rank(self._doc_vectors @ vector, self._doc_ids)
            else:
                rows = [self._doc_index[d] for d in example.candidates]
                ranked = _rank(self._doc_vectors[rows] @ vector, example.candidates)
            latency = per_example + (time.perf_counter() - t0) * 1000
            outcomes.append(Outcome(output=ranked, latency_ms=latency, cached=was_cached))
        return outcomes


class BM25Retriever(System):
    """BM25 (bm25s, Lucene variant, English stopwords) over the evaluation corpus: the retrieval baseline."""

    task = "retrieval"
    model_id = BASELINES["retrieval"]
    backend = "baseline"

    def __init__(self) -> None:
        super().__init__()
        self.revision = f"bm25s=={importlib.metadata.version('bm25s')}"
        self._index: Any = None
        self._doc_ids: list[str] = []
        self._doc_index: dict[str, int] = {}

    @staticmethod
    def _tokens(texts: Sequence[str]) -> list[list[str]]:
        import bm25s

        return bm25s.tokenize(list(texts), stopwords="en", return_ids=False, show_progress=False)

    def prepare(self, evalset: EvalSet, cache: InferenceCache) -> None:
        import bm25s

        self._doc_ids = list(evalset.corpus)
        self._doc_index = {d: i for i, d in enumerate(self._doc_ids)}
        progress.phase(f"indexing the corpus with BM25 ({len(self._doc_ids)} documents)")
        self._index = bm25s.BM25()
        self._index.index(self._tokens([evalset.corpus[d] for d in self._doc_ids]), show_progress=False)

    def run(self, examples: Sequence[Example], evalset: EvalSet, cache: InferenceCache) -> list[Outcome]:
        outcomes = []
        for example, tokens in zip(examples, self._tokens([e.query for e in examples]), strict=True):
            t0 = time.perf_counter()
            ids = self._index.get_tokens_ids(tokens)
            scores = (
                self._index.get_scores_from_ids(ids)
                if ids
                else np.zeros(len(self._doc_ids), dtype=np.float32)
            )
            if example.candidates is None:
                ranked = _rank(scores, self._doc_ids)
            else:
                ranked = _rank(scores[[self._doc_index[d] for d in example.candidates]], example.candidates)
            outcomes.append(Outcome(output=ranked, latency_ms=(time.perf_counter() - t0) * 1000))
        return outcomes


# --- question answering -------------------------------------------------------------------------------------


def qa_messages(example: Example, dataset: str) -> list[dict[str, str]]:
    """The prompt of a generative QA system.

    Fixed, so cached replies stay valid; its style comes from the task table.
    """
    style = SPAN_STYLE if eval_spec("qa", dataset).span_answers else SENTENCE_STYLE
    context = example.context[:MAX_CONTEXT_CHARS]
    return [
        {"role": "system", "content": f"You answer questions from the given context. {style}"},
        {"role": "user", "content": f"Context:\n{context}\n\nQuestion: {example.query}\nAnswer:"},
    ]


def parse_answer(reply: str) -> str:
    """The answer in a model reply: its first non-empty line, unquoted; the no-answer reply becomes ``""``."""
    line = next((ln.strip() for ln in reply.strip().splitlines() if ln.strip()), "")
    line = re.sub(r"^(answer\s*:\s*)", "", line, flags=re.IGNORECASE).strip().strip("\"'`").strip()
    if normalize_answer(line).startswith(NO_ANSWER_REPLY):
        return ""
    return line


class GenerativeQA(System):
    """Answers from a generator; every reply cached by (backend, model, revision, prompt hash)."""

    task = "qa"

    def __init__(self, generator: ChatGenerator, max_new_tokens: int) -> None:
        super().__init__()
        self.generator = generator
        self.max_new_tokens = max_new_tokens
        self.model_id, self.backend, self.revision = generator.model_id, generator.backend, generator.revision

    def run(self, examples: Sequence[Example], evalset: EvalSet, cache: InferenceCache) -> list[Outcome]:
        outcomes = []
        for example in examples:
            messages = qa_messages(example, evalset.dataset)
            request = {"messages": messages, "max_new_tokens": self.max_new_tokens, "temperature": 0}
            t0 = time.perf_counter()
            reply = cache.get_text(self.cache_key, request)
            cached = reply is not None
            if reply is None:
                try:
                    self.calls += 1
                    reply = self.generator.generate(messages, self.max_new_tokens)
                except BackendError as exc:
                    outcomes.append(Outcome(latency_ms=(time.perf_counter() - t0) * 1000, error=str(exc)))
                    continue
                cache.put_text(self.cache_key, request, reply)
            outcomes.append(
                Outcome(
                    output=parse_answer(reply), latency_ms=(time.perf_counter() - t0) * 1000, cached=cached
                )
            )
            progress.item_done()  # generation takes seconds per example: the run's count moves with it
        return outcomes


_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")


def _content_tokens(text: str, stopwords: frozenset[str]) -> list[str]:
    return [t for t in normalize_answer(text).split() if t not in stopwords]


class LexicalQA(System):
    """The QA baseline: pick the context sentence sharing most content words with the question.

    Abstains (empty answer = "no answer") when the best sentence covers less than ``threshold`` of the
    question's content words. With span-style answers (the task table's ``prompt_style``, e.g. SQuAD v2)
    it answers with that sentence minus the question's words; otherwise with the whole sentence.
    """

    task = "qa"
    model_id = BASELINES["qa"]
    backend = "baseline"
    revision = "lexical-v1"
    threshold = 0.5

    def __init__(self) -> None:
        super().__init__()
        from bm25s.stopwords import STOPWORDS_EN

        self.stopwords = frozenset(STOPWORDS_EN)

    def answer(self, question: str, context: str, span_style: bool) -> str:
        """The baseline's answer to ``question`` from ``context``."""
        q_tokens = set(_content_tokens(question, self.stopwords))
        if not q_tokens:
            return ""
        best, best_score = "", 0.0
        for sentence in _SENTENCE_SPLIT.split(context):
            sentence = re.sub(r"^\[\d+\]\s*", "", sentence).strip()
            if not sentence:
                continue
            overlap = len(q_tokens.intersection(_content_tokens(sentence, self.stopwords))) / len(q_tokens)
            if overlap > best_score:
                best, best_score = sentence, overlap
        if best_score < self.threshold:
            return ""
        if not span_style:
            return best
        q_words = set(normalize_answer(question).split())
        kept = [w for w in best.split() if normalize_answer(w) not in q_words]
        return " ".join(kept).strip(" ,.;:")

    def run(self, examples: Sequence[Example], evalset: EvalSet, cache: InferenceCache) -> list[Outcome]:
        span_style = eval_spec("qa", evalset.dataset).span_answers
        outcomes = []
        for example in examples:
            t0 = time.perf_counter()
            text = self.answer(example.query, example.context, span_style=span_style)
            outcomes.append(Outcome(output=text, latency_ms=(time.perf_counter() - t0) * 1000))
        return outcomes
