"""The interface every evaluated system implements, and the shared pieces of the backends.

A :class:`System` answers a batch of :class:`~hfops.evals.data.Example` s for its task and returns one
:class:`Outcome` per example (output, latency, cached?, error). Models are loaded once per process and
key, lazily, on the first cache miss, never at import, in the process's one cache of loaded models
(:func:`hfops.models.loaded.shared`).
"""

from __future__ import annotations

import logging
import os
import sys
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hfops.evals.cache import CacheKey, InferenceCache
from hfops.evals.data import EvalSet, Example

TOP_K = 10
ENCODE_BATCH = 32  # sentence-transformers' default batch size
API_BATCH = 32  # texts per feature-extraction request
# Texts per embed call while a corpus is embedded: its progress steps and cache writes (a multiple of
# API_BATCH, so the Inference API gets the same requests as in one call).
EMBED_CHUNK = 2 * API_BATCH
MAX_CONTEXT_CHARS = 6000  # context passed to generative models


@dataclass
class Outcome:
    """What a system produced for one example."""

    output: Any = None  # retrieval: ranked ids (top 10); qa: answer text
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


# The model stack's own switches, read when the library is imported or its logger first configured
# (transformers' progress bars follow huggingface_hub's switch; hfops' download reporting uses its own tqdm
# class, which no switch turns off).
QUIET_ENV = {
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
}
# Libraries that log through Python logging without a handler of their own: their warnings would reach stderr
# through logging's last-resort handler (e.g. sentence-transformers' "No sentence-transformers model found",
# huggingface_hub's advice, llama.cpp's messages before a model sets its verbosity). Errors still show.
QUIET_LOGGERS = ("sentence_transformers", "huggingface_hub", "datasets", "bm25s", "llama-cpp-python")


def quiet_libraries() -> None:
    """The model libraries quiet at their source (env switches, logger levels, progress bars), cheaply:
    nothing is imported; transformers, when already loaded, is set directly. Call before running models."""
    _quiet_switches()
    if "transformers" in sys.modules:
        quiet_transformers()


def _quiet_switches() -> None:
    for name, value in QUIET_ENV.items():
        os.environ.setdefault(name, value)
    if "huggingface_hub" in sys.modules:  # imported already: its environment was read
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def quiet_transformers() -> None:
    """No weight-loading progress bars or advisory warnings from transformers (nor the other model
    libraries)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    _quiet_switches()
