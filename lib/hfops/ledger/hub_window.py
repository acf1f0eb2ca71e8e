"""The Hub's rate-limit windows, shared by every process using the store.

The Hub announces each bucket's state on every response (IETF draft headers, parsed by huggingface_hub's
``parse_ratelimit_headers``): ``RateLimit: "api";r=12;t=55`` (12 requests left, reset in 55 s) and
``RateLimit-Policy: "fixed window";"api";q=500;w=300`` (quota, window). :func:`observe` records them (one
upsert per response) in ``hub_ratelimit_buckets``; :func:`pace`, called before a request, waits until the
announced reset when the bucket is down to its reserve instead of spending the window and meeting a 429.

Why a reserve: a process reads the ledger, then sends; requests other processes have in flight at that
moment are not in the ledger yet. A reserve at least as large as the number of requests in flight at once
(across processes) keeps the window from running dry: two single-threaded processes need a reserve of 1.

Responses can be recorded out of order: within one window the ledger keeps the lowest ``remaining`` seen
(the server's count only goes down within a window); a response announcing a later reset starts a new
window; one announcing an earlier reset (a straggler from the previous window) is ignored.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import sqlite_utils

from hfops.errors import RetryableHubError
from hfops.store import rows, utcnow, write_tx

log = logging.getLogger(__name__)

# Two estimates of the same reset (observed time + integer t) differ by less than a second; windows of at
# least 2 s are then told apart from their neighbours.
SAME_WINDOW_TOLERANCE_SECONDS = 1.0
# Added to a wait: t is a whole number of seconds (huggingface_hub's own retry adds 1 s too).
WAIT_MARGIN_SECONDS = 1.0
DEFAULT_RESERVE_FRACTION = 0.05


class RateLimitLike(Protocol):
    """What :func:`huggingface_hub.utils.parse_ratelimit_headers` returns (read-only attributes)."""

    @property
    def resource_type(self) -> str: ...
    @property
    def remaining(self) -> int: ...
    @property
    def reset_in_seconds(self) -> int: ...
    @property
    def limit(self) -> int | None: ...
    @property
    def window_seconds(self) -> int | None: ...


@dataclass(frozen=True)
class Bucket:
    """One rate-limit bucket as last announced (for the status page and the metrics)."""

    origin: str
    resource: str
    remaining: int
    quota: int | None
    window_seconds: int | None
    reset_at: float  # Unix time
    observed_at: float
    responses: int

    def reset_in(self, now: float) -> float:
        """Seconds until the announced reset (0 once it has passed)."""
        return max(0.0, self.reset_at - now)

    def current_remaining(self, now: float) -> int | None:
        """Requests left now: the announced count, or the full quota once the window has reset.

        None if unknown.
        """
        if now < self.reset_at:
            return self.remaining
        return self.quota


@dataclass(frozen=True)
class RunRef:
    """The run a wait is recorded against (``kind`` as the run tables name it, e.g. sync, eval_run, job)."""

    kind: str
    id: int | str


@dataclass(frozen=True)
class WaitNotice:
    """A wait about to start, as reported to ``on_wait`` callbacks."""

    origin: str
    resource: str
    seconds: float
    remaining: int
    quota: int | None
    reserve: int
    run: RunRef | None

    @property
    def message(self) -> str:
        """The progress message, e.g. ``waiting 42 s for the Hub's api window``."""
        return f"waiting {math.ceil(self.seconds)} s for the Hub's {self.resource} window"


OnWait = Callable[[WaitNotice], None]


@dataclass(frozen=True)
class _Scope:
    on_wait: OnWait | None
    run: RunRef | None
    max_wait_seconds: float | None


_scope: contextvars.ContextVar[_Scope | None] = contextvars.ContextVar("hfops_ledger_scope", default=None)


@contextlib.contextmanager
def scope(
    on_wait: OnWait | None = None, run: RunRef | None = None, max_wait_seconds: float | None = None
) -> Iterator[None]:
    """In this block (this thread / context), waits are reported to ``on_wait`` and recorded against ``run``.

    A job wraps its Hub calls: ``with hub_window.scope(lambda n: ctx.progress(done, None, n.message,
    force=True), RunRef("sync", run_id)):``. A caller that must not block (the console's script thread)
    passes ``max_wait_seconds``: a longer wait raises :class:`RetryableHubError` (``retry_after`` set)
    before the request is sent. Threads started inside the block do not inherit it (they fall back to the
    process-wide callback given to :func:`hfops.ledger.install`).
    """
    token = _scope.set(_Scope(on_wait, run, max_wait_seconds))
    try:
        yield
    finally:
        _scope.reset(token)


_process_scope: list[_Scope] = []  # stack of process-wide scopes (threads without a scope of their own)
_process_lock = threading.Lock()


@contextlib.contextmanager
def process_scope(on_wait: OnWait | None = None, run: RunRef | None = None) -> Iterator[None]:
    """Like :func:`scope`, for every thread of the process that has no :func:`scope` of its own.

    For a worker running one job at a time: waits taken in pools the job starts (``snapshot_download``'s
    download threads, the sync's prefetch thread) are reported to the job and recorded against its run.
    """
    entry = _Scope(on_wait, run, None)
    with _process_lock:
        _process_scope.append(entry)
    try:
        yield
    finally:
        with _process_lock:
            _process_scope.remove(entry)


def _active_scope() -> _Scope | None:
    found = _scope.get()
    if found is not None:
        return found
    with _process_lock:
        return _process_scope[-1] if _process_scope else None


def current_scope() -> tuple[OnWait | None, RunRef | None]:
    """The ``on_wait`` callback and run of the innermost :func:`scope`, else of the :func:`process_scope`."""
    found = _active_scope()
    return (found.on_wait, found.run) if found else (None, None)


def route_of(path: str) -> str:
    """Which bucket a Hub request path draws on, by the Hub's names: ``api``, ``resolvers`` or ``pages``."""
    if path.startswith("/api/"):
        return "api"
    if "/resolve/" in path:
        return "resolvers"
    return "pages"


def reserve_for(quota: int | None, fraction: float) -> int:
    """Requests kept back per window of ``quota``: ``ceil(quota * fraction)``, at least 1 if ``fraction > 0``.

    0 when the quota is unknown or ``fraction`` is 0 (then only an exhausted window is waited for).
    """
    if quota is None or fraction <= 0:
        return 0
    return max(1, math.ceil(quota * fraction))


# --- recording ------------------------------------------------------------------------------------------

_UPSERT = """
INSERT INTO hub_ratelimit_buckets
    (origin, resource, remaining, quota, window_seconds, reset_at, observed_at, responses)
VALUES (:origin, :resource, :remaining, :quota, :window, :reset_at, :now, 1)
ON CONFLICT (origin, resource) DO UPDATE SET
    remaining = CASE
        WHEN excluded.reset_at > reset_at + :tolerance THEN excluded.remaining
        WHEN excluded.reset_at >= reset_at - :tolerance THEN MIN(remaining, excluded.remaining)
        ELSE remaining END,
    reset_at = CASE
        WHEN excluded.reset_at > reset_at + :tolerance THEN excluded.reset_at
        WHEN excluded.reset_at >= reset_at - :tolerance THEN MAX(reset_at, excluded.reset_at)
        ELSE reset_at END,
    quota = COALESCE(excluded.quota, quota),
    window_seconds = COALESCE(excluded.window_seconds, window_seconds),
    observed_at = MAX(observed_at, excluded.observed_at),
    responses = responses + 1
"""

_ROUTE = """
INSERT INTO hub_ratelimit_routes (origin, route, resource) VALUES (?, ?, ?)
ON CONFLICT (origin, route) DO UPDATE SET resource = excluded.resource WHERE resource != excluded.resource
"""


def observe(db: sqlite_utils.Database, origin: str, route: str, info: RateLimitLike, now: float) -> None:
    """Record one response's rate-limit headers (one upsert; the route mapping only changes rarely)."""
    params: dict[str, Any] = {
        "origin": origin,
        "resource": info.resource_type,
        "remaining": int(info.remaining),
        "quota": info.limit,
        "window": info.window_seconds,
        "reset_at": now + float(info.reset_in_seconds),
        "now": now,
        "tolerance": SAME_WINDOW_TOLERANCE_SECONDS,
    }
    with write_tx(db):
        db.execute(_UPSERT, params)
        db.execute(_ROUTE, [origin, route, info.resource_type])


@dataclass(frozen=True)
class _Announced:
    """Rate-limit state made from a 429's Retry-After when the server sent no RateLimit header."""

    resource_type: str
    remaining: int
    reset_in_seconds: int
    limit: int | None = None
    window_seconds: int | None = None


def observe_exhausted(
    db: sqlite_utils.Database, origin: str, route: str, retry_after: float, now: float
) -> None:
    """Record a 429 without RateLimit headers as an exhausted window resetting after ``Retry-After``."""
    resource = resource_of(db, origin, route)
    observe(db, origin, route, _Announced(resource, 0, math.ceil(retry_after)), now)


def resource_of(db: sqlite_utils.Database, origin: str, route: str) -> str:
    """The bucket ``route`` was last seen drawing on at ``origin``.

    Before any response, the route's own name.
    """
    found = db.execute(
        "SELECT resource FROM hub_ratelimit_routes WHERE origin = ? AND route = ?", [origin, route]
    ).fetchone()
    return str(found[0]) if found else route


def bucket_for(db: sqlite_utils.Database, origin: str, route: str) -> Bucket | None:
    """The bucket a request of ``route`` to ``origin`` will draw on, as last recorded (None if never seen)."""
    found = rows(
        db,
        "SELECT * FROM hub_ratelimit_buckets WHERE origin = ? AND resource = COALESCE("
        "(SELECT resource FROM hub_ratelimit_routes WHERE origin = ? AND route = ?), ?)",
        [origin, origin, route, route],
    )
    return _bucket(found[0]) if found else None


def _bucket(row: dict[str, Any]) -> Bucket:
    return Bucket(
        origin=row["origin"],
        resource=row["resource"],
        remaining=int(row["remaining"]),
        quota=row["quota"],
        window_seconds=row["window_seconds"],
        reset_at=float(row["reset_at"]),
        observed_at=float(row["observed_at"]),
        responses=int(row["responses"]),
    )


def buckets(db: sqlite_utils.Database) -> list[Bucket]:
    """Every recorded bucket, by origin and resource (the status page's free-tier panel, the metrics)."""
    return [_bucket(r) for r in rows(db, "SELECT * FROM hub_ratelimit_buckets ORDER BY origin, resource")]


# --- pacing ---------------------------------------------------------------------------------------------


def wait_needed(bucket: Bucket | None, reserve_fraction: float, now: float) -> float:
    """Seconds to wait before spending from ``bucket`` (0 = go): until its reset, plus a margin, when the
    window is down to its reserve."""
    if bucket is None or now >= bucket.reset_at:
        return 0.0
    if bucket.remaining > reserve_for(bucket.quota, reserve_fraction):
        return 0.0
    return bucket.reset_at - now + WAIT_MARGIN_SECONDS


def pace(
    db: sqlite_utils.Database,
    origin: str,
    route: str,
    reserve_fraction: float,
    *,
    on_wait: OnWait | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    max_waits: int = 10,
) -> float:
    """Before a request: wait while its bucket is at or below the reserve; return the seconds waited.

    Each wait is recorded in ``hub_ratelimit_waits`` (with the run of the current :func:`scope`) and
    reported to the scope's ``on_wait`` (else the one given here) before sleeping. The bucket is read
    again after each wait (another process may have seen the new window already); ``max_waits`` bounds
    the loop should a server keep announcing exhausted windows.
    """
    found = _active_scope()
    run = found.run if found else None
    report = (found.on_wait if found else None) or on_wait
    max_wait = found.max_wait_seconds if found else None
    waited = 0.0
    for _ in range(max_waits):
        now = clock()
        bucket = bucket_for(db, origin, route)
        seconds = wait_needed(bucket, reserve_fraction, now)
        if seconds <= 0 or bucket is None:
            return waited
        if max_wait is not None and seconds > max_wait:
            raise RetryableHubError(
                f"the Hub's {bucket.resource} window is down to its reserve ({bucket.remaining} left): "
                f"retry in {math.ceil(seconds)} s",
                retry_after=seconds,
            )
        notice = WaitNotice(
            origin,
            bucket.resource,
            seconds,
            bucket.remaining,
            bucket.quota,
            reserve_for(bucket.quota, reserve_fraction),
            run,
        )
        _record_wait(db, notice, now)
        if report is not None:
            try:
                report(notice)
            except Exception as exc:  # a broken progress callback must not stop the request
                log.warning("rate-limit wait callback failed: %s", exc)
        log.info("%s (%s left of %s)", notice.message, bucket.remaining, bucket.quota)
        sleep(seconds)
        waited += seconds
    return waited


def _record_wait(db: sqlite_utils.Database, notice: WaitNotice, now: float) -> None:
    with write_tx(db):
        db.execute(
            "INSERT INTO hub_ratelimit_waits (origin, resource, seconds, remaining, quota, reserve,"
            " started_at, started_epoch, run_kind, run_id, pid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                notice.origin,
                notice.resource,
                round(notice.seconds, 3),
                notice.remaining,
                notice.quota,
                notice.reserve,
                utcnow(),
                now,
                notice.run.kind if notice.run else None,
                str(notice.run.id) if notice.run else None,
                os.getpid(),
            ],
        )


# --- reading waits --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WaitTotals:
    """Waits taken (count and planned seconds)."""

    count: int
    seconds: float


def waits_total(db: sqlite_utils.Database) -> dict[str, WaitTotals]:
    """Waits ever taken, per resource (the ``..._hub_ratelimit_waits_total{resource}`` counter)."""
    return {
        r["resource"]: WaitTotals(int(r["n"]), float(r["s"] or 0.0))
        for r in rows(
            db, "SELECT resource, COUNT(*) n, SUM(seconds) s FROM hub_ratelimit_waits GROUP BY resource"
        )
    }


def waits_for_run(db: sqlite_utils.Database, run: RunRef) -> WaitTotals:
    """Waits recorded against one run (what its summary shows: "waited 2x, 84 s, for the Hub's window")."""
    found = rows(
        db,
        "SELECT COUNT(*) n, SUM(seconds) s FROM hub_ratelimit_waits WHERE run_kind = ? AND run_id = ?",
        [run.kind, str(run.id)],
    )[0]
    return WaitTotals(int(found["n"]), float(found["s"] or 0.0))


def recent_waits(db: sqlite_utils.Database, limit: int = 20) -> list[dict[str, Any]]:
    """The latest waits, newest first."""
    return rows(db, "SELECT * FROM hub_ratelimit_waits ORDER BY id DESC LIMIT ?", [limit])
