"""Sync run rows tell the truth (issue 10 item 6): a killed run is found ``interrupted`` with the time it was
found and its last sign of life, and resumed; a cancelled job stops between pages and resumes; the worker's
``sync`` job runs with the settings stored with it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hfops import jobs, worker
from hfops.config import Settings
from hfops.discovery import get_sync_run, last_sync_run, list_sync_runs, sync_snapshot
from hfops.errors import SyncError
from hfops.store import connect
from tests.faults.sync_standin import (
    ALL_RECORDS,
    hub_records,
    listed_ids,
    settings_for,
    stored_ids,
    sync_with_token,
)
from tests.standins.hub import HubStandIn

SYNC_IN_A_CHILD = textwrap.dedent(
    """
    import sys
    from hfops.config import HubConfig, Settings
    from tests.faults.sync_standin import RULE
    from hfops.discovery import sync_hub
    settings = Settings()
    settings.hub = HubConfig(endpoint=sys.argv[2], page_size=50, request_timeout_seconds=60)
    settings.discovery = RULE
    sync_hub(sys.argv[1], settings, mode="full")
    """
)


def wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def test_a_killed_run_is_found_interrupted_and_resumed(db_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with HubStandIn(hub_records()) as hub:
        hub.slow_seconds = 30.0
        hub.faults = {3: "slow"}  # the child stores pages 1 and 2, then hangs on page 3
        child = subprocess.Popen(
            [sys.executable, "-c", SYNC_IN_A_CHILD, db_path, hub.url],
            cwd=Path(__file__).resolve().parents[2],
            env=dict(os.environ, HF_HUB_DISABLE_TELEMETRY="1"),
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for(lambda: Path(db_path).exists() and _pages(db_path) >= 1)
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
        dead = get_sync_run(connect(db_path), 1)
        assert dead is not None and dead.status == "running"  # the row: no sync has found it yet
        shown = last_sync_run(connect(db_path))  # what status show and the Status page read
        assert shown is not None and shown.status == "interrupted" and "its process stopped" in shown.message
        assert [r.status for r in list_sync_runs(connect(db_path))] == ["interrupted"]
        hub.faults = {}
        hub.log.clear()
        run = sync_with_token(db_path, settings_for(hub), monkeypatch)
    found = get_sync_run(connect(db_path), 1)
    assert found is not None and found.status == "interrupted"
    assert found.interrupted_at is not None and found.interrupted_at >= (found.heartbeat_at or "")
    assert found.finished_at == found.heartbeat_at  # its last sign of life, not the time it was found
    assert f"found still 'running' at {found.interrupted_at}" in (found.message or "")
    assert run.status == "succeeded" and "(resumed the pass of run 1)" in (run.message or "")
    assert "cursor=" in hub.model_requests()[0]  # it resumed after the pages the killed run stored
    assert stored_ids(db_path) == listed_ids(hub.records)


def _pages(db_path: str) -> int:
    try:
        row = connect(db_path).execute("SELECT MAX(pages) FROM sync_runs").fetchone()
    except Exception:  # the child may still be creating the store
        return 0
    return int(row[0] or 0)


def test_cancelling_between_pages_leaves_a_resumable_interrupted_run(tmp_path: Path, db_path: str) -> None:
    path = tmp_path / "snap.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in ALL_RECORDS[:100]) + "\n")
    settings = Settings()
    settings.hub.page_size = 10
    asked = iter([False, False, True])
    run = sync_snapshot(db_path, path, settings, cancelled=lambda: next(asked, True))
    assert run.status == "interrupted" and run.pages == 3 and run.seen == 30
    assert "cancelled" in (run.message or "") and run.resume_cursor is not None
    rest = sync_snapshot(db_path, path, settings)
    assert rest.status == "succeeded" and rest.seen == 70 and rest.pages == 7
    assert connect(db_path).execute("SELECT COUNT(*) FROM models").fetchone()[0] == 100


def test_the_sync_job_runs_with_the_settings_stored_with_it(tmp_path: Path, db_path: str) -> None:
    path = tmp_path / "snap.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in ALL_RECORDS[:25]) + "\n")
    settings = Settings()
    settings.hub.page_size = 5  # only the stored settings can say so
    job_id = jobs.create_job(connect(db_path), "sync", {"snapshot": str(path)}, settings)
    result = worker.execute_job(db_path, job_id)
    assert result["status"] == "succeeded" and result["seen"] == 25
    run = get_sync_run(connect(db_path), result["id"])
    assert run is not None and run.pages == 5


def test_a_live_run_is_not_declared_dead_by_a_second_sync(tmp_path: Path, db_path: str) -> None:
    path = tmp_path / "snap.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in ALL_RECORDS[:30]) + "\n")
    settings = Settings()
    settings.hub.page_size = 10
    refused: list[str] = []

    def progress(
        done: int, total: int | None = None, message: str | None = None, force: bool = False
    ) -> None:
        if not refused:  # while the first run is alive, a second sync of the same source starts
            with pytest.raises(SyncError, match="is still running") as caught:
                sync_snapshot(db_path, path, settings)
            refused.append(str(caught.value))

    run = sync_snapshot(db_path, path, settings, progress)
    assert refused and run.status == "succeeded" and run.seen == 30
    statuses = [r[0] for r in connect(db_path).execute("SELECT status FROM sync_runs ORDER BY id")]
    assert statuses == ["succeeded"]  # the refused one left no row, the live one was never marked


def test_a_running_row_whose_pid_now_belongs_to_another_process_is_dead(tmp_path: Path, db_path: str) -> None:
    """A restarted container gives the worker the same pid: the start time tells the two processes apart."""
    path = tmp_path / "snap.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in ALL_RECORDS[:10]) + "\n")
    db = connect(db_path)
    owner = {"host": socket.gethostname(), "pid": os.getpid(), "started": "1"}  # this pid, another start
    db["sync_runs"].insert(
        {
            "source": f"snapshot:{path.resolve()}",
            "mode": "full",
            "started_at": "2026-01-01T00:00:00Z",
            "status": "running",
            "resume_cursor": json.dumps({"pass_id": 1, "cursor": None, "owner": owner}),
        }
    )
    run = sync_snapshot(db_path, path, Settings())
    assert run.status == "succeeded"
    assert get_sync_run(db, 1).status == "interrupted"
