"""Refine Lab: run one query (typed or a guided sample) and compare the local and HF results side by side
with latency against the budget; see the limiter (permits left, cooldown) and recent calls; bulk-run the
sample set for p50/p95 and a verdict.

A refine call is bounded by the budget (< 1 s) whatever the inference server does, so it runs inline;
the bulk run is bounded by samples x budget and shows its progress.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from hfops.config import api_key, secret_status
from hfops.console import demo_mode, operator_errors, plain, settings
from hfops.refine import refine_detailed
from hfops.refine.bank import load_samples
from hfops.refine.lab import explain, history, latency_bars, outcome_figure, run_bulk, summary
from hfops.refine.limits import clear_cooldown, limiter_state
from hfops.refine.result import RefineResult
from hfops.refine.router import warm_up

OWN = "(type your own)"
# Widget and state keys (tests address widgets by these).
K_SAMPLE = "refine_sample"
K_QUERY = "refine_query"
K_FALLBACK = "refine_allow_fallback"
K_RUN = "refine_run"
K_BULK = "refine_bulk"
K_LIFT = "refine_lift_cooldown"
S_OUTCOME = "refine_last_outcome"
S_BULK = "refine_last_bulk"


def show_limits() -> None:
    """Fallback configuration, permits left and any cooldown."""
    cfg = settings()
    st.caption(
        f"HF fallback: HUGGINGFACE_API_KEY {secret_status(api_key())} · model `{cfg.refine.model or cfg.inference.model}` · "
        f"base URL `{cfg.inference.base_url}` · budget {cfg.refine.budget_ms} ms · fallback deadline "
        f"{cfg.refine.fallback_deadline_ms} ms · local results at confidence >= {cfg.refine.local_threshold} skip HF"
    )
    with operator_errors("Reading the limiter"):
        state = limiter_state(cfg)
        left_minute, left_hour, until = st.columns(3)
        left_minute.metric("Left this minute", f"{state['left_minute']} / {state['per_minute']}")
        left_hour.metric("Left this hour", f"{state['left_hour']} / {state['per_hour']}")
        until.metric("Cooldown until", state["cooldown_until"] or "none")
        if state["credits_exhausted"]:
            st.warning(f"HF Inference credits are exhausted (402): the fallback is paused until {state['cooldown_until']}.")
        elif state["cooldown_reason"]:
            st.info(f"Cooldown after a 429 ({state['cooldown_seconds_left']:.0f} s left): local results only.")
        if state["cooldown_reason"] and not demo_mode() and st.button("Lift cooldown now", key=K_LIFT):
            clear_cooldown(cfg.store.path)
            st.rerun()


def pick_sample() -> None:
    """Copy the chosen guided sample into the query box."""
    choice = st.session_state.get(K_SAMPLE)
    if choice and choice != OWN:
        st.session_state[K_QUERY] = choice


def show_result(column: st.delta_generator.DeltaGenerator, title: str, result: RefineResult | None, note: str) -> None:
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
    """The last single run: local and HF side by side, the latency chart and the routed result."""
    outcome = st.session_state.get(S_OUTCOME)
    if outcome is None:
        return
    result = outcome.result
    local_col, hf_col = st.columns(2)
    show_result(local_col, "Local", outcome.local, f"{outcome.local_ms:.0f} ms")
    if result.source == "hf":
        show_result(hf_col, "HF Inference", result, f"{outcome.hf.latency_ms:.0f} ms" if outcome.hf else "")
    else:
        show_result(hf_col, "HF Inference", None, f"Fallback {explain(result)}.")
    budget = "within" if result.within_budget else "OVER"
    st.text(f"Returned: {result.source} result in {result.latency_ms:.0f} ms ({budget} the {result.budget_ms} ms budget)"
            f" · bypass_reason: {result.bypass_reason}")
    st.plotly_chart(outcome_figure(outcome, settings()), key="refine_latency_chart")
    with st.expander("Result JSON"):
        st.json(result.to_dict())


def single_run(samples: list[dict]) -> None:
    """Query input, the run button and its outcome."""
    st.selectbox("Guided sample", [OWN, *(s["query"] for s in samples)], key=K_SAMPLE, on_change=pick_sample)
    query = st.text_area("Query", key=K_QUERY, max_chars=2000, placeholder="e.g. um what is np complete??")
    allow = st.checkbox("Allow the HF fallback", value=True, key=K_FALLBACK)
    if st.button("Refine", type="primary", key=K_RUN):
        with operator_errors("Refine"), st.spinner("Refining..."):
            warm_up(settings())  # first use in this process loads the local model (a few seconds, once)
            st.session_state[S_OUTCOME] = refine_detailed(query or "", settings(), fallback_allowed=allow,
                                                          force_fallback=True, caller="console")
    show_outcome()


def bulk_run(samples: list[dict]) -> None:
    """Run every guided sample through the router; show progress, p50/p95 and the verdict."""
    st.subheader("Bulk run over the guided samples")
    st.caption(f"{len(samples)} samples through the router as configured (the fallback only where the local "
               "result is not confident, within the limits).")
    if st.button("Run the sample set", key=K_BULK, disabled=not samples):
        cfg = settings()
        bar = st.progress(0.0, text="Loading the local model...")

        def progress(done: int, total: int, query: str) -> None:
            bar.progress(done / total, text=f"{done}/{total}: {query}")

        with operator_errors("Bulk run"):
            warm_up(cfg)
            rows = run_bulk([s["query"] for s in samples], cfg, st.session_state.get(K_FALLBACK, True), progress)
            st.session_state[S_BULK] = rows
    rows = st.session_state.get(S_BULK)
    if not rows:
        return
    stats = summary([r["latency_ms"] for r in rows], settings())
    p50, p95, worst, hf_share = st.columns(4)
    p50.metric("p50", f"{stats['p50']:.0f} ms")
    p95.metric("p95", f"{stats['p95']:.0f} ms")
    worst.metric("max", f"{stats['max']:.0f} ms")
    hf_share.metric("answered by HF", f"{sum(r['source'] == 'hf' for r in rows)}/{len(rows)}")
    (st.success if stats["ok"] else st.error)(f"Verdict: {stats['verdict']}")
    st.plotly_chart(latency_bars(["p50", "p95", "max"], [stats["p50"], stats["p95"], stats["max"]], settings(),
                                 "Bulk latency"), key="refine_bulk_chart")
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="refine_bulk_table")


def show_history() -> None:
    """Recent calls from every process (query hashes only)."""
    st.subheader("Recent calls")
    with operator_errors("Reading the call log"):
        recent = history(settings().store.path)
        if recent:
            st.dataframe(pd.DataFrame(recent), hide_index=True, key="refine_history")
        else:
            st.caption("No calls yet.")


st.title("Refine Lab")
samples = load_samples()
limits_box = st.container()  # filled last, so it reflects the run just made
single_run(samples)
bulk_run(samples)
show_history()
with limits_box:
    show_limits()
