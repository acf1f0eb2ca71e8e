"""The trigram index of the models' search keys (migration 0018, hfops.search_index): the id search and the
Candidates page's id filter give exactly what a scan of every synced model gives, whatever the state of the
index (current, partly pending, far behind), through inserts, deletes, renames and re-syncs."""

from __future__ import annotations

import random
import sqlite3
from datetime import datetime
from typing import Any

import pytest

from hfops import discovery, registry, search_index, worker
from hfops.errors import StoreError
from hfops.paths import HUB_SNAPSHOT
from hfops.store import connect, write_tx
from hfops.views import candidates as view
from tests.registry_rows import add_candidates, model_row


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The embedded snapshot synced once (real Hub ids), its search index as migration 0018 leaves a store
    synced before it: not built, every model noted."""
    path = str(tmp_path_factory.mktemp("search") / "hfops.db")
    discovery.sync_snapshot(path)  # (a sync indexes its pages' ids once its run is recorded)
    db = connect(path)
    with write_tx(db):
        db.execute("DELETE FROM model_search_trigrams")
        db.execute("DELETE FROM model_search_indexed")
        db.execute("DELETE FROM model_search_short_counts")
        db.execute("INSERT INTO model_search_pending SELECT model_id FROM model_search")
    db.conn.close()
    return path


@pytest.fixture
def store(synced: str, tmp_path: Any) -> str:
    """A private copy of the synced store."""
    path = str(tmp_path / "hfops.db")
    with sqlite3.connect(synced) as src, sqlite3.connect(path) as dst:
        src.backup(dst)
    return path


def texts_for(db_path: str) -> list[str]:
    """Searches an operator types: pieces of real ids (any case, separators changed), common words, a short
    one, wildcards and non-ASCII."""
    ids = [r[0] for r in connect(db_path).execute("SELECT model_id FROM models ORDER BY model_id")]
    pick = random.Random(17)
    texts = ["bert", "phi 2", "Qwen2.5", "MiniLM", "gguf", "e5", "7b", "50%", "a_b", "über", "zzzz-nothing"]
    texts += ["T5", "q", "ü", "\u212a", "zq", "/"]  # keys of one or two characters
    texts += ["ber\x00t", 'a"b"c', "NEAR(bert", "AND"]  # a NUL, and FTS5 query syntax
    for model_id in pick.sample(ids, 12):
        start = pick.randrange(0, max(1, len(model_id) - 4))
        piece = model_id[start : start + pick.randrange(3, 12)]
        texts.append(piece.upper() if pick.random() < 0.3 else piece.replace("-", " "))
    return texts


def answers(db_path: str, texts: list[str]) -> dict[str, Any]:
    """What the search and the Candidates page's id filter show for each text (the table's first page by
    score, its second by downloads, low first, and its first among every other candidate, as the runnable
    filter keeps some)."""
    db = connect(db_path)
    some = {r[0] for r in db.execute("SELECT model_id FROM candidate_rows ORDER BY model_id").fetchall()[::2]}
    out: dict[str, Any] = {}
    for text in texts:
        found = view.search_models(db, text)
        flt = registry.CandidateFilter(text=text)
        page, total = view.list_candidates(db, flt, page_size=20)
        second, _ = view.list_candidates(db, flt, sort="downloads", descending=False, page=2, page_size=20)
        kept, kept_total = view.list_candidates(db, flt, page_size=20, only=some)
        out[text] = (
            found.total if found else None,
            found.ids if found else None,
            total,
            [c.model_id for c in page],
            [c.model_id for c in second],
            (kept_total, [c.model_id for c in kept]),
        )
    db.conn.close()
    return out


def scanned(db_path: str, texts: list[str], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The same answers with the index left out: the scans of every synced model, each counting and sorting
    all its matches (no walk of a sort index for a common word)."""
    with monkeypatch.context() as patch:
        patch.setattr(search_index, "matches", lambda db, key: None)
        patch.setattr(view, "_walked_candidates", lambda *args: None)
        patch.setattr(view, "_walked_page", lambda *args: None)
        return answers(db_path, texts)


def counted(db_path: str, texts: list[str]) -> tuple[dict[str, int | None], dict[str, int]]:
    """For each text's search key: :func:`hfops.search_index.count`, and the scan's count of the synced
    models whose key contains it."""
    db = connect(db_path)
    keys = [view.search_key(t) for t in texts]
    by_index = {key: search_index.count(db, key) for key in keys if key}
    by_scan = {
        key: db.execute(
            "SELECT COUNT(*) FROM model_search WHERE search_key LIKE ? ESCAPE '\\'",
            [registry.contains_pattern(key)],
        ).fetchone()[0]
        for key in keys
        if key
    }
    db.conn.close()
    return by_index, by_scan


def test_short_substrings_are_counted_once_a_key_as_like_compares_it() -> None:
    keys = ["", "a", "aaa", "AbA", "x\x00yz", "\U0001f600\U0001f600x", "\u212ak", "é", "ab\x00", "\ud800b"]
    keys += ["".join(random.Random(n).choices("ab\u00e9\U0001f600Z", k=n)) for n in range(40)]
    expected: dict[str, int] = {}
    for key in keys:
        seen = search_index.comparable(key)
        for piece in {*seen, *(seen[at : at + 2] for at in range(len(seen) - 1))}:
            expected[piece] = expected.get(piece, 0) + 1
    assert dict(search_index.short_substring_counts(keys)) == expected
    assert expected["a"] >= 3 and expected["aa"] >= 2 and "x" in expected and "y" not in expected  # NUL ends
    assert search_index.short_substring_counts([]) == {}


def test_the_search_answers_like_a_scan_in_every_state_of_the_index(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = texts_for(store)
    db = connect(store)
    models = db.execute("SELECT COUNT(*) FROM model_search").fetchone()[0]
    assert search_index.pending_count(db) >= models  # every synced model noted (some twice: re-listed)
    expected = scanned(store, texts, monkeypatch)
    assert sum(1 for t in texts if expected[t][0]) >= 10  # most searches find something
    assert answers(store, texts) == expected  # nothing indexed yet: far behind
    assert set(counted(store, texts)[0].values()) == {None}  # too far behind to count

    assert search_index.index_pending(store) >= models > 10_000
    assert search_index.pending_count(db) == 0
    assert search_index.matches(db, "minilm") is not None  # the index narrows the search now
    assert answers(store, texts) == expected
    by_index, by_scan = counted(store, texts)
    assert by_index == {k: (n if search_index.countable(k) else None) for k, n in by_scan.items()}
    assert by_index["bert"] == by_scan["bert"] > 1000  # a common word is counted too
    assert by_index["t5"] == by_scan["t5"] > 100 and by_index["e5"] == by_scan["e5"] > 100  # and a short one
    assert search_index.count(db, "T5") == by_scan["t5"] and search_index.count(db, "BERT") == by_scan["bert"]

    # writes after indexing: new models, a removed one, a renamed one, a re-keyed one, a re-sync's rewrite
    ids = [r[0] for r in db.execute("SELECT model_id FROM models ORDER BY downloads DESC LIMIT 40")]
    add_candidates(store, [{"model_id": "acme/phi-2-bert-mix"}, {"model_id": "Acme/MiniLM_tiny.v2"}])
    with write_tx(db):
        db.execute("DELETE FROM status_transitions WHERE model_id = ?", [ids[0]])
        db.execute("DELETE FROM candidates WHERE model_id = ?", [ids[0]])
        db.execute("DELETE FROM models WHERE model_id = ?", [ids[0]])
        db.execute("UPDATE models SET model_id = 'renamed/bert-like' WHERE model_id = ?", [ids[1]])
        db.execute("UPDATE model_search SET search_key = 'rekeyedqwen' WHERE model_id = ?", [ids[2]])
        db.execute("UPDATE models SET downloads = downloads + 1 WHERE model_id IN (?, ?)", ids[3:5])
    db["models"].insert(model_row("other/not-a-candidate-bert", rule_failures=["licence"]))
    db["models"].insert(model_row("odd/tab\tbert", rule_failures=["licence"]))  # direct SQL: any text
    # the Kelvin sign folds to "k" in Unicode but not in LIKE: an ASCII search must not find it
    db["models"].insert(model_row("odd/\u212abert-kelvin", rule_failures=["licence"]))
    db["models"].insert(model_row("odd/nul\x00bert-after", rule_failures=["licence"]))  # LIKE stops at NUL
    with write_tx(db):  # a key another writer set in capitals: LIKE finds it in any case
        db.execute("UPDATE model_search SET search_key = 'CAPITALBERTKEY' WHERE model_id = ?", [ids[9]])
    texts += ["phi-2-bert", "renamed", "rekeyed", "minilm tiny", ids[0], ids[1], "bertmix", "tab\tbert"]
    texts += ["kbert", "\u212abert", "bertafter", "nulbert", "capitalbert", "LBERTK"]
    texts += ["\u212ab", "Ca", "yk", "ra", "ze"]  # short keys of the rewritten rows
    texts += [ids[5] * 20, "-".join(ids[6:9])]  # very long texts
    pending = db.execute("SELECT COUNT(DISTINCT model_id) FROM model_search_pending").fetchone()[0]
    assert 0 < search_index.pending_count(db) <= search_index.PENDING_LIMIT
    expected = scanned(store, texts, monkeypatch)
    assert expected["renamed"][0] == 1 and expected[ids[0]][0] == 0
    assert answers(store, texts) == expected  # index plus pending ids
    by_index, by_scan = counted(store, texts)
    assert by_index == {k: (n if search_index.countable(k) else None) for k, n in by_scan.items()}
    assert by_scan["capitalbert"] == 1 and by_scan["bertafter"] == 0

    assert search_index.index_pending(store) == pending
    assert search_index.pending_count(db) == 0
    assert answers(store, texts) == expected
    assert counted(store, texts) == (by_index, by_scan)  # the same counts from the index alone
    indexed = db.execute("SELECT COUNT(*) FROM model_search_indexed").fetchone()[0]
    assert indexed == db.execute("SELECT COUNT(*) FROM model_search").fetchone()[0]
    assert db.execute("SELECT COUNT(*) FROM model_search_trigrams").fetchone()[0] == indexed


def test_a_resync_of_unchanged_ids_leaves_nothing_to_index(store: str) -> None:
    search_index.index_pending(store)
    db = connect(store)
    with write_tx(db):  # what a sync page does to the rows it rewrites (registry.refresh_registry_rows)
        ids = [r[0] for r in db.execute("SELECT model_id FROM models LIMIT 500")]
        registry.refresh_registry_rows(db, ids)
        rows = db.execute("SELECT model_id, downloads + 1 FROM models LIMIT 500 OFFSET 500").fetchall()
        registry.write_registry_rows(db, rows, [])  # what a sync page writes for changed downloads
    assert search_index.pending_count(db) == 0  # updated in place, keys unchanged: nothing to index
    with write_tx(db):  # a row whose key does change is noted
        db.execute("UPDATE model_search SET search_key = 'x' || search_key WHERE model_id = ?", [ids[0]])
    assert search_index.pending_count(db) == 2  # the old and the new id (the same one here)
    assert search_index.index_pending(store) == 1
    assert search_index.matches(db, "x" + view.search_key(ids[0])[:8]) is not None


def test_the_index_is_left_out_when_it_cannot_narrow(store: str) -> None:
    db = connect(store)
    assert search_index.pending_count(db) > search_index.PENDING_LIMIT
    assert search_index.matches(db, "bert") is None  # too far behind: a scan is cheaper
    search_index.index_pending(store)
    assert search_index.matches(db, "be") is None  # shorter than a trigram
    assert search_index.matches(db, "50%") is None  # a LIKE wildcard
    assert search_index.matches(db, "minilm") is not None


def test_another_connections_commit_is_seen_by_the_next_search(store: str) -> None:
    search_index.index_pending(store)
    reader = connect(store)
    assert view.search_models(reader, "zebrafish").total == 0
    add_candidates(store, [{"model_id": "lab/zebrafish-embed"}])  # another connection commits
    assert view.search_models(reader, "zebrafish").ids == ["lab/zebrafish-embed"]
    with write_tx(reader):  # and this connection's own write
        reader.execute("DELETE FROM candidates WHERE model_id = 'lab/zebrafish-embed'")
        reader.execute("DELETE FROM models WHERE model_id = 'lab/zebrafish-embed'")
    assert view.search_models(reader, "zebrafish").total == 0


def test_the_worker_indexes_after_a_sync_job_and_every_minute(db_path: str) -> None:
    from hfops import jobs, queue
    from hfops.config import Settings

    settings = Settings()
    settings.store.path = db_path
    db = connect(db_path)
    job_id = jobs.create_job(db, "sync", {"snapshot": str(HUB_SNAPSHOT)}, settings)
    worker.execute_job(db_path, job_id)
    assert jobs.get_job(db, job_id).status == "succeeded"
    assert db.execute("SELECT COUNT(*) FROM model_search_indexed").fetchone()[0] > 10_000
    assert search_index.pending_count(db) == 0

    add_candidates(db_path, [{"model_id": "lab/zebrafish-embed"}])
    assert search_index.pending_count(db) == 1
    huey = queue.get_huey(db_path, settings)
    worker._add_search_indexing(huey, db_path)
    task = next(t for t in huey._registry.periodic_tasks if t.name == "hfops.search_index")
    assert all(task.validate_datetime(datetime(2026, 1, 1, 3, minute)) for minute in range(60))
    huey.execute(task)
    assert search_index.pending_count(db) == 0
    assert view.search_models(db, "zebrafish").ids == ["lab/zebrafish-embed"]


def test_a_search_racing_the_indexer_misses_nothing(store: str) -> None:
    """The index's hits and the pending ids come from one snapshot: the worker committing an index batch
    between two reads made a model that existed throughout vanish from the search (review of 0018)."""
    search_index.index_pending(store)
    add_candidates(store, [{"model_id": "lab/zebrafish-embed"}])  # noted, not indexed yet
    reader = connect(store)

    class IndexesRightAfterTheTrigramRead:
        def __init__(self, db: Any) -> None:
            self.db = db

        def __getattr__(self, name: str) -> Any:
            return getattr(self.db, name)

        def execute(self, sql: str, params: Any = ()) -> Any:
            cursor = self.db.execute(sql, params)
            if "model_search_indexed" not in sql:
                return cursor
            found = cursor.fetchall()
            assert search_index.index_pending(store) == 1  # the worker commits now
            return _Fetched(found)

    racing: Any = IndexesRightAfterTheTrigramRead(reader)
    zebrafish = ("lab/zebrafish-embed",)
    assert search_index.matches(racing, "zebrafish") == search_index.Matches(zebrafish, zebrafish)
    assert view.search_models(reader, "zebrafish").ids == ["lab/zebrafish-embed"]


class _Fetched(list[Any]):
    def fetchall(self) -> list[Any]:
        return list(self)


def test_a_common_word_scans_instead_of_looking_up_every_hit(store: str) -> None:
    search_index.index_pending(store)
    db = connect(store)
    models = db.execute("SELECT COUNT(*) FROM model_search").fetchone()[0]
    limit = max(search_index.MIN_HIT_LIMIT, models // search_index.HIT_SHARE)
    bert = db.execute("SELECT COUNT(*) FROM model_search WHERE search_key LIKE '%bert%'").fetchone()[0]
    assert bert > limit  # one key in six holds "bert" in the snapshot
    assert search_index.matches(db, "bert") is None
    assert search_index.matches(db, "minilm") is not None


@pytest.mark.parametrize("walk_first", [False, True])
@pytest.mark.parametrize(("walk", "scan_below"), [(1, 10**9), (120, 0), (2000, 5000)])
def test_a_search_the_index_declines_walks_the_first_candidates_and_answers_like_a_scan(
    store: str, walk: int, scan_below: int, walk_first: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A search the index declines (a common word, a short key) takes its rows from a walk of the first
    candidates in the order shown when that walk provably holds them (for the id search, a score tied
    across the walk's edge does not); otherwise it scans. The walk's length moves which searches walk, never
    what they show; ``scan_below`` moves the Candidates page's line between sorting few matches and walking
    the sort index for many. ``walk_first``: every key the index holds is common enough to be walked for
    before its matches are read (read when the walk falls short)."""
    search_index.index_pending(store)
    texts = [*texts_for(store), "ai", "b", "mini", "sentence transformers", "llama", "gpt", "zq"]
    expected = scanned(store, texts, monkeypatch)
    monkeypatch.setattr(view, "WALK_CANDIDATES", walk)
    monkeypatch.setattr(view, "SCAN_BELOW", scan_below)
    if walk_first:  # walk for any hit at all, and read any number of hits
        monkeypatch.setattr(search_index, "MIN_HIT_LIMIT", 0)
        monkeypatch.setattr(search_index, "WALK_SHARE", 10**9)
        monkeypatch.setattr(search_index, "HIT_SHARE", 1)
    took: dict[str, list[bool]] = {"search": [], "page": []}
    walked_for: set[str] = set()
    search_walk, page_walk = view._walked_candidates, view._walked_page

    def noted_search(*args: Any) -> list[str] | None:
        found = search_walk(*args)
        took["search"].append(found is not None)
        walked_for.add(args[1])
        return found

    def noted_page(*args: Any) -> list[registry.Candidate] | None:
        found = page_walk(*args)
        took["page"].append(found is not None)
        return found

    monkeypatch.setattr(view, "_walked_candidates", noted_search)
    monkeypatch.setattr(view, "_walked_page", noted_page)
    assert answers(store, texts) == expected
    # "minilm": the index reads its few hits, unless every key is common
    assert (registry.contains_pattern("minilm") in walked_for) == walk_first
    # a walk shorter than a page (50 rows of search, 20 of table here) holds none; a rare short key scans
    assert (True in took["search"]) == (walk > view.SEARCH_LIMIT) and False in took["search"]
    assert (True in took["page"]) == (walk > 20) and (walk <= 20 or False in took["page"])


def test_a_score_tied_across_the_walks_edge_sends_the_search_to_the_scan(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """70 candidates of one score: the walk of the first 55 by (score, id) holds 50 matches, but the search
    orders ties by downloads, and the best-downloaded lie past the walk's edge."""
    path = str(tmp_path / "ties.db")
    add_candidates(path, [{"model_id": f"lab/zeta-{n:02d}", "score": 0.5, "downloads": n} for n in range(70)])
    add_candidates(path, [{"model_id": "lab/top", "score": 0.9}])
    monkeypatch.setattr(view, "WALK_CANDIDATES", 55)
    found = view.search_models(connect(path), "ze")  # two characters: the index declines, the search scans
    assert found is not None and found.total == 70
    assert found.ids == [f"lab/zeta-{n:02d}" for n in range(69, 19, -1)]


def test_the_command_line_sync_and_init_bring_the_index_up_to_date(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from hfops.cli import main

    path = str(tmp_path / "cli.db")
    assert main(["init", "--db", path, "--no-starter-runs"]) == 0
    db = connect(path)
    assert search_index.pending_count(db) == 0
    assert db.execute("SELECT COUNT(*) FROM model_search_indexed").fetchone()[0] > 10_000
    add_candidates(path, [{"model_id": "lab/zebrafish-embed"}])
    assert main(["sync", "--db", path, "--snapshot", str(HUB_SNAPSHOT), "--quiet"]) == 0
    assert search_index.pending_count(db) == 0
    assert "sync" in capsys.readouterr().out


def test_a_store_error_while_indexing_does_not_fail_the_writer(
    store: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def locked(*args: Any, **kwargs: Any) -> int:
        raise StoreError(f"store {store}: database is locked")

    monkeypatch.setattr(search_index, "index_pending", locked)
    assert search_index.catch_up(store) == 0
    assert "not brought up to date" in caplog.text and "locked" in caplog.text


def test_a_sqlite_without_the_trigram_tokenizer_is_explained_and_the_store_kept(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hfops import store as store_module

    path = tmp_path / "old.db"
    files = store_module._migration_files()
    before = [(v, sql) for v, sql in files if v < "0018"]
    monkeypatch.setattr(store_module, "_migration_files", lambda: before)
    connect(str(path)).conn.close()
    store_module._migrated.clear()
    missing = [(v, sql.replace("tokenize = 'trigram'", "tokenize = 'trigram_absent'")) for v, sql in files]
    monkeypatch.setattr(store_module, "_migration_files", lambda: missing)
    with pytest.raises(StoreError, match=r"needs SQLite 3\.34 or newer with FTS5.*store is unchanged"):
        connect(str(path))
    store_module._migrated.clear()
    versions = [r[0] for r in sqlite3.connect(path).execute("SELECT version FROM schema_migrations")]
    assert versions == [v for v, _ in before]


@pytest.mark.parametrize(
    "migration", ["0021_model_search_trigram_positions", "0022_model_search_short_counts"]
)
def test_a_store_indexed_before_a_rebuild_is_reindexed_and_counts_like_a_scan(
    migration: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Migrations 0021 (positions, no case folding) and 0022 (the short substrings' counts) rebuild the index:
    a store indexed before either has every model noted again, searches scan until the indexer has run,
    and then count from the index."""
    from hfops import store as store_module

    path = str(tmp_path / "before.db")
    files = store_module._migration_files()
    version = migration[:4]
    with (
        monkeypatch.context() as before
    ):  # the store and its index as the code before the migration left them
        before.setattr(store_module, "_migration_files", lambda: [(v, s) for v, s in files if v < version])
        before.setattr(search_index, "_count_short_substrings", lambda db, added, removed: None)
        discovery.sync_snapshot(path)  # indexed once the run is recorded
        db = connect(path)
        assert search_index.pending_count(db) == 0
        assert migration not in store_module.schema_version(db)
    models = db.execute("SELECT COUNT(*) FROM model_search").fetchone()[0]
    store_module._migrated.clear()
    db = connect(path)
    assert migration in store_module.schema_version(db)
    assert db.execute("SELECT COUNT(*) FROM model_search_indexed").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM model_search_trigrams").fetchone()[0] == 0
    assert search_index.pending_count(db) == models
    assert search_index.count(db, "minilm") is None and search_index.matches(db, "minilm") is None
    assert search_index.count(db, "t5") is None
    assert search_index.index_pending(path) == models
    by_index, by_scan = counted(path, ["bert", "MiniLM", "qwen2", "sentence-transformers", "t5", "e5", "q"])
    assert by_index == by_scan and by_scan["bert"] > 1000 and by_scan["t5"] > 100
