"""A sync run's row: starting or resuming a pass, saving its counts, telling a live run from a dead one,
and the watermark of the next incremental pass."""

from __future__ import annotations

import functools
import os
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlite_utils

from hfops.discovery.sources import Cursor, Source
from hfops.errors import SyncError
from hfops.store import dumps, loads, one, rows, utcnow, write_tx

if TYPE_CHECKING:  # storing imports huggingface_hub's hf_api: not for a reader asking whether a run is alive
    from hfops.discovery.storing import SyncCounts


def save_run(db: sqlite_utils.Database, sync_id: int, counts: SyncCounts, **extra: Any) -> None:
    values = {
        "pages": counts.pages,
        "seen": counts.seen,
        "inserted": counts.inserted,
        "updated": counts.updated,
        "unchanged": counts.unchanged,
        "skipped": counts.skipped,
        "matched": counts.matched,
        "new_candidates": counts.new_candidates,
        "flagged": counts.flagged,
        "records": counts.records,
        "duplicates": counts.duplicates,
        "lost_pages": counts.lost_pages,
        "skip_reasons": dumps(dict(counts.skip_reasons)),
        "errors": dumps(counts.errors),
        "heartbeat_at": utcnow(),
        **extra,
    }
    # a plain UPDATE: sqlite-utils' table.update reads the table's schema twice a call, every page
    db.execute(
        f"UPDATE sync_runs SET {', '.join(f'{name} = ?' for name in values)} WHERE id = ?",
        [*values.values(), sync_id],
    )


def resume_state(source: Source, pass_id: int, cursor: Cursor | None, lost: int = 0) -> dict[str, Any]:
    """What resumes a pass: its id, the cursor after the last stored page, its watermark, pages it lost,
    and the process running it (to tell a live run from a dead one)."""
    return {
        "pass_id": pass_id, "cursor": cursor, "since": getattr(source, "since", None), "lost": lost,
        "owner": _owner(),
    }  # fmt: skip


@functools.cache
def _owner_of(pid: int) -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": pid, "started": _process_start(pid)}


def _owner() -> dict[str, Any]:
    """This process, as a ``running`` row names its owner (cached per pid: a forked child gets its own)."""
    return _owner_of(os.getpid())


def _process_stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first), or None (no such file)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _process_start(pid: int) -> str | None:
    fields = _process_stat(pid)
    return fields[19] if fields and len(fields) > 19 else None  # field 22: start time since boot


def _alive(owner: Any) -> bool:
    """Whether the process that owns a ``running`` row still runs (False when it cannot tell: another host).

    The process start time is compared too, so that a reused pid (a restarted container) is not taken
    for the owner.
    """
    if not isinstance(owner, dict) or owner.get("host") != socket.gethostname():
        return False
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    fields = _process_stat(pid)
    if fields is not None:  # Linux: the process table says it all (a zombie is dead)
        started = owner.get("started")
        return fields[0] != "Z" and (started is None or _process_start(pid) == started)
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stopped_here(owner: Any) -> bool:
    """Whether a ``running`` row's owner was a process of this machine that no longer runs (False for
    another host's: it cannot be told from here)."""
    return isinstance(owner, dict) and owner.get("host") == socket.gethostname() and not _alive(owner)


def start_run(db: sqlite_utils.Database, source: Source) -> tuple[int, int, Cursor | None, int]:
    """Create a sync run; resume the previous unfinished pass of the same source if there is one.

    A resumed Hub pass keeps its mode: an interrupted incremental pass resumes with its own watermark.
    """
    with write_tx(db):
        found_at = utcnow()
        for dead in rows(
            db,
            "SELECT id, started_at, heartbeat_at, resume_cursor FROM sync_runs "
            "WHERE source = ? AND status = 'running'",
            [source.name],
        ):
            owner = loads(dead["resume_cursor"], {}).get("owner")
            if _alive(owner):
                raise SyncError(
                    f"sync run {dead['id']} of {source.name} is still running (process {owner['pid']}); "
                    "wait for it to finish, or stop it, before starting another"
                )
            last_sign = dead["heartbeat_at"] or dead["started_at"]
            db.execute(
                "UPDATE sync_runs SET status = 'interrupted', interrupted_at = ?, finished_at = ?, "
                "message = ? WHERE id = ?",
                [
                    found_at,
                    last_sign,
                    f"interrupted: its process stopped (last sign of life {last_sign}); "
                    f"found still 'running' at {found_at} by the next sync of this source, "
                    "which resumes it",
                    dead["id"],
                ],
            )
        previous = one(
            db,
            "SELECT id, status, resume_cursor FROM sync_runs WHERE source = ? ORDER BY id DESC LIMIT 1",
            [source.name],
        )
        cursor = None
        pass_id = None
        lost = 0
        if previous and previous["status"] in ("failed", "interrupted") and previous["resume_cursor"]:
            state = loads(previous["resume_cursor"], {})
            cursor = state.get("cursor")
            pass_id = state.get("pass_id")
            lost = int(state.get("lost") or 0)
            from hfops.discovery.hub import HubSource  # the HTTP stack: only when a pass starts

            if isinstance(source, HubSource):
                source.since = state.get("since")
                source.complete_pass_possible = source.since is None
        mode = "full" if source.complete_pass_possible else "incremental"
        sync_id = int(
            db.execute(
                "INSERT INTO sync_runs (source, mode, started_at, status, message) "
                "VALUES (?, ?, ?, 'running', ?)",
                [source.name, mode, utcnow(), f"resumed the pass of run {pass_id}" if pass_id else None],
            ).lastrowid
            or 0
        )
        pass_id = pass_id or sync_id
        db.execute(
            "UPDATE sync_runs SET resume_cursor = ? WHERE id = ?",
            [dumps(resume_state(source, pass_id, cursor, lost)), sync_id],
        )
    return sync_id, pass_id, cursor, lost


def incremental_watermark(db: sqlite_utils.Database, source_name: str, full_sync_hours: float) -> str | None:
    """The lastModified watermark for an incremental pass, or None when a full pass is due.

    A full pass is due when none succeeded within ``full_sync_hours`` (it refreshes download and like counts,
    which change without a commit, and flags models no longer listed), or when a full pass since lost pages
    (``partial``). Otherwise the watermark is the older of the newest stored lastModified and the last full
    pass's start, less one hour of safety margin, and never later than the watermark of a partial incremental
    pass since (so the next pass fetches again what that one lost).
    """
    last_full = one(
        db,
        "SELECT id, started_at FROM sync_runs WHERE source = ? AND mode = 'full' AND status = 'succeeded' "
        "ORDER BY id DESC LIMIT 1",
        [source_name],
    )
    if not last_full or full_sync_hours <= 0:
        return None
    later_partial = rows(
        db,
        "SELECT mode, resume_cursor FROM sync_runs WHERE source = ? AND status = 'partial' AND id > ?",
        [source_name, last_full["id"]],
    )
    if any(run["mode"] == "full" for run in later_partial):
        return None  # a full pass lost pages since: the next pass is full again (it retries them)
    started = datetime.fromisoformat(last_full["started_at"].replace("Z", "+00:00"))
    if (datetime.now(UTC) - started).total_seconds() > full_sync_hours * 3600:
        return None
    newest = db.execute("SELECT MAX(last_modified) FROM models WHERE source = ?", [source_name]).fetchone()[0]
    candidates = [started]
    if newest:
        candidates.append(datetime.fromisoformat(newest.replace("Z", "+00:00")))
    mark = min(candidates) - timedelta(hours=1)
    text = mark.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    # an incremental pass that lost pages did not see what changed after its own watermark: keep that one
    earlier = [str(loads(r["resume_cursor"], {}).get("since") or "") for r in later_partial]
    return min([text, *(e for e in earlier if e)])
