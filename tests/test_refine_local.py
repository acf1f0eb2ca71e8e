"""The local refiner with the packaged MiniLM model and the shipped question bank (loaded once per module)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import hfops.refine.local as local_module
from hfops.refine.bank import (
    META_FILE,
    SOURCE_FILE,
    collect_questions,
    load_bank,
    load_index,
    load_samples,
    source_dir,
)
from hfops.refine.local import RULES_ONLY_MODEL, LocalRefiner, get_local_refiner
from hfops.refine.result import UNCHANGED_CONFIDENCE_CAP, RefineInputError, canonical

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def refiner() -> LocalRefiner:
    return get_local_refiner().load(1)


def test_shipped_bank_and_index_match() -> None:
    entries = load_bank()
    assert len(entries) > 1000
    assert {e.source for e in entries} == {"squad_v2", "ms_marco"}
    assert len({canonical(e.text) for e in entries}) == len(entries)  # de-duplicated
    matrix = load_index(entries)
    assert matrix is not None and matrix.shape == (len(entries), 384)
    assert np.allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-2)
    meta = json.loads(META_FILE.read_text())
    assert meta["count"] == len(entries)
    assert SOURCE_FILE.is_file() and "CC BY-SA 4.0" in SOURCE_FILE.read_text()


def test_bank_is_rebuilt_from_the_shipped_data_the_same_way() -> None:
    assert [e.text for e in collect_questions(source_dir())] == [e.text for e in load_bank()]


def test_stale_index_is_ignored() -> None:
    entries = load_bank()
    assert load_index(entries[:-1]) is None


def test_process_loads_the_model_once(refiner: LocalRefiner) -> None:
    first = refiner.load_seconds
    assert get_local_refiner() is refiner and get_local_refiner().load().load_seconds == first
    assert refiner.load_error is None and refiner.model_name == "local:all-MiniLM-L6-v2+rules"


def test_clean_up_and_suggestions(refiner: LocalRefiner) -> None:
    result = refiner.refine("um so like what country is normandy in??", 800).result
    assert result.refined == "What country is Normandy in?"
    assert result.intent == "location" and result.source == "local"
    assert 1 <= len(result.suggestions) <= 3
    bank_texts = {canonical(e.text) for e in load_bank()}
    assert all(canonical(s) in bank_texts for s in result.suggestions)
    assert "In what country is Normandy located?" in result.suggestions
    assert canonical(result.refined) not in {canonical(s) for s in result.suggestions}


def test_did_you_mean_replaces_a_near_identical_known_question(refiner: LocalRefiner) -> None:
    result = refiner.refine("hey can you tell me how long is the rhine please").result
    assert result.refined == "How long is the Rhine?" and result.confidence >= 0.75


def test_no_suggestions_far_from_the_bank(refiner: LocalRefiner) -> None:
    run = refiner.refine("best pizza near me")
    assert run.result.suggestions == [] and run.result.confidence < 0.5


def test_confidence_does_not_reward_leaving_the_query_unchanged(refiner: LocalRefiner) -> None:
    unchanged = refiner.refine("Where does the Rhine begin?").result  # already a clean bank question
    improved = refiner.refine("um so where does the rhine begin??").result
    assert unchanged.refined == improved.refined == "Where does the Rhine begin?"
    assert unchanged.confidence <= UNCHANGED_CONFIDENCE_CAP < improved.confidence


def test_guided_samples_have_the_expected_intents(refiner: LocalRefiner) -> None:
    samples = load_samples()
    assert len(samples) >= 20
    for sample in samples:
        result = refiner.refine(sample["query"]).result
        assert result.intent == sample["expected_intent"], sample
        assert len(result.suggestions) <= 3 and 0 <= result.confidence <= 1


def test_bad_query_is_rejected(refiner: LocalRefiner) -> None:
    with pytest.raises(RefineInputError):
        refiner.refine(" ")


def test_without_the_model_the_refiner_degrades_to_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise OSError("model files missing")

    monkeypatch.setattr(local_module, "load_embedding_model", broken)
    degraded = LocalRefiner().load()
    result = degraded.refine("um what is np complete??").result
    assert degraded.load_error and result.model == RULES_ONLY_MODEL
    assert result.refined == "What is np complete?" and result.suggestions == [] and result.intent == "definition"
