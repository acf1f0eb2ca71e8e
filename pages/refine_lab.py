"""Refine Lab: run one query (typed or a guided sample) and compare the local and HF results side by side
with latency against the budget; see the limiter (permits left, cooldown) and recent calls; bulk-run the
sample set for p50/p95 and a verdict.

Widgets only; what is shown is computed in :mod:`hfops.refine.lab`. A refine call is bounded by the budget
(< 1 s) whatever the inference server does, so it runs inline; the bulk run is a worker job
(``refine_bulk``) whose progress the page polls.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from hfops.config import api_key, secret_status
from hfops.console import demo_mode, operator_errors, plain, require_settings, settings
from hfops.refine.bank import load_samples
from hfops.refine.lab import (
    BulkView,
    SingleRun,
    bulk_view,
    explain,
    history,
    latency_bars,
    outcome_figure,
    queue_bulk,
    run_single,
    start_warm_up,
)
from hfops.refine.limits import clear_cooldown, limiter_state
from hfops.refine.result import MAX_QUERY_CHARS, RefineResult

OWN = "(type your own)"
# Widget and state keys (tests address widgets by these).
K_SAMPLE = "refine_sample"
K_QUERY = "refine_query"
K_FALLBACK = "refine_allow_fallback"
K_RUN = "refine_run"
K_BULK = "refine_bulk"
K_LIFT = "refine_lift_cooldown"
S_RUN = "refine_last_run"
S_BULK_JOB = "refine_bulk_job"
POLL_SECONDS = 1.0


def show_limits() -> None:
    """Fallback configuration, permits left and any cooldown."""
    cfg = settings()
    st.caption(
        f"HF fallback: HUGGINGFACE_API_KEY {secret_status(api_key())} · "
        f"model `{cfg.refine.model or cfg.inference.model}` · "
        f"base URL `{cfg.inference.base_url}` · budget {cfg.refine.budget_ms} ms · fallback deadline "
        f"{cfg.refine.fallback_deadline_ms} ms · "
        f"local results at confidence >= {cfg.refine.local_threshold} skip HF"
    )
    with operator_errors("Reading the limiter"):
        state = limiter_state(cfg)
        left_minute, left_hour, until = st.columns(3)
        left_minute.metric("Left this minute", f"{state['left_minute']} / {state['per_minute']}")
        left_hour.metric("Left this hour", f"{state['left_hour']} / {state['per_hour']}")
        until.metric("Cooldown until", state["cooldown_until"] or "none")
        if state["credits_exhausted"]:
            st.warning(
                "HF Inference credits are exhausted (402): the fallback is paused until "
                f"{state['cooldown_until']}."
            )
        elif state["cooldown_reason"]:
            st.info(
                f"Cooldown after a 429 ({state['cooldown_seconds_left']:.0f} s left): local results only."
            )
        if state["cooldown_reason"] and not demo_mode() and st.button("Lift cooldown now", key=K_LIFT):
            clear_cooldown(cfg.store.path)
            st.rerun()


def pick_sample() -> None:
    """Copy the chosen guided sample into the query box."""
    choice = st.session_state.get(K_SAMPLE)
    if choice and choice != OWN:
        st.session_state[K_QUERY] = choice


def show_result(
    column: st.delta_generator.DeltaGenerator, title: str, result: RefineResult | None, note: str
) -> None:
    """One side of the comparison (model output is untrusted: plain text only)."""
    column.subheader(title)
    if result is None:
        column.info(note)
        return
    column.text(f"Refined: {result.refined}")
    column.text(f"Intent: {result.intent} · confidence {result.confidence:.2f}")
    for i, suggestion in enumerate(result.suggestions, 1):
        column.text(f"Try asking {i}: {suggestion}")
    if not result.suggestions:
        column.caption("No suggestions.")
    column.caption(f"Model: {plain(result.model)} · {note}")


def show_outcome() -> None:
    """The last single run in one place: its error, or local and HF side by side with the latency chart."""
    run: SingleRun | None = st.session_state.get(S_RUN)
    if run is None:
        return
    if run.notice:
        st.warning(run.notice)
    if run.error is not None or run.outcome is None:
        st.error(f"Refine: {run.error}")
        return
    outcome = run.outcome
    result = outcome.result
    local_col, hf_col = st.columns(2)
    show_result(local_col, "Local", outcome.local, f"{outcome.local_ms:.0f} ms")
    if result.source == "hf":
        show_result(hf_col, "HF Inference", result, f"{outcome.hf.latency_ms:.0f} ms" if outcome.hf else "")
    else:
        show_result(hf_col, "HF Inference", None, f"Fallback {explain(result)}.")
    budget = "within" if result.within_budget else "OVER"
    st.text(
        f"Returned: {result.source} result in {result.latency_ms:.0f} ms "
        f"({budget} the {result.budget_ms} ms budget)"
        f" · bypass_reason: {result.bypass_reason}"
    )
    st.altair_chart(outcome_figure(outcome, settings()), key="refine_latency_chart")
    with st.expander("Result JSON"):
        st.json(result.to_dict())


def single_run(samples: list[dict]) -> None:
    """Query input, the run button and its outcome."""
    st.selectbox("Guided sample", [OWN, *(s["query"] for s in samples)], key=K_SAMPLE, on_change=pick_sample)
    query = st.text_area(
        "Query",
        key=K_QUERY,
        placeholder="e.g. um what is np complete??",
        help=f"At most {MAX_QUERY_CHARS:,} characters are refined; a longer paste is cut (and "
        "the page says so).",
    )
    allow = st.checkbox("Allow the HF fallback", value=True, key=K_FALLBACK)
    if st.button("Refine", type="primary", key=K_RUN):
        with st.spinner("Refining..."):
            st.session_state[S_RUN] = run_single(query, settings(), allow)
    show_outcome()


def bulk_progress(view: BulkView) -> None:
    """A queued or running bulk job; re-runs the page on a timer until it ends."""
    current = bulk_view(settings().store.path, view.job_id)
    if current is None:
        return
    if current.active:
        st.progress(current.fraction, text=f"Bulk run (job {current.job_id}): {current.message}")
    else:
        st.rerun(scope="app")


def bulk_run(samples: list[dict]) -> None:
    """Run every guided sample through the router in the worker; show progress, p50/p95 and the verdict."""
    st.subheader("Bulk run over the guided samples")
    st.caption(
        f"{len(samples)} samples through the router as configured (the fallback only where the local "
        "result is not confident, within the limits), as a worker job."
    )
    cfg = settings()
    if st.button("Run the sample set", key=K_BULK, disabled=not samples):
        with operator_errors("Bulk run"):
            st.session_state[S_BULK_JOB] = queue_bulk(
                cfg, [s["query"] for s in samples], st.session_state.get(K_FALLBACK, True)
            )
    view = bulk_view(cfg.store.path, st.session_state.get(S_BULK_JOB))
    if view is None:
        return
    if view.active:
        st.fragment(bulk_progress, run_every=POLL_SECONDS)(view)
        return
    if view.error:
        st.error(f"Bulk run (job {view.job_id}) failed: {plain(view.error)}")
        return
    if not view.rows or not view.stats:
        st.info(f"Bulk run (job {view.job_id}) {view.status} without results.")
        return
    stats = view.stats
    p50, p95, worst, hf_share = st.columns(4)
    p50.metric("p50", f"{stats['p50']} ms")
    p95.metric("p95", f"{stats['p95']} ms")
    worst.metric("max", f"{stats['max']} ms")
    hf_share.metric("answered by HF", f"{sum(r['source'] == 'hf' for r in view.rows)}/{len(view.rows)}")
    (st.success if stats["ok"] else st.error)(f"Verdict: {stats['verdict']}")
    if view.status == "cancelled":
        st.caption(f"Cancelled after {len(view.rows)} of {view.total} samples.")
    st.altair_chart(
        latency_bars(["p50", "p95", "max"], [stats["p50"], stats["p95"], stats["max"]], cfg, "Bulk latency"),
        key="refine_bulk_chart",
    )
    st.dataframe(pd.DataFrame(view.rows), hide_index=True, key="refine_bulk_table")


def show_history() -> None:
    """Recent calls from every process (query hashes only)."""
    st.subheader("Recent calls")
    with operator_errors("Reading the call log"):
        recent = history(settings().store.path)
        if recent:
            st.dataframe(pd.DataFrame(recent), hide_index=True, key="refine_history")
        else:
            st.caption("No calls yet.")


require_settings()  # a configuration that does not load: its explanation instead of the page
st.title("Refine Lab")
start_warm_up(settings())
samples = load_samples()
limits_box = st.container()  # filled last, so it reflects the run just made
single_run(samples)
bulk_run(samples)
show_history()
with limits_box:
    show_limits()
