"""Benchmark: how long a first start takes to show real content (issue 12).

A fresh store, as ``make run`` makes it: ``hfops init`` loads the embedded default and queues the starter
runs; then a real ``hfops worker`` process runs them. Printed, from one run: the seconds until the embedded
default is loaded, until each starter run has finished (the Leaderboard, the run pages, Observability and the
Demo page have real content from the first), and until all have; with the machine's load average.

Usage: python bench/starter.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
sys.path.insert(0, str(ROOT / "lib"))

from hfops.store import connect  # noqa: E402

HFOPS = [sys.executable, "-m", "hfops.cli"]
TIMEOUT_SECONDS = 1800


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        db_path = str(Path(folder) / "hfops.db")
        started = time.monotonic()
        init = subprocess.run([*HFOPS, "init", "--db", db_path], capture_output=True, text=True, check=True)
        loaded = time.monotonic() - started
        print(init.stdout.strip())
        worker = subprocess.Popen(
            [*HFOPS, "worker", "--db", db_path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        finished: dict[int, float] = {}
        try:
            while time.monotonic() - started < TIMEOUT_SECONDS:
                rows = (
                    connect(db_path)
                    .execute("SELECT id, status, model_id, task, dataset, total FROM eval_runs ORDER BY id")
                    .fetchall()
                )
                for run_id, status, *_ in rows:
                    if status in ("succeeded", "failed") and run_id not in finished:
                        finished[run_id] = time.monotonic() - started
                if rows and len(finished) == len(rows):
                    break
                time.sleep(0.5)
        finally:
            worker.terminate()
            worker.wait(timeout=60)
        print(f"load average {os.getloadavg()[0]:.1f}")
        print(f"embedded default loaded and starters queued: {loaded:.1f} s")
        for run_id, status, model_id, task, dataset, total in rows:
            seconds = finished.get(run_id)
            when = f"{seconds:.1f} s" if seconds is not None else "not finished"
            print(f"run {run_id} {status}: {model_id} {task} on {dataset} ({total} examples): {when}")
        if finished:
            first, last = min(finished.values()), max(finished.values())
            print(f"first real content after {first:.1f} s, all after {last:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
