"""The refine HTTP API through FastAPI's TestClient: result shape, 422s with clear messages, health, OpenAPI,
the extension hook, and the budget under concurrent requests with a hanging fallback."""

from __future__ import annotations

import concurrent.futures
import time

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from hfops.api import create_app
from hfops.config import Settings, load_settings
from hfops.refine.limits import open_cooldown
from tests.standins.inference import InferenceStandIn

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("warm_local_refiner")]

TOKEN = "hf_test_SECRET_api_token_9876543210"
RESULT_KEYS = [
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


@pytest.fixture(autouse=True)
def fresh_standin(standin: InferenceStandIn) -> None:
    standin.behaviour, standin.reply = "fast", None
    standin.requests.clear()


def make_settings(db_path: str, url: str = "http://127.0.0.1:9", **overrides: object) -> Settings:
    values = {
        "store.path": db_path,
        "inference.base_url": url,
        "refine.local_threshold": 1.01,
        "refine.per_minute": 1000,
        "refine.per_hour": 10000,
        "refine.budget_ms": 3000,
        "refine.fallback_deadline_ms": 2000,
    }  # no flakes on a busy machine
    values.update({k.replace("__", "."): v for k, v in overrides.items()})
    return load_settings(None, **values)


@pytest.fixture
def client(db_path: str) -> TestClient:
    with TestClient(create_app(make_settings(db_path))) as test_client:
        yield test_client


def test_refine_returns_the_documented_shape(client: TestClient) -> None:
    response = client.post("/refine", json={"query": "um what is np complete??"})
    assert response.status_code == 200
    body = response.json()
    assert list(body) == RESULT_KEYS
    assert body["query"] == "um what is np complete??" and body["refined"] == "What is NP complete?"
    assert body["source"] == "local" and body["bypass_reason"] == "no_key"
    assert len(body["suggestions"]) <= 3 and body["within_budget"] is True


def test_fallback_flag(client: TestClient) -> None:
    body = client.post("/refine", json={"query": "best pizza near me", "fallback": False}).json()
    assert body["bypass_reason"] == "disabled"


def test_hf_fallback_via_api_never_leaks_the_token(
    db_path: str, standin: InferenceStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUGGINGFACE_API_KEY", TOKEN)
    with TestClient(create_app(make_settings(db_path, standin.url))) as client:
        response = client.post("/refine", json={"query": "best pizza near me"})
        health = client.get("/healthz")
    assert response.json()["source"] == "hf" and standin.count == 1
    assert TOKEN not in response.text and TOKEN not in health.text
    assert health.json()["fallback"] == "ready"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"json": {"query": ""}}, "query must not be empty"),
        ({"json": {"query": "   \n\t"}}, "query must not be empty"),
        ({"json": {"query": "x" * 2001}}, "query is too long (2001 characters, at most 2000)"),
        ({"json": {"query": 42}}, "query must be a string, got int"),
        ({"json": {"query": ["a"]}}, "query must be a string, got list"),
        ({"json": {"query": None}}, "query must be a string, got NoneType"),
        ({"json": {"query": "ok", "fallback": "yes"}}, "fallback: Input should be a valid boolean"),
        ({"json": {"query": "ok", "fallback": 1}}, "fallback: Input should be a valid boolean"),
        ({"json": {"query": "ok", "extra": 1}}, "extra: Extra inputs are not permitted"),
        ({"json": {}}, "query: Field required"),
        ({"json": ["query"]}, "request body must be a JSON object such as"),
        ({"json": "query"}, "request body must be a JSON object such as"),
        ({}, "request body is required: a JSON object"),
        (
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            "request body is not valid JSON",
        ),
        ({"content": b"\xff\xfe\xfa", "headers": {"content-type": "application/json"}}, "not UTF-8 text"),
    ],
)
def test_bad_input_is_a_422_with_a_clear_message(client: TestClient, kwargs: dict, message: str) -> None:
    response = client.post("/refine", **kwargs)
    assert response.status_code == 422
    body = response.json()
    assert message in body["error"]
    assert isinstance(body["detail"], list) and body["detail"]


def test_a_2000_character_query_is_accepted(client: TestClient) -> None:
    assert client.post("/refine", json={"query": "rhine " * 333 + "ab"}).status_code == 200


def test_healthz(db_path: str) -> None:
    with TestClient(create_app(make_settings(db_path))) as client:
        body = client.get("/healthz").json()
    assert body == {
        "status": "ok",
        "version": body["version"],
        "local_model_loaded": True,
        "fallback": "no_key",
        "budget_ms": 3000,
    }
    with TestClient(create_app(make_settings(db_path, refine__enabled=False))) as client:
        assert client.get("/healthz").json()["fallback"] == "disabled"


def test_healthz_reports_a_cooldown(db_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUGGINGFACE_API_KEY", TOKEN)
    open_cooldown(db_path, "rate_limited", 60)
    with TestClient(create_app(make_settings(db_path))) as client:
        assert client.get("/healthz").json()["fallback"] == "cooldown"
        assert (
            client.post("/refine", json={"query": "best pizza near me"}).json()["bypass_reason"] == "cooldown"
        )


def test_openapi_and_docs_are_served(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert set(spec["paths"]) >= {"/refine", "/healthz"}
    post = spec["paths"]["/refine"]["post"]
    assert {"200", "422"} <= set(post["responses"])
    request_schema = spec["components"]["schemas"]["RefineRequest"]
    assert request_schema["properties"]["query"]["maxLength"] == 2000
    response_schema = spec["components"]["schemas"]["RefineResponse"]
    assert list(response_schema["properties"]) == RESULT_KEYS
    assert client.get("/docs").status_code == 200


def mount(app: FastAPI, settings: Settings) -> None:
    """Extension used by the hook test below (what the observability feature does for /metrics)."""

    @app.get("/metrics-probe")
    def probe() -> dict:
        return {"db": settings.store.path}


def test_extension_hook_mounts_routes(db_path: str) -> None:
    app = create_app(make_settings(db_path), warm=False, extensions=[__name__, "hfops.no_such_module"])
    with TestClient(app) as client:
        assert client.get("/metrics-probe").json() == {"db": db_path}


def test_concurrent_requests_stay_within_budget_with_a_hanging_fallback(
    db_path: str, standin: InferenceStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUGGINGFACE_API_KEY", TOKEN)
    standin.behaviour = "hanging"
    settings = make_settings(db_path, standin.url, refine__budget_ms=800, refine__fallback_deadline_ms=500)
    with TestClient(create_app(settings)) as client:

        def timed(query: str) -> tuple[dict, float]:
            started = time.monotonic()
            body = client.post("/refine", json={"query": query}).json()
            return body, (time.monotonic() - started) * 1000

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(timed, [f"best pizza near me {i}" for i in range(4)]))
    assert [body["bypass_reason"] for body, _ in answers] == ["timeout"] * 4
    # Served in parallel, each within its own budget (serialised, the last would wait ~4 x 480 ms), and
    # none waited for the stand-in's 5 s answer.
    assert all(body["within_budget"] and wall_ms < 5000 for body, wall_ms in answers), answers
