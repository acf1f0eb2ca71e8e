"""What the Refine Lab page shows, computed here so the page holds widgets and layout only."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from hfops.config import Settings
from hfops.errors import HfopsError
from hfops.net import one_line
from hfops.refine import calllog
from hfops.refine.result import MAX_QUERY_CHARS, RefineResult
from hfops.refine.router import RefineOutcome, refine, refine_detailed, warm_up

if TYPE_CHECKING:
    import altair as alt

    from hfops.jobs import Job, JobContext

BULK_KIND = "refine_bulk"  # job kind of the bulk run (the worker's table maps it to refine_bulk_job)

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
    "budget_exhausted": "not used: this month's Inference allowance is spent ([inference] monthly_*)",
}


def explain(result: RefineResult) -> str:
    """One line on whether and why the HF fallback was (not) used."""
    if result.source == "hf":
        return "used"
    if result.bypass_reason is None:
        return "not needed: the local result was confident enough"
    return BYPASS_EXPLANATIONS.get(result.bypass_reason, result.bypass_reason)


def latency_bars(labels: list[str], values: list[float], settings: Settings, title: str) -> alt.TopLevelMixin:
    """Bars of latencies (labelled in ms) with the fallback deadline and the budget as horizontal lines."""
    import altair as alt  # the page's chart only: the bulk job and the API never draw
    import pandas as pd

    from hfops import charting

    deadline, budget = settings.refine.fallback_deadline_ms, settings.refine.budget_ms
    colours = ["#2e7d32" if v <= deadline else "#f9a825" if v <= budget else "#c62828" for v in values]
    data = pd.DataFrame(
        {"part": labels, "ms": values, "colour": colours, "text": [f"{v:.0f} ms" for v in values]}
    )
    top = max([budget * 1.15, *(v * 1.15 for v in values)])
    base = alt.Chart(data).encode(
        x=alt.X("part:N", sort=labels, title=None, axis=alt.Axis(labelAngle=0)),
        y=alt.Y("ms:Q", title="ms", scale=alt.Scale(domain=[0, top])),
    )
    bars = base.mark_bar().encode(
        color=alt.Color("colour:N", scale=None, legend=None), tooltip=["part", "text"]
    )
    return alt.layer(
        bars,
        base.mark_text(dy=-8, fontSize=12).encode(text="text:N"),
        *charting.threshold(deadline, f"{deadline} ms fallback deadline", color="#f9a825"),
        *charting.threshold(budget, f"{budget} ms budget", color="#c62828"),
    ).properties(title=title, height=340)


def outcome_figure(outcome: RefineOutcome, settings: Settings) -> alt.TopLevelMixin:
    """Local work, the HF attempt and the whole call against the 500/800 ms lines."""
    hf_ms = outcome.hf.latency_ms if outcome.hf is not None else 0.0
    return latency_bars(
        ["local", "HF attempt", "end to end"],
        [outcome.local_ms, hf_ms, outcome.result.latency_ms],
        settings,
        "Latency against the budget",
    )


def summary(latencies: list[float], settings: Settings) -> dict[str, Any]:
    """p50/p95/max in whole milliseconds, computed once, and the verdict (median <= fallback deadline and
    p95 <= budget) judged and worded from those same numbers: the tiles, the chart and the verdict agree."""
    if not latencies:
        return {"n": 0, "p50": 0, "p95": 0, "max": 0, "ok": True, "verdict": "no calls"}
    values = np.asarray(latencies, dtype=float)
    p50, p95 = round(float(np.percentile(values, 50))), round(float(np.percentile(values, 95)))
    worst = round(float(values.max()))
    goal50, goal95 = settings.refine.fallback_deadline_ms, settings.refine.budget_ms
    ok = p50 <= goal50 and p95 <= goal95
    verdict = (
        f"{'meets' if ok else 'misses'} the goal: p50 {p50} ms (goal <= {goal50}), "
        f"p95 {p95} ms (goal <= {goal95})"
    )
    return {"n": len(values), "p50": p50, "p95": p95, "max": worst, "ok": ok, "verdict": verdict}


def run_bulk(
    queries: list[str],
    settings: Settings,
    fallback_allowed: bool,
    progress: Callable[[int, int, str], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    caller: str = "console",
) -> list[dict[str, Any]]:
    """Refine each query through the router (as configured); one row per query (fewer if cancelled)."""
    out = []
    for i, query in enumerate(queries, 1):
        if cancelled is not None and cancelled():
            break
        result = refine(query, settings, fallback_allowed=fallback_allowed, caller=caller)
        out.append(
            {
                "query": query,
                "refined": result.refined,
                "intent": result.intent,
                "confidence": result.confidence,
                "source": result.source,
                "bypass_reason": result.bypass_reason or "",
                "latency_ms": result.latency_ms,
                "within_budget": result.within_budget,
            }
        )
        if progress is not None:
            progress(i, len(queries), query)
    return out


# --- single run ------------------------------------------------------------------------------------------


@dataclass
class SingleRun:
    """What one click on "Refine" produced: an outcome or an error (shown in its place), and a notice."""

    outcome: RefineOutcome | None = None
    error: str | None = None
    notice: str | None = None  # e.g. the query was cut to 2,000 characters


def prepare_query(text: str | None) -> tuple[str, str | None]:
    """The query to refine and a notice when it had to be cut to :data:`MAX_QUERY_CHARS` characters."""
    text = text or ""
    if len(text) <= MAX_QUERY_CHARS:
        return text, None
    return text[:MAX_QUERY_CHARS], (
        f"The query had {len(text):,} characters: only the first {MAX_QUERY_CHARS:,} were refined."
    )


def start_warm_up(settings: Settings) -> None:
    """Start loading the local model in the background when the page opens (the first run then waits less)."""
    from hfops.refine.local import get_local_refiner

    get_local_refiner().load_in_background(settings.refine.torch_threads)


def run_single(text: str | None, settings: Settings, fallback_allowed: bool) -> SingleRun:
    """Refine one query for the page (local and HF side by side); a bad query is an error, not
    an exception."""
    query, notice = prepare_query(text)
    try:
        warm_up(settings)  # first use in this process loads the local model (a few seconds, once)
        outcome = refine_detailed(
            query, settings, fallback_allowed=fallback_allowed, force_fallback=True, caller="console"
        )
    except HfopsError as exc:
        return SingleRun(error=one_line(exc), notice=notice)
    return SingleRun(outcome=outcome, notice=notice)


# --- bulk run as a worker job ----------------------------------------------------------------------------


def refine_bulk_job(ctx: JobContext) -> dict[str, Any]:
    """Job ``refine_bulk``: ``params = {"queries": [...], "fallback": bool}`` through the router, with
    progress per query; stops early (a partial result) when cancelled. Result: ``rows`` and ``summary``."""
    queries = [str(q) for q in ctx.params.get("queries") or []]
    total = len(queries)
    ctx.progress(0, total, "loading the local refiner", force=True)
    warm_up(ctx.settings)

    def progress(done: int, count: int, query: str) -> None:
        ctx.progress(done, count, f"{done}/{count}: {one_line(query, 80)}", force=done == count)

    rows = run_bulk(
        queries,
        ctx.settings,
        bool(ctx.params.get("fallback", True)),
        progress,
        ctx.cancelled,
        caller="console",
    )
    return {"rows": rows, "summary": summary([r["latency_ms"] for r in rows], ctx.settings)}


def queue_bulk(settings: Settings, queries: list[str], fallback_allowed: bool) -> int:
    """Enqueue a bulk run of ``queries`` for the worker; returns the job id."""
    from hfops import jobs

    return jobs.enqueue(
        settings.store.path, BULK_KIND, {"queries": queries, "fallback": fallback_allowed}, settings
    )


@dataclass
class BulkView:
    """What the page shows of a bulk job: its state and progress, then its rows and summary."""

    job_id: int
    active: bool
    status: str
    done: int
    total: int
    message: str
    rows: list[dict[str, Any]]
    stats: dict[str, Any] | None
    error: str | None

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0


def bulk_view(db_path: str, job_id: int | None = None) -> BulkView | None:
    """Job ``job_id`` (default: the latest bulk job) as a :class:`BulkView`; None when there is none."""
    from hfops import jobs
    from hfops.store import get_db

    db = get_db(db_path)
    job: Job | None = (
        jobs.get_job(db, job_id) if job_id else next(iter(jobs.list_jobs(db, BULK_KIND, 1)), None)
    )
    if job is None:
        return None
    result = job.result or {}
    message = job.message or ("waiting for the worker" if job.status == "queued" else job.status)
    return BulkView(
        job.id,
        job.active,
        job.status,
        job.done or 0,
        job.total or len(job.params.get("queries", [])),
        message,
        list(result.get("rows") or []),
        result.get("summary"),
        job.error,
    )


HISTORY_COLUMNS = [
    "created_at",
    "caller",
    "source",
    "model",
    "intent",
    "confidence",
    "outcome",
    "bypass_reason",
    "latency_ms",
    "hf_latency_ms",
    "within_budget",
    "query",
]


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
