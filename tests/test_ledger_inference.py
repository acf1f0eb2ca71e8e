"""The monthly Inference ledger: real InferenceClient calls counted exactly, the allowance and the refine
reserve shared by processes, the month closed by a 402, month rollover, and no token in the store."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hfops import config, ledger
from hfops.errors import BackendError, EvalError
from hfops.ledger import inference_usage
from hfops.store import get_db
from tests.processes import free_port
from tests.standins.ratelimited import RateLimitedHub

ROOT = Path(__file__).resolve().parent.parent
DECEMBER = datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)
JANUARY = datetime(2027, 1, 1, 0, 0, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def default_session() -> Iterator[None]:
    ledger.uninstall()
    yield
    inference_usage.flush()
    ledger.uninstall()


@pytest.fixture
def inference() -> Iterator[RateLimitedHub]:
    with RateLimitedHub() as server:
        yield server


def _settings(db_path: str, base_url: str, **inference_fields: Any) -> config.Settings:
    settings = config.load_settings(None, **{"inference.base_url": base_url, "store.path": db_path})
    for name, value in inference_fields.items():
        setattr(settings.inference, name, value)
    return settings


def _chat(base_url: str, text: str, model: str, max_tokens: int = 64, token: str | None = None) -> Any:
    from huggingface_hub import InferenceClient

    client = InferenceClient(base_url=base_url, token=token, timeout=10)
    return client.chat_completion([{"role": "user", "content": text}], model=model, max_tokens=max_tokens)


def test_usage_of_real_chat_completions_adds_up_exactly(db_path: str, inference: RateLimitedHub) -> None:
    ledger.install(db_path, _settings(db_path, inference.url))
    calls = [
        ("org/a", "what is a transformer", 64),
        ("org/b", "one", 3),
        ("org/a", "a b c d e f g h", 2),
        ("org/b", "how do embeddings work in practice", 64),
        ("org/a", "x", 64),
    ]
    for model, text, max_tokens in calls:
        reply = _chat(inference.url, text, model, max_tokens)
        assert reply.usage.prompt_tokens == len(text.split())
    assert inference_usage.flush()
    usage = inference_usage.month_summary(get_db(db_path))
    sent = inference.chat_log
    assert usage.requests == len(calls) == len(sent)
    assert usage.input_tokens == sum(c["usage"]["prompt_tokens"] for c in sent)
    assert usage.output_tokens == sum(c["usage"]["completion_tokens"] for c in sent)
    assert usage.failures == {}
    by_model = {m.model: m for m in usage.models}
    assert set(by_model) == {"org/a", "org/b"}
    for name, model in by_model.items():
        mine = [c["usage"] for c in sent if c["model"] == name]
        assert (model.requests, model.input_tokens, model.output_tokens) == (
            len(mine),
            sum(u["prompt_tokens"] for u in mine),
            sum(u["completion_tokens"] for u in mine),
        )
        assert model.base_url == inference.url


def test_a_call_with_its_own_base_url_is_an_inference_request_of_that_base(
    db_path: str, inference: RateLimitedHub
) -> None:
    # The process was installed with the default router; a job enqueued with another base calls it.
    from hfops.evals.backends.generators import ChatApiGenerator
    from hfops.ledger import hub_window

    ledger.install(db_path, _settings(db_path, "https://router.huggingface.co"))
    inference.behaviour = "rate_limited"  # a 429 with Retry-After: an Inference refusal, not a Hub window
    job_settings = _settings(db_path, inference.url)
    job_settings.eval.max_retries = 0
    with pytest.raises(BackendError, match="429"):
        ChatApiGenerator("org/a", job_settings).generate([{"role": "user", "content": "too many"}], 8)
    inference.behaviour = "ok"
    reply = ChatApiGenerator("org/a", job_settings).generate([{"role": "user", "content": "fine now"}], 8)
    assert reply
    assert hub_window.buckets(get_db(db_path)) == []  # never recorded (nor paced) as a Hub window
    assert inference_usage.flush()
    usage = inference_usage.month_summary(get_db(db_path))
    assert usage.requests == 2 and usage.failures == {"rate_limited": 1}
    assert [m.base_url for m in usage.models] == [inference.url]


def test_failures_are_counted_by_kind_and_a_402_closes_the_month(
    db_path: str, inference: RateLimitedHub
) -> None:
    from huggingface_hub.errors import HfHubHTTPError

    settings = _settings(db_path, inference.url)
    ledger.install(db_path, settings)
    db = get_db(db_path)
    _chat(inference.url, "fine", "org/a")
    inference.behaviour = "rate_limited"
    with pytest.raises(HfHubHTTPError) as limited:
        _chat(inference.url, "too many", "org/a")
    assert inference_usage.check_allowance(db, settings, "refine").allowed  # a 429 closes nothing
    inference.behaviour = "credits"
    with pytest.raises(HfHubHTTPError) as credits:
        _chat(inference.url, "no credits", "org/a")
    refused = _chat_refused(db_path, settings)
    assert (refused.allowed, refused.reason) == (False, "credits_exhausted")
    assert "402" in refused.message and "closed until 2" in refused.message

    # an answer was counted by the hook already; only failures without one are counted by the caller
    assert inference_usage.record_exception(db_path, "org/a", inference.url, limited.value) is None
    assert inference_usage.record_exception(db_path, "org/a", inference.url, credits.value) is None
    unreachable = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(Exception) as refused_connection:
        _chat(unreachable, "nobody there", "org/a")
    assert inference_usage.record_exception(db_path, "org/a", inference.url, refused_connection.value) == (
        "connection_error"
    )
    assert inference_usage.flush()
    usage = inference_usage.month_summary(db)
    assert usage.requests == 4
    assert usage.failures == {"rate_limited": 1, "credits_exhausted": 1, "connection_error": 1}
    assert usage.closure is not None and usage.closure.status_code == 402

    assert inference_usage.reopen_month(db)  # credits bought: an operator reopens
    assert inference_usage.check_allowance(db, settings, "eval").allowed


def _chat_refused(db_path: str, settings: config.Settings) -> inference_usage.Decision:
    return inference_usage.check_allowance(get_db(db_path), settings, "refine")


def test_a_402_only_closes_the_month_when_configured(db_path: str, inference: RateLimitedHub) -> None:
    from huggingface_hub.errors import HfHubHTTPError

    settings = _settings(db_path, inference.url, close_on_credits_exhausted=False)
    ledger.install(db_path, settings)
    inference.behaviour = "credits"
    with pytest.raises(HfHubHTTPError):
        _chat(inference.url, "no credits", "org/a")
    assert inference_usage.check_allowance(get_db(db_path), settings, "refine").allowed
    assert inference_usage.closure(get_db(db_path)) is None


def _chat_child(db_path: str, base_url: str, purpose: str, *extra: str) -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.ledger_clients",
            "chat",
            "--db",
            db_path,
            "--base-url",
            base_url,
            "--purpose",
            purpose,
            *extra,
        ],
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.xdist_group("ledger_processes")
def test_allowance_and_refine_reserve_hold_across_processes(db_path: str, inference: RateLimitedHub) -> None:
    limits = ("--monthly-requests", "10", "--refine-reserve", "0.3", "--max", "20")
    get_db(db_path)
    first_eval = _chat_child(db_path, inference.url, "eval", *limits)
    assert first_eval["sent"] == 7  # evals stop at 70 % of 10
    assert first_eval["refused"]["reason"] == "budget_exhausted"
    assert "7 of 10 requests" in first_eval["refused"]["message"]
    assert "kept for query refinement" in first_eval["refused"]["message"]
    second_eval = _chat_child(db_path, inference.url, "eval", *limits)
    assert second_eval["sent"] == 0 and second_eval["refused"]["reason"] == "budget_exhausted"
    refine = _chat_child(db_path, inference.url, "refine", *limits)
    assert refine["sent"] == 3 and refine["refused"]["reason"] == "budget_exhausted"
    assert len(inference.chat_log) == 10
    settings = _settings(db_path, inference.url, monthly_requests=10, refine_reserve=0.3)
    usage = inference_usage.month_summary(get_db(db_path))
    assert usage.requests == 10
    assert usage.input_tokens == sum(c["usage"]["prompt_tokens"] for c in inference.chat_log)
    with pytest.raises(EvalError, match="eval not started: monthly Inference allowance reached"):
        inference_usage.ensure_eval_allowed(get_db(db_path), settings)


def test_token_allowance_and_reserve(db_path: str) -> None:
    db = get_db(db_path)
    settings = _settings(db_path, "https://router.example", monthly_tokens=100, refine_reserve=0.2)
    for _ in range(3):
        inference_usage.record_inference(
            db, "m", "https://router.example", {"prompt_tokens": 20, "completion_tokens": 6}
        )
    assert inference_usage.check_allowance(db, settings, "eval").allowed  # 78 < 80
    inference_usage.record_inference(
        db, "m", "https://router.example", {"prompt_tokens": 2, "completion_tokens": 0}
    )
    eval_decision = inference_usage.check_allowance(db, settings, "eval")
    assert (eval_decision.allowed, eval_decision.reason, eval_decision.tokens_limit) == (
        False,
        "budget_exhausted",
        80,
    )
    assert inference_usage.check_allowance(db, settings, "refine").allowed  # the reserve: 80 < 100
    unlimited = _settings(db_path, "https://router.example")
    assert inference_usage.check_allowance(db, unlimited, "eval").allowed


def test_month_rollover_reopens_the_allowance_and_a_closed_month(
    db_path: str, inference: RateLimitedHub
) -> None:
    db = get_db(db_path)
    settings = _settings(db_path, inference.url, monthly_requests=2)
    for _ in range(2):
        inference_usage.record_inference(db, "m", inference.url, None, now=DECEMBER)
    inference_usage.close_month(db, "credits_exhausted", 402, inference.url, now=DECEMBER)
    december = inference_usage.check_allowance(db, settings, "refine", now=DECEMBER)
    assert (december.allowed, december.reason, december.resets_at) == (
        False,
        "credits_exhausted",
        "2027-01-01T00:00:00Z",
    )
    assert inference_usage.days_to_reset(DECEMBER) == pytest.approx(1 / 86_400)
    january = inference_usage.check_allowance(db, settings, "refine", now=JANUARY)
    assert january.allowed and january.requests_used == 0
    assert inference_usage.month_summary(db, JANUARY).requests == 0
    assert inference_usage.month_summary(db, DECEMBER).requests == 2

    # through the HTTP hook with an injected clock: each request lands in its clock's month
    clock = [DECEMBER.timestamp()]
    ledger.install(db_path, settings, clock=lambda: clock[0])
    _chat(inference.url, "late in december", "org/a")
    clock[0] = JANUARY.timestamp()
    _chat(inference.url, "new year", "org/a")
    assert inference_usage.flush()
    assert inference_usage.month_summary(db, DECEMBER).requests == 3
    assert inference_usage.month_summary(db, JANUARY).requests == 1


def test_no_token_ever_reaches_the_store(
    db_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError

    token = "hf_ledger" + secrets.token_hex(16)
    monkeypatch.setenv("HUGGINGFACE_API_KEY", token)
    with RateLimitedHub(quota=3, window=2, models=8, page_size=2) as hub, RateLimitedHub() as inference:
        settings = config.load_settings(
            None,
            **{
                "hub.endpoint": hub.url,
                "inference.base_url": f"http://u:{token}@127.0.0.1:" + inference.url.rsplit(":", 1)[1],
                "store.path": db_path,
            },
        )
        ledger.install(db_path, settings)
        assert len(list(HfApi(endpoint=hub.url, token=token).list_models())) == 8  # waits once at q=3
        hf_hub_download("org/repo", "a.txt", endpoint=hub.url, token=token, cache_dir=str(tmp_path / "c"))
        _chat(inference.url, "hello", "org/a", token=token)
        inference.behaviour = "credits"
        with pytest.raises(HfHubHTTPError):
            _chat(inference.url, "hello", "org/a", token=token)
        assert inference_usage.flush()
        assert f"Bearer {token}" in hub.authorizations and f"Bearer {token}" in inference.authorizations
    db = get_db(db_path)
    assert inference_usage.month_summary(db).requests == 2
    assert db.execute("SELECT COUNT(*) FROM hub_ratelimit_waits").fetchone()[0] >= 1
    stored = b"".join(p.read_bytes() for p in Path(db_path).parent.glob(Path(db_path).name + "*"))
    assert len(stored) > 0 and token.encode() not in stored


def test_the_model_is_read_from_the_body_or_the_path() -> None:
    base = "https://router.huggingface.co"
    assert (
        inference_usage.model_of_request(base, base + "/v1/chat/completions", b'{"model": "org/x"}')
        == "org/x"
    )
    assert (
        inference_usage.model_of_request(
            base, base + "/hf-inference/models/org/emb/pipeline/feature-extraction", b'{"inputs": "a"}'
        )
        == "org/emb"
    )
    assert inference_usage.clean_base_url("https://user:secret@host.example:8443/v1/?key=secret#x") == (
        "https://host.example:8443/v1"
    )
    with pytest.raises(ValueError):
        inference_usage.make_record("m", base, None, "exploded")


def _count_while_the_writer_commits(db_path: str, records: int = 300) -> list[int]:
    """Submit ``records`` queued inference records one by one; after each, the allowance check's count
    minus the records submitted so far (0 = every record counted exactly once)."""
    db = get_db(db_path)
    settings = _settings(db_path, "https://router.example", monthly_requests=10_000)
    errors = []
    for submitted in range(1, records + 1):
        record = inference_usage.make_record("m", "https://router.example", {"prompt_tokens": 1}, None, None)
        inference_usage.queue_record(db_path, record)  # as the HTTP hook does: the writer thread stores it
        errors.append(inference_usage.check_allowance(db, settings, "eval").requests_used - submitted)
    inference_usage.flush()
    return errors


def test_each_queued_record_counts_once_while_the_writer_commits(db_path: str) -> None:
    errors = _count_while_the_writer_commits(db_path)
    assert set(errors) == {0}, f"miscounted in {sum(e != 0 for e in errors)} of {len(errors)} checks"
