"""Limits on the HF Inference fallback, shared by every process using the same store.

- Request rate: ``per_minute`` and ``per_hour`` (default 10 and 100) enforced by pyrate-limiter's
  :class:`~pyrate_limiter.SQLiteBucket` (sliding-window log) in a SQLite file next to the store
  (``<store>.ratelimit.sqlite``, or ``[refine] limiter_path``), guarded by a file lock so
  check-and-take is atomic across processes.
- Cooldown: a 429 opens a cooldown for Retry-After seconds (default ``cooldown_seconds``), a 402
  (credits exhausted) one of ``credits_cooldown_seconds``; it lives in the store's
  ``refine_cooldowns`` table, so every process respects it, and lifts by itself when it expires.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pyrate_limiter import Duration, Limiter, Rate, SingleBucketFactory, SQLiteBucket
from pyrate_limiter.utils import validate_rate_list

from hfops.config import ConfigError, Settings
from hfops.net import one_line, retry_after_seconds
from hfops.store import get_db, one, utcnow, write_tx

log = logging.getLogger(__name__)

SCOPE = "hf-inference"
BUCKET_TABLE = "hf_inference_requests"
LOCK_TIMEOUT_SECONDS = 0.25  # waiting longer for another process's check-and-take is not worth the budget
LOCK_POLL_SECONDS = 0.002  # the file lock is polled; filelock's default (50 ms) made permits queue
MAX_RETRY_AFTER_SECONDS = 86_400.0


def limiter_path(settings: Settings) -> Path:
    """The SQLite file holding the shared request log of the limiter."""
    if settings.refine.limiter_path:
        return Path(settings.refine.limiter_path)
    store = settings.db_path
    return store.with_name(store.name + ".ratelimit.sqlite")


def rates_for(settings: Settings) -> list[Rate]:
    """The configured rates, validated (pyrate-limiter needs tighter-per-time first)."""
    per_minute, per_hour = settings.refine.per_minute, settings.refine.per_hour
    if per_minute < 1 or per_hour < 1:
        raise ConfigError("[refine] per_minute and per_hour must be at least 1")
    rates = [Rate(per_minute, Duration.MINUTE), Rate(per_hour, Duration.HOUR)]
    if not validate_rate_list(rates):
        raise ConfigError(
            f"[refine] per_minute={per_minute} and per_hour={per_hour} are inconsistent: "
            "per_hour must exceed per_minute and be at most 60 x per_minute"
        )
    return rates


class RequestLimiter:
    """Take-a-permit for one HF request; non-blocking: a full window means "rate limited" now.

    Threads of one process meet at a ``threading.Lock`` first (handed over at once), so only one of them
    at a time polls the file lock that other processes share: concurrent calls do not sleep through
    filelock's poll interval behind each other.
    """

    def __init__(self, path: Path, rates: list[Rate]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._process_lock = threading.Lock()
        self.rates = rates
        self.bucket = SQLiteBucket.init_from_file(
            rates, table=BUCKET_TABLE, db_path=str(path), use_file_lock=True
        )
        # No background leaker thread: the bucket is cleaned under the lock after each permit.
        self.limiter = Limiter(SingleBucketFactory(self.bucket, schedule_leak=False))
        self._file_lock: Any = self.bucket.lock  # a filelock.FileLock (pyrate-limiter types it as an RLock)

    def try_acquire(self) -> bool:
        """Take one permit if both windows have room; False when full (or the lock is contended too long)."""
        started = time.monotonic()
        if not self._process_lock.acquire(timeout=LOCK_TIMEOUT_SECONDS):
            log.warning(
                "rate limiter busy for %.2fs in this process; not calling the inference server",
                LOCK_TIMEOUT_SECONDS,
            )
            return False
        try:
            left = max(0.0, LOCK_TIMEOUT_SECONDS - (time.monotonic() - started))
            # The file lock is re-entrant per thread: holding it here makes the limiter's own
            # non-blocking acquire of it succeed, so only a full window answers False.
            with self._file_lock.acquire(timeout=left, poll_interval=LOCK_POLL_SECONDS):
                granted = bool(self.limiter.try_acquire(SCOPE, blocking=False))
                if granted:
                    self.bucket.leak(self.bucket.now())
                return granted
        except TimeoutError:
            log.warning(
                "rate limiter lock busy for %.2fs; not calling the inference server", LOCK_TIMEOUT_SECONDS
            )
            return False
        finally:
            self._process_lock.release()

    def used(self) -> tuple[int, int]:
        """Requests counted in the last minute and the last hour (read-only, no lock)."""
        now_ms = time.time_ns() // 1_000_000
        conn = sqlite3.connect(str(self.path), timeout=1)
        try:
            row = conn.execute(
                f"SELECT SUM(item_timestamp >= ?), SUM(item_timestamp >= ?) FROM '{BUCKET_TABLE}'",
                (now_ms - int(Duration.MINUTE), now_ms - int(Duration.HOUR)),
            ).fetchone()
        finally:
            conn.close()
        return int(row[0] or 0), int(row[1] or 0)

    def reset(self) -> None:
        """Forget every counted request (tests, operator reset)."""
        with self._file_lock.acquire(timeout=5):
            self.bucket.flush()


_limiters: dict[tuple[str, int, int], RequestLimiter] = {}
_limiters_lock = threading.Lock()


def get_limiter(settings: Settings) -> RequestLimiter:
    """This process's limiter for the configured file and rates (one per file and rates)."""
    path = limiter_path(settings).resolve()
    key = (str(path), settings.refine.per_minute, settings.refine.per_hour)
    with _limiters_lock:
        if key not in _limiters:
            _limiters[key] = RequestLimiter(path, rates_for(settings))
        return _limiters[key]


# --- cooldown ---------------------------------------------------------------------------------------


@dataclass
class Cooldown:
    """An open cooldown: no HF request until ``until_epoch``."""

    reason: str  # rate_limited | credits_exhausted
    until_epoch: float
    until_at: str
    status_code: int | None = None
    retry_after: str | None = None
    opened_at: str = ""

    @property
    def remaining_seconds(self) -> float:
        return max(0.0, self.until_epoch - time.time())


def parse_retry_after(value: str | None, default_seconds: float) -> float:
    """Seconds of cooldown from a Retry-After header (:func:`hfops.net.retry_after_seconds`, capped at a
    day); ``default_seconds`` when absent or unreadable."""
    seconds = retry_after_seconds(value, cap=MAX_RETRY_AFTER_SECONDS)
    return default_seconds if seconds is None else seconds


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# Cooldowns this process opened, by store, until their store write (which may wait for a busy disk or
# another writer) has completed in the background: this process's calls honour them at once.
_opened_here: dict[str, Cooldown] = {}
_opened_lock = threading.Lock()


def _store_key(db_path: str | Path) -> str:
    return str(Path(db_path).resolve())


def _log_opened(reason: str, until: float) -> None:
    if reason == "credits_exhausted":
        log.warning("HF Inference credits exhausted (402): fallback paused until %s", _iso(until))
    else:
        log.info("HF Inference %s: fallback paused until %s", reason, _iso(until))


def _write_cooldown(db_path: str | Path, cooldown: Cooldown) -> None:
    db = get_db(db_path)
    with write_tx(db):
        current = one(db, "SELECT until_epoch FROM refine_cooldowns WHERE scope = ?", [SCOPE])
        if current is None or current["until_epoch"] < cooldown.until_epoch:
            db.execute(
                "INSERT INTO refine_cooldowns (scope, reason, until_epoch, until_at, status_code,"
                " retry_after, opened_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(scope) DO UPDATE SET"
                " reason = excluded.reason, until_epoch = excluded.until_epoch, until_at = excluded.until_at,"
                " status_code = excluded.status_code, retry_after = excluded.retry_after,"
                " opened_at = excluded.opened_at",
                [
                    SCOPE,
                    cooldown.reason,
                    cooldown.until_epoch,
                    cooldown.until_at,
                    cooldown.status_code,
                    cooldown.retry_after,
                    cooldown.opened_at,
                ],
            )


def _new_cooldown(reason: str, seconds: float, status_code: int | None, retry_after: str | None) -> Cooldown:
    until = time.time() + max(0.0, seconds)
    return Cooldown(reason, until, _iso(until), status_code, retry_after, utcnow())


def open_cooldown(
    db_path: str | Path,
    reason: str,
    seconds: float,
    status_code: int | None = None,
    retry_after: str | None = None,
) -> Cooldown:
    """Open (or extend, never shorten) the shared cooldown, written to the store before returning."""
    cooldown = _new_cooldown(reason, seconds, status_code, retry_after)
    _write_cooldown(db_path, cooldown)
    _log_opened(reason, cooldown.until_epoch)
    return active_cooldown(db_path) or cooldown


def open_cooldown_soon(
    db_path: str | Path,
    reason: str,
    seconds: float,
    status_code: int | None = None,
    retry_after: str | None = None,
) -> Cooldown:
    """:func:`open_cooldown` for the request path: in force in this process at once, written to the store
    (for the other processes) by a background thread, so a 429 or 402 never waits for a disk."""
    cooldown = _new_cooldown(reason, seconds, status_code, retry_after)
    key = _store_key(db_path)
    with _opened_lock:
        known = _opened_here.get(key)
        if known is None or known.until_epoch < cooldown.until_epoch:
            _opened_here[key] = cooldown
    _log_opened(reason, cooldown.until_epoch)

    def write() -> None:
        try:
            _write_cooldown(db_path, cooldown)
        except Exception as exc:  # the in-process cooldown holds; the limiter still caps requests
            log.error("could not record the %s cooldown: %s", reason, one_line(exc))
            return
        with _opened_lock:  # written: from now on the store is the authority (a lift elsewhere counts)
            if _opened_here.get(key) is cooldown:
                del _opened_here[key]

    threading.Thread(target=write, name="hfops-refine-cooldown", daemon=True).start()
    return cooldown


def active_cooldown(db_path: str | Path) -> Cooldown | None:
    """The cooldown in force now (opened by this process or found in the store), or None."""
    now = time.time()
    with _opened_lock:
        here = _opened_here.get(_store_key(db_path))
    row = one(
        get_db(db_path), "SELECT * FROM refine_cooldowns WHERE scope = ? AND until_epoch > ?", [SCOPE, now]
    )
    stored = (
        None
        if row is None
        else Cooldown(
            row["reason"],
            row["until_epoch"],
            row["until_at"],
            row["status_code"],
            row["retry_after"],
            row["opened_at"],
        )
    )
    candidates = [c for c in (here, stored) if c is not None and c.until_epoch > now]
    return max(candidates, key=lambda c: c.until_epoch) if candidates else None


def clear_cooldown(db_path: str | Path) -> None:
    """Lift the cooldown now (operator action)."""
    with _opened_lock:
        _opened_here.pop(_store_key(db_path), None)
    db = get_db(db_path)
    with write_tx(db):
        db.execute("DELETE FROM refine_cooldowns WHERE scope = ?", [SCOPE])


def limiter_state(settings: Settings) -> dict[str, Any]:
    """What the console shows: permits left this minute/hour and the cooldown, if any."""
    limiter = get_limiter(settings)
    used_minute, used_hour = limiter.used()
    cooldown = active_cooldown(settings.store.path)
    return {
        "per_minute": settings.refine.per_minute,
        "per_hour": settings.refine.per_hour,
        "used_minute": used_minute,
        "used_hour": used_hour,
        "left_minute": max(0, settings.refine.per_minute - used_minute),
        "left_hour": max(0, settings.refine.per_hour - used_hour),
        "cooldown_reason": cooldown.reason if cooldown else None,
        "cooldown_until": cooldown.until_at if cooldown else None,
        "cooldown_seconds_left": round(cooldown.remaining_seconds, 1) if cooldown else 0.0,
        "credits_exhausted": bool(cooldown and cooldown.reason == "credits_exhausted"),
    }
