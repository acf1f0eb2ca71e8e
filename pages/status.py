"""Status: the store, candidate counts, the last sync run, secrets (set / not set only), endpoints in use,
"Sync now" (enqueues a worker job) and recent jobs with their progress or error.

The page never runs a sync itself: it enqueues a job for the worker and polls the jobs table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from hfops import discovery, jobs, registry
from hfops.config import api_key, secret_status, write_token
from hfops.console import db, demo_mode, operator_errors, plain, settings
from hfops.paths import HUB_SNAPSHOT
from hfops.store import parse_ts

POLL_SECONDS = 2.0
SOURCES = {
    "snapshot": "Embedded snapshot (offline)",
    "hub": "Configured Hub endpoint",
}
RUN_COUNTS = ("pages", "seen", "inserted", "updated", "unchanged", "skipped", "matched", "new_candidates", "flagged")
# Widget keys (tests address widgets by these).
K_SOURCE = "status_sync_source"
K_SYNC = "status_sync_now"
K_REFRESH = "status_refresh"


def duration(run: dict[str, Any]) -> str:
    """Human duration of a sync run (so far, when still running)."""
    start = parse_ts(run.get("started_at"))
    end = parse_ts(run.get("finished_at"))
    if start is None:
        return "—"
    if end is None:
        return "running"
    return f"{(end - start).total_seconds():.1f} s"


def show_settings() -> None:
    """Store path, endpoints and secret presence (never the secret itself)."""
    cfg = settings()
    st.subheader("Configuration in use")
    st.text(f"Store: {Path(cfg.store.path).resolve()}")
    st.text(f"Hub endpoint: {discovery.endpoint_in_use(cfg)}")
    st.text(f"Inference base URL: {cfg.inference.base_url}")
    st.text(f"Config file: {cfg.source_file or '(none: defaults)'}")
    st.text(f"HUGGINGFACE_API_KEY: {secret_status(api_key())}")
    st.text(f"HUGGINGFACE_WRITE_TOKEN: {secret_status(write_token())}")


def show_counts(conn: Any) -> None:
    """Number of candidates in each status."""
    st.subheader("Candidates by status")
    counts = registry.counts_by_status(conn)
    for column, (status, n) in zip(st.columns(len(counts)), counts.items(), strict=True):
        column.metric(status, f"{n:,}")


def show_last_sync(conn: Any) -> None:
    """Counts, skip reasons, errors, duration and back-off of the most recent sync run."""
    st.subheader("Last sync")
    run = discovery.last_sync_run(conn)
    if run is None:
        st.info("No sync has run yet.")
        return
    st.text(f"Run {run['id']}: {run['status']} · source {run['source']}")
    st.text(f"Started {run['started_at']} · finished {run.get('finished_at') or '—'} · duration {duration(run)}")
    st.text(f"Retries: {run['retries']} · waited {run['retry_wait_seconds']:.1f} s in back-off (Retry-After honoured)")
    if run.get("message"):
        st.text(f"Message: {run['message']}")
    st.dataframe(pd.DataFrame([{k: run[k] for k in RUN_COUNTS}]), hide_index=True, key="status_run_counts")
    if run["skip_reasons"]:
        st.markdown("**Skipped records by reason**")
        st.dataframe(
            pd.DataFrame([{"reason": k, "count": v} for k, v in run["skip_reasons"].items()]),
            hide_index=True, key="status_skip_reasons",
        )
    if run["errors"]:
        st.markdown(f"**Errors ({len(run['errors'])})**")
        st.dataframe(pd.DataFrame({"error": [str(e) for e in run["errors"]]}), hide_index=True, key="status_errors")
    with st.expander("Earlier sync runs"):
        earlier = discovery.list_sync_runs(conn, limit=20)
        st.dataframe(
            pd.DataFrame(earlier, columns=["id", "source", "status", "started_at", "finished_at", *RUN_COUNTS,
                                           "retries", "retry_wait_seconds", "message"]),
            hide_index=True, key="status_sync_runs",
        )


def show_job(job: dict[str, Any]) -> None:
    """One job: a progress bar while it runs, its error when it failed."""
    label = f"Job {job['id']} · {job['kind']} · {job['status']} · created {job['created_at']}"
    if job["status"] == "running":
        message = (job.get("message") or "") + f" · last update {job.get('heartbeat_at') or '—'}"
        if job.get("total"):
            fraction = min(1.0, job["done"] / job["total"])
            st.progress(fraction, text=f"{label} — {job['done']:,}/{job['total']:,} {plain(message)}")
        else:
            st.progress(0.0, text=f"{label} — {job['done']:,} done so far {plain(message)}")
    elif job["status"] == "failed":
        st.error(f"{label}: {plain(job.get('error') or 'failed')}")
    elif job["status"] == "queued":
        st.info(f"{label}: waiting for the worker (`hfops worker`; `make run` starts it)")
    else:
        st.success(f"{label}, finished {job.get('finished_at') or ''}")


def show_jobs(conn: Any) -> bool:
    """The most recent jobs, newest first; True when one is still queued or running."""
    st.subheader("Recent jobs")
    st.button("Refresh", key=K_REFRESH, help="the list also refreshes itself while a job is queued or running")
    recent = jobs.list_jobs(conn, limit=10)
    if not recent:
        st.caption("No jobs yet.")
    for job in recent:
        show_job(job)
    return any(j["status"] in ("queued", "running") for j in recent)


def live_sections(polling: bool) -> None:
    """Everything a running job changes; re-run on a timer while a job is queued or running."""
    conn = db()
    show_counts(conn)
    show_last_sync(conn)
    if not show_jobs(conn) and polling:
        st.rerun(scope="app")  # the last job finished: a full run stops the timer


def sync_now() -> None:
    """Enqueue a sync job for the worker (absent in the read-only demo)."""
    cfg = settings()
    st.subheader("Sync now")
    source = st.radio(
        "Source", list(SOURCES), format_func=SOURCES.__getitem__, horizontal=True, key=K_SOURCE,
        captions=[f"`{HUB_SNAPSHOT.name}` shipped in data/hub", f"`{discovery.endpoint_in_use(cfg)}`"],
    )
    if st.button("Sync now", type="primary", key=K_SYNC):
        params: dict[str, Any] = {"config": cfg.source_file} if cfg.source_file else {}
        if source == "snapshot":
            params["snapshot"] = str(HUB_SNAPSHOT)
        else:
            params["endpoint"] = discovery.endpoint_in_use(cfg)
        with operator_errors("Sync now"):
            job_id = jobs.enqueue(cfg.store.path, "sync", params)
            st.success(f"Queued sync job {job_id}; the worker runs it and this page shows its progress.")


st.title("Status")
show_settings()
if not demo_mode():
    sync_now()
active = any(j["status"] in ("queued", "running") for j in jobs.list_jobs(db(), limit=10))
st.fragment(live_sections, run_every=POLL_SECONDS if active else None)(active)
