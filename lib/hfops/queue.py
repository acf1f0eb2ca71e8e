"""The queue between the enqueuers (console, CLI) and the worker: huey over SQLite (default) or Redis.

``[queue] backend = "sqlite"`` (the default): huey's own tables live in the same SQLite file as the store
(one file of state). ``backend = "redis"`` with ``url = "redis://host:6379/0"``: huey's Redis storage, so
the console, the store owner (``hfops worker --role writer|all``) and compute workers on other machines
share one queue; eval batches then travel on the compute queue of :mod:`hfops.remote.broker`.

Every process creates the same huey instance with one task, ``hfops.run_job(db_path, job_id)``; only the
worker process runs it, through the executor it installs with :func:`set_executor` (so this module knows no
feature and imports no handler). Periodic tasks are added by the worker.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from hfops.config import Settings
from hfops.errors import RemoteError
from hfops.store import connect

if TYPE_CHECKING:  # huey (and the redis client it pulls in) load when a queue is first used, not at import
    from huey import Huey

Executor = Callable[[str, int], Any]
JOBS_QUEUE = "hfops"
_HUEYS: dict[tuple[str, str], Huey] = {}
_TASKS: dict[tuple[str, str], Any] = {}
_executor: Executor | None = None


def set_executor(fn: Executor) -> None:
    """Install the function that runs a job in this process (the worker calls this once)."""
    global _executor
    _executor = fn


def _run(db_path: str, job_id: int) -> None:
    if _executor is None:
        raise RuntimeError("this process has no job executor (only `hfops worker` runs jobs)")
    _executor(db_path, job_id)


def _key(db_path: str, settings: Settings | None) -> tuple[str, str]:
    if settings is not None and settings.queue.backend == "redis":
        return ("redis", settings.queue.url)
    return ("sqlite", str(Path(db_path).resolve()))


def get_huey(db_path: str, settings: Settings | None = None) -> Huey:
    """The jobs queue for ``settings`` (the store's SQLite file by default).

    Its ``run_job`` task is registered once.
    """
    key = _key(db_path, settings)
    if key not in _HUEYS:
        from huey import RedisHuey, SqliteHuey

        huey: Huey
        if key[0] == "redis":
            huey = RedisHuey(name=JOBS_QUEUE, url=key[1], results=False)
        else:
            connect(db_path)  # the store exists and is migrated before huey adds its tables
            huey = SqliteHuey(name=JOBS_QUEUE, filename=db_path, timeout=30, results=False)
        _TASKS[key] = huey.task(name="hfops.run_job")(_run)
        _HUEYS[key] = huey
    return _HUEYS[key]


def submit(db_path: str, job_id: int, settings: Settings | None = None) -> None:
    """Hand job ``job_id`` to the worker's queue (a :class:`RemoteError` when Redis cannot be reached)."""
    from redis.exceptions import RedisError

    key = _key(db_path, settings)
    try:
        get_huey(db_path, settings)
        _TASKS[key](str(Path(db_path).resolve()), job_id)
    except RedisError as exc:
        raise RemoteError(f"the job queue at {redacted(key[1])} is unreachable: {exc}") from None


def redacted(url: str) -> str:
    """``url`` without its password (what logs and messages may show)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
