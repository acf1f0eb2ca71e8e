"""The trigram index of the models' search keys (migration 0018): kept up to date in the background, read
by the id search so that it does not scan every synced model.

A new or re-keyed ``model_search`` row notes its model in ``model_search_pending``; :func:`index_pending`
indexes the noted keys (:func:`catch_up`: every sync once its run is recorded, the worker every minute for
other writers, ``hfops init`` for a store migrated to 0018). :func:`hits_sql` is what a search narrows to:
the index's hits plus the pending ids, a superset of the matches that the search then checks against
``model_search`` itself, so the result never depends on how current the index is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import orjson
import sqlite_utils

from hfops.errors import StoreError
from hfops.store import connect, write_tx

log = logging.getLogger("hfops.search_index")

# The trigram tokenizer needs 3 characters to use its index (a shorter pattern makes it scan its rows).
MIN_KEY_CHARS = 3
# A longer key is looked up by its first 64 characters: still a superset, at a bounded cost.
MAX_PATTERN_CHARS = 64
# With more pending ids than this, reading them costs more than the scan the index would save.
PENDING_LIMIT = 5000
# With more hits than one synced model in 16 (a common word: "bert" is in one key of six on some stores),
# looking each up costs more than the scan (about 5 us a hit against 0.3 us a scanned row here).
HIT_SHARE = 16
MIN_HIT_LIMIT = 1000
BATCH = 2000  # keys per write transaction of the indexer
_MEMO = "_hfops_search_hits"


def pending_count(db: sqlite_utils.Database, limit: int | None = None) -> int:
    """Notes of models whose key the index may not hold as it stands (a model noted twice counts twice;
    counted up to ``limit``, when given)."""
    if limit is None:
        return int(db.execute("SELECT COUNT(*) FROM model_search_pending").fetchone()[0])
    sql = "SELECT COUNT(*) FROM (SELECT 1 FROM model_search_pending LIMIT ?)"
    return int(db.execute(sql, [limit + 1]).fetchone()[0])


def hit_ids(db: sqlite_utils.Database, key: str) -> list[str] | None:
    """Every model id whose search key may contain ``key``: the index's hits plus the pending ids (a
    superset: the caller keeps its own ``LIKE``). None when the index cannot narrow this search and the
    caller scans: a key shorter than 3 characters or holding a ``LIKE`` wildcard, too many pending ids, or
    too many hits (a common word, see :data:`HIT_SHARE`).

    The hits and the pending ids are read by one statement, so from one snapshot: the worker indexing in
    between cannot move a model from pending to indexed unseen by both. The last answer is kept on ``db``
    until the store changes (``PRAGMA data_version`` for other connections' commits, ``total_changes`` for
    this one's writes): a page's table and search ask once.
    """
    if len(key) < MIN_KEY_CHARS or "%" in key or "_" in key:
        return None
    marker = (key, db.execute("PRAGMA data_version").fetchone()[0], db.conn.total_changes)
    kept = getattr(db, _MEMO, None)
    if kept is not None and kept[0] == marker:
        return list(kept[1]) if kept[1] is not None else None
    ids: list[str] | None = None
    if pending_count(db, PENDING_LIMIT) <= PENDING_LIMIT:
        models = db.execute("SELECT MAX(rowid) FROM models").fetchone()[0] or 0  # about the count, at once
        limit = max(MIN_HIT_LIMIT, models // HIT_SHARE)
        found = db.execute(
            "SELECT model_id, 1 FROM (SELECT model_id FROM model_search_trigrams WHERE search_key LIKE ? "
            "LIMIT ?) UNION ALL SELECT model_id, 0 FROM model_search_pending",
            [f"%{key[:MAX_PATTERN_CHARS]}%", limit + 1],
        ).fetchall()
        if sum(hit for _, hit in found) <= limit:
            ids = [model_id for model_id, _ in found]
    setattr(db, _MEMO, (marker, ids))
    return list(ids) if ids is not None else None


def hits_sql(db: sqlite_utils.Database, key: str) -> tuple[str, list[str]] | None:
    """``(subquery, params)`` for ``model_id IN (subquery)``: the ids of :func:`hit_ids`, or None."""
    ids = hit_ids(db, key)
    if ids is None:
        return None
    return "SELECT value FROM json_each(?)", [orjson.dumps(ids).decode()]


def index_pending(db_path: str, batch: int = BATCH, stop: Callable[[], bool] | None = None) -> int:
    """Bring the index up to date with ``model_search``, ``batch`` models per transaction (``stop``:
    checked between them); returns how many pending models were handled."""
    db = connect(db_path)
    handled = 0
    try:
        while not (stop and stop()):
            with write_tx(db):
                last = db.execute(  # the batch: the oldest ``batch`` notes (an id may be noted twice)
                    "SELECT MAX(rowid) FROM (SELECT rowid FROM model_search_pending ORDER BY rowid LIMIT ?)",
                    [batch],
                ).fetchone()[0]
                if last is None:
                    break
                found = db.execute(
                    "SELECT p.model_id, s.search_key, i.search_key, i.trigram_rowid "
                    "FROM (SELECT DISTINCT model_id FROM model_search_pending WHERE rowid <= ?) p "
                    "LEFT JOIN model_search s ON s.model_id = p.model_id "
                    "LEFT JOIN model_search_indexed i ON i.model_id = p.model_id",
                    [last],
                ).fetchall()
                _index(db, found)
                db.execute("DELETE FROM model_search_pending WHERE rowid <= ?", [last])
            handled += len(found)
    finally:
        db.conn.close()
    if handled:
        log.info("search index: %d model key(s) brought up to date", handled)
    return handled


def _index(db: sqlite_utils.Database, found: list[tuple[str, str | None, str | None, int | None]]) -> None:
    stale = [(rowid,) for _, key, indexed, rowid in found if rowid is not None and key != indexed]
    db.conn.executemany("DELETE FROM model_search_trigrams WHERE rowid = ?", stale)
    gone = [(model_id,) for model_id, key, _, rowid in found if key is None and rowid is not None]
    db.conn.executemany("DELETE FROM model_search_indexed WHERE model_id = ?", gone)
    fresh = sorted(
        (model_id, key) for model_id, key, indexed, _ in found if key is not None and key != indexed
    )
    if not fresh:
        return
    # rowids given past the last one (not one INSERT per key for its lastrowid): two statements in all
    last = db.conn.execute("SELECT rowid FROM model_search_trigrams ORDER BY rowid DESC LIMIT 1").fetchone()
    numbered = [
        (rowid, model_id, key) for rowid, (model_id, key) in enumerate(fresh, (last[0] if last else 0) + 1)
    ]
    db.conn.executemany(
        "INSERT INTO model_search_trigrams (rowid, model_id, search_key) VALUES (?, ?, ?)", numbered
    )
    db.conn.executemany(
        "INSERT OR REPLACE INTO model_search_indexed (trigram_rowid, model_id, search_key) VALUES (?, ?, ?)",
        numbered,
    )


def catch_up(db_path: str, stop: Callable[[], bool] | None = None) -> int:
    """:func:`index_pending` after a writer's work (a sync job, ``hfops sync``, the periodic task): a store
    error (e.g. locked past the busy timeout) is logged, not raised, since the writer's work is done and a
    search scans meanwhile; returns the models handled (0 then)."""
    try:
        return index_pending(db_path, stop=stop)
    except StoreError as exc:
        log.warning("the search index was not brought up to date (a search scans meanwhile): %s", exc)
        return 0
