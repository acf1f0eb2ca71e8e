"""Benchmark: `hfops sync` against bare `HfApi.list_models` over the same 50,000 listings.

A stand-in Hub (tests/standins/hub.py, run as its own process like a real server) serves real records
from data/hub/models_snapshot.jsonl (text-generation, apache-2.0), replicated with distinct ids, in pages
of 1,000. Printed, measured in this one run:
- bare ``list(HfApi(endpoint).list_models(...))`` over the same pages (parsing into ModelInfo included);
- a full ``hfops`` sync into a fresh store, and the ratio sync / bare (goal <= 1.3);
- an incremental re-sync after 1 % of the records changed (a new commit: likes and lastModified), as a
  ratio of the full sync (goal <= 0.1).

Usage: python bench/sync.py [--listings 50000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
sys.path.insert(0, str(ROOT))

from huggingface_hub import HfApi  # noqa: E402

from hfops.config import DiscoveryConfig, HubConfig, Settings  # noqa: E402
from hfops.discovery import EXPAND_FIELDS, sync_hub  # noqa: E402
from hfops.paths import HUB_SNAPSHOT  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listings", type=int, default=50_000)
    args = parser.parse_args()
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.standins.hub", "--records", str(HUB_SNAPSHOT), "--replicate",
         str(args.listings), "--pipeline-tag", "text-generation", "--license", "apache-2.0"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    try:
        url = server.stdout.readline().strip()
        query = dict(filter="license:apache-2.0", pipeline_tag="text-generation", sort="downloads",
                     expand=list(EXPAND_FIELDS))
        list(HfApi(endpoint=url).list_models(limit=10, **query))  # warm the stand-in's sorted result set
        start = time.perf_counter()
        bare = list(HfApi(endpoint=url).list_models(limit=args.listings, **query))
        bare_s = time.perf_counter() - start

        settings = Settings()
        settings.hub = HubConfig(endpoint=url, page_size=1000)
        settings.discovery = DiscoveryConfig(pipeline_tags=["text-generation"], licenses=["apache-2.0"],
                                             min_downloads=0, min_likes=0)
        with tempfile.TemporaryDirectory() as tmp:
            db_path = str(Path(tmp) / "bench.db")
            start = time.perf_counter()
            full = sync_hub(db_path, settings, mode="full")
            full_s = time.perf_counter() - start

            now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
            httpx.post(f"{url}/_control/touch", json={"every": 100, "last_modified": now}).raise_for_status()
            start = time.perf_counter()
            incremental = sync_hub(db_path, settings, mode="auto")
            incr_s = time.perf_counter() - start
    finally:
        server.kill()

    result = {
        "listings": args.listings,
        "bare_list_models_s": round(bare_s, 2),
        "bare_models": len(bare),
        "hfops_full_sync_s": round(full_s, 2),
        "full_sync_stored": full["inserted"],
        "ratio_sync_vs_bare": round(full_s / bare_s, 2),
        "incremental_resync_s": round(incr_s, 3),
        "incremental_mode": incremental["mode"],
        "incremental_pages": incremental["pages"],
        "incremental_updated": incremental["updated"],
        "ratio_incremental_vs_full": round(incr_s / full_s, 3),
        "goals": {"ratio_sync_vs_bare": "<= 1.3", "ratio_incremental_vs_full": "<= 0.1"},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
