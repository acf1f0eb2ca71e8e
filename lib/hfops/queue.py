"""The queue between the enqueuers (console, CLI) and the worker: huey over the store's SQLite file.

Huey's own tables live in the same SQLite file as the store (one file of state). Every process creates
the same huey instance with one task, ``hfops.run_job(db_path, job_id)``; only the worker process runs
it, through the executor it installs with :func:`set_executor` (so this module knows no feature and
imports no handler). Periodic tasks are added by the worker (:func:`get_huey` ``periodic``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from huey import Huey, SqliteHuey

from hfops.config import Settings
from hfops.store import connect

Executor = Callable[[str, int], Any]
_HUEYS: dict[str, Huey] = {}
_TASKS: dict[str, Any] = {}
_executor: Executor | None = None


def set_executor(fn: Executor) -> None:
    """Install the function that runs a job in this process (the worker calls this once)."""
    global _executor
    _executor = fn


def _run(db_path: str, job_id: int) -> None:
    if _executor is None:
        raise RuntimeError("this process has no job executor (only `hfops worker` runs jobs)")
    _executor(db_path, job_id)


def get_huey(db_path: str, settings: Settings | None = None) -> Huey:
    """The huey instance for the store at ``db_path`` (its ``run_job`` task registered once per instance)."""
    key = str(Path(db_path).resolve())
    if key not in _HUEYS:
        connect(db_path)  # the store exists and is migrated before huey adds its tables
        huey = SqliteHuey(name="hfops", filename=db_path, timeout=30, results=False)
        _TASKS[key] = huey.task(name="hfops.run_job")(_run)
        _HUEYS[key] = huey
    return _HUEYS[key]


def submit(db_path: str, job_id: int, settings: Settings | None = None) -> None:
    """Hand job ``job_id`` to the worker's queue."""
    get_huey(db_path, settings)
    _TASKS[str(Path(db_path).resolve())](db_path, job_id)
