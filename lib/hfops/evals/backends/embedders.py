"""Embedders: texts -> unit vectors, from a local sentence-transformers folder or the HF Inference API."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hfops import config as hfconfig
from hfops.config import Settings
from hfops.errors import BackendError
from hfops.evals.backends.base import API_BATCH, ENCODE_BATCH, quiet_transformers
from hfops.evals.backends.retries import call_with_retries
from hfops.ledger import inference_calls
from hfops.models import loaded


class Embedder(ABC):
    """Turns texts into unit vectors."""

    model_id: str
    backend: str
    revision: str

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), dim)`` float32 unit vectors; raises :class:`BackendError`."""


def unit_vectors(vectors: Any) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), float32."""
    array = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.asarray(array / norms, dtype=np.float32)


class SentenceTransformerEmbedder(Embedder):
    """A sentence-transformers model from a local folder (the packaged MiniLM or the HF cache)."""

    def __init__(
        self, model_id: str, path: Path, revision: str, backend: str, loader: Callable[[], Any] | None = None
    ) -> None:
        self.model_id, self.path, self.revision, self.backend = model_id, path, revision, backend
        self._loader = loader

    def _load(self) -> Any:
        quiet_transformers()
        if self._loader is not None:
            return self._loader()
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(str(self.path), device="cpu")

    @property
    def model(self) -> Any:
        return loaded.shared(f"st:{self.path}", self._load, f"{self.model_id} (sentence-transformers)")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        try:
            vectors = self.model.encode(
                list(texts),
                batch_size=ENCODE_BATCH,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        except Exception as exc:  # torch/tokenizer failures become a clear backend error
            raise BackendError(f"{self.model_id}: local encode failed: {type(exc).__name__}: {exc}") from exc
        return np.asarray(vectors, dtype=np.float32)


class InferenceApiEmbedder(Embedder):
    """HF Inference API feature extraction.

    At ``{base_url}/hf-inference/models/{id}/pipeline/feature-extraction``.
    """

    backend = "hf-inference:feature-extraction"
    revision = "main"

    def __init__(self, model_id: str, settings: Settings) -> None:
        self.model_id = model_id
        self.settings = settings
        base = settings.inference.base_url.rstrip("/")
        self.url = f"{base}/hf-inference/models/{model_id}/pipeline/feature-extraction"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        from huggingface_hub import InferenceClient

        client = InferenceClient(
            model=self.url, token=hfconfig.api_key(), timeout=self.settings.inference.timeout_seconds
        )
        parts = []
        for start in range(0, len(texts), API_BATCH):
            batch = list(texts[start : start + API_BATCH])
            with inference_calls(self.settings.inference.base_url):
                raw = call_with_retries(lambda b=batch: client.feature_extraction(b), self.settings)  # type: ignore[misc]
            try:
                array = np.asarray(raw, dtype=np.float32)
            except (TypeError, ValueError):
                raise BackendError(f"{self.model_id}: invalid response (not a list of vectors)") from None
            if array.ndim == 3:  # token embeddings: mean-pool
                array = array.mean(axis=1)
            if array.ndim != 2 or array.shape[0] != len(batch):
                raise BackendError(f"{self.model_id}: unexpected feature-extraction shape {array.shape}")
            parts.append(array)
        return unit_vectors(np.concatenate(parts)) if parts else np.zeros((0, 0), dtype=np.float32)
