"""The worker end to end: a real ``hfops worker`` process runs queued jobs, records progress, results and
errors, and re-runs a job it was killed in the middle of (the sync resumes; nothing lost or duplicated)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hfops import jobs, registry, worker
from hfops.config import load_settings
from hfops.paths import HUB_SNAPSHOT
from hfops.store import connect, utcnow
from tests.processes import stop_process

JOB_TIMEOUT = 120.0


def hfops_command() -> list[str]:
    """The installed ``hfops`` console script next to this interpreter (else ``python -m hfops.cli``)."""
    script = Path(sys.executable).with_name("hfops")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "hfops.cli"]


def wait_until(check: Callable[[], Any], timeout: float = JOB_TIMEOUT, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def finished_job(db_path: str, job_id: int) -> Callable[[], dict[str, Any] | None]:
    def check() -> dict[str, Any] | None:
        job = jobs.get_job(connect(db_path), job_id)
        return job if job and job["status"] in ("succeeded", "failed") else None

    return check


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    """Start ``hfops worker --db PATH`` processes; every one still running is stopped at teardown."""
    started: list[subprocess.Popen[bytes]] = []

    def start(db_path: str) -> subprocess.Popen[bytes]:
        with open(tmp_path / f"worker-{len(started)}.log", "wb") as log:  # the child keeps its own handle
            proc = subprocess.Popen(
                [*hfops_command(), "worker", "--db", db_path],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=tmp_path,
                env=dict(os.environ, HF_HUB_DISABLE_TELEMETRY="1"),
            )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        stop_process(proc)


def test_sync_job_runs_in_the_worker_with_progress_and_result(
    db_path: str, start_worker: Callable[[str], subprocess.Popen[bytes]]
) -> None:
    job_id = jobs.enqueue(db_path, "sync", {"snapshot": str(HUB_SNAPSHOT)})
    assert jobs.get_job(connect(db_path), job_id)["status"] == "queued"
    start_worker(db_path)
    job = wait_until(finished_job(db_path, job_id), what=f"sync job {job_id}")
    assert job["status"] == "succeeded", job["error"]
    records = sum(1 for line in HUB_SNAPSHOT.read_text().splitlines() if line.strip())
    assert job["result"]["seen"] == records
    assert job["done"] == job["total"] == records and job["message"] == "done"
    assert job["started_at"] and job["finished_at"] and job["error"] is None
    counts = registry.counts_by_status(connect(db_path))
    assert counts["candidate"] > 0


def test_failed_job_records_its_error_and_the_worker_keeps_going(
    db_path: str, tmp_path: Path, start_worker: Callable[[str], subprocess.Popen[bytes]]
) -> None:
    small = tmp_path / "small.jsonl"
    small.write_text("\n".join(HUB_SNAPSHOT.read_text().splitlines()[:40]) + "\n")
    failing = jobs.enqueue(db_path, "sync", {"snapshot": str(tmp_path / "missing.jsonl")})
    after = jobs.enqueue(db_path, "sync", {"snapshot": str(small)})
    start_worker(db_path)
    job = wait_until(finished_job(db_path, failing), what="the failing job")
    assert job["status"] == "failed"
    assert "missing.jsonl" in job["error"] and "not found" in job["error"]
    assert "Traceback" not in job["error"]
    job = wait_until(finished_job(db_path, after), what="the job after the failure")
    assert job["status"] == "succeeded" and job["result"]["seen"] == 40


def enqueue_long_sync(db_path: str, tmp_path: Path) -> tuple[int, int]:
    """A sync job over the real records twice (distinct ids) in small pages: long enough to stop mid-way.

    Returns the job id and the number of records the job stores in the end."""
    records = [json.loads(line) for line in HUB_SNAPSHOT.read_text().splitlines() if line.strip()]
    big = tmp_path / "big.jsonl"
    with big.open("w") as out:
        for copy in range(2):
            for record in records:
                out.write(json.dumps({**record, "id": f"{record['id']}-copy{copy}"}) + "\n")
    config = tmp_path / "small-pages.toml"
    config.write_text("[hub]\npage_size = 200\n")
    return jobs.enqueue(db_path, "sync", {"snapshot": str(big), "config": str(config)}), 2 * len(records)


def wait_for_progress(db_path: str, job_id: int, done: int = 1000) -> None:
    """Wait until job ``job_id`` has reported ``done`` items (mid-way through the long sync)."""
    wait_until(
        lambda: (jobs.get_job(connect(db_path), job_id).done or 0) >= done, what=f"progress past {done}"
    )


def test_killed_worker_job_is_rerun_on_restart(
    db_path: str, tmp_path: Path, start_worker: Callable[[str], subprocess.Popen[bytes]]
) -> None:
    job_id, total = enqueue_long_sync(db_path, tmp_path)

    worker = start_worker(db_path)
    wait_for_progress(db_path, job_id)
    worker.kill()
    worker.wait()
    db = connect(db_path)
    killed = jobs.get_job(db, job_id)
    assert killed["status"] == "running", "the job finished before the worker could be killed"
    stored_before = db.execute("SELECT COUNT(*) FROM models").fetchone()[0]
    assert 0 < stored_before < total

    start_worker(db_path)
    job = wait_until(finished_job(db_path, job_id), what="the re-run job")
    assert job["status"] == "succeeded", job["error"]
    assert job["started_at"] == killed["started_at"]  # the same job, re-run, not a new one
    db = connect(db_path)
    assert db.execute("SELECT COUNT(*), COUNT(DISTINCT model_id) FROM models").fetchone() == (total, total)
    runs = db.execute("SELECT status FROM sync_runs ORDER BY id").fetchall()
    assert [r[0] for r in runs] == ["interrupted", "succeeded"]
    assert [j["id"] for j in jobs.list_jobs(db, kind="sync")] == [job_id]  # the nightly may fire meanwhile


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_stop_signal_stops_the_worker_at_the_next_page_and_the_job_resumes_on_restart(
    db_path: str, tmp_path: Path, start_worker: Callable[[str], subprocess.Popen[bytes]], signum: int
) -> None:
    """Ctrl-C, and SIGTERM as docker stop or systemd send it (huey's own SIGTERM left the job mid-batch)."""
    job_id, total = enqueue_long_sync(db_path, tmp_path)
    worker = start_worker(db_path)
    wait_for_progress(db_path, job_id)
    worker.send_signal(signum)  # huey's graceful stop would wait for the whole pass
    assert worker.wait(timeout=60) == 0
    db = connect(db_path)
    stopped = jobs.get_job(db, job_id)
    assert stopped.status == "running", "the job finished before the worker could be stopped"
    assert stopped.message == jobs.STOPPED_WITH_THE_WORKER and stopped.interrupted_at
    assert 0 < db.execute("SELECT COUNT(*) FROM models").fetchone()[0] < total

    start_worker(db_path)
    job = wait_until(finished_job(db_path, job_id), what="the resumed job")
    assert job.status == "succeeded", job.error
    db = connect(db_path)
    assert db.execute("SELECT COUNT(*), COUNT(DISTINCT model_id) FROM models").fetchone() == (total, total)


def test_the_nightly_task_queues_one_job_per_slot_however_often_it_fires(db_path: str) -> None:
    settings = load_settings(None, **{"store.path": db_path})
    first = worker.enqueue_nightly(db_path, settings)
    assert first is not None
    assert worker.enqueue_nightly(db_path, settings) is None  # a second worker, or a restart in the minute
    assert [j["id"] for j in jobs.list_jobs(connect(db_path), kind="eval_nightly")] == [first]
    jobs.create_job(connect(db_path), "sync")  # another kind does not count
    assert worker.enqueue_nightly(db_path, settings) is None
    next_slot = utcnow()  # the next night's slot starts after the first job was created
    assert jobs.enqueue_unless_created_since(db_path, "eval_nightly", next_slot, {}, settings) is not None
