"""The hfops HTTP API (FastAPI): ``POST /refine``, ``GET /healthz``; OpenAPI at ``/openapi.json``.

This is the endpoint a model router calls. ``hfops serve`` runs it with uvicorn.

Extension hook: every module named in :data:`EXTENSION_MODULES` that exists is imported and its
``mount(app: FastAPI, settings: Settings) -> None`` is called once the core routes are in place
(the observability feature mounts ``GET /metrics`` this way). Pass ``extensions=`` to
:func:`create_app` to choose others (tests).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from hfops import __version__, config
from hfops.config import Settings
from hfops.errors import HfopsError
from hfops.refine import MAX_QUERY_CHARS, MAX_SUGGESTIONS, validate_query, warm_up
from hfops.refine.limits import active_cooldown
from hfops.refine.local import get_local_refiner
from hfops.refine.router import refine_in_time

log = logging.getLogger(__name__)

EXTENSION_MODULES: tuple[str, ...] = ("hfops.observability.api",)
BODY_HINT = 'a JSON object such as {"query": "...", "fallback": true}'

BypassReason = Literal[
    "no_key", "rate_limited", "cooldown", "timeout", "http_error", "credits_exhausted", "invalid_output", "disabled"
]


class RefineRequest(BaseModel):
    """Body of ``POST /refine``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"query": "um what is np complete??"}]})

    query: str = Field(
        min_length=1, max_length=MAX_QUERY_CHARS, pattern=r"\S",
        description=f"the raw query: a non-blank string of at most {MAX_QUERY_CHARS} characters",
    )
    fallback: bool = Field(default=True, strict=True, description="allow the HF Inference fallback (default true)")

    @field_validator("query", mode="before")
    @classmethod
    def _check_query(cls, value: Any) -> Any:
        validate_query(value)  # RefineInputError is a ValueError: its message becomes the 422 message
        return value


class RefineResponse(BaseModel):
    """A refinement (same shape as the library and ``hfops refine --json``)."""

    query: str
    refined: str
    suggestions: list[str] = Field(max_length=MAX_SUGGESTIONS)
    intent: str
    confidence: float = Field(ge=0, le=1)
    source: Literal["local", "hf"]
    model: str
    latency_ms: float
    budget_ms: int
    within_budget: bool
    bypass_reason: BypassReason | None


class ErrorResponse(BaseModel):
    """A rejected request: one readable message plus the field-level details."""

    error: str
    detail: list[dict[str, Any]] = Field(default_factory=list)


class Health(BaseModel):
    """``GET /healthz``."""

    status: Literal["ok"]
    version: str
    local_model_loaded: bool
    fallback: Literal["ready", "no_key", "disabled", "cooldown"]
    budget_ms: int


def _message(errors: Sequence[Any]) -> str:
    parts = []
    for error in errors:
        loc = [str(p) for p in error.get("loc", ()) if p != "body"]
        msg = str(error.get("msg", "invalid"))
        if error.get("type") == "json_invalid":
            parts.append(f"request body is not valid JSON ({error.get('ctx', {}).get('error', msg)})")
            continue
        msg = msg.removeprefix("Value error, ")
        field = ".".join(loc)
        if not loc:
            missing = error.get("type") == "missing"
            parts.append(f"request body {'is required' if missing else 'must be'}: {BODY_HINT}")
        elif msg.startswith(field + " "):
            parts.append(msg)
        else:
            parts.append(f"{field}: {msg}")
    return "; ".join(parts) or "invalid request"


def _details(errors: Sequence[Any]) -> list[dict[str, Any]]:
    return [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))} for e in errors]


ARRIVED = "hfops_arrived"


class ArrivalStamp:
    """ASGI middleware: stamps each HTTP request with its arrival (``time.monotonic()``) so that the
    refine budget counts from there, not from when a worker thread picked the call up."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope.setdefault("state", {})[ARRIVED] = time.monotonic()
        await self.app(scope, receive, send)


def create_app(settings: Settings | None = None, *, warm: bool = True,
               extensions: Sequence[str] = EXTENSION_MODULES) -> FastAPI:
    """The API app; ``warm`` loads the local model at start-up so requests stay within budget."""
    settings = settings or config.load_settings()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if warm:
            await run_in_threadpool(warm_up, settings)
        yield

    app = FastAPI(
        title="hfops refine API",
        version=__version__,
        description="Query refinement: local first, HF Inference fallback within a latency budget. "
        "Results carry source (local|hf) and bypass_reason.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.add_middleware(ArrivalStamp)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        return JSONResponse(status_code=422, content={"error": _message(errors), "detail": _details(errors)})

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Any:
        if exc.status_code == 400 and request.method == "POST":  # FastAPI: body bytes not decodable at all
            return JSONResponse(status_code=422, content={
                "error": f"request body is not valid JSON (not UTF-8 text); send {BODY_HINT}",
                "detail": [{"loc": ["body"], "msg": str(exc.detail), "type": "json_invalid"}],
            })
        return await http_exception_handler(request, exc)

    @app.exception_handler(HfopsError)
    async def _hfops_error(_: Request, exc: HfopsError) -> JSONResponse:
        log.error("refine API: %s", exc)
        return JSONResponse(status_code=503, content={"error": str(exc), "detail": []})

    @app.post(
        "/refine",
        response_model=RefineResponse,
        responses={422: {"model": ErrorResponse, "description": "bad input: empty, too long, not JSON, wrong types"}},
        summary="Refine a query",
    )
    async def post_refine(body: RefineRequest, request: Request) -> RefineResponse:
        arrived = request.scope.get("state", {}).get(ARRIVED, time.monotonic())
        result = await refine_in_time(body.query, settings, fallback_allowed=body.fallback, caller="api",
                                      started=arrived)
        return RefineResponse(**result.to_dict())

    @app.get("/healthz", response_model=Health, summary="Liveness and fallback readiness")
    def healthz() -> Health:
        if not settings.refine.enabled:
            fallback = "disabled"
        elif not config.api_key():
            fallback = "no_key"
        elif active_cooldown(settings.store.path) is not None:
            fallback = "cooldown"
        else:
            fallback = "ready"
        return Health(status="ok", version=__version__, local_model_loaded=get_local_refiner().loaded,
                      fallback=fallback, budget_ms=settings.refine.budget_ms)

    mount_extensions(app, settings, extensions)
    return app


def mount_extensions(app: FastAPI, settings: Settings, modules: Sequence[str]) -> list[str]:
    """Call ``mount(app, settings)`` of each existing module in ``modules``; return the ones mounted."""
    mounted = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if found:
            importlib.import_module(name).mount(app, settings)
            mounted.append(name)
    return mounted
