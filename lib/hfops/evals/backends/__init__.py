"""Systems that can be evaluated: one interface, several backends (the public names of the package).

- :mod:`~hfops.evals.backends.base`: :class:`System`, :class:`Outcome`, the model libraries' quiet switches.
- :mod:`~hfops.evals.backends.retries`: HF Inference API retries and messages (on :mod:`hfops.net`).
- :mod:`~hfops.evals.backends.embedders`: the packaged MiniLM / HF-cache sentence-transformers / Inference
  API.
- :mod:`~hfops.evals.backends.generators`: Inference API chat completion / local transformers generation.
- :mod:`~hfops.evals.backends.systems`: dense and BM25 retrieval, generative and lexical QA.
- :mod:`~hfops.evals.backends.resolve`: which backend serves a model (:func:`resolve_system`).

Every model output goes through the :class:`~hfops.evals.cache.InferenceCache`; models load lazily, on
the first cache miss, never at import (importing this package loads numpy, not torch).
"""

from __future__ import annotations

from hfops.errors import BackendError
from hfops.evals.backends.base import (
    API_BATCH,
    EMBED_CHUNK,
    ENCODE_BATCH,
    MAX_CONTEXT_CHARS,
    TOP_K,
    Outcome,
    System,
)
from hfops.evals.backends.embedders import Embedder, InferenceApiEmbedder, SentenceTransformerEmbedder
from hfops.evals.backends.generators import ChatApiGenerator, Generator, LocalTextGenerator
from hfops.evals.backends.resolve import (
    BACKEND_CHOICES,
    MINILM_PACKAGE,
    hf_cache_dir,
    local_snapshot,
    packaged_available,
    packaged_minilm,
    resolve_system,
)
from hfops.evals.backends.retries import call_with_retries, describe_error
from hfops.evals.backends.systems import (
    BASELINES,
    NO_ANSWER_REPLY,
    BM25Retriever,
    DenseRetriever,
    GenerativeQA,
    LexicalQA,
    parse_answer,
    qa_messages,
)
from hfops.evals.tasks import MINILM_ID

__all__ = [
    "API_BATCH",
    "BACKEND_CHOICES",
    "BASELINES",
    "EMBED_CHUNK",
    "ENCODE_BATCH",
    "MAX_CONTEXT_CHARS",
    "MINILM_ID",
    "MINILM_PACKAGE",
    "NO_ANSWER_REPLY",
    "TOP_K",
    "BM25Retriever",
    "BackendError",
    "ChatApiGenerator",
    "DenseRetriever",
    "Embedder",
    "GenerativeQA",
    "Generator",
    "InferenceApiEmbedder",
    "LexicalQA",
    "LocalTextGenerator",
    "Outcome",
    "SentenceTransformerEmbedder",
    "System",
    "call_with_retries",
    "describe_error",
    "hf_cache_dir",
    "local_snapshot",
    "packaged_available",
    "packaged_minilm",
    "parse_answer",
    "qa_messages",
    "resolve_system",
]
