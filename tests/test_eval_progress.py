"""Eval progress in every phase (issue 13): a run said "0/189 preparing" for minutes while it embedded the
MS MARCO corpus. Every phase now says what it does, with counts where there are counts and the time left in
it; a run can be cancelled while its corpus is embedded and resumes without embedding it again."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import pytest

from hfops import jobs, progress, worker
from hfops.evals import runs
from hfops.evals.backends import EMBED_CHUNK, MINILM_ID
from hfops.evals.data import load_eval_set
from hfops.evals.tasks import SMOLLM2_ID
from hfops.store import get_db
from tests.standins.inference import InferenceStandIn
from tests.test_eval_runs import API_KEY, settings_of, write_config

Report = tuple[int, int | None, str]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def recorder() -> tuple[list[Report], progress.Report]:
    seen: list[Report] = []

    def report(done: int, total: int | None = None, message: str | None = None, force: bool = False) -> None:
        seen.append((done, total, message or ""))

    return seen, report


# --- phases, on a fake clock --------------------------------------------------------------------------------


def test_a_phase_says_what_it_does_its_counts_and_the_time_left_in_it() -> None:
    seen, report = recorder()
    clock = Clock()
    phases = progress.Phases(report, prefix="run 5: ", clock=clock)
    phases.start("loading acme/model")
    corpus = phases.start("embedding the corpus", 1000)
    clock.now += 0.5
    corpus.advance(100)  # too early to tell its pace
    clock.now += 9.5
    corpus.advance(400)  # 400 in 10 s: 600 to go
    assert seen == [
        (0, 0, "run 5: loading acme/model"),  # no counts: no bar (not the previous phase's total)
        (0, 1000, "run 5: embedding the corpus 0/1000"),
        (100, 1000, "run 5: embedding the corpus 100/1000"),
        (400, 1000, "run 5: embedding the corpus 400/1000 · about 15 s left"),
    ]
    assert progress.split_time_left(seen[-1][2]) == ("run 5: embedding the corpus 400/1000", "15 s")
    assert progress.split_time_left(seen[-2][2]) == ("run 5: embedding the corpus 100/1000", None)


def test_a_resumed_phase_estimates_from_where_it_resumed_and_after_an_interruption() -> None:
    seen, report = recorder()
    clock = Clock()
    phases = progress.Phases(report, clock=clock)
    scoring = phases.start("scoring examples", 189, done=89)  # a resumed run: 89 stored before
    clock.now += 2
    phases.start("loading acme/generator")  # the first batch loads the model for 60 s
    clock.now += 60
    scoring.advance(109)  # the current phase again: its estimate starts over here
    clock.now += 20
    scoring.advance(129)
    assert [m for _, _, m in seen] == [
        "scoring examples 89/189",
        "loading acme/generator",
        "scoring examples 109/189",
        "scoring examples 129/189 · about 1 min 00 s left",  # 20 examples per 20 s, not per 82 s
    ]


def test_counts_can_be_bytes_and_the_helpers_report_nowhere_outside_a_scope() -> None:
    seen, report = recorder()
    phases = progress.Phases(report, clock=Clock())
    phases.start("downloading candidate acme/m", 440_000_000, count=lambda n: f"{n / 1e6:.1f} MB")
    assert seen[-1] == (0, 440_000_000, "downloading candidate acme/m 0.0 MB/440.0 MB")
    progress.phase("nobody listens").advance(1, 2)
    progress.stop_if_cancelled()  # no scope: never cancelled
    with progress.scope(phases, cancelled=lambda: True):
        progress.phase("indexing")
        with pytest.raises(progress.Cancelled):
            progress.stop_if_cancelled()
    assert [m for _, _, m in seen][-1] == "indexing"


def test_a_model_loading_is_an_interlude_and_answered_examples_move_the_count() -> None:
    seen, report = recorder()
    phases = progress.Phases(report, prefix="run 2: ", clock=Clock())
    with progress.scope(phases):
        scoring = phases.start("scoring examples", 5)
        scoring.expect(2)  # a batch of two under way
        with progress.interlude("loading acme/generator (llama.cpp)"):
            pass
        for _ in range(3):  # the third answer is past the batch: its count waits for the batch's end
            progress.item_done()
        scoring.advance(2)
    assert [m for _, _, m in seen] == [
        "run 2: scoring examples 0/5",
        "run 2: loading acme/generator (llama.cpp)",
        "run 2: scoring examples 0/5",  # the phase the load interrupted, again
        "run 2: scoring examples 1/5",
        "run 2: scoring examples 2/5",
        "run 2: scoring examples 2/5",
    ]


# --- a real run through the job runner -------------------------------------------------------------------


@pytest.fixture
def job_reports(monkeypatch: pytest.MonkeyPatch) -> list[Report]:
    """Every progress report a job makes (the row keeps only the latest; writes are throttled)."""
    seen: list[Report] = []
    original = jobs.Progress.__call__

    def recording(self: jobs.Progress, done: int, total: int | None = None, message: str | None = None,
                  force: bool = False) -> None:  # fmt: skip
        seen.append((done, total, message or ""))
        original(self, done, total, message, force)

    monkeypatch.setattr(jobs.Progress, "__call__", recording)
    return seen


def first(reports: list[Report], pattern: str) -> int:
    return next(i for i, (_, _, m) in enumerate(reports) if re.search(pattern, m))


@pytest.mark.xdist_group("minilm")  # one process loads the packaged model once
def test_a_real_run_reports_every_phase_and_the_corpus_count_before_scoring(
    db_path: str, tmp_path: Path, job_reports: list[Report]
) -> None:
    config = write_config(tmp_path / "c.toml", batch_size=4)
    settings = settings_of(config, db_path)
    ids = runs.submit_run(db_path, MINILM_ID, "retrieval", "ms_marco", 8, settings, enqueue=False)
    assert worker.execute_job(db_path, ids.job_id).get("error") is None
    run = ids.run_id
    corpus = load_eval_set(settings, "ms_marco", "retrieval", 8).corpus
    texts = len(set(corpus.values()))
    assert texts > EMBED_CHUNK  # more than one step of the corpus
    messages = [m for _, _, m in job_reports]
    order = [
        first(job_reports, rf"^run {run}: loading the ms_marco dataset$"),
        first(job_reports, rf"^run {run}: acquiring candidate {MINILM_ID}$"),
        first(job_reports, rf"^run {run}: acquiring production baseline:bm25$"),
        first(job_reports, rf"^run {run}: preparing {MINILM_ID} and baseline:bm25$"),
        first(job_reports, rf"^run {run}: embedding the corpus with {MINILM_ID} {EMBED_CHUNK}/{texts}"),
        first(job_reports, rf"^run {run}: embedding the corpus with {MINILM_ID} {texts}/{texts}$"),
        first(job_reports, rf"^run {run}: indexing the corpus with BM25 \({len(corpus)} documents\)$"),
        first(job_reports, rf"^run {run}: scoring examples 0/8$"),
        first(job_reports, rf"^run {run}: scoring examples 4/8"),
        first(job_reports, rf"^run {run}: scoring examples 8/8$"),
        first(job_reports, rf"^run {run}: computing metrics on 8 examples$"),
    ]
    assert order == sorted(order), messages
    # the corpus phase's bar is its own count, not the examples'
    assert (EMBED_CHUNK, texts) in {(d, t) for d, t, m in job_reports if "embedding the corpus" in m}
    assert (4, 8) in {(d, t) for d, t, m in job_reports if "scoring examples" in m}


def test_a_run_cancelled_while_embedding_its_corpus_resumes_without_embedding_it_again(
    db_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUGGINGFACE_API_KEY", API_KEY)
    with InferenceStandIn() as standin:
        config = write_config(tmp_path / "c.toml", standin.url, batch_size=4)
        settings = settings_of(config, db_path)
        ids = runs.submit_run(db_path, "acme/embed", "retrieval", "ms_marco", 8, settings, enqueue=False)
        db = get_db(db_path)

        def cached() -> int:
            return int(db.execute("SELECT COUNT(*) FROM inference_cache").fetchone()[0])

        stopped = runs.execute_run(db_path, ids.run_id, settings, cancelled=lambda: cached() > 0)
        assert stopped.status == "cancelled" and stopped.done == 0
        assert cached() == EMBED_CHUNK  # the first step of the corpus, kept
        texts = len(set(load_eval_set(settings, "ms_marco", "retrieval", 8).corpus.values()))
        resumed: list[Report] = []
        finished = runs.execute_run(
            db_path,
            ids.run_id,
            settings,
            lambda d, t=None, m=None, force=False: resumed.append((d, t, m or "")),
        )
    assert finished.status == "succeeded" and finished.done == 8
    restart = f"run {ids.run_id}: embedding the corpus with acme/embed {EMBED_CHUNK}/{texts}"
    assert (EMBED_CHUNK, texts, restart) in resumed  # it starts where it stopped
    embedded = [len(b) for b in _embed_batches(standin)]
    assert sum(embedded) == texts + 8  # every corpus text embedded once over both runs, plus the queries


def _embed_batches(standin: InferenceStandIn) -> list[list[Any]]:
    return [r["body"]["inputs"] for r in standin.requests if r["path"].endswith("/feature-extraction")]


def test_a_real_generative_run_counts_its_examples_as_it_answers_them(
    db_path: str, tmp_path: Path, job_reports: list[Report]
) -> None:
    pytest.importorskip("llama_cpp", reason="the GGUF runtime (llama-cpp-python) is not installed")
    config = write_config(tmp_path / "c.toml")  # [eval] batch_size 64: the three examples are one batch
    settings = settings_of(config, db_path)
    ids = runs.submit_run(db_path, SMOLLM2_ID, "qa", "squad_v2", 3, settings, enqueue=False)
    assert worker.execute_job(db_path, ids.job_id).get("error") is None
    texts = [(d, t, progress.split_time_left(m)[0]) for d, t, m in job_reports]
    scoring = [(d, t) for d, t, text in texts if re.search(r": scoring examples \d/3$", text)]
    assert [count for count, _ in itertools.groupby(scoring)] == [(0, 3), (1, 3), (2, 3), (3, 3)]
    if loaded_here := [i for i, (_, _, m) in enumerate(job_reports) if f"loading {SMOLLM2_ID} (" in m]:
        assert job_reports[loaded_here[0] + 1][2].endswith("scoring examples 0/3")  # back to the examples
