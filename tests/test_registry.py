"""Status lifecycle, audit trail, production model per task, SQL paging over 100k candidates."""

from __future__ import annotations

import pytest

from hfops.registry import (
    CandidateFilter,
    RegistryError,
    counts_by_status,
    facet_values,
    get_model,
    list_candidates,
    production_model,
    set_status,
    status_history,
)
from hfops.store import connect, utcnow, write_tx


def add_model(db, model_id: str, pipeline_tag: str = "text-generation", score: float = 0.5, **extra) -> None:
    now = utcnow()
    row = {
        "model_id": model_id,
        "pipeline_tag": pipeline_tag,
        "license": "mit",
        "library_name": "transformers",
        "raw": "{}",
        "record_hash": "h",
        "source": "test",
        "first_seen": now,
        "last_seen": now,
        "downloads": 100,
        "likes": 1,
        **extra,
    }
    with write_tx(db):
        db["models"].insert(row)
        db["candidates"].insert(
            {
                "model_id": model_id,
                "status": "candidate",
                "score": score,
                "created_at": now,
                "updated_at": now,
            }
        )


def add_run(db, model_id: str, production_id: str = "baseline:lexical", run_id: int | None = None) -> int:
    """An eval run row (what evidence ``eval_run:<id>`` cites); its id."""
    now = utcnow()
    with write_tx(db):
        cursor = db.execute(
            "INSERT INTO eval_runs (id, model_id, production_id, task, dataset, dataset_source, "
            "dataset_version, status, created_at, updated_at) VALUES (?, ?, ?, 'qa', 'squad_v2', 'local', "
            "'v1', 'succeeded', ?, ?)",
            [run_id, model_id, production_id, now, now],
        )
    return int(cursor.lastrowid)


def test_status_change_is_audited_with_reason_actor_and_evidence(db_path: str) -> None:
    db = connect(db_path)
    add_model(db, "a/m")
    add_run(db, "a/m", run_id=7)
    set_status(db, "a/m", "evaluating", "nightly run", actor="ops", evidence="eval_run:7")
    set_status(db, "a/m", "shadow", "passed")
    history = status_history(db, "a/m")
    assert [(h["from_status"], h["to_status"]) for h in history] == [
        ("candidate", "evaluating"),
        ("evaluating", "shadow"),
    ]
    assert (
        history[0]["actor"] == "ops"
        and history[0]["evidence"] == "eval_run:7"
        and history[0]["reason"] == "nightly run"
    )
    assert get_model(db, "a/m")["candidate"]["status"] == "shadow"


@pytest.mark.parametrize(
    ("to", "reason", "message"),
    [
        ("shadow", "  ", "reason is required"),
        ("bogus", "x", "unknown status"),
        ("candidate", "x", "already candidate"),
    ],
)
def test_invalid_changes_are_refused_and_leave_no_trace(
    db_path: str, to: str, reason: str, message: str
) -> None:
    db = connect(db_path)
    add_model(db, "a/m")
    with pytest.raises(RegistryError, match=message):
        set_status(db, "a/m", to, reason)
    assert status_history(db, "a/m") == []


@pytest.mark.parametrize(
    ("evidence", "message"),
    [
        ("eval_run:999", r"evidence 'eval_run:999': no eval run 999 in the store"),
        ("eval_run:1", r"eval run 1 compared other/m with baseline:lexical, not a/m"),  # another model's run
        ("eval_run:x1", r"the run id must be a number"),
        ("eval_run:", r"is not one of eval_run:<run id>, sync_run:<sync id> or rollback:<model id>"),
        ("https://example.org/report", r"is not one of eval_run:"),
        ("sync_run:5", r"no sync run 5 in the store"),
        ("rollback:no/such", r"no model 'no/such' in the registry"),
    ],
)
def test_evidence_that_cites_nothing_real_is_refused_and_nothing_is_written(
    db_path: str, evidence: str, message: str
) -> None:
    db = connect(db_path)
    add_model(db, "a/m")
    add_model(db, "other/m")
    add_run(db, "other/m")
    with pytest.raises(RegistryError, match=message):
        set_status(db, "a/m", "promoted", "looks better", evidence=evidence)
    assert status_history(db, "a/m") == [] and get_model(db, "a/m")["candidate"]["status"] == "candidate"
    assert production_model(db, "qa") is None


def test_evidence_may_cite_a_run_a_sync_or_a_rollback(db_path: str) -> None:
    db = connect(db_path)
    add_model(db, "a/m")
    add_model(db, "b/m")
    run = add_run(db, "b/m", production_id="a/m")  # a/m was the production side of b/m's run
    set_status(db, "a/m", "shadow", "beaten by b/m", evidence=f" eval_run:{run} ")
    with write_tx(db):
        sync_id = (
            db["sync_runs"].insert({"source": "test", "status": "succeeded", "started_at": utcnow()}).last_pk
        )
    set_status(db, "b/m", "shadow", "listed again", evidence=f"sync_run:{sync_id}")
    set_status(db, "a/m", "candidate", "undo", evidence="rollback:b/m")
    assert [h["evidence"] for h in status_history(db, "a/m")] == [f"eval_run:{run}", "rollback:b/m"]
    assert status_history(db, "b/m")[-1]["evidence"] == f"sync_run:{sync_id}"


def test_disallowed_transition_names_the_allowed_ones(db_path: str) -> None:
    db = connect(db_path)
    add_model(db, "a/m")
    set_status(db, "a/m", "rejected", "bad licence")
    with pytest.raises(
        RegistryError, match="cannot move a/m from rejected to promoted .allowed: candidate, retired"
    ):
        set_status(db, "a/m", "promoted", "x")
    with pytest.raises(RegistryError, match="no candidate"):
        set_status(db, "zz/unknown", "shadow", "x")


def test_promotion_demotes_the_previous_production_model_of_the_same_task(db_path: str) -> None:
    db = connect(db_path)
    add_model(db, "gen/old")
    add_model(db, "gen/new", pipeline_tag="text2text-generation")
    add_model(db, "emb/one", pipeline_tag="sentence-similarity")
    set_status(db, "gen/old", "promoted", "first")
    set_status(db, "emb/one", "promoted", "embedding prod")
    add_run(db, "gen/new", "gen/old", run_id=3)
    result = set_status(db, "gen/new", "promoted", "better F1", evidence="eval_run:3")
    assert result["demoted"] == ["gen/old"]
    assert production_model(db, "qa") == "gen/new" and production_model(db, "retrieval") == "emb/one"
    old = status_history(db, "gen/old")[-1]
    assert (old["from_status"], old["to_status"], old["evidence"]) == ("promoted", "shadow", "eval_run:3")
    assert counts_by_status(db)["promoted"] == 2


def test_sql_paging_sorting_and_filters_over_100k_rows(db_path: str) -> None:
    db = connect(db_path)
    now = utcnow()
    tags = ["text-generation", "feature-extraction", "sentence-similarity", "text2text-generation"]
    with write_tx(db):
        db["models"].insert_all(
            (
                {
                    "model_id": f"org/m{i:06d}",
                    "pipeline_tag": tags[i % 4],
                    "license": "mit" if i % 2 else "apache-2.0",
                    "library_name": "transformers",
                    "quantization": "gguf" if i % 10 == 0 else "",
                    "raw": "{}",
                    "record_hash": "h",
                    "source": "t",
                    "first_seen": now,
                    "last_seen": now,
                    "downloads": i,
                    "likes": 0,
                }
                for i in range(100_000)
            ),
            batch_size=5000,
        )
        db["candidates"].insert_all(
            (
                {
                    "model_id": f"org/m{i:06d}",
                    "status": "candidate",
                    "score": (i % 1000) / 1000,
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(100_000)
            ),
            batch_size=5000,
        )
    page, total = list_candidates(db, CandidateFilter(), sort="downloads", page=3, page_size=25)
    assert total == 100_000 and len(page) == 25
    assert [r["downloads"] for r in page] == list(range(99_949, 99_924, -1))
    page, total = list_candidates(
        db,
        CandidateFilter(
            pipeline_tags=["feature-extraction"], licenses=["mit"], quantization=["gguf"], min_score=0.5
        ),
    )
    assert total == 0  # feature-extraction rows are i % 4 == 1 (odd, mit) but gguf needs i % 10 == 0 (even)
    page, total = list_candidates(
        db, CandidateFilter(pipeline_tags=["text-generation"], quantization=["gguf"], text="m0000")
    )
    assert {r["model_id"] for r in page} == {
        "org/m000000",
        "org/m000020",
        "org/m000040",
        "org/m000060",
        "org/m000080",
    } and total == 5
    page, total = list_candidates(db, CandidateFilter(text="100%_"))
    assert total == 0  # LIKE wildcards in the search text are literal
    assert facet_values(db)["quantization"] == ["none", "gguf"]
    with pytest.raises(RegistryError, match="cannot sort by"):
        list_candidates(db, sort="downloads; DROP TABLE models")


def test_typed_records_keep_transitional_mapping_access(db_path: str) -> None:
    db = connect(db_path)
    add_model(db, "a/m")
    change = set_status(db, "a/m", "evaluating", "first look")
    assert (
        (change.from_status, change.to_status)
        == (change["from"], change["to"])
        == ("candidate", "evaluating")
    )
    (row,), _ = list_candidates(db)
    assert row.model_id == row["model_id"] == "a/m" and row.get("no such column") is None
    with pytest.raises(KeyError):
        row["no such column"]
    model = get_model(db, "a/m")
    assert model is not None and model.candidate is not None and model.candidate.status == "evaluating"
    assert (
        model.history[0].reason == "first look" and model.to_dict()["history"][0]["to_status"] == "evaluating"
    )


def test_registry_rows_kit_stores_what_a_sync_stores(tmp_path, db_path: str) -> None:
    """tests/registry_rows.py claims to mirror discovery: the same facts give the same columns and score."""
    import json

    from hfops.discovery import sync_snapshot
    from hfops.paths import HUB_SNAPSHOT
    from tests.registry_rows import add_candidates
    from tests.standins.hub import load_records

    record = next(r for r in load_records(str(HUB_SNAPSHOT)) if r["id"] == "microsoft/phi-2")
    (tmp_path / "one.jsonl").write_text(json.dumps(record) + "\n")
    synced_path = str(tmp_path / "synced.db")
    sync_snapshot(synced_path, tmp_path / "one.jsonl")
    synced = get_model(connect(synced_path), "microsoft/phi-2")
    assert synced is not None and synced.candidate is not None
    facts = {
        k: synced[k]
        for k in (
            "author",
            "sha",
            "pipeline_tag",
            "library_name",
            "license",
            "tags",
            "siblings",
            "downloads",
            "downloads_all_time",
            "likes",
            "trending_score",
            "created_at",
            "last_modified",
            "gated",
            "safetensors",
            "quantization",
        )
    }
    add_candidates(db_path, [{"model_id": "microsoft/phi-2", **facts}])
    kit = get_model(connect(db_path), "microsoft/phi-2")
    assert kit is not None and kit.candidate is not None
    ignored = {
        "raw",
        "record_hash",
        "rule_hash",
        "source",
        "first_seen",
        "last_seen",
        "last_sync_id",
        "candidate",
        "history",
    }
    assert {k: v for k, v in kit.to_dict().items() if k not in ignored} == {
        k: v for k, v in synced.to_dict().items() if k not in ignored
    }
    assert kit.candidate.score == pytest.approx(synced.candidate.score, abs=1e-3)
    assert set(kit.candidate.score_breakdown) == set(synced.candidate.score_breakdown)
    for term, entry in synced.candidate.score_breakdown.items():
        assert kit.candidate.score_breakdown[term]["weight"] == entry["weight"]
        assert kit.candidate.score_breakdown[term]["value"] == pytest.approx(entry["value"], abs=1e-3)
