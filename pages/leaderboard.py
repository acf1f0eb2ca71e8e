"""Leaderboard: every model evaluated on a task and dataset (latest succeeded run each), sortable, with a
"promote" action that goes through the registry's audit trail (a reason is required; the evidence is the
model's latest eval run). The promote action is absent in the read-only demo.
Widgets and layout only: the data comes from :mod:`hfops.views.leaderboard`.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from hfops.console import db, demo_mode, operator_errors, plain, require_settings
from hfops.evals import TASKS
from hfops.views import leaderboard as view

# Widget keys (tests address widgets by these).
K_TASK = "board_task"
K_DATASET = "board_dataset"
K_SORT = "board_sort"
K_ASC = "board_ascending"
K_MODEL = "board_promote_model"
K_REASON = "board_promote_reason"
K_PROMOTE = "board_promote"
K_ROLLBACK = "board_rollback"
K_FLASH = "board_flash"


def promote_form(frame: pd.DataFrame) -> None:
    """Promote one evaluated registry model (audited: reason required, evidence = its latest run)."""
    eligible = view.promotable(frame)
    st.subheader("Promote")
    if eligible.empty:
        st.caption(
            "No evaluated registry model can be promoted here (baselines, models outside the registry and "
            "rejected or retired models cannot; promoted models already are)."
        )
        return
    model_id = st.selectbox("Model", list(eligible["model_id"]), key=K_MODEL)
    reason = st.text_input("Reason (required, recorded in the audit trail)", key=K_REASON)
    if st.button("Promote to production", type="primary", key=K_PROMOTE):
        with operator_errors("Promote"):
            st.session_state[K_FLASH] = view.promote(db(), eligible, model_id, reason)
            st.rerun()  # the board, the marker and the rollback show the new production model


def rollback_form(prod: view.Production) -> None:
    """One click puts the previous production model back (audited; the reason is recorded)."""
    st.subheader("Roll back")
    if not prod.promoted:
        st.caption("Nothing to roll back: no model is promoted for this task.")
        return
    if st.button(prod.rollback_label, key=K_ROLLBACK, icon=":material/undo:"):
        with operator_errors("Rollback"):
            st.session_state[K_FLASH] = view.rollback(db(), prod.task)
            st.rerun()


require_settings()  # a configuration that does not load: its explanation instead of the page
st.title("Leaderboard")
if flash := st.session_state.pop(K_FLASH, None):
    st.success(plain(flash))
left, right = st.columns(2)
task = left.selectbox("Task", TASKS, key=K_TASK)
dataset = right.selectbox("Dataset", view.dataset_options(db(), task), key=K_DATASET)
prod = view.production(db(), task)
st.info(plain(prod.summary), icon=":material/star:")
frame = view.board_frame(db(), task, dataset)
if frame.empty:
    st.info(f"No model has been evaluated on {task} / {dataset} yet (launch a run on the Evals page).")
else:
    for warning in view.warnings(frame, prod):
        st.warning(plain(warning))
    sort_left, sort_right = st.columns([3, 1])
    sort_by = sort_left.selectbox("Sort by", view.sort_options(task, dataset), key=K_SORT)
    ascending = sort_right.toggle("Ascending", value=False, key=K_ASC)
    frame = view.with_published(db(), view.sorted_board(frame, sort_by, ascending), task)
    st.caption(view.board_caption(task, dataset))
    if notice := view.ranking_notice(frame, task, dataset):
        st.warning(plain(notice))
    st.dataframe(view.mark_production(frame, prod), hide_index=True, key="board_table")
    if not demo_mode():
        promote_form(frame)
if not demo_mode():
    rollback_form(prod)
