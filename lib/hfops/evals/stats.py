"""Run-level metrics from per-example results: values, bootstrap 95% CIs, paired deltas, recommendation.

Every metric of a run is recomputed from the stored per-example outputs, so the numbers are reproducible.
Confidence intervals are percentile bootstrap intervals (``[eval] bootstrap_samples`` resamples of the
examples, fixed seed). Candidate and production are resampled *together* (paired), which gives the CI of
the delta candidate - production. Corpus BLEU is bootstrapped exactly from per-sentence statistics.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hfops.evals import scoring, tasks

BOOTSTRAP_SEED = 20_261_126
CONFIDENCE = 0.95
RULE_NAME = "paired-bootstrap-delta-v1"


def primary_metric(task: str, dataset: str) -> str:
    """The metric a recommendation is decided on (from the task table)."""
    return tasks.primary_metric(task, dataset)


def metric_names(task: str, dataset: str) -> tuple[str, ...]:
    """The metrics reported for a task and dataset, primary first (from the task table)."""
    return tasks.metric_names(task, dataset)


def _retrieval_scores(expected: dict[str, Any], output: Any) -> dict[str, float]:
    if output is None:
        return dict.fromkeys(scoring.RETRIEVAL_KEYS, 0.0)
    return scoring.retrieval_example([str(d) for d in output], expected["relevant"])


def _squad_scores(expected: dict[str, Any], output: Any) -> dict[str, float]:
    if output is None:
        return {"exact": 0.0, "f1": 0.0}
    exact, f1 = scoring.squad_example(str(output), expected["answers"])
    return {"exact": 100.0 * exact, "f1": 100.0 * f1}


def _rouge_scores(expected: dict[str, Any], output: Any) -> dict[str, float]:
    if output is None:
        return {"rougeL": 0.0}
    return {"rougeL": 100.0 * scoring.rouge_l_example(str(output), expected["answers"])}


EXAMPLE_SCORERS: dict[str, Callable[[dict[str, Any], Any], dict[str, float]]] = {
    "retrieval": _retrieval_scores,
    "squad_v2": _squad_scores,
    "rouge_l": _rouge_scores,
}


def example_scores(
    task: str, dataset: str, expected: dict[str, Any], output: Any, error: str | None
) -> dict[str, float]:
    """Per-example scores (retrieval 0-1; qa 0-100). A failed example scores 0 on every metric."""
    scorer = tasks.eval_spec(task, dataset).spec.scorer
    return EXAMPLE_SCORERS[scorer](expected, None if error is not None else output)


@dataclass
class SystemResults:
    """Per-example results of one system in a run, in example order."""

    scores: list[dict[str, float]]
    outputs: list[Any]
    errors: list[str | None]


@dataclass
class MetricRow:
    """One metric of one system (or of the delta) with its 95% CI."""

    system: str
    metric: str
    value: float
    ci_low: float
    ci_high: float
    n: int


@dataclass
class RunMetrics:
    """All metrics of a run and the recommendation derived from them."""

    rows: list[MetricRow] = field(default_factory=list)
    primary: str = ""
    recommendation: str = ""
    reason: str = ""
    rule: dict[str, Any] = field(default_factory=dict)

    def get(self, system: str, metric: str) -> MetricRow | None:
        return next((r for r in self.rows if r.system == system and r.metric == metric), None)


def _resample_counts(n: int, samples: int) -> np.ndarray:
    """``samples x n`` multiplicities of a bootstrap resample (fixed seed: recomputable)."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=samples).astype(np.float64)


def _interval(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return float("nan"), float("nan")
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


class _Metric:
    """How to compute one metric for one system, point value and per bootstrap resample."""

    def __init__(
        self, values: np.ndarray, mask: np.ndarray | None = None, bleu_stats: np.ndarray | None = None
    ) -> None:
        self.values, self.mask, self.bleu_stats = values, mask, bleu_stats

    def point(self) -> float:
        if self.bleu_stats is not None:
            return scoring.bleu_from_statistics(self.bleu_stats.sum(axis=0))
        mask = np.ones_like(self.values) if self.mask is None else self.mask
        return float((self.values * mask).sum() / mask.sum()) if mask.sum() else float("nan")

    def resampled(self, counts: np.ndarray) -> np.ndarray:
        if self.bleu_stats is not None:
            summed = counts @ self.bleu_stats
            return np.array([scoring.bleu_from_statistics(row) for row in summed])
        mask = np.ones_like(self.values) if self.mask is None else self.mask
        with np.errstate(invalid="ignore", divide="ignore"):
            return (counts @ (self.values * mask)) / (counts @ mask)


def _columns(results: SystemResults) -> Callable[[str], np.ndarray]:
    def column(key: str) -> np.ndarray:
        return np.array([s.get(key, 0.0) for s in results.scores], dtype=np.float64)

    return column


def _retrieval_metrics(results: SystemResults, expected: Sequence[dict[str, Any]]) -> dict[str, _Metric]:
    column = _columns(results)
    return {key: _Metric(column(key)) for key in tasks.RETRIEVAL_METRICS}


def _squad_metrics(results: SystemResults, expected: Sequence[dict[str, Any]]) -> dict[str, _Metric]:
    column = _columns(results)
    has_ans = np.array([1.0 if e["answers"] else 0.0 for e in expected])
    out = {"f1": _Metric(column("f1")), "exact": _Metric(column("exact"))}
    if has_ans.any():
        out["HasAns_f1"] = _Metric(column("f1"), has_ans)
        out["HasAns_exact"] = _Metric(column("exact"), has_ans)
    if (1 - has_ans).any():
        out["NoAns_f1"] = _Metric(column("f1"), 1 - has_ans)
        out["NoAns_exact"] = _Metric(column("exact"), 1 - has_ans)
    return out


def _rouge_metrics(results: SystemResults, expected: Sequence[dict[str, Any]]) -> dict[str, _Metric]:
    column = _columns(results)
    hypotheses = [
        "" if err is not None or out is None else str(out)
        for out, err in zip(results.outputs, results.errors, strict=True)
    ]
    stats = np.array(scoring.bleu_statistics(hypotheses, [e["answers"] for e in expected]), dtype=np.float64)
    return {"rougeL": _Metric(column("rougeL")), "bleu": _Metric(column("rougeL"), bleu_stats=stats)}


RUN_SCORERS: dict[str, Callable[[SystemResults, Sequence[dict[str, Any]]], dict[str, _Metric]]] = {
    "retrieval": _retrieval_metrics,
    "squad_v2": _squad_metrics,
    "rouge_l": _rouge_metrics,
}


def _system_metrics(
    task: str, dataset: str, results: SystemResults, expected: Sequence[dict[str, Any]]
) -> dict[str, _Metric]:
    return RUN_SCORERS[tasks.eval_spec(task, dataset).spec.scorer](results, expected)


def rule_description(task: str, dataset: str, min_examples: int, max_error_rate: float) -> dict[str, Any]:
    """The recommendation rule with its parameters (stored with every run)."""
    primary = primary_metric(task, dataset)
    return {
        "name": RULE_NAME,
        "primary_metric": primary,
        "confidence": CONFIDENCE,
        "min_examples": min_examples,
        "max_error_rate": max_error_rate,
        "text": (
            f"reject if the candidate's error rate > {max_error_rate:.0%}; keep shadowing if fewer than "
            f"{min_examples} examples; reject if the {CONFIDENCE:.0%} CI of (candidate - production) on "
            f"{primary} lies entirely below 0; promote if it lies entirely above 0 and no other metric's "
            "delta CI lies entirely below 0; otherwise keep shadowing."
        ),
    }


def recommend(
    metrics: RunMetrics, n: int, candidate_errors: int, min_examples: int, max_error_rate: float
) -> tuple[str, str]:
    """``(recommendation, reason)`` by the rule of :func:`rule_description`."""
    error_rate = candidate_errors / n if n else 1.0
    delta = metrics.get("delta", metrics.primary)
    if error_rate > max_error_rate:
        return "reject", f"candidate error rate {error_rate:.1%} exceeds {max_error_rate:.0%}"
    if n < min_examples:
        return "keep shadowing", f"only {n} examples (< {min_examples}): not enough evidence"
    if delta is None or not np.isfinite(delta.ci_low):
        return "keep shadowing", "no delta could be computed"
    span = f"{metrics.primary} delta {delta.value:+.3g} (95% CI {delta.ci_low:+.3g} to {delta.ci_high:+.3g})"
    if delta.ci_high < 0:
        return "reject", f"{span}: candidate is worse"
    if delta.ci_low > 0:
        worse = [
            r.metric
            for r in metrics.rows
            if r.system == "delta" and r.metric != metrics.primary and r.ci_high < 0
        ]
        if worse:
            return "keep shadowing", f"{span} is better, but worse on {', '.join(worse)}"
        return "promote", f"{span}: candidate is better"
    return "keep shadowing", f"{span}: no significant difference"


def compute_run_metrics(
    task: str,
    dataset: str,
    expected: Sequence[dict[str, Any]],
    candidate: SystemResults,
    production: SystemResults,
    samples: int,
    min_examples: int,
    max_error_rate: float,
) -> RunMetrics:
    """Metrics of both systems and of their delta, with paired bootstrap CIs, and the recommendation."""
    n = len(expected)
    result = RunMetrics(
        primary=primary_metric(task, dataset),
        rule=rule_description(task, dataset, min_examples, max_error_rate),
    )
    if n == 0:
        result.recommendation, result.reason = "keep shadowing", "no examples"
        return result
    counts = _resample_counts(n, max(1, samples))
    cand = _system_metrics(task, dataset, candidate, expected)
    prod = _system_metrics(task, dataset, production, expected)
    for metric in metric_names(task, dataset):
        if metric not in cand:
            continue
        mask = cand[metric].mask
        n_metric = n if mask is None else int(mask.sum())
        c_point, p_point = cand[metric].point(), prod[metric].point()
        c_boot, p_boot = cand[metric].resampled(counts), prod[metric].resampled(counts)
        result.rows.append(MetricRow("candidate", metric, c_point, *_interval(c_boot), n_metric))
        result.rows.append(MetricRow("production", metric, p_point, *_interval(p_boot), n_metric))
        result.rows.append(
            MetricRow("delta", metric, c_point - p_point, *_interval(c_boot - p_boot), n_metric)
        )
    errors = sum(1 for e in candidate.errors if e is not None)
    result.recommendation, result.reason = recommend(result, n, errors, min_examples, max_error_rate)
    return result
