"""Publication rows and a run's publish jobs.

``eval_publications`` holds each attempt, its mode, files and commit.
"""

from __future__ import annotations

from typing import Any

import sqlite_utils

from hfops import jobs
from hfops.store import loads, one, rows, utcnow, write_tx

JOB_KIND = "publish"


def record_attempt(db: sqlite_utils.Database, **fields: Any) -> int:
    """Insert a publication attempt; its id."""
    with write_tx(db):
        cursor = db.execute(
            f"INSERT INTO eval_publications ({', '.join(fields)}) VALUES ({', '.join('?' for _ in fields)})",
            list(fields.values()),
        )
        return int(cursor.lastrowid or 0)


def finish_attempt(db: sqlite_utils.Database, publication_id: int, **fields: Any) -> None:
    """Record how an attempt ended (``status``, ``error`` or ``commit_url``/``commit_oid``)."""
    fields["finished_at"] = utcnow()
    with write_tx(db):
        db.execute(
            f"UPDATE eval_publications SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ?",
            [*fields.values(), publication_id],
        )


def publications(
    db: sqlite_utils.Database, run_id: int | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """Publication attempts, newest first (of one run when ``run_id`` is given)."""
    where, params = ("WHERE run_id = ?", [run_id]) if run_id is not None else ("", [])
    found = rows(db, f"SELECT * FROM eval_publications {where} ORDER BY id DESC LIMIT ?", [*params, limit])
    for row in found:
        row["files"] = loads(row["files"], [])
    return found


def latest_commit(db: sqlite_utils.Database, run_id: int) -> dict[str, Any] | None:
    """The last successful push of a run (its commit URL), or None."""
    return one(
        db,
        "SELECT * FROM eval_publications WHERE run_id = ? AND mode = 'push' AND status = 'succeeded' "
        "ORDER BY id DESC LIMIT 1",
        [run_id],
    )


def publish_jobs(
    db: sqlite_utils.Database, run_id: int, limit: int = 100, statuses: tuple[str, ...] | None = None
) -> list[jobs.Job]:
    """Publish jobs of one run, newest first, however many jobs other runs have (selected by the run id in
    their parameters, not among the latest publish jobs of every run)."""
    where = "kind = ? AND json_extract(params, '$.run_id') = ?"
    args: list[Any] = [JOB_KIND, run_id]
    if statuses:
        where += f" AND status IN ({', '.join('?' for _ in statuses)})"
        args.extend(statuses)
    ids = [
        r[0]
        for r in db.execute(f"SELECT id FROM jobs WHERE {where} ORDER BY id DESC LIMIT ?", [*args, limit])
    ]
    return [job for job in (jobs.get_job(db, i) for i in ids) if job is not None]


def latest_publish_job(db: sqlite_utils.Database, run_id: int) -> jobs.Job | None:
    """The newest publish job of a run, or None."""
    found = publish_jobs(db, run_id, limit=1)
    return found[0] if found else None


def publish_active(db: sqlite_utils.Database, run_id: int) -> bool:
    """Whether a publish job of the run is queued or running."""
    return bool(publish_jobs(db, run_id, limit=1, statuses=jobs.ACTIVE_STATUSES))
