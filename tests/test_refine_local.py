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
    assert (
        result.refined == "What is np complete?"
        and result.suggestions == []
        and result.intent == "definition"
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("waht is teh captial of frnace", "What is the capital of France?"),
        (
            "whats the diffrence between a virus and bacteria",
            "Whats the difference between a virus and bacteria?",
        ),
        ("can you please tell me what is np complete please", "What is NP complete?"),
    ],
)
def test_spelling_is_corrected_with_the_shipped_dictionary(
    refiner: LocalRefiner, raw: str, expected: str
) -> None:
    assert refiner.refine(raw).result.refined == expected


def test_spelling_leaves_acronyms_model_names_and_bank_words_alone() -> None:
    from hfops.refine.spelling import get_speller

    speller = get_speller()
    assert speller is not None
    assert speller.correct("is tcp faster than udp") == "is tcp faster than udp"  # short: only letter swaps
    assert speller.correct("teh qwen2.5 vs gpt-4 TCP iPhone") == "the qwen2.5 vs gpt-4 TCP iPhone"
    assert speller.correct("Frnace, captial!") == "France, capital!"


def test_the_embedding_batcher_serves_concurrent_callers_in_few_passes() -> None:
    import threading

    from hfops.refine.local import EmbeddingBatcher

    passes: list[int] = []
    release = threading.Event()

    def compute(texts: list[str]) -> np.ndarray:
        passes.append(len(texts))
        release.wait(5)
        return np.asarray([[float(len(t))] for t in texts])

    batcher = EmbeddingBatcher(compute)
    results: dict[str, object] = {}

    def call(text: str, timeout: float | None) -> None:
        results[text] = batcher.submit(text, timeout)

    first = threading.Thread(target=call, args=("a", None))
    first.start()
    while not passes:  # the first pass is running (blocked): everyone else queues for the next one
        threading.Event().wait(0.01)
    late = threading.Thread(target=call, args=("gives up", 0.05))
    late.start()
    late.join()
    others = [threading.Thread(target=call, args=("x" * n, None)) for n in range(2, 12)]
    for thread in others:
        thread.start()
    threading.Event().wait(0.2)
    release.set()
    for thread in [first, *others]:
        thread.join()
    assert results["gives up"] is None  # its deadline passed: no answer, and its entry is skipped
    assert all(results["x" * n][0] == n for n in range(2, 12))  # type: ignore[index]
    assert passes[0] == 1 and sum(passes) == 11 and len(passes) < 11  # the waiting ones went together
