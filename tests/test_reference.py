"""Published MTEB reference scores.

The shipped table, row choice by revision, the store join, rank disagreement.
"""

from __future__ import annotations

import csv
import io

import pytest

from hfops import reference
from hfops.reference import (
    EXTERNAL,
    MSMARCO,
    MTEB_SCORES,
    TASKS,
    choose,
    disagreement_notice,
    discordant_pairs,
    load_table,
    parse_rows,
    published_retrieval_scores,
    reference_for,
    references_for,
    references_for_models,
)
from hfops.store import connect
from tests.registry_rows import add_candidates

BGE = "BAAI/bge-base-en-v1.5"
BGE_REVISION = "a5beb1e3e68b9ab74eb54cfd186867f64f240e1a"  # its per-revision row in the shipped table
HEADER = ["model", "revision", "release_date", "license", "n_parameters", "embed_dim", "max_tokens", *TASKS]


def table_text(*rows: dict[str, str]) -> list[str]:
    """CSV lines in the shipped table's layout; missing cells are empty."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=HEADER)
    writer.writeheader()
    for row in rows:
        writer.writerow({name: row.get(name, "") for name in HEADER})
    return out.getvalue().splitlines(keepends=True)


def shipped_rows(model_id: str) -> list[dict[str, str]]:
    with open(MTEB_SCORES, encoding="utf-8", newline="") as fh:
        return [row for row in csv.DictReader(fh) if row["model"] == model_id]


def test_the_shipped_scores_of_bge_base_appear_with_their_source_and_revision() -> None:
    expected = {}
    for row in shipped_rows(BGE):
        expected[row["revision"]] = {t: float(row[t]) for t in TASKS if row[t]}
    ref = reference_for(BGE)
    assert ref is not None
    # Without a registry revision the row with a published MS MARCO score is shown: here the external one.
    assert ref.revision == EXTERNAL and MSMARCO in ref.scores
    assert ref.scores == expected[EXTERNAL]
    assert ref.as_json() == {
        "source": reference.MTEB_SOURCE,
        "revision": EXTERNAL,
        "scores": expected[EXTERNAL],
    }
    assert ref.revision_match is None and ref.other_revisions == (BGE_REVISION,)
    assert ref.license == "mit" and ref.embed_dim == 768


def test_a_registry_revision_that_matches_picks_that_row() -> None:
    ref = reference_for(BGE, BGE_REVISION)
    assert ref is not None and ref.revision == BGE_REVISION and ref.revision_match is True
    assert MSMARCO not in ref.scores  # that row has fewer tasks and no MS MARCO: the match still wins
    other = reference_for(BGE, "0" * 40)
    assert other is not None and other.revision == EXTERNAL and other.revision_match is False


def test_models_without_published_scores_have_no_reference() -> None:
    assert reference_for("gpt2") is None
    no_scores = shipped_rows("AITeamVN/Vietnamese_Embedding")
    assert no_scores and all(not row[t] for row in no_scores for t in TASKS)  # a row, but no task score
    assert reference_for("AITeamVN/Vietnamese_Embedding") is None


def test_the_table_is_read_once_and_keeps_every_scored_row() -> None:
    assert load_table() is load_table()
    with open(MTEB_SCORES, encoding="utf-8", newline="") as fh:
        scored = [row for row in csv.DictReader(fh) if any(row[t] for t in TASKS)]
    assert sum(len(rows) for rows in load_table().values()) == len(scored)
    assert {(r.model_id, r.revision) for rows in load_table().values() for r in rows} == {
        (row["model"], row["revision"]) for row in scored
    }


def test_row_choice_order_match_then_msmarco_then_task_count_then_per_revision() -> None:
    lines = table_text(
        {"model": "a/m", "revision": EXTERNAL, "ArguAna": "0.5", "NQ": "0.4", "SciFact": "0.3"},
        {"model": "a/m", "revision": "r1", "ArguAna": "0.5", "NQ": "0.4", "SciFact": "0.3"},
        {"model": "a/m", "revision": "r2", "MSMARCO": "0.2"},
        {"model": "a/m", "revision": "r3", "ArguAna": "0.1"},
        {"model": "b/m", "revision": "r9", "max_tokens": "inf", "n_parameters": "1000"},
    )
    table = parse_rows(lines)
    assert [r.revision for r in table["a/m"]] == [EXTERNAL, "r1", "r2", "r3"]
    assert "b/m" not in table  # no task score: not a reference
    assert choose(table["a/m"]).revision == "r2"  # has MS MARCO
    assert choose(table["a/m"], "R3").revision == "r3"  # a revision match beats everything (case-insensitive)
    without_msmarco = [r for r in table["a/m"] if r.revision != "r2"]
    assert choose(without_msmarco).revision == "r1"  # most tasks; a per-revision row over external on a tie
    assert choose([]) is None


def test_bulk_lookup_leaves_out_models_without_scores() -> None:
    found = references_for([(BGE, None), ("gpt2", None), ("sentence-transformers/all-MiniLM-L6-v2", None)])
    assert set(found) == {BGE, "sentence-transformers/all-MiniLM-L6-v2"}
    found[BGE + "@rev"] = reference_for(BGE, BGE_REVISION)  # a row without MS MARCO: no sort key
    assert published_retrieval_scores(found) == {
        BGE: float(next(r for r in shipped_rows(BGE) if r["revision"] == EXTERNAL)[MSMARCO]),
        "sentence-transformers/all-MiniLM-L6-v2": float(
            shipped_rows("sentence-transformers/all-MiniLM-L6-v2")[0][MSMARCO]
        ),
    }


def test_store_lookup_matches_the_stored_sha_as_revision(db_path: str) -> None:
    add_candidates(
        db_path,
        [
            {"model_id": BGE, "sha": BGE_REVISION},
            {"model_id": "sentence-transformers/all-MiniLM-L6-v2"},
            {"model_id": "acme/unscored"},
        ],
    )
    found = references_for_models(
        connect(db_path), [BGE, "sentence-transformers/all-MiniLM-L6-v2", "acme/unscored"]
    )
    assert set(found) == {BGE, "sentence-transformers/all-MiniLM-L6-v2"}
    assert found[BGE].revision == BGE_REVISION and found[BGE].revision_match is True
    assert found["sentence-transformers/all-MiniLM-L6-v2"].revision_match is None  # no sha stored


@pytest.mark.parametrize(
    ("measured", "published", "pairs"),
    [
        ({"a": 0.6, "b": 0.5}, {"a": 0.4, "b": 0.3}, []),
        ({"a": 0.6, "b": 0.5}, {"a": 0.3, "b": 0.4}, [("a", "b")]),
        ({"a": 0.5, "b": 0.6}, {"a": 0.4, "b": 0.3}, [("b", "a")]),
        ({"a": 0.6, "b": 0.6}, {"a": 0.3, "b": 0.4}, []),  # a tie is not a disagreement
        ({"a": 0.6, "b": 0.5, "c": 0.1}, {"a": 0.3, "b": 0.4}, [("a", "b")]),  # c has no published score
    ],
)
def test_discordant_pairs(
    measured: dict[str, float], published: dict[str, float], pairs: list[tuple[str, str]]
) -> None:
    assert discordant_pairs(measured, published) == pairs


def test_disagreement_notice_names_the_pair_both_numbers_and_the_sample() -> None:
    assert disagreement_notice({"a": 0.6, "b": 0.5}, {"a": 0.4, "b": 0.3}) is None
    notice = disagreement_notice({"x/one": 0.61, "x/two": 0.55}, {"x/one": 0.36, "x/two": 0.41}, queries=200)
    assert notice is not None
    assert "x/one is ahead of x/two in our runs (0.610 vs 0.550)" in notice
    assert "behind it in MTEB MSMARCO (0.360 vs 0.410)" in notice
    assert "200 MS MARCO queries" in notice and "not the values" in notice
