"""The core verbs through the real `hfops` entry point (subprocess), including `hfops console` start/stop."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from hfops.paths import HUB_SNAPSHOT
from tests.processes import free_port

HFOPS = [sys.executable, "-m", "hfops.cli"]


def hfops(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([*HFOPS, *args], capture_output=True, text=True, timeout=120)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture
def synced(db_path: str) -> str:
    hfops("sync", "--snapshot", str(HUB_SNAPSHOT), "--db", db_path)
    return db_path


def test_sync_json_reports_the_run(db_path: str) -> None:
    out = json.loads(hfops("sync", "--snapshot", str(HUB_SNAPSHOT), "--db", db_path, "--json").stdout)
    assert out["status"] == "succeeded" and out["mode"] == "full"
    assert out["seen"] == out["inserted"] > 8000 and out["new_candidates"] == out["matched"] > 0
    assert (out["hub_waits"], out["hub_wait_seconds"]) == (0, 0)  # a snapshot never waits for the Hub


def test_candidates_json_has_the_documented_keys(synced: str) -> None:
    rows = json.loads(hfops("candidates", "--json", "--db", synced).stdout)
    assert rows and set(rows[0]) == {
        "model_id",
        "pipeline_tag",
        "license",
        "library",
        "downloads",
        "likes",
        "safetensors",
        "quantization",
        "score",
        "status",
        "runnable",
        "reference",
    }
    assert all({"label", "state", "runnable"} <= set(r["runnable"]) for r in rows)
    assert all(
        r["reference"] is None or set(r["reference"]) == {"source", "revision", "scores"} for r in rows
    )
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    assert isinstance(rows[0]["quantization"], list) and isinstance(rows[0]["safetensors"], bool)


def test_status_set_is_audited_and_filterable(synced: str) -> None:
    out = hfops(
        "status",
        "set",
        "microsoft/phi-2",
        "shadow",
        "--reason",
        "looks good",
        "--actor",
        "ci",
        "--db",
        synced,
    ).stdout
    assert "microsoft/phi-2: candidate -> shadow" in out
    shadow = json.loads(hfops("candidates", "--status", "shadow", "--json", "--db", synced).stdout)
    assert [r["model_id"] for r in shadow] == ["microsoft/phi-2"]
    history = json.loads(hfops("history", "microsoft/phi-2", "--json", "--db", synced).stdout)
    assert history[-1]["reason"] == "looks good" and history[-1]["actor"] == "ci"
    shown = json.loads(hfops("status", "show", "--json", "--db", synced).stdout)
    assert shown["counts"]["shadow"] == 1 and shown["last_sync"]["status"] == "succeeded"


def test_bad_transitions_are_clear_errors(synced: str) -> None:
    proc = hfops("status", "set", "no/such-model", "shadow", "--reason", "x", "--db", synced, check=False)
    assert proc.returncode == 2 and "no candidate 'no/such-model'" in proc.stderr
    proc = hfops(
        "status", "set", "microsoft/phi-2", "candidate", "--reason", "x", "--db", synced, check=False
    )
    assert proc.returncode == 2 and "already candidate" in proc.stderr and "Traceback" not in proc.stderr


def test_status_set_refuses_evidence_that_does_not_exist(synced: str) -> None:
    before = hfops("history", "microsoft/phi-2", "--json", "--db", synced).stdout
    for evidence, says in (
        ("eval_run:999", "no eval run 999 in the store"),
        ("the-report", "is not one of eval_run:<run id>"),
    ):
        proc = hfops(
            "status", "set", "microsoft/phi-2", "shadow", "--reason", "x", "--evidence", evidence,
            "--db", synced, check=False,
        )  # fmt: skip
        assert proc.returncode == 2 and proc.stdout == ""
        assert proc.stderr.count("\n") == 1 and says in proc.stderr and proc.stderr.startswith("error: ")
    assert hfops("history", "microsoft/phi-2", "--json", "--db", synced).stdout == before
    shown = json.loads(hfops("status", "show", "--json", "--db", synced).stdout)
    assert shown["counts"]["shadow"] == 0


def test_a_mistyped_verb_or_action_gets_did_you_mean(synced: str) -> None:
    proc = hfops("candidats", "--db", synced, check=False)
    assert proc.returncode == 2 and "did you mean 'candidates'?" in proc.stderr
    proc = hfops("status", "sohw", "--db", synced, check=False)
    assert proc.returncode == 2 and "did you mean 'show'?" in proc.stderr
    proc = hfops("zzzz", check=False)
    assert proc.returncode == 2 and "did you mean" not in proc.stderr


def test_sync_of_a_missing_snapshot_is_a_clear_error(db_path: str) -> None:
    proc = hfops("sync", "--snapshot", "nope.jsonl", "--db", db_path, check=False)
    assert proc.returncode == 2 and "snapshot file not found: nope.jsonl" in proc.stderr


@pytest.mark.xdist_group("servers")
def test_console_loads_the_default_starts_worker_and_ui_and_stops_both(tmp_path: Path) -> None:
    db = tmp_path / "console.db"
    port = free_port()
    proc = subprocess.Popen(
        [*HFOPS, "console", "--db", str(db), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                    if r.read() == b"ok":
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, (
                proc.stderr.read() if proc.stderr else ""
            )
            time.sleep(0.5)
        children = subprocess.run(
            ["pgrep", "-s", str(proc.pid)], capture_output=True, text=True
        ).stdout.split()
        assert len(children) >= 3  # console, worker, streamlit
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)  # the worker stops its jobs at their next batch
    assert "loaded the embedded default" in out
    time.sleep(1)
    left = subprocess.run(["pgrep", "-s", str(proc.pid)], capture_output=True, text=True).stdout.split()
    assert left == []
