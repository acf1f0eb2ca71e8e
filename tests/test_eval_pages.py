"""Evals and Leaderboard pages (AppTest): launch -> job, live progress, runs, run view with metric table + CIs
and charts, disagreement filter, leaderboard sorting, audited promote, demo mode without writes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from hfops import jobs, progress, registry
from hfops.evals import custom, runs
from hfops.store import get_db, write_tx
from tests.charts_kit import page_charts
from tests.console_kit import open_console
from tests.registry_rows import add_candidates
from tests.standins.inference import InferenceStandIn
from tests.test_eval_runs import API_KEY, run_eval, write_config

EVALS = "pages/evals.py"
BOARD = "pages/leaderboard.py"


@pytest.fixture
def store(db_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A store with two finished runs (retrieval on MS MARCO, QA on SQuAD v2) made through the stand-in."""
    monkeypatch.setenv("HUGGINGFACE_API_KEY", API_KEY)
    add_candidates(
        db_path,
        [
            {"model_id": "acme/embed", "pipeline_tag": "feature-extraction"},
            {"model_id": "acme/chat", "pipeline_tag": "text-generation", "library_name": "transformers"},
        ],
    )
    with InferenceStandIn() as server:
        config = write_config(tmp_path / "c.toml", server.url)
        retrieval = run_eval(db_path, config, "acme/embed", "retrieval", "ms_marco", 6)
        server.reply = "Normandy"
        qa = run_eval(db_path, config, "acme/chat", "qa", "squad_v2", 8)
    return {"config": config, "retrieval": retrieval, "qa": qa}


def open_page(db_path: str, page: str, monkeypatch: pytest.MonkeyPatch, **env: str) -> AppTest:
    return open_console(db_path, monkeypatch, page, **env)


def open_retrieval_board(db_path: str, monkeypatch: pytest.MonkeyPatch, **env: str) -> AppTest:
    at = open_page(db_path, BOARD, monkeypatch, **env)
    at.selectbox(key="board_task").set_value("retrieval")
    at.selectbox(key="board_dataset").set_value("ms_marco")
    return at.run()


def frame_with(at: AppTest, column: str) -> pd.DataFrame:
    found = [d.value for d in at.dataframe if column in d.value.columns]
    assert found, f"no dataframe with a {column!r} column"
    return found[0]


def charts(at: AppTest) -> dict[str, tuple[dict[str, Any], pd.DataFrame]]:
    """Vega-Lite specs and their one dataset by chart title."""
    found = {}
    for chart in page_charts(at):
        (frame,) = chart.data.values()
        found[chart.spec["title"]] = (chart.spec, frame)
    return found


# --- Evals --------------------------------------------------------------------------------------------------


def test_runs_list_and_run_view(db_path: str, store: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(db_path, EVALS, monkeypatch)
    listed = frame_with(at, "recommendation")
    assert list(listed["id"]) == [2, 1] and set(listed["status"]) == {"succeeded"}
    at.selectbox(key="evals_run_select").set_value(1).run()
    assert not at.exception
    shown = [t.value for t in at.text]
    assert "acme/embed (candidate) vs baseline:bm25 (production)" in shown
    table = frame_with(at, "delta CI low")
    stored = {(m["system"], m["metric"]): m for m in runs.get_run(get_db(db_path), 1)["metrics"]}
    assert list(table["metric"]) == ["ndcg@10", "mrr@10", "recall@1", "recall@5", "recall@10"]
    for _, row in table.iterrows():
        for system in ("candidate", "production", "delta"):
            m = stored[(system, row["metric"])]
            assert row[system] == pytest.approx(m["value"])
            assert row[f"{system} CI low"] == pytest.approx(m["ci_low"])
            assert row[f"{system} CI high"] == pytest.approx(m["ci_high"])
    recommendation = store["retrieval"]["recommendation"]
    assert any(
        f"Recommendation: {recommendation}" in box.value for box in [*at.success, *at.warning, *at.error]
    )

    figures = charts(at)
    assert set(figures) == {
        "Candidate vs production (95% CI)",
        "Score distribution (ndcg@10 per example)",
        "Latency per example (ms)",
    }
    spec, bars = figures["Candidate vs production (95% CI)"]
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["bar", "rule"]  # bars and their CI
    assert spec["layer"][1]["encoding"]["y2"]["field"] == "CI high"
    assert set(bars["system"]) == {"candidate: acme/embed", "production: baseline:bm25"}
    for _, bar in bars.iterrows():  # each bar is the table's value, its rule the table's CI
        system = bar["system"].split(":")[0]
        row = table[table["metric"] == bar["metric"]].iloc[0]
        assert (bar["value"], bar["CI low"], bar["CI high"]) == pytest.approx(
            (row[system], row[f"{system} CI low"], row[f"{system} CI high"])
        )
    spec, latency = figures["Latency per example (ms)"]
    assert spec["mark"]["type"] == "bar" and spec["encoding"]["y"]["stack"] is None  # overlaid
    stored = runs.run_examples(get_db(db_path), 1, limit=100)
    for system in ("candidate", "production"):  # every example counted once per system
        assert latency[latency["system"] == system]["examples"].sum() == len(stored)

    examples = frame_with(at, "production output")
    assert len(examples) == 6
    assert list(examples.columns)[:3] == ["delta", "candidate", "production"]  # the scores first (issue 13)
    at.checkbox(key="evals_disagreements").check().run()
    assert at.slider(key="evals_threshold_retrieval").value == pytest.approx(
        0.1
    )  # a tenth of ndcg@10's scale
    disagreements = frame_with(at, "production output")
    stored = runs.run_examples(get_db(db_path), 1)
    expected = [
        e
        for e in stored
        if abs(e["delta"]) >= 0.1 or bool(e["candidate_error"]) != bool(e["production_error"])
    ]
    assert len(disagreements) == len(expected) <= 6
    deltas = [abs(d) for d in disagreements["delta"]]
    assert deltas == sorted(deltas, reverse=True) and all(d >= 0.1 for d in deltas)
    at.slider(key="evals_threshold_retrieval").set_value(0.0).run()  # every example counts at 0
    assert len(frame_with(at, "production output")) == 6


def test_qa_run_view_has_squad_metrics(
    db_path: str, store: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page(db_path, EVALS, monkeypatch)
    assert at.selectbox(key="evals_run_select").value == 2  # newest first
    table = frame_with(at, "delta CI low")
    assert list(table["metric"]) == ["f1", "exact", "HasAns_f1", "HasAns_exact", "NoAns_f1", "NoAns_exact"]
    answers = frame_with(at, "production output")
    assert set(answers["candidate output"]) == {"Normandy"}


def test_launch_enqueues_a_job_and_shows_its_progress(
    db_path: str, store: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page(db_path, EVALS, monkeypatch, HFOPS_CONFIG=store["config"])
    at.selectbox(key="evals_task").set_value("retrieval")
    at.selectbox(key="evals_dataset").set_value("squad_v2")
    at.number_input(key="evals_limit").set_value(4)
    at.run()
    assert at.selectbox(key="evals_model").options[:2] == [
        "sentence-transformers/all-MiniLM-L6-v2",
        "acme/embed",
    ]
    at.selectbox(key="evals_model").set_value("acme/embed").run()
    assert any("baseline:bm25" in c.value for c in at.caption)
    at.button(key="evals_launch").click().run()
    assert not at.exception
    assert any("Queued eval run 3" in s.value for s in at.success)
    job = jobs.list_jobs(get_db(db_path), kind="eval_run", limit=1)[0]
    assert job["status"] == "queued" and job["params"]["run_id"] == 3
    run = runs.get_run(get_db(db_path), 3)
    assert (run["model_id"], run["task"], run["dataset"], run["sample_limit"]) == (
        "acme/embed",
        "retrieval",
        "squad_v2",
        4,
    )
    assert any("waiting for the worker" in i.value for i in at.info)
    assert at.selectbox(key="evals_run_select").value == 3

    db = get_db(db_path)  # what the worker's progress reports look like half-way
    with write_tx(db):
        db.execute(
            "UPDATE jobs SET status = 'running', done = 2, total = 4, message = 'run 3: 2/4 examples' "
            "WHERE id = ?",
            [job["id"]],
        )
    at.run()
    bars = at.get("progress")
    assert bars and bars[0].proto.value == 50 and "2/4" in bars[0].proto.text


def test_launch_error_is_shown_not_raised(
    db_path: str, store: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HUGGINGFACE_API_KEY")
    at = open_page(db_path, EVALS, monkeypatch, HFOPS_CONFIG=store["config"])
    at.selectbox(key="evals_task").set_value("qa").run()
    at.selectbox(key="evals_model").set_value("(other model id)").run()
    at.text_input(key="evals_model_text").input("acme/missing").run()
    at.button(key="evals_launch").click().run()
    assert not at.exception
    assert any("Launch failed" in e.value and "HUGGINGFACE_API_KEY is not set" in e.value for e in at.error)
    assert get_db(db_path).execute("SELECT COUNT(*) FROM eval_runs").fetchone()[0] == 2


def test_demo_mode_has_no_launch(
    db_path: str, store: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page(db_path, EVALS, monkeypatch, HFOPS_DEMO="1")
    keys = {getattr(w, "key", None) for w in [*at.button, *at.selectbox, *at.number_input]}
    assert "evals_launch" not in keys and "evals_model" not in keys
    assert frame_with(at, "recommendation").shape[0] == 2  # reading still works


def test_empty_store(db_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(db_path, EVALS, monkeypatch)
    assert any("No eval runs yet." in c.value for c in at.caption)
    at = open_page(db_path, BOARD, monkeypatch)
    assert any("No model has been evaluated" in i.value for i in at.info)


# --- Leaderboard --------------------------------------------------------------------------------------------


def test_leaderboard_per_task_and_dataset_sortable(
    db_path: str, store: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_retrieval_board(db_path, monkeypatch)
    board = frame_with(at, "ndcg@10")
    assert set(board["model_id"]) == {"acme/embed", "baseline:bm25"}
    assert list(board["ndcg@10"]) == sorted(board["ndcg@10"], reverse=True)
    row = board.set_index("model_id").loc["acme/embed"]
    assert row["status"] in ("shadow", "candidate") and row["side in latest run"] == "candidate"
    assert row["latest_run"] == 1
    assert board.set_index("model_id").loc["baseline:bm25", "status"] == "baseline"
    at.selectbox(key="board_sort").set_value("model_id")
    at.toggle(key="board_ascending").set_value(True)
    at.run()
    assert list(frame_with(at, "ndcg@10")["model_id"]) == ["acme/embed", "baseline:bm25"]
    at.toggle(key="board_ascending").set_value(False).run()
    assert list(frame_with(at, "ndcg@10")["model_id"]) == ["baseline:bm25", "acme/embed"]

    at.selectbox(key="board_task").set_value("qa")
    at.selectbox(key="board_dataset").set_value("squad_v2")
    at.run()
    board = frame_with(at, "HasAns_f1")
    assert set(board["model_id"]) == {"acme/chat", "baseline:lexical"}
    at.selectbox(key="board_dataset").set_value("ms_marco").run()
    assert any("No model has been evaluated on qa / ms_marco" in i.value for i in at.info)


def test_promote_needs_a_reason_and_is_audited(
    db_path: str, store: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_retrieval_board(db_path, monkeypatch)
    assert at.selectbox(key="board_promote_model").options == ["acme/embed"]  # baselines cannot be promoted
    before = registry.get_model(get_db(db_path), "acme/embed")["candidate"]["status"]
    at.button(key="board_promote").click().run()
    assert any("Promote failed: a reason is required" in e.value for e in at.error)
    assert registry.get_model(get_db(db_path), "acme/embed")["candidate"]["status"] == before

    at.text_input(key="board_promote_reason").input("beats BM25 on MS MARCO").run()
    at.button(key="board_promote").click().run()
    assert not at.exception
    assert any("promoted" in s.value for s in at.success)
    last = registry.status_history(get_db(db_path), "acme/embed")[-1]
    assert (last["from_status"], last["to_status"], last["actor"], last["reason"], last["evidence"]) == (
        before,
        "promoted",
        "console",
        "beats BM25 on MS MARCO",
        "eval_run:1",
    )
    assert registry.production_model(get_db(db_path), "retrieval") == "acme/embed"


def test_leaderboard_demo_mode_has_no_promote(
    db_path: str, store: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_retrieval_board(db_path, monkeypatch, HFOPS_DEMO="1")
    assert not frame_with(at, "ndcg@10").empty
    keys = {getattr(w, "key", None) for w in [*at.button, *at.text_input, *at.selectbox]}
    assert not keys & {"board_promote", "board_promote_reason", "board_promote_model", "board_rollback"}


def board_rows(at: AppTest, metric: str = "ndcg@10") -> pd.DataFrame:
    return frame_with(at, metric).set_index("model_id")


def test_promote_refreshes_the_board_and_marks_production(
    db_path: str, store: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13: after Promote the board still showed the old status."""
    at = open_retrieval_board(db_path, monkeypatch)
    assert board_rows(at).loc["baseline:bm25", "production"] == "★ production (baseline)"
    assert any(
        "no model is promoted, the baseline baseline:bm25 serves" in i.value.replace("\\", "")
        for i in at.info
    )
    at.text_input(key="board_promote_reason").input("beats BM25").run()
    at.button(key="board_promote").click().run()
    assert not at.exception
    board = board_rows(at)
    assert board.loc["acme/embed", "status"] == "promoted"
    assert (
        board.loc["acme/embed", "production"] == "★ production"
        and board.loc["baseline:bm25", "production"] == ""
    )
    assert any("Production for retrieval: acme/embed (promoted" in i.value.replace("\\", "") for i in at.info)
    assert any("acme/embed promoted" in s.value.replace("\\", "") for s in at.success)


def test_a_rejected_run_is_a_warning_and_production_stays_marked(
    db_path: str, store: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13: after a reject run the board labelled the baseline "production" without a word."""
    db = get_db(db_path)
    with write_tx(db):
        db.execute(
            "UPDATE eval_runs SET recommendation = 'reject' WHERE id = ?", [store["retrieval"]["run_id"]]
        )
    at = open_retrieval_board(db_path, monkeypatch)
    warnings = [w.value.replace("\\", "") for w in at.warning]
    assert any(
        w.startswith("acme/embed was rejected by its latest run 1")
        and "production is still baseline:bm25" in w
        for w in warnings
    ), warnings
    board = board_rows(at)
    assert board.loc["baseline:bm25", "production"] == "★ production (baseline)"
    assert board.loc["baseline:bm25", "side in latest run"] == "production"  # its side in the comparison


def test_one_click_rollback_is_audited(
    db_path: str, store: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    add_candidates(db_path, [{"model_id": "acme/embed-old", "pipeline_tag": "feature-extraction"}])
    db = get_db(db_path)
    registry.set_status(db, "acme/embed-old", "promoted", "first production model", actor="alice")
    registry.set_status(
        db, "acme/embed", "promoted", "beats the old one", actor="alice", evidence="eval_run:1"
    )
    at = open_retrieval_board(db_path, monkeypatch)
    button = at.button(key="board_rollback")
    assert button.label == "Roll back: acme/embed-old back in production"
    button.click().run()
    assert not at.exception
    assert registry.production_model(db, "retrieval") == "acme/embed-old"
    assert registry.get_model(db, "acme/embed")["candidate"]["status"] == "shadow"
    last = registry.status_history(db, "acme/embed-old")[-1]
    assert (last["to_status"], last["actor"], last["evidence"]) == (
        "promoted",
        "console",
        "rollback:acme/embed",
    )
    assert "one-click rollback" in last["reason"]
    assert any("acme/embed-old is production again" in s.value.replace("\\", "") for s in at.success)
    # Once more: the previous production model is acme/embed again (a rollback can be undone the same way).
    assert at.button(key="board_rollback").label == "Roll back: acme/embed back in production"


def test_rollback_without_a_previous_model_gives_production_back_to_the_baseline(
    db_path: str, store: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = get_db(db_path)
    registry.set_status(db, "acme/embed", "promoted", "beats BM25", actor="alice", evidence="eval_run:1")
    at = open_retrieval_board(db_path, monkeypatch)
    assert at.button(key="board_rollback").label == "Roll back: the baseline baseline:bm25 back in production"
    at.button(key="board_rollback").click().run()
    assert registry.production_model(db, "retrieval") is None
    last = registry.status_history(db, "acme/embed")[-1]
    assert (last["from_status"], last["to_status"], last["actor"]) == ("promoted", "shadow", "console")
    assert board_rows(at).loc["baseline:bm25", "production"] == "★ production (baseline)"
    assert any("Nothing to roll back" in c.value for c in at.caption)


def test_retrieval_examples_show_passage_text_side_by_side(
    db_path: str, store: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13: the disagreement table showed passage ids only."""
    from hfops.config import load_settings
    from hfops.evals.data import load_eval_set

    corpus = load_eval_set(load_settings(None), "ms_marco", "retrieval").corpus
    at = open_page(db_path, EVALS, monkeypatch)
    at.selectbox(key="evals_run_select").set_value(1).run()
    table = frame_with(at, "production output")
    stored = {e["example_id"]: e for e in runs.run_examples(get_db(db_path), 1)}
    for _, row in table.iterrows():
        example = stored[row["example"]]
        relevant = example["expected"]["relevant"][0]
        assert row["expected"].startswith(f"{relevant}: {' '.join(corpus[relevant].split())[:40]}")
        for side in ("candidate", "production"):
            top = example[f"{side}_output"][0]
            mark = "✓" if top in example["expected"]["relevant"] else "✗"
            assert row[f"{side} output"].startswith(f"{mark} {top}: {' '.join(corpus[top].split())[:40]}")


def test_a_running_eval_shows_time_left_can_be_cancelled_and_resumed(
    db_path: str, store: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13: progress said nothing about time, and a running eval could not be stopped from the page."""
    db = get_db(db_path)
    made = runs.submit_run(db_path, "acme/embed", "retrieval", "squad_v2", 4, enqueue=False)
    job_id = made["job_id"]
    with write_tx(db):  # a worker took it 45 s ago
        db.execute(
            "UPDATE jobs SET status = 'running', "
            "started_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-45 seconds') WHERE id = ?",
            [job_id],
        )
    clock = [0.0]
    phases = progress.Phases(jobs.Progress(db_path, job_id), prefix="run 1: ", clock=lambda: clock[0])
    corpus = phases.start("embedding the corpus with acme/embed", 40)
    clock[0] = 30.0
    corpus.advance(10, force=True)  # the worker in its corpus phase: 10 of 40 texts in 30 s
    at = open_page(db_path, EVALS, monkeypatch)
    (bar,) = at.get("progress")
    assert "run 1: embedding the corpus with acme/embed 10/40 · about 1 min 30 s left" in bar.proto.text
    assert re.search(r"4\d s elapsed", bar.proto.text), bar.proto.text
    assert bar.proto.value == 25  # the phase's own count
    at.button(key=f"evals_cancel_{job_id}").click().run()
    assert not at.exception
    assert jobs.get_job(db, job_id).cancel_requested_at
    assert "cancelling" in at.get("progress")[0].proto.text
    assert any(f"Cancelling job {job_id}" in i.value for i in at.info)
    assert f"evals_cancel_{job_id}" not in [b.key for b in at.button]

    with write_tx(db):  # what the worker leaves behind when it stops
        db.execute("UPDATE jobs SET status = 'cancelled' WHERE id = ?", [job_id])
        db.execute(
            "UPDATE eval_runs SET status = 'cancelled', message = 'cancelled after 1/4 examples' "
            "WHERE id = ?",
            [made["run_id"]],
        )
    at.selectbox(key="evals_run_select").set_value(made["run_id"]).run()
    assert any("cancelled after 1/4 examples" in w.value for w in at.warning)
    at.button(key="evals_resume").click().run()
    assert not at.exception
    assert jobs.get_job(db, job_id).status == "queued"
    assert any(f"Run {made['run_id']} queued again as job {job_id}" in s.value for s in at.success)


def test_demo_mode_has_no_cancel_or_resume(
    db_path: str, store: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    made = runs.submit_run(db_path, "acme/embed", "retrieval", "squad_v2", 4, enqueue=False)
    at = open_page(db_path, EVALS, monkeypatch, HFOPS_DEMO="1")
    assert any("waiting for the worker" in i.value for i in at.info)  # the job is shown...
    assert f"evals_cancel_{made['job_id']}" not in [b.key for b in at.button]  # ...without its Cancel


# --- custom eval sets: upload, map, check, save (issue 15) --------------------------------------------------

MARCO_JSON = (
    Path(__file__).resolve().parent.parent / "data" / "ms_marco" / "ms_marco_v1.1_train_sample200.json"
)
CSV_WITH_NEWLINES = (
    'ticket,q,body,gold\r\nt1,How do I reset my password?,"Go to ""Settings"",\nthen ""Security"".",'
    '"[""Settings, then Security"", ""click reset""]"\r\nt2,Which plan has SSO?,SSO is Enterprise only.,'
    "Enterprise\r\nt3,Is there a phone line?,We answer by e-mail only.,\r\n"
)


def set_field(at: AppTest, field: str, column: str) -> None:
    at.selectbox(key=f"evals_set_map_{field}").set_value(column).run()
    assert not at.exception, [e.value for e in at.exception]


def unescaped(text: str) -> str:
    """Text as the operator reads it (the page escapes Markdown in what it shows)."""
    return re.sub(r"\\(.)", r"\1", text)


def errors(at: AppTest) -> list[str]:
    return [unescaped(e.value) for e in at.error]


def successes(at: AppTest) -> list[str]:
    return [unescaped(s.value) for s in at.success]


def test_upload_map_check_and_save_a_csv_then_launch_on_it(
    db_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUGGINGFACE_API_KEY", API_KEY)
    config = write_config(tmp_path / "c.toml")
    at = open_page(db_path, EVALS, monkeypatch, HFOPS_CONFIG=config)
    assert any("No custom eval sets yet." in c.value for c in at.caption)
    at.selectbox(key="evals_set_task").set_value("qa").run()
    at.file_uploader(key="evals_set_file").set_value(
        ("Support Tickets.csv", CSV_WITH_NEWLINES.encode(), "text/csv")
    ).run()
    assert not at.exception and not errors(at)
    raw = frame_with(at, "body")  # the rows as read, before any mapping
    assert list(raw.columns) == ["ticket", "q", "body", "gold"] and len(raw) == 3
    assert raw["body"][0] == 'Go to "Settings", then "Security".'  # one bounded line per cell
    assert at.selectbox(key="evals_set_map_id").value == "(none)"  # no column named id: the row number
    for field, column in (("id", "ticket"), ("question", "q"), ("context", "body"), ("answers", "gold")):
        set_field(at, field, column)
    assert not errors(at)
    assert any("Every row checked: 3 examples · 1 unanswerable" in s for s in successes(at))
    mapped = frame_with(at, "answers")
    assert list(mapped["id"]) == ["t1", "t2", "t3"]
    assert list(mapped["answers"]) == [
        "Settings, then Security | click reset",
        "Enterprise",
        "(unanswerable)",
    ]
    assert at.text_input(key="evals_set_name").value == "support-tickets"
    assert custom.set_names(get_db(db_path)) == []  # checking stores nothing
    at.button(key="evals_set_save").click().run()
    assert not at.exception and not errors(at)

    stored = custom.get_set(get_db(db_path), "support-tickets")
    assert (stored.task, stored.examples, stored.unanswerable, stored.source) == ("qa", 3, 1, "file")
    assert stored.mapping == {"id": "ticket", "question": "q", "context": "body", "answers": "gold"}
    examples = {e.id: e for e in custom.stored_examples(get_db(db_path), "support-tickets")}
    assert examples["t1"].context == 'Go to "Settings",\nthen "Security".'  # the quoted newline kept
    assert examples["t1"].answers == ["Settings, then Security", "click reset"]
    assert Path(stored.location).read_bytes() == CSV_WITH_NEWLINES.encode()  # the upload is kept as sent
    assert any(
        f"added: support-tickets, a qa set of 3 examples, version {stored.version}" in s
        for s in successes(at)
    )
    assert list(frame_with(at, "unanswerable")["name"]) == ["support-tickets"]
    assert at.selectbox(key="evals_task").value == "qa"  # selected in the launch form
    assert at.selectbox(key="evals_dataset").value == "support-tickets"

    at.selectbox(key="evals_model").set_value("(other model id)").run()
    at.text_input(key="evals_model_text").input("acme/chat").run()
    at.button(key="evals_launch").click().run()
    assert not at.exception and not errors(at), errors(at)
    run = runs.get_run(get_db(db_path), 1)
    assert (run["dataset"], run["dataset_source"], run["model_id"]) == (
        "support-tickets",
        "custom",
        "acme/chat",
    )


def test_a_real_json_file_with_nested_passages_maps_by_dotted_paths(
    db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = json.loads(MARCO_JSON.read_text())
    at = open_page(db_path, EVALS, monkeypatch)
    at.selectbox(key="evals_set_task").set_value("qa").run()
    at.file_uploader(key="evals_set_file").set_value(
        (MARCO_JSON.name, MARCO_JSON.read_bytes(), "application/json")
    )
    at.run()
    assert not at.exception and not errors(at), errors(at)
    assert any(f"{MARCO_JSON.name}: {len(rows)} rows" in unescaped(c.value) for c in at.caption)
    options = at.selectbox(key="evals_set_map_context").options
    assert "passages.passage_text" in options and "passages.is_selected" in options  # nested columns offered
    set_field(at, "id", "query_id")
    set_field(at, "question", "query")
    set_field(at, "context", "passages.passage_text")
    unanswerable = sum(1 for r in rows if not r["answers"])
    assert any(f"{len(rows)} examples · {unanswerable} unanswerable" in s for s in successes(at))
    at.number_input(key="evals_set_limit").set_value(50).run()  # the first 50 rows only
    first_50 = sum(1 for r in rows[:50] if not r["answers"])
    assert any(f"Every row checked: 50 examples · {first_50} unanswerable" in s for s in successes(at))
    at.text_input(key="evals_set_name").input("marco-qa").run()
    at.button(key="evals_set_save").click().run()
    assert not at.exception and not errors(at), errors(at)
    assert custom.get_set(get_db(db_path), "marco-qa").examples == 50
    first = next(
        e for e in custom.stored_examples(get_db(db_path), "marco-qa") if e.id == str(rows[0]["query_id"])
    )
    assert first.query == rows[0]["query"] and first.answers == rows[0]["answers"]
    assert first.context.startswith("[1] " + rows[0]["passages"]["passage_text"][0])


def test_a_retrieval_set_from_parquet_queries_and_a_csv_corpus(
    db_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(
        pa.table(
            {"qid": ["a", "b", "c"], "text": ["x?", "y?", "z?"], "gold": [["d1"], ["d2", "d3"], ["d3"]]}
        ),
        buffer,
    )
    at = open_page(db_path, EVALS, monkeypatch)
    at.selectbox(key="evals_set_task").set_value("retrieval").run()
    at.file_uploader(key="evals_set_file").set_value(
        ("queries.parquet", buffer.getvalue(), "application/octet-stream")
    )
    at.run()
    set_field(at, "id", "qid")
    set_field(at, "query", "text")
    set_field(at, "relevant", "gold")
    assert any("a retrieval set needs documents" in e for e in errors(at))  # no corpus yet
    corpus = "doc,body\nd1,one\nd2,two\nd3,three\nd4,four\n"
    at.file_uploader(key="evals_set_corpus").set_value(("docs.csv", corpus.encode(), "text/csv")).run()
    at.selectbox(key="evals_set_map_corpus_doc_id").set_value("doc").run()
    at.selectbox(key="evals_set_map_corpus_doc_text").set_value("body").run()
    assert not errors(at), errors(at)
    assert any("3 examples · 4 documents" in s for s in successes(at))
    mapped = frame_with(at, "first relevant document")
    assert list(mapped["first relevant document"]) == ["one", "two", "three"]
    at.button(key="evals_set_save").click().run()
    assert not errors(at), errors(at)
    stored = custom.get_set(get_db(db_path), "queries")
    assert (stored.task, stored.examples, stored.documents) == ("retrieval", 3, 4)
    assert custom.stored_documents(get_db(db_path), "queries") == {
        "d1": "one",
        "d2": "two",
        "d3": "three",
        "d4": "four",
    }


def test_bad_files_and_mappings_are_clear_errors_that_store_nothing(
    db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page(db_path, EVALS, monkeypatch)
    at.selectbox(key="evals_set_task").set_value("qa").run()
    rows = [{"qid": f"q{i}", "question": f"question {i}?", "gold": [f"answer {i}"]} for i in range(1, 5)]
    with_duplicate = "".join(json.dumps(r) + "\n" for r in [*rows, rows[1]])
    at.file_uploader(key="evals_set_file").set_value(
        ("mine.jsonl", with_duplicate.encode(), "application/jsonl")
    )
    at.run()
    set_field(at, "id", "qid")
    set_field(at, "answers", "gold")
    assert any(
        "mine.jsonl: line 5, column 'qid': duplicate id 'q2' (first at line 2)" in e for e in errors(at)
    ), errors(at)
    assert not [e for e in errors(at) if "uploads" in e]  # the kept file's folder is not shown
    assert "evals_set_save" not in {b.key for b in at.button}  # nothing to save

    at.file_uploader(key="evals_set_file").set_value(
        ("broken.json", b'[{"a": 1}, {"a": ', "application/json")
    )
    at.run()
    assert not at.exception
    assert any(e.startswith("Not read: broken.json: not valid JSON") for e in errors(at)), errors(at)

    latin = "q,gold\nwho?,Ann\nwhé?,Bob\n".encode("latin-1")  # saved as Latin-1, not UTF-8
    at.file_uploader(key="evals_set_file").set_value(("latin.csv", latin, "text/csv")).run()
    assert any("latin.csv: line 3, byte 0xe9 at column 3: not valid UTF-8" in e for e in errors(at)), errors(
        at
    )

    short_row = b"q,gold\nwhat?,a\nwhy?\n"
    at.file_uploader(key="evals_set_file").set_value(("short.csv", short_row, "text/csv")).run()
    assert any("short.csv: row 2 (line 3): 1 field(s), the header has 2" in e for e in errors(at)), errors(at)
    assert custom.set_names(get_db(db_path)) == []


def test_saving_over_a_set_needs_replace_and_gives_a_new_version(
    db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page(db_path, EVALS, monkeypatch)
    at.selectbox(key="evals_set_task").set_value("qa").run()

    def upload(text: str) -> None:
        at.file_uploader(key="evals_set_file").set_value(("faq.csv", text.encode(), "text/csv")).run()
        assert not errors(at), errors(at)

    upload("question,answers\nWho?,Ann\nWhen?,Monday\n")
    at.button(key="evals_set_save").click().run()
    first = custom.get_set(get_db(db_path), "faq").version
    upload("question,answers\nWho?,Ann\nWhen?,Tuesday\n")  # one row changed
    at.button(key="evals_set_save").click().run()
    assert any("Not saved:" in e and "exists" in e and "Replace" in e for e in errors(at)), errors(at)
    assert custom.get_set(get_db(db_path), "faq").version == first  # nothing stored
    assert at.file_uploader(key="evals_set_file").value is not None  # the upload and the mapping stay
    at.checkbox(key="evals_set_replace").check().run()
    at.button(key="evals_set_save").click().run()
    second = custom.get_set(get_db(db_path), "faq").version
    assert second != first and any(f"replaced (was {first}): faq" in s for s in successes(at))


def test_demo_mode_lists_sets_without_the_upload_form(
    db_path: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "faq.csv"
    path.write_text("question,answers\nWho?,Ann\n")
    custom.add_from_file(get_db(db_path), "faq", "qa", str(path))
    at = open_page(db_path, EVALS, monkeypatch, HFOPS_DEMO="1")
    assert list(frame_with(at, "unanswerable")["name"]) == ["faq"]
    assert not at.file_uploader
    keys = {getattr(w, "key", None) for w in [*at.button, *at.selectbox, *at.text_input, *at.checkbox]}
    assert not {k for k in keys if k and k.startswith("evals_set_")}


def test_a_run_on_a_custom_retrieval_set_shows_its_passages(
    db_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUGGINGFACE_API_KEY", API_KEY)
    docs = {f"d{i}": f"document number {i} about topic {i}" for i in range(1, 7)}
    corpus = tmp_path / "docs.csv"
    corpus.write_text("doc_id,doc_text\n" + "".join(f"{d},{t}\n" for d, t in docs.items()))
    queries = tmp_path / "queries.csv"
    queries.write_text("id,query,relevant\n" + "".join(f"q{i},topic {i}?,d{i}\n" for i in range(1, 5)))
    custom.add_from_file(get_db(db_path), "topics", "retrieval", str(queries), corpus=str(corpus))
    with InferenceStandIn() as server:
        made = run_eval(
            db_path, write_config(tmp_path / "c.toml", server.url), "acme/embed", "retrieval", "topics", None
        )
    assert made["status"] == "succeeded", made["error"]
    at = open_page(db_path, EVALS, monkeypatch)
    table = frame_with(at, "production output")
    stored = {e["example_id"]: e for e in runs.run_examples(get_db(db_path), made["run_id"])}
    assert len(table) == 4
    for _, row in table.iterrows():
        example = stored[row["example"]]
        relevant = example["expected"]["relevant"][0]
        assert row["expected"] == f"{relevant}: {docs[relevant]}"
        top = example["candidate_output"][0]
        mark = "✓" if top == relevant else "✗"
        assert row["candidate output"] == f"{mark} {top}: {docs[top]}"
    board = open_page(db_path, BOARD, monkeypatch)  # and on the Leaderboard, as a built-in dataset is
    board.selectbox(key="board_task").set_value("retrieval").run()
    assert board.selectbox(key="board_dataset").options == ["squad_v2", "ms_marco", "topics"]
    board.selectbox(key="board_dataset").set_value("topics").run()
    ranked = frame_with(board, "ndcg@10")
    assert set(ranked["model_id"]) == {"acme/embed", "baseline:bm25"}
    assert set(ranked["latest_run"]) == {made["run_id"]}
