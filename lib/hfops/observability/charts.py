"""Plotly figures of the Observability tiles (no Streamlit here; the page only lays them out).

Threshold lines come from :mod:`hfops.observability.thresholds`, the same numbers as ``alerts.yml`` and the
Grafana dashboard.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from hfops.observability.series import Window
from hfops.observability.thresholds import (
    ALERT_RULES,
    FALLBACK_DEADLINE_SECONDS,
    OPEN_CANDIDATE_STATUSES,
    SCORE_BARS,
    AlertRule,
)

HEIGHT = 320
STATUS_COLORS = {"succeeded": "#2ca02c", "failed": "#d62728", "interrupted": "#ff7f0e", "running": "#1f77b4"}


def _rule(name: str) -> AlertRule:
    return next(r for r in ALERT_RULES if r.name == name)


def _layout(fig: go.Figure, w: Window | None, y_title: str, **extra: object) -> go.Figure:
    fig.update_layout(height=HEIGHT, margin={"l": 10, "r": 10, "t": 30, "b": 10}, yaxis_title=y_title,
                      legend={"orientation": "h", "y": -0.2}, **extra)
    if w is not None:
        fig.update_xaxes(range=[w.since, w.until])
    return fig


def _line(fig: go.Figure, y: float, text: str, color: str = "red") -> None:
    fig.add_hline(y=y, line_dash="dash", line_color=color, annotation_text=text, annotation_position="top left")


def candidates(frame: pd.DataFrame) -> go.Figure:
    """Open candidates by pipeline tag, stacked by licence; the alert line at 1."""
    rule = _rule("HfCandidatesNone")
    open_ = frame[frame["status"].isin(OPEN_CANDIDATE_STATUSES)]
    grouped = open_.groupby(["pipeline_tag", "license"], as_index=False)["n"].sum()
    fig = go.Figure()
    for license_, part in grouped.groupby("license"):
        fig.add_bar(x=part["pipeline_tag"].tolist(), y=part["n"].tolist(), name=str(license_))
    _line(fig, rule.threshold, f"alert below {rule.threshold:g}")
    return _layout(fig, None, "open candidates", barmode="stack", xaxis_title="pipeline tag")


def eval_runs(frame: pd.DataFrame, w: Window) -> go.Figure:
    """Eval runs that ended per step, by status."""
    fig = go.Figure()
    for status in ("succeeded", "failed"):
        part = frame[frame["status"] == status]
        fig.add_bar(x=part["t"].tolist(), y=part["runs"].tolist(), name=status, marker_color=STATUS_COLORS[status])
    return _layout(fig, w, "runs ended", barmode="stack")


def refine_latency(frame: pd.DataFrame, w: Window) -> go.Figure:
    """p95 per step (end to end, by source, HF API wait) against the 500 ms deadline and 800 ms budget."""
    rule = _rule("RefineLatencyP95High")
    fig = go.Figure()
    for name, part in frame.groupby("series", sort=True):
        fig.add_scatter(x=part["t"].tolist(), y=(part["p95_seconds"] * 1000).tolist(), mode="lines+markers",
                        name=f"p95 {name}")
    _line(fig, FALLBACK_DEADLINE_SECONDS * 1000, "500 ms fallback deadline", color="orange")
    _line(fig, rule.threshold * 1000, "800 ms budget (alert above)")
    return _layout(fig, w, "p95 latency (ms)")


def ratio(frame: pd.DataFrame, w: Window, column: str, rule_name: str, label: str) -> go.Figure:
    """A ratio per step (0-100 %) with the alert's threshold line."""
    rule = _rule(rule_name)
    part = frame.dropna(subset=[column])
    fig = go.Figure()
    fig.add_scatter(x=part["t"].tolist(), y=(part[column] * 100).tolist(), mode="lines+markers", name=label)
    side = "below" if rule.op == "<" else "above"
    _line(fig, rule.threshold * 100, f"alert {side} {rule.threshold:.0%}")
    return _layout(fig, w, f"{label} (%)", yaxis_range=[0, 105])


def datasets_eval(frame: pd.DataFrame) -> go.Figure:
    """Success rate of the eval runs that ended in the range, per dataset, with the 95 % line."""
    rule = _rule("HfDatasetsEvalSuccessLow")
    part = frame.dropna(subset=["success_rate"])
    fig = go.Figure()
    fig.add_bar(x=part["dataset"].tolist(), y=(part["success_rate"].astype(float) * 100).tolist(),
                text=[f"{s}/{e} runs" for s, e in zip(part["succeeded"], part["ended"], strict=True)],
                name="success rate")
    _line(fig, rule.threshold * 100, f"alert below {rule.threshold:.0%}")
    return _layout(fig, None, "runs succeeded (%)", yaxis_range=[0, 105])


def eval_scores(frame: pd.DataFrame) -> go.Figure:
    """Latest primary score per model, one group per task and dataset; each bar line is the task's bar."""
    fig = go.Figure()
    groups = [f"{b.task} / {b.dataset} / {b.metric}" for b in SCORE_BARS]
    for production, name in ((True, "production"), (False, "other models")):
        part = frame[frame["production"] == production]
        fig.add_bar(
            x=[f"{t} / {d} / {m}" for t, d, m in zip(part["task"], part["dataset"], part["metric"], strict=True)],
            y=part["score"].tolist(), name=name, hovertext=part["model"].tolist(),
        )
    for i, bar in enumerate(SCORE_BARS):
        fig.add_shape(type="line", xref="x", yref="y", x0=i - 0.45, x1=i + 0.45, y0=bar.bar, y1=bar.bar,
                      line={"color": "red", "dash": "dash"})
    fig.update_xaxes(categoryorder="array", categoryarray=groups, range=[-0.5, len(groups) - 0.5])
    return _layout(fig, None, "score (0-1)", barmode="group", yaxis_range=[0, 1.05])


def sync_runs(frame: pd.DataFrame, w: Window) -> go.Figure:
    """Sync runs started in the range: duration by status (marker size grows with errors)."""
    fig = go.Figure()
    for status, part in frame.groupby("status", sort=True):
        fig.add_scatter(
            x=part["started"].tolist(), y=part["duration_seconds"].fillna(0).tolist(), mode="markers",
            name=str(status), marker={"size": [8 + min(int(e), 20) for e in part["errors"]],
                                      "color": STATUS_COLORS.get(str(status), "#7f7f7f")},
            hovertext=[f"run {i}: {e} errors, {s} records" for i, e, s in
                       zip(part["id"], part["errors"], part["seen"], strict=True)],
        )
    return _layout(fig, w, "duration (s)")
