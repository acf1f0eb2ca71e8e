"""A monthly account of Inference API use, and the allowance every process checks before spending it.

- What is counted (``inference_usage``, one row per UTC month, base URL, model and outcome): requests that
  got an answer, recorded by the HTTP session's response hook (:mod:`hfops.ledger.install`) with the input
  and output tokens of chat completions (their ``usage``); failures that got no answer (timeouts, refused
  connections) recorded by the caller with :func:`record_exception`. Rows are written off the request
  path by one background thread per process (:func:`flush` waits for it); the allowance check adds what
  this process has queued but not yet written.
- The allowance (``[inference] monthly_requests`` / ``monthly_tokens``; 0 = unlimited) is shared by all
  processes. :func:`check_allowance` answers for a ``purpose``: ``refine`` may spend all of it, ``eval``
  all but ``[inference] refine_reserve`` (a fraction kept for query refinement). A 402 (credits
  exhausted) closes the month for Inference (``inference_closures``) until the month rolls over or an
  operator reopens it (``[inference] close_on_credits_exhausted = false`` leaves 402s to the refiner's
  cooldown).
- Concurrency: a check reads the ledger, then the caller sends; callers deciding at the same moment can
  each send one request past the allowance (at most one per caller in flight).
- Never stored: tokens, prompts, replies, error messages. Base URLs lose any credentials and query.
"""

from __future__ import annotations

import calendar
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import sqlite_utils

from hfops.config import Settings
from hfops.errors import EvalError
from hfops.ledger import writer
from hfops.store import one, rows, write_tx

log = logging.getLogger(__name__)

OUTCOMES = (
    "ok",
    "rate_limited",
    "credits_exhausted",
    "server_error",
    "client_error",
    "timeout",
    "connection_error",
)
PURPOSES = ("refine", "eval")


def _now(now: datetime | None) -> datetime:
    return (now or datetime.now(UTC)).astimezone(UTC)


def month_of(now: datetime | None = None) -> str:
    """The ledger's month key (``YYYY-MM``, UTC)."""
    return _now(now).strftime("%Y-%m")


def month_end(now: datetime | None = None) -> datetime:
    """When the current month's allowance resets (the first instant of next month, UTC)."""
    current = _now(now)
    if current.month == 12:
        return datetime(current.year + 1, 1, 1, tzinfo=UTC)
    return datetime(current.year, current.month + 1, 1, tzinfo=UTC)


def days_to_reset(now: datetime | None = None) -> float:
    """Days (fractional) until the allowance resets."""
    current = _now(now)
    return (month_end(current) - current).total_seconds() / 86_400


def days_in_month(now: datetime | None = None) -> int:
    current = _now(now)
    return calendar.monthrange(current.year, current.month)[1]


def clean_base_url(url: str) -> str:
    """``url`` without credentials, query, fragment or trailing slash (what the ledger stores)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def outcome_of_status(status: int) -> str:
    """The ledger's outcome for an HTTP status."""
    if status < 400:
        return "ok"
    if status == 429:
        return "rate_limited"
    if status == 402:
        return "credits_exhausted"
    if status >= 500:
        return "server_error"
    return "client_error"


def _tokens(usage: Any, name: str) -> int:
    value = usage.get(name) if isinstance(usage, Mapping) else getattr(usage, name, None)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


# --- recording ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UsageRecord:
    """One request's worth of ledger (what :func:`record_inference` adds)."""

    month: str
    base_url: str
    model: str
    outcome: str
    input_tokens: int = 0
    output_tokens: int = 0
    at: str = ""


def make_record(
    model: str, base_url: str, usage: Any = None, failure_kind: str | None = None, now: datetime | None = None
) -> UsageRecord:
    """A record for one request: ``usage`` is a chat completion's ``usage`` (mapping or object) or None;
    ``failure_kind`` None means ok, else one of :data:`OUTCOMES`."""
    outcome = failure_kind or "ok"
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown inference outcome {outcome!r} (known: {', '.join(OUTCOMES)})")
    current = _now(now)
    return UsageRecord(
        month=month_of(current),
        base_url=clean_base_url(base_url),
        model=str(model or "")[:200],
        outcome=outcome,
        input_tokens=_tokens(usage, "prompt_tokens") if usage is not None else 0,
        output_tokens=_tokens(usage, "completion_tokens") if usage is not None else 0,
        at=current.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    )


_UPSERT = """
INSERT INTO inference_usage (month, base_url, model, outcome, requests, input_tokens, output_tokens, \
first_at, last_at)
VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?)
ON CONFLICT (month, base_url, model, outcome) DO UPDATE SET
    requests = requests + 1,
    input_tokens = input_tokens + excluded.input_tokens,
    output_tokens = output_tokens + excluded.output_tokens,
    last_at = MAX(last_at, excluded.last_at)
"""


def write_record(db: sqlite_utils.Database, record: UsageRecord) -> None:
    """Add one record now (one upsert)."""
    with write_tx(db):
        db.execute(
            _UPSERT,
            [
                record.month,
                record.base_url,
                record.model,
                record.outcome,
                record.input_tokens,
                record.output_tokens,
                record.at,
                record.at,
            ],
        )


def record_inference(
    db: sqlite_utils.Database,
    model: str,
    base_url: str,
    usage: Any = None,
    failure_kind: str | None = None,
    now: datetime | None = None,
) -> UsageRecord:
    """Count one Inference request synchronously (tests, tools; the HTTP hook queues instead)."""
    record = make_record(model, base_url, usage, failure_kind, now)
    write_record(db, record)
    return record


def queue_record(db_path: str | Path, record: UsageRecord) -> None:
    """Queue one record for this process's background writer.

    :func:`check_allowance` counts it meanwhile.
    """
    writer.submit(
        db_path,
        lambda db: write_record(db, record),
        tally_key=("inference", record.month),
        tally=(1, record.input_tokens + record.output_tokens),
    )


def flush(timeout: float = 10.0) -> bool:
    """Wait until every queued record is written; False on timeout."""
    return writer.flush(timeout)


def _file_of(db: sqlite_utils.Database) -> str | None:
    for _seq, name, file in db.execute("PRAGMA database_list").fetchall():
        if name == "main" and file:
            return str(Path(file).resolve())
    return None


# --- what the HTTP hook sees ----------------------------------------------------------------------------


def model_of_request(base_url: str, url: str, body: bytes | None) -> str:
    """The model a request addresses: the JSON body's ``model``, else the path below ``base_url``."""
    if body:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            data = None
        model = data.get("model") if isinstance(data, dict) else None
        if isinstance(model, str) and model:
            return model
    path = urlsplit(url).path
    below = path[len(urlsplit(base_url).path.rstrip("/")) :].strip("/")
    if below.startswith("hf-inference/models/"):
        below = below.removeprefix("hf-inference/models/").split("/pipeline/")[0]
    return below or "(base url)"


def is_streaming(body: bytes | None) -> bool:
    if not body:
        return False
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and bool(data.get("stream"))


def usage_of_body(body: bytes) -> dict[str, Any] | None:
    """The ``usage`` object of a chat completion body (None when absent or not JSON)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    usage = data.get("usage") if isinstance(data, dict) else None
    return usage if isinstance(usage, dict) else None


def close_month(
    db: sqlite_utils.Database,
    reason: str,
    status_code: int | None,
    base_url: str | None,
    now: datetime | None = None,
) -> None:
    """Close Inference for the rest of the month (a 402); a month already closed stays closed as it was."""
    current = _now(now)
    with write_tx(db):
        db.execute(
            "INSERT INTO inference_closures (month, reason, status_code, base_url, closed_at)"
            " VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (month) DO UPDATE SET reason = excluded.reason, status_code = excluded.status_code,"
            " base_url = excluded.base_url, closed_at = excluded.closed_at, reopened_at = NULL"
            " WHERE reopened_at IS NOT NULL",
            [
                month_of(current),
                reason,
                status_code,
                clean_base_url(base_url) if base_url else None,
                current.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            ],
        )
    log.warning(
        "HF Inference %s (HTTP %s): closed until %s", reason, status_code, month_end(current).isoformat()
    )


def reopen_month(db: sqlite_utils.Database, now: datetime | None = None) -> bool:
    """Operator action: reopen this month after a 402 (credits bought). True if a closure was lifted."""
    current = _now(now)
    with write_tx(db):
        cursor = db.execute(
            "UPDATE inference_closures SET reopened_at = ? WHERE month = ? AND reopened_at IS NULL",
            [current.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), month_of(current)],
        )
    return bool(cursor.rowcount)


@dataclass(frozen=True)
class Closure:
    """This month is closed for Inference."""

    month: str
    reason: str
    status_code: int | None
    base_url: str | None
    closed_at: str


def closure(db: sqlite_utils.Database, now: datetime | None = None) -> Closure | None:
    """The closure in force this month, or None."""
    row = one(
        db, "SELECT * FROM inference_closures WHERE month = ? AND reopened_at IS NULL", [month_of(_now(now))]
    )
    if row is None:
        return None
    return Closure(row["month"], row["reason"], row["status_code"], row["base_url"], row["closed_at"])


# --- reading --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelUsage:
    """One model at one base URL this month."""

    base_url: str
    model: str
    requests: int
    input_tokens: int
    output_tokens: int
    failures: dict[str, int]


@dataclass(frozen=True)
class Usage:
    """The month's Inference use (all models), as the status page and the metrics show it."""

    month: str
    requests: int
    input_tokens: int
    output_tokens: int
    failures: dict[str, int]  # outcome -> requests, ok excluded
    models: list[ModelUsage] = field(default_factory=list)
    closure: Closure | None = None
    resets_at: str = ""
    days_to_reset: float = 0.0

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def month_summary(db: sqlite_utils.Database, now: datetime | None = None) -> Usage:
    """This month's use from the ledger (rows already written; see :func:`flush`)."""
    current = _now(now)
    month = month_of(current)
    found = rows(
        db,
        "SELECT base_url, model, outcome, requests, input_tokens, output_tokens FROM inference_usage"
        " WHERE month = ? ORDER BY base_url, model, outcome",
        [month],
    )
    per_model: dict[tuple[str, str], dict[str, Any]] = {}
    failures: dict[str, int] = {}
    for row in found:
        entry = per_model.setdefault(
            (row["base_url"], row["model"]), {"requests": 0, "in": 0, "out": 0, "failures": {}}
        )
        entry["requests"] += row["requests"]
        entry["in"] += row["input_tokens"]
        entry["out"] += row["output_tokens"]
        if row["outcome"] != "ok":
            entry["failures"][row["outcome"]] = row["requests"]
            failures[row["outcome"]] = failures.get(row["outcome"], 0) + row["requests"]
    models = [
        ModelUsage(base, model, e["requests"], e["in"], e["out"], e["failures"])
        for (base, model), e in per_model.items()
    ]
    return Usage(
        month=month,
        requests=sum(m.requests for m in models),
        input_tokens=sum(m.input_tokens for m in models),
        output_tokens=sum(m.output_tokens for m in models),
        failures=failures,
        models=models,
        closure=closure(db, current),
        resets_at=month_end(current).strftime("%Y-%m-%dT%H:%M:%SZ"),
        days_to_reset=round(days_to_reset(current), 2),
    )


# --- the allowance ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Allowance:
    """The configured monthly allowance (None = unlimited) and the part kept for refinement."""

    requests: int | None
    tokens: int | None
    refine_reserve: float
    credits_close_month: bool

    def limits_for(self, purpose: str) -> tuple[int | None, int | None]:
        """(requests, tokens) a ``purpose`` may reach: all of it for refine, all but the reserve for eval."""
        if purpose not in PURPOSES:
            raise ValueError(f"unknown purpose {purpose!r} (known: {', '.join(PURPOSES)})")
        if purpose == "refine":
            return self.requests, self.tokens
        keep = 1.0 - self.refine_reserve
        return (
            None if self.requests is None else math.floor(self.requests * keep + 1e-9),
            None if self.tokens is None else math.floor(self.tokens * keep + 1e-9),
        )


def allowance(settings: Settings) -> Allowance:
    """The allowance from ``[inference]`` (0 = unlimited; values range-checked by ``config.validate``)."""
    section = settings.inference
    return Allowance(
        requests=int(section.monthly_requests) if section.monthly_requests > 0 else None,
        tokens=int(section.monthly_tokens) if section.monthly_tokens > 0 else None,
        refine_reserve=min(max(float(section.refine_reserve), 0.0), 1.0),
        credits_close_month=bool(section.close_on_credits_exhausted),
    )


@dataclass(frozen=True)
class Decision:
    """Whether a request for ``purpose`` may be sent now, and why not."""

    allowed: bool
    purpose: str
    reason: str | None  # None | budget_exhausted | credits_exhausted
    message: str
    requests_used: int
    tokens_used: int
    requests_limit: int | None  # for this purpose (None = unlimited)
    tokens_limit: int | None
    resets_at: str


def check_allowance(
    db: sqlite_utils.Database, settings: Settings, purpose: str = "refine", now: datetime | None = None
) -> Decision:
    """May one more Inference request be sent for ``purpose`` this month? Cheap: two indexed reads.

    ``budget_exhausted`` when the month's requests or tokens reached the purpose's limit;
    ``credits_exhausted`` when a 402 closed the month (and closing is configured).
    """
    current = _now(now)
    month = month_of(current)
    limits = allowance(settings)
    requests_limit, tokens_limit = limits.limits_for(purpose)
    # The stored month and this process's queued records, each record counted once (writer.read_with_pending)

    def stored() -> Any:
        return db.execute(
            "SELECT COALESCE(SUM(requests), 0), COALESCE(SUM(input_tokens + output_tokens), 0)"
            " FROM inference_usage"
            " WHERE month = ?",
            [month],
        ).fetchone()

    db_file = _file_of(db)
    if db_file:
        total, queued = writer.read_with_pending(db_file, ("inference", month), stored)
        queued_requests, queued_tokens = queued
    else:
        total, queued_requests, queued_tokens = stored(), 0, 0
    requests_used, tokens_used = int(total[0]) + queued_requests, int(total[1]) + queued_tokens
    resets = month_end(current)
    resets_at = resets.strftime("%Y-%m-%dT%H:%M:%SZ")
    reset_text = f"{resets:%Y-%m-%d} 00:00 UTC ({days_to_reset(current):.1f} days)"

    def decide(allowed: bool, reason: str | None, message: str) -> Decision:
        return Decision(
            allowed,
            purpose,
            reason,
            message,
            requests_used,
            tokens_used,
            requests_limit,
            tokens_limit,
            resets_at,
        )

    closed = closure(db, current) if limits.credits_close_month else None
    if closed is not None:
        return decide(
            False,
            "credits_exhausted",
            f"HF Inference answered {closed.status_code or 402} (credits exhausted) "
            f"on {closed.closed_at[:10]}: "
            f"Inference is closed until {reset_text} unless an operator reopens it once credits are added",
        )
    kept = (
        ""
        if purpose == "refine"
        else (
            f" (evals may use {100 - round(limits.refine_reserve * 100)} % of it; "
            "the rest is kept for query refinement)"
        )
    )
    if requests_limit is not None and requests_used >= requests_limit:
        return decide(
            False,
            "budget_exhausted",
            f"monthly Inference allowance reached for {purpose}: "
            f"{requests_used} of {limits.requests} requests"
            f" used{kept}; it resets on {reset_text}",
        )
    if tokens_limit is not None and tokens_used >= tokens_limit:
        return decide(
            False,
            "budget_exhausted",
            f"monthly Inference allowance reached for {purpose}: {tokens_used} of {limits.tokens} tokens"
            f" used{kept}; it resets on {reset_text}",
        )
    return decide(True, None, "within the monthly Inference allowance")


def ensure_eval_allowed(
    db: sqlite_utils.Database, settings: Settings, now: datetime | None = None
) -> Decision:
    """For evals that call the Inference API.

    Raise :class:`EvalError` with the reason when they may not start.
    """
    decision = check_allowance(db, settings, "eval", now)
    if not decision.allowed:
        raise EvalError(f"eval not started: {decision.message}")
    return decision


def record_exception(
    db_path: str | Path, model: str, base_url: str, exc: BaseException, now: datetime | None = None
) -> str | None:
    """Count a failed request that got no HTTP answer (timeout, refused connection); return its outcome.

    Failures with an answer (429, 402, 5xx...) were counted by the HTTP hook already: returns None and
    records nothing for them, so callers may call this from any ``except`` branch without double counting.
    """
    if getattr(getattr(exc, "response", None), "status_code", None) is not None:
        return None
    import httpx2
    from huggingface_hub.errors import InferenceTimeoutError

    if isinstance(exc, InferenceTimeoutError | httpx2.TimeoutException | TimeoutError):
        outcome = "timeout"
    elif isinstance(exc, httpx2.TransportError | OSError):
        outcome = "connection_error"
    else:
        return None
    queue_record(db_path, make_record(model, base_url, None, outcome, now))
    return outcome
