"""Series and alert states for the Observability page, read from the store (no Prometheus needed).

The tiles are the Grafana dashboard's, computed from the same rows the exporter reads, over a chosen time
range split into steps. Latency p95 is interpolated from the exporter's histogram buckets exactly like
PromQL's ``histogram_quantile``. :func:`alert_states` evaluates every rule of
:data:`hfops.observability.thresholds.ALERT_RULES` now, over the rule's own window, with the rule's
threshold and comparison: the same conditions Prometheus evaluates from ``alerts.yml``.

"Nothing yet" is a state of its own: a store minutes old has no eval run and maybe no sync; the staleness
rules have no value then (as in Prometheus, nothing fires) and carry a note, the ``...NeverRan`` rules
count the store's age, and :func:`onboarding` gives the page the sentences of an onboarding message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import sqlite_utils

from hfops.errors import EvalError
from hfops.observability import readings
from hfops.observability.readings import RefineTotals, epoch_sql
from hfops.observability.thresholds import (
    ALERT_RULES,
    AlertRule,
    rule,
    score_bar,
    score_pairs,
)
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


# --- tiles --------------------------------------------------------------------------------------------------


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
    return readings.refine_totals(
        db,
        "created_at >= ? AND created_at < ?",
        [since, until],
        group=_step_start("created_at", w.step_seconds),
    )


def refine_latency_series(steps: dict[int, RefineTotals]) -> pd.DataFrame:
    """p95 latency (seconds) per step: end to end (all, local, hf) and the HF API wait."""
    out: list[dict[str, Any]] = []
    for start, totals in sorted(steps.items()):
        t = _timestamp(start)
        candidates = {
            "end to end": totals.all_latency(),
            "HF API wait": totals.hf_api,
            **{f"end to end, {source}": hist for source, hist in sorted(totals.latency.items())},
        }
        for name, hist in candidates.items():
            p95 = hist.quantile(0.95)
            if p95 is not None:
                out.append({"t": t, "series": name, "p95_seconds": p95, "calls": hist.count})
    return pd.DataFrame(out, columns=["t", "series", "p95_seconds", "calls"])


def inference_series(steps: dict[int, RefineTotals]) -> pd.DataFrame:
    """Per step: HF requests, success rate, wanted requests, rate-limited share (None when no traffic)."""
    out = []
    for start, totals in sorted(steps.items()):
        out.append(
            {
                "t": _timestamp(start),
                "requests": sum(totals.requests.values()),
                "ok": totals.requests["ok"],
                "success_rate": totals.success_rate(),
                "attempts": totals.attempts,
                "rate_limited": sum(totals.rate_limited.values()),
                "rate_limited_share": totals.rate_limited_share(),
            }
        )
    return pd.DataFrame(
        out, columns=["t", "requests", "ok", "success_rate", "attempts", "rate_limited", "rate_limited_share"]
    )


def datasets_eval_summary(db: sqlite_utils.Database, since: datetime, until: datetime) -> pd.DataFrame:
    """Per dataset: eval runs that ended in ``[since, until)``, succeeded, failed and the success rate."""
    found: dict[str, dict[str, Any]] = {
        d: {"dataset": d, "succeeded": 0, "failed": 0} for d in readings.datasets(db)
    }
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


SCORE_COLUMNS = ["model", "task", "dataset", "metric", "score", "bar", "production", "promoted", "run_id"]


def _bar_of(task: str, dataset: str) -> float | None:
    try:
        return score_bar(task, dataset).bar
    except (EvalError, StopIteration):  # a task the table does not know
        return None


def scores_table(db: sqlite_utils.Database) -> pd.DataFrame:
    """Latest primary scores (0-1) per model, task and dataset (built-in and custom sets), with the bar,
    ``production`` (the model serves the task, a baseline included) and ``promoted`` (it serves as a
    promoted model: the only scores the bar applies to)."""
    serving = readings.serving(db)
    out = []
    for row in readings.latest_scores(db):
        task, dataset = row["task"], row["dataset"]
        bar = _bar_of(task, dataset)
        if bar is None or score_bar(task, dataset).metric != row["metric"]:
            continue
        serves = task in serving and serving[task].model == row["model"]
        out.append(
            {
                "model": row["model"],
                "task": task,
                "dataset": dataset,
                "metric": row["metric"],
                "score": row["value"],
                "bar": bar,
                "production": serves,
                "promoted": serves and serving[task].promoted,
                "run_id": row["run_id"],
            }
        )
    return pd.DataFrame(out, columns=SCORE_COLUMNS)


def sync_runs_series(db: sqlite_utils.Database, w: Window) -> pd.DataFrame:
    """Sync runs started in the window: start, status, duration (seconds, None while running), errors."""
    since, until = w.bounds()
    found = rows(
        db,
        f"SELECT id, {epoch_sql('started_at')} AS started, status, "
        f"{epoch_sql('finished_at')} - {epoch_sql('started_at')} AS duration_seconds, "
        "CASE WHEN json_valid(errors) THEN json_array_length(errors) ELSE 0 END AS errors, seen "
        "FROM sync_runs "
        "WHERE julianday(started_at) >= julianday(?) AND julianday(started_at) < julianday(?) "
        "ORDER BY id",
        [since, until],
    )
    frame = pd.DataFrame(found, columns=["id", "started", "status", "duration_seconds", "errors", "seen"])
    frame["started"] = [_timestamp(t) for t in frame["started"]]
    return frame


# --- alert states -------------------------------------------------------------------------------------------


@dataclass
class AlertState:
    """One alert rule evaluated on the store now."""

    rule: AlertRule
    value: float | None
    labels: dict[str, str] = field(default_factory=dict)
    note: str = ""  # plain text: what a missing value means here ("no shadow eval run yet", ...)
    settled: bool = False  # the condition cannot hold any more (e.g. the first run exists): ok, no value

    @property
    def breached(self) -> bool | None:
        return False if self.settled else self.rule.breached(self.value)

    @property
    def state(self) -> str:
        """``alert`` (condition true), ``ok``, or ``no data`` (Prometheus would have no sample)."""
        return {True: "alert", False: "ok", None: "no data"}[self.breached]

    @property
    def summary(self) -> str:
        """The rule's summary rendered for these labels and this value (plain text, no template)."""
        return self.rule.annotations(self.labels, self.value)["summary"]

    @property
    def description(self) -> str:
        """The rule's description rendered for these labels and this value (plain text, no template)."""
        return self.rule.annotations(self.labels, self.value)["description"]


def _refine_window(db: sqlite_utils.Database, now: datetime, rule: AlertRule) -> RefineTotals:
    since = now - timedelta(seconds=rule.window_seconds)
    found = readings.refine_totals(db, "created_at >= ? AND created_at <= ?", [iso(since), iso(now)])
    return next(iter(found.values()), RefineTotals())


NO_EVAL_RUN_YET = "No shadow eval run has finished yet."
NO_SYNC_YET = "No Hub sync has succeeded yet."


def _age_note(what: str, created: float | None, epoch: float, limit: float) -> str:
    age = (
        f"the store is {human_seconds(epoch - created)} old"
        if created is not None
        else "the store's age is unknown"
    )
    return f"{what.rstrip('.')} ({age}; this alert waits {human_seconds(limit)} after the store was created)."


def _first_time(
    out: list[AlertState],
    stale: AlertRule,
    never: AlertRule,
    last: float | None,
    created: float | None,
    epoch: float,
    note: str,
) -> None:
    """A staleness rule (quiet until the first time) and its "never yet" rule counting the store's age."""
    if last is None:
        out.append(AlertState(stale, None, note=note))
        age = epoch - created if created is not None else None
        out.append(AlertState(never, age, note=_age_note(note, created, epoch, never.threshold)))
    else:
        out.append(AlertState(stale, epoch - last))
        out.append(AlertState(never, None, settled=True))


def _score_states(db: sqlite_utils.Database) -> list[AlertState]:
    """One state per (task, dataset) with a bar, built-in and custom: the promoted model's latest score."""
    serving = readings.serving(db)
    scores = scores_table(db)
    out = []
    for task, dataset in score_pairs(readings.custom_sets(db)):
        if task not in serving:
            continue
        bar = score_bar(task, dataset)
        score_rule = rule("HfEvalScoreLow", task=task, metric=bar.metric)
        labels = {"task": task, "dataset": dataset, "metric": bar.metric}
        serves = serving[task]
        if not serves.promoted:
            out.append(
                AlertState(
                    score_rule,
                    None,
                    labels,
                    note=(
                        f"No {task} model is promoted: the baseline {serves.model} serves, "
                        "and the bar applies to a promoted model only."
                    ),
                )
            )
            continue
        mine = scores[
            (scores["task"] == task) & (scores["dataset"] == dataset) & (scores["model"] == serves.model)
        ]
        value = float(mine["score"].mean()) if len(mine) else None
        note = (
            ""
            if value is not None
            else f"No succeeded {task} run on {dataset} has scored {serves.model} yet."
        )
        out.append(AlertState(score_rule, value, labels, note=note))
    return out


def _allowance_states(
    db: sqlite_utils.Database, now: datetime, settings: Any, rule_: AlertRule
) -> list[AlertState]:
    from hfops.ledger import inference_usage

    if settings is None:
        return [
            AlertState(rule_, None, note="The allowance is read from the settings, which were not given.")
        ]
    limits = inference_usage.allowance(settings)
    usage = inference_usage.month_summary(db, now)
    out = [
        AlertState(rule_, used / allowed, {"limit": limit})
        for limit, used, allowed in (
            ("requests", usage.requests, limits.requests),
            ("tokens", usage.tokens, limits.tokens),
        )
        if allowed
    ]
    return out or [
        AlertState(
            rule_,
            None,
            note="No monthly HF Inference allowance is configured "
            "([inference] monthly_requests, monthly_tokens): use is unlimited.",
        )
    ]


def alert_states(
    db: sqlite_utils.Database, now: datetime | None = None, settings: Any = None
) -> list[AlertState]:
    """Every alert rule's condition evaluated on the store at ``now`` (one state per dataset / score bar /
    allowance limit). ``settings`` gives the Inference allowance (without it that rule has no data)."""
    now = now or datetime.now(UTC)
    epoch = now.timestamp()
    created = readings.store_created(db)
    out: list[AlertState] = []
    by_measure = {r.measure: r for r in ALERT_RULES}
    done: set[str] = set()
    for rule_ in ALERT_RULES:
        if rule_.measure in done:
            continue
        done.add(rule_.measure)
        if rule_.measure == "open_candidates":
            out.append(AlertState(rule_, float(readings.open_candidates(readings.candidates_found(db)))))
        elif rule_.measure == "eval_run_age":
            _first_time(
                out,
                rule_,
                by_measure["eval_never_ran"],
                readings.last_eval_run_end(db),
                created,
                epoch,
                NO_EVAL_RUN_YET,
            )
            done.add("eval_never_ran")
        elif rule_.measure == "sync_age":
            _first_time(
                out,
                rule_,
                by_measure["sync_never_succeeded"],
                readings.sync_health(db).last_success,
                created,
                epoch,
                NO_SYNC_YET,
            )
            done.add("sync_never_succeeded")
        elif rule_.measure == "refine_p95":
            out.append(AlertState(rule_, _refine_window(db, now, rule_).all_latency().quantile(0.95)))
        elif rule_.measure == "inference_success":
            out.append(AlertState(rule_, _refine_window(db, now, rule_).success_rate()))
        elif rule_.measure == "rate_limited_share":
            out.append(AlertState(rule_, _refine_window(db, now, rule_).rate_limited_share()))
        elif rule_.measure == "datasets_eval_success":
            summary = datasets_eval_summary(
                db, now - timedelta(seconds=rule_.window_seconds), now + timedelta(seconds=1)
            )
            for entry in summary.to_dict("records"):
                rate = entry["success_rate"]
                out.append(
                    AlertState(
                        rule_,
                        None if rate is None or pd.isna(rate) else float(rate),
                        {"dataset": entry["dataset"]},
                    )
                )
        elif rule_.measure == "production_score":
            out.extend(_score_states(db))
        elif rule_.measure == "allowance_used":
            out.extend(_allowance_states(db, now, settings, rule_))
        elif rule_.measure == "inference_closed":
            from hfops.ledger import inference_usage

            out.append(AlertState(rule_, 1.0 if inference_usage.closure(db, now) is not None else 0.0))
        else:  # pragma: no cover - a rule without a page reading is a programming error
            raise ValueError(f"no store reading for alert measure {rule_.measure!r}")
    return out


def onboarding(db: sqlite_utils.Database) -> list[str]:
    """What has not happened yet on this store, as plain sentences for the page's onboarding message
    (empty once the store has seen every kind of work)."""
    out = []
    if readings.models_discovered(db) == 0:
        out.append(
            "The store holds no model yet: load the embedded snapshot (`hfops init`) or sync the Hub "
            "(`hfops sync`)."
        )
    if readings.last_eval_run_end(db) is None:
        active = db.execute(
            "SELECT COUNT(*) FROM eval_runs WHERE status IN ('queued', 'running')"
        ).fetchone()[0]
        out.append(
            f"{NO_EVAL_RUN_YET} {active} run(s) are queued or running: the eval tiles fill when they end."
            if active
            else f"{NO_EVAL_RUN_YET} Start one on the Evals page or with `hfops eval`; "
            "the worker's nightly job runs them too."
        )
    for serves in readings.serving(db).values():
        if not serves.promoted:
            out.append(
                f"No {serves.task} model is promoted: the baseline {serves.model} serves, and the score "
                "alert waits for a promotion."
            )
    if readings.sync_health(db).last_success is None:
        out.append(f"{NO_SYNC_YET} Run `hfops sync` to refresh the registry from the Hub.")
    if readings.max_refine_id(db) == 0:
        out.append(
            "No refine call yet: the latency and Inference tiles fill once `hfops serve` or the Refine Lab "
            "answers queries."
        )
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
    if unit == "flag":
        return f"{value:g}"
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


ALERT_COLUMNS = ["alert", "tile", "state", "value", "condition", "summary", "note"]


def alert_table(states: list[AlertState]) -> pd.DataFrame:
    """The alert states as a table for the page (summaries rendered for each state's labels: no template)."""
    out = []
    for s in states:
        labels = ", ".join(f"{k}={v}" for k, v in s.labels.items() if k != "metric")
        out.append(
            {
                "alert": s.rule.name + (f" ({labels})" if labels else ""),
                "tile": s.rule.tile,
                "state": s.state,
                "value": format_value(s.value, s.rule.unit),
                "condition": f"{s.rule.op} {format_value(s.rule.threshold, s.rule.unit)}"
                + (f" over {s.rule.window}" if s.rule.window else ""),
                "summary": s.summary,
                "note": s.note,
            }
        )
    return pd.DataFrame(out, columns=ALERT_COLUMNS)
