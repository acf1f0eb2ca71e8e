"""Candidate registry: the status lifecycle, its audit trail, and paginated candidate queries.

Queries return typed records (:class:`Candidate`, :class:`ModelRecord`, :class:`CandidateRecord`,
:class:`Transition`, :class:`StatusChange`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import sqlite_utils

from hfops.errors import RegistryError
from hfops.records import Record
from hfops.store import loads, one, rows, utcnow, write_tx

STATUSES = ("candidate", "evaluating", "shadow", "promoted", "rejected", "retired")

# Allowed moves; every move needs a reason and is recorded in status_transitions.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "candidate": ("evaluating", "shadow", "promoted", "rejected", "retired"),
    "evaluating": ("candidate", "shadow", "promoted", "rejected", "retired"),
    "shadow": ("evaluating", "candidate", "promoted", "rejected", "retired"),
    "promoted": ("shadow", "retired"),
    "rejected": ("candidate", "retired"),
    "retired": ("candidate",),
}

# Which evaluation task a pipeline tag serves; one promoted model per task is production.
TASK_OF_PIPELINE = {
    "feature-extraction": "retrieval",
    "sentence-similarity": "retrieval",
    "text-generation": "qa",
    "text2text-generation": "qa",
}

SORT_KEYS = {  # sort key -> (table, column): "models" holds the facts, "candidates" the state
    "score": ("candidates", "score"),
    "downloads": ("models", "downloads"),
    "likes": ("models", "likes"),
    "last_modified": ("models", "last_modified"),
    "created_at": ("models", "created_at"),
    "model_id": ("models", "model_id"),
    "status": ("candidates", "status"),
}


def sort_column(sort: str, models: str = "m", candidates: str = "c") -> str:
    """The column ``sort`` orders by, under the aliases of :func:`where_clause`."""
    if sort not in SORT_KEYS:
        raise RegistryError(f"cannot sort by {sort!r}; choose one of {', '.join(SORT_KEYS)}")
    table, column = SORT_KEYS[sort]
    return f"{models if table == 'models' else candidates}.{column}"


CANDIDATE_COLUMNS = (
    "m.model_id, m.pipeline_tag, m.license, m.library_name AS library, m.downloads, m.likes, m.safetensors, "
    "m.quantization, c.score, c.status, c.flag, m.use_restricted, m.last_modified"
)


@dataclass
class Candidate(Record):
    """One row of :func:`list_candidates`: the model's facets joined with its candidate state."""

    model_id: str
    pipeline_tag: str | None
    license: str | None
    library: str | None
    downloads: int
    likes: int
    safetensors: bool
    quantization: str  # comma-separated facet, '' = none detected
    score: float
    status: str
    flag: str | None
    use_restricted: bool
    last_modified: str | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        known, _ = cls._known(row)
        known["safetensors"] = bool(known["safetensors"])
        known["use_restricted"] = bool(known["use_restricted"])
        return cls(**known)

    @property
    def quantization_methods(self) -> list[str]:
        return [q for q in self.quantization.split(",") if q]


@dataclass
class Transition(Record):
    """One entry of a model's audit trail."""

    id: int
    model_id: str
    from_status: str | None
    to_status: str
    at: str
    actor: str
    reason: str
    evidence: str | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        return cls(**cls._known(row)[0])


@dataclass
class CandidateRecord(Record):
    """A model's row in ``candidates`` (status, score and its breakdown, flag)."""

    model_id: str
    status: str
    score: float
    score_breakdown: dict[str, Any]
    flag: str | None
    created_at: str
    updated_at: str

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        known, _ = cls._known(row)
        known["score_breakdown"] = loads(known.get("score_breakdown"), {})
        return cls(**known)


@dataclass
class ModelRecord(Record):
    """Everything stored about one model (:func:`get_model`), with its candidate row and audit trail.

    ``extra`` holds columns other migrations add to ``models`` (reachable as ``record["column"]`` too).
    """

    model_id: str
    author: str | None
    sha: str | None
    pipeline_tag: str | None
    library_name: str | None
    license: str | None
    use_restricted: bool
    tags: list[str]
    siblings: list[str]
    downloads: int
    downloads_all_time: int | None
    likes: int
    trending_score: float | None
    created_at: str | None
    last_modified: str | None
    gated: str | None
    safetensors: bool
    quantization: str
    matches_rule: bool
    rule_failures: list[str]
    raw: dict[str, Any]
    record_hash: str
    rule_hash: str | None
    source: str
    first_seen: str
    last_seen: str
    last_sync_id: int | None
    candidate: CandidateRecord | None = None
    history: list[Transition] = field(default_factory=list)
    task: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        known, extra = cls._known(row)
        for key in ("tags", "siblings", "rule_failures"):
            known[key] = loads(known.get(key), [])
        known["raw"] = loads(known.get("raw"), {})
        for key in ("safetensors", "use_restricted", "matches_rule"):
            known[key] = bool(known.get(key))
        return cls(**known, extra=extra)


@dataclass
class StatusChange(Record):
    """What :func:`set_status` did: ``from_status`` -> ``to_status``, and the production models it demoted."""

    ALIASES: ClassVar[dict[str, str]] = {"from": "from_status", "to": "to_status"}

    model_id: str
    from_status: str
    to_status: str
    demoted: list[str] = field(default_factory=list)


@dataclass
class CandidateFilter:
    """Filters for :func:`list_candidates`; empty values mean 'any'."""

    pipeline_tags: list[str] = field(default_factory=list)
    licenses: list[str] = field(default_factory=list)
    libraries: list[str] = field(default_factory=list)
    quantization: list[str] = field(default_factory=list)  # 'none' selects unquantized models
    statuses: list[str] = field(default_factory=list)
    min_score: float = 0.0
    text: str = ""
    flagged_only: bool = False


def contains_pattern(text: str) -> str:
    """The ``LIKE ... ESCAPE '\\'`` pattern of every text that contains ``text`` literally (its ``%``, ``_``
    and backslashes escaped)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def where_clause(
    flt: CandidateFilter, models: str = "m", candidates: str = "c", indexed: bool = True
) -> tuple[str, list[Any]]:
    """The SQL ``WHERE`` (or ``""``) and parameters of ``flt``: the one definition of what each filter means.

    ``models`` and ``candidates`` are the aliases of the tables holding the model facts and the candidate
    state; the narrow ``candidate_rows`` (migration 0014) carries both under the same column names.
    ``indexed=False`` writes every column as ``+column``, which SQLite does not look up through an index (the
    same rows match): a page of many matches then walks its sort column's index instead of a filter's.
    """
    clauses: list[str] = []
    params: list[Any] = []
    plus = "" if indexed else "+"
    m, c = f"{plus}{models}", f"{plus}{candidates}"

    def any_of(column: str, values: list[str]) -> None:
        if values:
            clauses.append(f"{column} IN ({', '.join('?' for _ in values)})")
            params.extend(values)

    any_of(f"{m}.pipeline_tag", flt.pipeline_tags)
    any_of(f"{m}.license", flt.licenses)
    any_of(f"{m}.library_name", flt.libraries)
    any_of(f"{c}.status", flt.statuses)
    if flt.quantization:
        quant_clauses = []
        for q in flt.quantization:
            if q == "none":
                quant_clauses.append(f"{m}.quantization = ''")
            else:
                quant_clauses.append(f"(',' || {m}.quantization || ',') LIKE ?")
                params.append(f"%,{q},%")
        clauses.append("(" + " OR ".join(quant_clauses) + ")")
    if flt.min_score:
        clauses.append(f"{c}.score >= ?")
        params.append(flt.min_score)
    if flt.text.strip():
        clauses.append(f"{m}.model_id LIKE ? ESCAPE '\\'")
        params.append(contains_pattern(flt.text.strip()))
    if flt.flagged_only:
        clauses.append(f"{c}.flag IS NOT NULL")
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def list_candidates(
    db: sqlite_utils.Database,
    flt: CandidateFilter | None = None,
    sort: str = "score",
    descending: bool = True,
    page: int = 1,
    page_size: int = 50,
) -> tuple[list[Candidate], int]:
    """One page of candidates matching ``flt`` and the total count; sorting and paging happen in SQL."""
    column = sort_column(sort)
    if page < 1 or page_size < 1:
        raise RegistryError("page and page_size must be >= 1")
    where, params = where_clause(flt or CandidateFilter())
    base = f"FROM candidates c JOIN models m ON m.model_id = c.model_id{where}"
    total = db.execute(f"SELECT COUNT(*) {base}", params).fetchone()[0]
    order = f"{column} {'DESC' if descending else 'ASC'}, m.model_id ASC"
    found = rows(
        db,
        f"SELECT {CANDIDATE_COLUMNS} {base} ORDER BY {order} LIMIT ? OFFSET ?",
        [*params, page_size, (page - 1) * page_size],
    )
    return [Candidate.from_row(row) for row in found], total


def facet_values(db: sqlite_utils.Database) -> dict[str, list[str]]:
    """Distinct values present among candidates, for filter widgets.

    Read from the narrow ``candidate_rows`` (migration 0014: candidates joined to their model facts, kept by
    triggers); the queries scan it, so a page caches the result until a sync changes the models.
    """

    def distinct(column: str) -> list[str]:
        sql = (
            f"SELECT DISTINCT {column} FROM candidate_rows WHERE {column} IS NOT NULL AND {column} != '' "
            "ORDER BY 1"
        )
        return [r[0] for r in db.execute(sql).fetchall()]

    quant: set[str] = set()
    for (value,) in db.execute("SELECT DISTINCT quantization FROM candidate_rows").fetchall():
        quant.update(v for v in value.split(",") if v)
    return {
        "pipeline_tags": distinct("pipeline_tag"),
        "licenses": distinct("license"),
        "libraries": distinct("library_name"),
        "quantization": ["none", *sorted(quant)],
        "statuses": list(STATUSES),
    }


# What the narrow tables of migration 0014 hold, as queries over ``models`` / ``candidates``: the one
# definition the set-based refresh writes and the consistency check compares with (the triggers of 0014 /
# 0015 spell the same per row).
def _search_key(model_id: str) -> str:
    """The SQL expression of a model's search key (lower case without - _ . / space :) from ``model_id``."""
    return (
        f"replace(replace(replace(replace(replace(replace(lower({model_id}), "
        "'-', ''), '_', ''), '.', ''), '/', ''), ' ', ''), ':', '')"
    )


MODEL_SEARCH_ROWS = f"SELECT m.model_id, {_search_key('m.model_id')} AS search_key, m.downloads FROM models m"
CANDIDATE_ROWS_ROWS = (
    "SELECT c.model_id, c.score, c.status, c.flag, m.pipeline_tag, m.license, m.library_name, "
    "m.quantization, m.downloads, m.likes, m.last_modified, m.created_at, m.use_restricted, m.safetensors "
    "FROM candidates c JOIN models m ON m.model_id = c.model_id"
)
# The columns of ``candidate_rows`` in the order CANDIDATE_ROWS_ROWS selects them (and write_registry_rows
# takes them).
CANDIDATE_ROWS_COLUMNS = (
    "model_id", "score", "status", "flag", "pipeline_tag", "license", "library_name", "quantization",
    "downloads", "likes", "last_modified", "created_at", "use_restricted", "safetensors",
)  # fmt: skip
# model_search rows are updated in place, never replaced: with recursive_triggers on (sqlite-utils sets it),
# a REPLACE fires the row's delete trigger, and migration 0018 would note every rewritten row for the search
# index although its key did not change.
_SEARCH_UPSERT = (
    " ON CONFLICT (model_id) DO UPDATE SET search_key = excluded.search_key, downloads = excluded.downloads"
)
_REFRESH_CHUNK = 500  # ids per statement (SQLite's variable limit is far above)


def refresh_registry_rows(db: sqlite_utils.Database, model_ids: Collection[str]) -> None:
    """Make ``candidate_rows`` and ``model_search`` hold exactly what ``models`` / ``candidates`` give for
    ``model_ids`` (rows of vanished models or candidates removed): set-based, a few statements per 500 ids.

    The triggers of migration 0015 do this per row for every writer; a bulk writer defers them with
    :func:`registry_rows_deferred`, which calls this before its transaction commits.
    """
    ids = sorted(set(model_ids))  # key order: consecutive rows land on the same B-tree pages
    for start in range(0, len(ids), _REFRESH_CHUNK):
        chunk = ids[start : start + _REFRESH_CHUNK]
        marks = ", ".join("?" for _ in chunk)
        db.conn.execute(
            f"DELETE FROM model_search WHERE model_id IN ({marks}) "
            f"AND model_id NOT IN (SELECT model_id FROM models WHERE model_id IN ({marks}))",
            [*chunk, *chunk],
        )
        db.conn.execute(
            f"INSERT INTO model_search {MODEL_SEARCH_ROWS} WHERE m.model_id IN ({marks}){_SEARCH_UPSERT}",
            chunk,
        )
        db.conn.execute(
            f"DELETE FROM candidate_rows WHERE model_id IN ({marks}) AND model_id NOT IN "
            f"(SELECT c.model_id FROM candidates c JOIN models m ON m.model_id = c.model_id "
            f"WHERE c.model_id IN ({marks}))",
            [*chunk, *chunk],
        )
        db.conn.execute(
            f"INSERT OR REPLACE INTO candidate_rows {CANDIDATE_ROWS_ROWS} WHERE c.model_id IN ({marks})",
            chunk,
        )


def write_registry_rows(
    db: sqlite_utils.Database,
    search: Iterable[tuple[str, int]],
    candidates: Iterable[Sequence[Any]],
) -> None:
    """Write narrow rows from values the caller already holds, instead of reading them back through the wide
    ``models`` rows (:func:`refresh_registry_rows`): for a bulk writer inside :func:`registry_rows_deferred`.

    ``search``: ``(model_id, downloads)`` of every ``models`` row the caller wrote (the search key is derived
    in SQL, as MODEL_SEARCH_ROWS derives it); ``candidates``: for every candidate of those models, one tuple
    in CANDIDATE_ROWS_COLUMNS order holding exactly what ``candidates`` / ``models`` hold for it once the
    caller's writes are done (its status, score and flag as they stand). The caller deletes none of those
    rows. :func:`registry_rows_drift` is the check that the values are right.
    """
    db.conn.executemany(
        f"INSERT INTO model_search VALUES (?1, {_search_key('?1')}, ?2){_SEARCH_UPSERT}", search
    )
    db.conn.executemany(
        f"INSERT OR REPLACE INTO candidate_rows ({', '.join(CANDIDATE_ROWS_COLUMNS)}) "
        f"VALUES ({', '.join('?' for _ in CANDIDATE_ROWS_COLUMNS)})",
        candidates,
    )


@contextlib.contextmanager
def registry_rows_deferred(db: sqlite_utils.Database, model_ids: Collection[str]) -> Iterator[None]:
    """Inside the caller's write transaction: write ``models`` / ``candidates`` rows of ``model_ids`` without
    their per-row triggers, then refresh the narrow tables for those ids in the same transaction.

    The triggers step aside while ``registry_rows_deferred`` holds a row (migration 0015); it is deleted
    before the refresh, so no other connection ever sees it (and a rollback discards it anyway). Rows of
    other ids written inside the block are the caller's to name in ``model_ids``. A caller that writes the
    narrow rows itself inside the block (:func:`write_registry_rows`, as a sync page does) names no ids.
    """
    if not db.conn.in_transaction:
        raise RegistryError("registry_rows_deferred needs the caller's write transaction (store.write_tx)")
    db.conn.execute("INSERT OR IGNORE INTO registry_rows_deferred (id) VALUES (1)")
    try:
        yield
    finally:
        db.conn.execute("DELETE FROM registry_rows_deferred")
    refresh_registry_rows(db, model_ids)


def registry_rows_drift(db: sqlite_utils.Database) -> dict[str, int]:
    """Rows by which ``candidate_rows`` / ``model_search`` differ from their definitions (0 and 0 when they
    are consistent): rows missing, extra or different, counted both ways."""
    out = {}
    for table, definition in (("candidate_rows", CANDIDATE_ROWS_ROWS), ("model_search", MODEL_SEARCH_ROWS)):
        found = db.execute(
            f"SELECT (SELECT COUNT(*) FROM (SELECT * FROM {table} EXCEPT {definition})) + "
            f"(SELECT COUNT(*) FROM ({definition} EXCEPT SELECT * FROM {table}))"
        ).fetchone()[0]
        out[table] = int(found)
    return out


def get_model(db: sqlite_utils.Database, model_id: str) -> ModelRecord | None:
    """Everything stored about one model, its candidate row and status history, or None."""
    row = one(db, "SELECT * FROM models WHERE model_id = ?", [model_id])
    if row is None:
        return None
    model = ModelRecord.from_row(row)
    candidate = one(db, "SELECT * FROM candidates WHERE model_id = ?", [model_id])
    model.candidate = CandidateRecord.from_row(candidate) if candidate else None
    model.history = status_history(db, model_id)
    model.task = TASK_OF_PIPELINE.get(model.pipeline_tag or "")
    return model


def status_history(db: sqlite_utils.Database, model_id: str) -> list[Transition]:
    """The audit trail of one model, oldest first."""
    found = rows(db, "SELECT * FROM status_transitions WHERE model_id = ? ORDER BY id", [model_id])
    return [Transition.from_row(r) for r in found]


def _record_transition(
    db: sqlite_utils.Database,
    model_id: str,
    from_status: str | None,
    to_status: str,
    reason: str,
    actor: str,
    evidence: str | None,
) -> None:
    db.execute(
        "INSERT INTO status_transitions (model_id, from_status, to_status, at, actor, reason, evidence) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [model_id, from_status, to_status, utcnow(), actor, reason, evidence],
    )


# What evidence may cite (the audit trail's own forms): an eval run, the sync that listed the model, a
# rollback.
EVIDENCE_FORMS = "eval_run:<run id>, sync_run:<sync id> or rollback:<model id>"


def check_evidence(db: sqlite_utils.Database, evidence: str | None, model_id: str) -> str | None:
    """``evidence`` for a status change of ``model_id`` stripped (None when empty), or :class:`RegistryError`
    when it cites nothing real.

    ``eval_run:<id>`` must name a stored eval run of ``model_id`` (as the candidate or as the production
    side), ``sync_run:<id>`` a stored sync run, ``rollback:<model>`` a model in the registry. Other forms are
    refused.
    """
    if evidence is None or not evidence.strip():
        return None
    evidence = evidence.strip()
    kind, _, ref = evidence.partition(":")
    if kind not in ("eval_run", "sync_run", "rollback") or not ref.strip():
        raise RegistryError(f"evidence {evidence!r} is not one of {EVIDENCE_FORMS}")
    if kind == "rollback":
        if one(db, "SELECT 1 AS found FROM models WHERE model_id = ?", [ref]) is None:
            raise RegistryError(f"evidence {evidence!r}: no model {ref!r} in the registry")
        return evidence
    if not (ref.isascii() and ref.isdigit()):
        raise RegistryError(f"evidence {evidence!r}: the run id must be a number ({kind}:12)")
    if kind == "sync_run":
        if one(db, "SELECT 1 AS found FROM sync_runs WHERE id = ?", [int(ref)]) is None:
            raise RegistryError(f"evidence {evidence!r}: no sync run {int(ref)} in the store")
        return f"sync_run:{int(ref)}"
    run = one(db, "SELECT model_id, production_id FROM eval_runs WHERE id = ?", [int(ref)])
    if run is None:
        raise RegistryError(f"evidence {evidence!r}: no eval run {int(ref)} in the store (hfops eval --list)")
    if model_id not in (run["model_id"], run["production_id"]):
        raise RegistryError(
            f"evidence {evidence!r}: eval run {int(ref)} compared {run['model_id']} with "
            f"{run['production_id']}, not {model_id} (hfops eval --list)"
        )
    return f"eval_run:{int(ref)}"


def set_status(
    db: sqlite_utils.Database,
    model_id: str,
    to_status: str,
    reason: str,
    actor: str = "operator",
    evidence: str | None = None,
) -> StatusChange:
    """Move a candidate to ``to_status`` with a reason, recorded in the audit trail.

    Promoting a model demotes the task's current production model to ``shadow`` (also audited).
    ``evidence`` is checked by :func:`check_evidence` in the same transaction: it exists and is about
    ``model_id``.
    """
    if to_status not in STATUSES:
        raise RegistryError(f"unknown status {to_status!r}; choose one of {', '.join(STATUSES)}")
    if not reason or not reason.strip():
        raise RegistryError("a reason is required for every status change")
    reason = reason.strip()
    demoted: list[str] = []
    with write_tx(db):
        row = one(
            db,
            "SELECT c.status, m.pipeline_tag FROM candidates c JOIN models m ON m.model_id = c.model_id "
            "WHERE c.model_id = ?",
            [model_id],
        )
        if row is None:
            raise RegistryError(f"no candidate {model_id!r} in the registry")
        current = row["status"]
        if to_status == current:
            raise RegistryError(f"{model_id} is already {current}")
        if to_status not in TRANSITIONS[current]:
            allowed = ", ".join(TRANSITIONS[current])
            raise RegistryError(f"cannot move {model_id} from {current} to {to_status} (allowed: {allowed})")
        evidence = check_evidence(db, evidence, model_id)
        if to_status == "promoted":
            task = TASK_OF_PIPELINE.get(row["pipeline_tag"] or "")
            tags = [t for t, k in TASK_OF_PIPELINE.items() if k == task]
            if tags:
                holders = db.execute(
                    "SELECT c.model_id FROM candidates c JOIN models m ON m.model_id = c.model_id "
                    f"WHERE c.status = 'promoted' AND m.pipeline_tag IN ({', '.join('?' for _ in tags)})",
                    tags,
                ).fetchall()
                for (holder,) in holders:
                    db.execute(
                        "UPDATE candidates SET status = 'shadow', updated_at = ? WHERE model_id = ?",
                        [utcnow(), holder],
                    )
                    _record_transition(
                        db,
                        holder,
                        "promoted",
                        "shadow",
                        f"replaced in production by {model_id}",
                        actor,
                        evidence,
                    )
                    demoted.append(holder)
        db.execute(
            "UPDATE candidates SET status = ?, updated_at = ? WHERE model_id = ?",
            [to_status, utcnow(), model_id],
        )
        _record_transition(db, model_id, current, to_status, reason, actor, evidence)
    return StatusChange(model_id, current, to_status, demoted)


def production_model(db: sqlite_utils.Database, task: str) -> str | None:
    """The promoted model serving ``task`` (``retrieval`` or ``qa``), or None."""
    tags = [t for t, k in TASK_OF_PIPELINE.items() if k == task]
    if not tags:
        return None
    found = db.execute(
        "SELECT c.model_id FROM candidates c JOIN models m ON m.model_id = c.model_id "
        f"WHERE c.status = 'promoted' AND m.pipeline_tag IN ({', '.join('?' for _ in tags)}) "
        "ORDER BY c.updated_at DESC LIMIT 1",
        tags,
    ).fetchone()
    return found[0] if found else None


def counts_by_status(db: sqlite_utils.Database) -> dict[str, int]:
    """Number of candidates in each status (every status present, zeros included)."""
    counts = dict.fromkeys(STATUSES, 0)
    for status, n in db.execute("SELECT status, COUNT(*) FROM candidates GROUP BY status").fetchall():
        counts[status] = n
    return counts


def add_candidate(
    db: sqlite_utils.Database,
    model_id: str,
    score: float,
    score_breakdown: Mapping[str, Any],
    reason: str,
    actor: str = "operator",
    evidence: str | None = None,
) -> CandidateRecord:
    """Make a stored model a candidate (status ``candidate``), audited like every move
    (``None -> candidate``).

    For models that enter the registry outside a sync (``hfops models add``); a sync adds its own.
    :class:`RegistryError` when the model is not in ``models``, is already a candidate, or ``evidence``
    cites nothing real (:func:`check_evidence`).
    """
    from hfops.store import dumps

    if not reason or not reason.strip():
        raise RegistryError("a reason is required for every status change")
    with write_tx(db):
        if one(db, "SELECT 1 AS found FROM models WHERE model_id = ?", [model_id]) is None:
            raise RegistryError(f"no model {model_id!r} in the registry")
        current = one(db, "SELECT status FROM candidates WHERE model_id = ?", [model_id])
        if current is not None:
            raise RegistryError(f"{model_id} is already a candidate ({current['status']})")
        evidence = check_evidence(db, evidence, model_id)
        now = utcnow()
        db.table("candidates").insert(
            {
                "model_id": model_id,
                "status": "candidate",
                "score": score,
                "score_breakdown": dumps(score_breakdown),
                "flag": None,
                "created_at": now,
                "updated_at": now,
            }
        )
        _record_transition(db, model_id, None, "candidate", reason.strip(), actor, evidence)
        row = one(db, "SELECT * FROM candidates WHERE model_id = ?", [model_id])
    assert row is not None
    return CandidateRecord.from_row(row)
