"""Custom eval sets (``hfops dataset add|list|show|remove``): the operator's own examples, in the store.

A set is read from a file (JSON Lines, JSON, CSV, parquet) or a Hub dataset (``datasets`` streaming), mapped
and validated by :mod:`hfops.evals.custom_rows` (errors name the row and the column; nothing is stored on
an error), and stored with its content hash as its version (tables ``eval_datasets``,
``eval_dataset_examples``, ``eval_dataset_documents``). Runs use a set exactly as a built-in dataset
(``hfops eval --dataset NAME``; scored with the task's default spec of :mod:`hfops.evals.tasks`) and record
its version, so runs on different versions are never compared as if equal; re-adding a set with changed
rows needs ``replace`` and gives a new version.

What a page or the CLI calls: :func:`dataset_choices` (built-in and custom names for a form),
:func:`preview_file` (columns and first rows, to build a mapping),
:func:`add_from_file` / :func:`add_from_hub`, :func:`list_sets`, :func:`get_set`, :func:`remove_set`;
runs call :func:`find_set`, :func:`check_task`, :func:`load_custom_set`, :func:`set_names`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from hfops.config import Settings
from hfops.errors import DatasetError, EvalError
from hfops.evals import custom_rows, tasks
from hfops.evals.custom_rows import MappedSet, SourceRows
from hfops.evals.data import EvalSet, Example, sample_ids
from hfops.evals.records import Record
from hfops.store import dumps, loads, one, rows, utcnow, write_tx

SOURCE = "custom"  # eval_runs.dataset_source of a run on a custom set
TABLE = "eval_datasets"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
PREVIEW_ROWS = 5


@dataclass
class CustomSet(Record):
    """A stored custom eval set (without its rows)."""

    name: str
    task: str
    version: str
    source: str  # file | hub
    location: str
    mapping: dict[str, str]
    options: dict[str, Any]
    examples: int
    documents: int
    unanswerable: int
    per_query: bool
    created_at: str
    updated_at: str

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> CustomSet:
        data = dict(row)
        data["mapping"] = loads(data["mapping"], {})
        data["options"] = loads(data["options"], {})
        data["per_query"] = bool(data["per_query"])
        return cls(**data)


@dataclass
class AddResult(Record):
    """What :func:`add_from_file` / :func:`add_from_hub` did."""

    set: CustomSet
    status: str  # added | unchanged | replaced
    previous_version: str | None = None
    skipped: list[str] = field(default_factory=list)  # rows left out (retrieval: no relevant document)


@dataclass
class Preview(Record):
    """The columns and first rows of a source, for building a mapping."""

    location: str
    columns: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0


def _has_table(db: sqlite_utils.Database) -> bool:
    return (
        db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [TABLE]).fetchone()
        is not None
    )


def check_name(name: str) -> str:
    """A valid set name (lower-case letters, digits, ``_ . -``; not a built-in dataset's name)."""
    name = (name or "").strip()
    if not NAME_PATTERN.match(name):
        raise DatasetError(
            f"invalid set name {name!r}: use 1-64 lower-case letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    if tasks.is_builtin(name):
        raise DatasetError(f"{name!r} is a built-in dataset; choose another name")
    return name


def find_set(db: sqlite_utils.Database, name: str) -> CustomSet | None:
    """The stored custom set ``name``, or None."""
    if not _has_table(db):
        return None
    found = one(db, f"SELECT * FROM {TABLE} WHERE name = ?", [name])
    return CustomSet.from_row(found) if found else None


def get_set(db: sqlite_utils.Database, name: str) -> CustomSet:
    """The stored custom set ``name``; :class:`DatasetError` naming the known sets otherwise."""
    found = find_set(db, name)
    if found is None:
        known = set_names(db)
        raise DatasetError(
            f"no custom eval set {name!r}"
            + (f" (sets: {', '.join(known)})" if known else " (none yet: hfops dataset add)")
        )
    return found


def list_sets(db: sqlite_utils.Database, task: str | None = None) -> list[CustomSet]:
    """Every stored custom set (of ``task`` when given), by name."""
    if not _has_table(db):
        return []
    if task:
        found = rows(db, f"SELECT * FROM {TABLE} WHERE task = ? ORDER BY name", [task])
    else:
        found = rows(db, f"SELECT * FROM {TABLE} ORDER BY name")
    return [CustomSet.from_row(r) for r in found]


def set_names(db: sqlite_utils.Database | None, task: str | None = None) -> list[str]:
    """Names of the stored custom sets (of ``task`` when given)."""
    return [] if db is None else [s.name for s in list_sets(db, task)]


def dataset_choices(db: sqlite_utils.Database | None, task: str | None = None) -> list[str]:
    """Every dataset a run can use (of ``task`` when given): the built-in ones, then the custom
    sets by name."""
    builtin = [d for d, spec in tasks.DATASET_SPECS.items() if task is None or task in spec.tasks]
    return [*builtin, *set_names(db, task)]


def check_task(db: sqlite_utils.Database, name: str, task: str) -> None:
    """Raise :class:`EvalError` when the custom set ``name`` exists and is not a ``task`` set."""
    found = find_set(db, name)
    if found is not None and found.task != task:
        raise EvalError(f"{name} is a {found.task} set, not a {task} set")


def remove_set(db: sqlite_utils.Database, name: str) -> CustomSet:
    """Delete a set and its rows (runs on it keep their results); returns what was removed."""
    found = get_set(db, name)
    with write_tx(db):
        db.execute("DELETE FROM eval_dataset_documents WHERE dataset = ?", [name])
        db.execute("DELETE FROM eval_dataset_examples WHERE dataset = ?", [name])
        db.execute(f"DELETE FROM {TABLE} WHERE name = ?", [name])
    return found


# --- adding -------------------------------------------------------------------------------------------------


def preview_file(path: str | Path, limit: int = PREVIEW_ROWS) -> Preview:
    """Columns and the first rows of a file (for a mapping form); errors name the file and line."""
    source = custom_rows.read_file(path)
    return Preview(source.location, source.columns, [r for _, r in source.rows[:limit]], len(source.rows))


def _store(
    db: sqlite_utils.Database,
    name: str,
    mapped: MappedSet,
    source_kind: str,
    options: dict[str, Any],
    replace: bool,
) -> AddResult:
    version = mapped.version
    existing = find_set(db, name)
    options = {**options, "skipped": len(mapped.skipped)}
    if existing is not None and existing.version == version and existing.task == mapped.task:
        return AddResult(existing, "unchanged", skipped=mapped.skipped)
    if existing is not None and not replace:
        raise DatasetError(
            f"a set named {name!r} exists ({existing.task}, version {existing.version}, "
            f"{existing.examples} examples); the new rows have version {version}: "
            "replace the set to store them as the new version (--replace; on the Evals page: Replace)"
        )
    now = utcnow()
    with write_tx(db):
        if existing is not None:
            db.execute("DELETE FROM eval_dataset_documents WHERE dataset = ?", [name])
            db.execute("DELETE FROM eval_dataset_examples WHERE dataset = ?", [name])
            db.execute(f"DELETE FROM {TABLE} WHERE name = ?", [name])
        db.execute(
            f"INSERT INTO {TABLE} (name, task, version, source, location, mapping, options, examples, "
            "documents, unanswerable, per_query, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                name,
                mapped.task,
                version,
                source_kind,
                mapped.location,
                dumps(mapped.mapping),
                dumps(options),
                len(mapped.examples),
                len(mapped.corpus),
                mapped.unanswerable,
                int(mapped.per_query),
                existing.created_at if existing else now,
                now,
            ],
        )
        db.conn.executemany(
            "INSERT INTO eval_dataset_examples (dataset, position, example_id, example) VALUES (?, ?, ?, ?)",
            [(name, i, e.id, dumps(custom_rows.example_data(e))) for i, e in enumerate(mapped.examples)],
        )
        db.conn.executemany(
            "INSERT INTO eval_dataset_documents (dataset, doc_id, text) VALUES (?, ?, ?)",
            [(name, d, t) for d, t in mapped.corpus.items()],
        )
    stored = get_set(db, name)
    return AddResult(
        stored, "replaced" if existing else "added", existing.version if existing else None, mapped.skipped
    )


Mapping = str | dict[str, str] | None  # ``FIELD=COLUMN,...`` (the CLI) or ``{field: column}`` (a page)


def _map(task: str, source: SourceRows, mapping_given: Mapping, corpus_path: str | None) -> MappedSet:
    tasks.task_spec(task)
    mapping = custom_rows.parse_mapping(mapping_given, task)
    corpus = None
    if corpus_path:
        if task != "retrieval":
            raise DatasetError("--corpus is for retrieval sets")
        corpus = custom_rows.read_corpus(custom_rows.read_file(corpus_path), mapping)
    return custom_rows.map_rows(task, source, mapping, corpus)


def map_file(
    task: str,
    path: str | Path,
    mapping: Mapping = None,
    corpus: str | None = None,
    limit: int | None = None,
) -> MappedSet:
    """Read, map and validate a file as :func:`add_from_file` does, storing nothing (a form's check step)."""
    if limit is not None and limit < 1:
        raise DatasetError("--limit must be at least 1")
    return _map(task, custom_rows.read_file(path, limit), mapping, corpus)


def add_from_file(
    db: sqlite_utils.Database,
    name: str,
    task: str,
    path: str,
    mapping: Mapping = None,
    corpus: str | None = None,
    limit: int | None = None,
    replace: bool = False,
) -> AddResult:
    """Read, map, validate and store a set from a file; nothing is stored when any row is wrong."""
    name = check_name(name)
    mapped = map_file(task, path, mapping, corpus, limit)
    options = {
        "file": str(path),
        "format": Path(path).suffix.lower().lstrip("."),
        "corpus": corpus,
        "limit": limit,
    }
    return _store(db, name, mapped, "file", options, replace)


def add_from_hub(
    db: sqlite_utils.Database,
    settings: Settings,
    name: str,
    task: str,
    repo: str,
    config: str | None = None,
    split: str = "validation",
    mapping: Mapping = None,
    corpus: str | None = None,
    limit: int | None = None,
    replace: bool = False,
) -> AddResult:
    """Stream the first ``limit`` (default ``[eval] hub_max_rows``) rows of a Hub dataset and store
    them as a set.

    ``datasets`` reads the Hub at ``HF_ENDPOINT`` (fixed when it is imported); a configured ``[hub] endpoint``
    on another origin is refused rather than silently not used. The API key is sent only to that origin.
    """
    from huggingface_hub import constants

    from hfops import config as hfconfig
    from hfops import net

    name = check_name(name)
    if limit is not None and limit < 1:
        raise DatasetError("--limit must be at least 1")
    endpoint = settings.hub.endpoint.rstrip("/")
    if not net.same_origin(constants.ENDPOINT, endpoint):
        raise DatasetError(
            f"[hub] endpoint is {endpoint} but datasets reads the Hub at {constants.ENDPOINT}: "
            f"set HF_ENDPOINT={endpoint} for this process"
        )
    rows_wanted = limit or settings.eval.hub_max_rows
    token = net.token_for(constants.ENDPOINT, endpoint, hfconfig.api_key())
    source = custom_rows.read_hub(repo, config, split, rows_wanted, token)
    mapped = _map(task, source, mapping, corpus)
    options = {"repo": repo, "config": config, "split": split, "limit": rows_wanted, "corpus": corpus}
    return _store(db, name, mapped, "hub", options, replace)


# --- uploads (the Evals page) -------------------------------------------------------------------------------

UPLOADS = "uploads"


def upload_folder(store_path: str | Path) -> Path:
    """Where uploaded files are kept: ``uploads/`` beside the store (a set's location names its file
    there)."""
    return Path(store_path).resolve().parent / UPLOADS


def save_upload(folder: str | Path, filename: str, data: bytes) -> Path:
    """Keep an uploaded file as ``folder/<sha256 of its bytes>/<its name>`` and return that path; the same
    bytes land at the same path, so the file read, checked and stored is the one uploaded. Refused: a type the
    readers do not read, an empty file."""
    original = Path((filename or "").replace("\\", "/")).name
    suffix = Path(original).suffix.lower()
    if suffix not in custom_rows.FORMATS:
        raise DatasetError(
            f"{original or 'the upload'}: unsupported file type {suffix or '(none)'} "
            f"(use {', '.join(custom_rows.FORMATS)})"
        )
    if not data:
        raise DatasetError(f"{original}: the file is empty")
    stem = re.sub(r'[\x00-\x1f\x7f/\\:*?"<>|]+', "_", Path(original).stem).strip(" .") or "upload"
    target = Path(folder) / hashlib.sha256(data).hexdigest()[:16] / f"{stem[:80]}{suffix}"
    if target.is_file() and target.stat().st_size == len(data):
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        partial.write_bytes(data)
        partial.replace(target)
    except OSError as exc:
        raise DatasetError(
            f"cannot keep the upload in {target.parent}: {exc.strerror or type(exc).__name__}"
        ) from None
    return target


def suggest_name(filename: str) -> str:
    """A valid set name made from a file name (``Support Tickets.csv`` -> ``support-tickets``)."""
    stem = Path((filename or "").replace("\\", "/")).stem.lower()
    name = re.sub(r"[^a-z0-9_.-]+", "-", stem).strip("-_.")[:60].rstrip("-_.") or "custom"
    return f"{name}-set" if tasks.is_builtin(name) else name


# --- published reports --------------------------------------------------------------------------------------


def report_facts(db: sqlite_utils.Database, run: Any) -> dict[str, Any] | None:
    """What a published eval report says of a run's custom set, never its rows: name, version (content hash),
    size (examples), documents, unanswerable questions and where it came from; None for a built-in dataset.

    The sizes are those of the stored set when it still holds the run's version. A set replaced or removed
    since keeps only what the run shows: its size when the run used every example (no sample limit, or fewer
    examples than the limit), else None; ``current`` says which."""
    name = run["dataset"]
    if tasks.is_builtin(name):
        return None
    version = run["dataset_version"] or None
    found = find_set(db, name)
    if found is not None and version and found.version == version:
        return {
            "name": name,
            "version": version,
            "size": found.examples,
            "documents": found.documents,
            "unanswerable": found.unanswerable if found.task == "qa" else None,
            "source": found.source,
            "current": True,
        }
    total, limit = run["total"], run["sample_limit"]
    whole = total is not None and (not limit or total < limit)
    return {
        "name": name,
        "version": version,
        "size": total if whole else None,
        "documents": None,
        "unanswerable": None,
        "source": None,
        "current": False,
    }


# --- loading for runs ---------------------------------------------------------------------------------------


def stored_examples(db: sqlite_utils.Database, name: str) -> list[Example]:
    """Every example of a set, in stored order."""
    found = rows(db, "SELECT example FROM eval_dataset_examples WHERE dataset = ? ORDER BY position", [name])
    return [Example(**loads(r["example"])) for r in found]


def stored_documents(db: sqlite_utils.Database, name: str) -> dict[str, str]:
    """Every document of a set."""
    return {
        r["doc_id"]: r["text"]
        for r in rows(
            db, "SELECT doc_id, text FROM eval_dataset_documents WHERE dataset = ? ORDER BY doc_id", [name]
        )
    }


def load_custom_set(db: sqlite_utils.Database, name: str, task: str, limit: int | None = None) -> EvalSet:
    """The examples of custom set ``name`` for ``task`` as an :class:`EvalSet`, sampled like a
    built-in set."""
    found = find_set(db, name)
    if found is None:
        raise DatasetError(
            f"no custom eval set {name!r} (it was removed, or never added: hfops dataset list)"
        )
    if found.task != task:
        raise DatasetError(f"{name} is a {found.task} set, not a {task} set")
    examples = stored_examples(db, name)
    chosen = set(sample_ids(name, [e.id for e in examples], limit))
    picked = [e for e in examples if e.id in chosen]
    corpus = stored_documents(db, name) if tasks.is_ranking(task) or found.documents else {}
    if found.per_query:
        wanted = {d for e in picked for d in e.candidates or []}
        corpus = {d: t for d, t in corpus.items() if d in wanted}
    return EvalSet(name, task, SOURCE, found.version, found.location, picked, corpus, available=len(examples))


def published_rows(db: sqlite_utils.Database, run: Any) -> dict[str, list[dict[str, Any]]]:
    """The rows of a run's custom set for a publication the operator asked to include them in:
    ``{"examples": [...], "documents": [...]}`` (documents empty for a set without a corpus).

    Only the version the run used can be published: a set replaced or removed since raises
    :class:`DatasetError`, as does a built-in dataset (its rows are public already).
    """
    name, version = run["dataset"], run["dataset_version"] or None
    if tasks.is_builtin(name):
        raise DatasetError(
            f"{name} is a built-in dataset, not a custom set: there are no rows of yours to include"
        )
    found = find_set(db, name)
    if found is None or found.version != version:
        now = "was removed" if found is None else f"now holds version {found.version}"
        raise DatasetError(
            f"custom set {name} {now}, not the run's version {version}: its rows cannot be published "
            "with this run"
        )
    qa = found.task == "qa"
    examples = [
        {"id": e.id, "question": e.query, "context": e.context, "answers": e.answers}
        if qa
        else {"id": e.id, "query": e.query, "relevant": e.relevant}
        | ({"candidates": e.candidates} if e.candidates is not None else {})
        for e in stored_examples(db, name)
    ]
    documents = [{"doc_id": d, "doc_text": t} for d, t in stored_documents(db, name).items()]
    return {"examples": examples, "documents": documents}


def current_version(db: sqlite_utils.Database, name: str) -> str | None:
    """The version of a stored set, or None."""
    found = find_set(db, name)
    return found.version if found else None
