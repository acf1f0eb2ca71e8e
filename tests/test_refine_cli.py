"""``hfops refine`` (in process) and ``hfops serve`` (a real uvicorn process)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from hfops.cli import main
from hfops.refine import calllog
from hfops.store import connect, rows
from tests.processes import stop_process
from tests.standins.inference import InferenceStandIn

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("warm_local_refiner")]

TOKEN = "hf_test_SECRET_cli_token_1122334455"


def write_config(path: Path, url: str, **refine: object) -> Path:
    lines = [
        f'[inference]\nbase_url = "{url}"\n[refine]\nper_minute = 1000\nper_hour = 10000\n'
        "budget_ms = 3000\nfallback_deadline_ms = 2000\n"
    ]  # no flakes on a busy machine
    lines += [f"{key} = {json.dumps(value)}\n" for key, value in refine.items()]
    path.write_text("".join(lines), encoding="utf-8")
    return path


def test_refine_json(db_path: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["refine", "--db", db_path, "--json", "um what is np complete??"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["refined"] == "What is NP complete?" and result["bypass_reason"] == "no_key"
    assert list(result) == [
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
    assert calllog.flush()
    assert rows(connect(db_path), "SELECT caller FROM refine_calls") == [{"caller": "cli"}]


def test_refine_plain_text_and_no_fallback(db_path: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["refine", "--db", db_path, "--no-fallback", "waht is a turing machine"]) == 0
    out = capsys.readouterr().out
    assert "refined:     What is a Turing machine?" in out
    assert "intent:      definition" in out
    assert "fallback:    not used (disabled)" in out
    assert "suggestion 1:" in out


def test_refine_bad_query_exits_2(db_path: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["refine", "--db", db_path, "   "]) == 2
    assert "error: query must not be empty" in capsys.readouterr().err


def test_refine_with_the_fallback_and_a_credits_warning(
    tmp_path: Path, db_path: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUGGINGFACE_API_KEY", TOKEN)
    with InferenceStandIn() as standin:
        config = write_config(tmp_path / "refine.toml", standin.url, local_threshold=1.01)
        assert main(["--config", str(config), "refine", "--db", db_path, "--json", "best pizza near me"]) == 0
        assert json.loads(capsys.readouterr().out)["source"] == "hf"
        standin.behaviour = "credits"
        assert main(["--config", str(config), "refine", "--db", db_path, "best pizza near me"]) == 0
        captured = capsys.readouterr()
        assert "fallback:    not used (credits_exhausted)" in captured.out
        assert "credits are exhausted" in captured.err
        assert TOKEN not in captured.out + captured.err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_runs_the_api(tmp_path: Path, db_path: str) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("HUGGINGFACE_API_KEY", "HF_TOKEN")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hfops.cli",
            "serve",
            "--db",
            db_path,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        health = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                health = httpx.get(f"{base}/healthz", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.3)
        assert health is not None and health.json()["local_model_loaded"] is True, proc.poll()
        response = httpx.post(f"{base}/refine", json={"query": "WHERE DOES THE RHINE BEGIN"}, timeout=10)
        assert response.status_code == 200 and response.json()["refined"] == "Where does the Rhine begin?"
        assert httpx.post(f"{base}/refine", json={"query": ""}, timeout=10).status_code == 422
        assert httpx.get(f"{base}/openapi.json", timeout=10).json()["info"]["title"] == "hfops refine API"
    finally:
        stop_process(proc, timeout=20)
