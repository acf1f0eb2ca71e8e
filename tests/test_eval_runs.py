"""Shadow runs end to end: real numbers on the shipped samples, registry moves, caching, resume after kill,
failures that do not abort, the HF Inference path against the stand-in (429/503/timeout), nightly, worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hfops import jobs, registry, worker
from hfops.cli import main
from hfops.config import Settings, load_settings
from hfops.evals import nightly, runs, scoring
from hfops.evals.backends import (
    MINILM_ID,
    BackendError,
    BM25Retriever,
    InferenceApiEmbedder,
    call_with_retries,
    resolve_system,
)
from hfops.evals.cache import CacheKey, InferenceCache
from hfops.evals.data import load_eval_set
from hfops.store import connect, get_db, rows, write_tx
from tests.registry_rows import add_candidates
from tests.standins.inference import TEST_API_KEY, InferenceStandIn

REPO = Path(__file__).resolve().parent.parent
API_KEY = TEST_API_KEY


# --- helpers (also used by the page tests) ------------------------------------------------------------------


def write_config(path: Path, base_url: str = "http://127.0.0.1:9", **eval_values: Any) -> str:
    """A TOML config: inference base URL plus ``[eval]`` values (fast retries by default)."""
    values = {"max_retries": 1, "max_retry_wait_seconds": 0.01, "bootstrap_samples": 200, **eval_values}
    lines = ["[inference]", f'base_url = "{base_url}"', "timeout_seconds = 5.0", "", "[eval]"]
    for key, value in values.items():
        lines.append(f"{key} = {json.dumps(value)}")
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def settings_of(config: str, db_path: str) -> Settings:
    return load_settings(config, **{"store.path": db_path})


def eval_cli(config: str, db_path: str, *args: str) -> int:
    """``hfops --config CONFIG eval --db DB ARGS...`` in this process; ``ARGS`` may be one string of words."""
    words = [w for a in args for w in (a.split() if " " in a else [a])]
    return main(["--config", config, "eval", "--db", db_path, *words])


def run_eval(
    db_path: str, config: str, model: str, task: str, dataset: str, limit: int | None, **kwargs: Any
) -> dict[str, Any]:
    """Submit and execute one run in this process; returns its summary."""
    ids = runs.submit_run(
        db_path,
        model,
        task,
        dataset,
        limit,
        settings_of(config, db_path),
        enqueue=False,
        config_path=config,
        **kwargs,
    )
    worker.execute_job(db_path, ids["job_id"])
    return runs.summary(get_db(db_path), ids["run_id"])


def metric_rows(db_path: str, run_id: int) -> dict[tuple[str, str], tuple[float, float, float]]:
    return {
        (r["system"], r["metric"]): (r["value"], r["ci_low"], r["ci_high"])
        for r in rows(get_db(db_path), "SELECT * FROM eval_metrics WHERE run_id = ?", [run_id])
    }


def flat(metrics: dict[tuple[str, str], tuple[float, float, float]]) -> dict[str, float]:
    """``{"system/metric/value|low|high": number}`` (pytest.approx compares flat mappings)."""
    return {
        f"{s}/{m}/{part}": v
        for (s, m), values in metrics.items()
        for part, v in zip(("value", "low", "high"), values, strict=True)
    }


def example_counts(db_path: str, run_id: int) -> tuple[int, int]:
    return (
        get_db(db_path)
        .execute("SELECT COUNT(*), COUNT(DISTINCT example_id) FROM eval_examples WHERE run_id = ?", [run_id])
        .fetchone()
    )


def work_requests(server: InferenceStandIn) -> list[dict[str, Any]]:
    return [r for r in server.requests if not r["path"].startswith("/_control")]


# --- the packaged MiniLM against BM25 on the shipped samples ------------------------------------------------


@pytest.mark.xdist_group("minilm")  # one process loads the packaged model once
def test_minilm_vs_bm25_real_numbers_recomputable_cached_and_audited(db_path: str, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", batch_size=4)
    add_candidates(db_path, [{"model_id": MINILM_ID, "pipeline_tag": "sentence-similarity"}])
    first = run_eval(db_path, config, MINILM_ID, "retrieval", "ms_marco", 8)
    assert first["status"] == "succeeded" and first["production_id"] == "baseline:bm25"
    assert first["total"] == first["done"] == 8 and example_counts(db_path, first["run_id"]) == (8, 8)
    assert first["model_calls"] > 0 and first["candidate_errors"] == first["production_errors"] == 0
    stored = metric_rows(db_path, first["run_id"])
    assert {m for _, m in stored} == set(scoring.RETRIEVAL_KEYS)
    for (system, metric), (value, low, high) in stored.items():
        if system != "delta":
            assert 0.0 <= low <= value + 1e-9 and value <= high + 1e-9 <= 1.0 + 1e-9, (system, metric)

    # the numbers are recomputable from the stored outputs with the plain metric functions
    examples = runs.run_examples(get_db(db_path), first["run_id"])
    relevant = {e["example_id"]: e["expected"]["relevant"] for e in examples}
    for side in ("candidate", "production"):
        ranked = {e["example_id"]: e[f"{side}_output"] for e in examples}
        direct = scoring.retrieval(ranked, relevant)
        for metric in scoring.RETRIEVAL_KEYS:
            assert stored[(side, metric)][0] == pytest.approx(direct[metric])
    again = runs.recompute_metrics(get_db(db_path), first["run_id"], settings_of(config, db_path))
    assert flat({(r.system, r.metric): (r.value, r.ci_low, r.ci_high) for r in again.rows}) == pytest.approx(
        flat(stored)
    )

    # registry: candidate -> evaluating -> shadow|candidate, evidence = the run
    history = registry.status_history(get_db(db_path), MINILM_ID)
    assert [(h["from_status"], h["to_status"]) for h in history][0] == ("candidate", "evaluating")
    assert all(h["evidence"] == f"eval_run:{first['run_id']}" and h["actor"] == "eval" for h in history)
    expected_status = "candidate" if first["recommendation"] == "reject" else "shadow"
    assert history[-1]["to_status"] == expected_status == first["status_after"]

    # a second identical run: same numbers, every output from the cache, no model call
    second = run_eval(db_path, config, MINILM_ID, "retrieval", "ms_marco", 8)
    assert second["model_calls"] == 0 and second["cache_misses"] == 0 and second["cache_hits"] > 0
    assert flat(metric_rows(db_path, second["run_id"])) == pytest.approx(flat(stored))
    assert (
        get_db(db_path)
        .execute("SELECT MIN(candidate_cached) FROM eval_examples WHERE run_id = ?", [second["run_id"]])
        .fetchone()[0]
        == 1
    )


def test_bm25_baseline_numbers_are_stable() -> None:
    """BM25 on the shipped SQuAD v2 sample (first 40 of the deterministic sample): pinned numbers."""
    evalset = load_eval_set(load_settings(None), "squad_v2", "retrieval", 40)
    bm25 = BM25Retriever()
    cache = InferenceCache(connect(":memory:"))
    bm25.prepare(evalset, cache)
    outcomes = bm25.run(evalset.examples, evalset, cache)
    result = scoring.retrieval(
        {e.id: o.output for e, o in zip(evalset.examples, outcomes, strict=True)},
        {e.id: e.relevant for e in evalset.examples},
    )
    assert result == pytest.approx(PINNED_BM25_SQUAD_40, abs=1e-9)
    assert bm25.calls == 0


PINNED_BM25_SQUAD_40 = {
    "mrr@10": 0.8110416666666665,
    "recall@1": 0.725,
    "recall@5": 0.95,
    "recall@10": 0.975,
    "ndcg@10": 0.8510891515903509,
    "total": 40,
}


@pytest.mark.xdist_group("minilm")  # one process loads the packaged model once
def test_cached_hf_model_is_a_local_backend(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A sentence-transformers model in the local HF cache runs locally, keyed by its snapshot revision."""
    from hfops.evals.backends import packaged_minilm

    revision = "0123456789abcdef0123456789abcdef01234567"
    snapshot = tmp_path / "hub" / "models--acme--mini" / "snapshots" / revision
    snapshot.parent.mkdir(parents=True)
    snapshot.symlink_to(packaged_minilm().path, target_is_directory=True)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text(revision)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    system = resolve_system("acme/mini", "retrieval", load_settings(None))
    assert (system.backend, system.revision) == ("sentence-transformers:hf-cache", revision)
    texts = ["Who ruled the duchy of Normandy?", "The Rhine flows through Switzerland."]
    ours = system.embedder.embed(texts)
    packaged = packaged_minilm().embed(texts)
    assert ours.shape == (2, 384) and np.allclose(ours, packaged, atol=1e-5)
    (snapshot.parent.parent / "refs" / "main").unlink()  # pinned-revision download: still found
    assert resolve_system("acme/mini", "retrieval", load_settings(None)).revision == revision
    with pytest.raises(BackendError, match="not available locally"):
        resolve_system("acme/absent", "retrieval", load_settings(None), backend="local")


# --- HF Inference API (stand-in): feature extraction and chat completion -----------------------------------


def test_feature_extraction_run_through_inference_api(
    db_path: str, tmp_path: Path, fresh_standin: InferenceStandIn, api_key: str
) -> None:
    config = write_config(tmp_path / "c.toml", fresh_standin.url, batch_size=5)
    first = run_eval(db_path, config, "acme/embedder", "retrieval", "squad_v2", 12)
    assert first["status"] == "succeeded" and first["done"] == 12
    sent = work_requests(fresh_standin)
    assert {r["path"] for r in sent} == {"/hf-inference/models/acme/embedder/pipeline/feature-extraction"}
    assert all(
        {k.lower(): v for k, v in r["headers"].items()}["authorization"] == f"Bearer {api_key}" for r in sent
    )
    assert all(isinstance(r["body"]["inputs"], list) and len(r["body"]["inputs"]) <= 32 for r in sent)
    embedded = sum(len(r["body"]["inputs"]) for r in sent)
    assert embedded == 131 + 12 == first["model_calls"]  # every paragraph once, every question once
    count = fresh_standin.count
    second = run_eval(db_path, config, "acme/embedder", "retrieval", "squad_v2", 12)
    assert fresh_standin.count == count, "a re-run must not call the model"
    assert second["model_calls"] == 0 and second["cache_hits"] == 131 + 12
    assert flat(metric_rows(db_path, second["run_id"])) == pytest.approx(
        flat(metric_rows(db_path, first["run_id"]))
    )
    run = runs.get_run(get_db(db_path), first["run_id"])
    assert run["candidate_backend"] == "hf-inference:feature-extraction"
    assert API_KEY not in json.dumps(run, default=str)


def test_chat_completion_qa_run(
    db_path: str, tmp_path: Path, fresh_standin: InferenceStandIn, api_key: str
) -> None:
    fresh_standin.reply = "Unanswerable."
    config = write_config(tmp_path / "c.toml", fresh_standin.url)
    summary = run_eval(db_path, config, "acme/chat", "qa", "squad_v2", 6)
    assert summary["status"] == "succeeded" and summary["production_id"] == "baseline:lexical"
    sent = work_requests(fresh_standin)
    assert len(sent) == 6 and {r["path"] for r in sent} == {"/v1/chat/completions"}
    body = sent[0]["body"]
    assert body["model"] == "acme/chat" and body["temperature"] == 0 and body["max_tokens"] == 48
    assert body["messages"][0]["role"] == "system" and "Question:" in body["messages"][1]["content"]
    examples = runs.run_examples(get_db(db_path), summary["run_id"])
    assert all(e["candidate_output"] == "" for e in examples)  # "unanswerable" = empty answer
    for e in examples:  # no-answer scores 100 exactly when the question is unanswerable
        assert e["candidate_scores"]["exact"] == (0.0 if e["expected"]["answers"] else 100.0)
    stored = metric_rows(db_path, summary["run_id"])
    assert ("candidate", "NoAns_exact") in stored and stored[("candidate", "NoAns_exact")][0] == 100.0
    count = fresh_standin.count
    again = run_eval(db_path, config, "acme/chat", "qa", "squad_v2", 6)
    assert fresh_standin.count == count and again["model_calls"] == 0


@pytest.mark.parametrize(
    ("behaviour", "message", "timeout"),
    [
        ("rate_limited", "rate limited (429) after 2 attempts", 5.0),
        ("unavailable", "service unavailable (503) after 2 attempts", 5.0),
        ("hanging", "timed out after 2 attempts", 0.3),
        ("credits", "out of inference credits (402)", 5.0),
        ("garbage", "invalid chat completion response", 5.0),
    ],
)
def test_inference_failures_are_recorded_per_example(
    db_path: str,
    tmp_path: Path,
    fresh_standin: InferenceStandIn,
    api_key: str,
    behaviour: str,
    message: str,
    timeout: float,
) -> None:
    fresh_standin.behaviour = behaviour
    config = write_config(tmp_path / "c.toml", fresh_standin.url)
    Path(config).write_text(
        Path(config).read_text().replace("timeout_seconds = 5.0", f"timeout_seconds = {timeout}")
    )
    summary = run_eval(db_path, config, "acme/chat", "qa", "squad_v2", 3)
    assert summary["status"] == "succeeded", summary["error"]
    assert summary["candidate_errors"] == 3 and summary["production_errors"] == 0
    assert summary["recommendation"] == "reject" and "error rate" in summary["recommendation_reason"]
    examples = runs.run_examples(get_db(db_path), summary["run_id"])
    assert all(message in e["candidate_error"] for e in examples)
    assert all(e["candidate_primary"] == 0.0 for e in examples)  # a failure never counts as a no-answer
    retried = behaviour in ("rate_limited", "unavailable", "hanging")
    assert fresh_standin.count == 3 * (2 if retried else 1)
    assert API_KEY not in json.dumps([e.to_dict() for e in examples])


def test_retry_after_is_honoured_but_capped(fresh_standin: InferenceStandIn, api_key: str) -> None:
    from huggingface_hub import InferenceClient

    client = InferenceClient(base_url=fresh_standin.url, token=api_key, timeout=2)
    settings = load_settings(None, **{"eval.max_retries": 2, "eval.max_retry_wait_seconds": 7.0})
    waits: list[float] = []
    fresh_standin.behaviour, fresh_standin.retry_after = "rate_limited", "3"
    with pytest.raises(BackendError, match=r"rate limited \(429\) after 3 attempts"):
        call_with_retries(
            lambda: client.chat_completion([{"role": "user", "content": "x"}], model="m"),
            settings,
            sleep=waits.append,
        )
    assert waits == [3.0, 3.0]
    waits.clear()
    fresh_standin.retry_after = "60"
    with pytest.raises(BackendError):
        call_with_retries(
            lambda: client.chat_completion([{"role": "user", "content": "x"}], model="m"),
            settings,
            sleep=waits.append,
        )
    assert waits == [7.0, 7.0]
    fresh_standin.behaviour = "fast"
    assert call_with_retries(lambda: "ok", settings, sleep=waits.append) == "ok"


def test_feature_extraction_shape_checked(fresh_standin: InferenceStandIn, api_key: str) -> None:
    fresh_standin.behaviour = "garbage"
    embedder = InferenceApiEmbedder(
        "acme/embedder", load_settings(None, **{"inference.base_url": fresh_standin.url})
    )
    with pytest.raises(BackendError, match="invalid response"):
        embedder.embed(["a"])
    fresh_standin.behaviour = "fast"
    vectors = embedder.embed(["a", "b", "a"])
    assert vectors.shape == (3, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0)


class ScheduledStandIn(InferenceStandIn):
    """The stand-in with a behaviour chosen per request number (requests are sequential in a run)."""

    def __init__(self, schedule: dict[int, str]) -> None:
        super().__init__()
        self.schedule = schedule

    def _handler_class(self) -> type:
        base = super()._handler_class()
        server = self

        class Scheduled(base):  # type: ignore[misc, valid-type]
            def do_POST(self) -> None:  # noqa: N802
                server.behaviour = server.schedule.get(server.count + 1, "fast")
                super().do_POST()

        return Scheduled


def test_failed_examples_do_not_abort_the_run(db_path: str, tmp_path: Path, api_key: str) -> None:
    with ScheduledStandIn({3: "unavailable", 4: "unavailable", 5: "credits"}) as server:
        config = write_config(tmp_path / "c.toml", server.url, max_retries=0)
        summary = run_eval(db_path, config, "acme/chat", "qa", "squad_v2", 8)
    assert summary["status"] == "succeeded" and summary["done"] == 8
    assert example_counts(db_path, summary["run_id"]) == (8, 8)
    failed = [e for e in runs.run_examples(get_db(db_path), summary["run_id"]) if e["candidate_error"]]
    assert [e["position"] for e in failed] == [2, 3, 4]
    assert [e["candidate_error"] for e in failed] == ["service unavailable (503)"] * 2 + [
        "out of inference credits (402)"
    ]


def test_backend_that_keeps_failing_stops_the_run_and_resume_completes_it(
    db_path: str,
    tmp_path: Path,
    fresh_standin: InferenceStandIn,
    api_key: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    add_candidates(
        db_path,
        [{"model_id": "acme/chat", "pipeline_tag": "text-generation", "library_name": "transformers"}],
    )
    config = write_config(tmp_path / "c.toml", fresh_standin.url, max_consecutive_errors=3, batch_size=2)
    fresh_standin.behaviour = "credits"
    ids = runs.submit_run(
        db_path,
        "acme/chat",
        "qa",
        "squad_v2",
        6,
        settings_of(config, db_path),
        enqueue=False,
        config_path=config,
    )
    outcome = worker.execute_job(db_path, ids["job_id"])
    assert "stopped: acme/chat failed 4 examples in a row" in outcome["error"]
    run = runs.get_run(get_db(db_path), ids["run_id"])
    assert run["status"] == "failed" and example_counts(db_path, ids["run_id"]) == (0, 0)
    assert registry.get_model(get_db(db_path), "acme/chat")["candidate"]["status"] == "candidate"

    fresh_standin.behaviour = "fast"
    fresh_standin.reply = "Normandy"
    code = eval_cli(config, db_path, "--resume", str(ids["run_id"]), "--json --quiet")
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "succeeded" and result["done"] == 6 and result["candidate_errors"] == 0
    assert example_counts(db_path, ids["run_id"]) == (6, 6)
    moves = [
        (h["from_status"], h["to_status"]) for h in registry.status_history(get_db(db_path), "acme/chat")
    ]
    assert moves[:2] == [("candidate", "evaluating"), ("evaluating", "candidate")]
    assert moves[2] == ("candidate", "evaluating") and moves[3][0] == "evaluating" and len(moves) == 4


def test_run_killed_midway_resumes_with_one_result_per_example(
    db_path: str, tmp_path: Path, api_key: str
) -> None:
    with InferenceStandIn(behaviour="slow") as server:  # 0.4 s per request
        config = write_config(tmp_path / "c.toml", server.url, batch_size=2)
        env = {**os.environ, "HUGGINGFACE_API_KEY": api_key}
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hfops.cli",
                "--config",
                config,
                "eval",
                "--db",
                db_path,
                "--model",
                "acme/embedder",
                "--task",
                "retrieval",
                "--dataset",
                "ms_marco",
                "--limit",
                "12",
                "--quiet",
            ],
            env=env,
            cwd=str(tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 120
            done = 0
            while time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.1)
                try:
                    found = get_db(db_path).execute("SELECT done FROM eval_runs WHERE id = 1").fetchone()
                except Exception:  # the store may not exist yet
                    found = None
                done = found[0] if found else 0
                if done >= 4:
                    break
            assert proc.poll() is None, proc.communicate()
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(timeout=30)
        run = runs.get_run(get_db(db_path), 1)
        assert run["status"] == "running" and 4 <= run["done"] < 12
        before = server.count
        done_before = run["done"]
        result = worker.execute_job(db_path, run["job_id"])  # the worker would do the same at start
        assert result["status"] == "succeeded" and result["done"] == 12
        assert example_counts(db_path, 1) == (12, 12)
        resumed = server.requests[before:]
        # the corpus came from the cache; at most the remaining questions were embedded, 2 per request
        assert resumed and all(len(r["body"]["inputs"]) <= 2 for r in resumed)
        assert sum(len(r["body"]["inputs"]) for r in resumed) <= 12 - done_before
    job = jobs.get_job(get_db(db_path), run["job_id"])
    assert job["status"] == "succeeded"


# --- requests, nightly, worker, CLI -------------------------------------------------------------------------


def test_bad_requests_store_nothing(
    db_path: str, tmp_path: Path, api_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path / "c.toml")
    settings = settings_of(config, db_path)
    with pytest.raises(runs.EvalError, match="unknown task 'summaries'"):
        runs.submit_run(db_path, "acme/x", "summaries", "squad_v2", settings=settings, enqueue=False)
    with pytest.raises(runs.EvalError, match="unknown dataset 'imdb'"):
        runs.submit_run(db_path, "acme/x", "qa", "imdb", settings=settings, enqueue=False)
    with pytest.raises(runs.EvalError, match="at least 1"):
        runs.submit_run(db_path, "acme/x", "qa", "squad_v2", 0, settings=settings, enqueue=False)
    with pytest.raises(runs.EvalError, match="cannot be compared with itself"):
        runs.submit_run(db_path, "baseline:bm25", "retrieval", "squad_v2", settings=settings, enqueue=False)
    with pytest.raises(BackendError, match="not a qa baseline"):
        runs.submit_run(db_path, "baseline:bm25", "qa", "squad_v2", settings=settings, enqueue=False)
    monkeypatch.delenv("HUGGINGFACE_API_KEY")
    with pytest.raises(BackendError, match="HUGGINGFACE_API_KEY is not set"):
        runs.submit_run(db_path, "acme/x", "qa", "squad_v2", settings=settings, enqueue=False)
    assert get_db(db_path).execute("SELECT COUNT(*) FROM eval_runs").fetchone()[0] == 0
    assert get_db(db_path).execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 0


def test_empty_dataset_fails_the_run_with_the_file_name(
    db_path: str, tmp_path: Path, fresh_standin: InferenceStandIn, api_key: str
) -> None:
    data = tmp_path / "data" / "squad_v2"
    data.mkdir(parents=True)
    (data / "dev-v2.0.sample.flat.jsonl").write_text("")
    config = write_config(tmp_path / "c.toml", fresh_standin.url, data_dir=str(tmp_path / "data"))
    summary = run_eval(db_path, config, "acme/chat", "qa", "squad_v2", 3)
    assert summary["status"] == "failed"
    assert "dev-v2.0.sample.flat.jsonl: the file is empty" in summary["error"]
    assert fresh_standin.count == 0


def test_production_is_the_promoted_model(
    db_path: str, tmp_path: Path, fresh_standin: InferenceStandIn, api_key: str
) -> None:
    add_candidates(
        db_path,
        [
            {"model_id": "acme/prod", "pipeline_tag": "feature-extraction", "status": "promoted"},
            {"model_id": "acme/cand", "pipeline_tag": "feature-extraction", "status": "shadow"},
        ],
    )
    config = write_config(tmp_path / "c.toml", fresh_standin.url)
    summary = run_eval(db_path, config, "acme/cand", "retrieval", "ms_marco", 4)
    assert summary["production_id"] == "acme/prod" and summary["status"] == "succeeded"
    paths = {r["path"] for r in work_requests(fresh_standin)}
    assert paths == {f"/hf-inference/models/acme/{m}/pipeline/feature-extraction" for m in ("prod", "cand")}
    assert registry.get_model(get_db(db_path), "acme/cand")["candidate"]["status"] in ("shadow", "candidate")
    assert registry.get_model(get_db(db_path), "acme/prod")["candidate"]["status"] == "promoted"
    board = runs.leaderboard(get_db(db_path), "retrieval", "ms_marco")
    assert {r["model_id"]: r["role"] for r in board} == {"acme/prod": "production", "acme/cand": "candidate"}
    latest = runs.latest_scores(get_db(db_path))
    assert {(r["model_id"], r["metric"]) for r in latest} == {
        (m, k) for m in ("acme/prod", "acme/cand") for k in scoring.RETRIEVAL_KEYS
    }
    assert all(r["task"] == "retrieval" and r["dataset"] == "ms_marco" and r["run_id"] == 1 for r in latest)


def test_nightly_evaluates_candidates_without_a_current_run(
    db_path: str,
    tmp_path: Path,
    fresh_standin: InferenceStandIn,
    api_key: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_candidates(
        db_path,
        [
            {"model_id": "acme/embed", "pipeline_tag": "feature-extraction"},
            {"model_id": "acme/gone", "pipeline_tag": "feature-extraction", "status": "rejected"},
            {"model_id": "acme/vision", "pipeline_tag": "image-classification"},
        ],
    )
    config = write_config(tmp_path / "c.toml", fresh_standin.url, default_limit=3)
    code = eval_cli(config, db_path, "--nightly --json --quiet")
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["planned"] == 2 and result["skipped"] == []
    assert {(r["model"], r["dataset"]) for r in result["runs"]} == {
        ("acme/embed", "squad_v2"),
        ("acme/embed", "ms_marco"),
    }
    assert all(r["error"] is None for r in result["runs"])
    assert [r["total"] for r in runs.list_runs(get_db(db_path))] == [3, 3]
    planned, _ = nightly.plan_nightly(db_path, settings_of(config, db_path))
    assert planned == []  # both datasets have a run on their current version

    monkeypatch.delenv("HUGGINGFACE_API_KEY")  # now the model cannot run here: skipped with the reason
    registry.set_status(get_db(db_path), "acme/gone", "candidate", "retry", actor="test")
    planned, skipped = nightly.plan_nightly(db_path, settings_of(config, db_path))
    assert planned == [] and {s["model"] for s in skipped} == {"acme/embed", "acme/gone"}
    assert all("HUGGINGFACE_API_KEY is not set" in s["reason"] for s in skipped)


def test_runs_and_nightly_go_through_the_worker_queue(
    db_path: str, tmp_path: Path, fresh_standin: InferenceStandIn, api_key: str
) -> None:
    from hfops.queue import get_huey

    config = write_config(tmp_path / "c.toml", fresh_standin.url, default_limit=2)
    ids = runs.submit_run(
        db_path, "acme/embed", "retrieval", "ms_marco", 3, settings_of(config, db_path), config_path=config
    )
    assert jobs.get_job(get_db(db_path), ids["job_id"])["status"] == "queued"
    assert runs.get_run(get_db(db_path), ids["run_id"])["status"] == "queued"
    huey = get_huey(db_path)
    task = huey.dequeue()
    huey.execute(task)
    assert jobs.get_job(get_db(db_path), ids["job_id"])["status"] == "succeeded"
    assert runs.get_run(get_db(db_path), ids["run_id"])["status"] == "succeeded"
    assert runs.run_for_job(get_db(db_path), ids["job_id"])["id"] == ids["run_id"]

    nightly_job = jobs.enqueue(db_path, "eval_nightly", {}, settings_of(config, db_path))
    huey.execute(huey.dequeue())
    job = jobs.get_job(get_db(db_path), nightly_job)
    assert job["status"] == "succeeded" and job["result"]["planned"] == 0  # acme/embed is not in the registry


def test_cli_eval_show_and_list(
    db_path: str,
    tmp_path: Path,
    fresh_standin: InferenceStandIn,
    api_key: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = write_config(tmp_path / "c.toml", fresh_standin.url)
    code = eval_cli(config, db_path, "--model acme/embed --task retrieval --dataset ms_marco --limit 5")
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "run 1 succeeded: acme/embed vs baseline:bm25 - retrieval on ms_marco" in captured.out
    assert "ndcg@10" in captured.out and "recommendation: " in captured.out
    assert "run 1: computing metrics on 5 examples" in captured.err  # the progress line's last phase
    assert eval_cli(config, db_path, "--show 1 --json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["id"] == 1 and len(shown["metrics"]) == 15
    assert eval_cli(config, db_path, "--list") == 0
    assert "acme/embed vs baseline:bm25 retrieval/ms_marco 5/5" in capsys.readouterr().out
    assert main(["eval", "--db", db_path, "--model", "acme/embed"]) == 2
    assert "--task, --dataset required" in capsys.readouterr().err
    assert main(["eval", "--db", db_path, "--show", "99"]) == 2
    assert "no eval run 99" in capsys.readouterr().err


def test_enqueue_from_cli(
    db_path: str,
    tmp_path: Path,
    fresh_standin: InferenceStandIn,
    api_key: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = write_config(tmp_path / "c.toml", fresh_standin.url, default_limit=2)
    marco = "--model acme/embed --task retrieval --dataset ms_marco"
    code = eval_cli(config, db_path, marco, "--enqueue --json")
    assert code == 0
    ids = json.loads(capsys.readouterr().out)
    assert jobs.get_job(get_db(db_path), ids["job_id"])["status"] == "queued"
    assert runs.get_run(get_db(db_path), ids["run_id"])["sample_limit"] == 2  # [eval] default_limit
    assert fresh_standin.count == 0  # nothing ran here
    code = eval_cli(config, db_path, marco, "--limit 0 --enqueue --json")
    assert code == 0
    ids = json.loads(capsys.readouterr().out)
    assert runs.get_run(get_db(db_path), ids["run_id"])["sample_limit"] is None  # 0 = every example


def test_inference_cache_keys() -> None:
    db = connect(":memory:")
    cache = InferenceCache(db)
    key = CacheKey("b", "m", "r1")
    vectors = np.array([[0.1, 0.2], [0.3, 0.4]], dtype=np.float32)
    cache.put_embeddings(key, ["x", "y"], vectors)
    found = cache.get_embeddings(key, ["y", "x", "z"])
    assert len(found) == 2 and cache.stats.hits == 2 and cache.stats.misses == 1
    assert cache.get_embeddings(CacheKey("b", "m", "r2"), ["x"]) == {}  # another revision: a miss
    cache.put_text(key, {"messages": [1]}, "réponse")
    assert cache.get_text(key, {"messages": [1]}) == "réponse"
    assert cache.get_text(key, {"messages": [2]}) is None


def tiny_generator_in_cache(cache: Path, model_id: str = "acme/tiny-gen") -> str:
    """A real (random, 1-layer) GPT-2 with MiniLM's tokenizer saved as a snapshot in a local HF cache."""
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from hfops.evals.backends import packaged_minilm

    revision = "f" * 40
    snapshot = cache / f"models--{model_id.replace('/', '--')}" / "snapshots" / revision
    snapshot.mkdir(parents=True)
    tokenizer = AutoTokenizer.from_pretrained(str(packaged_minilm().path))
    tokenizer.save_pretrained(str(snapshot))
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=tokenizer.vocab_size,
        n_positions=4096,
        n_embd=16,
        n_layer=1,
        n_head=2,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
    )
    GPT2LMHeadModel(config).save_pretrained(str(snapshot))
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text(revision)
    return revision


@pytest.mark.xdist_group("minilm")  # one process loads the packaged model once
def test_local_text_generation_for_a_cached_model(
    db_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    revision = tiny_generator_in_cache(tmp_path / "hub")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    config = write_config(tmp_path / "c.toml", qa_max_new_tokens=6)
    first = run_eval(db_path, config, "acme/tiny-gen", "qa", "ms_marco", 3)
    assert first["status"] == "succeeded" and first["model_calls"] == 3 and first["candidate_errors"] == 0
    run = runs.get_run(get_db(db_path), first["run_id"])
    assert (run["candidate_backend"], run["candidate_revision"]) == ("transformers:local", revision)
    outputs = [e["candidate_output"] for e in runs.run_examples(get_db(db_path), first["run_id"])]
    assert all(isinstance(o, str) and o for o in outputs)  # a random model still answers something
    assert {m for s, m in metric_rows(db_path, first["run_id"]) if s == "candidate"} == {"rougeL", "bleu"}
    second = run_eval(db_path, config, "acme/tiny-gen", "qa", "ms_marco", 3)
    assert second["model_calls"] == 0 and second["cache_hits"] == 3
    assert [e["candidate_output"] for e in runs.run_examples(get_db(db_path), second["run_id"])] == outputs


def test_cli_failed_run_prints_the_error_not_a_traceback(
    db_path: str,
    tmp_path: Path,
    fresh_standin: InferenceStandIn,
    api_key: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = tmp_path / "data" / "ms_marco"
    data.mkdir(parents=True)
    (data / "ms_marco_v1.1_train_sample200.json").write_text("[\n  {oops}\n]\n")
    config = write_config(tmp_path / "c.toml", fresh_standin.url, data_dir=str(tmp_path / "data"))
    code = eval_cli(config, db_path, "--model acme/embed --task retrieval --dataset ms_marco --limit 3")
    captured = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in captured.err + captured.out
    assert "run 1 failed" in captured.out
    assert "ms_marco_v1.1_train_sample200.json: malformed dataset file: line 2" in captured.out
    assert "resume it with: hfops eval --resume 1" in captured.err


# --- the task table, typed records, cancellation, settings from the job -------------------------------------


def test_retry_after_as_an_http_date_is_honoured_and_capped(
    fresh_standin: InferenceStandIn, api_key: str
) -> None:
    import email.utils
    from datetime import UTC, datetime, timedelta

    from huggingface_hub import InferenceClient

    client = InferenceClient(base_url=fresh_standin.url, token=api_key, timeout=2)
    settings = load_settings(None, **{"eval.max_retries": 1, "eval.max_retry_wait_seconds": 7.0})
    waits: list[float] = []
    fresh_standin.behaviour = "rate_limited"
    fresh_standin.retry_after = email.utils.format_datetime(
        datetime.now(UTC) + timedelta(seconds=120), usegmt=True
    )
    with pytest.raises(BackendError, match=r"rate limited \(429\) after 2 attempts"):
        call_with_retries(
            lambda: client.chat_completion([{"role": "user", "content": "x"}], model="m"),
            settings,
            sleep=waits.append,
        )
    assert waits == [7.0]  # two minutes away, capped (the exponential fallback would have been 1.0)
    waits.clear()
    fresh_standin.retry_after = email.utils.format_datetime(
        datetime.now(UTC) - timedelta(hours=1), usegmt=True
    )
    with pytest.raises(BackendError):
        call_with_retries(
            lambda: client.chat_completion([{"role": "user", "content": "x"}], model="m"),
            settings,
            sleep=waits.append,
        )
    assert waits == [0.0]  # a date in the past: retry at once
    fresh_standin.behaviour, fresh_standin.retry_after = "fast", None


def test_a_dataset_is_one_table_entry(
    db_path: str,
    tmp_path: Path,
    fresh_standin: InferenceStandIn,
    api_key: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import dataclasses

    from hfops.evals import tasks

    marco = tasks.DATASET_SPECS["ms_marco"]
    copy = dataclasses.replace(
        marco,
        name="marco_copy",
        title="MS MARCO (scored as SQuAD)",
        tasks={"qa": tasks.EvalSpec("squad_v2", prompt_style="span")},
    )
    monkeypatch.setitem(tasks.DATASET_SPECS, "marco_copy", copy)
    assert tasks.metric_names("qa", "marco_copy")[:2] == ("f1", "exact")
    with pytest.raises(runs.EvalError, match="marco_copy has no retrieval task"):
        tasks.eval_spec("retrieval", "marco_copy")
    config = write_config(tmp_path / "c.toml", fresh_standin.url)
    summary = run_eval(db_path, config, "acme/chat", "qa", "marco_copy", 4)
    assert summary["status"] == "succeeded" and summary["primary_metric"] == "f1"
    assert {m for s, m in metric_rows(db_path, summary["run_id"]) if s == "candidate"} >= {"f1", "exact"}
    prompt = fresh_standin.requests[-1]["body"]["messages"][0]["content"]
    assert "shortest span" in prompt  # the prompt style came from the entry, not from the dataset's name
    with pytest.raises(runs.EvalError, match="unknown dataset 'squad_v3'"):
        runs.submit_run(
            db_path, "acme/chat", "qa", "squad_v3", 3, settings_of(config, db_path), enqueue=False
        )


def test_queries_return_typed_records(
    db_path: str, tmp_path: Path, fresh_standin: InferenceStandIn, api_key: str
) -> None:
    from hfops.evals import queries
    from hfops.evals.records import EvalExample, EvalMetric, EvalRun, LeaderboardEntry

    config = write_config(tmp_path / "c.toml", fresh_standin.url)
    summary = run_eval(db_path, config, "acme/embed", "retrieval", "ms_marco", 3)
    db = get_db(db_path)
    run = queries.get_run(db, summary.run_id)
    assert isinstance(run, EvalRun) and run.status == run["status"] == "succeeded"
    assert all(isinstance(m, EvalMetric) for m in run.metrics) and run.metric("delta", "ndcg@10") is not None
    assert run.recommendation_rule is not None and run.recommendation_rule["primary_metric"] == "ndcg@10"
    examples = queries.run_examples(db, run.id)
    assert all(isinstance(e, EvalExample) and isinstance(e.expected["relevant"], list) for e in examples)
    entries = queries.leaderboard_entries(db, "retrieval", "ms_marco")
    assert all(isinstance(e, LeaderboardEntry) for e in entries)
    assert [e.to_row()["ndcg@10"] for e in entries] == [
        r["ndcg@10"] for r in queries.leaderboard(db, "retrieval", "ms_marco")
    ]
    assert json.loads(json.dumps(run.to_dict()))["metrics"][0]["run_id"] == run.id


def test_a_cancelled_run_keeps_its_batches_and_resumes(
    db_path: str, tmp_path: Path, fresh_standin: InferenceStandIn, api_key: str
) -> None:
    config = write_config(tmp_path / "c.toml", fresh_standin.url, batch_size=2)
    settings = settings_of(config, db_path)
    ids = runs.submit_run(db_path, "acme/embed", "retrieval", "ms_marco", 6, settings, enqueue=False)

    def cancelled() -> bool:  # asked to stop once the second batch is stored
        return example_counts(db_path, ids.run_id)[0] >= 4

    stopped = runs.execute_run(db_path, ids.run_id, settings, cancelled=cancelled)
    assert stopped.status == "cancelled" and stopped.done == 4 and stopped.total == 6
    assert "resume with: hfops eval --resume" in (runs.get_run(get_db(db_path), ids.run_id) or {})["message"]
    finished = runs.execute_run(db_path, ids.run_id, settings)
    assert finished.status == "succeeded" and finished.done == 6
    assert example_counts(db_path, ids.run_id) == (6, 6)


def test_jobs_use_the_enqueuers_settings_not_the_working_directory(
    db_path: str, tmp_path: Path, fresh_standin: InferenceStandIn, api_key: str
) -> None:

    Path("hfops.toml").write_text("[eval]\nnot_a_key = 1\n")  # loading ./hfops.toml would be a ConfigError
    config = write_config(tmp_path / "c.toml", fresh_standin.url, default_limit=2)
    add_candidates(db_path, [{"model_id": "acme/embed", "pipeline_tag": "feature-extraction"}])
    job_id = jobs.create_job(get_db(db_path), "eval_nightly", {}, settings_of(config, db_path))
    result = worker.execute_job(db_path, job_id)
    assert "error" not in result, result
    assert result["planned"] == 2 and all(r["error"] is None for r in result["runs"])
    assert {r["total"] for r in runs.list_runs(get_db(db_path))} == {2}


def test_pure_parts_import_neither_the_store_nor_jobs() -> None:
    code = (
        "import sys; import hfops.evals.tasks, hfops.evals.scoring, hfops.evals.stats; "
        "print(sorted(m for m in sys.modules "
        "if m in ('hfops.store', 'hfops.jobs', 'hfops.queue', 'sqlite_utils')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("flag", "said"),
    [("--enqueue", "eval run 1 queued again as job 1"), ("--quiet", "run 1 succeeded: acme/embed vs")],
    ids=["queued-again-for-the-worker", "resumed-here"],
)
def test_cli_resumes_a_cancelled_run_and_refuses_one_still_stopping(
    flag: str,
    said: str,
    db_path: str,
    tmp_path: Path,
    fresh_standin: InferenceStandIn,
    api_key: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from hfops.queue import get_huey

    config = write_config(tmp_path / "c.toml", fresh_standin.url, batch_size=2)
    ids = runs.submit_run(
        db_path, "acme/embed", "retrieval", "ms_marco", 4, settings_of(config, db_path), enqueue=False
    )
    db = get_db(db_path)
    resume = ["--config", config, "eval", "--db", db_path, "--resume", str(ids.run_id), flag]
    with write_tx(db):  # a worker took it and was asked to stop, and has not stopped yet
        db.execute("UPDATE jobs SET status = 'running' WHERE id = ?", [ids.job_id])
    jobs.cancel(db, ids.job_id)
    assert main(resume) == 2
    assert "still stopping" in capsys.readouterr().err
    with write_tx(db):
        db.execute("UPDATE jobs SET status = 'queued' WHERE id = ?", [ids.job_id])
    assert worker.execute_job(db_path, ids.job_id) == {"cancelled": True}
    assert main(resume) == 0
    assert said in capsys.readouterr().out
    if flag == "--enqueue":  # queued, not run here: the worker's turn
        assert runs.summary(get_db(db_path), ids.run_id).status == "queued"
        huey = get_huey(db_path)
        huey.execute(huey.dequeue())
    assert runs.summary(get_db(db_path), ids.run_id).status == "succeeded"
