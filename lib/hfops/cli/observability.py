"""``hfops metrics``: the Prometheus exporter (``--once`` prints one scrape; ``--rules`` / ``--dashboard``
print the alert rules and the Grafana dashboard generated for the configured namespace)."""

from __future__ import annotations

import argparse
import json
import sys

from hfops.config import Settings


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add the ``metrics`` verb."""
    p = sub.add_parser(
        "metrics",
        parents=[common],
        help="serve Prometheus metrics read from the store (/metrics)",
        description="Serve /metrics: series computed from the store at each scrape (namespace from [metrics] "
        "namespace). --once prints one scrape and exits; --rules prints the alerting rules and --dashboard "
        "the Grafana dashboard for that namespace.",
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default [metrics] port, 9108)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--once", action="store_true", help="print one scrape to stdout and exit")
    what.add_argument("--rules", action="store_true", help="print the Prometheus alerting rules (alerts.yml)")
    what.add_argument("--dashboard", action="store_true", help="print the Grafana dashboard JSON")
    p.set_defaults(
        func=cmd_metrics,
        setting_overrides=lambda a: {"metrics.port": a.port},
        uses_store=lambda a: not (a.rules or a.dashboard),  # generating files needs no store
    )


def cmd_metrics(args: argparse.Namespace, settings: Settings) -> int:
    """Serve, print one scrape, or print the generated rules / dashboard."""
    namespace = settings.metrics.namespace
    if args.rules:
        from hfops.observability.thresholds import rules_yaml

        sys.stdout.write(rules_yaml(namespace))
        return 0
    if args.dashboard:
        from hfops.observability.grafana import dashboard

        sys.stdout.write(json.dumps(dashboard(namespace), indent=2) + "\n")
        return 0
    if args.once:
        from hfops.observability.collector import scrape

        sys.stdout.write(scrape(settings.store.path, namespace, settings))
        return 0
    from hfops.observability.server import serve

    serve(settings.store.path, namespace, host=args.host, port=settings.metrics.port, settings=settings)
    return 0
