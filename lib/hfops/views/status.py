"""View model of the Status page: configuration in use, candidate counts, sync runs, recent jobs, Sync now."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import sqlite_utils

from hfops import discovery, jobs, publish, registry
from hfops.config import API_KEY_ENV, WRITE_TOKEN_ENV, Settings, api_key, secret_status
from hfops.paths import HUB_SNAPSHOT
from hfops.store import parse_ts
from hfops.views import as_dict

SOURCES = {
    "snapshot": "Embedded snapshot (offline)",
    "hub": "Configured Hub endpoint",
}
RUN_COUNTS = (
    "pages",
    "seen",
    "inserted",
    "updated",
    "unchanged",
    "skipped",
    "matched",
    "new_candidates",
    "flagged",
)
RUN_COLUMNS = [
    "id",
    "source",
    "status",
    "started_at",
    "finished_at",
    *RUN_COUNTS,
    "retries",
    "retry_wait_seconds",
    "hub_waits",
    "hub_wait_seconds",
    "message",
]
RECENT_JOBS = 10


def settings_lines(settings: Settings) -> list[str]:
    """Store path, endpoints, config file and whether each secret is set (never the secret itself)."""
    return [
        f"Store: {Path(settings.store.path).resolve()}",
        f"Hub endpoint: {discovery.endpoint_in_use(settings)}",
        f"Inference base URL: {settings.inference.base_url}",
        f"Config file: {settings.source_file or '(none: defaults)'}",
        f"{API_KEY_ENV}: {secret_status(api_key())}",
        f"{WRITE_TOKEN_ENV}: {publish.token_status()}",
    ]


def counts(db: sqlite_utils.Database) -> dict[str, int]:
    """Number of candidates in each status (zeros included)."""
    return registry.counts_by_status(db)


def duration(run: Any) -> str:
    """Human duration of a sync run (so far, when still running)."""
    start = parse_ts(run.get("started_at"))
    end = parse_ts(run.get("finished_at"))
    if start is None:
        return "—"
    if end is None:
        return "running"
    return f"{(end - start).total_seconds():.1f} s"


@dataclass
class SyncView:
    """The last sync run, shaped for display (text unescaped)."""

    lines: list[str]
    counts: pd.DataFrame
    skip_reasons: pd.DataFrame | None
    errors: pd.DataFrame | None


def last_sync(db: sqlite_utils.Database) -> SyncView | None:
    """Counts, skip reasons, errors, duration and back-off of the most recent sync run, or None."""
    run = discovery.last_sync_run(db)
    if run is None:
        return None
    lines = [
        f"Run {run['id']}: {run['status']} · source {run['source']}",
        f"Started {run['started_at']} · finished {run.get('finished_at') or '—'} · duration {duration(run)}",
        f"Retries: {run['retries']} · waited {run['retry_wait_seconds']:.1f} s in back-off "
        "(Retry-After honoured)",
        f"Hub rate-limit window: waited {run['hub_waits'] or 0}x, {run['hub_wait_seconds'] or 0:.0f} s "
        "(requests paced to keep the reserve)",
    ]
    if run.get("message"):
        lines.append(f"Message: {run['message']}")
    skips = run["skip_reasons"] or {}
    errors = run["errors"] or []
    return SyncView(
        lines=lines,
        counts=pd.DataFrame([{k: run[k] for k in RUN_COUNTS}]),
        skip_reasons=pd.DataFrame([{"reason": k, "count": v} for k, v in skips.items()]) if skips else None,
        errors=pd.DataFrame({"error": [str(e) for e in errors]}) if errors else None,
    )


def earlier_syncs(db: sqlite_utils.Database, limit: int = 20) -> pd.DataFrame:
    return pd.DataFrame([as_dict(r) for r in discovery.list_sync_runs(db, limit=limit)], columns=RUN_COLUMNS)


@dataclass
class JobLine:
    """One recent job as the page shows it: ``level`` (progress | error | info | success), text, fraction."""

    level: str
    text: str
    fraction: float = 0.0


def job_line(job: jobs.Job) -> JobLine:
    """A progress bar while it runs, its error when it failed, a waiting note while queued."""
    label = f"Job {job.id} · {job.kind} · {job.status} · created {job.created_at}"
    if job.status == "running":
        message = (job.message or "") + f" · last update {job.heartbeat_at or '—'}"
        if job.total:
            return JobLine(
                "progress", f"{label} — {job.done:,}/{job.total:,} {message}", min(1.0, job.done / job.total)
            )
        return JobLine("progress", f"{label} — {job.done:,} done so far {message}")
    if job.status == "failed":
        return JobLine("error", f"{label}: {job.error or 'failed'}")
    if job.status == "queued":
        return JobLine("info", f"{label}: waiting for the worker (`hfops worker`; `make run` starts it)")
    if job.status == "cancelled":
        return JobLine("info", f"{label}, cancelled {job.finished_at or ''}")
    return JobLine("success", f"{label}, finished {job.finished_at or ''}")


def recent_jobs(db: sqlite_utils.Database, limit: int = RECENT_JOBS) -> list[jobs.Job]:
    return jobs.list_jobs(db, limit=limit)


def any_active(db: sqlite_utils.Database) -> bool:
    """Whether a job is queued or running (the page polls while one is)."""
    return bool(jobs.active_jobs(db, limit=1))


def source_captions(settings: Settings) -> list[str]:
    return [f"`{HUB_SNAPSHOT.name}` shipped in data/hub", f"`{discovery.endpoint_in_use(settings)}`"]


def sync_now(settings: Settings, source: str) -> int:
    """Queue a sync job of the embedded snapshot or the configured Hub with the console's settings; its id."""
    params: dict[str, Any] = {}
    if source == "snapshot":
        params["snapshot"] = str(HUB_SNAPSHOT)
    else:
        params["endpoint"] = discovery.endpoint_in_use(settings)
    return jobs.enqueue(settings.store.path, "sync", params, settings)


def free_tier(db: sqlite_utils.Database, settings: Settings) -> Any:
    """The free-tier panel: each Hub rate-limit window's remaining/quota and reset, the month's Inference use
    against its allowance, days to reset (:func:`hfops.ledger.status.panel`)."""
    from hfops.ledger.status import panel

    return panel(db, settings)
