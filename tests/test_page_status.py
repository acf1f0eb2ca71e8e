"""Status page (AppTest): counts, last sync run, secrets shown as set / not set only, Sync now, jobs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from hfops import jobs
from hfops.paths import HUB_SNAPSHOT
from hfops.queue import get_huey
from hfops.store import connect, dumps, write_tx
from tests.console_kit import open_console
from tests.registry_rows import add_candidates, numbered

PAGE = "pages/status.py"
SECRET = "hf_TESTSECRETvalue0123456789"
WRITE_SECRET = "hf_WRITESECRETvalue987654321"


def open_page(db_path: str, monkeypatch: pytest.MonkeyPatch, **env: str) -> AppTest:
    """The console on the Status page over the store at ``db_path``."""
    return open_console(db_path, monkeypatch, PAGE, timeout=30, **env)


def texts(at: AppTest) -> list[str]:
    return [t.value for t in at.text]


def walk(node: Any) -> Iterator[Any]:
    yield node
    children = getattr(node, "children", None) or {}
    for child in children.values():
        yield from walk(child)


def everything_rendered(at: AppTest) -> str:
    """Every element and block the app sent (protobuf text, dataframe contents included), as one string."""
    parts = []
    for node in walk(at._tree):
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
    parts.extend(frame.value.to_csv() for frame in at.dataframe)
    return "\n".join(parts)


@pytest.fixture
def config_file(tmp_path: Path) -> str:
    path = tmp_path / "console.toml"
    path.write_text(
        '[hub]\nendpoint = "http://127.0.0.1:9/hub-standin"\n\n'
        '[inference]\nbase_url = "http://127.0.0.1:9/inference-standin"\n'
    )
    return str(path)


def test_counts_store_endpoints_and_secrets_not_set(
    db_path: str, monkeypatch: pytest.MonkeyPatch, config_file: str
) -> None:
    add_candidates(db_path, numbered(4) + numbered(2, prefix="old/model", status="rejected"))
    at = open_page(db_path, monkeypatch, HFOPS_CONFIG=config_file)
    assert {m.label: m.value for m in at.metric} == {
        "candidate": "4",
        "evaluating": "0",
        "shadow": "0",
        "promoted": "0",
        "rejected": "2",
        "retired": "0",
    }
    shown = texts(at)
    assert f"Store: {Path(db_path).resolve()}" in shown
    assert "Hub endpoint: http://127.0.0.1:9/hub-standin" in shown
    assert "Inference base URL: http://127.0.0.1:9/inference-standin" in shown
    assert "HUGGINGFACE_API_KEY: not set" in shown
    assert "HUGGINGFACE_WRITE_TOKEN: not set" in shown
    assert "No sync has run yet." in [i.value for i in at.info]


def test_secrets_show_set_and_never_their_value(db_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUGGINGFACE_API_KEY", SECRET)
    monkeypatch.setenv("HUGGINGFACE_WRITE_TOKEN", WRITE_SECRET)
    at = open_page(db_path, monkeypatch)
    assert "HUGGINGFACE_API_KEY: set" in texts(at)
    assert "HUGGINGFACE_WRITE_TOKEN: set" in texts(at)
    # Also after an action (a sync enqueued, a job row shown).
    at.button(key="status_sync_now").click().run()
    for page in ("pages/status.py", "pages/candidates.py"):
        at.switch_page(page).run()
        rendered = everything_rendered(at)
        assert "HUGGINGFACE_API_KEY: set" in rendered or page.endswith("candidates.py")  # the walk sees text
        assert SECRET not in rendered and WRITE_SECRET not in rendered
        assert SECRET[3:15] not in rendered  # not even a fragment of it


def test_sync_now_snapshot_creates_a_queued_job(db_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(db_path, monkeypatch)
    assert at.radio(key="status_sync_source").value == "snapshot"
    at.button(key="status_sync_now").click().run()
    assert not at.exception and not at.error
    assert at.success[0].value.startswith("Queued sync job 1")
    found = jobs.list_jobs(connect(db_path))
    assert [(j.id, j.kind, j.status, j.params) for j in found] == [
        (1, "sync", "queued", {"snapshot": str(HUB_SNAPSHOT)})
    ]
    assert get_huey(db_path).pending_count() == 1  # handed to the worker's queue
    assert any(i.value.startswith("Job 1 · sync · queued") for i in at.info)


def test_sync_now_hub_uses_the_configured_endpoint(
    db_path: str, monkeypatch: pytest.MonkeyPatch, config_file: str
) -> None:
    at = open_page(db_path, monkeypatch, HFOPS_CONFIG=config_file)
    at.radio(key="status_sync_source").set_value("hub")
    at.button(key="status_sync_now").click().run()
    (job,) = jobs.list_jobs(connect(db_path))
    assert job["status"] == "queued"
    assert job.params == {"endpoint": "http://127.0.0.1:9/hub-standin"}
    stored = jobs.job_settings(job, db_path)  # the console's settings travel with the job
    assert stored.hub.endpoint == "http://127.0.0.1:9/hub-standin"
    assert stored.inference.base_url == "http://127.0.0.1:9/inference-standin"


def test_last_sync_run_details(db_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    db = connect(db_path)
    with write_tx(db):
        db["sync_runs"].insert(
            {
                "source": "http://127.0.0.1:9/hub-standin",
                "started_at": "2026-11-01T10:00:00.000000Z",
                "finished_at": "2026-11-01T10:01:30.500000Z",
                "status": "failed",
                "pages": 3,
                "seen": 2500,
                "inserted": 2400,
                "updated": 50,
                "unchanged": 40,
                "skipped": 10,
                "matched": 120,
                "new_candidates": 100,
                "flagged": 2,
                "retries": 4,
                "retry_wait_seconds": 17.5,
                "hub_waits": 2,
                "hub_wait_seconds": 84.2,
                "skip_reasons": dumps({"bad date in lastModified": 7, "missing id": 3}),
                "errors": dumps(["gave up after the deadline: HTTP 429, Retry-After 60"]),
                "message": "gave up after the deadline",
            }
        )
    at = open_page(db_path, monkeypatch)
    shown = texts(at)
    assert "Run 1: failed · source http://127.0.0.1:9/hub-standin" in shown
    assert any(t.endswith("duration 90.5 s") for t in shown)
    assert "Retries: 4 · waited 17.5 s in back-off (Retry-After honoured)" in shown
    assert "Hub rate-limit window: waited 2x, 84 s (requests paced to keep the reserve)" in shown
    counts, reasons, errors = (f.value for f in at.dataframe[:3])
    assert counts.iloc[0][["seen", "inserted", "skipped", "matched", "flagged"]].tolist() == [
        2500,
        2400,
        10,
        120,
        2,
    ]
    assert dict(zip(reasons["reason"], reasons["count"], strict=True)) == {
        "bad date in lastModified": 7,
        "missing id": 3,
    }
    assert errors["error"].tolist() == ["gave up after the deadline: HTTP 429, Retry-After 60"]


def test_jobs_show_progress_and_errors(db_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    db = connect(db_path)
    done_id = jobs.create_job(db, "sync", {"snapshot": "a.jsonl"})
    failed_id = jobs.create_job(db, "sync", {"endpoint": "http://127.0.0.1:9"})
    running_id = jobs.create_job(db, "sync", {})
    with write_tx(db):
        db.execute(
            "UPDATE jobs SET status = 'succeeded', finished_at = '2026-11-01T10:00:00Z' WHERE id = ?",
            [done_id],
        )
        db.execute(
            "UPDATE jobs SET status = 'failed', error = ? WHERE id = ?",
            ["SyncError: sync 2 failed: HTTP 500 from <b>stand-in</b>", failed_id],
        )
        db.execute(
            "UPDATE jobs SET status = 'running', done = 30, total = 120, message = 'page 3' WHERE id = ?",
            [running_id],
        )
    at = open_page(db_path, monkeypatch)
    (bar,) = at.get("progress")
    assert bar.proto.value == 25
    assert (
        bar.proto.text.startswith(f"Job {running_id} · sync · running") and "30/120 page 3" in bar.proto.text
    )
    (error,) = at.error
    assert error.value.startswith(f"Job {failed_id} · sync · failed")
    assert "HTTP 500 from \\<b\\>stand\\-in\\</b\\>" in error.value  # escaped: never HTML
    assert at.success[0].value.startswith(f"Job {done_id} · sync · succeeded")


def test_demo_mode_has_no_sync_button(db_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(db_path, monkeypatch, HFOPS_DEMO="1")
    assert "status_sync_now" not in [b.key for b in at.button]
    assert not at.radio
    assert "HUGGINGFACE_API_KEY: not set" in texts(at)


def test_free_tier_panel_shows_windows_and_the_monthly_allowance(
    db_path: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import time

    from huggingface_hub.utils import parse_ratelimit_headers

    from hfops.ledger import hub_window, inference_usage
    from hfops.ledger.install import origin_key
    from hfops.store import get_db

    info = parse_ratelimit_headers(
        {"RateLimit": '"api";r=120;t=55', "RateLimit-Policy": '"fixed window";"api";q=500;w=300'}
    )
    assert info is not None
    hub_window.observe(get_db(db_path), origin_key("https://huggingface.co"), "api", info, time.time())
    for _ in range(3):
        inference_usage.record_inference(get_db(db_path), "some/model", "https://router.huggingface.co")
    config = tmp_path / "c.toml"
    config.write_text("[inference]\nmonthly_requests = 4\n")
    at = open_page(db_path, monkeypatch, HFOPS_CONFIG=str(config)).run()
    assert not at.exception
    assert "Free tier" in [h.value for h in at.subheader]
    shown = everything_rendered(at)
    assert "120 / 500" in shown  # the api window's remaining / quota
    assert "3 / 4" in shown  # requests used / allowance this month


def test_free_tier_panel_on_a_fresh_store_says_nothing_is_known_yet(
    db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page(db_path, monkeypatch).run()
    assert not at.exception
    assert "Free tier" in [h.value for h in at.subheader]
    assert any("rate-limit" in i.value or "No Hub" in i.value for i in [*at.info, *at.caption])
