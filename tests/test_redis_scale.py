"""Scale past one machine with a real ``redis-server`` on 127.0.0.1: a store owner (``--role writer``) and
compute workers (``--role compute``) in their own working directories with no path to the store.

An eval (the packaged MiniLM against BM25 on the shipped MS MARCO sample, no network) split across two
compute workers ends with exactly one row per example and the metrics of a single-machine run; a compute
worker killed (-9) mid-batch loses nothing (its batch is queued again after the lease); the owner killed and
restarted picks up the results that waited in Redis; a worker speaking another payload schema refuses work
with a clear message and the batch is computed by a worker that speaks it.

Skipped only when ``redis-server`` is missing and cannot be installed (scripts/install-sysdeps.sh).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hfops import jobs, worker
from hfops.config import Settings, load_settings
from hfops.evals import runs
from hfops.evals.backends import MINILM_ID, packaged_available
from hfops.remote import broker
from hfops.store import connect, get_db, rows
from tests.processes import free_port, stop_process

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 48
BATCH = 6  # 8 batches: enough to spread over two workers and to kill one in the middle
TIMEOUT = 240.0

pytestmark = [
    pytest.mark.xdist_group("redis"),
    pytest.mark.timeout(900),
    pytest.mark.skipif(not packaged_available(), reason="the packaged MiniLM is not installed"),
]


def redis_binary() -> str | None:
    found = shutil.which("redis-server")
    if found is None:
        subprocess.run(["bash", str(ROOT / "scripts" / "install-sysdeps.sh")], check=False)
        found = shutil.which("redis-server")
    return found


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free loopback port (no persistence), for this module's tests."""
    binary = redis_binary()
    if binary is None:
        pytest.skip("redis-server is not installed and could not be installed")
    folder = tmp_path_factory.mktemp("redis")
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    url = f"redis://127.0.0.1:{port}/0"
    import redis

    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except redis.exceptions.ConnectionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                stop_process(proc)
                raise
            time.sleep(0.05)
    yield url
    stop_process(proc)


@pytest.fixture
def clean_redis(redis_url: str) -> str:
    import redis

    redis.Redis.from_url(redis_url).flushall()
    return redis_url


def wait_until(check: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def hfops_command() -> list[str]:
    script = Path(sys.executable).with_name("hfops")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "hfops.cli"]


class Fleet:
    """Processes started by a test (owner, compute workers), their logs, stopped at teardown."""

    def __init__(self, tmp_path: Path, url: str) -> None:
        self.tmp_path, self.url = tmp_path, url
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: dict[int, Path] = {}

    def _start(self, argv: list[str], cwd: Path, name: str) -> subprocess.Popen[bytes]:
        cwd.mkdir(parents=True, exist_ok=True)
        log_path = self.tmp_path / "logs" / f"{name}-{len(self.procs)}.log"
        log_path.parent.mkdir(exist_ok=True)
        env = dict(os.environ, HF_HUB_DISABLE_TELEMETRY="1", PYTHONUNBUFFERED="1")
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, env=env)
        self.procs.append(proc)
        self.logs[proc.pid] = log_path
        return proc

    def compute(self, name: str, *prefix: str) -> subprocess.Popen[bytes]:
        """A compute worker in its own empty working directory (no config, no store)."""
        argv = [*(prefix or hfops_command()), "worker", "--queue", self.url, "--role", "compute"]
        return self._start(argv, self.tmp_path / name, name)

    def owner(self, db_path: str, config: str) -> subprocess.Popen[bytes]:
        argv = [*hfops_command(), "--config", config, "worker", "--db", db_path, "--role", "writer"]
        return self._start(argv, self.tmp_path / "owner", "owner")

    def log(self, proc: subprocess.Popen[bytes]) -> str:
        return self.logs[proc.pid].read_text(errors="replace")

    def stop(self) -> None:
        for proc in self.procs:
            stop_process(proc)


@pytest.fixture
def fleet(tmp_path: Path, clean_redis: str) -> Iterator[Fleet]:
    started = Fleet(tmp_path, clean_redis)
    yield started
    started.stop()


def write_config(path: Path, url: str | None) -> str:
    lines = ["[eval]", f"batch_size = {BATCH}", "bootstrap_samples = 200", "max_retries = 1"]
    if url:
        lines += ["", "[queue]", 'backend = "redis"', f'url = "{url}"']
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def submit(db_path: str, config: str, enqueue: bool) -> runs.SubmittedRun:
    settings: Settings = load_settings(config, **{"store.path": db_path})
    return runs.submit_run(
        db_path, MINILM_ID, "retrieval", "ms_marco", LIMIT, settings, enqueue=enqueue, config_path=config
    )


def stored(db_path: str, run_id: int) -> dict[str, Any]:
    """The run's per-example outputs and its metric rows, as stored."""
    db = get_db(db_path)
    examples = rows(
        db,
        "SELECT example_id, candidate_output, production_output FROM eval_examples WHERE run_id = ?",
        [run_id],
    )
    metrics = {
        (r["system"], r["metric"]): (r["value"], r["ci_low"], r["ci_high"], r["n"])
        for r in rows(db, "SELECT * FROM eval_metrics WHERE run_id = ?", [run_id])
    }
    return {
        "ids": [r["example_id"] for r in examples],
        "outputs": {r["example_id"]: (r["candidate_output"], r["production_output"]) for r in examples},
        "metrics": metrics,
        "run": runs.get_run(db, run_id),
    }


@pytest.fixture(scope="module")
def single_machine(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The same eval on one machine (SQLite queue, batches computed in process)."""
    folder = tmp_path_factory.mktemp("single")
    db_path = str(folder / "hfops.db")
    config = write_config(folder / "hfops.toml", None)
    ids = submit(db_path, config, enqueue=False)
    worker.execute_job(db_path, ids.job_id)
    result = stored(db_path, ids.run_id)
    assert result["run"].status == "succeeded", result["run"].error
    assert len(result["ids"]) == LIMIT
    return result


def finished(db_path: str, job_id: int) -> Callable[[], jobs.Job | None]:
    def check() -> jobs.Job | None:
        job = jobs.get_job(connect(db_path), job_id)
        return job if job and job.status in ("succeeded", "failed", "cancelled") else None

    return check


def redis_keys(url: str, prefix: str) -> dict[str, Any]:
    """huey's stored values under ``prefix`` (claims, heartbeats, corpus...), decoded."""
    huey = broker.compute_huey(url)
    return {k: huey.get(k, peek=True) for k in huey.all_results() if k.startswith(prefix)}


def assert_same_as_single_machine(result: dict[str, Any], single: dict[str, Any]) -> None:
    assert sorted(result["ids"]) == sorted(single["ids"]) and len(set(result["ids"])) == LIMIT
    assert result["outputs"] == single["outputs"]  # the same rankings, example by example
    assert result["metrics"].keys() == single["metrics"].keys()
    for key, values in single["metrics"].items():
        assert result["metrics"][key] == pytest.approx(values, abs=1e-12), key


def compute_pids_in(log: str) -> int:
    return log.count("executed in")


def test_an_eval_split_across_two_compute_workers_matches_a_single_machine_run(
    tmp_path: Path, fleet: Fleet, single_machine: dict[str, Any]
) -> None:
    db_path = str(tmp_path / "owner" / "hfops.db")
    (tmp_path / "owner").mkdir()
    config = write_config(tmp_path / "owner" / "hfops.toml", fleet.url)
    workers = [fleet.compute("compute-a"), fleet.compute("compute-b")]
    wait_until(lambda: len(redis_keys(fleet.url, "hfops:worker:")) == 2, "two compute workers beating")
    owner = fleet.owner(db_path, config)
    ids = submit(db_path, config, enqueue=True)
    job = wait_until(finished(db_path, ids.job_id), "the eval job")
    assert job.status == "succeeded", (job.error, fleet.log(owner))
    result = stored(db_path, ids.run_id)
    assert_same_as_single_machine(result, single_machine)
    # both workers computed batches; neither has (or made) a store in its working directory
    logs = [fleet.log(w) for w in workers]
    assert all(compute_pids_in(log) >= 1 for log in logs), logs
    assert sum(compute_pids_in(log) for log in logs) == LIMIT // BATCH
    for name in ("compute-a", "compute-b"):
        assert list((tmp_path / name).iterdir()) == []
    # nothing of the run is left in Redis: results, claims and the corpus were removed once stored
    assert redis_keys(fleet.url, "eval_") == {} and redis_keys(fleet.url, "hfops:claim:") == {}
    assert redis_keys(fleet.url, "hfops:corpus:") == {}


def test_a_compute_worker_killed_mid_batch_loses_nothing(
    tmp_path: Path, fleet: Fleet, single_machine: dict[str, Any]
) -> None:
    db_path = str(tmp_path / "owner" / "hfops.db")
    (tmp_path / "owner").mkdir()
    config = write_config(tmp_path / "owner" / "hfops.toml", fleet.url)
    workers = {w.pid: w for w in (fleet.compute("compute-a"), fleet.compute("compute-b"))}
    wait_until(lambda: len(redis_keys(fleet.url, "hfops:worker:")) == 2, "two compute workers beating")
    owner = fleet.owner(db_path, config)
    ids = submit(db_path, config, enqueue=True)
    preparing = wait_until(
        lambda: [c for c in redis_keys(fleet.url, "hfops:claim:").values() if c["phase"] == "preparing"],
        "a batch being prepared",
    )
    victim_name = str(preparing[0]["worker"])
    victim = workers[int(victim_name.rsplit(":", 1)[1])]
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    job = wait_until(finished(db_path, ids.job_id), "the eval job after the kill")
    assert job.status == "succeeded", (job.error, fleet.log(owner))
    assert f"compute worker {victim_name} stopped while" in fleet.log(owner)
    assert_same_as_single_machine(stored(db_path, ids.run_id), single_machine)


def test_results_wait_in_redis_while_the_owner_is_down(
    tmp_path: Path, fleet: Fleet, single_machine: dict[str, Any]
) -> None:
    db_path = str(tmp_path / "owner" / "hfops.db")
    (tmp_path / "owner").mkdir()
    config = write_config(tmp_path / "owner" / "hfops.toml", fleet.url)
    fleet.compute("compute-a")
    wait_until(lambda: redis_keys(fleet.url, "hfops:worker:"), "a compute worker beating")
    owner = fleet.owner(db_path, config)
    ids = submit(db_path, config, enqueue=True)
    wait_until(lambda: (runs.get_run(get_db(db_path), ids.run_id).done or 0) >= BATCH, "a first stored batch")
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    done_when_stopped = runs.get_run(get_db(db_path), ids.run_id).done
    assert done_when_stopped < LIMIT, "the run finished before the owner could be stopped"
    # the compute worker goes on; its results wait in Redis for the owner
    waiting = wait_until(lambda: redis_keys(fleet.url, "eval_"), "results waiting in Redis")
    assert all(isinstance(v, dict) and v.get("candidate") for v in waiting.values())
    assert runs.get_run(get_db(db_path), ids.run_id).done == done_when_stopped  # nobody else writes
    restarted = fleet.owner(db_path, config)
    job = wait_until(finished(db_path, ids.job_id), "the resumed eval job")
    assert job.status == "succeeded", (job.error, fleet.log(restarted))
    assert "adopted" in fleet.log(restarted)  # the waiting results were taken, not computed again
    assert_same_as_single_machine(stored(db_path, ids.run_id), single_machine)
    assert redis_keys(fleet.url, "eval_") == {}


SCHEMA_99 = (
    "import sys; import hfops.remote.payload as p; p.SCHEMA_VERSION = 99; "
    "from hfops.cli import main; sys.exit(main(sys.argv[1:]))"
)


def test_a_worker_of_another_payload_schema_refuses_with_a_clear_message(
    tmp_path: Path, fleet: Fleet, single_machine: dict[str, Any]
) -> None:
    db_path = str(tmp_path / "owner" / "hfops.db")
    (tmp_path / "owner").mkdir()
    config = write_config(tmp_path / "owner" / "hfops.toml", fleet.url)
    old = fleet.compute("compute-old", sys.executable, "-c", SCHEMA_99)
    wait_until(lambda: redis_keys(fleet.url, "hfops:worker:"), "the other-schema worker beating")
    owner = fleet.owner(db_path, config)
    ids = submit(db_path, config, enqueue=True)
    assert old.wait(timeout=TIMEOUT) == 2  # it refused and stopped
    message = fleet.log(old)
    assert "refuses a payload of schema version 1: it speaks version 99" in message
    assert "Run the same hfops version" in message and "Traceback" not in message
    job = wait_until(
        lambda: (j := jobs.get_job(connect(db_path), ids.job_id)) and "refused" in (j.message or "") and j,
        "the refusal in the job's message",
    )
    assert job.status == "running"
    fleet.compute("compute-new")
    job = wait_until(finished(db_path, ids.job_id), "the eval job on a worker that speaks the schema")
    assert job.status == "succeeded", (job.error, fleet.log(owner))
    assert_same_as_single_machine(stored(db_path, ids.run_id), single_machine)


def test_the_all_role_on_redis_computes_its_own_batches(
    tmp_path: Path, fleet: Fleet, single_machine: dict[str, Any]
) -> None:
    """`hfops worker` (role all) with the Redis queue: one process owns the store and serves the batches."""
    db_path = str(tmp_path / "owner" / "hfops.db")
    (tmp_path / "owner").mkdir()
    config = write_config(tmp_path / "owner" / "hfops.toml", fleet.url)
    owner = fleet._start(
        [*hfops_command(), "--config", config, "worker", "--db", db_path], tmp_path / "owner", "all"
    )
    ids = submit(db_path, config, enqueue=True)
    job = wait_until(finished(db_path, ids.job_id), "the eval job on the all-role worker")
    assert job.status == "succeeded", (job.error, fleet.log(owner))
    assert compute_pids_in(fleet.log(owner)) >= LIMIT // BATCH  # its own compute service took the batches
    assert_same_as_single_machine(stored(db_path, ids.run_id), single_machine)


def test_writer_and_compute_roles_need_the_redis_queue(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hfops.cli import main

    for role in ("compute", "writer"):
        assert main(["worker", "--db", str(tmp_path / "hfops.db"), "--role", role]) == 2
        err = capsys.readouterr().err
        assert f"--role {role} needs the Redis queue" in err and "Traceback" not in err


def test_an_unreachable_redis_is_one_line_naming_it_without_its_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from hfops.cli import main

    url = f"redis://user:s3cret@127.0.0.1:{free_port()}/0"
    assert main(["worker", "--queue", url, "--role", "compute"]) == 2
    err = capsys.readouterr().err
    assert "the compute queue at redis://user:***@127.0.0.1" in err and "unreachable" in err
    assert "s3cret" not in err and "Traceback" not in err
