"""A sync: pages from a source stored into ``models`` / ``candidates``, one committed page at a time.

Each page is committed together with the cursor that resumes after it, so a crash or kill loses at most the
page in flight. A record whose content hash and rule fingerprint are unchanged is not parsed again. Nothing
is deleted: candidates that stop matching, or that a complete pass over the same source did not list, are
flagged.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import httpx2
import sqlite_utils

from hfops import net, search_index
from hfops.config import DiscoveryConfig, Settings, api_key, load_settings
from hfops.discovery.hub import HubSource
from hfops.discovery.runs import SyncRun, get_sync_run
from hfops.discovery.runstate import incremental_watermark, resume_state, save_run, start_run
from hfops.discovery.snapshot import SnapshotSource
from hfops.discovery.sources import Source
from hfops.discovery.storing import SyncCounts, duplicates_note, flag_unlisted, line, take_page
from hfops.errors import RemoteError, SyncError
from hfops.ledger import hub_window
from hfops.paths import HUB_SNAPSHOT
from hfops.store import dumps, get_db, utcnow, write_tx

if TYPE_CHECKING:
    from hfops import jobs

ProgressFn = Callable[..., None]


def run_sync(
    db_path: str,
    source: Source,
    rule: DiscoveryConfig,
    progress: ProgressFn | None = None,
    now: datetime | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> SyncRun:
    """Sync ``source`` into the store at ``db_path``; returns this sync's own finished run.

    Each page is committed together with the cursor that resumes after it, so a crash or kill loses at
    most the page in flight. Raises :class:`SyncError` (after recording it) when the source gives up.
    ``cancelled`` is polled between pages: when it says so the run stops as ``interrupted`` (resumable).
    Once the run is recorded, the ids its pages noted go into the model search's index
    (:func:`hfops.search_index.catch_up`: not page by page, where it would cost each commit 11-30 us a key).
    """
    with _bulk_writes(get_db(db_path)):
        run = _run_sync(db_path, source, rule, progress, now, cancelled)
    search_index.catch_up(db_path, stop=cancelled)
    return run


def _run_sync(
    db_path: str,
    source: Source,
    rule: DiscoveryConfig,
    progress: ProgressFn | None,
    now: datetime | None,
    cancelled: Callable[[], bool] | None,
) -> SyncRun:
    db = get_db(db_path)
    sync_id, pass_id, cursor, pass_lost = start_run(db, source)
    counts = SyncCounts(pass_lost=pass_lost)
    now_dt = now or datetime.now(UTC)
    started = time.monotonic()
    token = getattr(source, "token", None)
    if isinstance(source, HubSource):

        def on_retry(wait: float, why: str) -> None:  # may run on the prefetch thread: its own connection
            retry_db = get_db(db_path)
            message = line(f"backing off {wait:.0f} s: {why}")
            with write_tx(retry_db):
                retry_db.execute(
                    "UPDATE sync_runs SET retries = retries + 1, "
                    "retry_wait_seconds = retry_wait_seconds + ?, message = ?, heartbeat_at = ? WHERE id = ?",
                    [wait, message, utcnow(), sync_id],
                )
            if progress:
                progress(counts.seen, None, message, force=True)

        source.on_retry = on_retry
    outer_on_wait, _ = hub_window.current_scope()

    def on_wait(notice: hub_window.WaitNotice) -> None:
        """A wait for the Hub's rate-limit window, shown on the run's row.

        The wait is recorded in the ledger against this run.
        """
        wait_db = get_db(db_path)  # may run on the prefetch thread: its own connection
        with write_tx(wait_db):
            wait_db.execute(
                "UPDATE sync_runs SET hub_waits = hub_waits + 1, hub_wait_seconds = hub_wait_seconds + ?, "
                "message = ?, heartbeat_at = ? WHERE id = ?",
                [round(notice.seconds, 3), notice.message, utcnow(), sync_id],
            )
        if progress:
            progress(counts.seen, None, notice.message, force=True)
        elif outer_on_wait is not None:
            outer_on_wait(notice)

    try:
        # every Hub request of the pass (the prefetch thread's too: it runs in a copy of this context) waits
        # for the rate-limit window against this run
        with hub_window.scope(on_wait, hub_window.RunRef("sync", sync_id)):
            for page in source.pages(cursor):
                with write_tx(db):
                    take_page(db, page, counts, rule, source, sync_id, pass_id, now_dt)
                    state = resume_state(
                        source, pass_id, page.next_cursor, counts.pass_lost + counts.lost_pages
                    )
                    save_run(db, sync_id, counts, resume_cursor=dumps(state) if page.next_cursor else None)
                if progress:
                    progress(
                        counts.seen, page.total, f"page {counts.pages}: {counts.seen} models, "
                        f"{counts.new_candidates} new candidates"
                        + (f", {counts.lost_pages} pages lost" if counts.lost_pages else ""),
                    )  # fmt: skip
                if page.next_cursor is not None and cancelled is not None and cancelled():
                    with write_tx(db):
                        save_run(
                            db, sync_id, counts, status="interrupted", finished_at=utcnow(),
                            message="cancelled by the operator; "
                            "the next sync resumes from the last stored page",
                        )  # fmt: skip
                    return get_sync_run(db, sync_id) or _missing(sync_id)
    except (SyncError, RemoteError, httpx2.HTTPError, sqlite3.Error) as exc:
        if isinstance(exc, SyncError):
            message = net.scrub(exc, token)
        elif isinstance(exc, sqlite3.Error):
            message = f"the store refused a write ({type(exc).__name__}: {net.scrub(exc, token)})"
        else:
            message = _describe(exc, source, token)
        _fail(db, sync_id, counts, message)
        raise SyncError(f"sync {sync_id} failed: {line(message, 500)}") from None
    except Exception as exc:  # a defect: recorded truthfully, then raised with its traceback
        _fail(db, sync_id, counts, f"unexpected error: {type(exc).__name__}: {net.scrub(exc, token)}")
        raise
    except BaseException:
        with write_tx(db):
            save_run(
                db, sync_id, counts, status="interrupted", finished_at=utcnow(), interrupted_at=utcnow(),
                message="interrupted; the next sync resumes from the last stored page",
            )  # fmt: skip
        raise
    lost = counts.pass_lost + counts.lost_pages
    resumed = f" (resumed the pass of run {pass_id})" if pass_id != sync_id else ""
    with write_tx(db):
        elapsed = time.monotonic() - started
        waited = _waits_note(db, sync_id)
        if lost:
            state = resume_state(source, pass_id, None, lost)
            save_run(
                db, sync_id, counts, status="partial", finished_at=utcnow(), resume_cursor=dumps(state),
                message=line(
                    f"partial: {lost} page(s) lost, so the pass is incomplete and no candidate was flagged "
                    f"as unlisted; the next sync fetches them again. "
                    f"{counts.seen} models in {elapsed:.1f} s{resumed}{waited}. "
                    f"Lost: {'; '.join(counts.lost)}", 1000),
            )  # fmt: skip
        else:
            if source.complete_pass_possible:
                flag_unlisted(db, source.name, pass_id, counts)
            save_run(
                db, sync_id, counts, status="succeeded", finished_at=utcnow(), resume_cursor=None,
                message=f"{counts.seen} models in {elapsed:.1f} s{resumed}{waited}" + duplicates_note(counts),
            )  # fmt: skip
    if progress:
        progress(counts.seen, counts.seen, "done", force=True)
    return get_sync_run(db, sync_id) or _missing(sync_id)


# A sync writes tens of thousands of rows in page-sized transactions. On its own connection, for the run
# only: a larger page cache (the models / candidates B-trees stay in memory between pages) and a WAL
# checkpoint every 64 MiB instead of every 4 MiB (a page of an index rewritten by many transactions is
# copied back once).
SYNC_CACHE_KIB = 64 * 1024
SYNC_WAL_CHECKPOINT_PAGES = 16_384


@contextlib.contextmanager
def _bulk_writes(db: sqlite_utils.Database) -> Iterator[None]:
    """Per-connection settings for a run's writes, restored after it (durability and locking unchanged)."""
    cache = db.execute("PRAGMA cache_size").fetchone()[0]
    checkpoint = db.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
    db.execute(f"PRAGMA cache_size = -{SYNC_CACHE_KIB}")
    db.execute(f"PRAGMA wal_autocheckpoint = {SYNC_WAL_CHECKPOINT_PAGES}")
    try:
        yield
    finally:
        db.execute(f"PRAGMA cache_size = {int(cache)}")
        db.execute(f"PRAGMA wal_autocheckpoint = {int(checkpoint)}")
        try:
            db.execute("PRAGMA wal_checkpoint(PASSIVE)")  # never waits for readers
        except sqlite3.Error:
            pass


def _waits_note(db: sqlite_utils.Database, sync_id: int) -> str:
    """``; waited 2x, 84 s for the Hub's rate-limit window`` when the run waited (else empty)."""
    found = db.execute("SELECT hub_waits, hub_wait_seconds FROM sync_runs WHERE id = ?", [sync_id]).fetchone()
    if not found or not found[0]:
        return ""
    return f"; waited {found[0]}x, {found[1]:.0f} s in all, for the Hub's rate-limit window"


def _fail(db: sqlite_utils.Database, sync_id: int, counts: SyncCounts, message: str) -> None:
    with write_tx(db):
        counts.error(message)
        save_run(db, sync_id, counts, status="failed", finished_at=utcnow(), message=line(message, 500))


def _describe(exc: BaseException, source: Source, token: str | None) -> str:
    where = getattr(source, "endpoint", "") or source.name
    return net.describe(exc, what="listing models", where=where, token=token)


def _missing(sync_id: int) -> NoReturn:
    raise SyncError(f"sync run {sync_id} vanished from the store while it ran")


def sync_snapshot(
    db_path: str,
    snapshot_path: str | Path = HUB_SNAPSHOT,
    settings: Settings | None = None,
    progress: ProgressFn | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> SyncRun:
    """Sync a snapshot file of API records (default: the embedded one shipped in data/hub/)."""
    settings = settings or load_settings()
    source = SnapshotSource(snapshot_path, settings.hub.page_size)
    return run_sync(db_path, source, settings.discovery, progress, cancelled=cancelled)


def sync_hub(
    db_path: str,
    settings: Settings,
    progress: ProgressFn | None = None,
    mode: str = "auto",
    cancelled: Callable[[], bool] | None = None,
) -> SyncRun:
    """Sync from the configured Hub endpoint (``[hub] endpoint``; the real Hub by default).

    ``mode``: ``full``, ``incremental`` (records changed since the watermark only; a full pass when there
    is no recent one), or ``auto`` (incremental while the last full pass is younger than
    ``[hub] full_sync_hours``).
    """
    if mode not in ("auto", "full", "incremental"):
        raise SyncError(f"unknown sync mode {mode!r}; choose auto, full or incremental")
    source = HubSource(settings.hub, settings.discovery, token=api_key())
    if mode != "full":
        hours = settings.hub.full_sync_hours if mode == "auto" else float("inf")
        since = incremental_watermark(get_db(db_path), source.name, hours)
        source.since = since
        source.complete_pass_possible = since is None
    return run_sync(db_path, source, settings.discovery, progress, cancelled=cancelled)


def ensure_embedded_default(db_path: str, settings: Settings | None = None) -> SyncRun | None:
    """Load the shipped snapshot when the store has never been synced (first start); else do nothing."""
    db = get_db(db_path)
    if db.execute("SELECT COUNT(*) FROM sync_runs").fetchone()[0]:
        return None
    return sync_snapshot(db_path, HUB_SNAPSHOT, settings)


JOB_RESULT_FIELDS = (
    "id", "mode", "status", "seen", "inserted", "updated", "unchanged", "skipped", "matched",
    "new_candidates", "flagged", "message",
)  # fmt: skip


def sync_job(ctx: jobs.JobContext) -> dict[str, Any]:
    """Worker job ``sync``: ``{"snapshot": path}`` or ``{"endpoint": url}`` (neither: the configured one).

    Uses the settings stored with the job; stops between pages when the job is cancelled (the run is then
    ``interrupted`` and the next sync resumes it).
    """
    settings = ctx.settings
    settings.store.path = ctx.db_path
    if ctx.params.get("endpoint"):
        settings.hub.endpoint = str(ctx.params["endpoint"])
    if ctx.params.get("snapshot"):
        run = sync_snapshot(ctx.db_path, ctx.params["snapshot"], settings, ctx.progress, ctx.cancelled)
    else:
        mode = str(ctx.params.get("mode", "auto"))
        run = sync_hub(ctx.db_path, settings, ctx.progress, mode=mode, cancelled=ctx.cancelled)
    return {name: getattr(run, name) for name in JOB_RESULT_FIELDS}
