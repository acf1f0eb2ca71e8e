"""The Grafana dashboard (``docs/observability/grafana-dashboard.json``), generated from the thresholds.

One panel per tile of :data:`hfops.observability.thresholds.DASHBOARD_TILES`: the console's Observability
page tiles in the same order, then the free tier (Hub windows, the month's Inference allowance). A tile
backed by an alert draws the alert's own value expression (same window) and its threshold as a line, so
what the graph shows is what the alert evaluates. The datasource is a template
variable, so the file works both when provisioned from disk and when imported by hand.
"""

from __future__ import annotations

from typing import Any

from hfops.observability.thresholds import (
    ALERT_RULES,
    DASHBOARD_TILES,
    FALLBACK_DEADLINE_SECONDS,
    OPEN_CANDIDATE_STATUSES,
    SCORE_BARS,
    AlertRule,
    check_namespace,
)

UID = "hfops-observability"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"
_REF_IDS = "ABCDEFGHIJ"


def _rule(name: str) -> AlertRule:
    return next(r for r in ALERT_RULES if r.name == name)


def _target(ref: int, expr: str, legend: str, instant: bool = False) -> dict[str, Any]:
    target: dict[str, Any] = {
        "refId": _REF_IDS[ref],
        "datasource": DATASOURCE,
        "expr": expr,
        "legendFormat": legend,
    }
    if instant:
        target.update(instant=True, range=False, format="time_series")
    return target


def _steps(rule: AlertRule | None, extra: tuple[tuple[float, str], ...] = ()) -> dict[str, Any]:
    """Threshold steps: red on the alerting side of ``rule``'s threshold (plus ``extra`` lines)."""
    steps: list[dict[str, Any]]
    if rule is None:
        steps = [{"color": "green", "value": None}]
    elif rule.fires_above:
        steps = [{"color": "green", "value": None}, {"color": "red", "value": rule.threshold}]
    else:
        steps = [{"color": "red", "value": None}, {"color": "green", "value": rule.threshold}]
    for value, color in extra:
        steps.append({"color": color, "value": value})
    steps[1:] = sorted(steps[1:], key=lambda s: s["value"])
    return {"mode": "absolute", "steps": steps}


def _right_axis(ref: str, unit: str, bars: bool = True) -> dict[str, Any]:
    props: list[dict[str, Any]] = [
        {"id": "unit", "value": unit},
        {"id": "custom.axisPlacement", "value": "right"},
    ]
    if bars:
        props.append({"id": "custom.drawStyle", "value": "bars"})
    return {"matcher": {"id": "byFrameRefID", "options": ref}, "properties": props}


def _timeseries(
    tile_index: int,
    targets: list[dict[str, Any]],
    unit: str,
    thresholds: dict[str, Any],
    overrides: list[dict[str, Any]] | None = None,
    minmax: tuple[float, float] | None = None,
    stacked: bool = False,
) -> dict[str, Any]:
    tile = DASHBOARD_TILES[tile_index]
    defaults: dict[str, Any] = {
        "unit": unit,
        "thresholds": thresholds,
        "custom": {
            "thresholdsStyle": {"mode": "line+area" if len(thresholds["steps"]) > 1 else "off"},
            "stacking": {"mode": "normal" if stacked else "none"},
            "fillOpacity": 10,
            "spanNulls": True,
        },
    }
    if minmax:
        defaults["min"], defaults["max"] = minmax
    return {
        **_frame(tile_index),
        "type": "timeseries",
        "title": tile.title,
        "description": tile.description,
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}},
    }


def _frame(tile_index: int) -> dict[str, Any]:
    return {
        "id": tile_index + 1,
        "datasource": DATASOURCE,
        "gridPos": {"h": 9, "w": 12, "x": 12 * (tile_index % 2), "y": 9 * (tile_index // 2)},
    }


def panels(ns: str) -> list[dict[str, Any]]:
    """The dashboard's panels, one per tile."""
    open_statuses = "|".join(OPEN_CANDIDATE_STATUSES)
    candidates = _rule("HfCandidatesNone")
    stale = _rule("ShadowEvalStale")
    latency = _rule("RefineLatencyP95High")
    success = _rule("HfInferenceSuccessLow")
    limited = _rule("HfInferenceRateLimitedHigh")
    datasets = _rule("HfDatasetsEvalSuccessLow")
    sync = _rule("HfSyncStale")
    out = [
        _timeseries(
            0,
            [
                _target(
                    0,
                    f'sum by (pipeline_tag, license) ({ns}_hf_candidates_found{{status=~"{open_statuses}"}})',
                    "{{pipeline_tag}} / {{license}}",
                ),
                _target(1, candidates.value_promql(ns), "open candidates (alert value)"),
            ],
            "short",
            _steps(candidates),
            stacked=False,
        ),
        _timeseries(
            1,
            [
                _target(0, stale.value_promql(ns), "time since the last run ended"),
                _target(
                    1,
                    f"sum by (status) (increase({ns}_shadow_eval_runs_total[1d]))",
                    "{{status}} runs / 24 h",
                ),
                _target(2, _rule("ShadowEvalNeverRan").value_promql(ns), "store age, no run yet"),
            ],
            "s",
            _steps(stale),
            overrides=[_right_axis("B", "short")],
        ),
        _timeseries(
            2,
            [
                _target(0, latency.value_promql(ns), "p95 end to end (alert value)"),
                _target(
                    1,
                    "histogram_quantile(0.95, sum by (le, source) "
                    f"(rate({ns}_refine_latency_seconds_bucket[{RATE}])))",
                    "p95 {{source}}",
                ),
                _target(
                    2,
                    "histogram_quantile(0.95, sum by (le) "
                    f"(rate({ns}_refiner_latency_hf_api_seconds_bucket[{RATE}])))",
                    "p95 HF API wait",
                ),
            ],
            "s",
            _steps(latency, ((FALLBACK_DEADLINE_SECONDS, "orange"),)),
        ),
        _timeseries(
            3,
            [
                _target(0, success.value_promql(ns), "success rate (1 h)"),
                _target(
                    1,
                    f"sum by (outcome) (increase({ns}_hf_inference_requests_total[{success.window}]))",
                    "{{outcome}} / h",
                ),
            ],
            "percentunit",
            _steps(success),
            overrides=[_right_axis("B", "short")],
        ),
        _timeseries(
            4,
            [
                _target(0, limited.value_promql(ns), "rate-limited share (1 h)"),
                _target(
                    1,
                    f"sum by (reason) (increase({ns}_hf_inference_rate_limited_total[{limited.window}]))",
                    "{{reason}} / h",
                ),
            ],
            "percentunit",
            _steps(limited),
            overrides=[_right_axis("B", "short")],
        ),
        _timeseries(
            5,
            [
                _target(0, datasets.value_promql(ns), "{{dataset}} success (24 h)"),
            ],
            "percentunit",
            _steps(datasets),
            minmax=(0, 1),
        ),
        _scores_panel(ns),
        _timeseries(
            7,
            [
                _target(0, sync.value_promql(ns), "time since the last successful sync"),
                _target(1, f"{ns}_hf_sync_last_duration_seconds", "last sync duration"),
                _target(2, f"increase({ns}_hf_sync_errors_total[1d])", "sync errors / 24 h"),
                _target(3, _rule("HfSyncNeverSucceeded").value_promql(ns), "store age, no sync yet"),
            ],
            "s",
            _steps(sync),
            overrides=[_right_axis("B", "s", bars=False), _right_axis("C", "short")],
        ),
        _free_tier_panel(ns),
    ]
    return out


def _free_tier_panel(ns: str) -> dict[str, Any]:
    """Hub windows left (remaining / quota) and the month's Inference use against the allowance."""
    allowance = _rule("HfInferenceAllowanceHigh")
    closed = _rule("HfInferenceClosedForTheMonth")
    index = next(i for i, t in enumerate(DASHBOARD_TILES) if t.key == "free_tier")
    return _timeseries(
        index,
        [
            _target(0, allowance.value_promql(ns), "Inference {{limit}} allowance used"),
            _target(
                1, f"{ns}_hub_ratelimit_remaining / {ns}_hub_ratelimit_quota", "Hub {{resource}} window left"
            ),
            _target(2, closed.value_promql(ns), "Inference closed for the month (402)"),
            _target(3, f"{ns}_hf_inference_used_requests", "Inference requests this month"),
        ],
        "percentunit",
        _steps(allowance, ((closed.threshold, "green"),)),
        minmax=(0, 1),
        overrides=[_right_axis("C", "short", bars=False), _right_axis("D", "short", bars=False)],
    )


def _scores_panel(ns: str) -> dict[str, Any]:
    """Latest primary scores per task and dataset (custom sets included); each bar's threshold is the bar of
    its task's scoring family."""
    rule = next(r for r in ALERT_RULES if r.name == "HfEvalScoreLow")
    targets, overrides = [], []
    for i, bar in enumerate(SCORE_BARS):
        selector = f'task="{bar.task}",metric="{bar.metric}"'
        targets.append(
            _target(
                i,
                f"{ns}_hf_eval_scores{{{selector}}}",
                f"{bar.task} / {{{{dataset}}}} / {bar.metric}: {{{{model}}}}",
                instant=True,
            )
        )
        overrides.append(
            {
                "matcher": {"id": "byFrameRefID", "options": _REF_IDS[i]},
                "properties": [
                    {
                        "id": "thresholds",
                        "value": {
                            "mode": "absolute",
                            "steps": [{"color": "red", "value": None}, {"color": "green", "value": bar.bar}],
                        },
                    }
                ],
            }
        )
    tile = DASHBOARD_TILES[6]
    return {
        **_frame(6),
        "type": "bargauge",
        "title": tile.title,
        "description": tile.description + " Alert HfEvalScoreLow fires for a promoted model "
        f"({rule.for_} below its bar), never for a baseline nobody promoted.",
        "targets": targets,
        "fieldConfig": {
            "defaults": {
                "unit": "percentunit",
                "min": 0,
                "max": 1,
                "decimals": 3,
                "thresholds": {"mode": "absolute", "steps": [{"color": "green", "value": None}]},
            },
            "overrides": overrides,
        },
        "options": {
            "orientation": "horizontal",
            "displayMode": "gradient",
            "showUnfilled": True,
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        },
    }


def dashboard(namespace: str = "sarvanom") -> dict[str, Any]:
    """The dashboard JSON model (provisionable: no ``__inputs``, datasource chosen by variable)."""
    ns = check_namespace(namespace)
    return {
        "uid": UID if ns == "sarvanom" else f"{UID}-{ns}",
        "title": "hfops observability" + ("" if ns == "sarvanom" else f" ({ns})"),
        "description": "Generated by `hfops metrics --dashboard` from lib/hfops/observability/thresholds.py.",
        "tags": ["hfops", ns],
        "timezone": "utc",
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "1m",
        "time": {"from": "now-24h", "to": "now"},
        "annotations": {"list": []},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                    "refresh": 1,
                    "options": [],
                    "regex": "",
                }
            ]
        },
        "panels": panels(ns),
    }
