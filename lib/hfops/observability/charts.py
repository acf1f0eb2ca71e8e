"""Plotly figures of the Observability tiles (no Streamlit here; the page only lays them out).

Threshold lines come from :mod:`hfops.observability.thresholds`, the same numbers as ``alerts.yml`` and the
Grafana dashboard. A tile without data says so in the middle of the chart ("no data yet") instead of
drawing empty axes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import plotly.graph_objects as go

from hfops.observability.series import Window
from hfops.observability.thresholds import (
    ALERT_RULES,
    FALLBACK_DEADLINE_SECONDS,
    OPEN_CANDIDATE_STATUSES,
    AlertRule,
    score_bar,
    score_pairs,
)

if TYPE_CHECKING:
    from hfops.ledger.status import Panel

HEIGHT = 320
NO_DATA = "no data yet"
STATUS_COLORS = {"succeeded": "#2ca02c", "failed": "#d62728", "interrupted": "#ff7f0e", "running": "#1f77b4"}
LEVEL_COLORS = {"ok": "#2ca02c", "warn": "#ff7f0e", "alert": "#d62728", "unknown": "#7f7f7f"}
# Legend above the plot, right-aligned: never over the x-axis tick labels.
LEGEND_ON_TOP = {"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "right", "x": 1}


def _rule(name: str) -> AlertRule:
    return next(r for r in ALERT_RULES if r.name == name)


def _has_points(fig: go.Figure) -> bool:
    return any(
        len(trace.y if trace.y is not None else ()) or len(trace.x if trace.x is not None else ())
        for trace in fig.data
    )


def _layout(
    fig: go.Figure, w: Window | None, y_title: str, empty: str = NO_DATA, **extra: object
) -> go.Figure:
    fig.update_layout(
        height=HEIGHT,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        yaxis_title=y_title,
        legend=LEGEND_ON_TOP,
        **extra,
    )
    if w is not None:
        fig.update_xaxes(range=[w.since, w.until])
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(automargin=True)
    if not _has_points(fig):
        no_data(fig, empty)
    return fig


def no_data(fig: go.Figure, text: str = NO_DATA) -> go.Figure:
    """Hide the axes and threshold lines of an empty figure and say ``text`` in its middle."""
    fig.layout.shapes = ()
    fig.layout.annotations = ()
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(showlegend=False)
    fig.add_annotation(
        text=text,
        xref="paper",
        yref="paper",
        x=0.5,
        y=0.5,
        showarrow=False,
        font={"size": 16, "color": "#7f7f7f"},
    )
    return fig


def _line(fig: go.Figure, y: float, text: str, color: str = "red") -> None:
    fig.add_hline(
        y=y, line_dash="dash", line_color=color, annotation_text=text, annotation_position="top left"
    )


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
        fig.add_bar(
            x=part["t"].tolist(), y=part["runs"].tolist(), name=status, marker_color=STATUS_COLORS[status]
        )
    return _layout(fig, w, "runs ended", barmode="stack")


def refine_latency(frame: pd.DataFrame, w: Window) -> go.Figure:
    """p95 per step (end to end, by source, HF API wait) against the 500 ms deadline and 800 ms budget."""
    rule = _rule("RefineLatencyP95High")
    fig = go.Figure()
    for name, part in frame.groupby("series", sort=True):
        fig.add_scatter(
            x=part["t"].tolist(),
            y=(part["p95_seconds"] * 1000).tolist(),
            mode="lines+markers",
            name=f"p95 {name}",
        )
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
    fig.add_bar(
        x=part["dataset"].tolist(),
        y=(part["success_rate"].astype(float) * 100).tolist(),
        text=[f"{s}/{e} runs" for s, e in zip(part["succeeded"], part["ended"], strict=True)],
        name="success rate",
    )
    _line(fig, rule.threshold * 100, f"alert below {rule.threshold:.0%}")
    return _layout(fig, None, "runs succeeded (%)", yaxis_range=[0, 105])


def score_group(task: str, dataset: str, metric: str) -> str:
    """The x-axis label of a task and dataset: one short line each, so labels never get cut."""
    return f"{task}<br>{dataset}<br>{metric}"


def eval_scores(frame: pd.DataFrame) -> go.Figure:
    """Latest primary score per model, one group per task and dataset (the table's, then any custom set in
    ``frame``); each dashed line is the bar of the group's scoring family."""
    fig = go.Figure()
    custom = [(t, d) for t, d in zip(frame["task"], frame["dataset"], strict=True)]
    pairs = score_pairs(custom)
    groups = [score_group(t, d, score_bar(t, d).metric) for t, d in pairs]
    for production, name in ((True, "production"), (False, "other models")):
        part = frame[frame["production"] == production]
        fig.add_bar(
            x=[
                score_group(t, d, m)
                for t, d, m in zip(part["task"], part["dataset"], part["metric"], strict=True)
            ],
            y=part["score"].tolist(),
            name=name,
            hovertext=part["model"].tolist(),
        )
    if frame.empty:
        return _layout(fig, None, "score (0-1)", empty="no eval scores yet")
    for i, (task, dataset) in enumerate(pairs):
        bar = score_bar(task, dataset).bar
        fig.add_shape(
            type="line",
            xref="x",
            yref="y",
            x0=i - 0.45,
            x1=i + 0.45,
            y0=bar,
            y1=bar,
            line={"color": "red", "dash": "dash"},
        )
    fig.update_xaxes(
        categoryorder="array", categoryarray=groups, range=[-0.5, len(groups) - 0.5], tickangle=0
    )
    return _layout(fig, None, "score (0-1)", barmode="group", yaxis_range=[0, 1.05])


def sync_runs(frame: pd.DataFrame, w: Window) -> go.Figure:
    """Sync runs started in the range: duration by status (marker size grows with errors)."""
    fig = go.Figure()
    for status, part in frame.groupby("status", sort=True):
        fig.add_scatter(
            x=part["started"].tolist(),
            y=part["duration_seconds"].fillna(0).tolist(),
            mode="markers",
            name=str(status),
            marker={
                "size": [8 + min(int(e), 20) for e in part["errors"]],
                "color": STATUS_COLORS.get(str(status), "#7f7f7f"),
            },
            hovertext=[
                f"run {i}: {e} errors, {s} records"
                for i, e, s in zip(part["id"], part["errors"], part["seen"], strict=True)
            ],
        )
    return _layout(fig, w, "duration (s)")


def free_tier(panel: Panel) -> go.Figure:
    """The free-tier panel as horizontal bars (0-100 %): each Hub window's share left, each monthly limit's
    share used; colours follow each bar's level, the 80 % allowance line is the alert's."""
    rule = _rule("HfInferenceAllowanceHigh")
    bars = [b for b in panel.bars if b.fraction is not None]
    fig = go.Figure()
    fig.add_bar(
        y=[f"{b.group}: {b.label}" for b in bars],
        x=[100 * (b.fraction or 0.0) for b in bars],
        orientation="h",
        marker_color=[LEVEL_COLORS[b.level] for b in bars],
        hovertext=[b.text for b in bars],
        text=[b.short for b in bars],
        textposition="auto",
        name="free tier",
    )
    if bars and any(b.group == "Inference this month" for b in bars):
        fig.add_vline(
            x=rule.threshold * 100,
            line_dash="dash",
            line_color="red",
            annotation_text=f"alert at {rule.threshold:.0%} used",
            annotation_position="top",
        )
    fig.update_yaxes(autorange="reversed")
    return _layout(
        fig, None, "", empty=panel.empty or NO_DATA, xaxis_range=[0, 100], xaxis_title="%", showlegend=False
    )
