"""The ledger's background writer: one thread per process applying queued writes to the store, off the
request path (a store busy with another process's transaction never delays an Inference answer).

Each write may carry a tally (``key`` -> requests, tokens) that stays counted in :func:`pending` until the
write is done, so a check in this process sees its own queued use; :func:`read_with_pending` pairs a read of
the store with that tally so that each queued record counts exactly once. :func:`flush` waits for the queue;
pending writes are flushed at interpreter exit (up to 5 s).
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import sqlite_utils

from hfops.store import get_db

log = logging.getLogger(__name__)

Write = Callable[[sqlite_utils.Database], None]
T = TypeVar("T")
Tally = tuple[int, int]  # requests, tokens
CONSISTENT_READ_TRIES = 25  # a write takes milliseconds; past this, the read may count one record twice
CONSISTENT_READ_PAUSE = 0.002


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
        self._started = 0  # writes begun and finished: a write in flight may have committed or not
        self._finished = 0

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
            return self.pending_locked(db_file, key)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            with self._lock:
                self._started += 1
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
                with self._lock:
                    self._finished += 1
                self._queue.task_done()

    def read_with_pending(self, db_file: str, key: Hashable, read: Callable[[], T]) -> tuple[T, Tally]:
        """``read()`` and the tally pending under ``key``, with every queued write counted exactly once.

        A write in flight may have committed or not when ``read()`` looks: the read is taken while no write
        is in flight and none began or ended during it (a seqlock; retried a few milliseconds later). When
        the writer stays busy, the tally is read first and the store second: a record is then counted once
        or twice, never missed.
        """
        for _ in range(CONSISTENT_READ_TRIES):
            with self._lock:
                before = (self._started, self._finished)
            if before[0] == before[1]:
                value = read()
                with self._lock:
                    if (self._started, self._finished) == before:
                        return value, self.pending_locked(db_file, key)
            time.sleep(CONSISTENT_READ_PAUSE)
        tally = self.pending(db_file, key)
        return read(), tally

    def pending_locked(self, db_file: str, key: Hashable) -> tuple[int, int]:
        counted = self._pending.get((db_file, key), [0, 0, 0])
        return counted[0], counted[1]

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


def read_with_pending(db_path: str | Path, tally_key: Hashable, read: Callable[[], T]) -> tuple[T, Tally]:
    """``read()`` of the store and the tally queued under ``tally_key``, each queued write counted once
    (:meth:`_Writer.read_with_pending`)."""
    return _writer.read_with_pending(db_file(db_path), tally_key, read)


def flush(timeout: float = 10.0) -> bool:
    """Wait until every queued write is done; False on timeout."""
    return _writer.flush(timeout)
