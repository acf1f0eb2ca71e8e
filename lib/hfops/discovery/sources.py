"""Where records come from: pages of raw API records from the Hub's ``/api/models`` or a snapshot file.

:class:`HubSource` sends the query ``HfApi.list_models`` sends, one page per request through the shared
network layer (:func:`hfops.net.hub_get`: huggingface_hub's session and error mapping, token only on the
endpoint's origin), with Retry-After-honouring back-off (tenacity) bounded by a deadline. :class:`SnapshotSource`
reads a JSON / JSON Lines file of the same records. Neither touches the store.
"""

from __future__ import annotations

import fnmatch
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode

import orjson
from huggingface_hub.errors import HfHubHTTPError
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_any

from hfops import net
from hfops.config import DiscoveryConfig, HubConfig
from hfops.errors import RetryableHubError, SyncError

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

Cursor = dict[str, Any]


@dataclass
class Page:
    """One page of raw records and the cursor that resumes *after* it (None = the source is exhausted)."""

    records: list[Any]
    next_cursor: Cursor | None
    errors: list[str] = field(default_factory=list)
    skipped_lines: list[str] = field(default_factory=list)
    total: int | None = None  # records this run will see, when the source knows it (snapshots)


class Source(Protocol):
    """Where records come from: yields pages from a cursor (None = start)."""

    name: str
    complete_pass_possible: bool

    def pages(self, cursor: Cursor | None) -> Iterator[Page]: ...


class SnapshotSource:
    """A file of API records: a JSON list, ``{"models": [...]}``, or JSON Lines."""

    complete_pass_possible = True

    def __init__(self, path: str | Path, page_size: int = 1000) -> None:
        self.path = Path(path)
        self.name = f"snapshot:{self.path.resolve()}"
        self.page_size = page_size

    def _records(self) -> tuple[list[Any], list[str]]:
        if not self.path.is_file():
            raise SyncError(f"snapshot file not found: {self.path}")
        text = self.path.read_text(encoding="utf-8")
        stripped = text.strip()
        one_document = stripped.startswith("[") or (stripped.startswith("{") and "\n{" not in stripped)
        if one_document:  # a JSON list, or one object holding "models"; otherwise JSON Lines
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise SyncError(f"snapshot file {self.path} is not valid JSON: {exc}") from None
            if isinstance(data, dict):  # {"models": [...]}, or JSON Lines holding a single record
                records = data.get("models") if "models" in data or "id" not in data else [data]
            else:
                records = data
            if not isinstance(records, list):
                raise SyncError(
                    f"snapshot file {self.path}: expected a list of records or {{'models': [...]}}"
                )
            return records, []
        records, bad = [], []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                bad.append(f"line {number}: invalid JSON ({exc.msg})")
        return records, bad

    def pages(self, cursor: Cursor | None) -> Iterator[Page]:
        records, bad_lines = self._records()
        start = int((cursor or {}).get("offset", 0))
        first = True
        for offset in range(start, len(records), self.page_size):
            end = offset + self.page_size
            yield Page(
                records[offset:end],
                {"offset": end} if end < len(records) else None,
                skipped_lines=bad_lines if first and start == 0 else [],
                total=len(records) - start,
            )
            first = False
        if start >= len(records):
            yield Page([], None, skipped_lines=bad_lines if start == 0 else [])


class HubSource:
    """The Hub's ``/api/models`` (or any endpoint speaking it), one query per pipeline tag x licence.

    A *full* pass sorts by downloads and stops a query at the first page entirely below ``min_downloads``.
    An *incremental* pass (``since`` = a lastModified watermark) sorts by lastModified and stops a query at
    the first page entirely older than the watermark: only records changed since the last pass are fetched.
    While one page is being stored, the next one is already being fetched.
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
                params += [("pipeline_tag", tag), ("sort", sort), ("limit", self.hub.page_size)]
                params += [("expand", f) for f in EXPAND_FIELDS]
                out.append(params)
        return out

    def _get(self, url: str) -> Any:
        """One GET through the shared network layer; a refused listing is a :class:`SyncError` (scrubbed)."""
        try:
            return net.hub_get(
                url, endpoint=self.endpoint, token=self.token, timeout=self.hub.request_timeout_seconds
            )
        except HfHubHTTPError as exc:
            raise SyncError(
                net.describe(exc, what="the Hub refused the listing", where=self.endpoint, token=self.token)
            ) from None

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
            stop=stop_any(self._give_up),
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
        return isinstance(downloads, int) and downloads < self.rule.min_downloads

    def _page_from(
        self, url: str, response: Any, query_index: int, queries: list[list[tuple[str, Any]]], fetched: int
    ) -> tuple[Page, int]:
        following = response.links.get("next", {}).get("url")
        errors: list[str] = []
        try:
            records = orjson.loads(response.content)
            if not isinstance(records, list):
                raise ValueError(f"expected a JSON list, got {type(records).__name__}")
        except ValueError as exc:
            records = []
            errors.append(f"malformed page {url.split('?')[0]} ({net.scrub(exc, self.token)[:80]}): skipped")
            done = False
        else:
            done = self._query_done(records)
        fetched += len(records)
        capped = bool(self.hub.max_models) and fetched >= self.hub.max_models
        cursor_after: Cursor | None
        if following and not done and not capped:
            cursor_after = {"query": query_index, "url": following}
        elif query_index + 1 < len(queries) and not capped:
            cursor_after = {"query": query_index + 1}
        else:
            cursor_after = None
        return Page(records, cursor_after, errors=errors), fetched

    def _url(self, cursor: Cursor, queries: list[list[tuple[str, Any]]]) -> str:
        return str(cursor.get("url") or f"{self.endpoint}/api/models?{urlencode(queries[cursor['query']])}")

    def pages(self, cursor: Cursor | None) -> Iterator[Page]:
        queries = self.queries()
        position: Cursor = {"query": int((cursor or {}).get("query", 0)), "url": (cursor or {}).get("url")}
        if position["query"] >= len(queries):
            return
        fetched = 0
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="hfops-prefetch") as pool:
            url = self._url(position, queries)
            pending = pool.submit(self.fetch, url)
            while True:
                response = pending.result()
                page, fetched = self._page_from(url, response, position["query"], queries, fetched)
                if page.next_cursor is not None:  # fetch the next page while this one is stored
                    url_next = self._url(page.next_cursor, queries)
                    pending = pool.submit(self.fetch, url_next)
                yield page
                if page.next_cursor is None:
                    return
                position, url = page.next_cursor, url_next
