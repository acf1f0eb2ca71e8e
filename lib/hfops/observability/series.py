"""Series and alert states for the Observability page, read from the store (no Prometheus needed).

The tiles are the Grafana dashboard's, computed from the same rows the exporter reads, over a chosen time
range split into steps. Latency p95 is interpolated from the exporter's histogram buckets exactly like
PromQL's ``histogram_quantile``. :func:`alert_states` evaluates every rule of
:data:`hfops.observability.thresholds.ALERT_RULES` now, over the rule's own window, with the rule's
threshold and comparison: the same conditions Prometheus evaluates from ``alerts.yml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import sqlite_utils

from hfops.observability import readings
from hfops.observability.readings import RefineTotals, epoch_sql
from hfops.observability.thresholds import ALERT_RULES, EVAL_DATASETS, SCORE_BARS, AlertRule
from hfops.store import rows

# Time range choices: label -> (span, step between points).
RANGES: dict[str, tuple[timedelta, timedelta]] = {
    "1 h": (timedelta(hours=1), timedelta(minutes=5)),
    "6 h": (timedelta(hours=6), timedelta(minutes=15)),
    "24 h": (timedelta(hours=24), timedelta(hours=1)),
    "7 d": (timedelta(days=7), timedelta(hours=6)),
    "30 d": (timedelta(days=30), timedelta(days=1)),
}
DEFAULT_RANGE = "24 h"


@dataclass(frozen=True)
class Window:
    """A time range ``[since, until)`` split into steps of ``step``."""

    since: datetime
    until: datetime
    step: timedelta

    @property
    def step_seconds(self) -> int:
        return int(self.step.total_seconds())

    def bounds(self) -> tuple[str, str]:
        """The range as store timestamps (ISO-8601 ``...Z``), for indexed comparisons."""
        return iso(self.since), iso(self.until)


def iso(moment: datetime) -> str:
    """A datetime in the store's timestamp format."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def window(label: str, now: datetime | None = None) -> Window:
    """The window for a range label of :data:`RANGES` ending ``now`` (aligned to whole steps)."""
    span, step = RANGES[label]
    now = now or datetime.now(UTC)
    step_s = int(step.total_seconds())
    end = datetime.fromtimestamp((int(now.timestamp()) // step_s + 1) * step_s, UTC)
    return Window(end - span, end, step)


def _step_start(column: str, step: int) -> str:
    return f"(CAST(strftime('%s', {column}) AS INTEGER) / {int(step)}) * {int(step)}"


def _timestamp(epoch: float) -> pd.Timestamp:
    return pd.Timestamp(datetime.fromtimestamp(float(epoch), UTC))


# --- tiles -----------------------------------------------------------------------------------------------------


def candidates_breakdown(db: sqlite_utils.Database) -> pd.DataFrame:
    """Current candidates by pipeline tag, licence and status (``n``)."""
    return pd.DataFrame(readings.candidates_found(db), columns=["pipeline_tag", "license", "status", "n"])


def eval_runs_series(db: sqlite_utils.Database, w: Window) -> pd.DataFrame:
    """Eval runs that ended in the window, per step and status (``t``, ``status``, ``runs``)."""
    since, until = w.bounds()
    found = rows(
        db,
        f"SELECT {_step_start('finished_at', w.step_seconds)} AS t, status, COUNT(*) AS runs FROM eval_runs "
        "WHERE status IN ('succeeded', 'failed') AND julianday(finished_at) >= julianday(?) "
        "AND julianday(finished_at) < julianday(?) GROUP BY 1, 2 ORDER BY 1, 2",
        [since, until],
    )
    frame = pd.DataFrame(found, columns=["t", "status", "runs"])
    frame["t"] = [_timestamp(t) for t in frame["t"]]
    return frame


def refine_steps(db: sqlite_utils.Database, w: Window) -> dict[int, RefineTotals]:
    """Refine call totals per step start (Unix seconds) in the window."""
    since, until = w.bounds()
    return readings.refine_totals(db, "created_at >= ? AND created_at < ?", [since, until],
                                  group=_step_start("created_at", w.step_seconds))


def refine_latency_series(steps: dict[int, RefineTotals]) -> pd.DataFrame:
    """p95 latency (seconds) per step: end to end (all, local, hf) and the HF API wait."""
    out: list[dict[str, Any]] = []
    for start, totals in sorted(steps.items()):
        t = _timestamp(start)
        candidates = {"end to end": totals.all_latency(), "HF API wait": totals.hf_api,
                      **{f"end to end, {source}": hist for source, hist in sorted(totals.latency.items())}}
        for name, hist in candidates.items():
            p95 = hist.quantile(0.95)
            if p95 is not None:
                out.append({"t": t, "series": name, "p95_seconds": p95, "calls": hist.count})
    return pd.DataFrame(out, columns=["t", "series", "p95_seconds", "calls"])


def inference_series(steps: dict[int, RefineTotals]) -> pd.DataFrame:
    """Per step: HF requests, success rate, wanted requests, rate-limited share (None when no traffic)."""
    out = []
    for start, totals in sorted(steps.items()):
        out.append({
            "t": _timestamp(start),
            "requests": sum(totals.requests.values()),
            "ok": totals.requests["ok"],
            "success_rate": totals.success_rate(),
            "attempts": totals.attempts,
            "rate_limited": sum(totals.rate_limited.values()),
            "rate_limited_share": totals.rate_limited_share(),
        })
    return pd.DataFrame(out, columns=["t", "requests", "ok", "success_rate", "attempts", "rate_limited",
                                      "rate_limited_share"])


def datasets_eval_summary(db: sqlite_utils.Database, since: datetime, until: datetime) -> pd.DataFrame:
    """Per dataset: eval runs that ended in ``[since, until)``, succeeded, failed and the success rate."""
    found = {d: {"dataset": d, "succeeded": 0, "failed": 0} for d in EVAL_DATASETS}
    for row in rows(
        db,
        "SELECT dataset, status, COUNT(*) AS n FROM eval_runs WHERE status IN ('succeeded', 'failed') "
        "AND julianday(finished_at) >= julianday(?) AND julianday(finished_at) < julianday(?) GROUP BY 1, 2",
        [iso(since), iso(until)],
    ):
        found.setdefault(row["dataset"], {"dataset": row["dataset"], "succeeded": 0, "failed": 0})
        found[row["dataset"]][row["status"]] = row["n"]
    out = []
    for entry in found.values():
        ended = entry["succeeded"] + entry["failed"]
        out.append({**entry, "ended": ended, "success_rate": entry["succeeded"] / ended if ended else None})
    return pd.DataFrame(out, columns=["dataset", "succeeded", "failed", "ended", "success_rate"])


def scores_table(db: sqlite_utils.Database) -> pd.DataFrame:
    """Latest primary scores (0-1) per model, task and dataset, with the task's bar and the production flag."""
    bars = {(b.task, b.dataset, b.metric): b.bar for b in SCORE_BARS}
    production = readings.production_models(db)
    out = []
    for row in readings.latest_scores(db):
        key = (row["task"], row["dataset"], row["metric"])
        if key in bars:
            out.append({"model": row["model"], "task": row["task"], "dataset": row["dataset"],
                        "metric": row["metric"], "score": row["value"], "bar": bars[key],
                        "production": production.get(row["task"]) == row["model"], "run_id": row["run_id"]})
    return pd.DataFrame(out, columns=["model", "task", "dataset", "metric", "score", "bar", "production", "run_id"])


def sync_runs_series(db: sqlite_utils.Database, w: Window) -> pd.DataFrame:
    """Sync runs started in the window: start, status, duration (seconds, None while running), errors."""
    since, until = w.bounds()
    found = rows(
        db,
        f"SELECT id, {epoch_sql('started_at')} AS started, status, "
        f"{epoch_sql('finished_at')} - {epoch_sql('started_at')} AS duration_seconds, "
        "CASE WHEN json_valid(errors) THEN json_array_length(errors) ELSE 0 END AS errors, seen FROM sync_runs "
        "WHERE julianday(started_at) >= julianday(?) AND julianday(started_at) < julianday(?) ORDER BY id",
        [since, until],
    )
    frame = pd.DataFrame(found, columns=["id", "started", "status", "duration_seconds", "errors", "seen"])
    frame["started"] = [_timestamp(t) for t in frame["started"]]
    return frame


# --- alert states ------------------------------------------------------------------------------------------------


@dataclass
class AlertState:
    """One alert rule evaluated on the store now."""

    rule: AlertRule
    value: float | None
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def breached(self) -> bool | None:
        return self.rule.breached(self.value)

    @property
    def state(self) -> str:
        """``alert`` (condition true), ``ok``, or ``no data`` (Prometheus would have no sample)."""
        return {True: "alert", False: "ok", None: "no data"}[self.breached]


def _refine_window(db: sqlite_utils.Database, now: datetime, rule: AlertRule) -> RefineTotals:
    since = now - timedelta(seconds=rule.window_seconds)
    found = readings.refine_totals(db, "created_at >= ? AND created_at <= ?", [iso(since), iso(now)])
    return next(iter(found.values()), RefineTotals())


def alert_states(db: sqlite_utils.Database, now: datetime | None = None) -> list[AlertState]:
    """Every alert rule's condition evaluated on the store at ``now`` (one state per dataset / score bar)."""
    now = now or datetime.now(UTC)
    epoch = now.timestamp()
    scores = None
    out: list[AlertState] = []
    for rule in ALERT_RULES:
        if rule.measure == "open_candidates":
            out.append(AlertState(rule, float(readings.open_candidates(readings.candidates_found(db)))))
        elif rule.measure == "eval_run_age":
            out.append(AlertState(rule, epoch - (readings.last_eval_run_end(db) or 0.0)))
        elif rule.measure == "refine_p95":
            out.append(AlertState(rule, _refine_window(db, now, rule).all_latency().quantile(0.95)))
        elif rule.measure == "inference_success":
            out.append(AlertState(rule, _refine_window(db, now, rule).success_rate()))
        elif rule.measure == "rate_limited_share":
            out.append(AlertState(rule, _refine_window(db, now, rule).rate_limited_share()))
        elif rule.measure == "datasets_eval_success":
            summary = datasets_eval_summary(db, now - timedelta(seconds=rule.window_seconds), now + timedelta(seconds=1))
            for entry in summary.to_dict("records"):
                rate = entry["success_rate"]
                out.append(AlertState(rule, None if rate is None or pd.isna(rate) else float(rate),
                                      {"dataset": entry["dataset"]}))
        elif rule.measure == "production_score":
            scores = scores_table(db) if scores is None else scores
            mine = scores[(scores["task"] == rule.labels["task"]) & (scores["dataset"] == rule.labels["dataset"])
                          & (scores["metric"] == rule.labels["metric"]) & scores["production"]]
            out.append(AlertState(rule, float(mine["score"].mean()) if len(mine) else None, dict(rule.labels)))
        elif rule.measure == "sync_age":
            out.append(AlertState(rule, epoch - (readings.sync_health(db).last_success or 0.0)))
        else:  # pragma: no cover - a rule without a page reading is a programming error
            raise ValueError(f"no store reading for alert measure {rule.measure!r}")
    return out


def format_value(value: float | None, unit: str) -> str:
    """A value for people: percent for ratios, durations for seconds."""
    if value is None:
        return "—"
    if unit == "ratio":
        return f"{value:.1%}"
    if unit == "score":
        return f"{value:.3f}"
    if unit == "count":
        return f"{value:,.0f}"
    return human_seconds(value)


def human_seconds(seconds: float) -> str:
    """``850 ms``, ``42 s``, ``3.5 h``, ``2.0 d`` (``never`` for ages measured from the epoch)."""
    if seconds > 20 * 365 * 86400:
        return "never"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def alert_table(states: list[AlertState]) -> pd.DataFrame:
    """The alert states as a table for the page."""
    out = []
    for s in states:
        labels = ", ".join(f"{k}={v}" for k, v in s.labels.items() if k != "metric")
        out.append({
            "alert": s.rule.name + (f" ({labels})" if labels else ""),
            "tile": s.rule.tile,
            "state": s.state,
            "value": format_value(s.value, s.rule.unit),
            "condition": f"{s.rule.op} {format_value(s.rule.threshold, s.rule.unit)}"
            + (f" over {s.rule.window}" if s.rule.window else ""),
            "summary": s.rule.summary,
        })
    return pd.DataFrame(out, columns=["alert", "tile", "state", "value", "condition", "summary"])
