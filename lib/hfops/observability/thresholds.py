"""The one source of truth for alert thresholds, histogram buckets and tiles.

``docs/observability/alerts.yml`` is generated from :data:`ALERT_RULES` (``hfops metrics --rules``; a test
checks the committed file is what this module generates), the Grafana dashboard draws the same thresholds
as lines, and the Observability page evaluates the same rules on the store
(:func:`hfops.observability.series.alert_states`). Change a threshold here, then regenerate the files.

Datasets and score bars come from the task table (:mod:`hfops.evals.tasks`): a score bar belongs to a
task's scoring family (its primary metric), so a custom eval set of that task is covered by the same rule.
:func:`render` fills a rule's summary or description for concrete labels and a value, the way Prometheus
renders its templates, so the page never shows ``{{ $labels.dataset }}``.
"""

from __future__ import annotations

import math
import operator
import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from hfops.evals import tasks

# Histogram buckets (upper bounds, in milliseconds as stored; exported in seconds). Dense around the
# refine budget: the 500 ms fallback deadline and the 800 ms p95 budget are bucket bounds, so a p95
# above 0.8 s is measured exactly, not interpolated across the line.
LATENCY_BUCKETS_MS: tuple[int, ...] = (
    5,
    10,
    20,
    50,
    100,
    200,
    300,
    400,
    500,
    600,
    700,
    800,
    900,
    1000,
    1500,
    2500,
    5000,
)
FALLBACK_DEADLINE_SECONDS = 0.5
REFINE_P95_BUDGET_SECONDS = 0.8
EVAL_STALE_SECONDS = 86400  # no shadow eval run for 24 h
SYNC_STALE_SECONDS = 172800  # no successful sync for 48 h (twice [hub] full_sync_hours)
ALLOWANCE_ALERT_RATIO = 0.8  # share of the monthly Inference allowance used that deserves a warning

# Candidate statuses that still count as "found and waiting for (or in) evaluation".
OPEN_CANDIDATE_STATUSES: tuple[str, ...] = ("candidate", "evaluating", "shadow")
# Outcomes of a request sent to HF Inference (refine_calls.outcome when hf_requested = 1).
INFERENCE_OUTCOMES: tuple[str, ...] = (
    "ok",
    "timeout",
    "rate_limited",
    "credits_exhausted",
    "http_error",
    "invalid_output",
)
# Why a wanted HF request was rate limited: the server said 429, our shared limiter had no permit,
# or a cooldown (opened by a 429 / 402) was active.
RATE_LIMIT_REASONS: tuple[str, ...] = ("hub_429", "limiter", "cooldown")
EVAL_RUN_END_STATUSES: tuple[str, ...] = ("succeeded", "failed")
# The built-in datasets of the task table; custom eval sets are added from the store (:func:`eval_datasets`).
EVAL_DATASETS: tuple[str, ...] = tasks.DATASET_NAMES
SYNC_END_STATUSES: tuple[str, ...] = ("succeeded", "partial", "failed", "interrupted")
# hf_production_model{role}: a promoted model, or the task's baseline when nobody promoted one.
PRODUCTION_ROLES: tuple[str, ...] = ("promoted", "baseline")


def eval_datasets(custom: Iterable[str] = ()) -> tuple[str, ...]:
    """The built-in datasets followed by the custom eval sets ``custom``.

    No duplicates; table order first.
    """
    return tuple(dict.fromkeys((*EVAL_DATASETS, *custom)))


@dataclass(frozen=True)
class ScoreBar:
    """The lowest acceptable primary score (0-1) of the promoted model of ``task`` on every dataset scored
    by ``scorer`` (built-in or custom)."""

    task: str
    scorer: str
    metric: str  # the scorer's primary metric
    bar: float
    why: str


# The seed's "average eval score < 0.7" made per scoring family: scores are normalised to 0-1 (QA metrics
# are stored 0-100), only the primary metric counts, and each metric gets a bar it can reach.
SCORER_BARS: dict[str, tuple[float, str]] = {
    "retrieval": (0.70, "nDCG@10 is already 0-1; the seed's 0.7 applies unchanged"),
    "squad_v2": (
        0.60,
        "SQuAD v2 F1 (0-100 -> 0-1); a third of the questions are unanswerable, so 0.6 is a solid "
        "bar for small instruct models where 0.7 would page on every healthy model",
    ),
    "rouge_l": (
        0.40,
        "ROUGE-L against free-form human answers rarely exceeds 0.5 even for good answers; 0.4 "
        "separates useful answers from noise",
    ),
}


def _task_scorers() -> list[tuple[str, str]]:
    """Every (task, scorer) the task table uses: its datasets' scorers, then the default for custom sets."""
    found: dict[tuple[str, str], None] = {}
    for task, dataset in tasks.task_dataset_pairs():
        found[(task, tasks.eval_spec(task, dataset).spec.scorer)] = None
    for name, spec in tasks.TASK_SPECS.items():
        if spec.default_eval is not None:
            found[(name, spec.default_eval.scorer)] = None
    return list(found)


SCORE_BARS: tuple[ScoreBar, ...] = tuple(
    ScoreBar(task, scorer, tasks.SCORERS[scorer].primary, *SCORER_BARS[scorer])
    for task, scorer in _task_scorers()
)


def score_bar(task: str, dataset: str) -> ScoreBar:
    """The bar of ``task`` on ``dataset`` (a custom set gets its task's default scorer's bar)."""
    scorer = tasks.eval_spec(task, dataset).spec.scorer
    return next(b for b in SCORE_BARS if b.task == task and b.scorer == scorer)


def score_pairs(custom_sets: Iterable[tuple[str, str]] = ()) -> list[tuple[str, str]]:
    """Every (task, dataset) with a score bar: the table's pairs, then the custom sets' ``(task, name)``."""
    return list(dict.fromkeys((*tasks.task_dataset_pairs(), *custom_sets)))


@dataclass(frozen=True)
class Tile:
    """One dashboard tile (same key, title and order in Grafana and on the page)."""

    key: str
    title: str
    description: str


# The tiles the Observability page draws from the store alone, in the Grafana dashboard's order.
TILES: tuple[Tile, ...] = (
    Tile(
        "candidates",
        "HF candidates found",
        "Candidates in the registry by pipeline tag and licence (open = candidate, evaluating, shadow).",
    ),
    Tile(
        "eval_runs",
        "Shadow eval runs",
        "Finished shadow evaluation runs by status, and time since the last one.",
    ),
    Tile(
        "refine_latency",
        "Refiner latency p95 vs 800 ms",
        "End-to-end refine latency p95 (all calls, by source) and the HF API wait, against the 500 ms "
        "fallback deadline and the 800 ms budget.",
    ),
    Tile(
        "inference_success",
        "Inference success rate",
        "Share of HF Inference requests that answered usefully (ok).",
    ),
    Tile(
        "rate_limited",
        "Rate-limited share",
        "Share of wanted HF Inference requests refused by a 429, the shared limiter or a cooldown.",
    ),
    Tile(
        "datasets_eval", "Datasets eval success", "Share of finished eval runs that succeeded, per dataset."
    ),
    Tile(
        "eval_scores",
        "Eval scores",
        "Latest primary score (0-1) of every evaluated model per task and dataset; the bar applies to the "
        "promoted model of the task.",
    ),
    Tile(
        "sync_freshness",
        "Sync freshness",
        "Time since the last successful Hub sync, its duration and errors.",
    ),
)
# The free-tier ledger's tile: it needs the settings (the allowance), so the page draws it from
# :func:`hfops.ledger.status.panel` (the Status page shows the same figures).
FREE_TIER_TILE = Tile(
    "free_tier",
    "Free tier",
    "Requests left in the Hub's rate-limit windows, and this month's HF Inference use against the allowance.",
)
DASHBOARD_TILES: tuple[Tile, ...] = (*TILES, FREE_TIER_TILE)  # Grafana's panels, in order
TILE_KEYS = tuple(t.key for t in TILES)

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


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
    op: str  # "<", "<=", ">" or ">=": the alert condition is ``value op threshold``
    threshold: float
    query: str
    summary: str
    description: str
    window: str = ""  # PromQL range of the rate/increase, "" for conditions on gauges
    for_: str = "15m"
    severity: str = "warning"
    unit: str = "ratio"  # ratio | seconds | count | score | flag
    labels: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ValueError(f"alert {self.name}: unknown comparison {self.op!r} (use {', '.join(_OPS)})")

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
        return _OPS[self.op](value, self.threshold)

    @property
    def fires_above(self) -> bool:
        """Whether the alerting side is above the threshold (``>``, ``>=``)."""
        return self.op.startswith(">")

    @property
    def window_seconds(self) -> float:
        return duration_seconds(self.window) if self.window else 0.0

    @property
    def key(self) -> str:
        """Unique per rule (the score rule exists once per task and scoring family)."""
        extra = "/".join(self.labels.values())
        return f"{self.name}[{extra}]" if extra else self.name

    def annotations(
        self, labels: Mapping[str, str] | None = None, value: float | None = None
    ) -> dict[str, str]:
        """Summary and description rendered for ``labels`` (the rule's own labels are added) and ``value``."""
        merged = {**self.labels, **(labels or {})}
        return {
            "summary": render(self.summary, merged, value),
            "description": render(self.description, merged, value),
        }


def _number(value: float) -> str:
    return repr(int(value)) if float(value).is_integer() else repr(float(value))


def check_namespace(namespace: str) -> str:
    """``namespace`` if it can prefix Prometheus metric names, else a ConfigError."""
    from hfops.config import ConfigError

    if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", namespace or ""):
        raise ConfigError(
            f"[metrics] namespace: {namespace!r} is not a valid Prometheus name prefix "
            "(letters, digits, underscores; not starting with a digit)"
        )
    return namespace


def duration_seconds(text: str) -> float:
    """A Prometheus duration such as ``15m``, ``1h``, ``1d`` in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return float(sum(int(n) * units[u] for n, u in parts))


# --- templates ---------------------------------------------------------------------------------------------

NO_VALUE = "n/a"  # what ``$value`` renders as when the page has no value (Prometheus would not fire)


def _go_g(value: float, suffix: str = "") -> str:
    """Go's ``%.4g`` (NaN and infinities spelled as Go spells them)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:.4g}{suffix}"


def humanize(value: float) -> str:
    """Prometheus' ``humanize``: 4 significant digits with an SI prefix (``1.5k``, ``250m``)."""
    if value == 0 or math.isnan(value) or math.isinf(value):
        return _go_g(value)
    if abs(value) >= 1:
        prefix = ""
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(value) < 1000:
                break
            prefix, value = p, value / 1000
        return _go_g(value, prefix)
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(value) >= 1:
            break
        prefix, value = p, value * 1000
    return _go_g(value, prefix)


def humanize_duration(value: float) -> str:
    """Prometheus' ``humanizeDuration``: ``1d 2h 0m 0s``, ``42s``, ``895ms``."""
    if math.isnan(value) or math.isinf(value):
        return _go_g(value)
    if value == 0:
        return "0s"
    if abs(value) >= 1:
        sign = "-" if value < 0 else ""
        value = abs(value)
        whole = int(value)
        seconds, minutes, hours, days = whole % 60, (whole // 60) % 60, (whole // 3600) % 24, whole // 86400
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{value:.4g}s"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(value) >= 1:
            break
        prefix, value = p, value * 1000
    return f"{value:.4g}{prefix}s"


def humanize_percentage(value: float) -> str:
    """Prometheus' ``humanizePercentage``: ``0.8`` -> ``80%``."""
    return _go_g(value * 100) + "%"


_FUNCTIONS: dict[str, Callable[[float], str]] = {
    "humanize": humanize,
    "humanizeDuration": humanize_duration,
    "humanizePercentage": humanize_percentage,
}


def _printf(fmt: str, value: Any) -> str:
    if isinstance(value, str):
        return fmt.replace("%v", "%s") % value
    return fmt.replace("%v", "%g") % value


def _evaluate(expr: str, labels: Mapping[str, str], value: float | None) -> str:
    """One ``{{ ... }}`` action: ``$value`` / ``$labels.NAME`` piped through the functions our rules use."""
    stages = [s.strip() for s in expr.split("|")]
    head = stages[0]
    current: Any
    if head in ("$value", ".Value"):
        current = value
    elif head.startswith(("$labels.", ".Labels.")):
        current = labels.get(head.split(".", 2)[-1] if head.startswith(".") else head[len("$labels.") :], "")
    else:
        raise ValueError(f"unsupported template value {head!r}")
    for stage in stages[1:]:
        words = shlex.split(stage)
        if not words:
            raise ValueError(f"empty template stage in {expr!r}")
        if current is None:  # no value: nothing to format
            return NO_VALUE
        if words[0] == "printf" and len(words) == 2:
            current = _printf(words[1], current)
        elif words[0] in _FUNCTIONS and len(words) == 1:
            current = _FUNCTIONS[words[0]](float(current))
        elif words[0] in ("toUpper", "toLower", "title") and len(words) == 1:
            current = {"toUpper": str.upper, "toLower": str.lower, "title": str.title}[words[0]](str(current))
        else:
            raise ValueError(f"unsupported template function {stage!r}")
    if current is None:
        return NO_VALUE
    return current if isinstance(current, str) else _go_g(float(current))


def render(template: str, labels: Mapping[str, str] | None = None, value: float | None = None) -> str:
    """A rule's summary or description with ``{{ $labels.X }}`` and ``{{ $value | fn }}`` filled in, as
    Prometheus renders them when the alert fires (``value`` None renders as ``n/a``)."""
    return re.sub(r"{{-?\s*(.*?)\s*-?}}", lambda m: _evaluate(m.group(1), labels or {}, value), template)


# --- the rules ---------------------------------------------------------------------------------------------


def _score_rule(bar: ScoreBar) -> AlertRule:
    return AlertRule(
        name="HfEvalScoreLow",
        tile="eval_scores",
        measure="production_score",
        op="<",
        threshold=bar.bar,
        query=(
            'avg by (task, dataset, metric) ({ns}_hf_eval_scores{{task="'
            + bar.task
            + '",metric="'
            + bar.metric
            + '"}} * on (model, task) group_left () {ns}_hf_production_model{{role="promoted"}})'
        ),
        summary=f"The promoted {bar.task} model scores below {bar.bar:g} {bar.metric} on "
        + "{{ $labels.dataset }}",
        description=(
            f"Latest {bar.metric} (0-1) of the promoted {bar.task} model on "
            '{{ $labels.dataset }} is {{ $value | printf "%.3f" }}, below the bar of '
            + f"{bar.bar:g}. {bar.why}."
        ),
        for_="30m",
        unit="score",
        labels={"task": bar.task, "metric": bar.metric},
    )


def _never_rule(
    name: str, tile: str, measure: str, threshold: float, last: str, what: str, hint: str, after: str
) -> AlertRule:
    """ "Nothing has happened yet" as its own rule: quiet on a young store, firing once the store is older
    than ``threshold`` with still nothing (``last`` is 0 until the first time)."""
    return AlertRule(
        name=name,
        tile=tile,
        measure=measure,
        op=">",
        threshold=threshold,
        query=f"(time() - max({{ns}}_store_created_timestamp_seconds) unless on () max({{ns}}_{last} > 0))",
        summary=f"No {what} yet, more than {after} after the store was created",
        description="The store was created {{ $value | humanizeDuration }} ago "
        f"and no {what} has happened yet. {hint}",
        severity="info",
        unit="seconds",
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
        threshold=EVAL_STALE_SECONDS,
        # "> 0": no sample before the first run ever ended (that state is ShadowEvalNeverRan's)
        query="time() - max({ns}_shadow_eval_last_run_timestamp_seconds > 0)",
        summary="No shadow eval run finished in the last 24 h",
        description="The last shadow eval run ended {{ $value | humanizeDuration }} ago. "
        "Is the worker running the nightly eval job?",
        unit="seconds",
    ),
    _never_rule(
        "ShadowEvalNeverRan",
        "eval_runs",
        "eval_never_ran",
        EVAL_STALE_SECONDS,
        "shadow_eval_last_run_timestamp_seconds",
        "shadow eval run",
        "Start one from the Evals page or with `hfops eval`, and keep the worker running for the "
        "nightly eval job.",
        "24 h",
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
        threshold=SYNC_STALE_SECONDS,
        query="time() - max({ns}_hf_sync_last_success_timestamp_seconds > 0)",
        summary="No successful Hub sync in 48 h",
        description="The last successful sync finished {{ $value | humanizeDuration }} ago; "
        "48 h is twice the full-sync period ([hub] full_sync_hours).",
        unit="seconds",
    ),
    _never_rule(
        "HfSyncNeverSucceeded",
        "sync_freshness",
        "sync_never_succeeded",
        SYNC_STALE_SECONDS,
        "hf_sync_last_success_timestamp_seconds",
        "successful Hub sync",
        "Run `hfops sync` (or load a snapshot) and check the worker's sync schedule.",
        "48 h",
    ),
    AlertRule(
        name="HfInferenceAllowanceHigh",
        tile="free_tier",
        measure="allowance_used",
        op=">=",
        threshold=ALLOWANCE_ALERT_RATIO,
        query="max by (limit) ({ns}_hf_inference_allowance_used_ratio)",
        summary="80 % of the monthly HF Inference allowance used",
        description="{{ $value | humanizePercentage }} of this month's HF Inference {{ $labels.limit }} "
        "allowance is used: evals stop at the refine reserve, query refinement at the allowance.",
        for_="5m",
    ),
    AlertRule(
        name="HfInferenceClosedForTheMonth",
        tile="free_tier",
        measure="inference_closed",
        op=">",
        threshold=0,
        query="max({ns}_hf_inference_month_closed)",
        summary="HF Inference closed for the rest of the month (402, credits exhausted)",
        description="The Inference API answered 402; the refine fallback and Inference-backed evals are off "
        "until the month rolls over or an operator reopens it.",
        for_="1m",
        severity="critical",
        unit="flag",
    ),
)


def rule_group(namespace: str) -> dict[str, Any]:
    """The Prometheus rule file content (one group) for metrics named ``<namespace>_...``."""
    check_namespace(namespace)
    rules = []
    for rule in ALERT_RULES:
        rules.append(
            {
                "alert": rule.name,
                "expr": rule.promql(namespace),
                "for": rule.for_,
                "labels": {"severity": rule.severity, "tile": rule.tile, **rule.labels},
                "annotations": {"summary": rule.summary, "description": rule.description},
            }
        )
    return {"groups": [{"name": f"{namespace}-hfops", "rules": rules}]}


def rules_yaml(namespace: str) -> str:
    """``alerts.yml`` text (what ``hfops metrics --rules`` prints)."""
    header = (
        "# Prometheus alerting rules for hfops, generated by `hfops metrics --rules` from\n"
        "# lib/hfops/observability/thresholds.py (edit the thresholds there, then regenerate).\n"
    )
    return header + yaml.safe_dump(rule_group(namespace), sort_keys=False, width=1000, allow_unicode=True)


def tile(key: str) -> Tile:
    """The tile with ``key`` (the free-tier tile included)."""
    return next(t for t in DASHBOARD_TILES if t.key == key)


def rules_for_tile(key: str) -> list[AlertRule]:
    """The alert rules drawn on tile ``key``."""
    return [r for r in ALERT_RULES if r.tile == key]


def rule(name: str, **labels: str) -> AlertRule:
    """The rule ``name`` (with these rule labels, for the score rules)."""
    return next(
        r for r in ALERT_RULES if r.name == name and all(r.labels.get(k) == v for k, v in labels.items())
    )
