"""Storing one page of records: ``models`` rows, candidates and their audit trail, and the run's counts
(the caller holds the write transaction)."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import operator
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import sqlite_utils

from hfops import net
from hfops.config import DiscoveryConfig
from hfops.discovery.facts import ModelFacts, parse_record, skip_reason
from hfops.discovery.rule import rule_failures, rule_fingerprint
from hfops.discovery.score import quality_score
from hfops.discovery.sources import Page, Source, merge_duplicates
from hfops.registry import CANDIDATE_ROWS_COLUMNS, registry_rows_deferred, write_registry_rows
from hfops.store import rows, utcnow

MAX_STORED_ERRORS = 50
UNLISTED_FLAG = "not listed by the last complete sync of its source"


@functools.cache
def _packaged_ids() -> frozenset[str]:
    from hfops.models.packaged import PACKAGED

    return frozenset(p.model_id.lower() for p in PACKAGED)


def with_packaged_facts(facts: ModelFacts) -> ModelFacts:
    """``facts`` completed by what an installed packaged copy's files carry (its licence, its weights format).

    Only for the ids of packaged models (hfops.models.packaged); the Hub record's own facts win where it has
    them.
    """
    if facts.model_id.strip().lower() not in _packaged_ids():  # nearly every record: one set lookup
        return facts
    from hfops.models.packaged import packaged_facts

    extra = packaged_facts(facts.model_id)
    if extra is None:
        return facts
    quantization = sorted({*facts.quantization, "gguf"}) if extra.format == "gguf" else facts.quantization
    return dataclasses.replace(
        facts,
        license=facts.license or extra.license or None,
        safetensors=facts.safetensors or extra.format == "safetensors",
        quantization=quantization,
        tags=[*facts.tags, *(t for t in ("packaged", extra.format) if t not in facts.tags)],
    )


def printable(text: str) -> str:
    """``text`` with control, format and unpaired-surrogate characters written as ``\\uXXXX``.

    Hub text is untrusted: a NUL, a bidi override or a lone surrogate from a record must not reach the store
    or a screen.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == " " else f"\\u{ord(c):04x}" for c in text)


def line(text: object, limit: int = 300) -> str:
    """One scrubbed, printable line of at most ``limit`` characters: how every stored message is written."""
    return printable(net.one_line(text, limit))


def json_text(value: Any) -> str:
    """Compact JSON as :func:`hfops.store.dumps` writes it (non-ASCII kept), through orjson."""
    return orjson.dumps(value, default=str).decode()


def raw_json(record: Any) -> tuple[str, str]:
    """The record as stored (compact JSON, key order as received) and its content hash."""
    data = orjson.dumps(record, default=str)
    return data.decode(), hashlib.blake2b(data, digest_size=16).hexdigest()


# The ``models`` columns discovery writes for one record, in the order :func:`model_values` gives them
# (``first_seen`` and ``rule_hash`` are the caller's).
MODEL_COLUMNS = (
    "model_id", "author", "sha", "pipeline_tag", "library_name", "license", "use_restricted", "tags",
    "siblings", "downloads", "downloads_all_time", "likes", "trending_score", "created_at", "last_modified",
    "gated", "safetensors", "quantization", "matches_rule", "rule_failures", "raw", "record_hash", "source",
    "last_seen", "last_sync_id",
)  # fmt: skip


def model_values(
    facts: ModelFacts, raw: str, record_hash: str, failures: list[str], source: str, sync_id: int, now: str
) -> tuple[Any, ...]:
    """The ``models`` row discovery stores for one record, as values in :data:`MODEL_COLUMNS` order (what a
    sync page binds)."""
    return (
        facts.model_id,
        facts.author,
        facts.sha,
        facts.pipeline_tag,
        facts.library_name,
        facts.license,
        int(facts.use_restricted),
        orjson.dumps(facts.tags).decode(),
        orjson.dumps(facts.siblings).decode(),
        facts.downloads,
        facts.downloads_all_time,
        facts.likes,
        facts.trending_score,
        facts.created_at,
        facts.last_modified,
        facts.gated,
        int(facts.safetensors),
        ",".join(facts.quantization),
        int(not failures),
        json_text(failures),
        raw,
        record_hash,
        source,
        now,
        sync_id,
    )


def model_row(
    facts: ModelFacts, raw: str, record_hash: str, failures: list[str], source: str, sync_id: int, now: str
) -> dict[str, Any]:
    """The ``models`` row discovery stores for one record (:func:`model_values` by column name).

    ``first_seen`` and ``rule_hash`` are added by the caller.
    """
    return dict(
        zip(MODEL_COLUMNS, model_values(facts, raw, record_hash, failures, source, sync_id, now), strict=True)
    )


# A candidate's ``candidate_rows`` row is its model id and candidate state (the first four of
# CANDIDATE_ROWS_COLUMNS) then these values of its ``models`` row, picked from model_values' tuple.
if CANDIDATE_ROWS_COLUMNS[:4] != ("model_id", "score", "status", "flag"):  # not an assert: kept under -O
    raise RuntimeError("store_page builds candidate_rows tuples as model_id, score, status, flag, then facts")
_NARROW_FACTS = operator.itemgetter(*(MODEL_COLUMNS.index(c) for c in CANDIDATE_ROWS_COLUMNS[4:]))


@dataclass
class SyncCounts:
    """What a run has done so far (saved into its ``sync_runs`` row after every page)."""

    pages: int = 0
    seen: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    matched: int = 0
    new_candidates: int = 0
    flagged: int = 0
    records: int = 0
    duplicates: int = 0
    lost_pages: int = 0
    pass_lost: int = 0  # pages lost by the earlier runs of a resumed pass
    skip_reasons: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    seen_ids: set[str] = field(default_factory=set)
    matched_ids: set[str] = field(default_factory=set)
    lost: list[str] = field(default_factory=list)

    def error(self, message: str) -> None:
        """Record one message (scrubbed, printable); at most :data:`MAX_STORED_ERRORS` are kept."""
        if len(self.errors) < MAX_STORED_ERRORS:
            self.errors.append(line(message, 500))

    def first_sight(self, record: Any) -> bool:
        """Count ``record`` as seen unless its model was already seen by this run (``seen`` counts models)."""
        model_id = record.get("id") if isinstance(record, dict) else None
        if isinstance(model_id, str):
            if model_id in self.seen_ids:
                return False
            self.seen_ids.add(model_id)
        self.seen += 1
        return True

    def outcome(self, model_id: str, matches: bool) -> None:
        """The model's latest judgement in this run (last wins): ``matched`` counts distinct models."""
        if matches:
            self.matched_ids.add(model_id)
        else:
            self.matched_ids.discard(model_id)
        self.matched = len(self.matched_ids)


def store_page(
    db: sqlite_utils.Database,
    records: list[Any],
    counts: SyncCounts,
    rule: DiscoveryConfig,
    source: str,
    sync_id: int,
    pass_id: int,
    now_dt: datetime,
) -> None:
    """Upsert one page of records and their candidates (caller holds the write transaction).

    ``records`` hold one record per id (see :func:`merge_duplicates`). A record whose content hash and rule
    fingerprint are unchanged is not parsed again: it is only marked as seen by this pass (one UPDATE per
    page). A model this run already stored (listed again by a later page) is stored again, last wins, but
    counted once.
    """
    now = utcnow()
    rule_hash = rule_fingerprint(rule)
    hashed: list[tuple[Any, str, str, bool]] = []
    for record in records:
        first = counts.first_sight(record)
        try:
            raw, record_hash = raw_json(record)
        except (TypeError, ValueError) as exc:  # e.g. a lone surrogate or an integer beyond 64 bits
            if first:
                skip(counts, record, ValueError(f"wrong value: the record cannot be stored as JSON ({exc})"))
            continue
        hashed.append((record, raw, record_hash, first))
    ids = [r["id"] for r, _, _, _ in hashed if isinstance(r, dict) and isinstance(r.get("id"), str)]
    existing: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for row in rows(
            db,
            "SELECT m.model_id, m.record_hash, m.rule_hash, c.model_id AS cand, c.flag, c.status, c.score "
            "FROM models m "
            "LEFT JOIN candidates c ON c.model_id = m.model_id "
            f"WHERE m.model_id IN ({', '.join('?' for _ in chunk)})",
            chunk,
        ):
            existing[row["model_id"]] = row
    unchanged_ids: list[str] = []
    # rows as the statements of _write_rows bind them
    new_rows: list[tuple[Any, ...]] = []  # MODEL_COLUMNS, rule_hash, first_seen
    changed_rows: list[tuple[Any, ...]] = []  # MODEL_COLUMNS but the id, rule_hash, then the id
    new_candidates: list[tuple[Any, ...]] = []  # NEW_CANDIDATE_COLUMNS
    scored: list[tuple[Any, ...]] = []  # score, score_breakdown, updated_at, model_id
    flagged: list[tuple[Any, ...]] = []  # flag, updated_at, model_id
    transitions: list[tuple[Any, ...]] = []
    narrow: list[tuple[Any, ...]] = []  # candidate_rows as they stand after the page (CANDIDATE_ROWS_COLUMNS)
    for record, raw, record_hash, first in hashed:
        repeat = not first
        rid = record.get("id") if isinstance(record, dict) else None
        old = existing.get(rid) if isinstance(rid, str) else None
        if (
            old
            and old["record_hash"] == record_hash
            and old["rule_hash"] == rule_hash
            and not (old["cand"] and old["flag"])
        ):
            unchanged_ids.append(old["model_id"])
            counts.unchanged += int(not repeat)
            counts.outcome(old["model_id"], bool(old["cand"]))
            continue
        try:
            facts = with_packaged_facts(parse_record(record)[1])
        except ValueError as exc:
            if not repeat:
                skip(counts, record, exc)
            continue
        model_id = facts.model_id
        failures = rule_failures(facts, rule)
        values = model_values(facts, raw, record_hash, failures, source, pass_id, now)
        if old is None:
            new_rows.append((*values, rule_hash, now))
            counts.inserted += int(not repeat)
        else:
            changed_rows.append((*values[1:], rule_hash, model_id))
            counts.updated += int(not repeat)
        counts.outcome(model_id, not failures)
        if not failures:
            score, breakdown = quality_score(facts, now_dt)
            breakdown_text = json_text(breakdown)
            if old is not None and old["cand"]:
                scored.append((score, breakdown_text, now, model_id))
                narrow.append((model_id, score, old["status"], None, *_NARROW_FACTS(values)))
            else:
                new_candidates.append((model_id, "candidate", score, breakdown_text, None, now, now))
                narrow.append((model_id, score, "candidate", None, *_NARROW_FACTS(values)))
                transitions.append(
                    (
                        model_id,
                        None,
                        "candidate",
                        now,
                        "sync",
                        "matched the candidate rule",
                        f"sync_run:{sync_id}",
                    )
                )
        elif old is not None and old["cand"]:
            flag = "no longer matches the rule: " + "; ".join(failures)
            if old["flag"] != flag:
                counts.flagged += 1
            flagged.append((flag, now, model_id))
            narrow.append((model_id, old["score"], old["status"], flag, *_NARROW_FACTS(values)))
    # written in key order: consecutive rows land on the same B-tree pages (models, candidates and the rows
    # their triggers keep are all keyed by model id), instead of one random page per row (ids are unique in
    # a page: a tuple's order is its id's)
    for batch in (new_rows, new_candidates, transitions, narrow, unchanged_ids):
        batch.sort()
    for batch in (changed_rows, scored, flagged):
        batch.sort(key=_last)
    for start in range(0, len(unchanged_ids), 500):
        chunk = unchanged_ids[start : start + 500]
        db.execute(
            "UPDATE models SET last_seen = ?, last_sync_id = ? "
            f"WHERE model_id IN ({', '.join('?' for _ in chunk)})",
            [now, pass_id, *chunk],
        )
    # the narrow tables of migration 0014 (candidate_rows, model_search) are written for the page's rows from
    # the values above before the commit, not by a trigger per row nor read back through the wide models
    # rows; a page only inserts and updates rows (it deletes none), so no narrow row can vanish
    if new_rows or changed_rows:
        search = sorted(
            [(r[0], r[_DOWNLOADS]) for r in new_rows] + [(r[-1], r[_DOWNLOADS - 1]) for r in changed_rows]
        )
        with registry_rows_deferred(db, ()):
            _write_rows(db, counts, new_rows, changed_rows, new_candidates, scored, flagged, transitions)
            write_registry_rows(db, search, narrow)


NEW_CANDIDATE_COLUMNS = ("model_id", "status", "score", "score_breakdown", "flag", "created_at", "updated_at")
_DOWNLOADS = MODEL_COLUMNS.index("downloads")


def _write_rows(
    db: sqlite_utils.Database,
    counts: SyncCounts,
    new_rows: list[tuple[Any, ...]],
    changed_rows: list[tuple[Any, ...]],
    new_candidates: list[tuple[Any, ...]],
    scored: list[tuple[Any, ...]],
    flagged: list[tuple[Any, ...]],
    transitions: list[tuple[Any, ...]],
) -> None:
    if new_rows:
        inserted = (*MODEL_COLUMNS, "rule_hash", "first_seen")
        db.conn.executemany(
            f"INSERT INTO models ({', '.join(inserted)}) VALUES ({', '.join('?' for _ in inserted)})",
            new_rows,
        )
    if changed_rows:
        updated = (*MODEL_COLUMNS[1:], "rule_hash")
        db.conn.executemany(
            f"UPDATE models SET {', '.join(f'{c} = ?' for c in updated)} WHERE model_id = ?", changed_rows
        )
    if new_candidates:
        db.conn.executemany(
            f"INSERT INTO candidates ({', '.join(NEW_CANDIDATE_COLUMNS)}) "
            f"VALUES ({', '.join('?' for _ in NEW_CANDIDATE_COLUMNS)})",
            new_candidates,
        )
        counts.new_candidates += len(new_candidates)
        db.conn.executemany(
            "INSERT INTO status_transitions (model_id, from_status, to_status, at, actor, reason, evidence) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            transitions,
        )
    if scored:
        db.conn.executemany(
            "UPDATE candidates SET score = ?, score_breakdown = ?, flag = NULL, updated_at = ? "
            "WHERE model_id = ?",
            scored,
        )
    if flagged:
        db.conn.executemany("UPDATE candidates SET flag = ?, updated_at = ? WHERE model_id = ?", flagged)


def _last(row: tuple[Any, ...]) -> Any:
    return row[-1]


def skip(counts: SyncCounts, record: Any, exc: Exception) -> None:
    counts.skipped += 1
    counts.skip_reasons[skip_reason(exc)] += 1
    rid = record.get("id") if isinstance(record, dict) else None
    counts.error(f"skipped {rid if isinstance(rid, str) and rid.strip() else '(no id)'}: {exc}")


def flag_unlisted(db: sqlite_utils.Database, source: str, pass_id: int, counts: SyncCounts) -> None:
    """After a complete pass, flag candidates from this source that the pass did not list."""
    cursor = db.execute(
        "UPDATE candidates SET flag = ?, updated_at = ? WHERE flag IS NULL AND model_id IN "
        "(SELECT model_id FROM models WHERE source = ? AND (last_sync_id IS NULL OR last_sync_id < ?))",
        [UNLISTED_FLAG, utcnow(), source, pass_id],
    )
    counts.flagged += cursor.rowcount


def take_page(
    db: sqlite_utils.Database,
    page: Page,
    counts: SyncCounts,
    rule: DiscoveryConfig,
    source: Source,
    sync_id: int,
    pass_id: int,
    now_dt: datetime,
) -> None:
    """Account for one page (errors, lost pages, bad lines, duplicates) and store its records."""
    counts.pages += 1
    for message in page.errors:
        counts.error(message)
    for message in page.lost:
        counts.lost_pages += 1
        counts.lost.append(line(message, 200))
        counts.error(message)
    for bad in page.skipped_lines:
        counts.records += 1
        counts.skipped += 1
        counts.seen += 1
        counts.skip_reasons["invalid JSON"] += 1
        counts.error(f"skipped {bad}")
    records, merged = merge_duplicates(page.records)
    duplicates = [*page.duplicates, *merged]
    counts.records += len(page.records) + len(page.duplicates)
    if duplicates:
        counts.duplicates += len(duplicates)
        shown = ", ".join(sorted(set(duplicates))[:5]) + (", ..." if len(set(duplicates)) > 5 else "")
        counts.error(f"merged {len(duplicates)} duplicate record(s) of the same id (last wins): {shown}")
    store_page(db, records, counts, rule, source.name, sync_id, pass_id, now_dt)


def duplicates_note(counts: SyncCounts) -> str:
    return f"; {counts.duplicates} duplicate record(s) merged (last wins)" if counts.duplicates else ""
