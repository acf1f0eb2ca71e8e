"""Observability: Prometheus metrics read from the store at scrape time, alert thresholds, dashboards.

Modules (nothing heavy is imported here):

- :mod:`hfops.observability.thresholds`: the one source of truth for alert thresholds, histogram buckets,
  tiles and the Prometheus alert rules generated from them (``docs/observability/alerts.yml``).
- :mod:`hfops.observability.readings`: the SQL aggregates the exporter and the console page share.
- :mod:`hfops.observability.collector`: a custom ``prometheus_client`` collector (``sarvanom_*`` series).
- :mod:`hfops.observability.series`: time series and alert states for the Observability page.
- :mod:`hfops.observability.charts`: the tiles as Vega-Lite charts (Altair).
- :mod:`hfops.observability.grafana`: the Grafana dashboard (``docs/observability/grafana-dashboard.json``).
- :mod:`hfops.observability.server`: ``hfops metrics`` (HTTP exporter); :mod:`hfops.observability.api`
  mounts ``GET /metrics`` on ``hfops serve``.
"""
