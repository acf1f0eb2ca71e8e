"""Sync runs as typed records, and the queries pages and the CLI read them with."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils
from huggingface_hub import constants

from hfops.config import Settings
from hfops.records import Record
from hfops.store import loads, one, rows

RUN_STATUSES = ("running", "succeeded", "partial", "failed", "interrupted")


@dataclass
class SyncRun(Record):
    """One row of ``sync_runs``, decoded (``skip_reasons``, ``errors``, ``resume_cursor`` are JSON there).

    ``status``: ``running``; ``succeeded``; ``partial`` (pages were lost: no unlisted candidate is
    flagged, the next sync fetches them again); ``failed`` (resumable); or ``interrupted`` (killed or
    cancelled; resumable).
    """

    id: int
    source: str
    mode: str
    started_at: str
    status: str
    finished_at: str | None = None
    pages: int = 0
    seen: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    matched: int = 0
    new_candidates: int = 0
    flagged: int = 0
    retries: int = 0
    retry_wait_seconds: float = 0.0
    hub_waits: int = 0  # waits for the Hub's rate-limit window before a request (also in hub_ratelimit_waits)
    hub_wait_seconds: float = 0.0  # their planned seconds, summed
    skip_reasons: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    resume_cursor: dict[str, Any] | None = None
    message: str | None = None
    records: int = 0  # records received, duplicates included (``seen`` counts distinct models)
    duplicates: int = 0  # same id again within a page or a snapshot: merged, last wins
    lost_pages: int = 0  # pages that could not be read: the run is ``partial``
    heartbeat_at: str | None = None
    interrupted_at: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> SyncRun:
        """A run from a ``sync_runs`` row (columns this version does not know are ignored)."""
        known = {f.name for f in dataclasses.fields(cls)}
        data = {k: v for k, v in row.items() if k in known}
        data["skip_reasons"] = loads(data.get("skip_reasons"), {})
        data["errors"] = loads(data.get("errors"), [])
        data["resume_cursor"] = loads(data.get("resume_cursor"))
        return cls(**data)


def get_sync_run(db: sqlite_utils.Database, sync_id: int) -> SyncRun | None:
    """One sync run by id, or None."""
    row = one(db, "SELECT * FROM sync_runs WHERE id = ?", [sync_id])
    return SyncRun.from_row(row) if row else None


def as_found(run: SyncRun) -> SyncRun:
    """``run`` as it is now: a row left ``running`` by a process of this machine that has stopped reads as
    ``interrupted`` (the next sync of its source marks it so in the store, and resumes it)."""
    from hfops.discovery.runstate import stopped_here

    owner = run.resume_cursor.get("owner") if isinstance(run.resume_cursor, dict) else None
    if run.status != "running" or not stopped_here(owner):
        return run
    last_sign = run.heartbeat_at or run.started_at
    return dataclasses.replace(
        run,
        status="interrupted",
        message=f"interrupted: its process stopped (last sign of life {last_sign}); "
        "the next sync of this source resumes it",
    )


def last_sync_run(db: sqlite_utils.Database, source: str | None = None) -> SyncRun | None:
    """The most recent sync run (of ``source`` when given) as it is now (:func:`as_found`), or None."""
    if source is None:
        row = one(db, "SELECT * FROM sync_runs ORDER BY id DESC LIMIT 1")
    else:
        row = one(db, "SELECT * FROM sync_runs WHERE source = ? ORDER BY id DESC LIMIT 1", [source])
    return as_found(SyncRun.from_row(row)) if row else None


def list_sync_runs(db: sqlite_utils.Database, limit: int = 20) -> list[SyncRun]:
    """Recent sync runs, newest first, as they are now (:func:`as_found`)."""
    found = rows(db, "SELECT * FROM sync_runs ORDER BY id DESC LIMIT ?", [limit])
    return [as_found(SyncRun.from_row(r)) for r in found]


def endpoint_in_use(settings: Settings) -> str:
    """The Hub endpoint the next sync talks to (config, else huggingface_hub's default)."""
    return settings.hub.endpoint or constants.ENDPOINT
