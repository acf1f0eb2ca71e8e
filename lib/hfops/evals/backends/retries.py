"""Retries and operator messages for HF Inference API calls.

Built on the shared network layer (:mod:`hfops.net`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from hfops import net
from hfops.config import Settings
from hfops.errors import BackendError

T = TypeVar("T")


def describe_error(exc: BaseException) -> str:
    """A short operator-facing message for an inference failure (status code first), scrubbed."""
    from huggingface_hub.errors import InferenceTimeoutError, OverloadedError

    status = net.status_of(exc)
    if isinstance(exc, InferenceTimeoutError):
        return "timed out"
    if isinstance(exc, OverloadedError):
        return "model overloaded (503)"
    if status == 429:
        return "rate limited (429)"
    if status == 402:
        return "out of inference credits (402)"
    if status in (401, 403):
        return f"not authorised ({status}): check HUGGINGFACE_API_KEY"
    if status == 404:
        return "model not served by the inference API (404)"
    if status == 503:
        return "service unavailable (503)"
    if status is not None:
        return f"HTTP {status}"
    if isinstance(exc, ValueError | TypeError | KeyError):  # unparseable body or unexpected JSON shape
        return f"invalid response ({type(exc).__name__})"
    return net.one_line(f"{type(exc).__name__}: {exc}", 200)


def retry_wait(exc: BaseException, attempt: int, cap: float) -> float:
    """Seconds before retry ``attempt + 1``, at most ``cap``.

    ``Retry-After`` (seconds or HTTP-date) when given, else 1, 2, 4 …
    """
    told = net.retry_after_seconds(net.header_of(exc, "retry-after"), cap=cap)
    return told if told is not None else min(2.0 ** (attempt - 1), cap)


def call_with_retries(
    fn: Callable[[], T], settings: Settings, sleep: Callable[[float], None] = time.sleep
) -> T:
    """Call ``fn``; retry 408/429/5xx, overload and timeouts up to ``[eval] max_retries`` times.

    Waits honour ``Retry-After`` (delta-seconds or HTTP-date) but never exceed ``[eval]
    max_retry_wait_seconds``; other failures (402, 401, connection refused, bad JSON) are not retried.
    Raises :class:`BackendError` with a clear message.
    """
    from huggingface_hub.errors import InferenceTimeoutError, OverloadedError

    attempts = max(1, settings.eval.max_retries + 1)
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except BackendError:
            raise
        except Exception as exc:  # classified below; the client raises several unrelated types
            retryable = isinstance(exc, InferenceTimeoutError | OverloadedError) or (
                net.status_of(exc) in net.RETRYABLE_STATUS
            )
            if not retryable or attempt == attempts:
                suffix = f" after {attempt} attempts" if attempt > 1 else ""
                raise BackendError(describe_error(exc) + suffix) from None
            sleep(max(0.0, retry_wait(exc, attempt, settings.eval.max_retry_wait_seconds)))
    raise BackendError("unreachable")  # pragma: no cover
