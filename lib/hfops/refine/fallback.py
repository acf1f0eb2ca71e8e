"""The HF Inference fallback: one chat completion, strict JSON parsing, error classification.

The call runs in a worker thread (:data:`EXECUTOR`); the router waits for it at most until its
deadline and never for a late answer. The worker itself records what the server said about limits
(429 -> cooldown honouring Retry-After, 402 -> long cooldown), even when the answer came too late.
``huggingface_hub.InferenceClient`` never retries, so one attempt is one request.
"""

from __future__ import annotations

import json
import logging
import re
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hfops.config import Settings
from hfops.errors import InvalidOutput
from hfops.net import describe, header_of, one_line, scrub, status_of
from hfops.refine.limits import open_cooldown_soon, parse_retry_after
from hfops.refine.result import MAX_QUERY_CHARS, MAX_SUGGESTIONS, RefineResult, fair_confidence

log = logging.getLogger(__name__)

# Outcomes of one attempt (the call log's ``outcome`` column; ``skipped`` = no request sent).
OUTCOMES = ("ok", "timeout", "rate_limited", "credits_exhausted", "http_error", "invalid_output")
MAX_INTENT_CHARS = 40
ERROR_CHARS = 200  # stored error text (the call log's ``error`` column)
# A hanging server holds a worker until the client timeout (about the fallback deadline): at 40 calls/s
# that is ~20 workers busy, so 32 keep attempts from queueing behind each other. An attempt that could
# not even start before its deadline is dropped, never sent.
EXECUTOR = ThreadPoolExecutor(max_workers=32, thread_name_prefix="hfops-refine-hf")

SYSTEM_PROMPT = (
    "You refine queries typed into a search / question-answering assistant. "
    "Reply with ONLY one JSON object and nothing else:\n"
    '{"refined": "<the query, clearer: spelling, casing, filler words fixed; same meaning and language>", '
    '"suggestions": ["<up to 3 related, well-formed questions the user could ask instead>"], '
    '"intent": "<one of: definition, how_to, numeric, time, person, location, reason, comparison, yes_no, '
    'entity, search>", '
    '"confidence": <number from 0 to 1: how sure you are the refined query keeps the meaning and is '
    "clearer>}\n"
    "Do not answer the query."
)


@dataclass
class HFAttempt:
    """What one fallback attempt produced."""

    outcome: str  # one of OUTCOMES
    result: RefineResult | None = None
    status_code: int | None = None
    error: str | None = None
    latency_ms: float = 0.0
    requested: bool = True  # False when the attempt was dropped before sending (deadline already passed)


_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL | re.IGNORECASE)


def parse_reply(query: str, content: Any) -> dict[str, Any]:
    """Validate the model's reply strictly; return ``refined/suggestions/intent/confidence``.

    Accepted: one JSON object (optionally in a single ```json fence) with ``refined`` (non-empty
    string), ``suggestions`` (list of strings; at most 3 kept), ``intent`` (short string) and
    ``confidence`` (number in [0, 1]). Anything else raises :class:`InvalidOutput`.
    """
    if not isinstance(content, str) or not content.strip():
        raise InvalidOutput("empty reply")
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidOutput(f"reply is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidOutput(f"reply is a JSON {type(data).__name__}, not an object")
    refined, suggestions, intent, confidence = (
        data.get(k) for k in ("refined", "suggestions", "intent", "confidence")
    )
    if not isinstance(refined, str) or not refined.strip():
        raise InvalidOutput("'refined' must be a non-empty string")
    refined = " ".join(refined.split())
    if len(refined) > MAX_QUERY_CHARS:
        raise InvalidOutput("'refined' is too long")
    if not isinstance(suggestions, list) or not all(isinstance(s, str) for s in suggestions):
        raise InvalidOutput("'suggestions' must be a list of strings")
    if not isinstance(intent, str) or not intent.strip() or len(intent.strip()) > MAX_INTENT_CHARS:
        raise InvalidOutput(f"'intent' must be a string of 1-{MAX_INTENT_CHARS} characters")
    if (
        isinstance(confidence, bool)
        or not isinstance(confidence, int | float)
        or not 0.0 <= float(confidence) <= 1.0
    ):
        raise InvalidOutput("'confidence' must be a number between 0 and 1")
    cleaned: list[str] = []
    for suggestion in suggestions:
        suggestion = " ".join(suggestion.split())
        if (
            suggestion
            and suggestion.casefold() not in {c.casefold() for c in cleaned}
            and len(suggestion) <= MAX_QUERY_CHARS
        ):
            cleaned.append(suggestion)
    return {
        "refined": refined,
        "suggestions": cleaned[:MAX_SUGGESTIONS],
        "intent": "_".join(intent.strip().lower().split()),
        "confidence": fair_confidence(query, refined, float(confidence)),
    }


def safe_error(message: str, token: str | None, limit: int = ERROR_CHARS) -> str:
    """An error safe to store, log and show: secrets scrubbed (:func:`hfops.net.scrub`, the key in use
    included), one line, at most ``limit`` characters."""
    return one_line(scrub(message, token), limit)


def classify(exc: BaseException) -> tuple[str, int | None]:
    """Map an exception from the client to ``(outcome, HTTP status)``."""
    import httpx2
    from huggingface_hub.errors import InferenceTimeoutError

    status = status_of(exc)
    if status == 429:
        return "rate_limited", status
    if status == 402:
        return "credits_exhausted", status
    if isinstance(exc, InferenceTimeoutError | httpx2.TimeoutException | TimeoutError):
        return "timeout", status
    if status is not None or isinstance(exc, httpx2.HTTPError | OSError):
        return "http_error", status  # 5xx (503 included: an error, not a rate limit), 4xx, refused, DNS...
    if isinstance(exc, ValueError | TypeError | KeyError | AttributeError | IndexError):
        return "invalid_output", status  # the client could not even parse the body
    return "http_error", status


def attempt(settings: Settings, token: str, query: str, deadline: float, timeout_s: float) -> HFAttempt:
    """One chat completion (runs in a worker thread). Never raises; opens cooldowns on 429/402.

    ``deadline`` is a ``time.monotonic()`` instant: an attempt that starts after it is dropped unsent.
    """
    started = time.monotonic()
    if started >= deadline:
        return HFAttempt("timeout", error="not started before the deadline", requested=False)
    model = settings.refine.model or settings.inference.model
    db_path = Path(settings.store.path)
    try:
        from huggingface_hub import InferenceClient

        from hfops.ledger import inference_calls

        client = InferenceClient(base_url=settings.inference.base_url, token=token, timeout=timeout_s)
        # An Inference request of these settings (counted, never paced), whatever the process installed.
        with inference_calls(settings.inference.base_url):
            reply = client.chat_completion(
                messages=[{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": query}],
                model=model,
                max_tokens=settings.refine.max_tokens,
                temperature=0.0,
            )
        try:
            content = reply.choices[0].message.content
        except (AttributeError, IndexError, KeyError, TypeError):
            raise InvalidOutput("reply has no choices[0].message.content") from None
        parsed = parse_reply(query, content)
    except InvalidOutput as exc:
        return HFAttempt(
            "invalid_output", error=safe_error(str(exc), token), latency_ms=_ms(started), status_code=200
        )
    except Exception as exc:
        outcome, status = classify(exc)
        error = safe_error(
            describe(exc, what="HF fallback", where=settings.inference.base_url, token=token), token
        )
        if outcome == "rate_limited":
            retry_after = header_of(exc, "retry-after")
            seconds = parse_retry_after(retry_after, settings.refine.cooldown_seconds)
            _safe_cooldown(db_path, "rate_limited", seconds, status, retry_after)
        elif outcome == "credits_exhausted":
            _safe_cooldown(
                db_path, "credits_exhausted", settings.refine.credits_cooldown_seconds, status, None
            )
        return HFAttempt(outcome, status_code=status, error=error, latency_ms=_ms(started))
    result = RefineResult(
        query=query,
        refined=parsed["refined"],
        suggestions=parsed["suggestions"],
        intent=parsed["intent"],
        confidence=parsed["confidence"],
        source="hf",
        model=model,
    )
    return HFAttempt("ok", result=result, status_code=200, latency_ms=_ms(started))


def _safe_cooldown(
    db_path: Path, reason: str, seconds: float, status: int | None, retry_after: str | None
) -> None:
    try:
        open_cooldown_soon(db_path, reason, seconds, status, retry_after)
    except (
        Exception
    ) as exc:  # a store hiccup must not turn a 429 into a crash; the limiter still caps requests
        log.error("could not record the %s cooldown: %s", reason, one_line(exc))


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 2)


def submit(
    settings: Settings, token: str, query: str, deadline: float, timeout_s: float
) -> Future[HFAttempt]:
    """Start :func:`attempt` in the worker pool."""
    return EXECUTOR.submit(attempt, settings, token, query, deadline, timeout_s)


def prepare_client() -> None:
    """Import the client and open its HTTP session now (a few hundred ms on a busy machine, once per
    process) so the first fallback attempt does not spend its deadline on imports."""
    from huggingface_hub import InferenceClient
    from huggingface_hub.utils import get_session

    InferenceClient(base_url="http://127.0.0.1", token=None)
    get_session()


def warm_up_headers() -> None:
    """Resolve the client's user-agent once: huggingface_hub may fetch a small registry from the Hub on the
    first request of a process (up to 3 s offline, unless HF_HUB_DISABLE_TELEMETRY=1). Run it in the
    background at start-up, off the request path."""
    try:
        from huggingface_hub.utils import build_hf_headers

        build_hf_headers()
    except Exception as exc:  # best effort
        log.debug("inference client warm-up failed: %s", one_line(exc))
