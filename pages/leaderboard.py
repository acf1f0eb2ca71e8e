"""Leaderboard: every model evaluated on a task and dataset (latest succeeded run each), sortable, with a
"promote" action that goes through the registry's audit trail (a reason is required; the evidence is the
model's latest eval run). The promote action is absent in the read-only demo.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from hfops import registry
from hfops.console import db, demo_mode, operator_errors, plain
from hfops.evals import DATASETS, TASKS, runs
from hfops.evals.stats import metric_names, primary_metric

# Widget keys (tests address widgets by these).
K_TASK = "board_task"
K_DATASET = "board_dataset"
K_SORT = "board_sort"
K_ASC = "board_ascending"
K_MODEL = "board_promote_model"
K_REASON = "board_promote_reason"
K_PROMOTE = "board_promote"


def board_frame(task: str, dataset: str) -> pd.DataFrame:
    """The leaderboard rows as a frame (metrics as columns, their CIs next to them)."""
    entries = runs.leaderboard(db(), task, dataset)
    metrics = list(metric_names(task, dataset))
    columns = ["model_id", "status", "role", *[c for m in metrics for c in (m, f"{m} CI")], "runs", "latest_run",
               "examples", "recommendation", "dataset_version", "evaluated_at"]
    return pd.DataFrame(entries, columns=columns)


def promote_form(frame: pd.DataFrame) -> None:
    """Promote one evaluated registry model (audited: reason required, evidence = its latest run)."""
    eligible = frame[~frame["status"].isin(["baseline", "not in registry", "promoted"])]
    st.subheader("Promote")
    if eligible.empty:
        st.caption("No evaluated registry model can be promoted here (baselines and models outside the registry "
                   "cannot; promoted models already are).")
        return
    model_id = st.selectbox("Model", list(eligible["model_id"]), key=K_MODEL)
    reason = st.text_input("Reason (required, recorded in the audit trail)", key=K_REASON)
    if st.button("Promote to production", type="primary", key=K_PROMOTE):
        if not reason.strip():
            st.error("A reason is required to promote a model.")
            return
        run_id = int(eligible.loc[eligible["model_id"] == model_id, "latest_run"].iloc[0])
        with operator_errors("Promote"):
            result = registry.set_status(db(), model_id, "promoted", reason, actor="console",
                                         evidence=f"eval_run:{run_id}")
            demoted = f"; {', '.join(result['demoted'])} moved to shadow" if result["demoted"] else ""
            st.success(f"{plain(model_id)} promoted (was {result['from']}){plain(demoted)}.")


st.title("Leaderboard")
left, right = st.columns(2)
task = left.selectbox("Task", TASKS, key=K_TASK)
dataset = right.selectbox("Dataset", DATASETS, key=K_DATASET)
frame = board_frame(task, dataset)
if frame.empty:
    st.info(f"No model has been evaluated on {task} / {dataset} yet (launch a run on the Evals page).")
else:
    metrics = list(metric_names(task, dataset))
    sort_left, sort_right = st.columns([3, 1])
    sort_by = sort_left.selectbox("Sort by", [*metrics, "model_id", "runs", "evaluated_at"], key=K_SORT)
    ascending = sort_right.toggle("Ascending", value=False, key=K_ASC)
    frame = frame.sort_values(sort_by, ascending=ascending, na_position="last", kind="stable").reset_index(drop=True)
    st.caption(f"Latest succeeded run per model; primary metric {primary_metric(task, dataset)}; "
               "retrieval metrics 0-1, QA metrics 0-100; CIs are bootstrap 95%.")
    st.dataframe(frame, hide_index=True, key="board_table")
    if not demo_mode():
        promote_form(frame)
