"""Fault campaign, /refine under load (issue 10 item 9) and right after start (issue 13): the budget is a
promise per call. A hanging fallback, a starved worker, an embedding that is not ready in time or a model
still loading never make a call report ``within_budget: false``: the local (or rules-only) answer is
returned instead. No test here asserts a timing; they assert what the answers say.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import hfops.refine.local as local_module
import hfops.refine.router as router_module
from hfops.api import create_app
from hfops.config import Settings, load_settings
from hfops.refine import calllog
from hfops.refine.local import LOCAL_MODEL, RULES_ONLY_MODEL, LocalRefiner
from hfops.refine.router import refine
from hfops.store import connect, rows
from tests.processes import free_port, stop_process
from tests.standins.inference import InferenceStandIn

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("warm_local_refiner")]

TOKEN = "hf_loadSECRETtoken0123456789"


@pytest.fixture
def hanging(monkeypatch: pytest.MonkeyPatch) -> Iterator[InferenceStandIn]:
    monkeypatch.setenv("HUGGINGFACE_API_KEY", TOKEN)
    with InferenceStandIn(behaviour="hanging") as server:
        yield server


def budget_settings(db_path: str, url: str) -> Settings:
    """The default budget (800 ms) and deadline (500 ms); every call consults the fallback."""
    return load_settings(
        None,
        **{
            "store.path": db_path,
            "inference.base_url": url,
            "refine.local_threshold": 1.01,
            "refine.per_minute": 100_000,
            "refine.per_hour": 1_000_000,
        },
    )


def test_concurrent_calls_with_a_hanging_fallback_all_answer_locally_within_budget(
    db_path: str, hanging: InferenceStandIn
) -> None:
    with TestClient(create_app(budget_settings(db_path, hanging.url), extensions=[])) as client:

        def call(i: int) -> dict:
            return client.post("/refine", json={"query": f"um so what is the rhine {i} please??"}).json()

        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(call, range(60)))
    assert [a["within_budget"] for a in answers] == [True] * 60
    assert {a["source"] for a in answers} == {"local"} and {a["bypass_reason"] for a in answers} == {
        "timeout"
    }
    assert all(a["refined"] for a in answers)


def test_a_call_whose_worker_cannot_finish_is_answered_from_the_rules_in_time(
    db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    real = router_module.refine_detailed

    def stuck(*args: object, **kwargs: object) -> object:
        release.wait(10)  # a starved worker thread, a store that blocks, ...
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(router_module, "refine_detailed", stuck)
    settings = load_settings(None, **{"store.path": db_path})
    with TestClient(create_app(settings, extensions=[])) as client:
        body = client.post("/refine", json={"query": "um what is np complete??"}).json()
        release.set()
        assert calllog.flush()
        time.sleep(0.2)  # let the late worker finish: it must not log a second row
        assert calllog.flush()
    assert body["within_budget"] is True and body["model"] == RULES_ONLY_MODEL
    assert body["refined"] == "What is NP complete?" and body["bypass_reason"] == "no_key"
    logged = rows(connect(db_path), "SELECT model, within_budget FROM refine_calls")
    assert logged == [{"model": RULES_ONLY_MODEL, "within_budget": 1}]


class SlowLoadingRefiner(LocalRefiner):
    """A refiner whose model takes as long as the test wants to load (a cold start)."""

    def __init__(self, gate: threading.Event) -> None:
        super().__init__()
        self.gate = gate

    def load(self, torch_threads: int = 0) -> LocalRefiner:
        self.gate.wait(30)
        return super().load(torch_threads)


def test_first_calls_while_the_model_loads_get_the_rules_answer_at_once(
    db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = threading.Event()
    cold = SlowLoadingRefiner(gate)
    monkeypatch.setattr(local_module, "_refiner", cold)
    settings = load_settings(None, **{"store.path": db_path})
    first = refine("waht is teh rhine", settings, caller="test")
    assert first.within_budget and first.model == RULES_ONLY_MODEL and first.refined
    assert cold._background is not None and cold._background.is_alive()  # loading, off the call path
    gate.set()
    cold._background.join(120)
    later = refine("waht is teh rhine", settings, caller="test")
    assert later.model == LOCAL_MODEL and later.suggestions and "Rhine" in later.refined


def test_an_embedding_not_ready_by_the_deadline_gives_the_rules_answer(
    db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    refiner = local_module.get_local_refiner()
    release = threading.Event()
    real = refiner._batcher._compute

    def slow_compute(texts: list[str]) -> object:
        release.wait(10)
        return real(texts)

    monkeypatch.setattr(refiner._batcher, "_compute", slow_compute)
    try:
        result = refine("what is the capital of normandy", load_settings(None, **{"store.path": db_path}))
    finally:
        release.set()
    assert result.within_budget and result.model == RULES_ONLY_MODEL and result.suggestions == []
    assert result.refined == "What is the capital of Normandy?"


def test_a_real_server_under_concurrent_clients_never_reports_over_budget(
    tmp_path: Path, hanging: InferenceStandIn
) -> None:
    """What bench/load_refine.py measures, small: uvicorn as `hfops serve` runs it, 10 clients x 10 calls."""
    config = tmp_path / "hfops.toml"
    config.write_text(
        f'[store]\npath = "{tmp_path / "load.db"}"\n[inference]\nbase_url = "{hanging.url}"\n'
        "[refine]\nlocal_threshold = 1.01\nper_minute = 100000\nper_hour = 1000000\n",
        encoding="utf-8",
    )
    port = free_port()
    code = (
        "import sys; from hfops.cli.refine import serve; from hfops.config import load_settings; "
        "serve(load_settings(sys.argv[1]), '127.0.0.1', int(sys.argv[2]))"
    )
    env = {**os.environ, "HUGGINGFACE_API_KEY": TOKEN, "HF_HUB_DISABLE_TELEMETRY": "1"}
    log_path = tmp_path / "serve.log"
    with log_path.open(
        "wb"
    ) as log_file:  # a file, not a pipe nobody reads: a full pipe would block the server
        process = subprocess.Popen(
            [sys.executable, "-c", code, str(config), str(port)],
            env=env,
            cwd=tmp_path,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and process.poll() is None:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.3)
        assert process.poll() is None

        def client(index: int) -> list[dict]:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            out = []
            for i in range(10):
                conn.request(
                    "POST",
                    "/refine",
                    body=json.dumps({"query": f"where is basel {index} {i}"}),
                    headers={"Content-Type": "application/json"},
                )
                response = conn.getresponse()
                out.append({"status": response.status, **json.loads(response.read())})
            return out

        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            answers = [a for batch in pool.map(client, range(10)) for a in batch]
    finally:
        stop_process(process, timeout=20)
        output = log_path.read_text(encoding="utf-8", errors="replace")
    assert len(answers) == 100 and {a["status"] for a in answers} == {200}
    assert [a["within_budget"] for a in answers] == [True] * 100
    assert {a["bypass_reason"] for a in answers} == {"timeout"}
    assert TOKEN not in output and "Logging error" not in output and "Traceback" not in output
