"""The Hub window ledger: headers recorded from real huggingface_hub responses, pacing shared by processes.

The two-process tests run a sync-like listing (``HfApi.list_models``) and downloads (``hf_hub_download``)
in separate processes against a stand-in with short fixed windows (q=10, w=2 s). They check what the
stand-in saw (no 429; the first request after each wait landed in a later window than the response
that announced the wait), never how long anything took.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hfops import config, ledger
from hfops.ledger import hub_window, writer
from hfops.ledger.hub_window import RunRef
from hfops.ledger.install import origin_key
from hfops.store import get_db, rows
from tests.standins.ratelimited import RateLimitedHub, file_content

ROOT = Path(__file__).resolve().parent.parent
QUOTA, WINDOW = 10, 2
pytestmark = pytest.mark.xdist_group("ledger_processes")


@pytest.fixture(autouse=True)
def default_session() -> Iterator[None]:
    """Each test starts and ends with huggingface_hub's own session."""
    ledger.uninstall()
    yield
    ledger.uninstall()


def _settings(db_path: str, endpoint: str, reserve: float = 0.05, pacing: bool = True) -> config.Settings:
    settings = config.load_settings(None, **{"hub.endpoint": endpoint, "store.path": db_path})
    settings.hub.ratelimit_reserve = reserve  # type: ignore[attr-defined]
    settings.hub.ratelimit_pacing = pacing  # type: ignore[attr-defined]
    return settings


def _child(action: str, db_path: str, endpoint: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.ledger_clients",
            action,
            "--db",
            db_path,
            "--endpoint",
            endpoint,
            *extra,
        ],
        cwd=str(ROOT),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _result(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = process.communicate(timeout=240)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def _waits_end_in_a_later_window(
    hub: RateLimitedHub, waits: list[dict[str, Any]], route_of_pid: dict[int, str]
) -> None:
    """Each wait lasted until the announced reset: the waiting process's first request after the wait started
    was served in a later window than the bucket's last request before it (whichever process sent that)."""
    log = [e for e in hub.entries() if e["path"] != "/api/agent-harnesses"]
    for wait in waits:
        bucket = [e for e in log if e["resource"] == wait["resource"]]
        before = [e for e in bucket if e["at"] <= wait["started_epoch"]]
        after = [
            e for e in bucket if e["at"] > wait["started_epoch"] and e["route"] == route_of_pid[wait["pid"]]
        ]
        assert before and after, wait
        assert after[0]["window"] > before[-1]["window"], (wait, before[-1], after[0])


# --- two processes against the stand-in ------------------------------------------------------------------


def test_listing_and_downloads_in_two_processes_never_meet_a_429(db_path: str, tmp_path: Path) -> None:
    models, files = 60, 8  # 30 listing pages; 16 resolver requests (HEAD + GET per file)
    with RateLimitedHub(QUOTA, WINDOW, models=models, page_size=2) as hub:
        get_db(db_path)  # migrated once before both children start
        listing = _child("list", db_path, hub.url, "--run-id", "7")
        download = _child(
            "download", db_path, hub.url, "--files", str(files), "--cache", str(tmp_path / "cache")
        )
        listed, downloaded = _result(listing), _result(download)

        assert listed["ids"] == [f"org/model-{i}" for i in range(models)]
        assert downloaded["files"] == {
            f"file-{i}.txt": file_content("org/repo", f"file-{i}.txt").decode() for i in range(files)
        }
        assert hub.rejected == 0
        served = hub.entries()
        assert len([e for e in served if e["route"] == "api"]) == models // 2
        assert len([e for e in served if e["route"] == "resolvers"]) == 2 * files

        db = get_db(db_path)
        waits = rows(db, "SELECT * FROM hub_ratelimit_waits ORDER BY id")
        # 30 listing pages at 9 per window: the listing had to wait (the downloads may, too)
        assert {w["resource"] for w in waits} >= {"api"}
        for wait in waits:
            assert wait["reserve"] == 1 and wait["remaining"] <= 1 and wait["quota"] == QUOTA
            assert 0 < wait["seconds"] <= WINDOW + hub_window.WAIT_MARGIN_SECONDS
        _waits_end_in_a_later_window(hub, waits, {listed["pid"]: "api", downloaded["pid"]: "resolvers"})
        # every wait was reported to the process's callback with its message, and the listing's
        # against its run
        assert len(listed["waits"]) + len(downloaded["waits"]) == len(waits)
        assert all(
            m.startswith("waiting ") and m.endswith(" s for the Hub's api window") for m in listed["waits"]
        )
        assert hub_window.waits_for_run(db, RunRef("list", "7")).count == len(listed["waits"])
        assert {b.resource for b in hub_window.buckets(db)} == {"api", "resolvers"}


def test_processes_pace_by_one_shared_bucket(db_path: str, tmp_path: Path) -> None:
    """Both processes draw on one bucket: without the shared ledger each would spend the whole quota."""
    with RateLimitedHub(QUOTA, WINDOW, shared_bucket=True, models=40, page_size=2) as hub:
        get_db(db_path)
        listing = _child("list", db_path, hub.url)
        download = _child("download", db_path, hub.url, "--files", "10", "--cache", str(tmp_path / "cache"))
        listed, downloaded = _result(listing), _result(download)
        assert len(listed["ids"]) == 40 and len(downloaded["files"]) == 10
        assert hub.rejected == 0
        waits = rows(get_db(db_path), "SELECT * FROM hub_ratelimit_waits ORDER BY id")
        assert waits and {w["resource"] for w in waits} == {"api"}
        _waits_end_in_a_later_window(hub, waits, {listed["pid"]: "api", downloaded["pid"]: "resolvers"})
        per_window: dict[int, int] = {}
        for entry in hub.entries():
            per_window[entry["window"]] = per_window.get(entry["window"], 0) + 1
        assert max(per_window.values()) <= QUOTA


def test_without_pacing_the_same_two_listings_meet_429s(db_path: str) -> None:
    """The control: two listings at once with pacing off spend the window and are answered 429
    (huggingface_hub's own retry then waits for Retry-After, so both still finish)."""
    with RateLimitedHub(QUOTA, WINDOW, shared_bucket=True, models=40, page_size=2) as hub:
        get_db(db_path)
        first = _child("list", db_path, hub.url, "--no-pacing")
        second = _child("list", db_path, hub.url, "--no-pacing")
        assert len(_result(first)["ids"]) == len(_result(second)["ids"]) == 40
        assert hub.rejected > 0
        assert rows(get_db(db_path), "SELECT * FROM hub_ratelimit_waits") == []


# --- in one process ----------------------------------------------------------------------------------------


def test_headers_of_every_response_are_recorded_per_bucket(db_path: str) -> None:
    """Listing pages, model_info and tree calls, and downloads: each response of the real client counts."""
    from huggingface_hub import HfApi, hf_hub_download

    with RateLimitedHub(quota=50, window=60, models=6, page_size=2) as hub:
        ledger.install(db_path, _settings(db_path, hub.url))
        api_client = HfApi(endpoint=hub.url)
        assert len(list(api_client.list_models())) == 6
        assert api_client.model_info("org/repo").sha is not None
        assert [f.path for f in api_client.list_repo_tree("org/repo")] == ["a.txt"]
        hf_hub_download("org/repo", "a.txt", endpoint=hub.url, cache_dir=str(Path(db_path).parent / "c"))
        found = {b.resource: b for b in hub_window.buckets(get_db(db_path))}
        served = hub.entries()
    assert set(found) == {"api", "resolvers"}
    api, resolvers = found["api"], found["resolvers"]
    assert (api.remaining, api.quota, api.window_seconds, api.responses) == (50 - 5, 50, 60, 5)
    assert (resolvers.remaining, resolvers.responses) == (50 - 2, 2)
    # The window's reset as the responses announced it: t is whole seconds, rounded up by the server, and
    # the bucket keeps the window's first reset, so the last response's t may be up to a second less.
    last_api = [e for e in served if e["route"] == "api"][-1]
    assert 0 <= api.reset_at - api.observed_at - last_api["t"] < 1.0 + 0.01


def test_a_wait_is_reported_recorded_against_the_run_and_announced(db_path: str) -> None:
    """With an injected clock and sleep.

    The bucket at its reserve makes the next request wait until the reset.
    """
    clock = [1_000_000.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    db = get_db(db_path)
    info = _Info("api", remaining=1, reset_in_seconds=42, limit=20, window_seconds=60)
    hub_window.observe(db, "https://hub.example:443", "api", info, clock[0])
    notices: list[hub_window.WaitNotice] = []
    with hub_window.scope(on_wait=notices.append, run=RunRef("sync", 12)):
        waited = hub_window.pace(
            db, "https://hub.example:443", "api", 0.05, clock=lambda: clock[0], sleep=sleep
        )
    assert slept == [42 + hub_window.WAIT_MARGIN_SECONDS] and waited == slept[0]
    assert [n.message for n in notices] == ["waiting 43 s for the Hub's api window"]
    assert hub_window.waits_for_run(db, RunRef("sync", 12)).count == 1
    # after the reset the stale bucket no longer holds anyone back
    assert (
        hub_window.pace(db, "https://hub.example:443", "api", 0.05, clock=lambda: clock[0], sleep=sleep) == 0
    )
    # another resource, or a bucket above its reserve, does not wait either
    assert (
        hub_window.pace(
            db, "https://hub.example:443", "resolvers", 0.05, clock=lambda: 1_000_000.0, sleep=sleep
        )
        == 0
    )
    assert len(slept) == 1


def test_reserve_is_a_share_of_the_quota_at_least_one() -> None:
    assert hub_window.reserve_for(500, 0.05) == 25
    assert hub_window.reserve_for(10, 0.05) == 1
    assert hub_window.reserve_for(10, 0.0) == 0
    assert hub_window.reserve_for(None, 0.05) == 0
    bucket = hub_window.Bucket("o", "api", 25, 500, 300, reset_at=100.0, observed_at=50.0, responses=1)
    assert hub_window.wait_needed(bucket, 0.05, now=60.0) == 40.0 + hub_window.WAIT_MARGIN_SECONDS
    assert hub_window.wait_needed(bucket, 0.04, now=60.0) == 0.0  # reserve 20 < 25 left
    assert hub_window.wait_needed(bucket, 0.05, now=100.0) == 0.0  # the window has reset


def test_out_of_order_responses_keep_the_lowest_count_of_a_window(db_path: str) -> None:
    db = get_db(db_path)
    origin = "https://hub.example:443"
    hub_window.observe(db, origin, "api", _Info("api", 5, 30, 10, 60), now=1000.0)
    hub_window.observe(
        db, origin, "api", _Info("api", 7, 30, 10, 60), now=1000.2
    )  # a straggler of the window
    assert hub_window.buckets(db)[0].remaining == 5
    hub_window.observe(db, origin, "api", _Info("api", 9, 59, 10, 60), now=1031.0)  # the next window
    (bucket,) = hub_window.buckets(db)
    assert (bucket.remaining, bucket.reset_at) == (9, 1090.0)
    hub_window.observe(
        db, origin, "api", _Info("api", 2, 29, 10, 60), now=1001.0
    )  # late answer from the old one
    (bucket,) = hub_window.buckets(db)
    assert (bucket.remaining, bucket.reset_at, bucket.responses) == (9, 1090.0, 4)


def test_a_429_without_headers_closes_the_window_for_its_retry_after(db_path: str) -> None:
    db = get_db(db_path)
    hub_window.observe_exhausted(db, "https://hub.example:443", "resolvers", retry_after=30, now=500.0)
    (bucket,) = hub_window.buckets(db)
    assert (bucket.resource, bucket.remaining, bucket.reset_at) == ("resolvers", 0, 530.0)
    assert hub_window.wait_needed(bucket, 0.0, now=510.0) == 20.0 + hub_window.WAIT_MARGIN_SECONDS


def test_hub_origins_are_paced_inference_never_and_a_broken_ledger_never_fails_a_request(
    db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import HfApi, InferenceClient

    clock = [time.time()]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    with (
        RateLimitedHub(quota=50, window=60, models=8, page_size=2) as hub,
        RateLimitedHub(quota=50, window=60, models=8, page_size=2) as other,
        RateLimitedHub() as inference,
    ):
        settings = _settings(db_path, hub.url)
        settings.inference.base_url = inference.url
        ledger.install(db_path, settings, clock=lambda: clock[0], sleep=sleep)
        db = get_db(db_path)
        for server in (hub, other, inference):  # all announced as exhausted for the next 60 s
            hub_window.observe(db, origin_key(server.url), "pages", _Info("api", 0, 60, 50, 60), now=clock[0])
        InferenceClient(base_url=inference.url).chat_completion(
            [{"role": "user", "content": "hi"}], model="m"
        )
        assert slept == []  # the Inference API is never paced (the refiner has its own limits)
        assert len(list(HfApi(endpoint=hub.url).list_models(limit=2))) == 2
        assert slept == [60 + hub_window.WAIT_MARGIN_SECONDS]
        clock[0] -= slept[0]  # back before the reset: `other` is still announced as exhausted
        assert len(list(HfApi(endpoint=other.url).list_models(limit=2))) == 2  # a job's own endpoint, too
        assert len(slept) == 2
        assert writer.flush()  # (an Inference answer's headers would be recorded off the request path)
        assert {b.origin: b.responses for b in hub_window.buckets(db)} == {
            origin_key(hub.url): 2,
            origin_key(other.url): 2,
            origin_key(inference.url): 1,
        }

        def broken(*args: object, **kwargs: object) -> None:
            raise sqlite3.OperationalError("database is locked")

        monkeypatch.setattr(hub_window, "pace", broken)
        monkeypatch.setattr(hub_window, "observe", broken)
        clock[0] = time.time()
        assert len(list(HfApi(endpoint=hub.url).list_models(limit=2))) == 2
        assert hub.rejected == 0 and len(hub.entries()) == 2 and len(slept) == 2


class _Info:
    def __init__(
        self,
        resource_type: str,
        remaining: int,
        reset_in_seconds: int,
        limit: int | None,
        window_seconds: int | None,
    ) -> None:
        self.resource_type, self.remaining, self.reset_in_seconds = resource_type, remaining, reset_in_seconds
        self.limit, self.window_seconds = limit, window_seconds


def test_a_caller_that_must_not_block_gets_a_retryable_error_before_sending(db_path: str) -> None:
    from huggingface_hub import HfApi

    from hfops.errors import RetryableHubError

    with RateLimitedHub(quota=50, window=60, models=4, page_size=2) as hub:
        ledger.install(db_path, _settings(db_path, hub.url), sleep=lambda seconds: pytest.fail("slept"))
        hub_window.observe(
            get_db(db_path), origin_key(hub.url), "api", _Info("api", 2, 30, 50, 60), time.time()
        )
        with hub_window.scope(max_wait_seconds=5), pytest.raises(RetryableHubError) as raised:
            list(HfApi(endpoint=hub.url).list_models())
        assert 30 <= raised.value.retry_after <= 30 + hub_window.WAIT_MARGIN_SECONDS
        assert "api window is down to its reserve (2 left): retry in" in str(raised.value)
        assert hub.entries() == []


def test_installing_again_with_the_same_settings_keeps_the_session(db_path: str) -> None:
    from huggingface_hub.utils import get_session

    settings = _settings(db_path, "https://hub.example")
    first = ledger.install(db_path, settings)
    session = get_session()
    assert ledger.install(db_path, _settings(db_path, "https://hub.example")) is first
    assert get_session() is session
    changed = ledger.install(db_path, _settings(db_path, "https://hub.example", reserve=0.2))
    assert changed is not first and ledger.installed() is changed
    assert get_session() is not session
    assert any(hook == changed.before_request for hook in get_session().event_hooks["request"])


def test_a_process_scope_covers_threads_without_their_own(db_path: str) -> None:
    import threading

    db = get_db(db_path)
    hub_window.observe(db, "https://hub.example:443", "api", _Info("api", 0, 10, 20, 60), 1000.0)
    seen: list[tuple[str, str]] = []

    def in_a_pool_thread() -> None:  # its own connection, no scope of its own
        hub_window.pace(
            get_db(db_path),
            "https://hub.example:443",
            "api",
            0.05,
            clock=lambda: 1000.0,
            sleep=lambda s: None,
            max_waits=1,
        )

    with hub_window.process_scope(on_wait=lambda n: seen.append(("job", n.message)), run=RunRef("job", 3)):
        with hub_window.scope(on_wait=lambda n: seen.append(("own", n.message)), run=RunRef("sync", 4)):
            worker = threading.Thread(target=in_a_pool_thread)
            worker.start()
            worker.join()
            hub_window.pace(
                db,
                "https://hub.example:443",
                "api",
                0.05,
                clock=lambda: 1000.0,
                sleep=lambda s: None,
                max_waits=1,
            )
    assert seen == [
        ("job", "waiting 11 s for the Hub's api window"),
        ("own", "waiting 11 s for the Hub's api window"),
    ]
    assert hub_window.waits_for_run(db, RunRef("job", 3)).count == 1
    assert hub_window.waits_for_run(db, RunRef("sync", 4)).count == 1
    assert hub_window.current_scope() == (None, None)


# --- a sync run's own waits (issue 14) ---------------------------------------------------------------------


def _sync_config(tmp_path: Path, endpoint: str) -> Path:
    """A config whose rule lists the stand-in's records in one query, two records per page."""
    path = tmp_path / "hfops.toml"
    path.write_text(
        f'[hub]\nendpoint = "{endpoint}"\npage_size = 2\n'
        '[discovery]\npipeline_tags = ["feature-extraction"]\nlicenses = ["mit"]\n'
        "min_downloads = 0\nmin_likes = 0\nrequire_safetensors = false\n"
    )
    return path


def _assert_waits_on_the_sync_row(db_path: str, run_id: int) -> hub_window.WaitTotals:
    """The run's row counts exactly the waits the ledger recorded against ``RunRef("sync", id)``."""
    db = get_db(db_path)
    row = rows(db, "SELECT hub_waits, hub_wait_seconds, message FROM sync_runs WHERE id = ?", [run_id])[0]
    totals = hub_window.waits_for_run(db, RunRef("sync", run_id))
    assert totals.count >= 1  # 30 pages at 9 per window: the sync had to wait
    assert row["hub_waits"] == totals.count
    assert row["hub_wait_seconds"] == pytest.approx(totals.seconds, abs=0.01)
    assert (
        f"waited {totals.count}x, {totals.seconds:.0f} s in all, for the Hub's rate-limit window"
        in (row["message"])
    )
    unattributed = rows(
        db, "SELECT COUNT(*) n FROM hub_ratelimit_waits WHERE resource = 'api' AND run_id IS NULL"
    )
    assert unattributed[0]["n"] == 0  # the prefetch thread's waits are the run's too
    return totals


def test_a_sync_and_downloads_in_two_processes_never_meet_a_429_and_the_run_shows_its_waits(
    db_path: str, tmp_path: Path
) -> None:
    """The real `hfops sync` (next page prefetched on another thread) beside downloads in another process."""
    with RateLimitedHub(QUOTA, WINDOW, models=60, page_size=2) as hub:
        get_db(db_path)
        config_path = _sync_config(tmp_path, hub.url)
        sync = subprocess.Popen(
            [sys.executable, "-m", "hfops.cli", "--config", str(config_path), "sync", "--db", db_path,
             "--mode", "full", "--json", "--quiet"],
            cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        download = _child("download", db_path, hub.url, "--files", "8", "--cache", str(tmp_path / "cache"))
        out, err = sync.communicate(timeout=240)
        assert sync.returncode == 0, err[-3000:]
        synced, downloaded = json.loads(out), _result(download)
        assert synced["status"] == "succeeded" and synced["seen"] == 60, synced
        assert len(downloaded["files"]) == 8
        assert hub.rejected == 0
        totals = _assert_waits_on_the_sync_row(db_path, synced["id"])
        assert "waited" in synced["message"]
        waits = rows(get_db(db_path), "SELECT * FROM hub_ratelimit_waits WHERE run_kind = 'sync' ORDER BY id")
        assert len(waits) == totals.count
        sync_pid = waits[0]["pid"]
        _waits_end_in_a_later_window(hub, waits, {sync_pid: "api"})


def test_a_sync_job_records_its_waits_on_the_sync_run_and_tells_the_job(
    db_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hfops import jobs, worker
    from hfops.discovery import get_sync_run

    told: list[str] = []
    report = jobs.Progress.__call__

    def spy(self: jobs.Progress, done: int, total: int | None = None, message: str | None = None,
            force: bool = False) -> None:  # fmt: skip
        told.append(message or "")
        report(self, done, total, message, force)

    monkeypatch.setattr(jobs.Progress, "__call__", spy)
    with RateLimitedHub(QUOTA, WINDOW, models=30, page_size=2) as hub:
        settings = config.load_settings(str(_sync_config(tmp_path, hub.url)), **{"store.path": db_path})
        ledger.install(db_path, settings)
        job_id = jobs.create_job(get_db(db_path), "sync", {"mode": "full"}, settings)
        result = worker.execute_job(db_path, job_id)
        assert hub.rejected == 0
    assert result["status"] == "succeeded" and result["seen"] == 30
    totals = _assert_waits_on_the_sync_row(db_path, result["id"])
    assert len([m for m in told if m.startswith("waiting ") and "api window" in m]) == totals.count
    run = get_sync_run(get_db(db_path), result["id"])
    assert run is not None and (run.hub_waits, run.hub_wait_seconds) == (
        totals.count,
        round(totals.seconds, 3),
    )
    assert run.to_dict()["hub_waits"] == totals.count  # what `hfops status show --json` prints
    # recorded against the sync run the job ran, not against the job
    assert hub_window.waits_for_run(get_db(db_path), RunRef("job", job_id)).count == 0
