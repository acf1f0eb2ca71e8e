"""Status: the store, candidate counts, the last sync run, secrets (set / not set only), endpoints in use,
"Sync now" (enqueues a worker job) and recent jobs with their progress or error.

The page never runs a sync itself: it enqueues a job for the worker and polls the jobs table.
Widgets and layout only: the data comes from :mod:`hfops.views.status`.
"""

from __future__ import annotations

import streamlit as st

from hfops.console import db, demo_mode, operator_errors, plain, require_settings, settings
from hfops.views import status as view

POLL_SECONDS = 2.0
# Widget keys (tests address widgets by these).
K_SOURCE = "status_sync_source"
K_SYNC = "status_sync_now"
K_REFRESH = "status_refresh"


def show_settings() -> None:
    """Store path, endpoints and secret presence (never the secret itself)."""
    st.subheader("Configuration in use")
    for line in view.settings_lines(settings()):
        st.text(line)


def show_counts() -> None:
    """Number of candidates in each status."""
    st.subheader("Candidates by status")
    counts = view.counts(db())
    for column, (status, n) in zip(st.columns(len(counts)), counts.items(), strict=True):
        column.metric(status, f"{n:,}")


def show_last_sync() -> None:
    """Counts, skip reasons, errors, duration and back-off of the most recent sync run."""
    st.subheader("Last sync")
    run = view.last_sync(db())
    if run is None:
        st.info("No sync has run yet.")
        return
    for line in run.lines:
        st.text(line)
    st.dataframe(run.counts, hide_index=True, key="status_run_counts")
    if run.skip_reasons is not None:
        st.markdown("**Skipped records by reason**")
        st.dataframe(run.skip_reasons, hide_index=True, key="status_skip_reasons")
    if run.errors is not None:
        st.markdown(f"**Errors ({len(run.errors)})**")
        st.dataframe(run.errors, hide_index=True, key="status_errors")
    with st.expander("Earlier sync runs"):
        st.dataframe(view.earlier_syncs(db()), hide_index=True, key="status_sync_runs")


def show_free_tier() -> None:
    """What is left of the Hub's rate-limit windows and of the month's Inference allowance."""
    st.subheader("Free tier")
    panel = view.free_tier(db(), settings())
    if panel.empty:
        st.info(panel.empty)
    for group, bars in (
        ("Hub rate-limit windows", panel.hub_bars),
        ("Inference this month", panel.inference_bars),
    ):
        if not bars:
            continue
        st.caption(group)
        for bar in bars:
            if bar.fraction is not None:
                st.progress(min(1.0, max(0.0, bar.fraction)), text=f"{bar.label}: {bar.short}")
            st.text(bar.text)
    st.caption(f"Inference allowance resets in {panel.days_to_reset:.1f} days ({panel.resets_at}).")
    for note in panel.notes:
        st.caption(note)


def show_jobs() -> bool:
    """The most recent jobs, newest first; True when one is still queued or running."""
    st.subheader("Recent jobs")
    st.button(
        "Refresh", key=K_REFRESH, help="the list also refreshes itself while a job is queued or running"
    )
    recent = view.recent_jobs(db())
    if not recent:
        st.caption("No jobs yet.")
    for job in recent:
        line = view.job_line(job)
        if line.level == "progress":
            st.progress(line.fraction, text=plain(line.text))
        elif line.level == "error":
            st.error(plain(line.text))
        elif line.level == "info":
            st.info(line.text)
        else:
            st.success(line.text)
    return any(job.active for job in recent)


def live_sections(polling: bool) -> None:
    """Everything a running job changes; re-run on a timer while a job is queued or running."""
    show_counts()
    show_last_sync()
    if not show_jobs() and polling:
        st.rerun(scope="app")  # the last job finished: a full run stops the timer


def sync_now() -> None:
    """Enqueue a sync job for the worker (absent in the read-only demo)."""
    cfg = settings()
    st.subheader("Sync now")
    source = st.radio(
        "Source",
        list(view.SOURCES),
        format_func=view.SOURCES.__getitem__,
        horizontal=True,
        key=K_SOURCE,
        captions=view.source_captions(cfg),
    )
    if st.button("Sync now", type="primary", key=K_SYNC):
        with operator_errors("Sync now"):
            job_id = view.sync_now(cfg, source or "snapshot")
            st.success(f"Queued sync job {job_id}; the worker runs it and this page shows its progress.")


require_settings()  # a configuration that does not load: its explanation instead of the page
st.title("Status")
show_settings()
show_free_tier()
if not demo_mode():
    sync_now()
active = view.any_active(db())
st.fragment(live_sections, run_every=POLL_SECONDS if active else None)(active)
