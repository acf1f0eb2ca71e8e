"""What the status page's "free tier" panel shows, computed from the ledger (the page only draws it)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlite_utils

from hfops.ledger import hub_window, inference_usage


@dataclass(frozen=True)
class BucketRow:
    """One Hub bucket: a remaining/quota bar and when it resets."""

    resource: str
    remaining: int | None  # None when never announced with a quota and the window has reset
    quota: int | None
    reserve: int
    reset_in_seconds: float
    reset_at: str  # ISO-8601 UTC
    waits: int  # waits ever taken for this bucket
    wait_seconds: float

    @property
    def left_ratio(self) -> float | None:
        """remaining / quota (the bar), None when the quota is unknown."""
        if self.quota is None or self.remaining is None or self.quota <= 0:
            return None
        return self.remaining / self.quota


@dataclass(frozen=True)
class AllowanceRow:
    """One monthly limit: a used/allowance bar (allowance None = unlimited)."""

    limit: str  # requests | tokens
    used: int
    allowance: int | None
    eval_limit: int | None  # what evals may reach (the rest is the refine reserve)

    @property
    def used_ratio(self) -> float | None:
        return None if not self.allowance else self.used / self.allowance


@dataclass(frozen=True)
class FreeTier:
    """The panel: Hub buckets of the configured endpoint, the month's Inference use against the allowance."""

    buckets: list[BucketRow]
    allowance: list[AllowanceRow]
    usage: inference_usage.Usage
    days_to_reset: float
    closed: inference_usage.Closure | None


def free_tier(db: sqlite_utils.Database, settings: Any, now: float | None = None) -> FreeTier:
    """Read the panel's figures (a few small queries)."""
    from hfops.ledger.install import origin_key

    current = time.time() if now is None else now
    hub_origin = origin_key(settings.hub.endpoint)
    reserve_fraction = float(getattr(settings.hub, "ratelimit_reserve", hub_window.DEFAULT_RESERVE_FRACTION))
    waits = hub_window.waits_total(db)
    rows = [
        BucketRow(
            resource=b.resource,
            remaining=b.current_remaining(current),
            quota=b.quota,
            reserve=hub_window.reserve_for(b.quota, reserve_fraction),
            reset_in_seconds=round(b.reset_in(current), 1),
            reset_at=datetime.fromtimestamp(b.reset_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            waits=waits[b.resource].count if b.resource in waits else 0,
            wait_seconds=waits[b.resource].seconds if b.resource in waits else 0.0,
        )
        for b in hub_window.buckets(db)
        if b.origin == hub_origin
    ]
    when = datetime.fromtimestamp(current, UTC)
    usage = inference_usage.month_summary(db, when)
    limits = inference_usage.allowance(settings)
    eval_requests, eval_tokens = limits.limits_for("eval")
    allowance = [
        AllowanceRow("requests", usage.requests, limits.requests, eval_requests),
        AllowanceRow("tokens", usage.tokens, limits.tokens, eval_tokens),
    ]
    return FreeTier(rows, allowance, usage, round(inference_usage.days_to_reset(when), 2), usage.closure)
