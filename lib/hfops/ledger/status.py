"""What the status page's "free tier" panel shows, computed from the ledger (the page only draws it).

:func:`free_tier` gives the raw figures (buckets, allowance rows, the month's use); :func:`panel` turns them
into what a page draws: one :class:`Bar` per Hub window and per monthly limit (a 0-1 fraction for
``st.progress``, its plain-text label, a level for the colour), the notes under them, and a message when
nothing is known yet. :func:`hfops.observability.charts.free_tier` draws the same bars as a chart.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlite_utils

from hfops.config import Settings
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


def free_tier(db: sqlite_utils.Database, settings: Settings, now: float | None = None) -> FreeTier:
    """Read the panel's figures (a few small queries)."""
    from hfops.ledger.install import origin_key

    current = time.time() if now is None else now
    hub_origin = origin_key(settings.hub.endpoint)
    reserve_fraction = float(settings.hub.ratelimit_reserve)
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


# --- what a page draws ------------------------------------------------------------------------------------

HUB_GROUP = "Hub window"
INFERENCE_GROUP = "Inference this month"


@dataclass(frozen=True)
class Bar:
    """One bar of the panel (all text plain: escape it like any text)."""

    group: str  # HUB_GROUP | INFERENCE_GROUP
    label: str  # the Hub resource (api, resolvers, pages) or the limit (requests, tokens)
    fraction: float | None  # 0-1 to fill: a Hub window's share LEFT, a limit's share USED; None = no bar
    short: str  # "120 / 500 left", "3 / 4 used"
    text: str  # the full sentence: counts, reserve, reset time
    level: str  # ok | warn | alert | unknown (the colour)


@dataclass(frozen=True)
class Panel:
    """The free-tier panel: bars, notes under them, and ``empty`` when the ledger knows nothing yet."""

    bars: list[Bar]
    notes: list[str]
    empty: str  # "" when there is something to draw
    days_to_reset: float
    resets_at: str  # ISO-8601 UTC
    figures: FreeTier

    @property
    def hub_bars(self) -> list[Bar]:
        return [b for b in self.bars if b.group == HUB_GROUP]

    @property
    def inference_bars(self) -> list[Bar]:
        return [b for b in self.bars if b.group == INFERENCE_GROUP]

    def rows(self) -> list[dict[str, object]]:
        """The bars as table rows (group, label, figures, level)."""
        return [{"group": b.group, "what": b.label, "figures": b.text, "level": b.level} for b in self.bars]


def _seconds(value: float) -> str:
    if value < 120:
        return f"{value:.0f} s"
    if value < 7200:
        return f"{value / 60:.0f} min"
    return f"{value / 3600:.1f} h"


def _hub_bar(row: BucketRow) -> Bar:
    reset = f"resets in {_seconds(row.reset_in_seconds)}" if row.reset_in_seconds > 0 else "window reset"
    waits = f"; {row.waits} wait(s) taken, {_seconds(row.wait_seconds)} in all" if row.waits else ""
    if row.quota is None or row.remaining is None:
        left = "unknown" if row.remaining is None else f"{row.remaining:,}"
        return Bar(
            HUB_GROUP,
            row.resource,
            None,
            f"{left} left",
            f"{left} requests left of an unannounced quota, {reset}{waits}",
            "unknown",
        )
    level = "alert" if row.remaining <= row.reserve else "warn" if row.remaining <= 2 * row.reserve else "ok"
    return Bar(
        HUB_GROUP,
        row.resource,
        row.left_ratio,
        f"{row.remaining:,} / {row.quota:,} left",
        f"{row.remaining:,} of {row.quota:,} requests left (reserve {row.reserve:,}: calls wait below it), "
        f"{reset} ({row.reset_at}){waits}",
        level,
    )


def _allowance_bar(row: AllowanceRow, closed: bool, alert_ratio: float) -> Bar:
    if row.allowance is None:
        return Bar(
            INFERENCE_GROUP,
            row.limit,
            None,
            f"{row.used:,} used",
            f"{row.used:,} {row.limit} used this month; no allowance configured (unlimited)",
            "alert" if closed else "unknown",
        )
    ratio = row.used_ratio or 0.0
    eval_part = (
        f"; evals stop at {row.eval_limit:,} (the rest is kept for query refinement)"
        if row.eval_limit is not None and row.eval_limit < row.allowance
        else ""
    )
    level = "alert" if closed or ratio >= 1 else "warn" if ratio >= alert_ratio else "ok"
    return Bar(
        INFERENCE_GROUP,
        row.limit,
        min(ratio, 1.0),
        f"{row.used:,} / {row.allowance:,} used",
        f"{row.used:,} of {row.allowance:,} {row.limit} used this month ({ratio:.0%}){eval_part}",
        level,
    )


def panel(db: sqlite_utils.Database, settings: Settings, now: float | None = None) -> Panel:
    """The free-tier panel as a page draws it (one call; a few small queries)."""
    from hfops.observability.thresholds import ALLOWANCE_ALERT_RATIO

    figures = free_tier(db, settings, now)
    closed = figures.closed is not None
    bars = [_hub_bar(b) for b in figures.buckets]
    bars += [_allowance_bar(a, closed, ALLOWANCE_ALERT_RATIO) for a in figures.allowance]
    notes = []
    if not figures.buckets:
        notes.append(
            "No Hub response with rate-limit headers recorded yet: the windows appear after the first "
            "sync, download or check in a process that installed the ledger."
        )
    if figures.closed is not None:
        notes.append(
            f"HF Inference is closed for {figures.closed.month} since {figures.closed.closed_at} "
            f"({figures.closed.reason}); it reopens when the month rolls over."
        )
    failures = ", ".join(f"{n:,} {kind}" for kind, n in sorted(figures.usage.failures.items()))
    if failures:
        notes.append(f"Failed Inference requests this month: {failures}.")
    notes.append(
        f"The monthly allowance resets in {figures.days_to_reset:.1f} days ({figures.usage.resets_at})."
    )
    nothing = (
        not figures.buckets
        and figures.usage.requests == 0
        and all(a.allowance is None for a in figures.allowance)
    )
    empty = "no Hub or Inference use recorded yet" if nothing else ""
    return Panel(bars, notes, empty, figures.days_to_reset, figures.usage.resets_at, figures)
