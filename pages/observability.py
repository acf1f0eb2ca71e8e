"""Observability: the Grafana tiles drawn from the store (Vega-Lite charts), for operators without Grafana.

Each tile shows the state of its alert rules evaluated now (same thresholds as docs/observability/alerts.yml);
the time range selects what the charts show. Widgets and layout only: the data comes from
:mod:`hfops.views.observability`.
"""

from __future__ import annotations

import streamlit as st

from hfops.console import db, operator_errors, plain, require_settings
from hfops.views import observability as view

K_RANGE = "obs_range"

require_settings()  # a configuration that does not load: its explanation instead of the page
st.title("Observability")
st.caption(
    "Read from the store at each run, the same rows the Prometheus exporter (`hfops metrics`) reads. "
    "Alert states are the conditions of the alert rules evaluated now over each rule's own window; "
    "Prometheus also waits the rule's `for` duration before firing."
)
range_label = st.radio(
    "Time range", view.RANGES, index=view.RANGES.index(view.DEFAULT_RANGE), horizontal=True, key=K_RANGE
)

with operator_errors("Reading the store"):
    board = view.dashboard(db(), range_label)
    if board.firing:
        st.error(
            f"{board.firing} alert condition(s) true: " + ", ".join(plain(n) for n in board.firing_names)
        )
    else:
        st.success("No alert condition is true.")
    st.dataframe(board.alerts, hide_index=True, key="obs_alerts")

    for i, tile in enumerate(board.tiles):  # two tiles per row, in the Grafana dashboard's order
        if i % 2 == 0:
            row = st.columns(2)
        with row[i % 2].container(border=True):
            st.subheader(tile.tile.title)
            st.caption(plain(tile.tile.description))
            if tile.has_rules:
                st.markdown("  \n".join(f"{s.mark} {plain(s.text)}" for s in tile.states) or "no alert rule")
            st.altair_chart(tile.figure, key=f"obs_chart_{tile.tile.key}", width="stretch")
            st.caption(plain(tile.note))
