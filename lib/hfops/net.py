"""The one network layer: what every caller of the Hub or the Inference API shares.

- :data:`RETRYABLE_STATUS` and :func:`retry_after_seconds` (delta-seconds or HTTP-date ``Retry-After``);
- :func:`status_of` / :func:`header_of`: the HTTP status and headers behind any client exception
  (``HfHubHTTPError``, ``httpx2.HTTPStatusError``, our own :class:`~hfops.errors.RemoteError`);
- :func:`scrub`: removes secrets from any text (token-shaped strings, ``Bearer …`` values, and the values of
  the secret variables), used for every message, log line and stored error; :func:`install_log_scrubber`
  applies it to every log record;
- :func:`same_origin` / :func:`token_for`: a token is only ever sent to the configured endpoint's origin
  (scheme, host, port); :func:`check_same_origin` raises :class:`~hfops.errors.ForeignOriginError`;
- :func:`hub_get`: one GET through huggingface_hub's own session and ``hf_raise_for_status``, with
  retryable answers raised as :class:`~hfops.errors.RetryableHubError` (never retried inside);
- :func:`describe`: an exception from any client as one clear, scrubbed line for the operator.

Modelled on huggingface_hub's ``utils/_http.py`` (``hf_raise_for_status`` is the one way to raise).
"""

from __future__ import annotations

import email.utils
import logging
import math
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from hfops.errors import ForeignOriginError, RemoteError, RetryableHubError

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
SECRET_ENV_VARS = ("HUGGINGFACE_API_KEY", "HUGGINGFACE_WRITE_TOKEN", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
MAX_MESSAGE_CHARS = 300
REDACTED = "***"

# hf_ user/org tokens, api_org_ tokens, and whatever follows "Bearer " / "token=" / "Authorization:".
_TOKEN_PATTERNS = (
    re.compile(r"\b(?:hf|api_org)_[A-Za-z0-9]{8,}\b"),
    re.compile(r"(?i)\b(bearer)\s+[^\s\"',;\])>]+"),
    re.compile(r"(?i)\b(authorization)\s*[:=]\s*[^\s\"',;]+(?:\s+[^\s\"',;]+)?"),
    re.compile(r"(?i)\b((?:access_)?token|api_key|apikey)\s*[=:]\s*[^\s\"',;&]+"),
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


# --- secrets ----------------------------------------------------------------------------------------------


def _secret_values() -> list[str]:
    values = [os.environ.get(name) or "" for name in SECRET_ENV_VARS]
    return sorted({v for v in values if len(v) >= 4}, key=len, reverse=True)


def scrub(text: object, *extra_secrets: str | None) -> str:
    """``text`` with every secret replaced by ``***``: configured secret values, token shapes, auth values."""
    out = str(text)
    for secret in [*(s for s in extra_secrets if s and len(s) >= 4), *_secret_values()]:
        out = out.replace(secret, REDACTED)
    out = _TOKEN_PATTERNS[0].sub(REDACTED, out)
    for pattern in _TOKEN_PATTERNS[1:]:
        out = pattern.sub(lambda m: f"{m.group(1)} {REDACTED}", out)
    return out


def one_line(text: object, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Scrubbed, whitespace collapsed to single spaces, at most ``limit`` characters (with an ellipsis)."""
    flat = " ".join(scrub(text).split())
    return flat if len(flat) <= limit else flat[: max(0, limit - 1)] + "…"


class ScrubbingFilter(logging.Filter):
    """A logging filter that scrubs the rendered message (and the traceback text) of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record whose args do not fit its format: keep the raw text
            message = str(record.msg)
        scrubbed = scrub(message)
        if scrubbed != message:  # leave untouched records as they are (some formatters read their args)
            record.msg, record.args = scrubbed, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def install_log_scrubber(logger: logging.Logger | None = None) -> None:
    """Scrub every record that reaches ``logger``'s handlers (the root logger's by default); idempotent."""
    target = logger or logging.getLogger()
    handlers = list(target.handlers)
    if logger is None and logging.lastResort is not None:
        handlers.append(logging.lastResort)
    for handler in handlers:
        if not any(isinstance(f, ScrubbingFilter) for f in handler.filters):
            handler.addFilter(ScrubbingFilter())


# --- origins ----------------------------------------------------------------------------------------------


def origin(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of ``url``, lower-cased, with the scheme's default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme, 0)


def same_origin(url: str, base: str) -> bool:
    """Whether ``url`` is on the origin of ``base`` and carries no credentials (relative URLs: False)."""
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return False
    target = origin(url)
    return bool(target[0] and target[1]) and target == origin(base)


def check_same_origin(url: str, base: str, what: str = "link") -> None:
    """Raise :class:`ForeignOriginError` unless ``url`` is on ``base``'s origin.

    The URL is shown host-only in the message.
    """
    if not same_origin(url, base):
        scheme, host, port = origin(url)
        shown = f"{scheme}://{host}:{port}" if host else repr(url[:80])
        raise ForeignOriginError(
            f"refused to follow a {what} to {shown}: not on the configured endpoint {base}"
        )


def token_for(url: str, base: str, token: str | None) -> str | None:
    """The token to send with a request to ``url``: ``token`` on ``base``'s origin, else None."""
    return token if token and same_origin(url, base) else None


# --- statuses and headers ---------------------------------------------------------------------------------


def status_of(exc: BaseException) -> int | None:
    """The HTTP status behind a client exception, or None (no response: timeout, refused connection)."""
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        return status
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def header_of(source: BaseException | Any, name: str) -> str | None:
    """Header ``name`` of a response, or of the response behind an exception.

    None when absent or unreadable.
    """
    response = getattr(source, "response", source)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    try:
        value = headers.get(name)
    except Exception:  # an odd header container is not worth failing for
        return None
    return str(value) if value is not None else None


def retry_after_seconds(
    value: str | None, *, cap: float | None = None, now: datetime | None = None
) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP-date (RFC 9110 §10.2.3).

    None when absent or unreadable; a date in the past gives 0; ``cap`` bounds the result.
    """
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    seconds = max(0.0, seconds)
    return min(seconds, cap) if cap is not None else seconds


def is_retryable(exc: BaseException) -> bool:
    """Whether a failed call may succeed later: a retryable status, a timeout, a connection failure."""
    if isinstance(exc, RetryableHubError):
        return True
    status = status_of(exc)
    if status is not None:
        return status in RETRYABLE_STATUS
    import httpx2
    from huggingface_hub.errors import InferenceTimeoutError, OverloadedError

    return isinstance(
        exc,
        InferenceTimeoutError
        | OverloadedError
        | httpx2.TimeoutException
        | httpx2.NetworkError
        | httpx2.RemoteProtocolError
        | TimeoutError
        | ConnectionError,
    )


def server_message(source: BaseException | Any, limit: int = 200) -> str:
    """What the server said about a failed request, scrubbed, on one line.

    Taken from ``X-Error-Message`` or a JSON ``error``.
    """
    response = getattr(source, "response", source)
    text = header_of(response, "X-Error-Message") or ""
    if not text and response is not None and hasattr(response, "json"):
        try:
            body = response.json()
        except Exception:  # a body that is not JSON says nothing useful
            body = None
        if isinstance(body, Mapping):
            error = body.get("error")
            text = (
                error
                if isinstance(error, str)
                else str(error.get("message", ""))
                if isinstance(error, Mapping)
                else ""
            )
    first = (str(text).strip().splitlines() or [""])[0]
    return one_line(first, limit) if first else ""


# --- one GET ----------------------------------------------------------------------------------------------


def hub_get(
    url: str, *, endpoint: str, token: str | None, timeout: float, headers: Mapping[str, str] | None = None
) -> Any:
    """GET ``url`` on the Hub at ``endpoint`` through huggingface_hub's session.

    Returns the response (an ``httpx2.Response``).

    Refuses a URL off the endpoint's origin (:class:`ForeignOriginError`), sends the token only there, raises
    :class:`RetryableHubError` (with ``retry_after``) for 408/429/5xx and network failures, and otherwise goes
    through ``hf_raise_for_status`` (its ``HfHubHTTPError`` family: gated, not found, ...).
    """
    import httpx2
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    check_same_origin(url, endpoint)
    request_headers = build_hf_headers(token=token_for(url, endpoint, token) or False, library_name="hfops")
    request_headers.update(headers or {})
    short = url.split("?")[0]
    try:
        response = get_session().get(url, headers=request_headers, timeout=timeout, follow_redirects=False)
    except (httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError) as exc:
        raise RetryableHubError(f"{type(exc).__name__} on {short}") from None
    if response.status_code in RETRYABLE_STATUS:
        raise RetryableHubError(
            f"HTTP {response.status_code} from {short}",
            retry_after_seconds(response.headers.get("retry-after")),
            status=response.status_code,
        )
    hf_raise_for_status(response)
    return response


# --- operator messages ------------------------------------------------------------------------------------


def describe(exc: BaseException, *, what: str, where: str = "", token: str | None = None) -> str:
    """One scrubbed line for the operator: what failed, the status or kind of failure, the server's words.

    ``what`` says what was being done ("listing models", "downloading org/name"), ``where`` the service
    ("the Hub at https://…"). Gated repos, bad tokens, missing repos, rate limits and outages are told apart.
    """
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    status = status_of(exc)
    place = f" at {where}" if where else ""
    if isinstance(exc, RemoteError) and not isinstance(exc, RetryableHubError):
        text = f"{what}: {exc}"
    elif isinstance(exc, GatedRepoError):
        text = (
            f"{what}: the repo is gated; accept its access conditions on the Hub with the account of "
            "HUGGINGFACE_API_KEY"
        )
    elif isinstance(exc, RepositoryNotFoundError) or status == 404:
        text = f"{what}: not found{place} (404), or private and not visible to the token in use"
    elif status == 401:
        text = f"{what}: the token was rejected{place} (401 Unauthorized): invalid, expired or revoked"
    elif status == 402:
        text = f"{what}: payment required{place} (402): the account's credits are exhausted"
    elif status == 403:
        text = f"{what}: forbidden{place} (403): the token lacks permission for this"
    elif status == 429:
        wait = retry_after_seconds(header_of(exc, "retry-after"))
        text = f"{what}: rate limited{place} (429)" + (
            f", retry after {wait:.0f} s" if wait is not None else ""
        )
    elif status is not None and status >= 500:
        text = f"{what}: the service{place} failed (HTTP {status}); try again later"
    elif status is not None:
        text = f"{what}: refused{place} (HTTP {status})"
    elif isinstance(exc, RetryableHubError):
        text = f"{what}: {exc}"
    elif isinstance(exc, TimeoutError) or "Timeout" in type(exc).__name__:
        text = f"{what}: timed out{place}"
    else:
        text = f"{what}: cannot reach the service{place} ({type(exc).__name__})"
    said = server_message(exc)
    if said and said not in text:
        text += f" [server: {said}]"
    return one_line(scrub(text, token))
