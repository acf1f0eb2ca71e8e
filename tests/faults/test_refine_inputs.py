"""Fault campaign, /refine inputs: every malformed body or hostile query gets a clear 4xx in one shape
(``error`` + ``detail``), and every accepted query gives a non-empty, bounded refinement.

Cases from issue 10 item 10 (NUL-only query, 2,000 x U+FDFA, 5,000-deep JSON, 405 without ``error``) and the
class around them: control, bidi, zero-width and private-use characters, lone surrogates, huge numbers,
NaN, duplicate fields, wrong or missing content type, empty and oversized bodies, arrays and scalars,
undecodable bytes, a BOM. Secrets echoed by the inference server never reach the call log, logs or answers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from hfops.api import MAX_BODY_BYTES, create_app
from hfops.config import Settings, load_settings
from hfops.refine import calllog
from hfops.refine.result import MAX_QUERY_CHARS, RefineInputError, is_invisible, validate_query
from hfops.refine.router import refine
from hfops.refine.text import clean_query
from hfops.store import connect, rows
from tests.standins.inference import InferenceStandIn

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("warm_local_refiner")]

TOKEN = "hf_faultSECRETtoken0123456789"
JSON = {"content-type": "application/json"}


def make_settings(db_path: str, url: str = "http://127.0.0.1:9") -> Settings:
    return load_settings(
        None,
        **{
            "store.path": db_path,
            "inference.base_url": url,
            "refine.local_threshold": 1.01,
            "refine.per_minute": 1000,
            "refine.per_hour": 10000,
            "refine.budget_ms": 3000,
            "refine.fallback_deadline_ms": 2000,
        },
    )


@pytest.fixture
def client(db_path: str) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(db_path), extensions=[])) as test_client:
        yield test_client


def post_raw(
    client: TestClient, body: bytes | str, headers: dict[str, str] | None = JSON
) -> tuple[int, dict]:
    response = client.post("/refine", content=body, headers=headers or {})
    return response.status_code, response.json()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("\u0000\u0000\u0000", "no visible characters"),
        ("\u202e\u202d\u2066\u2069", "no visible characters"),  # bidi overrides and isolates only
        ("\u200b\u200c\u200d\u2060\ufeff", "no visible characters"),  # zero-width characters only
        ("\x1b\x07\x7f\x85", "no visible characters"),  # C0 and C1 controls
        ("\ue000\U000f0000", "no visible characters"),  # private use
        (" \u00a0\u3000\t\n", "must not be empty"),
    ],
)
def test_a_query_without_visible_characters_is_refused(client: TestClient, query: str, message: str) -> None:
    response = client.post("/refine", json={"query": query})
    assert response.status_code == 422
    assert message in response.json()["error"] and response.json()["detail"]


def test_a_lone_surrogate_is_refused_not_a_server_error(client: TestClient) -> None:
    status, body = post_raw(client, '{"query": "abc \\ud83d def"}')
    assert status == 422 and "lone surrogate U+D83D at character 5" in body["error"]


def test_nfkc_expansion_is_bounded(client: TestClient) -> None:
    body = client.post("/refine", json={"query": "\ufdfa" * 2000}).json()
    assert 0 < len(body["refined"]) <= MAX_QUERY_CHARS
    assert body["within_budget"] is True


def test_invisible_characters_inside_a_query_are_cleaned(client: TestClient) -> None:
    body = client.post("/refine", json={"query": "best\u202epizza\u200b near\u0000 me\u2066"}).json()
    assert body["refined"] == "Best pizza near me"


@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        ("[" * 5000 + "]" * 5000, JSON, 422, "nested too deeply"),
        ('{"query": ' * 3000 + '"x"' + "}" * 3000, JSON, 422, "nested too deeply"),
        ('{"query": "ok", "fallback": ' + "9" * 5000 + "}", JSON, 422, "a number with 5000 digits"),
        ('{"query": 1' + "0" * 400 + "}", JSON, 422, "a number with 401 digits"),
        ('{"query": "ok", "fallback": 1e999999}', JSON, 422, "fallback: Input should be a valid boolean"),
        ('{"query": NaN}', JSON, 422, "NaN is not a JSON value"),
        ('{"query": "ok", "fallback": -Infinity}', JSON, 422, "-Infinity is not a JSON value"),
        ('{"query": "a", "query": "b"}', JSON, 422, "the field 'query' twice"),
        ('[{"query": "ok"}]', JSON, 422, "must be a JSON object such as"),
        ('"ok"', JSON, 422, "got a string"),
        ("42", JSON, 422, "got a number"),
        ("null", JSON, 422, "got null"),
        ("", JSON, 422, "request body is required"),
        ("  \n ", JSON, 422, "request body is required"),
        ('{"query": "ok"', JSON, 422, "not valid JSON (Expecting ',' delimiter at line 1 column 15)"),
        (b"\xff\xfe\xfa", JSON, 422, "not UTF-8 text (byte 0xff at offset 0)"),
        (b'{"query": "caf\xe9"}', JSON, 422, "not UTF-8 text (byte 0xe9 at offset 14)"),
        (
            '{"query": "ok"}',
            {"content-type": "text/plain"},
            415,
            "Content-Type must be application/json, got 'text/plain'",
        ),
        (
            "query=ok",
            {"content-type": "application/x-www-form-urlencoded"},
            415,
            "Content-Type must be application/json",
        ),
        ("x" * (MAX_BODY_BYTES + 1), JSON, 413, "request body is too large"),
        ('{"query": "ok", "extra": 1}', JSON, 422, "extra: Extra inputs are not permitted"),
    ],
)
def test_malformed_bodies_get_one_clear_message(
    client: TestClient, body: bytes | str, headers: dict[str, str], status: int, message: str
) -> None:
    got_status, got = post_raw(client, body, headers)
    assert got_status == status, got
    assert message in got["error"], got["error"]
    assert isinstance(got["detail"], list) and got["detail"]


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        ('{"query": "um what is np complete??"}', {}),  # no Content-Type at all: read as JSON
        ('{"query": "um what is np complete??"}', {"content-type": "application/json; charset=utf-8"}),
        ('{"query": "um what is np complete??"}', {"content-type": "application/merge-patch+json"}),
        ('\ufeff{"query": "um what is np complete??"}', JSON),  # a UTF-8 byte-order mark
    ],
)
def test_acceptable_variants_are_served(client: TestClient, body: str, headers: dict[str, str]) -> None:
    status, got = post_raw(client, body.encode("utf-8"), headers)
    assert status == 200 and got["refined"] == "What is NP complete?"


@pytest.mark.parametrize(
    ("method", "path", "status", "message"),
    [
        ("GET", "/refine", 405, "method GET is not allowed on /refine; use POST"),
        ("PUT", "/refine", 405, "method PUT is not allowed on /refine"),
        ("DELETE", "/healthz", 405, "method DELETE is not allowed on /healthz; use GET"),
        ("GET", "/no-such-page", 404, "no such endpoint: GET /no-such-page"),
    ],
)
def test_http_errors_have_the_error_field(
    client: TestClient, method: str, path: str, status: int, message: str
) -> None:
    response = client.request(method, path)
    assert response.status_code == status
    assert message in response.json()["error"] and isinstance(response.json()["detail"], list)


_ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), min_size=1, max_size=400)


@hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(
    query=st.one_of(
        _ANY_TEXT,
        st.lists(
            st.sampled_from(
                [
                    "\u0000",
                    "\u202e",
                    "\u200b",
                    "\ufdfa",
                    "\ud800",
                    " ",
                    "a",
                    "?",
                    "please",
                    "\u0301",
                    "\U000e0001",
                ]
            ),
            min_size=1,
            max_size=60,
        ).map("".join),
    )
)
def test_an_accepted_query_is_never_emptied_and_stays_bounded(query: str) -> None:
    try:
        validate_query(query)
    except RefineInputError:
        return
    refined = clean_query(query)
    assert refined and len(refined) <= MAX_QUERY_CHARS
    assert not all(is_invisible(c) for c in refined)
    refined.encode("utf-8")  # always valid UTF-8


def test_long_expanding_queries_are_bounded_in_the_library(db_path: str) -> None:
    for char in ("\ufdfa", "\u3392", "\ufb03", "\u2474"):  # each expands under NFKC
        result = refine(char * 2000, make_settings(db_path), fallback_allowed=False, caller="test")
        assert 0 < len(result.refined) <= MAX_QUERY_CHARS


def test_a_token_echoed_by_the_server_is_scrubbed_everywhere(
    db_path: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("HUGGINGFACE_API_KEY", TOKEN)
    caplog.set_level(logging.DEBUG, logger="hfops")
    with InferenceStandIn(behaviour="echo_token") as standin, caplog.at_level(logging.INFO):
        with TestClient(create_app(make_settings(db_path, standin.url), extensions=[])) as client:
            response = client.post("/refine", json={"query": "best pizza near me"})
        assert standin.count == 1  # the server did receive (and echo) the token
    assert response.status_code == 200 and response.json()["bypass_reason"] == "http_error"
    assert calllog.flush()
    stored = rows(connect(db_path), "SELECT error, status_code FROM refine_calls")
    assert stored and stored[0]["status_code"] == 401
    assert TOKEN not in json.dumps(stored)
    assert (
        "token was rejected" in stored[0]["error"]
        and "[server: invalid credentials: Bearer ***" in stored[0]["error"]
    )
    assert TOKEN not in response.text and TOKEN not in caplog.text
