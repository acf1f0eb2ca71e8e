"""``GET /metrics`` on the refine API (``hfops serve``), mounted through :func:`hfops.api.mount_extensions`."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hfops.config import Settings
from hfops.observability.collector import build_registry


def mount(app: FastAPI, settings: Settings) -> None:
    """Add ``GET /metrics``: the same series as ``hfops metrics``, read from the store at each request."""
    registry = build_registry(settings.store.path, settings.metrics.namespace)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
