"""The monthly Inference allowance is enforced where requests start: the refine fallback bypasses with
``budget_exhausted`` (nothing sent) and an eval that needs the API refuses to start, both from the shared
ledger in the store."""

from __future__ import annotations

import pytest

from hfops.config import Settings, load_settings
from hfops.errors import EvalError
from hfops.evals import runs
from hfops.ledger import inference_usage
from hfops.refine.router import refine
from hfops.store import get_db
from tests.standins.inference import InferenceStandIn


def spent_settings(db_path: str, base_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings with an allowance of 3 requests a month, all 3 already recorded this month."""
    monkeypatch.setenv("HUGGINGFACE_API_KEY", "hf_" + "k" * 34)
    settings = load_settings(
        None, **{"store.path": db_path, "inference.monthly_requests": 3, "inference.base_url": base_url}
    )
    for _ in range(3):
        inference_usage.record_inference(get_db(db_path), "some/model", base_url)
    return settings


def test_refine_fallback_bypasses_when_the_allowance_is_spent(
    db_path: str, standin: InferenceStandIn, warm_local_refiner: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = spent_settings(db_path, standin.url, monkeypatch)
    settings.refine.local_threshold = 2.0  # the local answer is never confident enough: it wants the fallback
    sent = len(standin.requests)
    result = refine("what is np complete", settings)
    assert result.bypass_reason == "budget_exhausted" and result.source == "local"
    assert len(standin.requests) == sent  # nothing reached the Inference API


def test_refine_fallback_is_used_while_the_allowance_lasts(
    db_path: str, standin: InferenceStandIn, warm_local_refiner: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = spent_settings(db_path, standin.url, monkeypatch)
    settings.inference.monthly_requests = 10
    settings.refine.local_threshold = 2.0
    result = refine("what is np complete", settings)
    assert result.bypass_reason != "budget_exhausted"


def test_eval_on_the_api_refuses_to_start(
    db_path: str, standin: InferenceStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = spent_settings(db_path, standin.url, monkeypatch)
    with pytest.raises(EvalError, match="eval not started"):
        runs.submit_run(db_path, "acme/embed", "retrieval", "ms_marco", 3, settings, enqueue=False)
