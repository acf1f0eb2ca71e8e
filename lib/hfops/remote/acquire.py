"""Model acquisition across machines, through the one resolver (:func:`hfops.models.resolve`).

- On a compute worker (:func:`worker_system`): a batch names a model and the revision the store owner pinned;
  the worker finds it on its own machine (packaged, its HF cache) or downloads it itself at that commit, with
  the resolver's own checks (no pickle weights, ``[models] max_download_gb``, this machine's free disk, gated
  repos), and builds the system. A worker has no store, so a folder added with ``hfops models add`` on the
  owner is not reachable there: it is refused with what to do. Whatever it cannot do is a
  :class:`WorkerModelError`, which the worker returns as that batch's error.
- On the store owner (:func:`owner_system`): with the Redis queue the owner does not need the model. A
  model planned as a download is pinned from the Hub's metadata (one ``model_info`` and one tree listing, no
  file fetched, the same refusals but this machine's disk), and the compute workers download it; a model the
  owner has is pinned from its local copy. With the SQLite queue it is the job's acquisition step as before
  (:func:`hfops.evals.backends.resolve.acquire_system`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hfops.config import Settings
from hfops.errors import BackendError, ModelError, ModelRefusedError
from hfops.evals.backends.base import System
from hfops.evals.backends.resolve import acquire_system, resolve_model, system_for
from hfops.models import hub as hubmod
from hfops.models import resolver as model_resolver
from hfops.models.settings import models_settings

COMMIT = re.compile(r"^[0-9a-f]{40}$")
HUB_BACKEND = "hub-download"  # what the owner records before a compute worker has acquired the copy

ProgressFn = Callable[[int, int, str], None]


class WorkerModelError(BackendError):
    """A compute worker cannot acquire or run a batch's model (the message names the model and why)."""


def pinned_commit(revision: str | None) -> str | None:
    """The Hub commit a revision pins (``None`` for packaged, added-folder and API revisions)."""
    return revision if revision and COMMIT.match(revision) else None


def worker_system(
    model_id: str,
    task: str,
    settings: Settings,
    backend: str = "auto",
    revision: str | None = None,
    progress: ProgressFn | None = None,
) -> System:
    """The system for ``model_id`` on this compute worker, at the owner's ``revision``, acquired here.

    ``revision`` is what the owner recorded for the run: a commit sha is fetched exactly (from this worker's
    HF cache or the Hub when ``[models] auto_download`` allows it, never through the Inference API, whose
    answers are not that commit's); a packaged or API revision is resolved here as the owner did and must
    come out the same. Raises :class:`WorkerModelError`.
    """
    model_id = model_id.strip()
    if model_id.startswith("baseline:") or backend == "api":
        return _checked(lambda: resolve_model(model_id, task, settings, backend)[0], model_id, revision)
    if revision and revision.startswith("local:"):
        raise WorkerModelError(
            f"{model_id} was added from a folder on the store owner (hfops models add, {revision}); a "
            "compute worker has no store and cannot reach that folder: evaluate it with the all role on the "
            "owner, or push it to the Hub (or copy it into this worker's HF cache) and evaluate that id"
        )
    commit = pinned_commit(revision)
    download = models_settings(settings).auto_download

    def build() -> System:
        try:
            resolved = model_resolver.resolve(
                model_id,
                settings,
                task=task,
                revision=commit,
                allow_download=download,
                allow_api=backend == "auto" and commit is None,
                progress=progress,
            )
        except ModelError as exc:
            where = f" at {commit[:12]}" if commit else ""
            raise WorkerModelError(
                f"cannot acquire {model_id}{where} on this compute worker: {exc}"
            ) from None
        return system_for(resolved, task, settings)

    return _checked(build, model_id, revision)


def _checked(build: Callable[[], System], model_id: str, revision: str | None) -> System:
    try:
        system = build()
    except WorkerModelError:
        raise
    except BackendError as exc:
        raise WorkerModelError(f"cannot run {model_id} on this compute worker: {exc}") from None
    if revision and system.revision != revision:
        raise WorkerModelError(
            f"{model_id}: the store owner pinned revision {revision}, this compute worker has "
            f"{system.revision} (install the same packages on every machine, or let the worker download the "
            "pinned commit with [models] auto_download = true)"
        )
    return system


@dataclass
class OwnerSystem:
    """What the store owner records for one side of a run before its batches are computed."""

    backend: str
    revision: str
    record: dict[str, Any] = field(default_factory=dict)


def owner_system(
    planned: str,
    model_id: str,
    task: str,
    settings: Settings,
    backend: str = "auto",
    progress: ProgressFn | None = None,
) -> OwnerSystem:
    """The acquisition step of an eval run on the store owner (what ``runs._acquire`` records).

    SQLite queue: acquire here (:func:`acquire_system`, a download when ``planned`` says so). Redis queue:
    nothing is downloaded here; a planned download is pinned to the commit the Hub names now (refused here
    as the resolver would: pickle only, too large, gated, not runnable), the compute workers fetch it.
    """
    if settings.queue.backend != "redis":
        system, record = acquire_system(planned, model_id, task, settings, backend, progress)
        return OwnerSystem(system.backend, system.revision, record)
    if planned != "download":
        system, resolved = resolve_model(model_id, task, settings, backend, allow_download=False)
        return OwnerSystem(system.backend, system.revision, resolved.record() if resolved else {})
    plan = hubmod.remote_plan(model_id.strip(), settings, task=task)
    _refusals(plan, settings)
    files = {p: plan.hashes.get(p, "") for p in plan.selection.files}
    record = {
        "model_id": plan.model_id,
        "source": "compute-workers",
        "revision": plan.commit,
        "format": plan.selection.format,
        "path": None,
        "quantization": plan.quantization,
        "task": plan.task,
        "size_bytes": plan.total_bytes,
        "files": files,
        "note": "pinned by the store owner from the Hub; each compute worker downloads this commit",
    }
    return OwnerSystem(HUB_BACKEND, plan.commit, record)


def _refusals(plan: hubmod.RemotePlan, settings: Settings) -> None:
    """The resolver's download refusals, except free disk (the compute workers' disks are theirs)."""
    try:
        hubmod.check_plan(plan, settings)
    except ModelRefusedError as exc:
        if exc.reason != "no_disk":
            raise
