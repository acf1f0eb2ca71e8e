"""A custom ``prometheus_client`` collector that reads the store at scrape time.

Every sample is computed from durable rows (models, candidates, eval runs and metrics, sync runs, the
refine call log), so counters count the work of every process and survive exporter restarts: a new
exporter process reports the same numbers. Histograms are built from stored latencies (cumulative
buckets, ``_sum``, ``_count``).

Scrape cost stays bounded: small tables are aggregated in SQL at each scrape; the refine call log (one row
per call, unbounded) is folded in incrementally: each scrape aggregates only rows with an id above the
last one seen (:class:`RefineTally`). SQLite commits rows one writer at a time, so once id N is visible
every lower id is committed too; the first scrape of a process reads the whole log once.

All queries of one scrape run in one read transaction (one consistent snapshot; WAL readers never wait
for writers).

The free-tier ledger's families (:mod:`hfops.ledger.metrics`: Hub rate-limit windows, the month's Inference
use against the allowance) are yielded after these, in the same read transaction; they need the settings
for the allowance and the Hub's origin.

Series (``ns`` = ``[metrics] namespace``, default ``sarvanom``) are listed in :func:`metric_names` and
documented in ``docs/observability/dashboards.md`` and ``docs/free_tier.md``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import sqlite_utils
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from hfops.config import Settings
from hfops.ledger import metrics as ledger_metrics
from hfops.observability import readings
from hfops.observability.readings import Histogram, RefineTotals
from hfops.observability.thresholds import check_namespace
from hfops.store import connect

# (suffix, type, help): every family the collector exports, in output order.
FAMILIES: tuple[tuple[str, str, str], ...] = (
    ("hf_candidates_found", "gauge", "Candidates in the registry by pipeline tag, licence and status."),
    ("hf_models_discovered", "counter", "Models ever stored by discovery (Hub sync or snapshot)."),
    ("shadow_eval_runs", "counter", "Shadow eval runs that ended, by status (succeeded | failed)."),
    (
        "shadow_eval_runs_active",
        "gauge",
        "Shadow eval runs waiting or in progress, by status (queued | running).",
    ),
    (
        "shadow_eval_last_run_timestamp_seconds",
        "gauge",
        "Unix time the most recent shadow eval run ended (succeeded or failed); 0 = never.",
    ),
    (
        "store_created_timestamp_seconds",
        "gauge",
        "Unix time the store was created (its first migration): the clock of the 'nothing yet' alerts.",
    ),
    ("hf_datasets_eval", "counter", "Eval runs that ended, by dataset and status (succeeded | failed)."),
    (
        "hf_eval_scores",
        "gauge",
        "Latest eval score (0-1) of each model per task, dataset and metric "
        "(latest succeeded run it took part in).",
    ),
    (
        "hf_production_model",
        "gauge",
        "1 for the model serving each task, by role (promoted | baseline: nobody promoted a model).",
    ),
    (
        "refiner_latency_hf_api_seconds",
        "histogram",
        "Time a refine call waited for the HF Inference answer "
        "(requests sent only; capped by the fallback deadline).",
    ),
    (
        "refine_latency_seconds",
        "histogram",
        "End-to-end refine latency by source of the result (local | hf).",
    ),
    ("hf_inference_requests", "counter", "Requests sent to HF Inference by the refiner, by outcome."),
    (
        "hf_inference_attempts",
        "counter",
        "HF Inference requests the refiner wanted to send: "
        "sent + refused by the shared limiter or a cooldown.",
    ),
    (
        "hf_inference_rate_limited",
        "counter",
        "Wanted HF Inference requests that were rate limited, by reason (hub_429 | limiter | cooldown).",
    ),
    (
        "hf_sync_last_success_timestamp_seconds",
        "gauge",
        "Unix time the last successful Hub sync finished; 0 = never.",
    ),
    ("hf_sync_last_duration_seconds", "gauge", "Duration of the last successful Hub sync."),
    ("hf_sync_runs", "counter", "Hub sync runs that ended, by status (succeeded | failed | interrupted)."),
    (
        "hf_sync_errors",
        "counter",
        "Error messages recorded by Hub sync runs (skipped records, failed pages).",
    ),
)


def metric_names(namespace: str) -> list[str]:
    """Every series name the collector exports (histograms as their base name, counters with ``_total``),
    the ledger's included."""
    own = [f"{namespace}_{suffix}" + ("_total" if kind == "counter" else "") for suffix, kind, _ in FAMILIES]
    return own + ledger_metrics.metric_names(namespace)


class RefineTally:
    """Running refine totals for one store, updated with the rows added since the previous scrape."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen_id = 0
        self.totals = RefineTotals()

    def update(self, db: sqlite_utils.Database) -> RefineTotals:
        """Fold in new rows (inside the caller's read transaction) and return the totals."""
        with self.lock:
            top = readings.max_refine_id(db)
            if top < self.seen_id:  # the log was emptied or the store replaced: start over
                self.seen_id, self.totals = 0, RefineTotals()
            if top > self.seen_id:
                new = readings.refine_totals(db, "id > ? AND id <= ?", [self.seen_id, top])
                for part in new.values():
                    self.totals.add(part)
                self.seen_id = top
            snapshot = RefineTotals()
            snapshot.add(self.totals)
            return snapshot


_tallies: dict[tuple[str, int], RefineTally] = {}
_tallies_lock = threading.Lock()


def _tally_for(path: Path) -> RefineTally:
    key = (str(path.resolve()), os.stat(path).st_ino)
    with _tallies_lock:
        return _tallies.setdefault(key, RefineTally())


def _histogram(name: str, doc: str, labels: list[str], series: dict[tuple[str, ...], Histogram]) -> Metric:
    family = HistogramMetricFamily(name, doc, labels=labels)
    for label_values, hist in series.items():
        buckets = [(floatToGoString(le), count) for le, count in hist.buckets()]
        family.add_metric(list(label_values), buckets=buckets, sum_value=hist.sum_ms / 1000)
    return family


class StoreCollector(Collector):
    """Reads the store at ``db_path`` at every scrape and yields the ``<namespace>_*`` families.

    ``settings`` gives the defaults of ``db_path`` and ``namespace`` and the ledger's allowance and Hub
    origin (without settings the allowance gauges are absent and the Hub is huggingface.co).
    """

    def __init__(
        self,
        db_path: str | Path | None = None,
        namespace: str | None = None,
        settings: Settings | None = None,
    ) -> None:
        if db_path is None:
            if settings is None:
                raise ValueError("StoreCollector needs db_path or settings")
            db_path = settings.store.path
        if namespace is None:
            namespace = settings.metrics.namespace if settings is not None else "sarvanom"
        self.db_path = Path(db_path)
        self.namespace = check_namespace(namespace)
        self.settings = settings
        self.docs = {suffix: doc for suffix, _, doc in FAMILIES}

    def describe(self) -> Iterator[Metric]:
        return iter(())  # nothing read at registration

    def _name(self, suffix: str) -> str:
        return f"{self.namespace}_{suffix}"

    def collect(self) -> Iterator[Metric]:
        db = connect(self.db_path)
        try:
            db.conn.execute("BEGIN")  # one snapshot for the whole scrape
            try:
                families = list(self._families(db))
            finally:
                db.conn.execute("COMMIT")
        finally:
            db.conn.close()
        yield from families

    def _gauge(self, suffix: str, labels: list[str] | None = None) -> GaugeMetricFamily:
        return GaugeMetricFamily(self._name(suffix), self.docs[suffix], labels=labels)

    def _counter(self, suffix: str, labels: list[str] | None = None) -> CounterMetricFamily:
        return CounterMetricFamily(self._name(suffix), self.docs[suffix], labels=labels)

    def _families(self, db: sqlite_utils.Database) -> Iterator[Metric]:
        found = self._gauge("hf_candidates_found", ["pipeline_tag", "license", "status"])
        for row in readings.candidates_found(db):
            found.add_metric([row["pipeline_tag"], row["license"], row["status"]], row["n"])
        yield found

        discovered = self._counter("hf_models_discovered")
        discovered.add_metric([], readings.models_discovered(db))
        yield discovered

        run_counts = readings.eval_run_counts(db)
        by_status: dict[str, int] = {}
        for (_, status), n in run_counts.items():
            by_status[status] = by_status.get(status, 0) + n
        ended = self._counter("shadow_eval_runs", ["status"])
        active = self._gauge("shadow_eval_runs_active", ["status"])
        for status in ("succeeded", "failed"):
            ended.add_metric([status], by_status.get(status, 0))
        for status in ("queued", "running"):
            active.add_metric([status], by_status.get(status, 0))
        yield ended
        yield active

        last_run = self._gauge("shadow_eval_last_run_timestamp_seconds")
        last_run.add_metric([], readings.last_eval_run_end(db) or 0.0)
        yield last_run
        created = self._gauge("store_created_timestamp_seconds")
        created_at = readings.store_created(db)
        if created_at is not None:
            created.add_metric([], created_at)
        yield created

        datasets = self._counter("hf_datasets_eval", ["dataset", "status"])
        for (dataset, status), n in sorted(run_counts.items()):
            if status in ("succeeded", "failed"):
                datasets.add_metric([dataset, status], n)
        yield datasets

        scores = self._gauge("hf_eval_scores", ["model", "task", "dataset", "metric"])
        for row in readings.latest_scores(db):
            scores.add_metric([row["model"], row["task"], row["dataset"], row["metric"]], row["value"])
        yield scores

        production = self._gauge("hf_production_model", ["task", "model", "role"])
        for task, serving in readings.serving(db).items():
            production.add_metric([task, serving.model, serving.role], 1)
        yield production

        refine = _tally_for(self.db_path).update(db)
        yield _histogram(
            self._name("refiner_latency_hf_api_seconds"),
            self.docs["refiner_latency_hf_api_seconds"],
            [],
            {(): refine.hf_api},
        )
        by_source = {(source,): refine.latency.get(source, Histogram()) for source in ("local", "hf")}
        by_source.update({(source,): hist for source, hist in refine.latency.items()})
        yield _histogram(
            self._name("refine_latency_seconds"),
            self.docs["refine_latency_seconds"],
            ["source"],
            dict(sorted(by_source.items())),
        )

        requests = self._counter("hf_inference_requests", ["outcome"])
        for outcome, n in readings.inference_outcomes(refine).items():
            requests.add_metric([outcome], n)
        yield requests
        attempts = self._counter("hf_inference_attempts")
        attempts.add_metric([], refine.attempts)
        yield attempts
        limited = self._counter("hf_inference_rate_limited", ["reason"])
        for reason, n in readings.rate_limit_reasons(refine).items():
            limited.add_metric([reason], n)
        yield limited

        sync = readings.sync_health(db)
        last_success = self._gauge("hf_sync_last_success_timestamp_seconds")
        last_success.add_metric([], sync.last_success or 0.0)
        yield last_success
        duration = self._gauge("hf_sync_last_duration_seconds")
        if sync.last_duration is not None:
            duration.add_metric([], sync.last_duration)
        yield duration
        runs = self._counter("hf_sync_runs", ["status"])
        for status, n in sync.runs.items():
            runs.add_metric([status], n)
        yield runs
        errors = self._counter("hf_sync_errors")
        errors.add_metric([], sync.errors)
        yield errors

        yield from ledger_metrics.families(db, self.namespace, self.settings)


def build_registry(
    db_path: str | Path | None = None, namespace: str | None = None, settings: Settings | None = None
) -> CollectorRegistry:
    """A registry holding only the store collector (no process/platform collectors)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(db_path, namespace, settings))
    return registry


def scrape(
    db_path: str | Path | None = None, namespace: str | None = None, settings: Settings | None = None
) -> str:
    """One scrape in the Prometheus text format (what ``hfops metrics --once`` prints)."""
    return generate_latest(build_registry(db_path, namespace, settings)).decode("utf-8")
