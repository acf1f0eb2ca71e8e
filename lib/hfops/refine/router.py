"""The refinement router: local first, then (maybe) the HF fallback, always within the budget.

Order of decisions for one call:

1. Local refinement (always; it is the answer whenever the fallback is not used or fails).
2. A local result at least ``[refine] local_threshold`` confident is returned as is (no bypass).
3. Otherwise the fallback is considered, and skipped with a ``bypass_reason`` when: fallback off by
   config or by the caller (``disabled``), no ``HUGGINGFACE_API_KEY`` (``no_key``), a shared cooldown is
   open (``cooldown``), no budget left (``timeout``) or no permit left this minute/hour (``rate_limited``).
4. The HF attempt runs in a worker thread; its answer is due ``fallback_deadline_ms`` (500) after the
   call started (``budget_ms`` if smaller), less a 20 ms reserve, so the whole call ends by then whatever
   the server does; the router never waits for a late answer. A failed or
   late attempt returns the local result with ``timeout``, ``rate_limited``, ``credits_exhausted``,
   ``http_error`` or ``invalid_output``.

The local embedding is due by the same instant: when it cannot be ready by then (a busy machine, the
model still loading after start-up) the answer is the rules-only one. :func:`refine_in_time` (the HTTP
API) adds a guard measured from the request's arrival: a call whose worker thread cannot finish in time
is answered from the rules-only path on the event loop. Every call is logged (query hash only) in
``refine_calls``, once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from dataclasses import dataclass, replace
from functools import partial

from hfops import config
from hfops.config import Settings
from hfops.ledger import inference_usage
from hfops.net import one_line
from hfops.refine import calllog, fallback
from hfops.refine.limits import active_cooldown, get_limiter
from hfops.refine.local import LocalRefinement, get_local_refiner
from hfops.refine.result import RefineResult, validate_query
from hfops.store import get_db, utcnow

log = logging.getLogger(__name__)

# Kept back from the deadline for the work after the fallback returns (result assembly, queueing the log row).
RESERVE_MS = 20.0
# Below this, an HF attempt cannot realistically answer: skip it rather than spend a permit.
MIN_FALLBACK_MS = 50.0
# refine_in_time answers from the rules-only path this long before the budget ends, measured from arrival.
GUARD_RESERVE_MS = 100.0
# Worker threads for refine_in_time: more than the calls in flight, so no call waits for a thread.
CALL_EXECUTOR = concurrent.futures.ThreadPoolExecutor(max_workers=64, thread_name_prefix="hfops-refine-call")
_client_warmed = False


class CallTicket:
    """Who answers one call: the router's worker thread or the in-time guard, whichever claims it first.

    Only the owner returns its result and writes the call-log row, so a call is logged exactly once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner: str | None = None

    def claim(self, owner: str) -> bool:
        """True if ``owner`` answers the call (the first claim wins; claiming again is idempotent)."""
        with self._lock:
            if self._owner is None:
                self._owner = owner
            return self._owner == owner

    @property
    def owner(self) -> str | None:
        return self._owner


@dataclass
class RefineOutcome:
    """A routed refinement with what happened on the way (for the console and tests)."""

    result: RefineResult
    local: RefineResult
    hf: fallback.HFAttempt | None  # None when no attempt was started
    local_ms: float
    top_similarity: float


def warm_up(settings: Settings | None = None) -> None:
    """Load the local model and index, open the store and the limiter, and prepare the inference client
    (call at process start: after it, the first call costs what every call costs)."""
    settings = settings or config.load_settings()
    get_local_refiner().load(settings.refine.torch_threads)
    try:  # this thread's store connection (migrations) and the limiter's file, off the first call's budget
        active_cooldown(settings.store.path)
        if config.api_key() and settings.refine.enabled:
            get_limiter(settings)
    except Exception as exc:  # reported again, with context, by the first call that needs them
        log.warning("refine warm-up: %s", one_line(exc))
    global _client_warmed
    if config.api_key() and settings.refine.enabled and not _client_warmed:
        fallback.prepare_client()
        threading.Thread(target=fallback.warm_up_headers, name="hfops-hf-warmup", daemon=True).start()
        _client_warmed = True


def refine(
    query: str,
    settings: Settings | None = None,
    *,
    fallback_allowed: bool = True,
    force_fallback: bool = False,
    caller: str = "library",
) -> RefineResult:
    """Refine ``query``: the library entry point used by the CLI, the API and the console."""
    return refine_detailed(
        query, settings, fallback_allowed=fallback_allowed, force_fallback=force_fallback, caller=caller
    ).result


def refine_detailed(
    query: str,
    settings: Settings | None = None,
    *,
    fallback_allowed: bool = True,
    force_fallback: bool = False,
    caller: str = "library",
    started: float | None = None,
    ticket: CallTicket | None = None,
) -> RefineOutcome:
    """:func:`refine` with the local result and the HF attempt alongside.

    ``force_fallback`` ignores ``local_threshold`` (the Refine Lab's side-by-side view); every other
    guard (key, cooldown, limits, budget) still applies. ``started`` is when the call arrived (a
    ``time.monotonic()`` instant; default now): every deadline counts from it. With a ``ticket``, the
    call is logged only if this thread wins it (see :func:`refine_in_time`).
    """
    started = time.monotonic() if started is None else started
    validate_query(query)
    settings = settings or config.load_settings()
    cfg = settings.refine
    budget_ms = int(cfg.budget_ms)
    # Everything this call waits for is due by this instant: the local embedding and the fallback's answer
    # (fallback_deadline_ms after the start, never later than the budget, less a reserve for what follows).
    hard_deadline = started + (min(cfg.fallback_deadline_ms, budget_ms) - RESERVE_MS) / 1000

    refiner = get_local_refiner()
    if not refiner.loaded:  # still warming up: answer from the rules now, never wait for the model
        refiner.load_in_background(cfg.torch_threads)
    local_run: LocalRefinement = refiner.refine(query, budget_ms, deadline=hard_deadline)
    local = local_run.result
    attempt: fallback.HFAttempt | None = None
    bypass = _bypass_before_request(settings, local, fallback_allowed, force_fallback)

    if bypass is None and (force_fallback or local.confidence < cfg.local_threshold):

        def wait_ms() -> float:
            return (hard_deadline - time.monotonic()) * 1000

        if wait_ms() < MIN_FALLBACK_MS:
            bypass = "timeout"
        elif not _take_permit(settings):
            bypass = "rate_limited"
        elif wait_ms() < MIN_FALLBACK_MS:  # taking the permit used up the budget (a contended lock)
            bypass = "timeout"
        else:
            attempt = _run_attempt(settings, query, wait_ms())
            bypass = None if attempt.outcome == "ok" else attempt.outcome

    if attempt is not None and attempt.outcome == "ok" and attempt.result is not None:
        chosen = attempt.result
    else:
        chosen = local
    latency_ms = round(_elapsed_ms(started), 2)
    result = replace(
        chosen,
        query=query,
        latency_ms=latency_ms,
        budget_ms=budget_ms,
        within_budget=latency_ms <= budget_ms,
        bypass_reason=bypass if chosen.source == "local" else None,
    )
    if ticket is None or ticket.claim("router"):
        _log(settings, result, local_run, attempt, caller)
    return RefineOutcome(result, local, attempt, round(local_run.elapsed_ms, 2), local_run.top_similarity)


def rules_only_answer(
    query: str, settings: Settings, *, started: float, fallback_allowed: bool = True, caller: str = "api"
) -> RefineResult:
    """The cheap path (microseconds, no model, no store, no network): clean-up and intent, no suggestions.

    What :func:`refine_in_time` answers when the full call cannot finish in time; safe on an event loop.
    """
    refiner = get_local_refiner()
    local_run = refiner.refine(query, int(settings.refine.budget_ms), deadline=0.0)
    if not settings.refine.enabled or not fallback_allowed:
        bypass: str | None = "disabled"
    elif local_run.result.confidence >= settings.refine.local_threshold:
        bypass = None
    elif not config.api_key():
        bypass = "no_key"
    else:
        bypass = "timeout"
    latency_ms = round(_elapsed_ms(started), 2)
    result = replace(
        local_run.result,
        latency_ms=latency_ms,
        within_budget=latency_ms <= settings.refine.budget_ms,
        bypass_reason=bypass,
    )
    _log(settings, result, local_run, None, caller)
    return result


async def refine_in_time(
    query: str,
    settings: Settings,
    *,
    fallback_allowed: bool = True,
    caller: str = "api",
    started: float | None = None,
) -> RefineResult:
    """:func:`refine` for an event loop, with the budget as a promise counted from ``started`` (arrival).

    The call runs on :data:`CALL_EXECUTOR`; if it has not finished ``GUARD_RESERVE_MS`` before the budget
    ends (no thread free, a starved CPU, a slow store...), the caller gets :func:`rules_only_answer` at
    once and the worker's late result is discarded (and not logged).
    """
    started = time.monotonic() if started is None else started
    validate_query(query)
    ticket = CallTicket()
    loop = asyncio.get_running_loop()
    work = loop.run_in_executor(
        CALL_EXECUTOR,
        partial(_refine_unless_answered, query, settings, fallback_allowed, caller, started, ticket),
    )
    remaining = started + (settings.refine.budget_ms - GUARD_RESERVE_MS) / 1000 - time.monotonic()
    try:
        return await asyncio.wait_for(asyncio.shield(work), timeout=max(0.0, remaining))
    except TimeoutError:
        if ticket.claim("guard"):
            work.add_done_callback(_discard_late)
            return rules_only_answer(
                query, settings, started=started, fallback_allowed=fallback_allowed, caller=caller
            )
        return await work  # the worker claimed the call a moment ago: its answer is ready


def _refine_unless_answered(
    query: str, settings: Settings, fallback_allowed: bool, caller: str, started: float, ticket: CallTicket
) -> RefineResult:
    if ticket.owner == "guard":  # answered already (no thread was free in time): do not spend the work
        raise _Answered
    return refine_detailed(
        query, settings, fallback_allowed=fallback_allowed, caller=caller, started=started, ticket=ticket
    ).result


class _Answered(Exception):
    """The call was answered by the guard before its worker started."""


def _discard_late(future: asyncio.Future[RefineResult]) -> None:
    if (
        not future.cancelled()
        and isinstance(future.exception(), Exception)
        and not isinstance(future.exception(), _Answered)
    ):
        log.error("refine call failed after its answer was sent: %s", one_line(future.exception()))


def _bypass_before_request(
    settings: Settings, local: RefineResult, fallback_allowed: bool, force: bool
) -> str | None:
    """The reason not to call HF that is known before any request (None = may call)."""
    if not settings.refine.enabled or not fallback_allowed:
        return "disabled"
    if not force and local.confidence >= settings.refine.local_threshold:
        return None  # confident local answer: HF not needed (and no bypass to report)
    if not config.api_key():
        return "no_key"
    try:
        if active_cooldown(settings.store.path) is not None:
            return "cooldown"
    except Exception as exc:  # unreadable store: be conservative, do not call
        log.error("cooldown check failed: %s", one_line(exc))
        return "cooldown"
    try:  # the month's Inference allowance (shared by every process of this store); a 402 closes the month
        decision = inference_usage.check_allowance(get_db(settings.store.path), settings, "refine")
    except Exception as exc:  # an unreadable ledger must not let requests through unchecked
        log.error("allowance check failed: %s", one_line(exc))
        return "budget_exhausted"
    return None if decision.allowed else (decision.reason or "budget_exhausted")


def _take_permit(settings: Settings) -> bool:
    try:
        return get_limiter(settings).try_acquire()
    except Exception as exc:  # a broken limiter file must not let requests through unchecked
        log.error("rate limiter unavailable: %s", one_line(exc))
        return False


def _run_attempt(settings: Settings, query: str, wait_ms: float) -> fallback.HFAttempt:
    token = config.api_key() or ""
    submitted = time.monotonic()
    deadline = submitted + wait_ms / 1000
    future = fallback.submit(settings, token, query, deadline, timeout_s=wait_ms / 1000)
    try:
        return future.result(timeout=max(0.0, deadline - time.monotonic()))
    except concurrent.futures.TimeoutError:
        # Late: not awaited. The worker still records any cooldown the server asks for.
        return fallback.HFAttempt(
            "timeout",
            error="no answer before the fallback deadline",
            latency_ms=round((time.monotonic() - submitted) * 1000, 2),
        )


def _elapsed_ms(started: float) -> float:
    return (time.monotonic() - started) * 1000


def _log(
    settings: Settings,
    result: RefineResult,
    local_run: LocalRefinement,
    attempt: fallback.HFAttempt | None,
    caller: str,
) -> None:
    requested = attempt is not None and attempt.requested
    row = {
        "created_at": utcnow(),
        "query_hash": calllog.query_hash(result.query),
        "query_chars": len(result.query),
        "source": result.source,
        "model": result.model,
        "intent": result.intent,
        "confidence": result.confidence,
        "outcome": attempt.outcome if requested and attempt else "skipped",
        "bypass_reason": result.bypass_reason,
        "hf_requested": int(requested),
        "hf_model": (settings.refine.model or settings.inference.model) if requested else None,
        "status_code": attempt.status_code if attempt else None,
        "latency_ms": result.latency_ms,
        "local_latency_ms": round(local_run.elapsed_ms, 2),
        "hf_latency_ms": attempt.latency_ms if attempt else None,
        "budget_ms": result.budget_ms,
        "within_budget": int(result.within_budget),
        "caller": caller,
        "error": attempt.error if attempt else None,
    }
    try:
        calllog.log_call(settings.store.path, row)
    except Exception as exc:  # logging must never fail a refine call
        log.error("could not queue the refine call log row: %s", one_line(exc))
