"""What the Refine Lab page shows, computed here so the page holds widgets and layout only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import plotly.graph_objects as go

from hfops.config import Settings
from hfops.refine import calllog
from hfops.refine.result import RefineResult
from hfops.refine.router import RefineOutcome, refine

BYPASS_EXPLANATIONS = {
    None: "used",
    "no_key": "not used: HUGGINGFACE_API_KEY is not set",
    "rate_limited": "not used: request limit reached (or the server answered 429)",
    "cooldown": "not used: cooldown after a 429/402 is in force",
    "timeout": "not used: no answer before the fallback deadline (late answers are discarded)",
    "http_error": "not used: the server failed (5xx, refused, other HTTP error)",
    "credits_exhausted": "not used: credits exhausted (402); long cooldown opened",
    "invalid_output": "not used: the model's reply was not the JSON asked for",
    "disabled": "not used: fallback switched off",
}


def explain(result: RefineResult) -> str:
    """One line on whether and why the HF fallback was (not) used."""
    if result.source == "hf":
        return "used"
    if result.bypass_reason is None:
        return "not needed: the local result was confident enough"
    return BYPASS_EXPLANATIONS.get(result.bypass_reason, result.bypass_reason)


def latency_bars(labels: list[str], values: list[float], settings: Settings, title: str) -> go.Figure:
    """Bars of latencies with the fallback deadline and the budget as horizontal lines."""
    deadline, budget = settings.refine.fallback_deadline_ms, settings.refine.budget_ms
    colours = ["#2e7d32" if v <= deadline else "#f9a825" if v <= budget else "#c62828" for v in values]
    figure = go.Figure(go.Bar(x=labels, y=values, marker_color=colours, text=[f"{v:.0f} ms" for v in values],
                              textposition="outside"))
    figure.add_hline(y=deadline, line_dash="dot", line_color="#f9a825", annotation_text=f"{deadline} ms fallback deadline")
    figure.add_hline(y=budget, line_dash="dash", line_color="#c62828", annotation_text=f"{budget} ms budget")
    top = max([budget * 1.15, *(v * 1.15 for v in values)])
    figure.update_layout(title=title, yaxis_title="ms", yaxis_range=[0, top], height=340,
                         margin={"l": 40, "r": 20, "t": 50, "b": 40}, showlegend=False)
    return figure


def outcome_figure(outcome: RefineOutcome, settings: Settings) -> go.Figure:
    """Local work, the HF attempt and the whole call against the 500/800 ms lines."""
    hf_ms = outcome.hf.latency_ms if outcome.hf is not None else 0.0
    return latency_bars(["local", "HF attempt", "end to end"], [outcome.local_ms, hf_ms, outcome.result.latency_ms],
                        settings, "Latency against the budget")


def summary(latencies: list[float], settings: Settings) -> dict[str, Any]:
    """p50/p95/max and the verdict: median <= fallback deadline and p95 <= budget."""
    if not latencies:
        return {"n": 0, "p50": 0.0, "p95": 0.0, "max": 0.0, "ok": True, "verdict": "no calls"}
    values = np.asarray(latencies, dtype=float)
    p50, p95 = float(np.percentile(values, 50)), float(np.percentile(values, 95))
    goal50, goal95 = settings.refine.fallback_deadline_ms, settings.refine.budget_ms
    ok = p50 <= goal50 and p95 <= goal95
    verdict = (f"{'meets' if ok else 'misses'} the goal: p50 {p50:.0f} ms (goal <= {goal50}), "
               f"p95 {p95:.0f} ms (goal <= {goal95})")
    return {"n": len(values), "p50": round(p50, 1), "p95": round(p95, 1), "max": round(float(values.max()), 1),
            "ok": ok, "verdict": verdict}


def run_bulk(queries: list[str], settings: Settings, fallback_allowed: bool,
             progress: Callable[[int, int, str], None] | None = None) -> list[dict[str, Any]]:
    """Refine each query through the router (as configured); one row per query."""
    out = []
    for i, query in enumerate(queries, 1):
        result = refine(query, settings, fallback_allowed=fallback_allowed, caller="console")
        out.append({"query": query, "refined": result.refined, "intent": result.intent,
                    "confidence": result.confidence, "source": result.source,
                    "bypass_reason": result.bypass_reason or "", "latency_ms": result.latency_ms,
                    "within_budget": result.within_budget})
        if progress is not None:
            progress(i, len(queries), query)
    return out


HISTORY_COLUMNS = ["created_at", "caller", "source", "model", "intent", "confidence", "outcome", "bypass_reason",
                   "latency_ms", "hf_latency_ms", "within_budget", "query"]


def history(db_path: str, limit: int = 30) -> list[dict[str, Any]]:
    """Recent calls for display (the query is only ever a hash prefix)."""
    calllog.flush(2.0)
    rows = []
    for row in calllog.recent_calls(db_path, limit):
        shown = {k: row.get(k) for k in HISTORY_COLUMNS if k != "query"}
        shown["within_budget"] = bool(row["within_budget"])
        shown["bypass_reason"] = row["bypass_reason"] or ""
        shown["query"] = f"#{row['query_hash'][:10]} ({row['query_chars']} chars)"
        rows.append(shown)
    return rows
