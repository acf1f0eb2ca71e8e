"""Observability: the Grafana tiles drawn from the store with plotly, for operators without Grafana.

Each tile shows the state of its alert rules evaluated now (same thresholds as docs/observability/alerts.yml);
the time range selects what the charts show.
"""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from hfops.console import db, operator_errors, plain
from hfops.observability import charts, readings, series
from hfops.observability.thresholds import TILES, rules_for_tile

K_RANGE = "obs_range"


def state_line(states: list[series.AlertState], tile: str) -> str:
    """One line per alert rule of ``tile``: state, value and condition."""
    lines = []
    for s in states:
        if s.rule.tile != tile:
            continue
        labels = " ".join(f"{k}={v}" for k, v in s.labels.items() if k != "metric")
        icon = {"alert": ":red[ALERT]", "ok": ":green[ok]", "no data": ":gray[no data]"}[s.state]
        lines.append(
            f"{icon} {plain(s.rule.name)}{(' ' + plain(labels)) if labels else ''}: "
            f"{plain(series.format_value(s.value, s.rule.unit))} (alert when "
            f"{plain(s.rule.op)} {plain(series.format_value(s.rule.threshold, s.rule.unit))}"
            f"{plain(' over ' + s.rule.window) if s.rule.window else ''})"
        )
    return "  \n".join(lines) if lines else "no alert rule"


st.title("Observability")
st.caption(
    "Read from the store at each run, the same rows the Prometheus exporter (`hfops metrics`) reads. "
    "Alert states are the conditions of the alert rules evaluated now over each rule's own window; "
    "Prometheus also waits the rule's `for` duration before firing."
)
range_label = st.radio("Time range", list(series.RANGES), index=list(series.RANGES).index(series.DEFAULT_RANGE),
                       horizontal=True, key=K_RANGE)

with operator_errors("Reading the store"):
    conn = db()
    now = datetime.now(UTC)
    window = series.window(range_label or series.DEFAULT_RANGE, now)
    states = series.alert_states(conn, now)
    firing = [s for s in states if s.state == "alert"]
    if firing:
        st.error(f"{len(firing)} alert condition(s) true: " + ", ".join(sorted({plain(s.rule.name) for s in firing})))
    else:
        st.success("No alert condition is true.")
    st.dataframe(series.alert_table(states), hide_index=True, key="obs_alerts")

    steps = series.refine_steps(conn, window)
    inference = series.inference_series(steps)
    found = series.candidates_breakdown(conn)
    scores = series.scores_table(conn)
    sync = readings.sync_health(conn)
    last_eval = readings.last_eval_run_end(conn)
    figures = {
        "candidates": charts.candidates(found),
        "eval_runs": charts.eval_runs(series.eval_runs_series(conn, window), window),
        "refine_latency": charts.refine_latency(series.refine_latency_series(steps), window),
        "inference_success": charts.ratio(inference, window, "success_rate", "HfInferenceSuccessLow",
                                          "success rate"),
        "rate_limited": charts.ratio(inference, window, "rate_limited_share", "HfInferenceRateLimitedHigh",
                                     "rate-limited share"),
        "datasets_eval": charts.datasets_eval(series.datasets_eval_summary(conn, window.since, window.until)),
        "eval_scores": charts.eval_scores(scores),
        "sync_freshness": charts.sync_runs(series.sync_runs_series(conn, window), window),
    }
    notes = {
        "candidates": f"{readings.open_candidates(found.to_dict('records')):,} open of {int(found['n'].sum()):,} "
        f"candidates; {readings.models_discovered(conn):,} models discovered.",
        "eval_runs": "Last run ended "
        + (f"{series.human_seconds(now.timestamp() - last_eval)} ago." if last_eval else "never."),
        "refine_latency": f"{sum(t.calls for t in steps.values()):,} refine calls in range.",
        "inference_success": f"{int(inference['requests'].sum()):,} HF Inference requests in range.",
        "rate_limited": f"{int(inference['rate_limited'].sum()):,} of {int(inference['attempts'].sum()):,} "
        "wanted requests rate limited in range.",
        "datasets_eval": "Eval runs that ended in range, per dataset.",
        "eval_scores": f"{len(scores):,} latest primary scores; dashed lines are the task bars.",
        "sync_freshness": "Last successful sync "
        + (f"{series.human_seconds(now.timestamp() - sync.last_success)} ago, took "
           f"{series.human_seconds(sync.last_duration or 0)}." if sync.last_success else "never.")
        + f" {sync.errors:,} sync errors recorded.",
    }

    for i, tile in enumerate(TILES):  # two tiles per row, in the Grafana dashboard's order
        if i % 2 == 0:
            row = st.columns(2)
        with row[i % 2].container(border=True):
            st.subheader(tile.title)
            st.caption(plain(tile.description))
            if rules_for_tile(tile.key):
                st.markdown(state_line(states, tile.key))
            st.plotly_chart(figures[tile.key], key=f"obs_chart_{tile.key}", width="stretch")
            st.caption(plain(notes[tile.key]))
