"""Pure parts of refinement.

Clean-up, intents, result rules, strict parsing of the model reply, Retry-After.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from hfops.refine.fallback import InvalidOutput, parse_reply, safe_error
from hfops.refine.limits import parse_retry_after
from hfops.refine.result import (
    UNCHANGED_CONFIDENCE_CAP,
    RefineInputError,
    RefineResult,
    canonical,
    fair_confidence,
    is_unchanged,
    validate_query,
)
from hfops.refine.text import INTENTS, apply_proper_case, clean_query, detect_intent, proper_case_map


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("um   so like what is the capital of normandy??!!", "What is the capital of normandy?"),
        ("hey can you tell me how many people live in basel please", "How many people live in basel?"),
        ("WHERE IS THE RHINE", "Where is the rhine?"),
        ("i wonder what is  a turing machine...", "What is a turing machine?"),
        ("rhine  length", "Rhine length"),
        ("uh what causes high blood pressure thx", "What causes high blood pressure?"),
        ("how do i cook rice", "How do I cook rice?"),
        ("tabs\tand\nnewlines ,, here", "Tabs and newlines, here"),
        ("how do i please reset my password", "How do I reset my password?"),
        ("what is np complete please thank you", "What is np complete?"),
        ("what is np complete pls thx :)", "What is np complete?"),
        ("what is x (please)", "What is x?"),
        ("how to please a customer", "How to please a customer?"),
        ("what\u202eis\u200b np", "What is np?"),
        ("pass\u00adword\u2060 reset\ufeff", "Password reset"),
        ("nul\x00in\x1bthe middle", "Nul in the middle"),
    ],
)
def test_clean_query(raw: str, expected: str) -> None:
    assert clean_query(raw) == expected


def test_clean_query_never_empties_a_query() -> None:
    assert clean_query("um") == "um"
    assert clean_query("  ???  ") == "???"
    assert clean_query("please") == "please"


@pytest.mark.parametrize(
    ("query", "intent"),
    [
        ("What is a Turing machine?", "definition"),
        ("How do I prove a problem is NP hard?", "how_to"),
        ("How many calories in a banana?", "numeric"),
        ("When did the Normans conquer England?", "time"),
        ("What year was the first crusade?", "time"),
        ("Who invented the printing press?", "person"),
        ("Where does the Rhine start?", "location"),
        ("What is the capital of Australia?", "location"),
        ("Why is the sky blue?", "reason"),
        ("P vs NP", "comparison"),
        ("Difference between a virus and bacteria", "comparison"),
        ("Can dogs eat grapes?", "yes_no"),
        ("Which element has the symbol Fe?", "entity"),
        ("best pizza near me", "search"),
    ],
)
def test_detect_intent(query: str, intent: str) -> None:
    assert detect_intent(query) == intent
    assert intent in INTENTS


def test_proper_case_from_corpus() -> None:
    corpus = [
        "Where is the Rhine?",
        "How long is the Rhine?",
        "Is NP in P?",
        "What is NP?",
        "The river is long",
    ]
    mapping = proper_case_map(corpus)
    assert mapping["rhine"] == "Rhine" and mapping["np"] == "NP"
    assert "river" not in mapping  # also written in lower case
    assert apply_proper_case("how long is the rhine, np?", mapping) == "how long is the Rhine, NP?"


def test_validate_query() -> None:
    assert validate_query("ok") == "ok"
    with pytest.raises(RefineInputError, match="empty"):
        validate_query("   ")
    with pytest.raises(RefineInputError, match="too long"):
        validate_query("x" * 2001)
    with pytest.raises(RefineInputError, match="string"):
        validate_query(42)
    validate_query("x" * 2000)


def test_confidence_does_not_reward_an_unchanged_query() -> None:
    assert canonical("What is NP?") == canonical("what is np") == "what is np"
    assert is_unchanged("what is np", "What is NP?")
    assert fair_confidence("what is np", "What is NP?", 0.99) == UNCHANGED_CONFIDENCE_CAP
    assert fair_confidence("um what is np", "What is NP?", 0.99) == 0.99
    assert fair_confidence("q", "r", 7) == 1.0 and fair_confidence("q", "r", -1) == 0.0


def test_result_shape_is_exact() -> None:
    keys = list(RefineResult(query="q", refined="Q").to_dict())
    assert keys == [
        "query",
        "refined",
        "suggestions",
        "intent",
        "confidence",
        "source",
        "model",
        "latency_ms",
        "budget_ms",
        "within_budget",
        "bypass_reason",
    ]


def _reply(**fields: object) -> str:
    base = {
        "refined": "What is NP?",
        "suggestions": ["What is P?"],
        "intent": "definition",
        "confidence": 0.9,
    }
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not ...})


def test_parse_reply_accepts_the_asked_shape() -> None:
    parsed = parse_reply("um what np", _reply(suggestions=["a", "A", "b", "c", "d"], intent="Yes No"))
    assert parsed == {
        "refined": "What is NP?",
        "suggestions": ["a", "b", "c"],
        "intent": "yes_no",
        "confidence": 0.9,
    }
    fenced = "```json\n" + _reply() + "\n```"
    assert parse_reply("um what np", fenced)["refined"] == "What is NP?"


def test_parse_reply_caps_confidence_of_an_unchanged_query() -> None:
    assert parse_reply("what is np", _reply(confidence=1.0))["confidence"] == UNCHANGED_CONFIDENCE_CAP


@pytest.mark.parametrize(
    "content",
    [
        None,
        "",
        "Sure! Here is the refined query: What is NP?",
        "[1, 2]",
        _reply(refined=""),
        _reply(refined=5),
        _reply(refined=...),
        _reply(suggestions="What is P?"),
        _reply(suggestions=[1]),
        _reply(intent=""),
        _reply(intent="x" * 41),
        _reply(confidence="high"),
        _reply(confidence=True),
        _reply(confidence=1.5),
        _reply(confidence=...),
        '{"refined": "a"} trailing',
    ],
)
def test_parse_reply_rejects_anything_else(content: object) -> None:
    with pytest.raises(InvalidOutput):
        parse_reply("what np", content)


def test_parse_retry_after() -> None:
    assert parse_retry_after("7", 60) == 7
    assert parse_retry_after(None, 60) == 60
    assert parse_retry_after("soon", 60) == 60
    assert parse_retry_after("-3", 60) == 0
    assert parse_retry_after("999999999", 60) == 86_400
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    assert 100 <= parse_retry_after(later, 60) <= 121


def test_safe_error_scrubs_secrets_through_net_scrub(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (
        safe_error("401 for Bearer hf_SECRETtoken123\nnext", "hf_SECRETtoken123") == "401 for Bearer *** next"
    )
    assert safe_error("key=abcd-custom-key failed", "abcd-custom-key") == "key=*** failed"
    monkeypatch.setenv("HUGGINGFACE_API_KEY", "plain-secret-value")
    assert "plain-secret-value" not in safe_error("echo plain-secret-value", None)
    assert len(safe_error("x " * 500, None)) <= 200
