"""The trigram index of the models' search keys (migrations 0018, 0021 and 0022): kept up to date in the
background, read by the id search so that it does not scan every synced model.

A new or re-keyed ``model_search`` row notes its model in ``model_search_pending``; :func:`index_pending`
indexes the noted keys (:func:`catch_up`: every sync once its run is recorded, the worker every minute for
other writers, ``hfops init`` for a store migrated to 0018, 0021 or 0022). :func:`matches` is what a
search narrows to, :func:`count` how many keys hold a key: the index's hits, with the pending ids checked
against ``model_search`` itself, so neither depends on how current the index is.

The index holds each key as ``LIKE`` compares it (up to a NUL, ASCII-lowered) under a case-sensitive
trigram tokenizer with positions, so the phrase of a key's trigrams (:func:`phrase_query`) finds exactly
the keys ``LIKE '%key%'`` finds. A key too short for trigrams is counted from
``model_search_short_counts`` (0022), which the indexer keeps with the index: how many indexed keys hold
each substring of one or two characters (:func:`short_substring_counts`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import cast

import sqlite_utils

from hfops.errors import StoreError
from hfops.store import connect, write_tx

log = logging.getLogger("hfops.search_index")

# The trigram tokenizer needs 3 characters to use its index (a shorter pattern makes it scan its rows).
MIN_KEY_CHARS = 3
# With more pending ids than this, reading them costs more than the scan the index would save.
PENDING_LIMIT = 5000
# With more hits than one synced model in 16 (a common word: "bert" is in one key of six on some stores),
# looking each up costs more than the scan (about 5 us a hit against 0.3 us a scanned row here).
HIT_SHARE = 16
MIN_HIT_LIMIT = 1000
# With more hits than one synced model in 48, a page of them is found sooner by a walk of the first candidates
# in the page's order (hfops.views.candidates: about 25 ms at 100,000 candidates, count included, when the
# walk holds the page) than by reading every hit (21-34 ms for the 6,494 keys of 204,266 holding "bert").
WALK_SHARE = 48
BATCH = 2000  # keys per write transaction of the indexer
_MEMO = "_hfops_search_hits"
_MEMO_ENTRIES = 8
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def comparable(text: str) -> str:
    """``text`` as ``LIKE`` compares it: up to its first NUL (SQLite reads the value as a C string there),
    ASCII letters lower-cased (``LIKE`` folds no other case)."""
    return text.partition("\x00")[0].translate(_ASCII_LOWER)


def countable(key: str) -> bool:
    """Whether :func:`count` can answer for ``key``: not empty, no ``LIKE`` wildcard, no NUL (FTS5 ends a
    query there, and ``LIKE`` a value)."""
    return bool(key) and "%" not in key and "_" not in key and "\x00" not in key


def indexable(key: str) -> bool:
    """Whether the trigram index can answer for ``key``: :func:`countable` and 3 characters or more."""
    return len(key) >= MIN_KEY_CHARS and countable(key)


_CODE_POINTS = 0x110000
_KEY_SHIFT = 42  # a substring's number (under _CODE_POINTS * (_CODE_POINTS + 1) < 2**41) below its key's
_KEYS_AT_ONCE = 1 << 20  # keys numbered at once (2**63 >> _KEY_SHIFT)


def short_substring_counts(keys: Iterable[str]) -> Counter[str]:
    """How many of ``keys`` hold each substring of one or two characters, each key taken as ``LIKE`` compares
    it (:func:`comparable`): what ``model_search_short_counts`` holds for the indexed keys. Vectorized: 0.76 s
    for 204,266 keys in the indexer's batches, where a set of each key's substrings takes 2.3 s."""
    import numpy as np

    counts: Counter[str] = Counter()
    texts = [comparable(key) for key in keys]
    for start in range(0, len(texts), _KEYS_AT_ONCE):
        chunk = texts[start : start + _KEYS_AT_ONCE]
        # every key's code points, each key followed by a 0 (a comparable text holds no NUL)
        points = np.frombuffer(
            "".join(f"{text}\x00" for text in chunk).encode("utf-32-le", "surrogatepass"), dtype=np.uint32
        ).astype(np.int64)
        owner = np.repeat(np.arange(len(chunk), dtype=np.int64), [len(text) + 1 for text in chunk])
        first, second = points[:-1], points[1:]
        pairs = (first != 0) & (second != 0)
        letters = points != 0
        numbered = np.concatenate(
            [
                points[letters] | (owner[letters] << _KEY_SHIFT),
                (_CODE_POINTS + first[pairs] * _CODE_POINTS + second[pairs])
                | (owner[:-1][pairs] << _KEY_SHIFT),
            ]
        )
        numbered.sort()  # (sorting: numpy's hashing np.unique is 7 times slower here)
        held = numbered[np.flatnonzero(np.diff(numbered, prepend=-1))] & ((1 << _KEY_SHIFT) - 1)
        held.sort()
        starts = np.flatnonzero(np.diff(held, prepend=-1))
        found, keys_holding = held[starts], np.diff(starts, append=len(held))
        for number, holding in zip(found.tolist(), keys_holding.tolist(), strict=True):
            pair, single = divmod(number - _CODE_POINTS, _CODE_POINTS)
            counts[chr(number) if number < _CODE_POINTS else chr(pair) + chr(single)] += holding
    return counts


def pending_count(db: sqlite_utils.Database, limit: int | None = None) -> int:
    """Notes of models whose key the index may not hold as it stands (a model noted twice counts twice;
    counted up to ``limit``, when given)."""
    if limit is None:
        return int(db.execute("SELECT COUNT(*) FROM model_search_pending").fetchone()[0])
    sql = "SELECT COUNT(*) FROM (SELECT 1 FROM model_search_pending LIMIT ?)"
    return int(db.execute(sql, [limit + 1]).fetchone()[0])


@dataclass(frozen=True)
class Matches:
    """The synced models whose search key contains a key, all read from one snapshot of the store: what both
    the id search and the Candidates page's id filter start from (one read of the index for both)."""

    ids: tuple[str, ...]  # every match
    # the matches that are candidates: by score, then downloads (high first), then id
    candidates: tuple[str, ...]


def matches(db: sqlite_utils.Database, key: str) -> Matches | None:
    """Every model whose search key (``model_search.search_key``) contains ``key``, and which of them are
    candidates; None when the index cannot narrow this search and the caller scans: a key shorter than 3
    characters or holding a ``LIKE`` wildcard or a NUL, too many pending ids, or too many hits.

    The indexed keys holding ``key`` (:func:`phrase_query`) are checked with ``LIKE`` on the key the index
    holds for them (migration 0019), which is the model's key unless the model is noted pending
    (the triggers of 0018 note every change); pending ids are checked against ``model_search``, by the same
    statement, so from one snapshot. Too many such rows (a common word, see :data:`HIT_SHARE`) and the
    caller scans. The answer is kept on ``db`` until the store changes (``PRAGMA data_version`` for other
    connections' commits, ``total_changes`` for this one's writes): a page's table and search ask once.
    """
    if not indexable(key):
        return None
    return cast(Matches | None, _memoized(db, ("matches", key), lambda: _read_matches(db, key)))


def common(db: sqlite_utils.Database, key: str) -> bool:
    """Whether more indexed keys hold ``key`` than one synced model in :data:`WALK_SHARE`: a page of its
    matches is then sooner found by walking the first candidates in the page's order, when they hold it,
    than by reading every match (:func:`matches`). False for a key the index cannot look up."""
    return indexable(key) and _hits(db, key) > _limits(db)[0]


def _memoized(db: sqlite_utils.Database, what: tuple[str, str], compute: Callable[[], object]) -> object:
    """``compute()``, kept on ``db`` for ``what`` until the store changes (``PRAGMA data_version`` for other
    connections' commits, ``total_changes`` for this one's writes); a few answers at a time."""
    marker = (db.execute("PRAGMA data_version").fetchone()[0], db.conn.total_changes)
    kept: tuple[tuple[int, int], dict[tuple[str, str], object]] | None = getattr(db, _MEMO, None)
    if kept is None or kept[0] != marker or (what not in kept[1] and len(kept[1]) >= _MEMO_ENTRIES):
        kept = (marker, {})
        setattr(db, _MEMO, kept)
    answers = kept[1]
    if what not in answers:
        answers[what] = compute()
    return answers[what]


def _limits(db: sqlite_utils.Database) -> tuple[int, int]:
    """The hit counts above which a search walks first (:data:`WALK_SHARE`) and reads no hit at all
    (:data:`HIT_SHARE`)."""
    models = db.execute("SELECT MAX(rowid) FROM models").fetchone()[0] or 0  # about the count, at once
    return max(MIN_HIT_LIMIT, models // WALK_SHARE), max(MIN_HIT_LIMIT, models // HIT_SHARE)


def _hits(db: sqlite_utils.Database, key: str) -> int:
    """How many indexed keys hold ``key``, counted up to one past the larger limit of :func:`_limits` (about
    1 ms for 6,500); kept on ``db`` as :func:`matches` keeps its answer."""

    def counted() -> int:
        return int(
            db.execute(
                "SELECT COUNT(*) FROM "
                "(SELECT 1 FROM model_search_trigrams WHERE model_search_trigrams MATCH ? LIMIT ?)",
                [phrase_query(key), _limits(db)[1] + 1],
            ).fetchone()[0]
        )

    return cast(int, _memoized(db, ("hits", key), counted))


def _read_matches(db: sqlite_utils.Database, key: str) -> Matches | None:
    if pending_count(db, PENDING_LIMIT) > PENDING_LIMIT:
        return None
    if _hits(db, key) > _limits(db)[1]:
        return None
    query = phrase_query(key)
    # An indexed key is the model's key unless the model is noted pending (the triggers of 0018 note every
    # change), so a pending model counts by its key in model_search alone. One statement, one snapshot: the
    # worker indexing meanwhile cannot move a model from pending to indexed unseen by both halves.
    found = db.execute(
        "SELECT i.model_id, r.score, r.downloads FROM model_search_trigrams t "
        "JOIN model_search_indexed i ON i.trigram_rowid = t.rowid "
        "LEFT JOIN candidate_rows r ON r.model_id = i.model_id "
        "WHERE model_search_trigrams MATCH ?1 AND i.search_key LIKE ?2 "
        "AND i.model_id NOT IN (SELECT model_id FROM model_search_pending) "
        "UNION ALL SELECT p.model_id, r.score, r.downloads "
        "FROM (SELECT DISTINCT model_id FROM model_search_pending) p "
        "JOIN model_search s ON s.model_id = p.model_id "
        "LEFT JOIN candidate_rows r ON r.model_id = p.model_id "
        "WHERE s.search_key LIKE ?2",  # no ESCAPE: the key holds no wildcard, a backslash matches itself
        [query, f"%{key}%"],
    ).fetchall()
    ranked = sorted((row for row in found if row[1] is not None), key=lambda r: (-r[1], -r[2], r[0]))
    return Matches(tuple(row[0] for row in found), tuple(row[0] for row in ranked))


def phrase_query(key: str) -> str:
    """The FTS5 query of the phrase of ``key``'s trigrams: the indexed keys that contain ``key`` (as
    :func:`comparable` holds both)."""
    return '"' + comparable(key).replace('"', '""') + '"'


def count(db: sqlite_utils.Database, key: str) -> int | None:
    """How many synced models' search keys contain ``key``: what ``COUNT(*)`` of ``model_search`` with
    ``search_key LIKE '%key%'`` gives, read from the index (about 4 ms for 27,855 of 204,266 keys, where the
    scan takes 28 ms); None when the index cannot answer (not :func:`countable`, or more than
    :data:`PENDING_LIMIT` pending; any number of hits is fine).

    The indexed keys holding ``key`` (the trigrams' phrase, or ``model_search_short_counts`` for a key of one
    or two characters), less the pending models' indexed keys holding it, plus the pending models' keys in
    ``model_search`` holding it: one statement, so one snapshot of the store.
    """
    if not countable(key) or pending_count(db, PENDING_LIMIT) > PENDING_LIMIT:
        return None
    if indexable(key):
        indexed = "(SELECT COUNT(*) FROM model_search_trigrams WHERE model_search_trigrams MATCH ?1)"
        looked_up = phrase_query(key)
    else:
        indexed = "(SELECT COALESCE(SUM(keys), 0) FROM model_search_short_counts WHERE substring = ?1)"
        looked_up = comparable(key)
    found = db.execute(
        f"SELECT {indexed} "
        "- (SELECT COUNT(*) FROM model_search_indexed "
        "WHERE model_id IN (SELECT model_id FROM model_search_pending) AND search_key LIKE ?2) "
        "+ (SELECT COUNT(*) FROM model_search "
        "WHERE model_id IN (SELECT model_id FROM model_search_pending) AND search_key LIKE ?2)",
        [looked_up, f"%{key}%"],  # no ESCAPE: the key holds no wildcard, a backslash matches itself
    ).fetchone()[0]
    return int(found)


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
    stale = [(rowid, indexed) for _, key, indexed, rowid in found if rowid is not None and key != indexed]
    db.conn.executemany("DELETE FROM model_search_trigrams WHERE rowid = ?", [(rowid,) for rowid, _ in stale])
    gone = [(model_id,) for model_id, key, _, rowid in found if key is None and rowid is not None]
    db.conn.executemany("DELETE FROM model_search_indexed WHERE model_id = ?", gone)
    fresh = sorted(
        (model_id, key) for model_id, key, indexed, _ in found if key is not None and key != indexed
    )
    _count_short_substrings(
        db, added=[key for _, key in fresh], removed=[key for _, key in stale if key is not None]
    )
    if not fresh:
        return
    # rowids given past the last one (not one INSERT per key for its lastrowid): two statements in all
    last = db.conn.execute("SELECT rowid FROM model_search_trigrams ORDER BY rowid DESC LIMIT 1").fetchone()
    numbered = [
        (rowid, model_id, key) for rowid, (model_id, key) in enumerate(fresh, (last[0] if last else 0) + 1)
    ]
    db.conn.executemany(  # each key as LIKE compares it (see the module's docstring)
        "INSERT INTO model_search_trigrams (rowid, model_id, search_key) VALUES (?, ?, ?)",
        [(rowid, model_id, comparable(key)) for rowid, model_id, key in numbered],
    )
    db.conn.executemany(
        "INSERT OR REPLACE INTO model_search_indexed (trigram_rowid, model_id, search_key) VALUES (?, ?, ?)",
        numbered,
    )


def _count_short_substrings(db: sqlite_utils.Database, added: list[str], removed: list[str]) -> None:
    """Count the keys ``added`` to the index in ``model_search_short_counts``, and no longer the keys
    ``removed`` from it."""
    change = short_substring_counts(added)
    change.subtract(short_substring_counts(removed))
    db.conn.executemany(
        "INSERT INTO model_search_short_counts (substring, keys) VALUES (?, ?) "
        "ON CONFLICT (substring) DO UPDATE SET keys = keys + excluded.keys",
        [(substring, keys) for substring, keys in change.items() if keys],
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
