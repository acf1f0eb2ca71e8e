"""The one acquisition resolver: packaged models -> folders added with ``models add`` -> the local HF cache ->
a download from the Hub (when policy allows) -> the HF Inference API (only with ``HUGGINGFACE_API_KEY``).

:func:`resolve` returns a :class:`ResolvedModel` whose :meth:`~ResolvedModel.record` is what a run stores
(model id, source, revision = commit sha, file hashes). :func:`pull` is the explicit download
(``hfops pull``); :func:`add_local`, :func:`list_local`, :func:`remove` back ``hfops models ...``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hfops import config as hfconfig
from hfops import store
from hfops.errors import ModelError, ModelRefusedError
from hfops.models import hub as hubmod
from hfops.models.files import FileSelection, gguf_quantization, quantization_blocker
from hfops.models.local import (
    LocalCopy,
    cached_copy,
    cached_hashes,
    check_capacity,
    file_hashes,
    folder_facts,
    select_local,
    storage_name,
)
from hfops.models.packaged import installed_packaged, packaged_for, packaged_path, packaged_revision
from hfops.models.settings import cache_dir, gigabytes, models_settings

SOURCES = ("packaged", "local", "cached", "downloaded", "api")


@dataclass
class ResolvedModel:
    """Where a model runs from, pinned: what an eval run records."""

    model_id: str
    source: str  # packaged | local | cached | downloaded | api
    revision: str  # commit sha; pypi:<dist>==<version>; local:<hash>; "main" for the API
    format: str  # safetensors | gguf | api
    path: Path | None = None  # folder (safetensors) or .gguf file; None for the API
    quantization: str = ""
    task: str = ""
    size_bytes: int = 0
    files: dict[str, str] = field(default_factory=dict)  # repo path -> sha256 (or git blob id)
    note: str = ""  # why a local source was not used (when falling back to the API)

    @property
    def folder(self) -> Path | None:
        if self.path is None:
            return None
        return self.path.parent if self.format == "gguf" else self.path

    @property
    def selection(self) -> FileSelection:
        weights = [p for p in self.files if p.endswith((".safetensors", ".gguf"))]
        return FileSelection(self.format, list(self.files), weights, self.quantization)

    def record(self) -> dict[str, Any]:
        """JSON-ready facts to store with a run (file hashes filled in first: sha256, memoised per file)."""
        with_hashes(self)
        out = asdict(self)
        out["path"] = str(self.path) if self.path is not None else None
        return out

    def check_capacity(self, settings: Any, available: int | None = None) -> int:
        """Refuse (:class:`ModelRefusedError` ``no_memory``) a load that would not fit; the estimate."""
        if self.format == "api" or self.folder is None:
            return 0
        return check_capacity(self.model_id, self.folder, self.selection, settings, available)


# --- the sources, in order ----------------------------------------------------------------------------------


def from_packaged(model_id: str, task: str = "") -> ResolvedModel | None:
    """The packaged copy of ``model_id`` when its wheel is installed (and serves ``task``)."""
    packaged = packaged_for(model_id)
    if packaged is None or (task and task != packaged.task):
        return None
    path = packaged_path(packaged)
    if path is None:
        return None
    if packaged.format == "gguf":
        files = {path.name: ""}
        size = path.stat().st_size
    else:
        names = [p for p in select_local(path, packaged.task, None).files]
        files = dict.fromkeys(names, "")
        size = sum((path / n).stat().st_size for n in names)
    return ResolvedModel(
        packaged.model_id,
        "packaged",
        packaged_revision(packaged),
        packaged.format,
        path,
        packaged.quantization,
        packaged.task,
        size,
        files,
    )


def with_hashes(resolved: ResolvedModel) -> ResolvedModel:
    """Fill in missing sha256 file hashes (reads the files once; memoised)."""
    folder = resolved.folder
    missing = [p for p, h in resolved.files.items() if not h]
    if folder is not None and missing:
        resolved.files.update(file_hashes(folder, missing))
    return resolved


def _from_copy(copy: LocalCopy, source: str, task: str) -> ResolvedModel:
    return ResolvedModel(
        copy.model_id,
        source,
        copy.revision,
        copy.selection.format,
        copy.path,
        copy.selection.quantization,
        task,
        copy.size_bytes(),
        cached_hashes(copy),
    )


def from_cache(
    model_id: str, settings: Any, *, revision: str | None = None, task: str = ""
) -> ResolvedModel | None:
    copy = cached_copy(model_id, settings, revision=revision, task=task)
    return _from_copy(copy, "cached", task) if copy is not None else None


def named_selection(gguf_file: str) -> FileSelection:
    """The selection of one named ``.gguf`` file (``hfops models add FILE.gguf``)."""
    return FileSelection("gguf", [gguf_file], [gguf_file], gguf_quantization(gguf_file))


def existing_store(settings: Any) -> Path | None:
    """The store file of ``settings`` when there is one (no ``[store] path``, as on a compute worker, is
    none: ``Path("")`` would be the working directory)."""
    path = getattr(getattr(settings, "store", None), "path", "") or ""
    return Path(path) if path and Path(path).is_file() else None


def held_locally(model_ids: Iterable[str], settings: Any) -> set[str]:
    """The ids among ``model_ids`` that a local source may hold (packaged, an added folder, an HF cache
    folder): one store query and one listing of the cache for a page of ids. The others resolve to nothing
    locally (:func:`from_packaged`, :func:`from_local` and :func:`from_cache` all give None)."""
    ids = set(model_ids)
    found = {m for m in ids if packaged_for(m) is not None}
    db_path = existing_store(settings)
    if db_path is not None and ids - found:
        subquery, params = store.listed(sorted(ids - found))
        found.update(
            row[0]
            for row in store.get_db(db_path).execute(
                f"SELECT model_id FROM local_models WHERE model_id IN ({subquery})", params
            )
        )
    try:
        folders = set(os.listdir(cache_dir(settings)))
    except OSError:  # no cache yet (or not readable): nothing cached
        folders = set()
    found.update(m for m in ids if storage_name(m) in folders)
    return found


def from_local(model_id: str, settings: Any, task: str = "") -> ResolvedModel | None:
    """A folder registered with ``hfops models add`` (read from the store)."""
    db_path = existing_store(settings)
    if db_path is None:
        return None
    db = store.get_db(db_path)
    row = store.one(db, "SELECT * FROM local_models WHERE model_id = ?", [model_id])
    if row is None:
        return None
    folder = Path(row["path"])
    if not folder.is_dir():
        raise ModelError(
            f"{model_id} was added from {folder}, which no longer exists (hfops models remove it)"
        )
    facts = store.loads(row["facts"], {})
    named = str(facts.get("gguf_file") or "")
    if named and task != "retrieval" and (folder / named).is_file():
        selection = named_selection(named)
    else:
        selection = select_local(folder, task, settings)
    if not selection.files:
        raise ModelRefusedError(f"{model_id} (local folder {folder}) {selection.message}", selection.refusal)
    files = {p: facts.get("files", {}).get(p, "") for p in selection.files}
    size = sum((folder / p).stat().st_size for p in selection.files)
    path = folder / selection.files[0] if selection.format == "gguf" else folder
    return ResolvedModel(
        model_id, "local", row["revision"], selection.format, path, selection.quantization, task, size, files
    )


def from_api(model_id: str, task: str, note: str = "") -> ResolvedModel | None:
    if not hfconfig.api_key():
        return None
    return ResolvedModel(model_id, "api", "main", "api", None, "", task, 0, {}, note)


def pull(
    model_id: str,
    settings: Any,
    *,
    revision: str | None = None,
    task: str = "",
    progress: hubmod.ProgressSink | None = None,
    api: Any = None,
) -> ResolvedModel:
    """Download ``model_id`` (pinned to ``revision``'s commit) after every check; the cached copy.

    Refusals (:class:`ModelRefusedError`: pickle only, too large, no disk, gated, cannot run here) are
    raised before any file is requested. Files already cached at that commit are not fetched again.
    """
    plan = hubmod.remote_plan(model_id, settings, revision=revision, task=task, api=api)
    task = plan.task
    hubmod.check_plan(plan, settings)
    if plan.gated and not hubmod.has_access(plan, settings):
        raise ModelRefusedError(hubmod.gated_message(model_id, settings), "gated")
    hubmod.download(plan, settings, progress=progress)
    copy = cached_copy(model_id, settings, revision=plan.commit, task=task)
    if copy is None:  # the planned files are there (checked by download); select them as planned
        raise ModelError(f"{model_id}: downloaded files at {plan.commit[:12]} are not a usable copy")
    resolved = _from_copy(copy, "downloaded", task)
    for rel in resolved.files:  # the Hub's hashes are the reference (sha256 for LFS files)
        resolved.files[rel] = plan.hashes.get(rel, resolved.files[rel])
    return resolved


def resolve(
    model_id: str,
    settings: Any,
    *,
    task: str = "",
    revision: str | None = None,
    allow_download: bool | None = None,
    allow_api: bool = True,
    progress: hubmod.ProgressSink | None = None,
    api: Any = None,
) -> ResolvedModel:
    """Where ``model_id`` runs from, in order: packaged, local folder, HF cache, Hub download, Inference API.

    ``allow_download=None`` follows ``[models] auto_download``; a pinned ``revision`` skips the packaged
    copy (its revision is the wheel's). Raises :class:`ModelRefusedError` / :class:`ModelError` with the
    reason when no source can serve it.
    """
    model_id = model_id.strip()
    if revision is None:
        found = from_packaged(model_id, task)
        if found is not None:
            return found
        found = from_local(model_id, settings, task)
        if found is not None:
            return found
    found = from_cache(model_id, settings, revision=revision, task=task)
    if found is not None:
        return found
    download_ok = models_settings(settings).auto_download if allow_download is None else allow_download
    failure: ModelError | None = None
    if download_ok:
        try:
            return pull(model_id, settings, revision=revision, task=task, progress=progress, api=api)
        except ModelError as exc:
            failure = exc
    if allow_api:
        api_model = from_api(model_id, task, note=str(failure or ""))
        if api_model is not None:
            return api_model
    if failure is not None:
        raise failure
    raise ModelError(
        f"{model_id} is not available locally (not packaged, not in the HF cache at "
        f"{cache_dir(settings)}), downloads are off ([models] auto_download = false or --no-download) "
        "and HUGGINGFACE_API_KEY is not set"
    )


# --- hfops models add / list / remove -----------------------------------------------------------------------


def local_row(path: str | Path, model_id: str, settings: Any) -> dict[str, Any]:
    """The ``local_models`` row for a folder (or one ``.gguf`` file's folder) to add as ``model_id``, its
    facts read from the files (hashes included; nothing stored). Refusals as :func:`add_local`'s."""
    if model_id.count("/") != 1 or not all(model_id.split("/")) or model_id != model_id.strip():
        raise ModelError(f"--id must be ORG/NAME, got {model_id!r}")
    given = Path(path).expanduser()
    named_gguf = ""  # a .gguf file given by name is the one used, whatever else its folder holds
    if given.is_file() and given.suffix == ".gguf":
        folder, named_gguf = given.absolute().parent.resolve(), given.name
    else:
        folder = given.resolve()
    if not folder.is_dir():
        raise ModelError(f"{path} is not a folder")
    selection = named_selection(named_gguf) if named_gguf else select_local(folder, "", settings)
    if selection.refusal:
        raise ModelRefusedError(f"{folder} {selection.message}; not added", selection.refusal)
    facts = folder_facts(folder, selection)
    blocker = quantization_blocker(facts.get("quant_method", ""))
    hashes = file_hashes(folder, selection.files)
    digest = hashlib.sha256("".join(f"{p}:{h}\n" for p, h in sorted(hashes.items())).encode()).hexdigest()
    size = sum((folder / p).stat().st_size for p in selection.files)
    quant = selection.quantization or facts.get("quant_method", "")
    facts.update(files=hashes, blocker=blocker, weights=selection.weights)
    if named_gguf:
        facts["gguf_file"] = named_gguf
    return {
        "model_id": model_id,
        "path": str(folder),
        "format": selection.format,
        "quantization": quant,
        "revision": f"local:{digest[:12]}",
        "size_bytes": size,
        "facts": facts,
        "added_at": store.utcnow(),
    }


def save_local(db: Any, row: dict[str, Any]) -> None:
    """Store (or replace) a :func:`local_row` in ``local_models`` (a savepoint inside a
    caller's transaction)."""
    with store.write_tx(db):
        db.table("local_models").upsert({**row, "facts": store.dumps(row["facts"])}, pk="model_id")


def add_local(path: str | Path, model_id: str, settings: Any) -> dict[str, Any]:
    """Store a local folder (or one ``.gguf`` file's folder) as ``model_id`` in ``local_models``, so the
    resolver finds it; its facts from the files. The folder only: ``hfops models add`` also makes it a
    registry candidate (:func:`hfops.models.registered.add_model`)."""
    row = local_row(path, model_id, settings)
    save_local(store.get_db(settings.db_path), row)
    return row


def list_local(settings: Any) -> list[dict[str, Any]]:
    """Every model available on this machine: packaged, added folders, HF cache (id, revision, source, size,
    format, quantization, path). No network."""
    out: list[dict[str, Any]] = []
    for packaged, path in installed_packaged():
        size = (
            path.stat().st_size
            if path.is_file()
            else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        )
        out.append(
            {
                "model_id": packaged.model_id,
                "revision": packaged_revision(packaged),
                "source": "packaged",
                "size_bytes": size,
                "format": packaged.format,
                "quantization": packaged.quantization,
                "path": str(path),
            }
        )
    db_path = existing_store(settings)
    if db_path is not None:
        for row in store.rows(store.get_db(db_path), "SELECT * FROM local_models ORDER BY model_id"):
            out.append(
                {k: row[k] for k in ("model_id", "revision", "size_bytes", "format", "quantization", "path")}
                | {"source": "local"}
            )
    folder = cache_dir(settings)
    if folder.is_dir():
        from huggingface_hub import scan_cache_dir

        for repo in sorted(scan_cache_dir(folder).repos, key=lambda r: r.repo_id):
            if repo.repo_type != "model":
                continue
            for rev in sorted(repo.revisions, key=lambda r: r.last_modified, reverse=True):
                names = [f.file_name for f in rev.files]
                selection = select_local(rev.snapshot_path, "", settings)
                weights = [p for p in selection.weights]
                out.append(
                    {
                        "model_id": repo.repo_id,
                        "revision": rev.commit_hash,
                        "source": "cached",
                        "size_bytes": rev.size_on_disk,
                        "format": selection.format or "incomplete",
                        "quantization": selection.quantization
                        or (gguf_quantization(weights[0]) if weights else ""),
                        "path": str(rev.snapshot_path),
                        "refs": sorted(rev.refs),
                        "files": len(names),
                    }
                )
    return out


def remove_cached(model_id: str, settings: Any) -> int | None:
    """Delete every cached revision of ``model_id`` (and leftovers: partial files, refs without snapshots);
    the bytes freed, or None when the HF cache has nothing of it."""
    folder = cache_dir(settings)
    if not folder.is_dir():
        return None
    from huggingface_hub import scan_cache_dir

    freed: int | None = None
    info = scan_cache_dir(folder)
    revisions = [
        r.commit_hash
        for repo in info.repos
        if repo.repo_type == "model" and repo.repo_id == model_id
        for r in repo.revisions
    ]
    if revisions:
        strategy = info.delete_revisions(*revisions)
        freed = strategy.expected_freed_size
        strategy.execute()
    storage = hubmod.storage_folder(model_id, settings)
    if storage.is_dir():  # leftovers: partial downloads (*.incomplete), refs without snapshots
        import shutil

        shutil.rmtree(storage, ignore_errors=True)
        freed = freed or 0
    return freed


def forget_local(db: Any, model_id: str) -> dict[str, Any] | None:
    """Forget an added folder (its files stay) and its stored evaluability; the ``local_models`` row that
    was removed, or None. A savepoint inside a caller's transaction."""
    with store.write_tx(db):
        row = store.one(db, "SELECT * FROM local_models WHERE model_id = ?", [model_id])
        if row is None:
            return None
        db.execute("DELETE FROM local_models WHERE model_id = ?", [model_id])
        db.execute("DELETE FROM model_evaluability WHERE model_id = ?", [model_id])
    return row


def nothing_to_remove(model_id: str, settings: Any) -> ModelError:
    """The error when ``model_id`` is neither cached nor added (a packaged model says how to remove it)."""
    packaged = packaged_for(model_id)
    if packaged is not None and packaged_path(packaged) is not None:
        return ModelError(
            f"{model_id} is packaged (PyPI {packaged.distribution}); uninstall that package to remove it"
        )
    return ModelError(f"{model_id} is not in the HF cache at {cache_dir(settings)} nor added locally")


def remove(
    model_id: str,
    settings: Any,
    *,
    on_forget: Callable[[Any, dict[str, Any]], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Remove ``model_id`` from the HF cache (every revision) and forget an added folder (its files stay).

    ``on_forget(db, forgotten_row)`` runs in the transaction that forgets the folder; what it returns is the
    result's ``registry`` (None when no folder was forgotten). ``hfops models remove`` passes the registry
    step (:func:`hfops.models.registered.remove_model`); without it the registry is not touched.
    """
    removed = []
    outcome: dict[str, Any] | None = None
    freed = remove_cached(model_id, settings)
    if freed is not None:
        removed.append("cache")
    db_path = existing_store(settings)
    if db_path is not None:
        db = store.get_db(db_path)
        with store.write_tx(db):
            gone = forget_local(db, model_id)
            if gone is not None:
                removed.append("local")
                outcome = on_forget(db, gone) if on_forget is not None else None
    if not removed:
        raise nothing_to_remove(model_id, settings)
    return {
        "model_id": model_id,
        "removed": removed,
        "freed_bytes": freed or 0,
        "freed": gigabytes(freed or 0),
        "registry": outcome,
    }


def local_model_record(row: dict[str, Any]) -> dict[str, Any]:
    """A ``local_models`` row (or :func:`add_local`'s result) in the shape of a Hub model record, for the
    registry to upsert like any listing (``local`` tag; licence, pipeline tag and library from the files)."""
    facts = row["facts"] if isinstance(row["facts"], dict) else store.loads(row["facts"], {})
    license_id = str(facts.get("license") or "")
    tags = ["local", row["format"], *([f"license:{license_id}"] if license_id else [])]
    if facts.get("library_name"):
        tags.append(str(facts["library_name"]))
    return {
        "id": row["model_id"],
        "author": row["model_id"].split("/")[0],
        "sha": row["revision"],
        "pipeline_tag": facts.get("pipeline_tag"),
        "library_name": facts.get("library_name"),
        "tags": tags,
        "siblings": [{"rfilename": p} for p in sorted(facts.get("files", {}))],
        "config": facts.get("config") or {},
        "cardData": {"license": license_id} if license_id else {},
        "local": True,
        "lastModified": row["added_at"],
    }
