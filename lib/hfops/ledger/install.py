"""One client factory per process: huggingface_hub's HTTP session with the ledger's event hooks.

Every Hub and Inference request hfops makes goes through ``huggingface_hub.utils.get_session()`` (HfApi,
hf_hub_download / snapshot_download, datasets' HfFileSystem, InferenceClient, ``hfops.net.hub_get``).
:func:`install` sets the factory that session is built from (``set_client_factory``): the default client of
huggingface_hub (its own request hook first: offline switch, request id) plus

- a request hook that paces Hub requests (any origin but ``[inference] base_url``, so a job's own
  endpoint is paced too): it waits when the bucket the request draws on is at or below the reserve
  (:func:`hfops.ledger.hub_window.pace`);
- a response hook that records the ``RateLimit`` / ``RateLimit-Policy`` headers of every response (a Hub
  429 without them counts as an exhausted window for its Retry-After), and, for requests under
  ``[inference] base_url``, counts the request in the month's Inference ledger with the chat completion's
  ``usage`` (a 402 closes the month when configured). Inference requests are never paced (the refiner
  has its own limiter and budget) and their windows are recorded off the request path.

A ledger failure (store unreadable, odd headers) is logged and never fails the request itself. Entry
points call :func:`install` once, after loading settings (worker, API server, console, command line).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hfops import net
from hfops.config import Settings
from hfops.errors import RetryableHubError
from hfops.ledger import hub_window, inference_usage, writer
from hfops.ledger.hub_window import OnWait
from hfops.store import get_db

log = logging.getLogger(__name__)

_lock = threading.Lock()
_installed: LedgerHooks | None = None


def origin_key(url: str) -> str:
    """``scheme://host:port`` of ``url`` (how the ledger names a server)."""
    scheme, host, port = net.origin(url)
    return f"{scheme}://{host}:{port}"


def _under(url: str, base: str) -> bool:
    cleaned = inference_usage.clean_base_url(url)
    return cleaned == base or cleaned.startswith(base + "/")


_calling_inference: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "hfops_inference_base", default=None
)


@contextlib.contextmanager
def inference_calls(base_url: str) -> Iterator[None]:
    """Within this block (this thread), requests under ``base_url`` are Inference requests.

    The caller that builds an ``InferenceClient`` from its own settings says so: a job enqueued with
    another ``[inference] base_url`` than the process's is counted in the Inference ledger and never paced
    as a Hub request.
    """
    token = _calling_inference.set(inference_usage.clean_base_url(base_url))
    try:
        yield
    finally:
        _calling_inference.reset(token)


class LedgerHooks:
    """The event hooks of one process's HTTP session, bound to one store and the settings it was given."""

    def __init__(
        self,
        db_path: str | Path,
        settings: Settings,
        on_wait: OnWait | None = None,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.db_path = str(db_path)
        self.pacing = bool(settings.hub.ratelimit_pacing)
        self.reserve_fraction = float(settings.hub.ratelimit_reserve)
        self.inference_base = inference_usage.clean_base_url(settings.inference.base_url)
        self.close_month_on_402 = inference_usage.allowance(settings).credits_close_month
        self.on_wait = on_wait
        self.clock = clock
        self.sleep = sleep

    def same_as(self, other: LedgerHooks) -> bool:
        """Whether ``other`` would behave exactly like these hooks (same store, settings and callbacks)."""
        return (
            str(Path(self.db_path).resolve()),
            self.pacing,
            self.reserve_fraction,
            self.inference_base,
            self.close_month_on_402,
            self.on_wait,
            self.clock,
            self.sleep,
        ) == (
            str(Path(other.db_path).resolve()),
            other.pacing,
            other.reserve_fraction,
            other.inference_base,
            other.close_month_on_402,
            other.on_wait,
            other.clock,
            other.sleep,
        )

    # --- request ---------------------------------------------------------------------------------------

    def before_request(self, request: Any) -> None:
        """Pace a Hub request (may sleep until its window resets); Inference requests are never paced."""
        if not self.pacing:
            return
        url = str(request.url)
        if self._is_inference(url):
            return
        try:
            db = get_db(self.db_path)
            hub_window.pace(
                db,
                origin_key(url),
                hub_window.route_of(request.url.path),
                self.reserve_fraction,
                on_wait=self.on_wait,
                clock=self.clock,
                sleep=self.sleep,
            )
        except RetryableHubError:
            raise  # the caller's scope would not wait that long: nothing was sent
        except Exception as exc:  # the ledger must never fail the request it only paces
            log.error("rate-limit pacing skipped: %s", net.one_line(str(exc), 200))

    def _inference_base_of(self, url: str) -> str | None:
        """The Inference base ``url`` is under (the caller's :func:`inference_calls`, else the process's)."""
        for base in (_calling_inference.get(), self.inference_base):
            if base and _under(url, base):
                return base
        return None

    def _is_inference(self, url: str) -> bool:
        return self._inference_base_of(url) is not None

    # --- response --------------------------------------------------------------------------------------

    def after_response(self, response: Any) -> None:
        """Record the rate-limit headers; count an Inference request (reading its body when not streamed)."""
        request = response.request
        url = str(request.url)
        inference = self._is_inference(url)
        body: bytes | None = None
        if inference:
            body = _request_body(request)
            if not inference_usage.is_streaming(body):
                response.read()  # what the client does next anyway; read errors belong to the caller
        try:
            self._record_window(response, url, inference)
            if inference:
                self._record_inference(response, url, body)
        except Exception as exc:  # never fail a request over bookkeeping
            log.error("free-tier ledger not updated: %s", net.one_line(str(exc), 200))

    def _record_window(self, response: Any, url: str, inference: bool) -> None:
        from huggingface_hub.utils import parse_ratelimit_headers

        info = parse_ratelimit_headers(response.headers)
        origin = origin_key(url)
        route = hub_window.route_of(response.request.url.path)
        now = self.clock()
        if inference:  # never paced: recorded off the request path (an Inference answer is never delayed)
            if info is not None:
                writer.submit(self.db_path, lambda db: hub_window.observe(db, origin, route, info, now))
        elif info is not None:  # written before this caller's next request
            hub_window.observe(get_db(self.db_path), origin, route, info, now)
        elif response.status_code == 429:
            retry_after = net.retry_after_seconds(response.headers.get("retry-after"), cap=3600)
            if retry_after is not None:
                hub_window.observe_exhausted(get_db(self.db_path), origin, route, retry_after, now)

    def _record_inference(self, response: Any, url: str, body: bytes | None) -> None:
        now = datetime.fromtimestamp(self.clock(), UTC)
        status = int(response.status_code)
        if 300 <= status < 400:
            return  # the redirect's target answers (and is counted) next
        usage = None
        if status < 300 and not inference_usage.is_streaming(body):
            usage = inference_usage.usage_of_body(response.content)
        outcome = inference_usage.outcome_of_status(status)
        base = self._inference_base_of(url) or self.inference_base
        model = inference_usage.model_of_request(base, url, body)
        record = inference_usage.make_record(model, base, usage, None if outcome == "ok" else outcome, now)
        inference_usage.queue_record(self.db_path, record)
        if status == 402 and self.close_month_on_402:
            inference_usage.close_month(get_db(self.db_path), "credits_exhausted", status, base, now)


def _request_body(request: Any) -> bytes | None:
    try:
        content = request.content
    except Exception:  # a streaming request body: nothing to read the model from
        return None
    return bytes(content) if content else None


def install(
    db_path: str | Path,
    settings: Settings,
    on_wait: OnWait | None = None,
    *,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> LedgerHooks:
    """Make this process's huggingface_hub session record into, and pace by, the ledger of ``db_path``.

    Call once per process after loading settings; calling again with the same store, settings and callbacks
    changes nothing, otherwise the new hooks replace the old (the session is rebuilt: do that at start-up).
    ``on_wait`` receives every wait not inside a :func:`hfops.ledger.hub_window.scope` with its own callback.
    ``clock`` / ``sleep`` are for tests.
    """
    import httpx2
    from huggingface_hub.utils import set_client_factory

    hooks = LedgerHooks(db_path, settings, on_wait, clock=clock, sleep=sleep)
    get_db(db_path)  # migrate now, not inside the first request
    base_factory = _default_factory()

    def client_factory() -> httpx2.Client:
        client: httpx2.Client = base_factory()
        client.event_hooks = {
            "request": [*client.event_hooks.get("request", []), hooks.before_request],
            "response": [*client.event_hooks.get("response", []), hooks.after_response],
        }
        return client

    global _installed
    with _lock:
        if _installed is not None and _installed.same_as(hooks):
            return _installed  # the console calls this per session: keep the session other threads use
        set_client_factory(client_factory)
        _installed = hooks
    return hooks


def _default_factory() -> Callable[[], Any]:
    """huggingface_hub's own client factory (not exported by ``huggingface_hub.utils`` in 2.4)."""
    try:
        from huggingface_hub.utils._http import default_client_factory
    except ImportError:  # a later release moved it: same settings, without its request-id hook
        import httpx2

        return lambda: httpx2.Client(follow_redirects=True, timeout=None)
    return default_client_factory


def uninstall() -> None:
    """Back to huggingface_hub's default session (tests)."""
    from huggingface_hub.utils import set_client_factory

    global _installed
    with _lock:
        set_client_factory(_default_factory())
        _installed = None


def installed() -> LedgerHooks | None:
    """The hooks installed in this process, if any."""
    return _installed
