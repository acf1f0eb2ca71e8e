"""A sync: pages from a source stored into ``models`` / ``candidates``, one committed page at a time.

Each page is committed together with the cursor that resumes after it, so a crash or kill loses at most the
page in flight. A record whose content hash and rule fingerprint are unchanged is not parsed again. Nothing
is deleted: candidates that stop matching, or that a complete pass over the same source did not list, are
flagged.
"""

from __future__ import annotations

import functools
import hashlib
import os
import socket
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import httpx2
import orjson
import sqlite_utils

from hfops import net
from hfops.config import DiscoveryConfig, Settings, api_key, load_settings
from hfops.discovery.facts import ModelFacts, parse_record, skip_reason
from hfops.discovery.rule import rule_failures, rule_fingerprint
from hfops.discovery.runs import SyncRun, get_sync_run
from hfops.discovery.score import quality_score
from hfops.discovery.sources import Cursor, HubSource, Page, SnapshotSource, Source, merge_duplicates
from hfops.errors import RemoteError, SyncError
from hfops.paths import HUB_SNAPSHOT
from hfops.store import dumps, get_db, loads, one, rows, utcnow, write_tx

if TYPE_CHECKING:
    from hfops import jobs

ProgressFn = Callable[..., None]
MAX_STORED_ERRORS = 50
UNLISTED_FLAG = "not listed by the last complete sync of its source"


def printable(text: str) -> str:
    """``text`` with control, format and unpaired-surrogate characters written as ``\\uXXXX`` (Hub text is
    untrusted: a NUL, a bidi override or a lone surrogate from a record must not reach the store or a screen)."""
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


def model_row(
    facts: ModelFacts, raw: str, record_hash: str, failures: list[str], source: str, sync_id: int, now: str
) -> dict[str, Any]:
    """The ``models`` row discovery stores for one record (``first_seen`` and ``rule_hash`` added by the caller)."""
    return {
        "model_id": facts.model_id,
        "author": facts.author,
        "sha": facts.sha,
        "pipeline_tag": facts.pipeline_tag,
        "library_name": facts.library_name,
        "license": facts.license,
        "use_restricted": int(facts.use_restricted),
        "tags": orjson.dumps(facts.tags).decode(),
        "siblings": orjson.dumps(facts.siblings).decode(),
        "downloads": facts.downloads,
        "downloads_all_time": facts.downloads_all_time,
        "likes": facts.likes,
        "trending_score": facts.trending_score,
        "created_at": facts.created_at,
        "last_modified": facts.last_modified,
        "gated": facts.gated,
        "safetensors": int(facts.safetensors),
        "quantization": ",".join(facts.quantization),
        "matches_rule": int(not failures),
        "rule_failures": json_text(failures),
        "raw": raw,
        "record_hash": record_hash,
        "source": source,
        "last_seen": now,
        "last_sync_id": sync_id,
    }


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


def _store_page(
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
                _skip(counts, record, ValueError(f"wrong value: the record cannot be stored as JSON ({exc})"))
            continue
        hashed.append((record, raw, record_hash, first))
    ids = [r["id"] for r, _, _, _ in hashed if isinstance(r, dict) and isinstance(r.get("id"), str)]
    existing: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for row in rows(
            db,
            "SELECT m.model_id, m.record_hash, m.rule_hash, c.model_id AS cand, c.flag FROM models m "
            "LEFT JOIN candidates c ON c.model_id = m.model_id "
            f"WHERE m.model_id IN ({', '.join('?' for _ in chunk)})",
            chunk,
        ):
            existing[row["model_id"]] = row
    unchanged_ids: list[str] = []
    new_rows: list[dict[str, Any]] = []
    changed_rows: list[dict[str, Any]] = []
    candidate_updates: list[dict[str, Any]] = []
    new_candidates: list[dict[str, Any]] = []
    transitions: list[tuple[Any, ...]] = []
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
            _, facts = parse_record(record)
        except ValueError as exc:
            if not repeat:
                _skip(counts, record, exc)
            continue
        failures = rule_failures(facts, rule)
        row = model_row(facts, raw, record_hash, failures, source, pass_id, now)
        row["rule_hash"] = rule_hash
        if old is None:
            new_rows.append({**row, "first_seen": now})
            counts.inserted += int(not repeat)
        else:
            changed_rows.append(row)
            counts.updated += int(not repeat)
        has_candidate = bool(old and old["cand"])
        counts.outcome(facts.model_id, not failures)
        if not failures:
            score, breakdown = quality_score(facts, now_dt)
            candidate = {
                "model_id": facts.model_id,
                "score": score,
                "score_breakdown": json_text(breakdown),
                "flag": None,
                "updated_at": now,
            }
            if has_candidate:
                candidate_updates.append(candidate)
            else:
                new_candidates.append({**candidate, "status": "candidate", "created_at": now})
                transitions.append(
                    (
                        facts.model_id,
                        None,
                        "candidate",
                        now,
                        "sync",
                        "matched the candidate rule",
                        f"sync_run:{sync_id}",
                    )
                )
        elif has_candidate and old is not None:
            flag = "no longer matches the rule: " + "; ".join(failures)
            if old["flag"] != flag:
                counts.flagged += 1
            candidate_updates.append({"model_id": facts.model_id, "flag": flag, "updated_at": now})
    for start in range(0, len(unchanged_ids), 500):
        chunk = unchanged_ids[start : start + 500]
        db.execute(
            f"UPDATE models SET last_seen = ?, last_sync_id = ? WHERE model_id IN ({', '.join('?' for _ in chunk)})",
            [now, pass_id, *chunk],
        )
    if new_rows:
        columns = list(new_rows[0])
        db.conn.executemany(
            f"INSERT INTO models ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
            [[row[c] for c in columns] for row in new_rows],
        )
    if changed_rows:
        columns = [c for c in changed_rows[0] if c != "model_id"]
        db.conn.executemany(
            f"UPDATE models SET {', '.join(f'{c} = ?' for c in columns)} WHERE model_id = ?",
            [[row[c] for c in columns] + [row["model_id"]] for row in changed_rows],
        )
    if new_candidates:
        columns = list(new_candidates[0])
        db.conn.executemany(
            f"INSERT INTO candidates ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
            [[row[c] for c in columns] for row in new_candidates],
        )
        counts.new_candidates += len(new_candidates)
        db.conn.executemany(
            "INSERT INTO status_transitions (model_id, from_status, to_status, at, actor, reason, evidence) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            transitions,
        )
    scored = [c for c in candidate_updates if "score" in c]
    if scored:
        db.conn.executemany(
            "UPDATE candidates SET score = ?, score_breakdown = ?, flag = NULL, updated_at = ? WHERE model_id = ?",
            [[c["score"], c["score_breakdown"], c["updated_at"], c["model_id"]] for c in scored],
        )
    flagged = [c for c in candidate_updates if "score" not in c]
    if flagged:
        db.conn.executemany(
            "UPDATE candidates SET flag = ?, updated_at = ? WHERE model_id = ?",
            [[c["flag"], c["updated_at"], c["model_id"]] for c in flagged],
        )


def _skip(counts: SyncCounts, record: Any, exc: Exception) -> None:
    counts.skipped += 1
    counts.skip_reasons[skip_reason(exc)] += 1
    rid = record.get("id") if isinstance(record, dict) else None
    counts.error(f"skipped {rid if isinstance(rid, str) and rid.strip() else '(no id)'}: {exc}")


def _flag_unlisted(db: sqlite_utils.Database, source: str, pass_id: int, counts: SyncCounts) -> None:
    """After a complete pass, flag candidates from this source that the pass did not list."""
    cursor = db.execute(
        "UPDATE candidates SET flag = ?, updated_at = ? WHERE flag IS NULL AND model_id IN "
        "(SELECT model_id FROM models WHERE source = ? AND (last_sync_id IS NULL OR last_sync_id < ?))",
        [UNLISTED_FLAG, utcnow(), source, pass_id],
    )
    counts.flagged += cursor.rowcount


def _save_run(db: sqlite_utils.Database, sync_id: int, counts: SyncCounts, **extra: Any) -> None:
    values = {
        "pages": counts.pages,
        "seen": counts.seen,
        "inserted": counts.inserted,
        "updated": counts.updated,
        "unchanged": counts.unchanged,
        "skipped": counts.skipped,
        "matched": counts.matched,
        "new_candidates": counts.new_candidates,
        "flagged": counts.flagged,
        "records": counts.records,
        "duplicates": counts.duplicates,
        "lost_pages": counts.lost_pages,
        "skip_reasons": dumps(dict(counts.skip_reasons)),
        "errors": dumps(counts.errors),
        "heartbeat_at": utcnow(),
        **extra,
    }
    db.table("sync_runs").update(sync_id, values)


def _resume_state(source: Source, pass_id: int, cursor: Cursor | None, lost: int = 0) -> dict[str, Any]:
    """What resumes a pass: its id, the cursor after the last stored page, its watermark, pages it lost,
    and the process running it (to tell a live run from a dead one)."""
    return {
        "pass_id": pass_id, "cursor": cursor, "since": getattr(source, "since", None), "lost": lost,
        "owner": _owner(),
    }  # fmt: skip


@functools.cache
def _owner_of(pid: int) -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": pid, "started": _process_start(pid)}


def _owner() -> dict[str, Any]:
    """This process, as a ``running`` row names its owner (cached per pid: a forked child gets its own)."""
    return _owner_of(os.getpid())


def _process_stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first), or None (no such file)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _process_start(pid: int) -> str | None:
    fields = _process_stat(pid)
    return fields[19] if fields and len(fields) > 19 else None  # field 22: start time since boot


def _alive(owner: Any) -> bool:
    """Whether the process that owns a ``running`` row still runs (False when it cannot be told: another host).

    The process start time is compared too, so a reused pid (a restarted container) is not taken for the owner.
    """
    if not isinstance(owner, dict) or owner.get("host") != socket.gethostname():
        return False
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    fields = _process_stat(pid)
    if fields is not None:  # Linux: the process table says it all (a zombie is dead)
        started = owner.get("started")
        return fields[0] != "Z" and (started is None or _process_start(pid) == started)
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _start_run(db: sqlite_utils.Database, source: Source) -> tuple[int, int, Cursor | None, int]:
    """Create a sync run; resume the previous unfinished pass of the same source if there is one.

    A resumed Hub pass keeps its mode: an interrupted incremental pass resumes with its own watermark.
    """
    with write_tx(db):
        found_at = utcnow()
        for dead in rows(db, "SELECT id, started_at, heartbeat_at, resume_cursor FROM sync_runs WHERE source = ? "
                         "AND status = 'running'", [source.name]):  # fmt: skip
            owner = loads(dead["resume_cursor"], {}).get("owner")
            if _alive(owner):
                raise SyncError(
                    f"sync run {dead['id']} of {source.name} is still running (process {owner['pid']}); "
                    "wait for it to finish, or stop it, before starting another"
                )
            last_sign = dead["heartbeat_at"] or dead["started_at"]
            db.execute(
                "UPDATE sync_runs SET status = 'interrupted', interrupted_at = ?, finished_at = ?, message = ? "
                "WHERE id = ?",
                [found_at, last_sign, f"interrupted: its process stopped (last sign of life {last_sign}); found "
                 f"still 'running' at {found_at} by the next sync of this source, which resumes it", dead["id"]],
            )  # fmt: skip
        previous = one(
            db,
            "SELECT id, status, resume_cursor FROM sync_runs WHERE source = ? ORDER BY id DESC LIMIT 1",
            [source.name],
        )
        cursor = None
        pass_id = None
        lost = 0
        if previous and previous["status"] in ("failed", "interrupted") and previous["resume_cursor"]:
            state = loads(previous["resume_cursor"], {})
            cursor = state.get("cursor")
            pass_id = state.get("pass_id")
            lost = int(state.get("lost") or 0)
            if isinstance(source, HubSource):
                source.since = state.get("since")
                source.complete_pass_possible = source.since is None
        mode = "full" if source.complete_pass_possible else "incremental"
        sync_id = int(
            db.execute(
                "INSERT INTO sync_runs (source, mode, started_at, status, message) VALUES (?, ?, ?, 'running', ?)",
                [source.name, mode, utcnow(), f"resumed the pass of run {pass_id}" if pass_id else None],
            ).lastrowid
            or 0
        )
        pass_id = pass_id or sync_id
        db.execute(
            "UPDATE sync_runs SET resume_cursor = ? WHERE id = ?",
            [dumps(_resume_state(source, pass_id, cursor, lost)), sync_id],
        )
    return sync_id, pass_id, cursor, lost


def incremental_watermark(db: sqlite_utils.Database, source_name: str, full_sync_hours: float) -> str | None:
    """The lastModified watermark for an incremental pass, or None when a full pass is due.

    A full pass is due when none succeeded within ``full_sync_hours`` (it refreshes download and like counts,
    which change without a commit, and flags models no longer listed), or when a full pass since lost pages
    (``partial``). Otherwise the watermark is the older of the newest stored lastModified and the last full
    pass's start, less one hour of safety margin, and never later than the watermark of a partial incremental
    pass since (so the next pass fetches again what that one lost).
    """
    last_full = one(
        db,
        "SELECT id, started_at FROM sync_runs WHERE source = ? AND mode = 'full' AND status = 'succeeded' "
        "ORDER BY id DESC LIMIT 1",
        [source_name],
    )
    if not last_full or full_sync_hours <= 0:
        return None
    later_partial = rows(
        db,
        "SELECT mode, resume_cursor FROM sync_runs WHERE source = ? AND status = 'partial' AND id > ?",
        [source_name, last_full["id"]],
    )
    if any(run["mode"] == "full" for run in later_partial):
        return None  # a full pass lost pages since: the next pass is full again (it retries them)
    started = datetime.fromisoformat(last_full["started_at"].replace("Z", "+00:00"))
    if (datetime.now(UTC) - started).total_seconds() > full_sync_hours * 3600:
        return None
    newest = db.execute("SELECT MAX(last_modified) FROM models WHERE source = ?", [source_name]).fetchone()[0]
    candidates = [started]
    if newest:
        candidates.append(datetime.fromisoformat(newest.replace("Z", "+00:00")))
    mark = min(candidates) - timedelta(hours=1)
    text = mark.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    # an incremental pass that lost pages did not see what changed after its own watermark: keep that one
    earlier = [str(loads(r["resume_cursor"], {}).get("since") or "") for r in later_partial]
    return min([text, *(e for e in earlier if e)])


def run_sync(
    db_path: str,
    source: Source,
    rule: DiscoveryConfig,
    progress: ProgressFn | None = None,
    now: datetime | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> SyncRun:
    """Sync ``source`` into the store at ``db_path``; returns this sync's own finished run.

    Each page is committed together with the cursor that resumes after it, so a crash or kill loses at
    most the page in flight. Raises :class:`SyncError` (after recording it) when the source gives up.
    ``cancelled`` is polled between pages: when it says so the run stops as ``interrupted`` (resumable).
    """
    db = get_db(db_path)
    sync_id, pass_id, cursor, pass_lost = _start_run(db, source)
    counts = SyncCounts(pass_lost=pass_lost)
    now_dt = now or datetime.now(UTC)
    started = time.monotonic()
    token = getattr(source, "token", None)
    if isinstance(source, HubSource):

        def on_retry(wait: float, why: str) -> None:  # may run on the prefetch thread: its own connection
            retry_db = get_db(db_path)
            message = line(f"backing off {wait:.0f} s: {why}")
            with write_tx(retry_db):
                retry_db.execute(
                    "UPDATE sync_runs SET retries = retries + 1, retry_wait_seconds = retry_wait_seconds + ?, "
                    "message = ?, heartbeat_at = ? WHERE id = ?",
                    [wait, message, utcnow(), sync_id],
                )
            if progress:
                progress(counts.seen, None, message, force=True)

        source.on_retry = on_retry
    try:
        for page in source.pages(cursor):
            with write_tx(db):
                _take_page(db, page, counts, rule, source, sync_id, pass_id, now_dt)
                state = _resume_state(source, pass_id, page.next_cursor, counts.pass_lost + counts.lost_pages)
                _save_run(db, sync_id, counts, resume_cursor=dumps(state) if page.next_cursor else None)
            if progress:
                progress(
                    counts.seen, page.total, f"page {counts.pages}: {counts.seen} models, "
                    f"{counts.new_candidates} new candidates" + (f", {counts.lost_pages} pages lost" if counts.lost_pages else ""),
                )  # fmt: skip
            if page.next_cursor is not None and cancelled is not None and cancelled():
                with write_tx(db):
                    _save_run(
                        db, sync_id, counts, status="interrupted", finished_at=utcnow(),
                        message="cancelled by the operator; the next sync resumes from the last stored page",
                    )  # fmt: skip
                return get_sync_run(db, sync_id) or _missing(sync_id)
    except (SyncError, RemoteError, httpx2.HTTPError, sqlite3.Error) as exc:
        if isinstance(exc, SyncError):
            message = net.scrub(exc, token)
        elif isinstance(exc, sqlite3.Error):
            message = f"the store refused a write ({type(exc).__name__}: {net.scrub(exc, token)})"
        else:
            message = _describe(exc, source, token)
        _fail(db, sync_id, counts, message)
        raise SyncError(f"sync {sync_id} failed: {line(message, 500)}") from None
    except Exception as exc:  # a defect: recorded truthfully, then raised with its traceback
        _fail(db, sync_id, counts, f"unexpected error: {type(exc).__name__}: {net.scrub(exc, token)}")
        raise
    except BaseException:
        with write_tx(db):
            _save_run(
                db, sync_id, counts, status="interrupted", finished_at=utcnow(), interrupted_at=utcnow(),
                message="interrupted; the next sync resumes from the last stored page",
            )  # fmt: skip
        raise
    lost = counts.pass_lost + counts.lost_pages
    resumed = f" (resumed the pass of run {pass_id})" if pass_id != sync_id else ""
    with write_tx(db):
        elapsed = time.monotonic() - started
        if lost:
            state = _resume_state(source, pass_id, None, lost)
            _save_run(
                db, sync_id, counts, status="partial", finished_at=utcnow(), resume_cursor=dumps(state),
                message=line(
                    f"partial: {lost} page(s) lost, so the pass is incomplete and no candidate was flagged as "
                    f"unlisted; the next sync fetches them again. {counts.seen} models in {elapsed:.1f} s{resumed}. "
                    f"Lost: {'; '.join(counts.lost)}", 1000),
            )  # fmt: skip
        else:
            if source.complete_pass_possible:
                _flag_unlisted(db, source.name, pass_id, counts)
            _save_run(
                db, sync_id, counts, status="succeeded", finished_at=utcnow(), resume_cursor=None,
                message=f"{counts.seen} models in {elapsed:.1f} s{resumed}" + _duplicates_note(counts),
            )  # fmt: skip
    if progress:
        progress(counts.seen, counts.seen, "done", force=True)
    return get_sync_run(db, sync_id) or _missing(sync_id)


def _take_page(
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
    _store_page(db, records, counts, rule, source.name, sync_id, pass_id, now_dt)


def _duplicates_note(counts: SyncCounts) -> str:
    return f"; {counts.duplicates} duplicate record(s) merged (last wins)" if counts.duplicates else ""


def _fail(db: sqlite_utils.Database, sync_id: int, counts: SyncCounts, message: str) -> None:
    with write_tx(db):
        counts.error(message)
        _save_run(db, sync_id, counts, status="failed", finished_at=utcnow(), message=line(message, 500))


def _describe(exc: BaseException, source: Source, token: str | None) -> str:
    where = getattr(source, "endpoint", "") or source.name
    return net.describe(exc, what="listing models", where=where, token=token)


def _missing(sync_id: int) -> NoReturn:
    raise SyncError(f"sync run {sync_id} vanished from the store while it ran")


def sync_snapshot(
    db_path: str,
    snapshot_path: str | Path = HUB_SNAPSHOT,
    settings: Settings | None = None,
    progress: ProgressFn | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> SyncRun:
    """Sync a snapshot file of API records (default: the embedded one shipped in data/hub/)."""
    settings = settings or load_settings()
    source = SnapshotSource(snapshot_path, settings.hub.page_size)
    return run_sync(db_path, source, settings.discovery, progress, cancelled=cancelled)


def sync_hub(
    db_path: str,
    settings: Settings,
    progress: ProgressFn | None = None,
    mode: str = "auto",
    cancelled: Callable[[], bool] | None = None,
) -> SyncRun:
    """Sync from the configured Hub endpoint (``[hub] endpoint``; the real Hub by default).

    ``mode``: ``full``, ``incremental`` (records changed since the watermark only; a full pass when there is
    no recent one), or ``auto`` (incremental while the last full pass is younger than ``[hub] full_sync_hours``).
    """
    if mode not in ("auto", "full", "incremental"):
        raise SyncError(f"unknown sync mode {mode!r}; choose auto, full or incremental")
    source = HubSource(settings.hub, settings.discovery, token=api_key())
    if mode != "full":
        hours = settings.hub.full_sync_hours if mode == "auto" else float("inf")
        since = incremental_watermark(get_db(db_path), source.name, hours)
        source.since = since
        source.complete_pass_possible = since is None
    return run_sync(db_path, source, settings.discovery, progress, cancelled=cancelled)


def ensure_embedded_default(db_path: str, settings: Settings | None = None) -> SyncRun | None:
    """Load the shipped snapshot when the store has never been synced (first start); else do nothing."""
    db = get_db(db_path)
    if db.execute("SELECT COUNT(*) FROM sync_runs").fetchone()[0]:
        return None
    return sync_snapshot(db_path, HUB_SNAPSHOT, settings)


JOB_RESULT_FIELDS = (
    "id", "mode", "status", "seen", "inserted", "updated", "unchanged", "skipped", "matched", "new_candidates",
    "flagged", "message",
)  # fmt: skip


def sync_job(ctx: jobs.JobContext) -> dict[str, Any]:
    """Worker job ``sync``: ``{"snapshot": path}`` or ``{"endpoint": url}`` (omitted: the configured endpoint).

    Uses the settings stored with the job; stops between pages when the job is cancelled (the run is then
    ``interrupted`` and the next sync resumes it).
    """
    settings = ctx.settings
    settings.store.path = ctx.db_path
    if ctx.params.get("endpoint"):
        settings.hub.endpoint = str(ctx.params["endpoint"])
    if ctx.params.get("snapshot"):
        run = sync_snapshot(ctx.db_path, ctx.params["snapshot"], settings, ctx.progress, ctx.cancelled)
    else:
        mode = str(ctx.params.get("mode", "auto"))
        run = sync_hub(ctx.db_path, settings, ctx.progress, mode=mode, cancelled=ctx.cancelled)
    return {name: getattr(run, name) for name in JOB_RESULT_FIELDS}
