"""Prometheus families of the free-tier ledger, read from the store at scrape time.

The observability collector yields :func:`families` next to its own (same read transaction). Series
(``ns`` = ``[metrics] namespace``):

- ``ns_hub_ratelimit_remaining{resource}``: requests left in the Hub's current window (the quota once the
  announced reset has passed); ``ns_hub_ratelimit_quota{resource}``;
  ``ns_hub_ratelimit_reset_seconds{resource}``;
- ``ns_hub_ratelimit_waits_total{resource}`` and ``ns_hub_ratelimit_wait_seconds_total{resource}``: waits
  taken instead of spending a window's reserve (every process, since the store exists);
- ``ns_hf_inference_used_requests``, ``ns_hf_inference_used_tokens{direction}``: this month's Inference use;
  ``ns_hf_inference_month_failures{outcome}``;
- ``ns_hf_inference_allowance_requests`` / ``ns_hf_inference_allowance_tokens`` (only when configured) and
  ``ns_hf_inference_allowance_used_ratio{limit}`` (used / allowance, per configured limit): the alert
  ``HfInferenceAllowanceHigh`` fires at 0.8;
- ``ns_hf_inference_month_closed``: 1 while a 402 keeps Inference closed for the month;
  ``ns_hf_inference_allowance_reset_timestamp_seconds``: when the month's allowance resets.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import sqlite_utils
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from hfops.config import Settings
from hfops.ledger import hub_window, inference_usage

# (suffix, type, help), in output order.
FAMILIES: tuple[tuple[str, str, str], ...] = (
    (
        "hub_ratelimit_remaining",
        "gauge",
        "Requests left in the Hub's current rate-limit window, by resource "
        "(the quota once the window reset).",
    ),
    ("hub_ratelimit_quota", "gauge", "Requests per window the Hub allows, by resource (RateLimit-Policy q)."),
    ("hub_ratelimit_reset_seconds", "gauge", "Seconds until the Hub's current window resets, by resource."),
    ("hub_ratelimit_waits", "counter", "Waits for a Hub window to reset instead of spending its reserve."),
    ("hub_ratelimit_wait_seconds", "counter", "Seconds planned in waits for a Hub window to reset."),
    ("hf_inference_used_requests", "gauge", "HF Inference requests this month (UTC), all processes."),
    ("hf_inference_used_tokens", "gauge", "HF Inference tokens this month, by direction (input | output)."),
    ("hf_inference_month_failures", "gauge", "HF Inference requests this month that failed, by outcome."),
    ("hf_inference_allowance_requests", "gauge", "Configured monthly HF Inference request allowance."),
    ("hf_inference_allowance_tokens", "gauge", "Configured monthly HF Inference token allowance."),
    (
        "hf_inference_allowance_used_ratio",
        "gauge",
        "Share of the monthly HF Inference allowance used, by limit (requests | tokens).",
    ),
    (
        "hf_inference_month_closed",
        "gauge",
        "1 while a 402 (credits exhausted) keeps HF Inference closed this month.",
    ),
    ("hf_inference_allowance_reset_timestamp_seconds", "gauge", "Unix time the monthly allowance resets."),
)


def metric_names(namespace: str) -> list[str]:
    """Every series name :func:`families` exports (counters with ``_total``)."""
    return [f"{namespace}_{suffix}" + ("_total" if kind == "counter" else "") for suffix, kind, _ in FAMILIES]


def families(
    db: sqlite_utils.Database,
    namespace: str,
    settings: Settings | None = None,
    *,
    hub_origin: str | None = None,
    now: float | None = None,
) -> Iterator[Metric]:
    """The ledger's families.

    ``settings`` gives the allowance (its gauges are absent without it) and the Hub whose buckets are
    reported (``hub_origin``, ``scheme://host:port``, overrides it; default: huggingface.co).
    """
    current = time.time() if now is None else now
    docs = {suffix: doc for suffix, _, doc in FAMILIES}

    def gauge(suffix: str, labels: list[str] | None = None) -> GaugeMetricFamily:
        return GaugeMetricFamily(f"{namespace}_{suffix}", docs[suffix], labels=labels)

    def counter(suffix: str, labels: list[str] | None = None) -> CounterMetricFamily:
        return CounterMetricFamily(f"{namespace}_{suffix}", docs[suffix], labels=labels)

    if hub_origin is None:
        from hfops.config import HubConfig
        from hfops.ledger.install import origin_key

        hub_origin = origin_key(settings.hub.endpoint if settings is not None else HubConfig().endpoint)
    remaining, quota, reset = (
        gauge("hub_ratelimit_remaining", ["resource"]),
        gauge("hub_ratelimit_quota", ["resource"]),
        gauge("hub_ratelimit_reset_seconds", ["resource"]),
    )
    for bucket in hub_window.buckets(db):
        if bucket.origin != hub_origin:
            continue
        left = bucket.current_remaining(current)
        if left is not None:
            remaining.add_metric([bucket.resource], left)
        if bucket.quota is not None:
            quota.add_metric([bucket.resource], bucket.quota)
        reset.add_metric([bucket.resource], round(bucket.reset_in(current), 3))
    yield remaining
    yield quota
    yield reset

    waits, wait_seconds = (
        counter("hub_ratelimit_waits", ["resource"]),
        counter("hub_ratelimit_wait_seconds", ["resource"]),
    )
    for resource, totals in sorted(hub_window.waits_total(db).items()):
        waits.add_metric([resource], totals.count)
        wait_seconds.add_metric([resource], totals.seconds)
    yield waits
    yield wait_seconds

    when = datetime.fromtimestamp(current, UTC)
    usage = inference_usage.month_summary(db, when)
    used_requests = gauge("hf_inference_used_requests")
    used_requests.add_metric([], usage.requests)
    yield used_requests
    used_tokens = gauge("hf_inference_used_tokens", ["direction"])
    used_tokens.add_metric(["input"], usage.input_tokens)
    used_tokens.add_metric(["output"], usage.output_tokens)
    yield used_tokens
    failures = gauge("hf_inference_month_failures", ["outcome"])
    for outcome, n in sorted(usage.failures.items()):
        failures.add_metric([outcome], n)
    yield failures

    allowance_requests, allowance_tokens = (
        gauge("hf_inference_allowance_requests"),
        gauge("hf_inference_allowance_tokens"),
    )
    ratio = gauge("hf_inference_allowance_used_ratio", ["limit"])
    if settings is not None:
        limits = inference_usage.allowance(settings)
        if limits.requests is not None:
            allowance_requests.add_metric([], limits.requests)
            ratio.add_metric(["requests"], usage.requests / limits.requests)
        if limits.tokens is not None:
            allowance_tokens.add_metric([], limits.tokens)
            ratio.add_metric(["tokens"], usage.tokens / limits.tokens)
    yield allowance_requests
    yield allowance_tokens
    yield ratio
    closed = gauge("hf_inference_month_closed")
    closed.add_metric([], 1 if usage.closure is not None else 0)
    yield closed
    resets = gauge("hf_inference_allowance_reset_timestamp_seconds")
    resets.add_metric([], inference_usage.month_end(when).timestamp())
    yield resets
