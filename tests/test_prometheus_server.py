"""A real Prometheus server (Debian package) scrapes ``hfops metrics`` over a seeded store and evaluates
docs/observability/alerts.yml: the series are there, every rule evaluates cleanly, every dashboard query
runs, and the alerts on gauges agree with what the Observability page computes from the store."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hfops.observability import readings, series
from hfops.observability.collector import scrape
from hfops.observability.grafana import dashboard
from hfops.observability.thresholds import ALERT_RULES
from hfops.store import connect
from tests.observability_kit import dashboard_queries, exporter, parse
from tests.observability_seed import seed
from tests.processes import free_port, stop_process

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("prometheus")]


def prometheus_binary() -> str:
    """The Prometheus server, installed through the project's set-up script if missing (as root)."""
    found = shutil.which("prometheus")
    if found is None:
        subprocess.run(
            ["bash", str(ROOT / "scripts" / "install-sysdeps.sh")],
            capture_output=True,
            timeout=600,
            check=False,
        )
        found = shutil.which("prometheus")
    if found is None:
        pytest.skip("prometheus is not installed and could not be installed (run make sysdeps as root)")
    return found


def api(base: str, path: str, **params: str) -> Any:
    url = f"{base}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - local test server
        body = json.loads(response.read())
    assert body["status"] == "success", body
    return body["data"]


def wait_for(what: str, check: Callable[[], Any], timeout: float = 90) -> Any:
    """Poll ``check`` until it returns something truthy (Prometheus works on its own schedule)."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (OSError, AssertionError, KeyError) as exc:
            last_error = exc
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what} (last error: {last_error})")


@pytest.fixture
def prometheus(tmp_path: Path, db_path: str) -> Iterator[str]:
    """Prometheus on a free port scraping ``hfops metrics`` every second; yields its base URL."""
    binary = prometheus_binary()
    seed(db_path)
    with exporter(db_path) as metrics_url:
        target = metrics_url.removeprefix("http://").removesuffix("/metrics")
        config = tmp_path / "prometheus.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(ROOT / "docs" / "observability" / "alerts.yml")],
                    "scrape_configs": [{"job_name": "hfops", "static_configs": [{"targets": [target]}]}],
                }
            ),
            encoding="utf-8",
        )
        port = free_port()
        log = (tmp_path / "prometheus.log").open("w")
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:

            def ready() -> bool:
                assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()
                with urllib.request.urlopen(f"{base}/-/ready", timeout=5) as response:  # noqa: S310
                    return response.status == 200

            wait_for("prometheus to be ready", ready)
            yield base
        finally:
            stop_process(proc, timeout=30)
            log.close()


def test_prometheus_scrapes_hfops_metrics_and_evaluates_the_alerts(prometheus: str, db_path: str) -> None:
    wait_for(
        "a successful scrape",
        lambda: [
            r
            for r in api(prometheus, "/api/v1/query", query='up{job="hfops"}')["result"]
            if r["value"][1] == "1"
        ],
    )
    expected_names = {name for name, _ in parse(scrape(db_path))}
    found = api(prometheus, "/api/v1/query", query='count by (__name__) ({__name__=~"sarvanom_.+"})')[
        "result"
    ]
    assert {r["metric"]["__name__"] for r in found} == expected_names
    discovered = api(prometheus, "/api/v1/query", query="sarvanom_hf_models_discovered_total")["result"]
    assert [r["value"][1] for r in discovered] == ["7"]
    p95 = api(
        prometheus,
        "/api/v1/query",
        query="histogram_quantile(0.95, sum by (le) (sarvanom_refine_latency_seconds_bucket))",
    )["result"]
    everything = readings.refine_totals(connect(db_path), "1 = 1", [])[None].all_latency()
    # Prometheus and the page interpolate the same buckets the same way
    assert float(p95[0]["value"][1]) == pytest.approx(everything.quantile(0.95))

    def rules_evaluated() -> list[dict[str, Any]]:
        rules = [r for g in api(prometheus, "/api/v1/rules")["groups"] for r in g["rules"]]
        assert len(rules) == len(ALERT_RULES)
        assert all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules]
        return rules if all(not r["lastEvaluation"].startswith("0001") for r in rules) else []

    wait_for("every rule evaluated", rules_evaluated)

    # Alerts on gauges depend only on the current values: Prometheus and the page must agree. (Rate-based
    # alerts need counter increases over time, which a store seeded in one go does not have.)
    page = {
        (s.rule.name, tuple(sorted(s.labels.items())))
        for s in series.alert_states(connect(db_path))
        if s.state == "alert" and not s.rule.window
    }
    assert page == {
        ("HfEvalScoreLow", (("dataset", "ms_marco"), ("metric", "ndcg@10"), ("task", "retrieval")))
    }

    def active_alerts() -> set[tuple[str, tuple[tuple[str, str], ...]]]:
        alerts = api(prometheus, "/api/v1/alerts")["alerts"]
        return {
            (
                a["labels"]["alertname"],
                tuple(sorted((k, v) for k, v in a["labels"].items() if k in ("task", "dataset", "metric"))),
            )
            for a in alerts
            if a["state"] in ("pending", "firing")
        }

    assert wait_for("the score alert to be pending", active_alerts) == page
    for expr in dashboard_queries(dashboard()):  # every Grafana query runs against the real server
        api(prometheus, "/api/v1/query", query=expr)
