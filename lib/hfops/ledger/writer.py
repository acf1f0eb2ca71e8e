"""The ledger's background writer: one thread per process applying queued writes to the store, off the
request path (a store busy with another process's transaction never delays an Inference answer).

Each write may carry a tally (``key`` -> requests, tokens) that stays counted in :func:`pending` until the
write is done, so a check in this process sees its own queued use. :func:`flush` waits for the queue;
pending writes are flushed at interpreter exit (up to 5 s).
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from hfops.store import get_db

log = logging.getLogger(__name__)

Write = Callable[[sqlite_utils.Database], None]


@dataclass(frozen=True)
class _Item:
    db_file: str
    write: Write
    tally_key: Hashable | None
    tally: tuple[int, int]


class _Writer:
    def __init__(self) -> None:
        self._queue: queue.Queue[_Item] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, Hashable], list[int]] = {}

    def put(self, item: _Item) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="hfops-ledger-writer", daemon=True)
                self._thread.start()
            if item.tally_key is not None:
                counted = self._pending.setdefault((item.db_file, item.tally_key), [0, 0, 0])
                counted[0] += item.tally[0]
                counted[1] += item.tally[1]
                counted[2] += 1
        self._queue.put(item)

    def pending(self, db_file: str, key: Hashable) -> tuple[int, int]:
        with self._lock:
            counted = self._pending.get((db_file, key), [0, 0, 0])
            return counted[0], counted[1]

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                item.write(get_db(item.db_file))
            except Exception as exc:  # never lose the thread; the write is dropped with a log line
                log.error("free-tier ledger write failed: %s", exc)
            finally:
                if item.tally_key is not None:
                    with self._lock:
                        counted = self._pending[(item.db_file, item.tally_key)]
                        counted[0] -= item.tally[0]
                        counted[1] -= item.tally[1]
                        counted[2] -= 1
                        if counted[2] <= 0:
                            del self._pending[(item.db_file, item.tally_key)]
                self._queue.task_done()

    def flush(self, timeout: float = 10.0) -> bool:
        done = threading.Event()

        def wait() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        return done.wait(timeout)


_writer = _Writer()
atexit.register(_writer.flush, 5.0)


def db_file(db_path: str | Path) -> str:
    """The key a store is queued and tallied under (its resolved path)."""
    return str(Path(db_path).resolve())


def submit(
    db_path: str | Path, write: Write, tally_key: Hashable | None = None, tally: tuple[int, int] = (0, 0)
) -> None:
    """Queue ``write(db)`` for the background thread; ``tally`` stays in :func:`pending` until it is done."""
    _writer.put(_Item(db_file(db_path), write, tally_key, tally))


def pending(db_path: str | Path, tally_key: Hashable) -> tuple[int, int]:
    """The tally of writes queued under ``tally_key`` for this store and not yet done."""
    return _writer.pending(db_file(db_path), tally_key)


def flush(timeout: float = 10.0) -> bool:
    """Wait until every queued write is done; False on timeout."""
    return _writer.flush(timeout)
