"""Benchmark: `hfops sync` against the bare huggingface_hub client over exactly the same queries.

A fast stand-in Hub (tests/standins/hub.py run as its own process; each record JSON-encoded once, so a page
costs little more than socket I/O) serves
- **real**: a real listing (default: the complete 11 July 2024 listing of the four text tasks, 165,746
  records, ../shared/data/hf_hub_models) to the default rule's 32 queries (4 pipeline tags x 8 licence ids)
  with thresholds at 0, so that every listed record is fetched;
- **replicated**: data/hub records (text-generation, apache-2.0) replicated with distinct ids (one query).

Each measurement runs in its own process (peak memory is that process's maximum RSS). Printed per row, in
one run, medians of ``--repeats`` A/B-alternating repeats:
- bare ``list(HfApi(endpoint).list_models(...))`` over the same queries (ModelInfo parsing included);
- a full ``hfops`` sync into a fresh store, as a ratio of the bare client (goal <= 1.3);
- an incremental (auto) re-sync with nothing changed, and after 1 % of the records changed (a new commit:
  likes and lastModified), as ratios of the full sync;
- records/s and peak memory of each; and ``sync --snapshot`` of the same records from a file;
- the CPU seconds of the bare client and of the full sync (each process's own, all threads) and their ratio:
  on a shared machine the wall-clock ratio moves with the load, the CPU ratio much less;
- with ``--baseline-lib DIR`` (another hfops ``lib/``, e.g. ``git archive HEAD~3 lib | tar -x -C /tmp/b``),
  the same full sync run by that code too, alternating with the other two in every repeat: before / after
  figures from one run.

Usage: python bench/sync.py [--records FILE] [--replicate 50000] [--repeats 3] [--rows real,replicated]
       [--baseline-lib DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import ROOT, load_avg  # offline-safe set-up, the repository on sys.path

REAL_LISTING = (
    ROOT.parent / "shared" / "data" / "hf_hub_models" / "hf_api_models_2024-07-11_text_tasks.jsonl.gz"
)


def settings_for(url: str, row: str) -> Any:
    from hfops.config import DiscoveryConfig, HubConfig, Settings

    settings = Settings()
    settings.hub = HubConfig(endpoint=url, page_size=1000)
    if row == "real":  # the default rule's queries, nothing cut by the thresholds
        settings.discovery = DiscoveryConfig(min_downloads=0, min_likes=0)
    else:
        settings.discovery = DiscoveryConfig(
            pipeline_tags=["text-generation"], licenses=["apache-2.0"], min_downloads=0, min_likes=0
        )
    return settings


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args: argparse.Namespace) -> None:
    """One measurement in this process (imports done before the clock starts); prints
    ``{"seconds", "records", "peak_mib", ...}``."""
    from huggingface_hub import HfApi

    from hfops.config import Settings
    from hfops.discovery import EXPAND_FIELDS, HubSource, sync_hub, sync_snapshot

    start = time.perf_counter()
    cpu_start = time.process_time()
    if args.child == "bare":
        settings = settings_for(args.url, args.row)
        api = HfApi(endpoint=args.url)
        records = 0
        for query in HubSource(settings.hub, settings.discovery).queries():
            values = dict(query)
            filters = [values["filter"]] if "filter" in values else None
            listing = api.list_models(
                filter=filters,
                pipeline_tag=values["pipeline_tag"],
                sort="downloads",
                expand=list(EXPAND_FIELDS),
            )
            records += sum(1 for _ in listing)
        out: dict[str, Any] = {"records": records}
    elif args.child == "snapshot":
        settings = Settings()
        settings.discovery.min_downloads = settings.discovery.min_likes = 0
        run = sync_snapshot(args.db, args.snapshot, settings)
        out = {"records": run.records, "status": run.status}
    else:
        run = sync_hub(args.db, settings_for(args.url, args.row), mode=args.mode)
        out = {"records": run.records, "mode": run.mode, "status": run.status, "updated": run.updated,
               "pages": run.pages}  # fmt: skip
    out["seconds"] = time.perf_counter() - start
    out["cpu_seconds"] = (
        time.process_time() - cpu_start
    )  # this process's CPU (all threads): steadier under load
    out["peak_mib"] = peak_mib()
    print(json.dumps(out))


def measure(
    kind: str, url: str, row: str, db: str = "", mode: str = "full", snapshot: str = "", lib: str = ""
) -> dict[str, Any]:
    """One child process's measurement; ``lib``: import hfops from that ``lib/`` folder instead."""
    cmd = [sys.executable, __file__, "--child", kind, "--url", url, "--row", row, "--db", db, "--mode", mode,
           "--snapshot", snapshot]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (lib, os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def warm(url: str, row: str) -> None:
    """Ask the stand-in for one record of every query in both orders a sync uses (its caches fill up)."""
    import httpx

    from hfops.discovery import HubSource

    settings = settings_for(url, row)
    for since in (None, "2000-01-01T00:00:00.000Z"):
        source = HubSource(settings.hub, settings.discovery, since=since)
        for query in source.queries():
            params = [(k, 1 if k == "limit" else v) for k, v in query]
            httpx.get(f"{url}/api/models", params=params, timeout=120).raise_for_status()


def start_standin(records: str, replicate: int, extra: list[str]) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "tests.standins.hub", "--records", records, *extra]
    if replicate:
        cmd += ["--replicate", str(replicate)]
    server = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    return server, server.stdout.readline().strip()


def bench_row(
    row: str, records: str, replicate: int, extra: list[str], repeats: int, baseline_lib: str = ""
) -> dict[str, Any]:
    import httpx

    server, url = start_standin(records, replicate, extra)
    try:
        warm(url, row)  # the stand-in sorts and encodes every result set once, for both sort orders
        bare: list[dict[str, Any]] = []
        full: list[dict[str, Any]] = []
        base: list[dict[str, Any]] = []
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(repeats):  # A/B alternating
                db = str(Path(tmp) / f"full{i}.db")
                pair = [
                    ("bare", lambda: measure("bare", url, row)),
                    ("full", lambda db=db: measure("sync", url, row, db)),
                ]
                if baseline_lib:
                    pair.append(
                        ("base", lambda i=i: measure("sync", url, row, str(Path(tmp) / f"base{i}.db"),
                                                     lib=baseline_lib))
                    )  # fmt: skip
                for name, fn in pair if i % 2 == 0 else reversed(pair):
                    {"bare": bare, "full": full, "base": base}[name].append(fn())
            db = str(Path(tmp) / f"full{repeats - 1}.db")
            quiet = measure("sync", url, row, db, mode="auto")
            now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
            httpx.post(
                f"{url}/_control/touch", json={"every": 100, "last_modified": now}, timeout=60
            ).raise_for_status()
            warm(url, row)  # the stand-in re-sorts after the change: not the client's time
            changed = measure("sync", url, row, db, mode="auto")
            snapshot = ""
            if row == "real":
                snapshot = records
            else:
                snapshot = str(Path(tmp) / "replicated.jsonl")
                dump_replicated(records, replicate, extra, snapshot)
            snap = measure("snapshot", url, row, str(Path(tmp) / "snap.db"), snapshot=snapshot)
    finally:
        server.kill()
        server.wait()
    measured = [("bare", bare), ("full", full), ("base", base)]
    med = {k: statistics.median(m["seconds"] for m in v) for k, v in measured if v}
    cpu = {k: statistics.median(m["cpu_seconds"] for m in v) for k, v in measured if v}
    baseline = {}
    if base:
        baseline = {
            "baseline_lib": baseline_lib,
            "baseline_full_sync_s": round(med["base"], 2),
            "baseline_ratio_full_vs_bare": round(med["base"] / med["bare"], 2),
            "baseline_full_sync_cpu_s": round(cpu["base"], 2),
            "baseline_ratio_full_vs_bare_cpu": round(cpu["base"] / cpu["bare"], 2),
        }
    return {
        "row": row,
        "records_listed": full[-1]["records"],
        "bare_s": round(med["bare"], 2),
        "full_sync_s": round(med["full"], 2),
        "ratio_full_vs_bare": round(med["full"] / med["bare"], 2),
        "bare_cpu_s": round(cpu["bare"], 2),
        "full_sync_cpu_s": round(cpu["full"], 2),
        "ratio_full_vs_bare_cpu": round(cpu["full"] / cpu["bare"], 2),
        "bare_records_per_s": round(bare[-1]["records"] / med["bare"]),
        "full_records_per_s": round(full[-1]["records"] / med["full"]),
        "incremental_nothing_changed_s": round(quiet["seconds"], 2),
        "incremental_nothing_changed_records": quiet["records"],
        "ratio_nothing_changed_vs_full": round(quiet["seconds"] / med["full"], 3),
        "incremental_1pct_changed_s": round(changed["seconds"], 2),
        "incremental_1pct_updated": changed["updated"],
        "ratio_1pct_changed_vs_full": round(changed["seconds"] / med["full"], 3),
        "peak_mib_bare": round(max(m["peak_mib"] for m in bare)),
        "peak_mib_full_sync": round(max(m["peak_mib"] for m in full)),
        "snapshot_sync_s": round(snap["seconds"], 2),
        "snapshot_records": snap["records"],
        "peak_mib_snapshot_sync": round(snap["peak_mib"]),
        "repeats": repeats,
        **baseline,
    }


def dump_replicated(records: str, n: int, extra: list[str], path: str) -> None:
    from tests.standins.hub import load_records, replicate

    chosen = [r for r in load_records(records) if r.get("pipeline_tag") == "text-generation"
              and "license:apache-2.0" in (r.get("tags") or [])]  # fmt: skip
    with open(path, "w", encoding="utf-8") as fh:
        for record in replicate(chosen, n):
            fh.write(json.dumps(record) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", default=str(REAL_LISTING), help="the real listing (JSON Lines, .gz too)")
    parser.add_argument("--replicate", type=int, default=50_000, help="records in the replicated row")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", default="real,replicated")
    parser.add_argument("--baseline-lib", default="", help="also run the full sync with hfops from this lib/")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--row", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="full", help=argparse.SUPPRESS)
    parser.add_argument("--snapshot", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    from hfops.paths import HUB_SNAPSHOT

    load = load_avg()
    results = []
    for row in args.rows.split(","):
        if row == "real":
            if not Path(args.records).exists():
                print(f"skipping the real row: {args.records} not found", file=sys.stderr)
                continue
            results.append(bench_row("real", args.records, 0, [], args.repeats, args.baseline_lib))
        else:
            extra = ["--pipeline-tag", "text-generation", "--license", "apache-2.0"]
            replicated = bench_row(
                "replicated", str(HUB_SNAPSHOT), args.replicate, extra, args.repeats, args.baseline_lib
            )
            results.append(replicated)
        print(json.dumps(results[-1], indent=2), flush=True)
    print(json.dumps({"load_average_start": load, "load_average_end": load_avg()}))


if __name__ == "__main__":
    main()
