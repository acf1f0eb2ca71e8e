"""Evals: launch a shadow run (a worker job), watch its progress, list runs, inspect one run.

A run page shows the metric table with 95% CIs, the recommendation and its rule, plotly charts
(candidate vs production per metric with error bars, score distribution, latency histogram) and the
per-example table, filterable to the disagreements. Launching is absent in the read-only demo.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from hfops import jobs, registry
from hfops.console import db, demo_mode, operator_errors, plain, settings
from hfops.evals import DATASETS, TASKS, runs
from hfops.evals.backends import BASELINES, MINILM_ID
from hfops.evals.stats import metric_names

POLL_SECONDS = 1.5
OTHER = "(other model id)"
# Widget keys (tests address widgets by these).
K_MODEL = "evals_model"
K_MODEL_TEXT = "evals_model_text"
K_TASK = "evals_task"
K_DATASET = "evals_dataset"
K_LIMIT = "evals_limit"
K_LAUNCH = "evals_launch"
K_RUN = "evals_run_select"
K_DISAGREE = "evals_disagreements"
K_REFRESH = "evals_refresh"
COLORS = {"candidate": "#1f77b4", "production": "#ff7f0e"}


def model_options(task: str) -> list[str]:
    """Models worth offering for ``task``: the packaged MiniLM (retrieval) and registry candidates."""
    tags = [t for t, k in registry.TASK_OF_PIPELINE.items() if k == task]
    found = db().execute(
        "SELECT c.model_id FROM candidates c JOIN models m ON m.model_id = c.model_id "
        f"WHERE c.status IN ('candidate', 'shadow', 'evaluating') AND m.pipeline_tag IN ({', '.join('?' for _ in tags)}) "
        "ORDER BY c.score DESC, c.model_id LIMIT 200",
        tags,
    ).fetchall()
    options = [MINILM_ID] if task == "retrieval" else []
    options += [r[0] for r in found if r[0] not in options]
    return [*options, OTHER]


def launch_form() -> None:
    """Model, task, dataset, sample size -> a queued eval_run job."""
    cfg = settings()
    st.subheader("Launch a shadow run")
    left, middle, right = st.columns(3)
    task = left.selectbox("Task", TASKS, key=K_TASK)
    dataset = middle.selectbox("Dataset", DATASETS, key=K_DATASET)
    limit = right.number_input("Sample size", min_value=1, max_value=5000, value=cfg.eval.default_limit, step=10,
                               key=K_LIMIT)
    choice = st.selectbox("Candidate model", model_options(task), key=K_MODEL)
    model_id = st.text_input("Model id", key=K_MODEL_TEXT) if choice == OTHER else choice
    production = runs.production_for(db(), task, model_id or "")
    st.caption(f"Compared with the production model of {task}: {plain(production)}"
               + (" (no model promoted yet: the baseline)" if production == BASELINES[task] else ""))
    if st.button("Launch shadow run", type="primary", key=K_LAUNCH):
        with operator_errors("Launch"):
            ids = runs.submit_run(cfg.store.path, model_id or "", task, dataset, int(limit), cfg,
                                  config_path=cfg.source_file)
            st.session_state[K_RUN] = ids["run_id"]
            st.success(f"Queued eval run {ids['run_id']} (job {ids['job_id']}); the worker runs it and this page "
                       "shows its progress.")


def show_progress(active: list[dict[str, Any]]) -> None:
    """A progress bar per queued or running eval job."""
    for job in active:
        run = runs.run_for_job(db(), job["id"])
        label = f"Run {run['id'] if run else '?'} · job {job['id']} · {job['status']}"
        if job["status"] == "queued":
            st.info(f"{label}: waiting for the worker (`hfops worker`; `make run` starts it)")
            continue
        total = job.get("total") or (run or {}).get("total") or 0
        done = job.get("done") or 0
        fraction = min(1.0, done / total) if total else 0.0
        st.progress(fraction, text=f"{label} — {done}/{total or '?'} {plain(job.get('message') or '')}")


def active_eval_jobs() -> list[dict[str, Any]]:
    return [j for j in jobs.list_jobs(db(), kind="eval_run", limit=20) if j["status"] in ("queued", "running")]


def live_runs(polling: bool) -> None:
    """Progress bars and the runs list; re-runs on a timer while a run is queued or running."""
    active = active_eval_jobs()
    if active:
        st.subheader("In progress")
        show_progress(active)
    st.subheader("Runs")
    st.button("Refresh", key=K_REFRESH)
    found = runs.list_runs(db(), limit=100)
    if not found:
        st.caption("No eval runs yet.")
    else:
        table = pd.DataFrame(found)[["id", "status", "model_id", "production_id", "task", "dataset", "done", "total",
                                     "primary_metric", "candidate_score", "production_score", "delta",
                                     "recommendation", "created_at"]]
        st.dataframe(table, hide_index=True, key="evals_runs_table")
    if polling and not active:
        st.rerun(scope="app")


def metric_table(run: dict[str, Any]) -> pd.DataFrame:
    """One row per metric: candidate, production and delta with their 95% CIs."""
    by_metric: dict[str, dict[str, Any]] = {}
    for m in run["metrics"]:
        row = by_metric.setdefault(m["metric"], {"metric": m["metric"], "n": m["n"]})
        row[m["system"]] = m["value"]
        row[f"{m['system']} CI low"] = m["ci_low"]
        row[f"{m['system']} CI high"] = m["ci_high"]
    columns = ["metric", "candidate", "candidate CI low", "candidate CI high", "production", "production CI low",
               "production CI high", "delta", "delta CI low", "delta CI high", "n"]
    order = list(metric_names(run["task"], run["dataset"]))
    rows = sorted(by_metric.values(), key=lambda r: order.index(r["metric"]) if r["metric"] in order else 99)
    return pd.DataFrame(rows, columns=columns)


def metrics_chart(run: dict[str, Any], table: pd.DataFrame) -> go.Figure:
    """Candidate vs production per metric, error bars = bootstrap 95% CI."""
    fig = go.Figure()
    for system, name in (("candidate", run["model_id"]), ("production", run["production_id"])):
        fig.add_bar(
            name=f"{system}: {name}", x=list(table["metric"]), y=list(table[system]), marker_color=COLORS[system],
            error_y={"type": "data", "array": list(table[f"{system} CI high"] - table[system]),
                     "arrayminus": list(table[system] - table[f"{system} CI low"])},
        )
    fig.update_layout(barmode="group", title="Candidate vs production (95% CI)", height=380,
                      legend={"orientation": "h", "y": -0.2})
    return fig


def distribution_chart(examples: pd.DataFrame, metric: str) -> go.Figure:
    """Per-example primary scores of both systems."""
    fig = go.Figure()
    for system in ("candidate", "production"):
        fig.add_histogram(x=list(examples[f"{system}_primary"]), name=system, opacity=0.6, nbinsx=20,
                          marker_color=COLORS[system])
    fig.update_layout(barmode="overlay", title=f"Score distribution ({metric} per example)", height=330,
                      xaxis_title=metric, yaxis_title="examples")
    return fig


def latency_chart(examples: pd.DataFrame) -> go.Figure:
    """Per-example latency of both systems (batched encoders: batch time / batch size)."""
    fig = go.Figure()
    for system in ("candidate", "production"):
        fig.add_histogram(x=list(examples[f"{system}_latency_ms"]), name=system, opacity=0.6, nbinsx=30,
                          marker_color=COLORS[system])
    fig.update_layout(barmode="overlay", title="Latency per example (ms)", height=330, xaxis_title="ms",
                      yaxis_title="examples")
    return fig


def _short(value: Any, width: int = 160) -> str:
    text = value if isinstance(value, str) else ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def example_table(found: list[dict[str, Any]], task: str) -> pd.DataFrame:
    """Per-example rows as plain text columns."""
    rows = []
    for r in found:
        expected = r["expected"].get("relevant") if task == "retrieval" else r["expected"].get("answers")
        rows.append({
            "example": r["example_id"],
            "query": _short(r["input"].get("query", "")),
            "expected": _short(expected or "(no answer)"),
            "candidate output": _short(r["candidate_output"] if r["candidate_output"] is not None else ""),
            "production output": _short(r["production_output"] if r["production_output"] is not None else ""),
            "candidate": r["candidate_primary"],
            "production": r["production_primary"],
            "delta": r["delta"],
            "candidate ms": r["candidate_latency_ms"],
            "production ms": r["production_latency_ms"],
            "candidate error": r["candidate_error"] or "",
            "production error": r["production_error"] or "",
        })
    return pd.DataFrame(rows)


def show_run(run_id: int) -> None:
    """The run page: summary, recommendation, metric table, charts, per-example table."""
    conn = db()
    run = runs.get_run(conn, run_id)
    if run is None:
        st.warning(f"No eval run {run_id}.")
        return
    st.subheader(f"Run {run['id']}")
    st.text(f"{run['model_id']} (candidate) vs {run['production_id']} (production)")
    st.text(f"{run['task']} on {run['dataset']} · dataset version {run['dataset_version'] or '—'} · "
            f"{run['done']}/{run['total'] or '?'} examples · status {run['status']}")
    st.text(f"Errors: candidate {run['candidate_errors']}, production {run['production_errors']} · cache "
            f"{run['cache_hits']} hits / {run['cache_misses']} misses · {run['model_calls']} model calls")
    if run["error"]:
        st.error(f"Run failed: {plain(run['error'])}")
    if run["recommendation"]:
        message = f"Recommendation: {run['recommendation']} — {plain(run['recommendation_reason'])}"
        {"promote": st.success, "reject": st.error}.get(run["recommendation"], st.warning)(message)
        if run["recommendation_rule"]:
            st.caption(f"Rule {plain(run['recommendation_rule']['name'])}: "
                       f"{plain(run['recommendation_rule']['text'])}")
        if run["status_after"]:
            st.text(f"Registry: {run['status_before']} → evaluating → {run['status_after']} (evidence eval_run:{run['id']})")
    if not run["metrics"]:
        st.caption("Metrics appear when the run has finished.")
        return
    table = metric_table(run)
    st.dataframe(table, hide_index=True, key="evals_metric_table")
    st.plotly_chart(metrics_chart(run, table), key="evals_chart_metrics")
    all_examples = runs.run_examples(conn, run_id, limit=100_000)
    frame = pd.DataFrame(all_examples)
    left, right = st.columns(2)
    with left:
        st.plotly_chart(distribution_chart(frame, run["primary_metric"]), key="evals_chart_scores")
    with right:
        st.plotly_chart(latency_chart(frame), key="evals_chart_latency")
    st.markdown("**Examples**")
    only = st.checkbox("Only disagreements (largest |delta| first)", key=K_DISAGREE)
    shown = runs.run_examples(conn, run_id, disagreements_only=True) if only else all_examples[:500]
    st.caption(f"{len(shown)} example(s) shown · candidate/production = per-example {run['primary_metric']}")
    st.dataframe(example_table(shown, run["task"]), hide_index=True, key="evals_examples_table")


# --- Publish (issue 6: hfops.publish) — a worker job; the panel is absent in the read-only demo --------------
K_PUBLISH = "evals_publish"
K_PUBLISH_REPO = "evals_publish_repo"


def publish_status(run_id: int, polling: bool) -> None:
    """The latest publish job of the run; re-runs on a timer while it is queued or running."""
    from hfops import publish

    found = publish.publish_jobs(db(), run_id, limit=50)
    job = found[0] if found else None
    if job is None:
        return
    label = f"Publish job {job['id']}"
    result = job["result"] or {}
    if job["status"] in ("queued", "running"):
        st.info(f"{label}: {job['status']} (the worker runs it: `hfops worker`)")
    elif job["status"] == "failed":
        st.error(f"{label} failed: {plain(job['error'])}")
    elif result.get("mode") == "push":
        st.success(f"{label}: pushed in one commit")
        st.text(f"Repo: {result['repo_id']} (private)\nCommit: {result['commit_url']}")
    else:
        st.info(f"{label}: dry run ({result.get('dry_run_reason')}), nothing pushed")
        st.text(f"Files written to {result.get('out_dir')}")
    if polling and job["status"] not in ("queued", "running"):
        st.rerun(scope="app")


def publish_panel(run_id: int) -> None:
    """Publish a succeeded run's report and model card to a private Hub repo (dry run without the token)."""
    from hfops import publish

    run = runs.get_run(db(), run_id)
    if run is None or run["status"] != "succeeded":
        return
    cfg = settings()
    st.markdown("**Publish to the Hub**")
    pushed = publish.latest_commit(db(), run_id)
    if pushed:
        st.text(f"Last published to {pushed['repo_id']}: {pushed['commit_url']}")
    token = publish.token_status()
    st.caption(f"HUGGINGFACE_WRITE_TOKEN: {token} — " + (
        "the worker creates the private repo if needed and pushes the report, summary and model card in one commit"
        if token == "set" else "without it the worker only writes the files locally (dry run)"))
    repo = st.text_input("Hub repo (ORG/NAME)", value=cfg.publish.repo, key=K_PUBLISH_REPO)
    if st.button("Publish", key=K_PUBLISH):
        with operator_errors("Publish"):
            job_id = publish.enqueue_publish(cfg.store.path, run_id, repo, config_path=cfg.source_file)
            st.success(f"Queued publish job {job_id}.")
    active = any(j["status"] in ("queued", "running") for j in publish.publish_jobs(db(), run_id, limit=5))
    st.fragment(publish_status, run_every=POLL_SECONDS if active else None)(run_id, active)


# --- page ------------------------------------------------------------------------------------------------------
st.title("Evals")
if not demo_mode():
    launch_form()
active_now = bool(active_eval_jobs())
st.fragment(live_runs, run_every=POLL_SECONDS if active_now else None)(active_now)
run_ids = [r["id"] for r in runs.list_runs(db(), limit=100)]
if run_ids:
    if st.session_state.get(K_RUN) not in run_ids:
        st.session_state.pop(K_RUN, None)
    chosen = st.selectbox("Run", run_ids, key=K_RUN, format_func=lambda i: f"run {i}")
    show_run(int(chosen))
    if not demo_mode():
        publish_panel(int(chosen))
