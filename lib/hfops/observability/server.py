"""``hfops metrics``: serve ``/metrics`` over HTTP from the store (prometheus_client's threaded server)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from prometheus_client import start_http_server

from hfops.config import Settings
from hfops.errors import HfopsError
from hfops.observability.collector import build_registry


def serve(
    db_path: str | Path,
    namespace: str,
    host: str = "127.0.0.1",
    port: int = 9108,
    stop: threading.Event | None = None,
    settings: Settings | None = None,
) -> None:
    """Serve the store's metrics on ``http://host:port/metrics`` until ``stop`` is set or interrupted
    (``settings``: the ledger's allowance and Hub origin)."""
    registry = build_registry(db_path, namespace, settings)
    try:
        httpd, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise HfopsError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    bound = httpd.server_address[1]
    print(
        f"metrics on http://{host}:{bound}/metrics (store {db_path}; Ctrl-C stops)",
        file=sys.stderr,
        flush=True,
    )
    stop = stop or threading.Event()
    try:
        while not stop.wait(0.5) and thread.is_alive():
            pass
    finally:
        httpd.shutdown()
        httpd.server_close()
