"""The refinement router against the inference stand-in, through the real InferenceClient.

Budget, deadline, limits (one and two processes), cooldowns (429 / 402 / 503), no key, token hygiene,
call log. Timings are not asserted except the budget contract itself (``within_budget``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hfops.config import Settings, load_settings
from hfops.refine import RefineInputError, calllog, refine, refine_detailed
from hfops.refine.fallback import SYSTEM_PROMPT
from hfops.refine.limits import active_cooldown, clear_cooldown, limiter_path, limiter_state
from hfops.store import connect, rows
from tests.processes import free_port
from tests.standins.inference import InferenceStandIn

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("warm_local_refiner")]

TOKEN = "hf_test_SECRET_refine_token_0123456789"
LOW_CONFIDENCE_QUERY = "best pizza near me"  # far from the bank: local confidence is low
CONFIDENT_QUERY = "hey can you tell me how long is the rhine please"  # cleaned to a known question
DEADLINE = {"refine__budget_ms": 800, "refine__fallback_deadline_ms": 500}


@pytest.fixture(autouse=True)
def fresh_standin(standin: InferenceStandIn) -> InferenceStandIn:
    standin.behaviour, standin.retry_after, standin.reply = "fast", "60", None
    standin.requests.clear()
    return standin


@pytest.fixture
def with_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("HUGGINGFACE_API_KEY", TOKEN)
    return TOKEN


def make_settings(db_path: str, url: str, **overrides: object) -> Settings:
    values = {
        "store.path": db_path,
        "inference.base_url": url,
        "refine.local_threshold": 1.01,  # always consult HF unless a test says otherwise
        "refine.per_minute": 1000,
        "refine.per_hour": 10000,
        # Generous deadline: tests of other behaviour must not flake on a busy machine. Tests of the
        # deadline itself pass DEADLINE (the shipped 800/500 ms).
        "refine.budget_ms": 3000,
        "refine.fallback_deadline_ms": 2000,
    }
    values.update({k.replace("__", "."): v for k, v in overrides.items()})
    return load_settings(None, **values)


def test_fast_fallback_answers_through_the_real_client(
    db_path: str, standin: InferenceStandIn, with_key: str
) -> None:
    settings = make_settings(db_path, standin.url)
    result = refine("um what is np complete??", settings)
    assert result.source == "hf" and result.bypass_reason is None
    assert result.model == settings.inference.model
    assert result.refined and len(result.suggestions) <= 3 and 0 <= result.confidence <= 1
    assert result.within_budget and result.budget_ms == 3000
    assert standin.count == 1
    request = standin.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert request["body"]["model"] == settings.inference.model
    assert request["body"]["messages"][0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert request["body"]["messages"][1] == {"role": "user", "content": "um what is np complete??"}


def test_configured_refine_model_is_used(db_path: str, standin: InferenceStandIn, with_key: str) -> None:
    result = refine(
        LOW_CONFIDENCE_QUERY, make_settings(db_path, standin.url, refine__model="org/tiny-instruct")
    )
    assert result.model == "org/tiny-instruct"
    assert standin.requests[0]["body"]["model"] == "org/tiny-instruct"


def test_no_key_never_calls_the_server(db_path: str, standin: InferenceStandIn) -> None:
    settings = make_settings(db_path, standin.url)
    for query in (LOW_CONFIDENCE_QUERY, "um what is np complete??", "x"):
        result = refine(query, settings, force_fallback=True)
        assert result.source == "local" and result.bypass_reason == "no_key"
    assert standin.count == 0


def test_confident_local_result_is_returned_without_fallback(
    db_path: str, standin: InferenceStandIn, with_key: str
) -> None:
    settings = make_settings(db_path, standin.url, refine__local_threshold=0.75)
    result = refine(CONFIDENT_QUERY, settings)
    assert result.source == "local" and result.bypass_reason is None and result.confidence >= 0.75
    assert result.refined == "How long is the Rhine?"
    assert standin.count == 0
    low = refine(LOW_CONFIDENCE_QUERY, settings)
    assert low.source == "hf" and standin.count == 1


def test_disabled_by_config_or_caller(db_path: str, standin: InferenceStandIn, with_key: str) -> None:
    off = make_settings(db_path, standin.url, refine__enabled=False)
    assert refine(LOW_CONFIDENCE_QUERY, off).bypass_reason == "disabled"
    on = make_settings(db_path, standin.url)
    assert refine(LOW_CONFIDENCE_QUERY, on, fallback_allowed=False).bypass_reason == "disabled"
    assert standin.count == 0


@pytest.mark.parametrize(
    ("behaviour", "reason"),
    [
        ("hanging", "timeout"),
        ("rate_limited", "rate_limited"),
        ("unavailable", "http_error"),
        ("credits", "credits_exhausted"),
        ("invalid_json", "invalid_output"),
        ("garbage", "invalid_output"),
    ],
)
def test_failing_fallback_returns_the_local_result_within_budget(
    db_path: str, standin: InferenceStandIn, with_key: str, behaviour: str, reason: str
) -> None:
    standin.behaviour = behaviour
    # The shipped deadline for the hanging server (the deadline is what this case is about); the others are
    # about how each failure is classified, on a budget a busy machine cannot miss.
    settings = make_settings(db_path, standin.url, **(DEADLINE if behaviour == "hanging" else {}))
    outcome = refine_detailed("um what is np complete??", settings)
    result = outcome.result
    assert result.source == "local" and result.bypass_reason == reason
    assert result.refined == outcome.local.refined == "What is NP complete?"
    assert result.model == outcome.local.model
    assert result.within_budget  # the budget contract, as the result reports it
    assert standin.count == 1


def test_hanging_server_does_not_hold_the_caller(
    db_path: str, standin: InferenceStandIn, with_key: str
) -> None:
    standin.behaviour = "hanging"  # answers after 5 s
    settings = make_settings(db_path, standin.url, **DEADLINE)
    started = time.monotonic()
    result = refine(LOW_CONFIDENCE_QUERY, settings)
    wall_ms = (time.monotonic() - started) * 1000
    assert result.bypass_reason == "timeout"
    assert result.within_budget and wall_ms < 5000  # returned before the server's 5 s answer


def test_slow_server_answers_or_times_out_within_budget(
    db_path: str, standin: InferenceStandIn, with_key: str
) -> None:
    standin.behaviour = "slow"  # 400 ms, inside the 500 ms fallback deadline
    result = refine(LOW_CONFIDENCE_QUERY, make_settings(db_path, standin.url, **DEADLINE))
    assert (result.source, result.bypass_reason) in {("hf", None), ("local", "timeout")}
    assert result.within_budget


def test_small_budget_caps_the_fallback_wait(db_path: str, standin: InferenceStandIn, with_key: str) -> None:
    standin.behaviour = "hanging"
    settings = make_settings(db_path, standin.url, refine__budget_ms=300, refine__fallback_deadline_ms=300)
    result = refine(LOW_CONFIDENCE_QUERY, settings)
    assert result.bypass_reason == "timeout" and result.budget_ms == 300 and result.within_budget


def test_no_budget_left_skips_the_request(db_path: str, standin: InferenceStandIn, with_key: str) -> None:
    result = refine(
        LOW_CONFIDENCE_QUERY,
        make_settings(db_path, standin.url, refine__budget_ms=60, refine__fallback_deadline_ms=60),
    )
    assert result.bypass_reason == "timeout"
    assert standin.count == 0


def test_connection_refused_is_an_http_error(db_path: str, with_key: str) -> None:
    # not a deadline test: the generous default, so a busy machine cannot turn the refusal into a timeout
    settings = make_settings(db_path, f"http://127.0.0.1:{free_port()}")
    result = refine(LOW_CONFIDENCE_QUERY, settings)
    assert result.source == "local" and result.bypass_reason == "http_error"


def test_429_cooldown_is_honoured_then_lifted(db_path: str, standin: InferenceStandIn, with_key: str) -> None:
    standin.behaviour, standin.retry_after = "rate_limited", "1"
    settings = make_settings(db_path, standin.url)
    assert refine(LOW_CONFIDENCE_QUERY, settings).bypass_reason == "rate_limited"
    state = limiter_state(settings)
    assert state["cooldown_reason"] == "rate_limited" and state["cooldown_until"]
    assert refine(LOW_CONFIDENCE_QUERY, settings).bypass_reason == "cooldown"
    assert standin.count == 1  # the cooldown kept the second call away from the server
    deadline = time.monotonic() + 10
    while active_cooldown(db_path) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert active_cooldown(db_path) is None
    standin.behaviour = "fast"
    assert refine(LOW_CONFIDENCE_QUERY, settings).source == "hf"
    assert standin.count == 2


def test_429_without_retry_after_uses_the_configured_cooldown(
    db_path: str, standin: InferenceStandIn, with_key: str
) -> None:
    standin.behaviour, standin.retry_after = "rate_limited", ""
    settings = make_settings(db_path, standin.url, refine__cooldown_seconds=30.0)
    refine(LOW_CONFIDENCE_QUERY, settings)
    cooldown = active_cooldown(db_path)
    assert cooldown is not None and 20 < cooldown.remaining_seconds <= 30


def test_402_opens_a_long_cooldown_with_a_warning(
    db_path: str, standin: InferenceStandIn, with_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    standin.behaviour = "credits"
    settings = make_settings(db_path, standin.url)
    with caplog.at_level(logging.WARNING):
        assert refine(LOW_CONFIDENCE_QUERY, settings).bypass_reason == "credits_exhausted"
    assert any("credits exhausted" in r.getMessage() for r in caplog.records)
    state = limiter_state(settings)
    assert state["credits_exhausted"] and state["cooldown_seconds_left"] > 3000
    standin.behaviour = "fast"
    assert refine(LOW_CONFIDENCE_QUERY, settings).bypass_reason == "cooldown"
    assert standin.count == 1


def test_503_is_an_error_not_a_rate_limit(db_path: str, standin: InferenceStandIn, with_key: str) -> None:
    standin.behaviour = "unavailable"
    settings = make_settings(db_path, standin.url)
    assert refine(LOW_CONFIDENCE_QUERY, settings).bypass_reason == "http_error"
    assert active_cooldown(db_path) is None
    standin.behaviour = "fast"
    assert refine(LOW_CONFIDENCE_QUERY, settings).source == "hf"


def test_per_minute_limit_in_one_process(db_path: str, standin: InferenceStandIn, with_key: str) -> None:
    settings = make_settings(db_path, standin.url, refine__per_minute=3, refine__per_hour=100)
    reasons = [refine(LOW_CONFIDENCE_QUERY, settings).bypass_reason for _ in range(5)]
    assert reasons == [None, None, None, "rate_limited", "rate_limited"]
    assert standin.count == 3
    state = limiter_state(settings)
    assert state["left_minute"] == 0 and state["left_hour"] == 97


def test_unchanged_hf_reply_gets_no_confidence_reward(
    db_path: str, standin: InferenceStandIn, with_key: str
) -> None:
    standin.reply = json.dumps(
        {"refined": "Best pizza near me", "suggestions": [], "intent": "search", "confidence": 0.99}
    )
    result = refine(LOW_CONFIDENCE_QUERY, make_settings(db_path, standin.url))
    assert result.source == "hf" and result.confidence <= 0.5


def test_bad_queries_are_rejected(db_path: str, standin: InferenceStandIn) -> None:
    settings = make_settings(db_path, standin.url)
    for bad in ("", "   ", "x" * 2001):
        with pytest.raises(RefineInputError):
            refine(bad, settings)


def test_every_call_is_logged_with_a_query_hash(
    db_path: str, standin: InferenceStandIn, with_key: str
) -> None:
    settings = make_settings(db_path, standin.url)
    refine(LOW_CONFIDENCE_QUERY, settings, caller="test")
    standin.behaviour = "unavailable"
    refine(LOW_CONFIDENCE_QUERY, settings, caller="test")
    refine(LOW_CONFIDENCE_QUERY, settings, fallback_allowed=False, caller="test")
    assert calllog.flush()
    logged = list(reversed(calllog.recent_calls(db_path)))
    assert [(r["source"], r["outcome"], r["bypass_reason"], r["hf_requested"]) for r in logged] == [
        ("hf", "ok", None, 1),
        ("local", "http_error", "http_error", 1),
        ("local", "skipped", "disabled", 0),
    ]
    assert {r["query_hash"] for r in logged} == {hashlib.sha256(LOW_CONFIDENCE_QUERY.encode()).hexdigest()}
    assert all(r["latency_ms"] > 0 and r["budget_ms"] == 3000 and r["caller"] == "test" for r in logged)
    assert logged[0]["hf_latency_ms"] > 0 and logged[1]["status_code"] == 503
    text = json.dumps(rows(connect(db_path), "SELECT * FROM refine_calls"))
    assert "pizza" not in text  # the query text itself is never stored
    assert calllog.call_counts(db_path)["by_outcome"] == {"ok": 1, "http_error": 1}


def test_token_never_in_logs_db_or_results(
    db_path: str, standin: InferenceStandIn, with_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(db_path, standin.url)
    results = []
    with caplog.at_level(logging.DEBUG):
        for behaviour in (
            "fast",
            "unavailable",
            "invalid_json",
            "garbage",
            "hanging",
            "credits",
            "rate_limited",
        ):
            standin.behaviour = behaviour
            clear_cooldown(db_path)  # keep every behaviour reaching the server
            results.append(refine(f"query {behaviour}", settings).to_dict())
        assert calllog.flush()
    assert all(r["headers"]["authorization"] == f"Bearer {TOKEN}" for r in standin.requests)  # it was used...
    db = connect(db_path)
    dump = json.dumps([rows(db, f"SELECT * FROM {t}") for t in db.table_names()], default=str)
    assert TOKEN not in dump  # ...but never stored,
    assert TOKEN.encode() not in limiter_path(settings).read_bytes()
    assert TOKEN not in json.dumps(results)  # returned,
    assert TOKEN not in caplog.text  # or logged
    assert TOKEN not in json.dumps(limiter_state(settings))


def test_cooldown_opened_by_another_process_is_respected(
    db_path: str, standin: InferenceStandIn, with_key: str
) -> None:
    settings = make_settings(db_path, standin.url)
    code = f"from hfops.refine.limits import open_cooldown; open_cooldown({db_path!r}, 'rate_limited', 30)"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert refine(LOW_CONFIDENCE_QUERY, settings).bypass_reason == "cooldown"
    assert standin.count == 0


WORKER = textwrap.dedent(
    """
    import json, sys
    from hfops.config import load_settings
    from hfops.refine import calllog, refine, warm_up

    settings = load_settings(sys.argv[1])
    warm_up(settings)
    print("ready", flush=True)
    sys.stdin.readline()  # start together
    reasons = [
        refine("best pizza near me", settings, caller="test").bypass_reason
        for _ in range(int(sys.argv[2]))
    ]
    calllog.flush()
    print(json.dumps(reasons), flush=True)
    """
)


def test_limits_hold_across_two_processes(tmp_path: Path, db_path: str, standin: InferenceStandIn) -> None:
    config = tmp_path / "hfops.toml"
    config.write_text(
        f'[store]\npath = "{db_path}"\n[inference]\nbase_url = "{standin.url}"\n'
        "[refine]\nper_minute = 4\nper_hour = 100\nlocal_threshold = 1.01\nbudget_ms = 3000\n"
        "fallback_deadline_ms = 2000\n",
        encoding="utf-8",
    )
    script = tmp_path / "worker.py"
    script.write_text(WORKER, encoding="utf-8")
    env = {**_clean_env(), "HUGGINGFACE_API_KEY": TOKEN, "HF_HUB_DISABLE_TELEMETRY": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(config), "6"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tmp_path,
        )
        for _ in range(2)
    ]
    try:
        for proc in procs:
            assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outputs = [proc.communicate(timeout=120) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    reasons = [reason for out, _ in outputs for reason in json.loads(out.strip().splitlines()[-1])]
    assert standin.count == 4  # 12 calls from two processes, 4 permits per minute in total
    assert reasons.count("rate_limited") == 8
    assert set(reasons) <= {None, "timeout", "rate_limited"}  # a permitted call may still miss its deadline
    assert all(TOKEN not in out + err for out, err in outputs)
    logged = rows(connect(db_path), "SELECT hf_requested, COUNT(*) n FROM refine_calls GROUP BY hf_requested")
    assert {r["hf_requested"]: r["n"] for r in logged} == {0: 8, 1: 4}


def _clean_env() -> dict[str, str]:
    import os

    return {
        k: v for k, v in os.environ.items() if k not in ("HUGGINGFACE_API_KEY", "HF_TOKEN", "HF_HUB_OFFLINE")
    }


def test_a_fallback_is_an_inference_request_whatever_ledger_the_process_installed(
    db_path: str, tmp_path: Path, standin: InferenceStandIn, with_key: str
) -> None:
    # The process's ledger belongs to another store whose settings name another Inference base: there the
    # stand-in's origin is a Hub server, with a window exhausted for a minute. A refine call with its own
    # base is still an Inference request: never paced by that window, answered within its budget.
    from hfops import ledger
    from hfops.ledger import hub_window
    from hfops.ledger.install import origin_key

    other = str(tmp_path / "other.db")
    ledger.install(other, load_settings(None, **{"store.path": other}))
    hub_window.observe_exhausted(connect(other), origin_key(standin.url), "pages", 60, time.time())
    settings = make_settings(db_path, standin.url, **DEADLINE)
    result = refine(LOW_CONFIDENCE_QUERY, settings)
    assert result.source == "hf" and result.bypass_reason is None and result.within_budget
    assert standin.count == 1
    assert hub_window.recent_waits(connect(other)) == []  # no wait was taken (nor recorded)
