"""Helpers shared by the observability tests: parse a scrape, run ``hfops metrics`` as a process."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client.parser import text_string_to_metric_families

from tests.processes import free_port, stop_process

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of a scrape as ``{(name, sorted labels): value}``."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def dashboard_queries(board: dict) -> list[str]:
    """Every PromQL query of a Grafana dashboard, Grafana's range variable replaced."""
    return [t["expr"].replace("$__rate_interval", "5m") for p in board["panels"] for t in p["targets"]]


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - local test server
        return response.read().decode("utf-8")


@contextmanager
def exporter(db_path: str) -> Iterator[str]:
    """``hfops metrics`` on a free port as a subprocess; yields its /metrics URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hfops.cli", "metrics", "--port", str(port), "--db", db_path],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"hfops metrics exited: {proc.communicate()}")
            try:
                get(url)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        stop_process(proc, timeout=30)
