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

Every call is logged (query hash only) in ``refine_calls``.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from dataclasses import dataclass, replace

from hfops import config
from hfops.config import Settings
from hfops.refine import calllog, fallback
from hfops.refine.limits import active_cooldown, get_limiter
from hfops.refine.local import LocalRefinement, get_local_refiner
from hfops.refine.result import RefineResult, validate_query
from hfops.store import utcnow

log = logging.getLogger(__name__)

# Kept back from the deadline for the work after the fallback returns (result assembly, queueing the log row).
RESERVE_MS = 20.0
# Below this, an HF attempt cannot realistically answer: skip it rather than spend a permit.
MIN_FALLBACK_MS = 50.0
_client_warmed = False


@dataclass
class RefineOutcome:
    """A routed refinement with what happened on the way (for the console and tests)."""

    result: RefineResult
    local: RefineResult
    hf: fallback.HFAttempt | None  # None when no attempt was started
    local_ms: float
    top_similarity: float


def warm_up(settings: Settings | None = None) -> None:
    """Load the local model and index and prepare the inference client (call at process start)."""
    settings = settings or config.load_settings()
    get_local_refiner().load(settings.refine.torch_threads)
    global _client_warmed
    if config.api_key() and settings.refine.enabled and not _client_warmed:
        fallback.prepare_client()
        threading.Thread(target=fallback.warm_up_headers, name="hfops-hf-warmup", daemon=True).start()
        _client_warmed = True


def refine(query: str, settings: Settings | None = None, *, fallback_allowed: bool = True,
           force_fallback: bool = False, caller: str = "library") -> RefineResult:
    """Refine ``query``: the library entry point used by the CLI, the API and the console."""
    return refine_detailed(query, settings, fallback_allowed=fallback_allowed, force_fallback=force_fallback,
                           caller=caller).result


def refine_detailed(query: str, settings: Settings | None = None, *, fallback_allowed: bool = True,
                    force_fallback: bool = False, caller: str = "library") -> RefineOutcome:
    """:func:`refine` with the local result and the HF attempt alongside.

    ``force_fallback`` ignores ``local_threshold`` (the Refine Lab's side-by-side view); every other
    guard (key, cooldown, limits, budget) still applies.
    """
    started = time.monotonic()
    validate_query(query)
    settings = settings or config.load_settings()
    cfg = settings.refine
    budget_ms = int(cfg.budget_ms)

    local_run: LocalRefinement = get_local_refiner().load(cfg.torch_threads).refine(query, budget_ms)
    local = local_run.result
    attempt: fallback.HFAttempt | None = None
    bypass = _bypass_before_request(settings, local, fallback_allowed, force_fallback)

    if bypass is None and (force_fallback or local.confidence < cfg.local_threshold):
        # The fallback's answer is due fallback_deadline_ms after the call started (never later than the
        # budget), less a small reserve for what follows: so the whole call ends by then, whatever the server does.
        hard_deadline = started + (min(cfg.fallback_deadline_ms, budget_ms) - RESERVE_MS) / 1000

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
    _log(settings, result, local_run, attempt, caller)
    return RefineOutcome(result, local, attempt, round(local_run.elapsed_ms, 2), local_run.top_similarity)


def _bypass_before_request(settings: Settings, local: RefineResult, fallback_allowed: bool, force: bool) -> str | None:
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
        log.error("cooldown check failed: %s", exc)
        return "cooldown"
    return None


def _take_permit(settings: Settings) -> bool:
    try:
        return get_limiter(settings).try_acquire()
    except Exception as exc:  # a broken limiter file must not let requests through unchecked
        log.error("rate limiter unavailable: %s", exc)
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
        return fallback.HFAttempt("timeout", error="no answer before the fallback deadline",
                                  latency_ms=round((time.monotonic() - submitted) * 1000, 2))


def _elapsed_ms(started: float) -> float:
    return (time.monotonic() - started) * 1000


def _log(settings: Settings, result: RefineResult, local_run: LocalRefinement,
         attempt: fallback.HFAttempt | None, caller: str) -> None:
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
        log.error("could not queue the refine call log row: %s", exc)
