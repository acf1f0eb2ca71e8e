"""Typed records the eval queries return: runs, their metrics, per-example rows, summaries, leaderboard rows.

Each is a dataclass on :class:`hfops.records.Record` (attributes in new code, mapping-style reads for the
former ``dict`` callers, :meth:`Record.to_dict` for plain data).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hfops.records import Record
from hfops.store import loads

__all__ = ["Record"]  # re-exported: eval code imports it from here


def _columns(cls: type, row: Mapping[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in row.items() if k in names}


@dataclass
class EvalMetric(Record):
    """One metric of one system (candidate, production or delta) of a run, with its 95% CI."""

    run_id: int
    system: str
    model_id: str
    metric: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> EvalMetric:
        return cls(**_columns(cls, row))


@dataclass
class EvalRun(Record):
    """One shadow run (an ``eval_runs`` row) with its decoded JSON columns and its metric rows."""

    id: int
    model_id: str
    production_id: str
    task: str
    dataset: str
    dataset_source: str
    dataset_version: str
    status: str
    created_at: str
    updated_at: str
    job_id: int | None = None
    dataset_location: str | None = None
    sample_limit: int | None = None
    example_ids_hash: str | None = None
    candidate_backend: str | None = None
    candidate_revision: str | None = None
    production_backend: str | None = None
    production_revision: str | None = None
    candidate_source: dict[str, Any] | None = None  # ResolvedModel.record() of the candidate (acquisition)
    production_source: dict[str, Any] | None = None
    total: int | None = None
    done: int = 0
    candidate_errors: int = 0
    production_errors: int = 0
    primary_metric: str | None = None
    candidate_score: float | None = None
    production_score: float | None = None
    delta: float | None = None
    delta_ci_low: float | None = None
    delta_ci_high: float | None = None
    recommendation: str | None = None
    recommendation_reason: str | None = None
    recommendation_rule: dict[str, Any] | None = None
    status_before: str | None = None
    status_after: str | None = None
    cache_hits: int = 0
    cache_misses: int = 0
    model_calls: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    message: str | None = None
    error: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    metrics: list[EvalMetric] = field(default_factory=list)

    @classmethod
    def from_row(cls, row: Mapping[str, Any], metrics: list[EvalMetric] | None = None) -> EvalRun:
        data = _columns(cls, row)
        data["params"] = loads(data.get("params"), {})
        for side in ("candidate_source", "production_source"):
            if isinstance(data.get(side), str):
                data[side] = loads(data[side])
        rule = data.get("recommendation_rule")
        data["recommendation_rule"] = loads(rule) if isinstance(rule, str) else rule
        return cls(**data, metrics=list(metrics or []))

    def metric(self, system: str, metric: str) -> EvalMetric | None:
        """The metric row of ``system`` (candidate | production | delta), or None."""
        return next((m for m in self.metrics if m.system == system and m.metric == metric), None)


@dataclass
class EvalExample(Record):
    """One example of a run: inputs, gold truth, both systems' outputs, scores, latency and errors."""

    run_id: int
    example_id: str
    position: int
    input: dict[str, Any]
    expected: dict[str, Any]
    candidate_output: Any
    production_output: Any
    candidate_scores: dict[str, float]
    production_scores: dict[str, float]
    candidate_primary: float | None
    production_primary: float | None
    delta: float | None
    candidate_latency_ms: float | None
    production_latency_ms: float | None
    candidate_cached: int
    production_cached: int
    candidate_error: str | None
    production_error: str | None
    created_at: str
    id: int | None = None

    JSON_COLUMNS = (
        "input",
        "expected",
        "candidate_output",
        "production_output",
        "candidate_scores",
        "production_scores",
    )

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> EvalExample:
        data = _columns(cls, row)
        for key in cls.JSON_COLUMNS:
            data[key] = loads(data.get(key))
        data["candidate_scores"] = data["candidate_scores"] or {}
        data["production_scores"] = data["production_scores"] or {}
        return cls(**data)


SUMMARY_FIELDS = (
    "status",
    "model_id",
    "production_id",
    "task",
    "dataset",
    "dataset_version",
    "total",
    "done",
    "candidate_errors",
    "production_errors",
    "primary_metric",
    "candidate_score",
    "production_score",
    "delta",
    "delta_ci_low",
    "delta_ci_high",
    "recommendation",
    "recommendation_reason",
    "status_after",
    "cache_hits",
    "cache_misses",
    "model_calls",
    "error",
)


@dataclass
class RunSummary(Record):
    """The headline of a run: what the ``eval_run`` job returns and the CLI prints."""

    run_id: int
    status: str
    model_id: str
    production_id: str
    task: str
    dataset: str
    dataset_version: str
    total: int | None
    done: int
    candidate_errors: int
    production_errors: int
    primary_metric: str | None
    candidate_score: float | None
    production_score: float | None
    delta: float | None
    delta_ci_low: float | None
    delta_ci_high: float | None
    recommendation: str | None
    recommendation_reason: str | None
    status_after: str | None
    cache_hits: int
    cache_misses: int
    model_calls: int
    error: str | None
    candidate_source: dict[str, Any] | None = None  # where the candidate ran from (source, revision, hashes)
    production_source: dict[str, Any] | None = None

    @classmethod
    def of(cls, run: EvalRun) -> RunSummary:
        sources = {k: getattr(run, k) for k in ("candidate_source", "production_source")}
        return cls(run_id=run.id, **{k: getattr(run, k) for k in SUMMARY_FIELDS}, **sources)


@dataclass
class SubmittedRun(Record):
    """A stored run and the job that executes it."""

    run_id: int
    job_id: int


@dataclass
class MetricValue(Record):
    """A metric value with its 95% CI and sample size."""

    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int


@dataclass
class LeaderboardEntry(Record):
    """One model on a task/dataset leaderboard: the metrics of its latest succeeded run."""

    model_id: str
    status: str  # registry status, "baseline" or "not in registry"
    role: str  # candidate | production in that run
    runs: int  # succeeded runs it took part in
    latest_run: int
    dataset_version: str | None
    examples: int | None
    recommendation: str | None
    evaluated_at: str | None
    metrics: dict[str, MetricValue] = field(default_factory=dict)

    def score(self, metric: str) -> float | None:
        found = self.metrics.get(metric)
        return found.value if found else None

    def to_row(self) -> dict[str, Any]:
        """Flat table row: the fixed columns, then ``<metric>`` and ``<metric> CI`` per metric."""
        row: dict[str, Any] = {k: v for k, v in self.to_dict().items() if k != "metrics"}
        for name, m in self.metrics.items():
            row[name] = m.value
            row[f"{name} CI"] = f"{m.ci_low:.3g} to {m.ci_high:.3g}" if m.ci_low is not None else ""
        return row


@dataclass
class LatestScore(Record):
    """The latest value of one metric of a model on a task/dataset (succeeded runs only)."""

    model_id: str
    task: str
    dataset: str
    metric: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    run_id: int
    finished_at: str | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> LatestScore:
        return cls(**_columns(cls, row))


@dataclass
class PlannedRun(Record):
    """A nightly evaluation to do."""

    model: str
    task: str
    dataset: str


@dataclass
class SkippedModel(Record):
    """A model the nightly run cannot evaluate here, and why."""

    model: str
    reason: str
