"""Vega-Lite charts (Altair) of the Observability tiles (no Streamlit here; the page only lays them out).

Built from :mod:`hfops.charting`'s pieces (why Altair: see there). Threshold lines come from
:mod:`hfops.observability.thresholds`, the same numbers as ``alerts.yml`` and the Grafana dashboard. Legends
sit above the plot (never over the axis labels). A tile without data says so in the middle of the chart
(``no data yet``, or the caller's ``empty`` text) instead of drawing empty axes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import altair as alt
import pandas as pd

from hfops import charting
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

Chart = alt.TopLevelMixin
HEIGHT = 300
NO_DATA = "no data yet"
STATUS_COLORS = {"succeeded": "#2ca02c", "failed": "#d62728", "interrupted": "#ff7f0e", "running": "#1f77b4"}
LEVEL_COLORS = {"ok": "#2ca02c", "warn": "#ff7f0e", "alert": "#d62728", "unknown": "#7f7f7f"}
TIME_TITLE = "time (UTC)"


def _rule(name: str) -> AlertRule:
    return next(r for r in ALERT_RULES if r.name == name)


def no_data(text: str = NO_DATA) -> Chart:
    """A tile without data: ``text`` in its middle and no axes (instead of empty default axes)."""
    return charting.no_data(text, HEIGHT)


def _tile(layers: list[alt.Chart], empty: bool, empty_text: str) -> Chart:
    """The layers as one tile of :data:`HEIGHT` (or :func:`no_data` when there is nothing to draw)."""
    if empty:
        return no_data(empty_text)
    return alt.layer(*layers).properties(height=HEIGHT)


def _time(w: Window, field: str = "t") -> alt.X:
    return alt.X(f"{field}:T", title=TIME_TITLE, scale=alt.Scale(domain=[_iso(w.since), _iso(w.until)]))


def _iso(moment: Any) -> str:
    return pd.Timestamp(moment).isoformat()


def candidates(frame: pd.DataFrame, empty: str = NO_DATA) -> Chart:
    """Open candidates by pipeline tag, stacked by licence; the alert line at 1."""
    rule = _rule("HfCandidatesNone")
    open_ = frame[frame["status"].isin(OPEN_CANDIDATE_STATUSES)]
    grouped = open_.groupby(["pipeline_tag", "license"], as_index=False, dropna=False)["n"].sum()
    grouped["license"] = grouped["license"].fillna("(none)").astype(str)
    bars = (
        alt.Chart(grouped)
        .mark_bar()
        .encode(
            x=alt.X(
                "pipeline_tag:N",
                title="pipeline tag",
                axis=alt.Axis(labelAngle=0, labelExpr="split(datum.label, '-')", labelLimit=0),
            ),
            y=alt.Y("n:Q", stack="zero", title="open candidates"),
            color=alt.Color("license:N", legend=charting.legend()),
            tooltip=["pipeline_tag", "license", "n"],
        )
    )
    return _tile(
        [bars, *charting.threshold(rule.threshold, f"alert below {rule.threshold:g}")], grouped.empty, empty
    )


def eval_runs(frame: pd.DataFrame, w: Window, empty: str = NO_DATA) -> Chart:
    """Eval runs that ended per step, by status."""
    part = frame[frame["status"].isin(["succeeded", "failed"]) & (frame["runs"] > 0)]
    bars = (
        alt.Chart(part)
        .mark_bar()
        .encode(
            x=_time(w),
            y=alt.Y("runs:Q", stack="zero", title="runs ended"),
            color=_status_colors(["succeeded", "failed"]),
            tooltip=["t:T", "status", "runs"],
        )
    )
    return _tile([bars], part.empty, empty)


def _status_colors(statuses: list[str]) -> alt.Color:
    return alt.Color(
        "status:N",
        scale=alt.Scale(domain=statuses, range=[STATUS_COLORS.get(s, "#7f7f7f") for s in statuses]),
        legend=charting.legend(),
    )


def refine_latency(frame: pd.DataFrame, w: Window, empty: str = NO_DATA) -> Chart:
    """p95 per step (end to end, by source, HF API wait) against the 500 ms deadline and 800 ms budget."""
    rule = _rule("RefineLatencyP95High")
    data = frame.assign(p95_ms=frame["p95_seconds"] * 1000, series=[f"p95 {s}" for s in frame["series"]])
    lines = (
        alt.Chart(data)
        .mark_line(point=True)
        .encode(
            x=_time(w),
            y=alt.Y("p95_ms:Q", title="p95 latency (ms)"),
            color=alt.Color("series:N", legend=charting.legend()),
            tooltip=["t:T", "series", alt.Tooltip("p95_ms:Q", format=".0f")],
        )
    )
    return _tile(
        [
            lines,
            *charting.threshold(FALLBACK_DEADLINE_SECONDS * 1000, "500 ms fallback deadline", color="orange"),
            *charting.threshold(rule.threshold * 1000, "800 ms budget (alert above)"),
        ],
        data.empty,
        empty,
    )


def ratio(
    frame: pd.DataFrame, w: Window, column: str, rule_name: str, label: str, empty: str = NO_DATA
) -> Chart:
    """A ratio per step (0-100 %) with the alert's threshold line."""
    rule = _rule(rule_name)
    part = frame.dropna(subset=[column])
    data = pd.DataFrame({"t": part["t"], "percent": part[column] * 100, "series": label})
    line = (
        alt.Chart(data)
        .mark_line(point=True)
        .encode(
            x=_time(w),
            y=alt.Y("percent:Q", title=f"{label} (%)", scale=alt.Scale(domain=[0, 105])),
            color=alt.Color("series:N", legend=charting.legend()),
            tooltip=["t:T", alt.Tooltip("percent:Q", format=".1f")],
        )
    )
    side = "below" if rule.op == "<" else "above"
    return _tile(
        [line, *charting.threshold(rule.threshold * 100, f"alert {side} {rule.threshold:.0%}")],
        data.empty,
        empty,
    )


def datasets_eval(frame: pd.DataFrame, empty: str = NO_DATA) -> Chart:
    """Success rate of the eval runs that ended in the range, per dataset, with the 95 % line."""
    rule = _rule("HfDatasetsEvalSuccessLow")
    part = frame.dropna(subset=["success_rate"])
    data = pd.DataFrame(
        {
            "dataset": part["dataset"],
            "percent": part["success_rate"].astype(float) * 100,
            "runs": [f"{s}/{e} runs" for s, e in zip(part["succeeded"], part["ended"], strict=True)],
        }
    )
    base = alt.Chart(data).encode(
        x=alt.X("dataset:N", title=None, axis=alt.Axis(labelAngle=0)),
        y=alt.Y("percent:Q", title="runs succeeded (%)", scale=alt.Scale(domain=[0, 105])),
    )
    bars = base.mark_bar().encode(tooltip=["dataset", "runs", alt.Tooltip("percent:Q", format=".1f")])
    counts = base.mark_text(dy=-7, fontSize=11).encode(text="runs:N")
    return _tile(
        [bars, counts, *charting.threshold(rule.threshold * 100, f"alert below {rule.threshold:.0%}")],
        data.empty,
        empty,
    )


def score_group(task: str, dataset: str, metric: str) -> str:
    """The x-axis label of a task and dataset: one short line each (drawn split), so labels never get cut."""
    return f"{task}\n{dataset}\n{metric}"


def eval_scores(frame: pd.DataFrame, empty: str = "no eval scores yet") -> Chart:
    """Latest primary score per model, one group per task and dataset (the table's, then any custom set in
    ``frame``); each dashed tick is the bar of the group's scoring family."""
    if frame.empty:
        return no_data(empty)
    custom = [(t, d) for t, d in zip(frame["task"], frame["dataset"], strict=True)]
    pairs = score_pairs(custom)
    groups = [score_group(t, d, score_bar(t, d).metric) for t, d in pairs]
    data = pd.DataFrame(
        {
            "group": [
                score_group(t, d, m)
                for t, d, m in zip(frame["task"], frame["dataset"], frame["metric"], strict=True)
            ],
            "model": frame["model"],
            "score": frame["score"],
            "system": ["production" if p else "other models" for p in frame["production"]],
        }
    )
    x = alt.X(
        "group:N",
        sort=groups,
        title=None,
        scale=alt.Scale(domain=groups),
        axis=alt.Axis(labelAngle=0, labelExpr="split(datum.label, '\\n')", labelLimit=0),
    )
    bars = (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=x,
            xOffset=alt.XOffset("model:N"),
            y=alt.Y("score:Q", title="score (0-1)", scale=alt.Scale(domain=[0, 1.05])),
            color=alt.Color(
                "system:N",
                scale=alt.Scale(domain=["production", "other models"], range=["#1f77b4", "#aec7e8"]),
                legend=charting.legend(),
            ),
            tooltip=["model", "group", alt.Tooltip("score:Q", format=".3f"), "system"],
        )
    )
    bar_lines = pd.DataFrame(
        {"group": groups, "bar": [score_bar(t, d).bar for t, d in pairs]},
    )
    ticks = (
        alt.Chart(bar_lines)
        .mark_tick(color="red", strokeDash=[6, 4], thickness=2, size=60)
        .encode(x=x, y="bar:Q", tooltip=["group", "bar"])
    )
    return alt.layer(bars, ticks).properties(height=HEIGHT)


def sync_runs(frame: pd.DataFrame, w: Window, empty: str = NO_DATA) -> Chart:
    """Sync runs started in the range: duration by status (marker size grows with errors)."""
    statuses = sorted({str(s) for s in frame["status"]})
    data = pd.DataFrame(
        {
            "started": frame["started"],
            "duration_seconds": frame["duration_seconds"].fillna(0),
            "status": frame["status"].astype(str),
            "size": [60 + 12 * min(int(e), 20) for e in frame["errors"]],
            "run": [
                f"run {i}: {e} errors, {s} records"
                for i, e, s in zip(frame["id"], frame["errors"], frame["seen"], strict=True)
            ],
        }
    )
    points = (
        alt.Chart(data)
        .mark_circle(opacity=0.8)
        .encode(
            x=_time(w, "started"),
            y=alt.Y("duration_seconds:Q", title="duration (s)"),
            color=_status_colors(statuses),
            size=alt.Size("size:Q", legend=None, scale=None),
            tooltip=["run", "status", "duration_seconds"],
        )
    )
    return _tile([points], data.empty, empty)


def free_tier(panel: Panel) -> Chart:
    """The free-tier panel as horizontal bars (0-100 %): each Hub window's share left, each monthly limit's
    share used; colours follow each bar's level, the 80 % allowance line is the alert's."""
    rule = _rule("HfInferenceAllowanceHigh")
    bars = [b for b in panel.bars if b.fraction is not None]
    data = pd.DataFrame(
        {
            "bar": [f"{b.group}: {b.label}" for b in bars],
            "percent": [100 * (b.fraction or 0.0) for b in bars],
            "level": [b.level for b in bars],
            "short": [b.short for b in bars],
            "text": [b.text for b in bars],
        }
    )
    levels = list(LEVEL_COLORS)
    base = alt.Chart(data).encode(
        y=alt.Y("bar:N", sort=list(data["bar"]), title=None),
        x=alt.X("percent:Q", title="%", scale=alt.Scale(domain=[0, 100])),
    )
    layers = [
        base.mark_bar().encode(
            color=alt.Color(
                "level:N",
                scale=alt.Scale(domain=levels, range=[LEVEL_COLORS[k] for k in levels]),
                legend=None,
            ),
            tooltip=["text"],
        ),
        base.mark_text(align="left", dx=4, fontSize=11).encode(text="short:N"),
    ]
    if any(b.group == "Inference this month" for b in bars):
        layers += charting.threshold(rule.threshold * 100, f"alert at {rule.threshold:.0%} used", axis="x")
    return _tile(layers, data.empty, panel.empty or NO_DATA)
