"""View model of the Observability page: the Grafana tiles drawn from the store, and the alert states now.

The series, alert evaluation and figures are :mod:`hfops.observability`'s (the same thresholds as
``docs/observability/alerts.yml``); this module assembles one page's worth of them for a time range.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
import sqlite_utils

from hfops.observability import charts, readings, series
from hfops.observability.thresholds import TILES, Tile, rules_for_tile

RANGES = list(series.RANGES)
DEFAULT_RANGE = series.DEFAULT_RANGE
STATE_MARKS = {"alert": ":red[ALERT]", "ok": ":green[ok]", "no data": ":gray[no data]"}
ALERT_COLUMNS = ["alert", "tile", "state", "value", "condition", "summary"]
NO_DATA = "No data in the selected range"
TEMPLATE = re.compile(r"\{\{\s*(.*?)\s*\}\}")


@dataclass
class StateLine:
    """One alert rule of a tile: its state mark (trusted Markdown) and the line (plain text, to escape)."""

    mark: str
    text: str


@dataclass
class TileView:
    """One tile: title, description, its alert rules' lines, the figure and a note under it."""

    tile: Tile
    states: list[StateLine]
    has_rules: bool
    figure: charts.Chart
    note: str


@dataclass
class Dashboard:
    """Everything the page shows for one time range."""

    firing: int  # alert conditions true now (one per rule and label set)
    firing_names: list[str]  # the rules they belong to
    alerts: pd.DataFrame
    tiles: list[TileView]


def state_lines(states: list[series.AlertState], tile: str) -> list[StateLine]:
    """One line per alert rule of ``tile``: state, value and condition."""
    lines = []
    for s in states:
        if s.rule.tile != tile:
            continue
        labels = " ".join(f"{k}={v}" for k, v in s.labels.items() if k != "metric")
        window = f" over {s.rule.window}" if s.rule.window else ""
        lines.append(
            StateLine(
                STATE_MARKS[s.state],
                f"{s.rule.name}{(' ' + labels) if labels else ''}: "
                f"{series.format_value(s.value, s.rule.unit)} "
                f"(alert when {s.rule.op} {series.format_value(s.rule.threshold, s.rule.unit)}{window})",
            )
        )
    return lines


def render_summary(template: str, labels: dict[str, str], value: float | None, unit: str) -> str:
    """An alert's summary as a person reads it: Prometheus template fields (``{{ $labels.dataset }}``,
    ``{{ $value }}``) filled from the evaluated state."""

    def fill(match: re.Match[str]) -> str:
        field = match.group(1).split("|")[0].strip()
        if field.startswith("$labels."):
            return labels.get(field.removeprefix("$labels."), "?")
        if field == "$value":
            return series.format_value(value, unit)
        return field.lstrip("$")

    return TEMPLATE.sub(fill, template)


def alert_table(states: list[series.AlertState]) -> pd.DataFrame:
    """The alert states as a table: rule (and labels), tile, state, value, condition, readable summary."""
    base = series.alert_table(states)
    base["summary"] = [render_summary(s.rule.summary, s.labels, s.value, s.rule.unit) for s in states]
    return base[ALERT_COLUMNS]


def dashboard(db: sqlite_utils.Database, range_label: str | None, now: datetime | None = None) -> Dashboard:
    """The tiles, alert table and firing alerts of the store for the time range ``range_label``."""
    now = now or datetime.now(UTC)
    window = series.window(range_label or DEFAULT_RANGE, now)
    states = series.alert_states(db, now)
    steps = series.refine_steps(db, window)
    inference = series.inference_series(steps)
    found = series.candidates_breakdown(db)
    scores = series.scores_table(db)
    sync = readings.sync_health(db)
    last_eval = readings.last_eval_run_end(db)
    figures = {  # a tile without data says NO_DATA, whatever its chart would say
        "candidates": charts.candidates(found, empty=NO_DATA),
        "eval_runs": charts.eval_runs(series.eval_runs_series(db, window), window, empty=NO_DATA),
        "refine_latency": charts.refine_latency(series.refine_latency_series(steps), window, empty=NO_DATA),
        "inference_success": charts.ratio(
            inference, window, "success_rate", "HfInferenceSuccessLow", "success rate", empty=NO_DATA
        ),
        "rate_limited": charts.ratio(
            inference,
            window,
            "rate_limited_share",
            "HfInferenceRateLimitedHigh",
            "rate-limited share",
            empty=NO_DATA,
        ),
        "datasets_eval": charts.datasets_eval(
            series.datasets_eval_summary(db, window.since, window.until), empty=NO_DATA
        ),
        "eval_scores": charts.eval_scores(scores, empty=NO_DATA),
        "sync_freshness": charts.sync_runs(series.sync_runs_series(db, window), window, empty=NO_DATA),
    }
    last_sync = (
        f"Last successful sync {series.human_seconds(now.timestamp() - sync.last_success)} ago, took "
        f"{series.human_seconds(sync.last_duration or 0)}."
        if sync.last_success
        else "Last successful sync never."
    )
    notes = {
        "candidates": f"{readings.open_candidates(found.to_dict('records')):,} open of "
        f"{int(found['n'].sum()):,} "
        f"candidates; {readings.models_discovered(db):,} models discovered.",
        "eval_runs": "Last run ended "
        + (f"{series.human_seconds(now.timestamp() - last_eval)} ago." if last_eval else "never."),
        "refine_latency": f"{sum(t.calls for t in steps.values()):,} refine calls in range.",
        "inference_success": f"{int(inference['requests'].sum()):,} HF Inference requests in range.",
        "rate_limited": f"{int(inference['rate_limited'].sum()):,} of {int(inference['attempts'].sum()):,} "
        "wanted requests rate limited in range.",
        "datasets_eval": "Eval runs that ended in range, per dataset.",
        "eval_scores": f"{len(scores):,} latest primary scores; dashed lines are the task bars.",
        "sync_freshness": f"{last_sync} {sync.errors:,} sync errors recorded.",
    }
    tiles = [
        TileView(
            tile,
            state_lines(states, tile.key),
            bool(rules_for_tile(tile.key)),
            figures[tile.key],
            notes[tile.key],
        )
        for tile in TILES
    ]
    firing = [s for s in states if s.state == "alert"]
    return Dashboard(
        firing=len(firing),
        firing_names=sorted({s.rule.name for s in firing}),
        alerts=alert_table(states),
        tiles=tiles,
    )
