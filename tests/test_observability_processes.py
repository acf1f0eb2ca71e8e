"""The exporter as a real process.

Same numbers after a restart, consistent scrapes while another process writes.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hfops.observability.collector import scrape
from tests.observability_kit import Samples, exporter, get, parse
from tests.observability_seed import EXPECTED, seed

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_a_restarted_exporter_reports_the_same_numbers(db_path: str) -> None:
    seed(db_path)
    with exporter(db_path) as url:
        first = parse(get(url))
        assert parse(get(url)) == first
    with exporter(db_path) as url:  # a new process: nothing kept in memory
        second = parse(get(url))
    assert second == first
    for key, value in EXPECTED.items():
        assert second[key] == pytest.approx(value, abs=1e-9), key
    once = subprocess.run(
        [sys.executable, "-m", "hfops.cli", "metrics", "--once", "--db", db_path],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert parse(once.stdout) == first


WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from hfops.store import connect, utcnow, write_tx

    db_path, folder, per_phase = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    db = connect(db_path)
    CALL = ("INSERT INTO refine_calls (created_at, query_hash, query_chars, source, model, outcome, "
            "bypass_reason, hf_requested, latency_ms, hf_latency_ms, budget_ms, within_budget) "
            "VALUES (?, 'h', 1, ?, 'm', ?, ?, ?, ?, ?, 800, 1)")

    def pair():
        # one transaction: an answered HF request and a limiter refusal, always together
        with write_tx(db):
            db.execute(CALL, [utcnow(), "hf", "ok", None, 1, 300.0, 250.0])
            db.execute(CALL, [utcnow(), "local", "skipped", "rate_limited", 0, 15.0, None])
            db.execute("INSERT INTO eval_runs (model_id, production_id, task, dataset, dataset_source, "
                       "dataset_version, status, created_at, finished_at, updated_at) "
                       "VALUES ('m', 'baseline:bm25', 'retrieval', 'ms_marco', "
                       "'local', 'v', 'running', ?, NULL, ?)", [utcnow(), utcnow()])
            run_id = db.execute("SELECT last_insert_rowid()").fetchone()[0]
        with write_tx(db):
            db.execute("UPDATE eval_runs SET status = 'succeeded', finished_at = ? WHERE id = ?",
                       [utcnow(), run_id])

    for _ in range(per_phase):
        pair()
    (folder / "half").touch()
    while not (folder / "go").exists():
        time.sleep(0.01)
    for _ in range(per_phase):
        pair()
        time.sleep(0.002)
""")


def check_consistent(samples: Samples) -> tuple[float, float]:
    """Invariants every scrape must satisfy whatever the writer is doing.

    Returns (ok requests, runs ended).
    """
    ok = samples[("sarvanom_hf_inference_requests_total", (("outcome", "ok"),))]
    limiter = samples[("sarvanom_hf_inference_rate_limited_total", (("reason", "limiter"),))]
    assert ok == limiter  # written in one transaction: a scrape sees both or neither
    assert samples[("sarvanom_hf_inference_attempts_total", ())] == ok + limiter
    hf_count = samples[("sarvanom_refine_latency_seconds_count", (("source", "hf"),))]
    assert (
        hf_count
        == ok
        == samples[("sarvanom_refine_latency_seconds_bucket", (("le", "0.3"), ("source", "hf")))]
    )
    assert samples[("sarvanom_refine_latency_seconds_bucket", (("le", "0.2"), ("source", "hf")))] == 0
    assert samples[("sarvanom_refiner_latency_hf_api_seconds_count", ())] == ok
    assert samples[("sarvanom_refiner_latency_hf_api_seconds_sum", ())] == pytest.approx(0.25 * ok)
    buckets = [
        v
        for (name, labels), v in sorted(samples.items())
        if name == "sarvanom_refine_latency_seconds_bucket" and ("source", "local") in labels
    ]
    assert (
        buckets and max(buckets) == samples[("sarvanom_refine_latency_seconds_count", (("source", "local"),))]
    )
    ended = samples[("sarvanom_shadow_eval_runs_total", (("status", "succeeded"),))]
    running = samples[("sarvanom_shadow_eval_runs_active", (("status", "running"),))]
    assert running in (0, 1)  # a run is inserted running and finished in the next transaction
    return ok, ended


@pytest.mark.slow
def test_scrapes_stay_consistent_while_another_process_writes(db_path: str, tmp_path: Path) -> None:
    per_phase = 150
    scrape(db_path)  # create the store before the writer starts
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, db_path, str(tmp_path), str(per_phase)],
        cwd=str(ROOT),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "half").exists():
            assert writer.poll() is None, writer.communicate()
            assert time.monotonic() < deadline, "writer did not reach the half-way mark"
            check_consistent(parse(scrape(db_path)))
            time.sleep(0.01)
        ok, ended = check_consistent(parse(scrape(db_path)))
        assert (ok, ended) == (per_phase, per_phase)  # the writer is paused: exact
        (tmp_path / "go").touch()
        seen = [ok]
        while writer.poll() is None:
            ok, ended = check_consistent(parse(scrape(db_path)))
            assert ok >= seen[-1]  # counters never go back
            seen.append(ok)
            assert time.monotonic() < deadline
        assert writer.returncode == 0, writer.communicate()
        final = parse(scrape(db_path))
        assert check_consistent(final) == (2 * per_phase, 2 * per_phase)
        with exporter(db_path) as url:  # a fresh process counts the same rows from scratch
            with_http = parse(get(url))
        assert with_http == final
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
