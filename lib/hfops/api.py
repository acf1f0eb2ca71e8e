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
import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from hfops import __version__, config
from hfops.config import Settings
from hfops.errors import HfopsError
from hfops.net import install_log_scrubber, one_line
from hfops.refine import MAX_QUERY_CHARS, MAX_SUGGESTIONS, validate_query, warm_up
from hfops.refine.limits import active_cooldown
from hfops.refine.local import get_local_refiner
from hfops.refine.result import visible_pattern
from hfops.refine.router import refine_in_time

log = logging.getLogger(__name__)

EXTENSION_MODULES: tuple[str, ...] = ("hfops.observability.api",)
BODY_HINT = 'a JSON object such as {"query": "...", "fallback": true}'
MAX_BODY_BYTES = 64 * 1024  # a 2,000-character query, every character \\u-escaped, is ~12 KB
MAX_NUMBER_DIGITS = 100  # longer integer literals are refused before Python converts them

BypassReason = Literal[
    "no_key",
    "rate_limited",
    "cooldown",
    "timeout",
    "http_error",
    "credits_exhausted",
    "invalid_output",
    "disabled",
    "budget_exhausted",
]


class RefineRequest(BaseModel):
    """Body of ``POST /refine``."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"query": "um what is np complete??"}]}
    )

    query: str = Field(
        min_length=1,
        max_length=MAX_QUERY_CHARS,
        description=f"the raw query: at most {MAX_QUERY_CHARS} characters, at least one of them visible "
        "(not only whitespace, control, format or zero-width characters)",
        json_schema_extra=lambda schema: schema.update(pattern=visible_pattern()),
    )
    fallback: bool = Field(
        default=True, strict=True, description="allow the HF Inference fallback (default true)"
    )

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


FallbackState = Literal["ready", "no_key", "disabled", "cooldown"]


class Health(BaseModel):
    """``GET /healthz``."""

    status: Literal["ok"]
    version: str
    local_model_loaded: bool
    fallback: FallbackState
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
    return [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in errors
    ]


class BodyError(Exception):
    """A request body that cannot be a refine request: the status, one readable message, an error type."""

    def __init__(
        self, status: int, message: str, kind: str, detail: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind
        self.detail = detail or [{"loc": ["body"], "msg": message, "type": kind}]

    def response(self) -> JSONResponse:
        return JSONResponse(status_code=self.status, content={"error": self.message, "detail": self.detail})


def _kind_of(value: Any) -> str:
    if value is None:
        return "null"
    return {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise BodyError(
            422,
            f"request body has a number with {len(text.lstrip('-'))} digits (at most "
            f"{MAX_NUMBER_DIGITS}); send {BODY_HINT}",
            "number_too_large",
        )
    return int(text)


def _no_constants(name: str) -> Any:
    raise BodyError(
        422, f"request body is not valid JSON ({name} is not a JSON value); send {BODY_HINT}", "json_invalid"
    )


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    duplicate = next((key for i, key in enumerate(keys) if key in keys[:i]), None)
    if duplicate is not None:
        raise BodyError(422, f"request body has the field {duplicate!r} twice", "duplicate_field")
    return dict(pairs)


def parse_body(raw: bytes, content_type: str | None) -> Any:
    """The JSON value of a request body, or :class:`BodyError` saying exactly what is wrong with it."""
    if content_type:
        media = content_type.split(";")[0].strip().lower()
        if media != "application/json" and not media.endswith("+json"):
            raise BodyError(
                415,
                f"Content-Type must be application/json, got {one_line(media, 80)!r}; send {BODY_HINT}",
                "unsupported_media_type",
            )
    if len(raw) > MAX_BODY_BYTES:
        raise BodyError(
            413, f"request body is too large ({len(raw):,} bytes, at most {MAX_BODY_BYTES:,})", "too_large"
        )
    if not raw.strip():
        raise BodyError(422, f"request body is required: {BODY_HINT}", "missing")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BodyError(
            422,
            f"request body is not valid JSON: not UTF-8 text (byte 0x{raw[exc.start]:02x} at "
            f"offset {exc.start}); send {BODY_HINT}",
            "json_invalid",
        ) from None
    try:
        return json.loads(
            text, parse_int=_bounded_int, parse_constant=_no_constants, object_pairs_hook=_unique_keys
        )
    except RecursionError:
        raise BodyError(
            422, f"request body is nested too deeply to be a refine request; send {BODY_HINT}", "too_deep"
        ) from None
    except json.JSONDecodeError as exc:
        raise BodyError(
            422,
            f"request body is not valid JSON ({exc.msg} at line {exc.lineno} column "
            f"{exc.colno}); send {BODY_HINT}",
            "json_invalid",
        ) from None
    except ValueError as exc:  # a number Python refuses to convert, and the like
        raise BodyError(
            422, f"request body is not valid JSON ({one_line(exc, 120)}); send {BODY_HINT}", "json_invalid"
        ) from None


def refine_request(value: Any) -> RefineRequest:
    """A parsed body as a :class:`RefineRequest`, or :class:`BodyError` (422) naming each wrong field."""
    if not isinstance(value, dict):
        raise BodyError(422, f"request body must be {BODY_HINT}, got {_kind_of(value)}", "model_type")
    try:
        return RefineRequest.model_validate(value)
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False)
        raise BodyError(422, _message(errors), "validation", _details(errors)) from None


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, reading no more than ``limit`` + 1 bytes (a larger body is refused as such)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyError(
            413, f"request body is too large ({int(declared):,} bytes, at most {limit:,})", "too_large"
        )
    chunks, size = [], 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise BodyError(413, f"request body is too large (more than {limit:,} bytes)", "too_large")
    return b"".join(chunks)


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


def create_app(
    settings: Settings | None = None, *, warm: bool = True, extensions: Sequence[str] = EXTENSION_MODULES
) -> FastAPI:
    """The API app; ``warm`` loads the local model at start-up so requests stay within budget."""
    settings = settings or config.load_settings()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Handlers exist by now. Not uvicorn.access: its formatter needs the record's args (the scrubber
        # folds them into the message), and an access line holds only the client, method, path and status.
        for name in (None, "uvicorn"):
            install_log_scrubber(logging.getLogger(name) if name else None)
        from hfops import ledger

        ledger.install(settings.store.path, settings)  # the fallback's Inference calls into the shared ledger
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
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """Every HTTP error (404, 405, ...) in the same shape as the others: ``error`` plus ``detail``."""
        path, method = request.url.path, request.method
        if exc.status_code == 405:
            allowed = (exc.headers or {}).get("allow") or (exc.headers or {}).get("Allow") or ""
            message = f"method {method} is not allowed on {path}" + (f"; use {allowed}" if allowed else "")
        elif exc.status_code == 404:
            message = f"no such endpoint: {method} {path} (see /docs: POST /refine, GET /healthz)"
        else:
            message = str(exc.detail)
        return JSONResponse(
            status_code=exc.status_code,
            headers=exc.headers,
            content={
                "error": one_line(message),
                "detail": [{"loc": [], "msg": one_line(exc.detail), "type": "http_error"}],
            },
        )

    @app.exception_handler(HfopsError)
    async def _hfops_error(_: Request, exc: HfopsError) -> JSONResponse:
        log.error("refine API: %s", one_line(exc))
        return JSONResponse(status_code=503, content={"error": one_line(exc), "detail": []})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error(
            "refine API: unexpected %s on %s %s: %s",
            type(exc).__name__,
            request.method,
            request.url.path,
            one_line(exc),
        )
        return JSONResponse(
            status_code=500,
            content={"error": f"internal error ({type(exc).__name__}); see the server log", "detail": []},
        )

    error_model = {"model": ErrorResponse}

    @app.post(
        "/refine",
        response_model=RefineResponse,
        responses={
            413: {**error_model, "description": "request body larger than 64 KiB"},
            415: {**error_model, "description": "Content-Type is not application/json"},
            422: {
                **error_model,
                "description": "bad input: empty, too long, invisible, not JSON, not UTF-8, "
                "too deep, wrong types, unknown or duplicate fields",
            },
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RefineRequest"}}},
            }
        },
        summary="Refine a query",
    )
    async def post_refine(request: Request) -> Any:
        arrived = request.scope.get("state", {}).get(ARRIVED, time.monotonic())
        try:
            body = refine_request(parse_body(await read_body(request), request.headers.get("content-type")))
        except BodyError as exc:
            return exc.response()
        result = await refine_in_time(
            body.query, settings, fallback_allowed=body.fallback, caller="api", started=arrived
        )
        return RefineResponse(**result.to_dict())

    generate_openapi = app.openapi

    def openapi_with_request_model() -> dict[str, Any]:
        """The generated spec plus the request model (the body is parsed by hand, so FastAPI omits it)."""
        if app.openapi_schema is None:
            spec = generate_openapi()
            spec.setdefault("components", {}).setdefault("schemas", {})["RefineRequest"] = (
                RefineRequest.model_json_schema(ref_template="#/components/schemas/{model}")
            )
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi_with_request_model  # type: ignore[method-assign]

    @app.get("/healthz", response_model=Health, summary="Liveness and fallback readiness")
    def healthz() -> Health:
        fallback: FallbackState
        if not settings.refine.enabled:
            fallback = "disabled"
        elif not config.api_key():
            fallback = "no_key"
        elif active_cooldown(settings.store.path) is not None:
            fallback = "cooldown"
        else:
            fallback = "ready"
        return Health(
            status="ok",
            version=__version__,
            local_model_loaded=get_local_refiner().loaded,
            fallback=fallback,
            budget_ms=settings.refine.budget_ms,
        )

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
