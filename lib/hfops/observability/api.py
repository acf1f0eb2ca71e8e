"""``GET /metrics`` on the refine API (``hfops serve``).

Mounted through :func:`hfops.api.mount_extensions`.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client.exposition import choose_encoder

from hfops.config import Settings
from hfops.observability.collector import build_registry


def mount(app: FastAPI, settings: Settings) -> None:
    """Add ``GET /metrics``: the same series as ``hfops metrics``, read from the store at each request.

    The format follows the ``Accept`` header like prometheus_client's own server (OpenMetrics for a
    Prometheus server that asks for it, the text format otherwise).
    """
    registry = build_registry(settings.store.path, settings.metrics.namespace, settings)

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(registry), media_type=content_type)
