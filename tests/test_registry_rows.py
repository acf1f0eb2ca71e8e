"""The narrow tables of migration 0014 (``candidate_rows``, ``model_search``) equal their definitions over
``models`` / ``candidates`` after every writer: a sync's set-based refresh per page (migration 0015 defers
the per-row triggers while it writes), the snapshot load, status changes, a promotion that demotes,
``add_candidate``, flagging, and raw SQL writes, renames and deletes (the triggers)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest

from hfops.config import Settings
from hfops.discovery import storing, sync_snapshot
from hfops.errors import RegistryError, SyncError
from hfops.paths import HUB_SNAPSHOT
from hfops.registry import (
    add_candidate,
    refresh_registry_rows,
    registry_rows_deferred,
    registry_rows_drift,
    set_status,
)
from hfops.store import connect, write_tx
from tests.standins.hub import HubStandIn
from tests.test_discovery_sync import expected_ids, hub_records, settings_for, sync

CONSISTENT = {"candidate_rows": 0, "model_search": 0}


@pytest.fixture
def hub() -> Iterator[HubStandIn]:
    with HubStandIn(hub_records()) as server:
        yield server


def consistent(db_path: str) -> bool:
    db = connect(db_path)
    assert db.execute("SELECT COUNT(*) FROM registry_rows_deferred").fetchone()[0] == 0  # never committed
    return registry_rows_drift(db) == CONSISTENT


def test_the_check_sees_a_table_that_drifted(db_path: str) -> None:
    sync_snapshot(db_path, HUB_SNAPSHOT, Settings())
    db = connect(db_path)
    assert registry_rows_drift(db) == CONSISTENT
    some = db.execute("SELECT model_id FROM candidates ORDER BY model_id LIMIT 3").fetchall()
    with write_tx(db):
        db.execute("INSERT INTO registry_rows_deferred (id) VALUES (1)")  # triggers step aside: nothing kept
        db.execute("UPDATE models SET downloads = downloads + 1 WHERE model_id = ?", [some[0][0]])
        db.execute("DELETE FROM candidate_rows WHERE model_id = ?", [some[1][0]])
        db.execute("DELETE FROM registry_rows_deferred")
    # one row stale in each table (downloads), one missing
    assert registry_rows_drift(db) == {"candidate_rows": 3, "model_search": 2}
    with write_tx(db):
        refresh_registry_rows(db, [some[0][0], some[1][0]])
    assert registry_rows_drift(db) == CONSISTENT


def test_every_sync_path_leaves_the_tables_consistent(hub: HubStandIn, db_path: str) -> None:
    settings = settings_for(hub)
    first = sync(db_path, settings)  # full pass into an empty store
    assert first.new_candidates > 0 and consistent(db_path)
    db = connect(db_path)
    assert db.execute("SELECT COUNT(*) FROM candidate_rows").fetchone()[0] == first.new_candidates
    ids = sorted(expected_ids(hub.records))
    unmatched, vanished, changed = ids[0], ids[1], ids[2]
    for r in hub.records:
        if r["id"] == unmatched:  # still listed, no longer matching (its library)
            r["tags"] = [t for t in r["tags"] if t != "transformers"]
            r["library_name"] = "other"
        if r["id"] == changed:
            r["downloads"] = r.get("downloads", 0) + 12345
            r["likes"] = r.get("likes", 0) + 7
    hub.records = [r for r in hub.records if r["id"] != vanished]  # unlisted: flagged after the pass
    hub._sorted_cache.clear()
    # candidates the operator moved on: a page writes their narrow rows with their status and score as
    # stored, not the ones a new candidate gets
    set_status(db, changed, "evaluating", "try it")
    set_status(db, unmatched, "rejected", "not for us")
    score = db.execute("SELECT score FROM candidates WHERE model_id = ?", [unmatched]).fetchone()[0]
    second = sync(db_path, settings)
    assert second.flagged >= 2 and second.updated >= 2 and consistent(db_path)
    row = db.execute(
        "SELECT downloads, likes, status FROM candidate_rows WHERE model_id = ?", [changed]
    ).fetchone()
    assert row[0] == next(r["downloads"] for r in hub.records if r["id"] == changed)
    assert row[2] == "evaluating"
    row = db.execute("SELECT status, score, library_name FROM candidate_rows WHERE model_id = ?", [unmatched])
    assert row.fetchone() == ("rejected", score, "other")
    flags = dict(db.execute("SELECT model_id, flag FROM candidate_rows WHERE flag IS NOT NULL").fetchall())
    assert {unmatched, vanished} <= set(flags)
    settings.discovery.min_likes = 100  # a rule change re-judges every record: scores and flags rewritten
    sync(db_path, settings)
    assert consistent(db_path)


def test_snapshot_load_and_a_resync_keep_the_tables_consistent(db_path: str) -> None:
    run = sync_snapshot(db_path, HUB_SNAPSHOT, Settings())
    assert run.new_candidates > 0 and consistent(db_path)
    db = connect(db_path)
    assert db.execute("SELECT COUNT(*) FROM model_search").fetchone()[0] == run.inserted
    sync_snapshot(db_path, HUB_SNAPSHOT, Settings())  # nothing changed: only last_seen written
    assert consistent(db_path)


def test_status_changes_promotion_add_candidate_and_raw_writes_keep_the_tables_consistent(
    db_path: str,
) -> None:
    sync_snapshot(db_path, HUB_SNAPSHOT, Settings())
    db = connect(db_path)
    gen = [r[0] for r in db.execute(
        "SELECT model_id FROM candidate_rows WHERE pipeline_tag = 'text-generation' ORDER BY model_id LIMIT 2"
    )]  # fmt: skip
    set_status(db, gen[0], "evaluating", "try it")
    set_status(db, gen[0], "promoted", "best so far")
    change = set_status(db, gen[1], "promoted", "better")  # demotes gen[0] to shadow
    assert change.demoted == [gen[0]] and consistent(db_path)
    shown = db.execute("SELECT status FROM candidate_rows WHERE model_id = ?", [gen[0]]).fetchone()[0]
    assert shown == "shadow"
    outsider = db.execute(
        "SELECT model_id FROM models WHERE model_id NOT IN (SELECT model_id FROM candidates) LIMIT 1"
    ).fetchone()[0]
    add_candidate(db, outsider, 0.42, {}, "chosen by hand")
    assert consistent(db_path)
    assert db.execute("SELECT score FROM candidate_rows WHERE model_id = ?", [outsider]).fetchone()[0] == 0.42
    with write_tx(db):  # raw SQL, as tests' row helpers and other writers do: the triggers keep the tables
        db.execute("UPDATE models SET likes = 99, quantization = 'gguf' WHERE model_id = ?", [gen[1]])
        db.execute("UPDATE candidates SET flag = 'checked by hand' WHERE model_id = ?", [outsider])
        db.execute("PRAGMA defer_foreign_keys = ON")  # a rename moves the rows that reference the model too
        for table in ("models", "candidates", "status_transitions"):
            db.execute(f"UPDATE {table} SET model_id = 'renamed/model' WHERE model_id = ?", [outsider])
        db.execute("DELETE FROM status_transitions WHERE model_id = ?", [gen[0]])
        db.execute("DELETE FROM candidates WHERE model_id = ?", [gen[0]])
        db.execute("DELETE FROM models WHERE model_id = ?", [gen[0]])
    assert consistent(db_path)
    assert db.execute("SELECT COUNT(*) FROM model_search WHERE model_id = ?", [gen[0]]).fetchone()[0] == 0


def test_a_page_that_fails_mid_write_leaves_no_deferral_and_consistent_tables(
    hub: HubStandIn, db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(hub)
    real = storing._write_rows
    pages = []

    def failing(*args: object) -> None:
        real(*args)  # type: ignore[arg-type]
        pages.append(1)
        if len(pages) == 2:  # the second page's rows are written, then the store refuses
            raise sqlite3.IntegrityError("UNIQUE constraint failed: models.model_id")

    monkeypatch.setattr(storing, "_write_rows", failing)
    with pytest.raises(SyncError, match="the store refused a write"):
        sync(db_path, settings)
    assert consistent(db_path)
    db = connect(db_path)
    stored = db.execute("SELECT COUNT(*) FROM models").fetchone()[0]
    assert 0 < stored == db.execute("SELECT COUNT(*) FROM model_search").fetchone()[0]  # page 1 only
    monkeypatch.setattr(storing, "_write_rows", real)
    assert sync(db_path, settings).status == "succeeded" and consistent(db_path)  # resumed


def test_deferral_needs_the_callers_transaction(db_path: str) -> None:
    db = connect(db_path)
    with pytest.raises(RegistryError, match="write transaction"):
        with registry_rows_deferred(db, []):
            pass


def test_the_unread_matches_index_is_gone_and_the_readers_keep_theirs(db_path: str) -> None:
    """Migration 0016 drops ``models_matches`` (no query reads ``matches_rule``); the queries that read the
    other indexes of ``models`` / ``candidates`` still search through them."""
    sync_snapshot(db_path, HUB_SNAPSHOT, Settings())
    db = connect(db_path)
    indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "models_matches" not in indexes
    assert {"models_pipeline_tag", "models_license", "models_library", "candidates_status"} <= indexes

    def plan(sql: str) -> str:
        return " | ".join(r[3] for r in db.execute(f"EXPLAIN QUERY PLAN {sql}"))

    join = "SELECT COUNT(*) FROM candidates c JOIN models m ON m.model_id = c.model_id WHERE"
    assert "models_library" in plan(f"{join} m.library_name IN ('transformers')")  # `candidates --library`
    assert "models_license" in plan(f"{join} m.license IN ('mit')")
    assert "models_pipeline_tag" in plan(f"{join} m.pipeline_tag IN ('text-generation')")
    assert "candidates_status" in plan(  # who holds production (a promotion's check)
        "SELECT c.model_id FROM candidates c JOIN models m ON m.model_id = c.model_id "
        "WHERE c.status = 'promoted' AND m.pipeline_tag IN ('a', 'b') ORDER BY c.updated_at DESC LIMIT 1"
    )
    # the sync's own lookup of a page's stored rows: by id
    assert "sqlite_autoindex_models_1" in plan(
        "SELECT m.model_id, m.record_hash, c.flag FROM models m LEFT JOIN candidates c "
        "ON c.model_id = m.model_id WHERE m.model_id IN ('a', 'b')"
    )
