"""The one source of truth for alert thresholds, histogram buckets and tiles.

``docs/observability/alerts.yml`` is generated from :data:`ALERT_RULES` (``hfops metrics --rules``; a test
checks the committed file is what this module generates), the Grafana dashboard draws the same thresholds
as lines, and the Observability page evaluates the same rules on the store
(:func:`hfops.observability.series.alert_states`). Change a threshold here, then regenerate the files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

# Histogram buckets (upper bounds, in milliseconds as stored; exported in seconds). Dense around the
# refine budget: the 500 ms fallback deadline and the 800 ms p95 budget are bucket bounds, so a p95
# above 0.8 s is measured exactly, not interpolated across the line.
LATENCY_BUCKETS_MS: tuple[int, ...] = (5, 10, 20, 50, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1500,
                                       2500, 5000)
FALLBACK_DEADLINE_SECONDS = 0.5
REFINE_P95_BUDGET_SECONDS = 0.8

# Candidate statuses that still count as "found and waiting for (or in) evaluation".
OPEN_CANDIDATE_STATUSES: tuple[str, ...] = ("candidate", "evaluating", "shadow")
# Outcomes of a request sent to HF Inference (refine_calls.outcome when hf_requested = 1).
INFERENCE_OUTCOMES: tuple[str, ...] = ("ok", "timeout", "rate_limited", "credits_exhausted", "http_error",
                                       "invalid_output")
# Why a wanted HF request was rate limited: the server said 429, our shared limiter had no permit,
# or a cooldown (opened by a 429 / 402) was active.
RATE_LIMIT_REASONS: tuple[str, ...] = ("hub_429", "limiter", "cooldown")
EVAL_RUN_END_STATUSES: tuple[str, ...] = ("succeeded", "failed")
EVAL_DATASETS: tuple[str, ...] = ("squad_v2", "ms_marco")
SYNC_END_STATUSES: tuple[str, ...] = ("succeeded", "failed", "interrupted")


@dataclass(frozen=True)
class ScoreBar:
    """The lowest acceptable primary score (0-1) of the model serving ``task``, on ``dataset``."""

    task: str
    dataset: str
    metric: str
    bar: float
    why: str


# The seed's "average eval score < 0.7" made per task: scores are normalised to 0-1 (QA metrics are
# stored 0-100), only each task's primary metric counts, and each metric gets a bar it can reach.
SCORE_BARS: tuple[ScoreBar, ...] = (
    ScoreBar("retrieval", "ms_marco", "ndcg@10", 0.70,
             "nDCG@10 is already 0-1; the seed's 0.7 applies unchanged"),
    ScoreBar("retrieval", "squad_v2", "ndcg@10", 0.70,
             "nDCG@10 is already 0-1; the seed's 0.7 applies unchanged"),
    ScoreBar("qa", "squad_v2", "f1", 0.60,
             "SQuAD v2 F1 (0-100 -> 0-1); a third of the questions are unanswerable, so 0.6 is a solid bar "
             "for small instruct models where 0.7 would page on every healthy model"),
    ScoreBar("qa", "ms_marco", "rougeL", 0.40,
             "ROUGE-L against free-form human answers rarely exceeds 0.5 even for good answers; 0.4 "
             "separates useful answers from noise"),
)


@dataclass(frozen=True)
class Tile:
    """One dashboard tile (same key, title and order in Grafana and on the page)."""

    key: str
    title: str
    description: str


TILES: tuple[Tile, ...] = (
    Tile("candidates", "HF candidates found",
         "Candidates in the registry by pipeline tag and licence (open = candidate, evaluating, shadow)."),
    Tile("eval_runs", "Shadow eval runs", "Finished shadow evaluation runs by status, and time since the last one."),
    Tile("refine_latency", "Refiner latency p95 vs 800 ms",
         "End-to-end refine latency p95 (all calls, by source) and the HF API wait, against the 500 ms "
         "fallback deadline and the 800 ms budget."),
    Tile("inference_success", "Inference success rate", "Share of HF Inference requests that answered usefully (ok)."),
    Tile("rate_limited", "Rate-limited share",
         "Share of wanted HF Inference requests refused by a 429, the shared limiter or a cooldown."),
    Tile("datasets_eval", "Datasets eval success", "Share of finished eval runs that succeeded, per dataset."),
    Tile("eval_scores", "Eval scores",
         "Latest primary score (0-1) of every evaluated model per task and dataset; the bar applies to the "
         "model serving the task."),
    Tile("sync_freshness", "Sync freshness", "Time since the last successful Hub sync, its duration and errors."),
)
TILE_KEYS = tuple(t.key for t in TILES)


@dataclass(frozen=True)
class AlertRule:
    """One Prometheus alerting rule and how the page evaluates the same condition on the store.

    ``query`` is the PromQL value the alert compares (``{ns}`` = metric namespace, ``{window}`` = this
    rule's range); the alert expression is ``query op threshold``, and the Grafana tile draws ``query``.
    ``measure`` names the store reading the page compares with ``threshold`` using ``op`` over the last
    ``window`` (see :func:`hfops.observability.series.alert_states`).
    """

    name: str
    tile: str
    measure: str
    op: str  # "<" or ">": the alert condition is ``value op threshold``
    threshold: float
    query: str
    summary: str
    description: str
    window: str = ""  # PromQL range of the rate/increase, "" for conditions on gauges
    for_: str = "15m"
    severity: str = "warning"
    unit: str = "ratio"  # ratio | seconds | count | score
    labels: dict[str, str] = field(default_factory=dict)

    def value_promql(self, namespace: str) -> str:
        """The compared value for metrics named ``<namespace>_...`` (what the Grafana tile draws)."""
        return self.query.format(ns=namespace, window=self.window)

    def promql(self, namespace: str) -> str:
        """The alert expression: ``value op threshold``."""
        return f"{self.value_promql(namespace)} {self.op} {_number(self.threshold)}"

    def breached(self, value: float | None) -> bool | None:
        """Is ``value`` on the alerting side of the threshold? None when there is no value (no data)."""
        if value is None or value != value:  # None or NaN: Prometheus returns no sample, nothing fires
            return None
        return value < self.threshold if self.op == "<" else value > self.threshold

    @property
    def window_seconds(self) -> float:
        return duration_seconds(self.window) if self.window else 0.0

    @property
    def key(self) -> str:
        """Unique per rule (the score rule exists once per task and dataset)."""
        extra = "/".join(self.labels.values())
        return f"{self.name}[{extra}]" if extra else self.name


def _number(value: float) -> str:
    return repr(int(value)) if float(value).is_integer() else repr(float(value))


def check_namespace(namespace: str) -> str:
    """``namespace`` if it can prefix Prometheus metric names, else a ConfigError."""
    from hfops.config import ConfigError

    if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", namespace or ""):
        raise ConfigError(f"[metrics] namespace: {namespace!r} is not a valid Prometheus name prefix "
                          "(letters, digits, underscores; not starting with a digit)")
    return namespace


def duration_seconds(text: str) -> float:
    """A Prometheus duration such as ``15m``, ``1h``, ``1d`` in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return float(sum(int(n) * units[u] for n, u in parts))


def _score_rule(bar: ScoreBar) -> AlertRule:
    return AlertRule(
        name="HfEvalScoreLow",
        tile="eval_scores",
        measure="production_score",
        op="<",
        threshold=bar.bar,
        query=(
            'avg by (task, dataset, metric) ({ns}_hf_eval_scores{{task="' + bar.task + '",dataset="' + bar.dataset
            + '",metric="' + bar.metric + '"}} * on (model, task) group_left () {ns}_hf_production_model)'
        ),
        summary=f"The model serving {bar.task} scores below {bar.bar:g} {bar.metric} on {bar.dataset}",
        description=(f"Latest {bar.metric} (0-1) of the production model for {bar.task} on {bar.dataset} is "
                     "{{ $value | printf \"%.3f\" }}, below the bar of " + f"{bar.bar:g}. {bar.why}."),
        for_="30m",
        unit="score",
        labels={"task": bar.task, "dataset": bar.dataset, "metric": bar.metric},
    )


ALERT_RULES: tuple[AlertRule, ...] = (
    AlertRule(
        name="HfCandidatesNone",
        tile="candidates",
        measure="open_candidates",
        op="<",
        threshold=1,
        query=(
            '(sum({ns}_hf_candidates_found{{status=~"' + "|".join(OPEN_CANDIDATE_STATUSES) + '"}})'
            " or on () (0 * max({ns}_hf_models_discovered_total)))"
        ),
        summary="Discovery found no open candidates",
        description="No model is in candidate, evaluating or shadow status: check the Hub sync and the "
        "candidate rule ([discovery] in the config).",
        unit="count",
    ),
    AlertRule(
        name="ShadowEvalStale",
        tile="eval_runs",
        measure="eval_run_age",
        op=">",
        threshold=86400,
        query="time() - max({ns}_shadow_eval_last_run_timestamp_seconds)",
        summary="No shadow eval run finished in the last 24 h",
        description="The last shadow eval run ended {{ $value | humanizeDuration }} ago (decades = never). "
        "Is the worker running the nightly eval job?",
        unit="seconds",
    ),
    AlertRule(
        name="RefineLatencyP95High",
        tile="refine_latency",
        measure="refine_p95",
        op=">",
        threshold=REFINE_P95_BUDGET_SECONDS,
        window="15m",
        query="histogram_quantile(0.95, sum by (le) (rate({ns}_refine_latency_seconds_bucket[{window}])))",
        summary="Refiner p95 latency above the 800 ms budget",
        description="End-to-end refine p95 over 15 min is {{ $value | humanizeDuration }} (budget 800 ms).",
        for_="10m",
        unit="seconds",
    ),
    AlertRule(
        name="HfInferenceSuccessLow",
        tile="inference_success",
        measure="inference_success",
        op="<",
        threshold=0.9,
        window="1h",
        query=(
            'sum(increase({ns}_hf_inference_requests_total{{outcome="ok"}}[{window}]))'
            " / sum(increase({ns}_hf_inference_requests_total[{window}]))"
        ),
        summary="HF Inference success rate below 90 %",
        description="Only {{ $value | humanizePercentage }} of HF Inference requests in the last hour "
        "answered ok (timeouts, errors, 429s, invalid output).",
    ),
    AlertRule(
        name="HfInferenceRateLimitedHigh",
        tile="rate_limited",
        measure="rate_limited_share",
        op=">",
        threshold=0.2,
        window="1h",
        query=(
            "sum(increase({ns}_hf_inference_rate_limited_total[{window}]))"
            " / sum(increase({ns}_hf_inference_attempts_total[{window}]))"
        ),
        summary="More than 20 % of HF Inference requests rate limited",
        description="{{ $value | humanizePercentage }} of wanted HF Inference requests in the last hour were "
        "refused (429, shared limiter or cooldown).",
    ),
    AlertRule(
        name="HfDatasetsEvalSuccessLow",
        tile="datasets_eval",
        measure="datasets_eval_success",
        op="<",
        threshold=0.95,
        window="1d",
        query=(
            'sum by (dataset) (increase({ns}_hf_datasets_eval_total{{status="succeeded"}}[{window}]))'
            " / sum by (dataset) (increase({ns}_hf_datasets_eval_total[{window}]))"
        ),
        summary="Eval runs on {{ $labels.dataset }} succeed less than 95 % of the time",
        description="{{ $value | humanizePercentage }} of the eval runs on {{ $labels.dataset }} that ended "
        "in the last day succeeded.",
        for_="5m",
    ),
    *(_score_rule(bar) for bar in SCORE_BARS),
    AlertRule(
        name="HfSyncStale",
        tile="sync_freshness",
        measure="sync_age",
        op=">",
        threshold=172800,
        query="time() - {ns}_hf_sync_last_success_timestamp_seconds",
        summary="No successful Hub sync in 48 h",
        description="The last successful sync finished {{ $value | humanizeDuration }} ago (decades = never); "
        "48 h is twice the full-sync period ([hub] full_sync_hours).",
        unit="seconds",
    ),
)


def rule_group(namespace: str) -> dict[str, Any]:
    """The Prometheus rule file content (one group) for metrics named ``<namespace>_...``."""
    check_namespace(namespace)
    rules = []
    for rule in ALERT_RULES:
        rules.append({
            "alert": rule.name,
            "expr": rule.promql(namespace),
            "for": rule.for_,
            "labels": {"severity": rule.severity, "tile": rule.tile, **rule.labels},
            "annotations": {"summary": rule.summary, "description": rule.description},
        })
    return {"groups": [{"name": f"{namespace}-hfops", "rules": rules}]}


def rules_yaml(namespace: str) -> str:
    """``alerts.yml`` text (what ``hfops metrics --rules`` prints)."""
    header = (
        "# Prometheus alerting rules for hfops, generated by `hfops metrics --rules` from\n"
        "# lib/hfops/observability/thresholds.py (edit the thresholds there, then regenerate).\n"
    )
    return header + yaml.safe_dump(rule_group(namespace), sort_keys=False, width=1000, allow_unicode=True)


def tile(key: str) -> Tile:
    """The tile with ``key``."""
    return next(t for t in TILES if t.key == key)


def rules_for_tile(key: str) -> list[AlertRule]:
    """The alert rules drawn on tile ``key``."""
    return [r for r in ALERT_RULES if r.tile == key]
