"""The Hub side of acquisition: one ``model_info`` + one recursive tree listing make a :class:`RemotePlan`
(what would be fetched, how big, whether it is allowed) before any byte moves; :func:`download` then fetches
exactly the planned files at the planned commit with ``snapshot_download``.

Endpoints used (through ``huggingface_hub.HfApi(endpoint=[hub] endpoint)``, token from
``HUGGINGFACE_API_KEY`` only): ``GET /api/models/{id}[/revision/{rev}]``, ``GET /api/models/{id}/tree/{sha}
?recursive=true``, then ``HEAD``/``GET /{id}/resolve/{sha}/{file}`` per planned file (``X-Repo-Commit``,
``ETag``, ``Content-Length``; an interrupted transfer is resumed with ``Range`` by the client).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hfops import config as hfconfig
from hfops import net
from hfops.errors import ModelError, ModelRefusedError
from hfops.models.files import (
    PICKLE_PATTERNS,
    FileSelection,
    declared_quantization,
    quantization_blocker,
    select_files,
    task_for,
)
from hfops.models.settings import cache_dir, gigabytes, hub_endpoint, hub_timeout, models_settings

ProgressSink = Callable[[int, int, str], None]  # (bytes done, bytes total, message)
RESUMABLE_BYTES = 32 * 1024 * 1024  # planned LFS files this large go through a partial file that survives
PREFETCH_LABEL = "hfops:"


@dataclass
class RemotePlan:
    """What acquiring ``model_id`` at ``revision`` from the Hub would take (no byte fetched yet)."""

    model_id: str
    task: str  # what the files were selected for ("qa" prefers one GGUF file; "" when unknown)
    revision: str  # what was asked for (branch, tag or sha; "main" by default)
    commit: str  # the sha it resolved to: everything is fetched at this commit
    selection: FileSelection
    sizes: dict[str, int] = field(default_factory=dict)  # every file of the tree
    hashes: dict[str, str] = field(default_factory=dict)  # sha256 (LFS) or git blob id per file
    cached_files: set[str] = field(default_factory=set)  # planned files already in the local cache
    gated: str = ""  # "auto" | "manual" | ""
    config: dict[str, Any] = field(default_factory=dict)
    pipeline_tag: str = ""
    library_name: str = ""
    license: str = ""
    parameters: dict[str, int] = field(default_factory=dict)  # safetensors metadata: dtype -> count
    quantization: str = ""  # gguf quant or declared quant_method
    blocker: str = ""  # "needs X" when a declared quantization cannot run here

    @property
    def total_bytes(self) -> int:
        return self.selection.size(self.sizes)

    @property
    def download_bytes(self) -> int:
        return sum(self.sizes.get(p, 0) for p in self.selection.files if p not in self.cached_files)


def hub_api(settings: Any) -> Any:
    """``HfApi`` on ``[hub] endpoint`` with ``HUGGINGFACE_API_KEY`` (never a token stored on disk)."""
    from huggingface_hub import HfApi

    return HfApi(endpoint=hub_endpoint(settings), token=hfconfig.api_key() or False, library_name="hfops")


def _license(info: Any) -> str:
    card = getattr(info, "card_data", None)
    value = getattr(card, "license", None) if card is not None else None
    if value:
        return str(value)
    for tag in getattr(info, "tags", None) or []:
        if isinstance(tag, str) and tag.startswith("license:"):
            return tag.split(":", 1)[1]
    return ""


def _describe(exc: BaseException, model_id: str, settings: Any, what: str) -> ModelError:
    message = net.describe(
        exc, what=f"{what} {model_id}", where=f"the Hub at {hub_endpoint(settings)}", token=hfconfig.api_key()
    )
    from huggingface_hub.errors import GatedRepoError

    if isinstance(exc, GatedRepoError):
        return ModelRefusedError(gated_message(model_id, settings), "gated")
    return ModelError(message)


def gated_message(model_id: str, settings: Any) -> str:
    who = (
        "the account of HUGGINGFACE_API_KEY"
        if hfconfig.api_key()
        else "your account, then set HUGGINGFACE_API_KEY"
    )
    return (
        f"{model_id} is a gated repo: accept its access conditions at {hub_endpoint(settings)}/{model_id} "
        f"with {who}; nothing was downloaded"
    )


def remote_plan(
    model_id: str, settings: Any, *, revision: str | None = None, task: str = "", api: Any = None
) -> RemotePlan:
    """Ask the Hub what ``model_id`` holds (``model_info`` + one recursive tree listing) and plan the files.

    Raises :class:`ModelError` (scrubbed, one line) when the Hub cannot answer; refusals are not raised
    here (see :func:`check_plan`), so an evaluability check can report them.
    """
    from huggingface_hub.errors import HfHubHTTPError, RevisionNotFoundError
    from huggingface_hub.hf_api import RepoFile

    api = api or hub_api(settings)
    timeout = hub_timeout(settings)
    try:
        info = api.model_info(model_id, revision=revision, timeout=timeout)
    except RevisionNotFoundError:
        raise ModelError(
            f"{model_id} has no revision {revision!r} on the Hub at {hub_endpoint(settings)}"
        ) from None
    except Exception as exc:  # HfHubHTTPError family, httpx2 network errors
        raise _describe(exc, model_id, settings, "looking up") from None
    commit = str(info.sha or "")
    if not commit:
        raise ModelError(f"looking up {model_id}: the Hub did not say which commit it is at (no sha)")
    try:
        entries = [
            e
            for e in api.list_repo_tree(model_id, recursive=True, revision=commit)
            if isinstance(e, RepoFile)
        ]
    except (HfHubHTTPError, OSError, ValueError) as exc:
        raise _describe(exc, model_id, settings, "listing the files of") from None
    except Exception as exc:  # httpx2 errors are not OSError subclasses
        raise _describe(exc, model_id, settings, "listing the files of") from None
    sizes = {e.path: int(e.lfs.size if e.lfs is not None else e.size) for e in entries}
    hashes = {e.path: str(e.lfs.sha256 if e.lfs is not None else e.blob_id) for e in entries}
    mconf = models_settings(settings)
    task = task or task_for(info.pipeline_tag)
    selection = select_files(sizes, sizes, task=task, gguf_preference=mconf.gguf_preference)
    config = info.config if isinstance(info.config, dict) else {}
    declared = declared_quantization(config)
    safetensors = getattr(info, "safetensors", None)
    plan = RemotePlan(
        model_id=model_id,
        task=task,
        revision=revision or "main",
        commit=commit,
        selection=selection,
        sizes=sizes,
        hashes=hashes,
        gated=str(info.gated or "") if info.gated not in (None, False) else "",
        config=config,
        pipeline_tag=str(info.pipeline_tag or ""),
        library_name=str(info.library_name or ""),
        license=_license(info),
        parameters=dict(getattr(safetensors, "parameters", None) or {}),
        quantization=selection.quantization or declared,
        blocker=quantization_blocker(declared) if selection.format == "safetensors" else "",
    )
    plan.cached_files = _already_cached(plan, settings)
    return plan


def storage_folder(model_id: str, settings: Any) -> Path:
    return cache_dir(settings) / f"models--{model_id.replace('/', '--')}"


def _already_cached(plan: RemotePlan, settings: Any) -> set[str]:
    snapshot = storage_folder(plan.model_id, settings) / "snapshots" / plan.commit
    return {p for p in plan.selection.files if (snapshot / p).is_file()}


def free_disk_bytes(path: Path) -> int:
    """Free bytes on the file system that holds ``path`` (or its nearest existing parent)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def check_plan(plan: RemotePlan, settings: Any) -> None:
    """Raise :class:`ModelRefusedError` unless the plan may be downloaded: weights safe and runnable here,
    not gated without access, within ``[models] max_download_gb`` and the free disk."""
    sel = plan.selection
    if sel.refusal:
        reason = "pickle_only" if sel.refusal == "pickle_only" else "unsupported"
        raise ModelRefusedError(f"{plan.model_id} {sel.message}; nothing was downloaded", reason)
    if plan.blocker:
        raise ModelRefusedError(
            f"{plan.model_id} cannot run locally: {plan.blocker} (declares {plan.quantization} "
            "quantization); nothing was downloaded",
            "unsupported",
        )
    if plan.gated and not hfconfig.api_key():
        raise ModelRefusedError(gated_message(plan.model_id, settings), "gated")
    mconf = models_settings(settings)
    limit = int(mconf.max_download_gb * 1e9)
    if plan.download_bytes > limit:
        raise ModelRefusedError(
            f"{plan.model_id} is too large: {gigabytes(plan.download_bytes)} to download "
            f"({len(sel.files)} files at {plan.commit[:12]}) > [models] max_download_gb = "
            f"{mconf.max_download_gb:g}; nothing was downloaded",
            "too_large",
        )
    folder = cache_dir(settings)
    free = free_disk_bytes(folder)
    reserve = int(mconf.min_free_disk_gb * 1e9)
    if plan.download_bytes + reserve > free:
        raise ModelRefusedError(
            f"{plan.model_id} needs {gigabytes(plan.download_bytes)} of disk plus {gigabytes(reserve)} "
            f"kept free, but {folder} has {gigabytes(free)} free; nothing was downloaded",
            "no_disk",
        )


def has_access(plan: RemotePlan, settings: Any) -> bool:
    """Whether the token may read the gated repo's weights: one ``HEAD`` of the first weight file (no body);
    False on the Hub's gated answer (401/403 ``GatedRepo``)."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError

    target = (plan.selection.weights or plan.selection.files)[0]
    url = hf_hub_url(plan.model_id, target, revision=plan.commit, endpoint=hub_endpoint(settings))
    try:
        get_hf_file_metadata(
            url,
            token=hfconfig.api_key() or False,
            timeout=hub_timeout(settings),
            endpoint=hub_endpoint(settings),
        )
    except GatedRepoError:
        return False
    except HfHubHTTPError as exc:
        return net.status_of(exc) not in (401, 403)
    except Exception:  # network trouble: the download itself will say what went wrong
        return True
    return True


def _progress_class(sink: ProgressSink, total: int) -> type:
    """A tqdm stand-in for ``snapshot_download(tqdm_class=...)`` that reports transferred bytes
    to ``sink``."""

    lock = threading.Lock()

    class _Bar:
        done = 0

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.desc = str(kwargs.get("desc") or "")
            self.total = kwargs.get("total") or 0
            self.n = int(kwargs.get("initial") or 0)
            self.format_dict: dict[str, Any] = {"rate": None}
            self.counts = self.desc.startswith(("Downloading bytes", PREFETCH_LABEL))
            if self.counts and self.n and self.desc.startswith(PREFETCH_LABEL):
                self._add(self.n)  # the bytes a resumed file already had count as done

        def _add(self, step: int) -> None:
            with lock:
                _Bar.done += step
                done = _Bar.done
            sink(min(done, total), total, "downloading")

        def update(self, n: float | None = 1) -> None:
            step = int(n or 0)
            self.n += step
            if self.counts:
                self._add(step)

        def __enter__(self) -> _Bar:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def refresh(self) -> None:
            return None

        def close(self) -> None:
            return None

        def set_description(self, *args: Any, **kwargs: Any) -> None:
            return None

        set_description_str = set_postfix_str = set_postfix = set_description

    return _Bar


def _resumable(plan: RemotePlan, rel: str) -> bool:
    """A planned LFS file large enough to go through a kept partial blob (sha256 known, not yet cached)."""
    return (
        rel not in plan.cached_files
        and plan.sizes.get(rel, 0) >= RESUMABLE_BYTES
        and len(plan.hashes.get(rel, "")) == 64
    )


def _fetch_resumable(plan: RemotePlan, rel: str, settings: Any, bar: type) -> None:
    """Fetch one large LFS file into ``blobs/<sha256>`` through ``blobs/<sha256>.hfops-partial``, resuming
    from the bytes a previous (killed or failed) run kept; verified against the Hub's sha256 before it is
    moved into place (when it was resumed). ``hf_hub_download`` then only links the blob (same ETag) into
    the snapshot.

    huggingface_hub 2.4 resumes a cut transfer only within one call (its temporary file is unique to the
    process and deleted on failure), so large weights would otherwise restart from zero after a crash.
    """
    from huggingface_hub import hf_hub_url
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import build_hf_headers

    from hfops.models.local import sha256_file

    size, digest = plan.sizes.get(rel, 0), plan.hashes.get(rel, "")
    blob = storage_folder(plan.model_id, settings) / "blobs" / digest
    if blob.exists():
        return
    partial = blob.with_name(f"{digest}.hfops-partial")
    partial.parent.mkdir(parents=True, exist_ok=True)
    kept = partial.stat().st_size if partial.exists() else 0
    if kept > size:
        partial.unlink()
        kept = 0
    url = hf_hub_url(plan.model_id, rel, revision=plan.commit, endpoint=hub_endpoint(settings))
    headers = build_hf_headers(token=hfconfig.api_key() or False, library_name="hfops")
    with partial.open("ab") as fh:
        http_get(
            url,
            fh,
            resume_size=kept,
            headers=headers,
            expected_size=size,
            displayed_filename=f"{PREFETCH_LABEL}{rel}",
            tqdm_class=bar,
        )
    # huggingface_hub checks the size of every download; a file continued from kept bytes is also
    # checked against the Hub's sha256 (a fresh one is not: hashing costs ~0.3 s per 100 MB here, as
    # much as the transfer)
    if kept and sha256_file(partial) != digest:
        partial.unlink()
        raise ModelError(
            f"downloading {plan.model_id}: {rel} does not match the Hub's sha256; fetch it again"
        )
    os.replace(partial, blob)


def write_ref(model_id: str, settings: Any, ref: str, commit: str) -> None:
    """Point ``refs/<ref>`` at ``commit`` in the cache (as huggingface_hub does), atomically."""
    if not ref or ref == commit:
        return
    path = storage_folder(model_id, settings) / "refs" / ref
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file() and path.read_text() == commit:
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(commit)
    os.replace(tmp, path)


def download(
    plan: RemotePlan, settings: Any, progress: ProgressSink | None = None, max_workers: int = 8
) -> Path:
    """Fetch the planned files at the planned commit into the HF cache; the snapshot folder.

    Call :func:`check_plan` first. Only the planned files are requested (``allow_patterns``) and pickle
    files are excluded again (``ignore_patterns``). A transfer cut mid-file is resumed with ``Range``; files
    completed by an interrupted run stay in the cache, and large files (>= 32 MiB) resume from the bytes an
    interrupted run kept (:func:`_fetch_resumable`).
    """
    from huggingface_hub import hf_hub_download, snapshot_download

    total = plan.download_bytes
    bar = _progress_class(progress or (lambda done, total, message: None), total)
    if progress is not None:
        progress(0, total, f"downloading {len(plan.selection.files)} files ({gigabytes(total)})")
    large = [rel for rel in plan.selection.files if _resumable(plan, rel)]
    small = [rel for rel in plan.selection.files if rel not in large]
    common: dict[str, Any] = {
        "revision": plan.commit,
        "cache_dir": str(cache_dir(settings)),
        "endpoint": hub_endpoint(settings),
        "token": hfconfig.api_key() or False,
        "library_name": "hfops",
        "etag_timeout": hub_timeout(settings),
    }
    try:
        # large files through kept partial blobs, in parallel with the small files through snapshot_download
        with ThreadPoolExecutor(max_workers=max(1, len(large)), thread_name_prefix="hfops-fetch") as pool:
            fetches = [pool.submit(_fetch_resumable, plan, rel, settings, bar) for rel in large]
            if small:
                snapshot_download(
                    plan.model_id,
                    allow_patterns=small,
                    ignore_patterns=list(PICKLE_PATTERNS),
                    tqdm_class=bar,
                    max_workers=max_workers,
                    **common,
                )
            for fetch in fetches:
                fetch.result()
        for rel in large:  # the blob is there: one HEAD, then huggingface_hub links it into the snapshot
            hf_hub_download(plan.model_id, rel, tqdm_class=bar, **common)
        folder = str(storage_folder(plan.model_id, settings) / "snapshots" / plan.commit)
    except Exception as exc:  # HfHubHTTPError family, OSError (consistency), httpx2 network errors
        raise _describe(exc, plan.model_id, settings, "downloading") from None
    write_ref(plan.model_id, settings, plan.revision, plan.commit)
    missing = [p for p in plan.selection.files if not (Path(folder) / p).is_file()]
    if missing:
        raise ModelError(
            f"downloading {plan.model_id}: {len(missing)} planned files are missing ({missing[0]})"
        )
    if progress is not None:
        progress(total, total, "downloaded")
    return Path(folder)
