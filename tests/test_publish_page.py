"""The Publish panel of the eval run page (AppTest): a worker job, dry run without the token, a push with it,
the commit URL shown, a bad repo id refused, and the token itself never rendered."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from hfops import jobs, publish, worker
from hfops.config import load_settings
from hfops.evals import runs
from hfops.store import connect, write_tx
from tests.console_kit import open_console
from tests.standins.hub_write import HubWriteStandIn
from tests.standins.inference import InferenceStandIn

PAGE = "pages/evals.py"
TOKEN = "hf_PAGEwriteTOKENneverRENDERED42"


@pytest.fixture(scope="module")
def hub() -> Iterator[HubWriteStandIn]:
    with HubWriteStandIn(TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, hub: HubWriteStandIn) -> Iterator[dict[str, Any]]:
    """A store with one succeeded run (API-backed candidate on the inference stand-in vs BM25)."""
    folder = tmp_path_factory.mktemp("publish-page")
    db_path = str(folder / "hfops.db")
    with InferenceStandIn() as inference, pytest.MonkeyPatch.context() as mp:
        config = folder / "hfops.toml"
        config.write_text(
            f'[hub]\nendpoint = "{hub.url}"\n\n[inference]\nbase_url = "{inference.url}"\n\n'
            f'[publish]\nout_dir = "{folder / "published"}"\n'
        )
        mp.setenv("HUGGINGFACE_API_KEY", "hf_readkey_for_the_inference_standin")
        made = runs.submit_run(
            db_path,
            "acme/retriever-small",
            "retrieval",
            "squad_v2",
            30,
            load_settings(config, **{"store.path": db_path}),
            enqueue=False,
            config_path=str(config),
        )
        worker.execute_job(db_path, made["job_id"])
    yield {"db": db_path, "config": str(config), "run_id": made["run_id"], "folder": folder}


def open_run_page(env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> AppTest:
    return open_console(env["db"], monkeypatch, PAGE, HFOPS_CONFIG=env["config"])


def last_publish_job(db_path: str) -> dict[str, Any]:
    return jobs.list_jobs(connect(db_path), kind="publish", limit=1)[0]


def rendered(at: AppTest) -> str:
    parts = [
        str(e.value)
        for kind in ("text", "caption", "info", "success", "error", "markdown")
        for e in at.get(kind)
    ]
    return "\n".join(parts)


def test_publish_button_queues_a_job_and_shows_the_dry_run(
    env: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_run_page(env, monkeypatch)
    assert "HUGGINGFACE_WRITE_TOKEN: not set" in rendered(at)
    at.text_input(key="evals_publish_repo").input("acme-org/page-evals")
    at.button(key="evals_publish").click().run()
    job = last_publish_job(env["db"])
    assert job["status"] == "queued"
    assert job.params == {
        "run_id": env["run_id"],
        "repo": "acme-org/page-evals",
        "dry_run": False,
        "include_set_rows": False,
    }
    stored = jobs.job_settings(job, env["db"])  # the console's settings travel with the job
    assert stored.hub.endpoint == load_settings(env["config"]).hub.endpoint
    assert any(f"Queued publish job {job['id']}" in s.value for s in at.success)
    worker.execute_job(env["db"], job["id"])  # what the worker does
    at.run()
    out = Path(env["folder"]) / "published" / f"run-{env['run_id']}"
    assert f"Publish job {job['id']}: dry run (HUGGINGFACE_WRITE_TOKEN is not set), nothing pushed" in [
        i.value for i in at.info
    ]
    assert f"Files written to {out}" in rendered(at)
    assert (out / "README.md").is_file()


def test_with_the_token_the_job_pushes_and_the_commit_url_is_shown(
    env: dict[str, Any], hub: HubWriteStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUGGINGFACE_WRITE_TOKEN", TOKEN)
    at = open_run_page(env, monkeypatch)
    assert "HUGGINGFACE_WRITE_TOKEN: set" in rendered(at)
    at.text_input(key="evals_publish_repo").input("acme-org/page-pushed")
    at.button(key="evals_publish").click().run()
    job = last_publish_job(env["db"])
    worker.execute_job(env["db"], job["id"])
    at.run()
    commit_url = publish.latest_commit(connect(env["db"]), env["run_id"])["commit_url"]
    assert commit_url.startswith(f"{hub.url}/acme-org/page-pushed/commit/")
    assert f"Publish job {job['id']}: pushed in one commit" in [s.value for s in at.success]
    assert f"Repo: acme-org/page-pushed (private)\nCommit: {commit_url}" in rendered(at)
    assert f"Last published to acme-org/page-pushed: {commit_url}" in rendered(at)
    assert TOKEN not in rendered(at)


def test_a_bad_repo_id_is_refused_on_the_page(env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_run_page(env, monkeypatch)
    before = len(jobs.list_jobs(connect(env["db"]), kind="publish"))
    at.text_input(key="evals_publish_repo").input("no slash here")
    at.button(key="evals_publish").click().run()
    assert any("Publish failed: invalid repo id" in e.value for e in at.error)
    assert len(jobs.list_jobs(connect(env["db"]), kind="publish")) == before


def test_a_runs_publish_job_is_found_among_many_newer_ones_of_other_runs(
    env: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 9 defect.

    The page looked for the run's job among the 5 (or 50) newest publish jobs of any run.
    """
    db = connect(env["db"])
    mine = jobs.create_job(
        db, "publish", {"run_id": env["run_id"], "repo": "acme-org/mine", "dry_run": False}
    )
    others = [
        jobs.create_job(db, "publish", {"run_id": 10_000 + i, "repo": None, "dry_run": True})
        for i in range(55)
    ]
    try:
        at = open_run_page(env, monkeypatch)
        assert f"Publish job {mine}: queued (the worker runs it: `hfops worker`)" in [
            i.value for i in at.info
        ]
        assert publish.publish_active(db, env["run_id"])
        assert publish.latest_publish_job(db, env["run_id"]).id == mine
        assert publish.latest_publish_job(db, 10_054).id == others[-1]
    finally:
        with write_tx(db):
            db.execute("DELETE FROM jobs WHERE kind = 'publish' AND id >= ?", [mine])
