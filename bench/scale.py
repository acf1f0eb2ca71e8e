"""Benchmark: eval throughput on the embedded default vs Redis with 1 and 2 compute workers, in one run.

Workload: the retrieval shadow eval, packaged MiniLM vs BM25, on the shipped SQuAD v2 sample (1,124 queries
over 131 paragraphs: the per-example work dominates, as with any model answering example by example).
Every variant starts fresh worker processes (so each loads MiniLM once) and a fresh store:

- embedded: ``hfops worker --db`` (SQLite queue, batches computed in the owner's process);
- redis-1 / redis-2: a real ``redis-server`` on 127.0.0.1, ``hfops worker --role writer`` (the store owner)
  and 1 or 2 ``hfops worker --role compute`` in empty working directories.

Each worker process runs torch with ``--threads`` threads (default 1), so redis-2 on a 2-core machine is the
nearest stand-in for two 1-core machines; the machine is shared, so the ratios are taken within one run.
"cold" = from enqueue to the job's end (model loads included); "steady" = from the first stored batch to the
end (examples after the first batch / seconds). The Redis round trip is measured with ``ping`` payloads the
size of a real batch (the compute worker answers at once): enqueue -> result read by the owner.

Usage: python bench/scale.py [--limit N] [--batch 64] [--threads 1] [--pings 100] [--write]
``--write`` replaces the "## Scale" section of docs/performance.md with this run's figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from common import write_section

from hfops import jobs
from hfops.config import load_settings
from hfops.evals import runs
from hfops.evals.backends import MINILM_ID
from hfops.evals.data import load_eval_set
from hfops.remote import broker
from hfops.remote.executor import WINDOW
from hfops.remote.payload import PING, SCHEMA_VERSION, example_data
from hfops.store import connect, get_db
from tests.processes import stop_process
from tests.redis_kit import beating_workers, hfops_command, redis_binary, write_config
from tests.redis_kit import start_redis as start_redis_server

HEADING = "## Scale"
DATASET = "squad_v2"


class Processes:
    def __init__(self, folder: Path, threads: int) -> None:
        self.folder, self.threads = folder, threads
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, argv: list[str], name: str) -> subprocess.Popen[bytes]:
        cwd = self.folder / name
        cwd.mkdir(parents=True, exist_ok=True)
        threads = str(self.threads)
        env = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, PYTHONUNBUFFERED="1")
        with open(self.folder / f"{name}.log", "wb") as log:
            proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            stop_process(proc)
        self.procs = []


def start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = redis_binary(install=False)
    if binary is None:
        raise SystemExit("redis-server is not installed (bash scripts/install-sysdeps.sh as root)")
    return start_redis_server(binary, folder)


def timed_run(
    db_path: str, config: str, limit: int | None, batch: int, procs: Processes | None = None
) -> dict[str, Any]:
    """Enqueue the eval, follow its stored rows; cold and steady seconds (stops if a worker process died)."""
    settings = load_settings(config, **{"store.path": db_path})
    start = time.perf_counter()
    ids = runs.submit_run(
        db_path, MINILM_ID, "retrieval", DATASET, limit, settings, enqueue=True, config_path=config
    )
    first: float | None = None
    first_done = 0
    while True:
        job = jobs.get_job(connect(db_path), ids.job_id)
        run = runs.get_run(get_db(db_path), ids.run_id)
        now = time.perf_counter()
        if first is None and run is not None and run.done:
            first, first_done = now, run.done
        if job is not None and job.status in ("succeeded", "failed", "cancelled"):
            break
        dead = [p for p in (procs.procs if procs else []) if p.poll() is not None]
        if dead:
            raise SystemExit(f"a worker process exited ({dead[0].args}); see its log in {procs.folder}")
        if now - start > 3600:
            raise SystemExit("the eval did not finish within an hour")
        time.sleep(0.05)
    if job.status != "succeeded":
        raise SystemExit(f"the eval {job.status}: {job.error}")
    end = time.perf_counter()
    run = runs.get_run(get_db(db_path), ids.run_id)
    assert run is not None
    total = run.total or 0
    rows = (
        get_db(db_path)
        .execute(
            "SELECT COUNT(*), COUNT(DISTINCT example_id) FROM eval_examples WHERE run_id = ?", [ids.run_id]
        )
        .fetchone()
    )
    if tuple(rows) != (total, total):
        raise SystemExit(f"expected one row per example, got {tuple(rows)} for {total}")
    steady = (end - first) if first is not None else float("nan")
    return {
        "examples": total,
        "cold": end - start,
        "steady": steady,
        "steady_examples": total - first_done,
        "score": (run.candidate_score, run.production_score),
    }


def embedded(folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    procs = Processes(folder / "embedded", args.threads)
    db_path = str(folder / "embedded" / "owner" / "hfops.db")
    (folder / "embedded" / "owner").mkdir(parents=True)
    config = write_config(folder / "embedded" / "hfops.toml", args.batch, None)
    get_db(db_path)
    procs.start([*hfops_command(), "--config", config, "worker", "--db", db_path], "owner")
    try:
        return timed_run(db_path, config, args.limit, args.batch, procs)
    finally:
        procs.stop()


def on_redis(folder: Path, url: str, workers: int, args: argparse.Namespace) -> dict[str, Any]:
    import redis

    redis.Redis.from_url(url).flushall()
    here = folder / f"redis-{workers}"
    procs = Processes(here, args.threads)
    db_path = str(here / "owner" / "hfops.db")
    (here / "owner").mkdir(parents=True)
    config = write_config(here / "hfops.toml", args.batch, url)
    get_db(db_path)
    procs.start(
        [*hfops_command(), "--config", config, "worker", "--db", db_path, "--role", "writer"], "owner"
    )
    for n in range(workers):
        procs.start([*hfops_command(), "worker", "--queue", url, "--role", "compute"], f"compute-{n}")
    deadline = time.monotonic() + 120
    while len(beating_workers(url)) < workers:
        if time.monotonic() > deadline:
            raise SystemExit("compute workers did not start")
        time.sleep(0.1)
    try:
        return timed_run(db_path, config, args.limit, args.batch, procs)
    finally:
        procs.stop()


def round_trips(folder: Path, url: str, args: argparse.Namespace) -> dict[str, float]:
    """Enqueue -> result read, for ping payloads of one real batch, with one compute worker."""
    import redis

    redis.Redis.from_url(url).flushall()
    procs = Processes(folder / "pings", args.threads)
    procs.start([*hfops_command(), "worker", "--queue", url, "--role", "compute"], "compute")
    huey = broker.compute_huey(url)
    task = broker.compute_task(url)
    examples = load_eval_set(load_settings(None), DATASET, "retrieval", args.batch).examples
    payload = {"schema": SCHEMA_VERSION, "kind": PING, "examples": [example_data(e) for e in examples]}
    size = len(huey.serializer.serialize(payload))
    try:
        while not beating_workers(url):
            time.sleep(0.1)
        seconds = []
        for n in range(args.pings + 5):
            key = f"ping_{n}"
            start = time.perf_counter()
            huey.enqueue(task.s(dict(payload, key=key), id=key))
            while not huey.storage.has_data_for_key(key):
                huey.storage.wait_result(key, timeout=0.5)
            value = huey.get(key)
            elapsed = time.perf_counter() - start
            if not (isinstance(value, dict) and value.get("pong") == len(examples)):
                raise SystemExit(f"unexpected ping answer {value!r}")
            if n >= 5:  # the first few warm the connections
                seconds.append(elapsed)
    finally:
        procs.stop()
    seconds.sort()
    return {
        "median_ms": statistics.median(seconds) * 1000,
        "p95_ms": seconds[int(0.95 * (len(seconds) - 1))] * 1000,
        "bytes": float(size),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=None, help="queries (default: all 1,124)")
    parser.add_argument("--batch", type=int, default=64, help="[eval] batch_size")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker process")
    parser.add_argument("--pings", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=2, help="rounds (alternating order); the best is kept")
    parser.add_argument("--write", action="store_true", help="write the figures into docs/performance.md")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    rounds: dict[str, list[dict[str, Any]]] = {"embedded": [], "redis-1": [], "redis-2": []}
    with tempfile.TemporaryDirectory() as tmp:
        redis_proc, url = start_redis(Path(tmp))
        try:
            for round_no in range(args.repeat):
                order = list(rounds) if round_no % 2 == 0 else list(reversed(rounds))  # the load drifts
                for name in order:
                    folder = Path(tmp) / f"round-{round_no}"
                    folder.mkdir(exist_ok=True)
                    if name == "embedded":
                        result = embedded(folder, args)
                    else:
                        result = on_redis(folder, url, int(name.split("-")[1]), args)
                    rounds[name].append(result)
                    print(f"round {round_no + 1} {name}: {result}", flush=True)
            pings = round_trips(Path(tmp), url, args)
            print(f"round trip: {pings}", flush=True)
        finally:
            stop_process(redis_proc)
    load_after = os.getloadavg()[0]
    results = {}
    for name, found in rounds.items():  # the best round per measure (cold time; steady rate)
        best_steady = max(found, key=lambda r: r["steady_examples"] / r["steady"])
        results[name] = {
            **best_steady,
            "cold": min(r["cold"] for r in found),
            "cold_rounds": [round(r["cold"], 1) for r in found],
            "steady_rates": [round(r["steady_examples"] / r["steady"], 1) for r in found],
        }
    same_scores = len({tuple(r["score"]) for found in rounds.values() for r in found}) == 1

    base = results["embedded"]
    n_batches = -(-base["examples"] // args.batch)
    table = []
    for name, label in (
        ("embedded", "embedded default (SQLite queue, one process)"),
        ("redis-1", "Redis, writer + 1 compute worker"),
        ("redis-2", "Redis, writer + 2 compute workers"),
    ):
        r = results[name]
        cold_rate, steady_rate = r["examples"] / r["cold"], r["steady_examples"] / r["steady"]
        table.append(
            f"| {label} | {r['cold']:.1f} s | {cold_rate:.1f}/s | "
            f"{cold_rate / (base['examples'] / base['cold']):.2f}x "
            f"| {steady_rate:.1f}/s | {steady_rate / (base['steady_examples'] / base['steady']):.2f}x |"
        )
    same = same_scores
    rate = {name: r["steady_examples"] / r["steady"] for name, r in results.items()}
    per_round = "; ".join(
        f"{name}: cold {', '.join(f'{c} s' for c in r['cold_rounds'])}, steady "
        f"{', '.join(f'{x}/s' for x in r['steady_rates'])}"
        for name, r in results.items()
    )
    per_batch_ms = (results["redis-1"]["steady"] - base["steady"]) / max(1, n_batches - 1) * 1000
    summary = (
        f"{HEADING} (`bench/scale.py`)\n\n"
        f"Retrieval shadow eval, packaged MiniLM vs BM25, on the shipped {DATASET} sample: "
        f"{base['examples']} queries over 131 paragraphs, batches of {args.batch} ({n_batches} batches), "
        f"fresh worker processes and a fresh store per variant, {args.threads} torch thread(s) per worker "
        "process, a real `redis-server` 7.0 on 127.0.0.1. Cold = enqueue to end (each fresh worker loads "
        f"MiniLM); steady = first stored batch to end. Best of {args.repeat} rounds (alternating order); "
        "ratios are against the embedded default, measured in the same run (1-minute load average "
        f"{load_before:.1f} before, {load_after:.1f} after: the machine is shared).\n\n"
        "| variant | cold | cold rate | ratio | steady rate | ratio |\n|---|---|---|---|---|---|\n"
        + "\n".join(table)
        + "\n\n"
        f"Redis round trip of one batch-sized payload ({pings['bytes'] / 1024:.0f} KiB pickled, {args.batch} "
        f"examples; enqueue -> compute worker -> result read by the owner, no compute): median "
        f"{pings['median_ms']:.1f} ms, p95 {pings['p95_ms']:.1f} ms over {args.pings} sequential pings. "
        f"In a run the owner queues {WINDOW} batches ahead, so that hop overlaps the compute; steady redis-1 "
        f"minus embedded, per batch: {per_batch_ms:+.0f} ms (the embedded default also writes every "
        "embedding to the store's inference cache, a compute worker keeps them in memory; differences of "
        "this size are within the shared machine's noise).\n\n"
        f"Every variant and round stored exactly one row per example and the same scores: "
        f"{'yes' if same else 'NO'} "
        f"(ndcg@10 MiniLM {base['score'][0]:.4f} vs BM25 {base['score'][1]:.4f}).\n\n"
        f"Two compute workers against one (steady): {rate['redis-2'] / rate['redis-1']:.2f}x. Per round "
        f"({per_round}).\n\n"
        "What a 2-core machine can show: that splitting a run over workers loses nothing and what the queue "
        "costs (the round trip above, and redis-1 vs embedded: same compute, one more process and the Redis "
        "hop); with one torch thread per process, redis-2 vs redis-1 is the nearest stand-in for two 1-core "
        "machines. What it cannot show: scale-out on real machines. Owner, Redis, two workers and the other "
        "sessions' work share the same 2 cores, so redis-2 is bounded by ~2x of one thread whatever the "
        "design, and the figures move by tens of percent with the machine's load; cold, each worker also "
        "loads the model and prepares the corpus itself, so two fresh workers finish a short run later than "
        "one process. On separate machines (a GPU worker) the per-batch cost is the model's, and the "
        "millisecond round trip is noise next to it.\n"
    )
    print(summary)
    if args.write:
        write_section(HEADING, summary)


if __name__ == "__main__":
    main()
