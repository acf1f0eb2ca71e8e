"""The Hub's ``/api/models`` as a source: the query ``HfApi.list_models`` sends, one page per request through
the shared network layer (:func:`hfops.net.hub_get`: huggingface_hub's session and error mapping, the token
only on the endpoint's origin), Retry-After-honouring back-off (tenacity) under a deadline, and the guards
that keep pagination on the listing (no store).
"""

from __future__ import annotations

import contextvars
import fnmatch
import json
import math
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import httpx2
import orjson
from huggingface_hub.errors import HfHubHTTPError
from tenacity import RetryCallState, Retrying, retry_if_exception_type

from hfops import net
from hfops.config import DiscoveryConfig, HubConfig
from hfops.discovery.sources import Cursor, Page
from hfops.errors import ForeignOriginError, RetryableHubError, SyncError

# Fields the rule and the score need; sent as one ``expand=`` each.
EXPAND_FIELDS = (
    "author", "sha", "tags", "downloads", "downloadsAllTime", "likes", "lastModified", "createdAt",
    "library_name", "safetensors", "pipeline_tag", "trendingScore", "siblings", "config", "cardData", "gated",
)  # fmt: skip
# Licence ids of the RAIL family sent as server-side filters; the rule itself matches any id containing
# "openrail" (the Hub cannot filter on a substring).
KNOWN_OPENRAIL_IDS = (
    "openrail",
    "openrail++",
    "creativeml-openrail-m",
    "bigscience-openrail-m",
    "bigcode-openrail-m",
)

# An upper bound on any ``/api/models`` listing (the whole Hub held ~2.2 M models in 2026): with the page
# size it gives the most pages one query may take when ``[hub] max_models`` does not bound it tighter.
HUB_LISTING_BOUND = 5_000_000
MAX_PAGE_BYTES = 64 * 2**20  # a page of 1,000 full records is ~5 MB
INCREMENTAL_PROBE = 20  # records in the first page of each query of an incremental pass


class LostPage(Exception):
    """A page that could not be read (not JSON, a redirect, undecodable); the pass goes on without it."""


@dataclass
class _Walk:
    """What one pass has requested so far, and where its current query stands."""

    requested: set[str] = field(default_factory=set)
    fetched: int = 0
    query_pages: int = 0
    query_ids: set[str] = field(default_factory=set)

    def next_query(self) -> None:
        self.query_pages = 0
        self.query_ids = set()


def canonical_url(url: str) -> str:
    """``url`` in one spelling: origin lower-cased with its port, query pairs sorted (to recognise a page)."""
    scheme, host, port = net.origin(url)
    parts = urlsplit(url)
    query = urlencode(sorted(parse_qsl(parts.query, keep_blank_values=True)))
    return f"{scheme}://{host}:{port}{parts.path or '/'}?{query}"


class HubSource:
    """The Hub's ``/api/models`` (or any endpoint speaking it), one query per pipeline tag x licence.

    A *full* pass sorts by downloads and stops a query at the first page entirely below ``min_downloads``.
    An *incremental* pass (``since`` = a lastModified watermark) sorts by lastModified and stops a query at
    the first page entirely older than the watermark: only records changed since the last pass are fetched.
    While one page is being stored, the next one is already being fetched.

    Pagination follows ``Link: <url>; rel="next"`` (a relative link is resolved against the page's URL) only
    while it stays on the endpoint's origin and listing path, carries no credentials, names a page not yet
    requested by this pass, and the query stays under its page cap and keeps bringing new ids. Anything else
    ends the query with a *lost* page (the pass is then ``partial``); no request ever leaves the origin.
    """

    def __init__(
        self,
        hub: HubConfig,
        rule: DiscoveryConfig,
        token: str | None = None,
        on_retry: Callable[[float, str], None] | None = None,
        since: str | None = None,
    ) -> None:
        self.hub = hub
        self.rule = rule
        self.endpoint = hub.endpoint.rstrip("/")
        self.name = f"hub:{self.endpoint}"
        self.token = token
        self.on_retry: Callable[[float, str], None] = on_retry or (lambda wait, why: None)
        self.waited = 0.0
        self.since = since
        self.complete_pass_possible = since is None
        self.listing_path = urlsplit(self.endpoint).path.rstrip("/") + "/api/models"
        bound = min(hub.max_models, HUB_LISTING_BOUND) if hub.max_models else HUB_LISTING_BOUND
        self.page_cap = math.ceil(bound / max(1, hub.page_size)) + 1

    def queries(self) -> list[list[tuple[str, Any]]]:
        """Query parameters, in the order and form ``HfApi.list_models`` sends them."""
        license_filters: list[str | None] = []
        for pattern in self.rule.licenses:
            if any(ch in pattern for ch in "*?["):
                license_filters.extend(i for i in KNOWN_OPENRAIL_IDS if fnmatch.fnmatchcase(i, pattern))
            else:
                license_filters.append(pattern)
        if not license_filters:
            license_filters = [None]
        out = []
        for tag in self.rule.pipeline_tags:
            for lic in dict.fromkeys(license_filters):
                params: list[tuple[str, Any]] = []
                if lic:
                    params.append(("filter", f"license:{lic}"))
                sort = "lastModified" if self.since else "downloads"
                params += [("pipeline_tag", tag), ("sort", sort), ("limit", self._first_limit())]
                params += [("expand", f) for f in EXPAND_FIELDS]
                out.append(params)
        return out

    def _first_limit(self) -> int:
        """Page size of a query's first request: a small probe in an incremental pass (most queries have
        nothing new, and one small page shows it), the configured page size otherwise."""
        return min(INCREMENTAL_PROBE, self.hub.page_size) if self.since else self.hub.page_size

    @staticmethod
    def query_label(query: list[tuple[str, Any]]) -> str:
        """``text-generation x apache-2.0``: which query a message is about."""
        values = dict(query)
        licence = str(values.get("filter", "")).removeprefix("license:") or "any licence"
        return f"{values.get('pipeline_tag')} x {licence}"

    def _get(self, url: str) -> Any:
        """One GET through the shared network layer; a refused listing is a :class:`SyncError` (scrubbed)."""
        try:
            response = net.hub_get(
                url, endpoint=self.endpoint, token=self.token, timeout=self.hub.request_timeout_seconds
            )
        except HfHubHTTPError as exc:
            if 300 <= (net.status_of(exc) or 0) < 400:
                self._refuse_redirect(url, exc)
            raise SyncError(
                net.describe(exc, what="the Hub refused the listing", where=self.endpoint, token=self.token)
            ) from None
        except ForeignOriginError as exc:
            raise LostPage(net.scrub(exc, self.token)) from None
        except httpx2.DecodingError:
            raise LostPage("its body could not be decoded (bad Content-Encoding)") from None
        except (httpx2.TooManyRedirects, httpx2.UnsupportedProtocol, httpx2.LocalProtocolError) as exc:
            raise LostPage(f"the request failed ({type(exc).__name__})") from None
        if (
            300 <= response.status_code < 400
        ):  # hub_get never follows one, and hf_raise_for_status lets it pass
            self._refuse_redirect(url, response)
        return response

    def _refuse_redirect(self, url: str, answer: Any) -> None:
        status = net.status_of(answer) or getattr(answer, "status_code", 0)
        target = urljoin(url, net.header_of(answer, "location") or "")
        where = "the same origin" if net.same_origin(target, self.endpoint) else _shown_origin(target)
        raise LostPage(f"the Hub answered a redirect (HTTP {status}) to {where}: not followed")

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        backoff = min(self.hub.max_backoff_seconds, 2.0 ** (state.attempt_number - 1))
        wait = retry_after if retry_after is not None else backoff
        return max(0.0, float(wait))

    def _give_up(self, state: RetryCallState) -> bool:
        wait = self._wait(state)
        why = net.scrub(state.outcome.exception() if state.outcome else "", self.token)
        if self.waited + wait > self.hub.deadline_seconds:
            raise SyncError(
                f"gave up after {self.waited:.1f} s of back-off: {why}; the next wait ({wait:.0f} s) "
                f"would pass the {self.hub.deadline_seconds:.0f} s deadline. What was stored is kept; "
                "the next sync resumes from this page."
            )
        self.waited += wait
        self.on_retry(wait, why)
        return False

    def fetch(self, url: str) -> Any:
        """GET one page with Retry-After-honouring back-off, bounded by ``deadline_seconds`` of waiting."""
        retrying = Retrying(
            retry=retry_if_exception_type(RetryableHubError),
            wait=self._wait,
            stop=self._give_up,
            reraise=True,
            sleep=time.sleep,
        )
        return retrying(self._get, url)

    def _query_done(self, records: list[Any]) -> bool:
        """True when a page shows that the rest of its query cannot matter (see the class docstring).

        Pages come sorted in descending order, so the last record decides: once it is older than the
        watermark (or below ``min_downloads``), every later page is too.
        """
        if not records:
            return True
        last = records[-1] if isinstance(records[-1], dict) else {}
        if self.since:
            modified = last.get("lastModified")
            return not isinstance(modified, str) or modified < self.since
        downloads = last.get("downloads")
        return (
            isinstance(downloads, int)
            and not isinstance(downloads, bool)
            and downloads < self.rule.min_downloads
        )

    def check_link(self, link: str, current: str) -> str:
        """The absolute URL of a next-page ``link`` found on page ``current``; ValueError saying why not."""
        resolved = urljoin(current, link.strip())
        parts = urlsplit(resolved)
        if parts.username is not None or parts.password is not None:
            raise ValueError("the next-page link carries credentials: not followed")
        if not net.same_origin(resolved, self.endpoint):
            raise ValueError(
                f"the next-page link points to {_shown_origin(resolved)}, off the endpoint: not followed"
            )
        if parts.path.rstrip("/") != self.listing_path:
            raise ValueError(f"the next-page link leaves the listing ({parts.path[:80]!r}): not followed")
        return resolved

    def _decode(self, content: bytes) -> tuple[list[Any], list[str]]:
        """The records of a page body and notes about it; :class:`LostPage` when it is not a JSON list."""
        if len(content) > MAX_PAGE_BYTES:
            raise LostPage(
                f"its body is {len(content) / 2**20:.0f} MiB (over {MAX_PAGE_BYTES / 2**20:.0f} MiB)"
            )
        notes: list[str] = []
        try:
            data = orjson.loads(content)
        except orjson.JSONDecodeError as exc:
            try:  # the stdlib also reads NaN / Infinity (records holding them are then skipped one by one)
                data = json.loads(content)
            except (ValueError, RecursionError):
                kind = "HTML" if content.lstrip()[:1] == b"<" else "not JSON" if content.strip() else "empty"
                raise LostPage(f"its body is {kind} ({net.scrub(exc, self.token)[:80]})") from None
            notes.append("a page holds non-standard JSON numbers (NaN / Infinity)")
        if not isinstance(data, list):
            kind = {dict: "an object", str: "a string", bool: "a boolean"}.get(type(data), "a number or null")
            raise LostPage(f"its body is JSON but {kind}, not a list of records")
        return data, notes

    def _read(
        self, url: str, outcome: Future[Any], query: int, queries: list[list[tuple[str, Any]]], walk: _Walk
    ) -> Page:
        """The page behind ``outcome`` (a fetch in flight), with the cursor that follows it."""
        label = f"page {walk.query_pages + 1} of query {self.query_label(queries[query])}"
        lost: list[str] = []
        errors: list[str] = []
        records: list[Any] = []
        following: str | None = None
        done = False
        link: Any = None
        try:
            response = outcome.result()
        except LostPage as exc:
            lost.append(f"{label} was lost: {exc}; the rest of that query is not listed by this pass")
            done = True
        else:
            link = response.links.get("next", {}).get("url")
            try:
                records, errors = self._decode(response.content)
            except LostPage as exc:
                rest = "" if link else "; the rest of that query is not listed by this pass"
                lost.append(f"{label} was lost: {exc}{rest}")
            else:
                done = self._query_done(records)
        walk.query_pages += 1
        walk.fetched += len(records)
        ids = {r["id"] for r in records if isinstance(r, dict) and isinstance(r.get("id"), str)}
        if ids and not ids - walk.query_ids:
            lost.append(f"{label} brought no new records (the pagination repeats itself): query ended")
            done = True
        walk.query_ids |= ids
        if link and not done:
            try:
                following = self.check_link(str(link), url)
                if canonical_url(following) in walk.requested:
                    raise ValueError("the next-page link points back to a page already fetched (a cycle)")
                if walk.query_pages >= self.page_cap:
                    raise ValueError(f"the query reached its cap of {self.page_cap} pages")
            except ValueError as exc:
                lost.append(f"after {label}: {exc}; the rest of that query is not listed by this pass")
                following = None
        if following and self.since and self._first_limit() != self.hub.page_size:
            following = with_limit(following, self.hub.page_size)  # past the probe: full pages
        capped = bool(self.hub.max_models) and walk.fetched >= self.hub.max_models
        if capped and (following or query + 1 < len(queries)):  # the listing goes on: not a complete pass
            lost.append(
                f"the pass stopped at [hub] max_models = {self.hub.max_models} records; the rest of the "
                "listing is not listed by this pass"
            )
        cursor_after: Cursor | None
        if following and not capped:
            cursor_after = {"query": query, "url": following}
        elif query + 1 < len(queries) and not capped:
            cursor_after = {"query": query + 1}
        else:
            cursor_after = None
        return Page(records, cursor_after, errors=errors, lost=lost)

    def _url(self, cursor: Cursor, queries: list[list[tuple[str, Any]]]) -> str:
        stored = cursor.get("url")
        if stored:
            try:  # a stored resume link is checked like any next link; a bad one restarts its query
                return self.check_link(str(stored), self.endpoint + self.listing_path)
            except ValueError:
                pass
        return f"{self.endpoint}/api/models?{urlencode(queries[cursor['query']])}"

    def pages(self, cursor: Cursor | None) -> Iterator[Page]:
        queries = self.queries()
        query = int((cursor or {}).get("query", 0))
        if query >= len(queries):
            return
        walk = _Walk()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="hfops-prefetch") as pool:
            url = self._url({"query": query, "url": (cursor or {}).get("url")}, queries)
            walk.requested.add(canonical_url(url))
            # each fetch runs in a copy of the caller's context: its rate-limit scope (the run a wait is
            # recorded against, who is told) holds on the prefetch thread too
            pending = pool.submit(contextvars.copy_context().run, self.fetch, url)
            while True:
                page = self._read(url, pending, query, queries, walk)
                if page.next_cursor is not None:  # fetch the next page while this one is stored
                    url_next = self._url(page.next_cursor, queries)
                    walk.requested.add(canonical_url(url_next))
                    pending = pool.submit(contextvars.copy_context().run, self.fetch, url_next)
                yield page
                if page.next_cursor is None:
                    return
                if page.next_cursor["query"] != query:
                    walk.next_query()
                query, url = page.next_cursor["query"], url_next


def with_limit(url: str, limit: int) -> str:
    """``url`` with its ``limit`` parameter set to ``limit`` (every other parameter, the cursor too, kept)."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if not any(k == "limit" for k, _ in pairs):
        return url
    query = urlencode([(k, str(limit) if k == "limit" else v) for k, v in pairs])
    return parts._replace(query=query).geturl()


def _shown_origin(url: str) -> str:
    scheme, host, port = net.origin(url)
    return f"{scheme}://{host}:{port}" if host else repr(url[:60])
