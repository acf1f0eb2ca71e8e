"""hfops publish: the eval report, the model card round trip, dry runs, pushes to a stand-in Hub (create repo,
README validation, preupload, one commit), Hub errors as clear messages, and the write token kept secret.

The eval runs are real runs of the evals module: an API-backed candidate (the inference stand-in serves
feature extraction and chat completions) against the BM25 / lexical baselines, so no model is loaded here.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import ModelCard

from hfops import jobs, publish, worker
from hfops.cli import main
from hfops.config import load_settings
from hfops.evals import runs
from hfops.store import connect
from tests.standins.hub_write import HubWriteStandIn
from tests.standins.inference import InferenceStandIn

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "hf_WRITEtokenNEVERshown0123456789"
CANDIDATE = "acme/retriever-small"
QA_CANDIDATE = "acme/qa-chat-1b"


@pytest.fixture(scope="module")
def inference() -> Iterator[InferenceStandIn]:
    with InferenceStandIn() as server:
        yield server


@pytest.fixture(scope="module")
def hub() -> Iterator[HubWriteStandIn]:
    with HubWriteStandIn(TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def env(
    tmp_path_factory: pytest.TempPathFactory, inference: InferenceStandIn, hub: HubWriteStandIn
) -> dict[str, Any]:
    """A store with a succeeded retrieval run and a succeeded QA run, and a config naming both stand-ins."""
    folder = tmp_path_factory.mktemp("publish")
    config = folder / "hfops.toml"
    config.write_text(
        f'[hub]\nendpoint = "{hub.url}"\n\n[inference]\nbase_url = "{inference.url}"\n\n'
        f'[store]\npath = "{folder / "hfops.db"}"\n'
    )
    db_path = str(folder / "hfops.db")
    ids = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HUGGINGFACE_API_KEY", "hf_readkey_for_the_inference_standin")
        settings = load_settings(config)
        for name, model, task, dataset in (
            ("retrieval", CANDIDATE, "retrieval", "squad_v2"),
            ("qa", QA_CANDIDATE, "qa", "squad_v2"),
        ):
            made = runs.submit_run(
                db_path, model, task, dataset, 40, settings, enqueue=False, config_path=str(config)
            )
            worker.execute_job(db_path, made["job_id"])
            assert runs.get_run(connect(db_path), made["run_id"])["status"] == "succeeded"
            ids[name] = made["run_id"]
        unfinished = runs.submit_run(
            db_path, model, "qa", "ms_marco", 5, settings, enqueue=False, config_path=str(config)
        )
    return {"config": str(config), "db": db_path, "runs": ids, "unfinished": unfinished["run_id"]}


@pytest.fixture
def settings(env: dict[str, Any]) -> Any:
    return load_settings(env["config"])


@pytest.fixture(autouse=True)
def fresh_hub_log(hub: HubWriteStandIn) -> None:
    hub.requests.clear()


def stored_metrics(db_path: str, run_id: int) -> dict[tuple[str, str], tuple[float, float, float, int]]:
    with sqlite3.connect(db_path) as conn:
        return {
            (s, m): (v, lo, hi, n)
            for s, m, v, lo, hi, n in conn.execute(
                "SELECT system, metric, value, ci_low, ci_high, n FROM eval_metrics WHERE run_id = ?",
                [run_id],
            )
        }


def test_report_has_every_metric_with_ci_dataset_version_sample_size_and_revisions(
    env: dict[str, Any],
) -> None:
    run_id = env["runs"]["retrieval"]
    report = publish.build_report(connect(env["db"]), run_id)
    run = runs.get_run(connect(env["db"]), run_id)
    stored = stored_metrics(env["db"], run_id)
    flat = {
        (system, m["metric"]): (m[system]["value"], m[system]["ci_low"], m[system]["ci_high"], m["n"])
        for m in report["metrics"]
        for system in ("candidate", "production", "delta")
    }
    assert flat == stored and len(flat) == 15  # 5 retrieval metrics x candidate/production/delta
    assert report["dataset"]["version"] == run["dataset_version"] and report["dataset"]["version"].startswith(
        "sha256:"
    )
    assert report["dataset"]["hub_id"] == "rajpurkar/squad_v2" and report["dataset"]["split"] == "validation"
    assert report["dataset"]["location"] == "data/squad_v2/dev-v2.0.sample.flat.jsonl"  # no machine path
    assert report["sample_size"]["examples"] == 40 and report["sample_size"]["limit"] == 40
    assert report["candidate"] == {
        "model_id": CANDIDATE,
        "backend": run["candidate_backend"],
        "revision": run["candidate_revision"],
    }
    assert report["production"]["model_id"] == "baseline:bm25" and report["production"][
        "revision"
    ].startswith("bm25s==")
    assert report["recommendation"]["decision"] == run["recommendation"]
    assert report["recommendation"]["rule"]["name"] == "paired-bootstrap-delta-v1"
    json.dumps(report, allow_nan=False)  # strict JSON


def test_model_card_loads_back_with_the_same_numbers(
    env: dict[str, Any], settings: Any, tmp_path: Path
) -> None:
    for kind, expected_metrics in (("retrieval", 5), ("qa", None)):
        run_id = env["runs"][kind]
        result = publish.publish_run(
            env["db"], run_id, settings, repo="acme-org/evals", out_dir=tmp_path / kind
        )
        assert result["mode"] == "dry-run"
        card = ModelCard.load(tmp_path / kind / "README.md")
        report = json.loads((tmp_path / kind / "eval_report.json").read_text())
        stored = stored_metrics(env["db"], run_id)
        from_card = {r.metric_type: r.metric_value for r in card.data.eval_results}
        want = {
            m: v[0] for (s, m), v in stored.items() if s == "candidate" and v[0] is not None and v[0] == v[0]
        }
        assert from_card == want  # exactly the stored floats, every candidate metric
        if expected_metrics:
            assert len(from_card) == expected_metrics
        assert from_card == {
            m["metric"]: m["candidate"]["value"]
            for m in report["metrics"]
            if m["candidate"]["value"] is not None
        }
        assert card.data.model_name == report["candidate"]["model_id"]
        first = card.data.eval_results[0]
        assert (
            first.dataset_type == "rajpurkar/squad_v2"
            and first.dataset_revision == report["dataset"]["version"]
        )
        assert first.task_type == {"retrieval": "text-retrieval", "qa": "question-answering"}[kind]
        assert "95% CI" in first.metric_name
        summary = (tmp_path / kind / "eval_summary.md").read_text()
        primary = report["primary_metric"]
        assert re.search(rf"\| \*\*{re.escape(primary)}\*\* \| [\d.]+ \([\d.]+ to [\d.]+\) \|", summary)


def test_dry_run_without_token_writes_files_and_says_what_would_be_pushed_where(
    env: dict[str, Any], hub: HubWriteStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = main(
        [
            "--config",
            env["config"],
            "publish",
            "--run",
            str(env["runs"]["retrieval"]),
            "--repo",
            "acme-org/model-evals",
            "--out",
            str(out),
        ]
    )
    text = capsys.readouterr().out
    assert code == 0
    assert "dry run (HUGGINGFACE_WRITE_TOKEN is not set): nothing was pushed." in text
    assert f"private model repo acme-org/model-evals on {hub.url}" in text
    for name in ("README.md", "eval_report.json", "eval_summary.md"):
        assert name in text and (out / name).is_file()
    assert f"files written to {out}" in text
    assert hub.requests == []  # nothing was sent
    row = publish.publications(connect(env["db"]), env["runs"]["retrieval"])[0]
    assert (row["mode"], row["status"], row["repo_id"], row["commit_url"]) == (
        "dry-run",
        "succeeded",
        "acme-org/model-evals",
        None,
    )


def test_dry_run_flag_pushes_nothing_even_with_the_token(
    env: dict[str, Any],
    hub: HubWriteStandIn,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("HUGGINGFACE_WRITE_TOKEN", TOKEN)
    code = main(
        [
            "--config",
            env["config"],
            "publish",
            "--run",
            str(env["runs"]["qa"]),
            "--dry-run",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    text = capsys.readouterr().out
    assert code == 0 and "dry run (--dry-run)" in text
    assert "a repo you name with --repo ORG/NAME" in text  # no repo given, none configured: says so
    assert hub.requests == []


def test_a_push_counts_in_the_free_tier_ledger(
    env: dict[str, Any], hub: HubWriteStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hfops.ledger import hub_window

    monkeypatch.setenv("HUGGINGFACE_WRITE_TOKEN", TOKEN)
    hub.ratelimit = (500, 300)
    argv = ["--config", env["config"], "publish", "--run", str(env["runs"]["retrieval"])]
    assert main([*argv, "--repo", "acme-org/counted", "--out", str(tmp_path / "out")]) == 0
    found = {b.resource: b for b in hub_window.buckets(connect(env["db"]))}
    assert set(found) == {"api"} and found["api"].responses == len(hub.requests) == 4
    assert (found["api"].remaining, found["api"].quota) == (499, 500)


def test_push_creates_a_private_repo_and_one_commit_and_stores_the_commit_url(
    env: dict[str, Any],
    hub: HubWriteStandIn,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("HUGGINGFACE_WRITE_TOKEN", TOKEN)
    run_id = env["runs"]["retrieval"]
    out = tmp_path / "pushed"
    code = main(
        [
            "--config",
            env["config"],
            "publish",
            "--run",
            str(run_id),
            "--repo",
            "acme-org/pushed",
            "--out",
            str(out),
        ]
    )
    text = capsys.readouterr().out
    assert code == 0
    assert hub.endpoints() == ["create", "validate", "preupload", "commit"]
    assert all(r.authorized for r in hub.requests)
    assert hub.requests[0].body == {
        "name": "pushed",
        "organization": "acme-org",
        "visibility": "private",
        "type": "model",
    }
    repo = hub.repos["acme-org/pushed"]
    assert repo.private and len(repo.commits) == 1
    assert repo.files == {
        name: (out / name).read_bytes() for name in ("README.md", "eval_report.json", "eval_summary.md")
    }
    commit_url = f"{hub.url}/acme-org/pushed/commit/{repo.commits[0]['oid']}"
    assert f"commit: {commit_url}" in text
    assert publish.latest_commit(connect(env["db"]), run_id)["commit_url"] == commit_url
    # Publishing again: the repo exists (409 on create, accepted), one more commit.
    hub.requests.clear()
    result = publish.publish_run(
        env["db"], run_id, load_settings(env["config"]), repo="acme-org/pushed", out_dir=tmp_path / "again"
    )
    assert [(r.endpoint, r.status) for r in hub.requests] == [
        ("create", 409),
        ("validate", 200),
        ("preupload", 200),
        ("commit", 200),
    ]
    assert len(repo.commits) == 2 and result["commit_url"].endswith(repo.commits[1]["oid"])


@pytest.mark.parametrize(
    ("endpoint", "status", "expected"),
    [
        ("create", 401, "rejected HUGGINGFACE_WRITE_TOKEN (401 Unauthorized)"),
        ("create", 403, "may not write to acme-org/{name} (403 Forbidden)"),
        ("commit", 409, "conflict on acme-org/{name} (409 Conflict)"),
        ("create", 500, "failed (HTTP 500) while creating the private repo"),
        ("commit", 503, "failed (HTTP 503) while committing 3 files"),
    ],
)
def test_hub_errors_become_clear_messages(
    endpoint: str,
    status: int,
    expected: str,
    env: dict[str, Any],
    hub: HubWriteStandIn,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("HUGGINGFACE_WRITE_TOKEN", TOKEN)
    name = f"err-{endpoint}-{status}"
    hub.fail(endpoint, status)
    code = main(
        [
            "--config",
            env["config"],
            "publish",
            "--run",
            str(env["runs"]["qa"]),
            "--repo",
            f"acme-org/{name}",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and expected.format(name=name) in err, err
    assert "Traceback" not in err
    assert "acme-org/" + name not in hub.repos or not hub.repos["acme-org/" + name].commits
    row = publish.publications(connect(env["db"]), env["runs"]["qa"])[0]
    assert row["status"] == "failed" and expected.format(name=name) in row["error"]


def test_a_wrong_token_is_a_401_message(
    env: dict[str, Any], hub: HubWriteStandIn, settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUGGINGFACE_WRITE_TOKEN", "hf_not_the_right_one")
    with pytest.raises(
        publish.PublishError,
        match=r"rejected HUGGINGFACE_WRITE_TOKEN \(401 Unauthorized\) while "
        r"creating the private repo acme-org/wrong",
    ):
        publish.publish_run(env["db"], env["runs"]["qa"], settings, repo="acme-org/wrong", out_dir=tmp_path)
    assert hub.requests and not any(r.authorized for r in hub.requests)


def test_refusals_before_anything_is_sent(
    env: dict[str, Any], hub: HubWriteStandIn, settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUGGINGFACE_WRITE_TOKEN", TOKEN)
    run_id = env["runs"]["qa"]
    with pytest.raises(publish.PublishError, match="no target repo: pass --repo ORG/NAME"):
        publish.publish_run(env["db"], run_id, settings, out_dir=tmp_path)
    with pytest.raises(publish.PublishError, match="invalid repo id 'not a repo'"):
        publish.publish_run(env["db"], run_id, settings, repo="not a repo", out_dir=tmp_path)
    with pytest.raises(publish.PublishError, match="expected ORG/NAME"):
        publish.publish_run(env["db"], run_id, settings, repo="just-a-name", out_dir=tmp_path)
    with pytest.raises(
        publish.PublishError, match=r"eval run \d+ is queued: only a finished \(succeeded\) run"
    ):
        publish.publish_run(env["db"], env["unfinished"], settings, repo="acme-org/x", out_dir=tmp_path)
    with pytest.raises(publish.PublishError, match="no eval run 9999"):
        publish.publish_run(env["db"], 9999, settings, repo="acme-org/x", out_dir=tmp_path)
    assert hub.requests == []


def test_publish_job_runs_in_the_worker_and_records_the_commit(
    env: dict[str, Any], hub: HubWriteStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUGGINGFACE_WRITE_TOKEN", TOKEN)
    run_id = env["runs"]["qa"]
    db = connect(env["db"])
    # The job carries the enqueuer's settings (the stand-in Hub's endpoint): the handler reads no config file.
    job_id = jobs.create_job(
        db, "publish", {"run_id": run_id, "repo": "acme-org/from-job"}, load_settings(env["config"])
    )
    result = worker.execute_job(env["db"], job_id)
    assert jobs.get_job(db, job_id)["status"] == "succeeded"
    assert result["commit_url"] == publish.latest_commit(db, run_id)["commit_url"]
    assert hub.repos["acme-org/from-job"].commits
    with pytest.raises(publish.PublishError, match="only a finished"):
        publish.enqueue_publish(env["db"], env["unfinished"], "acme-org/x")


def test_the_write_token_never_appears_in_output_logs_files_or_the_store(
    env: dict[str, Any],
    hub: HubWriteStandIn,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("HUGGINGFACE_WRITE_TOKEN", TOKEN)
    base = [
        "--config",
        env["config"],
        "publish",
        "--run",
        str(env["runs"]["retrieval"]),
        "--out",
        str(tmp_path / "f"),
    ]
    assert main([*base, "--repo", "acme-org/secret-ok"]) == 0
    assert main([*base, "--repo", "acme-org/secret-ok", "--json"]) == 0
    for endpoint, status in (("create", 401), ("create", 403), ("commit", 409), ("commit", 502)):
        hub.fail(endpoint, status)
        assert main([*base, "--repo", f"acme-org/secret-{status}"]) == 2
    assert main([*base, "--dry-run"]) == 0
    captured = capfd.readouterr()
    assert any(r.authorized for r in hub.requests)  # the token did reach the Hub...
    assert TOKEN not in captured.out + captured.err  # ...and nothing else
    assert TOKEN not in caplog.text
    with sqlite3.connect(env["db"]) as conn:
        assert TOKEN not in "\n".join(conn.iterdump())
    for path in (tmp_path / "f").iterdir():
        assert TOKEN.encode() not in path.read_bytes()


def test_only_the_publish_hub_module_reads_the_write_token() -> None:
    sources = [*(ROOT / "lib").rglob("*.py"), *(ROOT / "pages").glob("*.py"), ROOT / "app.py"]
    users = sorted(
        p.relative_to(ROOT).as_posix()
        for p in sources
        if re.search(r"(?<!def )\bwrite_token\(", p.read_text())
    )
    assert users == ["lib/hfops/publish/hub.py"]


# --- a run on a custom eval set (issue 15): the set's name, version and size, never its rows ----------------


@pytest.fixture
def custom_run(tmp_path: Path, inference: InferenceStandIn) -> dict[str, Any]:
    """A succeeded QA run on a 12-example custom set, 5 of them sampled."""
    from hfops.evals import custom
    from tests.standins.hub_datasets import squad_rows

    rows = [
        {"id": r["id"], "question": r["question"], "context": r["context"], "answers": r["answers"]}
        for r in squad_rows()[:12]
    ]
    path = tmp_path / "support.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = tmp_path / "hfops.toml"
    config.write_text(f'[inference]\nbase_url = "{inference.url}"\n')
    db_path = str(tmp_path / "hfops.db")
    custom.add_from_file(connect(db_path), "support", "qa", str(path))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HUGGINGFACE_API_KEY", "hf_readkey_for_the_inference_standin")
        settings = load_settings(config, **{"store.path": db_path})
        made = runs.submit_run(
            db_path, QA_CANDIDATE, "qa", "support", 5, settings, enqueue=False, config_path=str(config)
        )
        worker.execute_job(db_path, made["job_id"])
    run = runs.get_run(connect(db_path), made["run_id"])
    assert run is not None and run["status"] == "succeeded" and run["total"] == 5
    return {"db": db_path, "run": run, "rows": rows, "path": path}


def test_a_custom_set_report_carries_its_name_version_and_size_never_its_rows(
    custom_run: dict[str, Any],
) -> None:
    from hfops.evals import custom
    from hfops.publish import report as report_module

    db, run = connect(custom_run["db"]), custom_run["run"]
    stored = custom.get_set(db, "support")
    built = report_module.build_report(run, "2026-12-01T00:00:00Z", custom.report_facts(db, run))
    facts = built["dataset"]["custom_set"]
    assert facts == {
        "name": "support",
        "version": stored.version,
        "size": 12,
        "documents": 0,
        "unanswerable": stored.unanswerable,
        "source": "file",
    }
    assert built["dataset"]["version"] == run["dataset_version"] == stored.version
    assert built["dataset"]["location"] == "support.jsonl"  # the file's name, no machine path
    assert built["sample_size"]["examples"] == 5  # the run's sample, beside the set's size
    files = {f.path: f.content.decode() for f in report_module.report_files(built)}
    assert f"`support`, version `{stored.version}`, 12 examples" in files["eval_summary.md"]
    card = ModelCard(files["README.md"]).data
    assert {r.dataset_name for r in card.eval_results} == {"support (custom eval set, 12 examples)"}
    assert {r.dataset_revision for r in card.eval_results} == {stored.version}
    for example in custom.stored_examples(db, "support"):  # no row of the set in any published file
        for text in files.values():
            assert example.query not in text and example.context not in text


def test_a_report_on_a_replaced_custom_set_keeps_the_runs_version(custom_run: dict[str, Any]) -> None:
    from hfops.evals import custom

    db, run = connect(custom_run["db"]), custom_run["run"]
    rows = custom_run["rows"]
    rows[0] = {**rows[0], "question": rows[0]["question"] + " (edited)"}
    custom_run["path"].write_text("".join(json.dumps(r) + "\n" for r in rows))
    custom.add_from_file(db, "support", "qa", str(custom_run["path"]), replace=True)
    assert custom.get_set(db, "support").version != run["dataset_version"]
    facts = custom.report_facts(db, run)  # 5 of 12 sampled: the size of the old version is not known
    assert facts is not None and (facts["version"], facts["size"], facts["current"]) == (
        run["dataset_version"],
        None,
        False,
    )
    whole = runs.get_run(db, run["id"])
    assert whole is not None
    whole.sample_limit = None  # a run that used every example of the old version shows its size
    assert (custom.report_facts(db, whole) or {})["size"] == 5


def test_publishing_a_custom_set_run_carries_its_size(custom_run: dict[str, Any]) -> None:
    built = publish.build_report(connect(custom_run["db"]), custom_run["run"]["id"])
    assert built["dataset"]["custom_set"]["size"] == 12


def test_the_sets_rows_are_published_only_when_asked(
    custom_run: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db_path, run_id = custom_run["db"], custom_run["run"]["id"]
    settings = load_settings(None, **{"store.path": db_path})
    plain = publish.publish_run(db_path, run_id, settings, dry_run=True, out_dir=tmp_path / "plain")
    assert sorted(f["path"] for f in plain["files"]) == ["README.md", "eval_report.json", "eval_summary.md"]

    code = main(["publish", "--db", db_path, "--run", str(run_id), "--dry-run", "--include-set-rows",
                 "--out", str(tmp_path / "rows"), "--json"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert "eval_set.jsonl" in {f["path"] for f in json.loads(capsys.readouterr().out)["files"]}
    published = [json.loads(line) for line in (tmp_path / "rows" / "eval_set.jsonl").read_text().splitlines()]
    assert published == [
        {"id": r["id"], "question": r["question"], "context": r["context"], "answers": r["answers"]["text"]}
        for r in custom_run["rows"]
    ]  # every row of the version the run used, as the set stores it

    rows = custom_run["rows"]
    rows[0] = {**rows[0], "question": rows[0]["question"] + " (edited)"}
    custom_run["path"].write_text("".join(json.dumps(r) + "\n" for r in rows))
    from hfops.evals import custom

    custom.add_from_file(connect(db_path), "support", "qa", str(custom_run["path"]), replace=True)
    code = main(["publish", "--db", db_path, "--run", str(run_id), "--dry-run", "--include-set-rows",
                 "--out", str(tmp_path / "later")])  # fmt: skip
    assert code == 2
    assert "now holds version" in capsys.readouterr().err and not (tmp_path / "later").exists()
