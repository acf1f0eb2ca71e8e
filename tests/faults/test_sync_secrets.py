"""Sync faults that try to leak the API key: server error text echoing it, records holding it
(issue 10 item 5). No message, stored error or printed line holds the token, by value or by shape."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from hfops.errors import SyncError
from tests.faults.sync_standin import (
    TOKEN,
    hub_records,
    no_secret_in,
    on_page,
    run_row,
    settings_for,
    sync_with_token,
)
from tests.standins.hub import HubStandIn, Reply

ECHO = f"Authorization: Bearer {TOKEN} is not valid for {TOKEN}; other token hf_{'x' * 30} too"


@pytest.fixture
def hub():
    with HubStandIn(hub_records()) as server:
        yield server


def echoing(status: int):
    def rewrite(served: int, reply: Reply) -> Reply:
        body = json.dumps({"error": ECHO}).encode()
        return Reply(status, body, {"X-Error-Message": ECHO}, reply.path)

    return rewrite


@pytest.mark.parametrize("status", [401, 403, 404, 400])
def test_a_refusal_echoing_the_token_is_scrubbed_everywhere(
    hub: HubStandIn, db_path: str, monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    hub.rewrite = on_page(2, echoing(status))
    with pytest.raises(SyncError) as caught:
        sync_with_token(db_path, settings_for(hub), monkeypatch)
    assert f"({status}" in str(caught.value) or f"HTTP {status}" in str(caught.value)
    row = run_row(db_path, 1)
    assert row["status"] == "failed"
    assert no_secret_in(caught.value, row["message"], row["errors"], row["resume_cursor"])
    assert "***" in str(caught.value)  # the server's words are kept, the secrets replaced


def test_persistent_server_errors_echoing_the_token_give_up_scrubbed(
    hub: HubStandIn, db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.rewrite = echoing(503)
    with pytest.raises(SyncError, match="deadline") as caught:
        sync_with_token(db_path, settings_for(hub), monkeypatch)
    row = run_row(db_path, 1)
    assert row["retries"] >= 1
    assert no_secret_in(caught.value, row["message"], row["errors"])


def test_a_record_holding_the_token_is_skipped_without_echoing_it(
    hub: HubStandIn, db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def planted(served: int, reply: Reply) -> Reply:
        page = json.loads(reply.body)
        page[0]["lastModified"] = f"Bearer {TOKEN}"
        page[1]["likes"] = TOKEN
        reply.body = json.dumps(page).encode()
        return reply

    hub.rewrite = on_page(1, planted)
    run = sync_with_token(db_path, settings_for(hub), monkeypatch)
    assert run.skipped == 2 and set(run.skip_reasons) == {"bad date", "wrong type"}
    assert no_secret_in(run.errors, run.message, run_row(db_path, run.id)["errors"])


def test_the_cli_prints_a_scrubbed_one_line_error(hub: HubStandIn, db_path: str) -> None:
    hub.rewrite = echoing(401)
    env = dict(os.environ, HUGGINGFACE_API_KEY=TOKEN, HF_HUB_DISABLE_TELEMETRY="1")
    proc = subprocess.run(
        [sys.executable, "-m", "hfops.cli", "sync", "--endpoint", hub.url, "--db", db_path, "--mode", "full"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "token was rejected" in proc.stderr and "Traceback" not in proc.stderr
    assert no_secret_in(proc.stdout, proc.stderr)
    assert set(hub.auth_log) == {f"Bearer {TOKEN}"}  # it was sent, to the endpoint only
