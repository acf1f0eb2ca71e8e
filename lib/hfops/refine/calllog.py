"""The refine call log (``refine_calls``): one row per call, written off the request path.

Rows are queued and written by one background thread so a busy store (another process holding the
write lock) never pushes a refine call past its budget. :func:`flush` waits for the queue to drain
(tests, the console before showing history); pending rows are flushed at interpreter exit.
The query is stored as a SHA-256 hash only; tokens never reach this module.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import queue
import threading
from pathlib import Path
from typing import Any

from hfops.net import one_line
from hfops.store import get_db, rows, write_tx

log = logging.getLogger(__name__)

COLUMNS = (
    "created_at",
    "query_hash",
    "query_chars",
    "source",
    "model",
    "intent",
    "confidence",
    "outcome",
    "bypass_reason",
    "hf_requested",
    "hf_model",
    "status_code",
    "latency_ms",
    "local_latency_ms",
    "hf_latency_ms",
    "budget_ms",
    "within_budget",
    "caller",
    "error",
)


ERROR_CHARS = 200


def query_hash(query: str) -> str:
    """SHA-256 of the query text (what the log keeps instead of the text)."""
    return hashlib.sha256(query.encode("utf-8")).hexdigest()


def write_call(db_path: str | Path, row: dict[str, Any]) -> None:
    """Insert one call row now (synchronous)."""
    db = get_db(db_path)
    values = [row.get(c) for c in COLUMNS]
    error_index = COLUMNS.index("error")
    if values[error_index] is not None:  # the last guard: whatever the caller passed, no secret is stored
        values[error_index] = one_line(values[error_index], ERROR_CHARS)
    with write_tx(db):
        db.execute(
            f"INSERT INTO refine_calls ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})",
            values,
        )


class _Writer:
    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def put(self, db_path: str | Path, row: dict[str, Any]) -> None:
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="hfops-refine-log", daemon=True)
                self._thread.start()
        self._queue.put((str(db_path), row))

    def _run(self) -> None:
        while True:
            db_path, row = self._queue.get()
            try:
                write_call(db_path, row)
            except Exception as exc:  # never lose the thread; the row is dropped with a log line
                log.error("refine call log write failed: %s", one_line(exc))
            finally:
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


def log_call(db_path: str | Path, row: dict[str, Any]) -> None:
    """Queue one call row for the background writer."""
    _writer.put(db_path, row)


def flush(timeout: float = 10.0) -> bool:
    """Wait until every queued row is written; False on timeout."""
    return _writer.flush(timeout)


def recent_calls(db_path: str | Path, limit: int = 50) -> list[dict[str, Any]]:
    """The latest calls, newest first."""
    return rows(get_db(db_path), "SELECT * FROM refine_calls ORDER BY id DESC LIMIT ?", [limit])


def call_counts(db_path: str | Path) -> dict[str, Any]:
    """Totals for dashboards: calls by source, HF requests by outcome, bypasses by reason."""
    db = get_db(db_path)
    return {
        "by_source": {
            r["source"]: r["n"]
            for r in rows(db, "SELECT source, COUNT(*) n FROM refine_calls GROUP BY source")
        },
        "by_outcome": {
            r["outcome"]: r["n"]
            for r in rows(
                db, "SELECT outcome, COUNT(*) n FROM refine_calls WHERE hf_requested = 1 GROUP BY outcome"
            )
        },
        "by_bypass": {
            r["bypass_reason"]: r["n"]
            for r in rows(
                db,
                "SELECT bypass_reason, COUNT(*) n FROM refine_calls WHERE bypass_reason IS NOT NULL "
                "GROUP BY bypass_reason",
            )
        },
    }
