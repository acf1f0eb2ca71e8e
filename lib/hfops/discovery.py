"""Discovery: sync Hub model listings into the registry, apply the candidate rule, score, detect quantization.

Two sources share one parsing path (``huggingface_hub.hf_api.ModelInfo``):

- :class:`HubSource` pages through ``GET {endpoint}/api/models`` with the same query ``HfApi.list_models``
  sends (server-side ``pipeline_tag``, ``filter=license:<id>``, ``sort=downloads``, one ``expand`` per field)
  and follows the ``Link: <...>; rel="next"`` header exactly as given. It requests pages itself, through
  huggingface_hub's own HTTP session and error mapping, because ``list_models`` cannot be bounded: it retries
  429/5xx internally for minutes (Retry-After + 1 s, five times), one malformed record aborts its whole
  iteration, and it exposes no cursor to resume from. Here every page is one request with our own
  Retry-After-honouring back-off (tenacity) under a deadline, every record is parsed on its own, and the
  next-page URL is stored after each committed page so an interrupted sync resumes where it stopped.
- :class:`SnapshotSource` reads a JSON / JSON Lines file of API records (``hfops sync --snapshot FILE``).

A sync is idempotent (upsert by model id), incremental (records whose content hash is unchanged are only
marked as seen), resumable, and never deletes: candidates that stop matching, or are no longer listed by
a complete pass over the same source, are flagged.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx2
import orjson
import sqlite_utils
from huggingface_hub import constants
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.hf_api import ModelInfo
from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_any

from hfops import jobs
from hfops.config import DiscoveryConfig, HubConfig, Settings, api_key, load_settings
from hfops.errors import RetryableHubError, SyncError
from hfops.paths import HUB_SNAPSHOT
from hfops.store import dumps, get_db, loads, one, rows, stable_hash, utcnow, write_tx

# Fields the rule and the score need; sent as one ``expand=`` each.
EXPAND_FIELDS = (
    "author", "sha", "tags", "downloads", "downloadsAllTime", "likes", "lastModified", "createdAt",
    "library_name", "safetensors", "pipeline_tag", "trendingScore", "siblings", "config", "cardData", "gated",
)
# Licence ids of the RAIL family sent as server-side filters; the rule itself matches any id containing
# "openrail" (the Hub cannot filter on a substring).
KNOWN_OPENRAIL_IDS = ("openrail", "openrail++", "creativeml-openrail-m", "bigscience-openrail-m", "bigcode-openrail-m")
RETRYABLE_STATUS = (408, 429, 500, 502, 503, 504)
QUANT_METHODS = ("gptq", "awq", "bnb-4bit", "bnb-8bit", "gguf", "fp8", "compressed-tensors")
OPEN_LICENSES = ("apache-2.0", "mit", "bsd-3-clause", "bsd-2-clause", "bsd", "cc0-1.0", "unlicense")

ProgressFn = Callable[..., None]




# --------------------------------------------------------------------------------------------------
# Facts from one record: licence, library, safetensors, quantization, rule, score
# --------------------------------------------------------------------------------------------------


@dataclass
class ModelFacts:
    """What the rule and the score read from one parsed record."""

    model_id: str
    author: str | None
    sha: str | None
    pipeline_tag: str | None
    library_name: str | None
    license: str | None
    tags: list[str]
    siblings: list[str]
    downloads: int
    downloads_all_time: int | None
    likes: int
    trending_score: float | None
    created_at: str | None
    last_modified: str | None
    gated: str | None
    safetensors: bool
    quantization: list[str]

    @property
    def use_restricted(self) -> bool:
        """RAIL-family licences carry use restrictions."""
        return bool(self.license) and ("openrail" in self.license or "-rail-" in self.license)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def _int_or_none(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"wrong type for {name}: {type(value).__name__}")
    return value


def license_of(info: ModelInfo) -> str | None:
    """Licence id from the ``license:`` tag, else from card data."""
    for tag in info.tags or []:
        if tag.startswith("license:"):
            return tag.removeprefix("license:").strip().lower() or None
    card_license = getattr(info.card_data, "license", None) if info.card_data is not None else None
    if isinstance(card_license, list):
        card_license = card_license[0] if card_license else None
    return card_license.strip().lower() if isinstance(card_license, str) and card_license.strip() else None


def detect_quantization(info: ModelInfo) -> list[str]:
    """Quantization methods seen in tags, config ``quantization_config`` and file names (sorted, unique)."""
    found: set[str] = set()
    tags = {t.lower() for t in info.tags or []}
    names = "\n".join([info.id, *[s.rfilename or "" for s in info.siblings or []]]).lower() + "\n"
    for method in ("gptq", "awq", "fp8"):
        if method in tags or method in names:
            found.add(method)
    if "gguf" in tags or ".gguf\n" in names or "-gguf\n" in names or info.gguf:
        found.add("gguf")
    if "compressed-tensors" in tags:
        found.add("compressed-tensors")
    if "4-bit" in tags or "bnb-4bit" in names:
        found.add("bnb-4bit")
    if "8-bit" in tags or "bnb-8bit" in names:
        found.add("bnb-8bit")
    if "bitsandbytes" in tags and not found & {"bnb-4bit", "bnb-8bit"}:
        found.add("bnb-4bit")
    config = info.config if isinstance(info.config, dict) else {}
    quant = config.get("quantization_config")
    if isinstance(quant, dict):
        method = str(quant.get("quant_method", "")).lower()
        if method == "bitsandbytes":
            found.add("bnb-8bit" if quant.get("load_in_8bit") else "bnb-4bit")
        elif method in ("gptq", "awq", "fp8", "compressed-tensors"):
            found.add(method)
    return sorted(found)


def _api_date(raw: Any, parsed: datetime | None) -> str | None:
    """The API's own timestamp string when already ISO-8601 ``...Z`` (validated by ModelInfo), else re-formatted."""
    if parsed is None:
        return None
    return raw if isinstance(raw, str) and raw.endswith("Z") else _iso(parsed)


def facts_from(info: ModelInfo, record: dict[str, Any] | None = None) -> ModelFacts:
    """Extract and type-check the facts of one parsed record (ValueError on a wrong type)."""
    record = record or {}
    if not isinstance(info.id, str) or not info.id.strip():
        raise ValueError("missing id")
    tags = info.tags or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ValueError("wrong type for tags")
    siblings = [s.rfilename if isinstance(s.rfilename, str) else str(s.rfilename) for s in info.siblings or []]
    for name in ("pipeline_tag", "library_name"):
        value = getattr(info, name)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"wrong type for {name}")
    trending = info.trending_score
    if trending is not None and (isinstance(trending, bool) or not isinstance(trending, int | float)):
        raise ValueError("wrong type for trendingScore")
    safetensors = (
        "safetensors" in tags or info.safetensors is not None or any(s.endswith(".safetensors") for s in siblings)
    )
    return ModelFacts(
        model_id=info.id,
        author=info.author if isinstance(info.author, str) else (info.id.split("/")[0] if "/" in info.id else None),
        sha=info.sha if isinstance(info.sha, str) else None,
        pipeline_tag=info.pipeline_tag,
        library_name=info.library_name,
        license=license_of(info),
        tags=tags,
        siblings=siblings,
        downloads=_int_or_none(info.downloads, "downloads") or 0,
        downloads_all_time=_int_or_none(info.downloads_all_time, "downloadsAllTime"),
        likes=_int_or_none(info.likes, "likes") or 0,
        trending_score=float(trending) if trending is not None else None,
        created_at=_api_date(record.get("createdAt"), info.created_at),
        last_modified=_api_date(record.get("lastModified"), info.last_modified),
        gated=str(info.gated) if info.gated is not None else None,
        safetensors=safetensors,
        quantization=detect_quantization(info),
    )


def license_allowed(license_id: str | None, patterns: list[str]) -> bool:
    """True when the licence id matches one of the configured ids / glob patterns (``*openrail*``)."""
    return bool(license_id) and any(fnmatch.fnmatchcase(license_id, p.lower()) for p in patterns)


def rule_failures(facts: ModelFacts, rule: DiscoveryConfig) -> list[str]:
    """The clauses of the candidate rule that a model fails (empty list = it is a candidate)."""
    failures = []
    if facts.pipeline_tag not in rule.pipeline_tags:
        failures.append(f"pipeline tag {facts.pipeline_tag or 'none'} not in {', '.join(rule.pipeline_tags)}")
    if not license_allowed(facts.license, rule.licenses):
        failures.append(f"licence {facts.license or 'none'} not allowed")
    library_ok = any(
        lib in facts.tags or facts.library_name == lib for lib in rule.libraries if lib == "transformers"
    ) or facts.library_name in rule.libraries
    if not library_ok:
        failures.append(f"library {facts.library_name or 'none'} not in {', '.join(rule.libraries)}")
    if rule.require_safetensors and not facts.safetensors:
        failures.append("no safetensors weights")
    if facts.downloads < rule.min_downloads:
        failures.append(f"downloads {facts.downloads} < {rule.min_downloads}")
    if facts.likes < rule.min_likes:
        failures.append(f"likes {facts.likes} < {rule.min_likes}")
    return failures


# Score weights: each term is in [0, 1]; no weight exceeds 0.3 so no term dominates.
SCORE_WEIGHTS = {"downloads": 0.3, "likes": 0.3, "recency": 0.25, "license": 0.15}
DOWNLOADS_SCALE = 7.0  # log10(1 + downloads) / 7: 10M downloads in 30 days -> 1.0
LIKES_SCALE = 4.0  # log10(1 + likes) / 4: 10k likes -> 1.0
RECENCY_HALF_LIFE_DAYS = 365.0


def quality_score(facts: ModelFacts, now: datetime | None = None) -> tuple[float, dict[str, dict[str, float]]]:
    """Score in [0, 1] and its breakdown ``{term: {"value", "weight", "contribution"}}`` (see docs/discovery.md)."""
    now = now or datetime.now(UTC)
    reference = facts.last_modified or facts.created_at
    if reference:
        age_days = max(0.0, (now - datetime.fromisoformat(reference.replace("Z", "+00:00"))).total_seconds() / 86400)
        recency = 0.5 ** (age_days / RECENCY_HALF_LIFE_DAYS)
    else:
        recency = 0.0
    if facts.license in OPEN_LICENSES:
        openness = 1.0
    elif facts.use_restricted:
        openness = 0.5
    elif facts.license:
        openness = 0.25
    else:
        openness = 0.0
    values = {
        "downloads": min(1.0, math.log10(1 + facts.downloads) / DOWNLOADS_SCALE),
        "likes": min(1.0, math.log10(1 + facts.likes) / LIKES_SCALE),
        "recency": recency,
        "license": openness,
    }
    breakdown = {
        term: {"value": round(v, 4), "weight": SCORE_WEIGHTS[term], "contribution": round(v * SCORE_WEIGHTS[term], 4)}
        for term, v in values.items()
    }
    score = round(sum(v * SCORE_WEIGHTS[t] for t, v in values.items()), 4)
    return score, breakdown


def parse_record(record: Any) -> tuple[ModelInfo, ModelFacts]:
    """Parse one API record through ModelInfo and extract its facts; ValueError names what is wrong."""
    if not isinstance(record, dict):
        raise ValueError(f"record is {type(record).__name__}, not an object")
    if not isinstance(record.get("id"), str) or not record["id"].strip():
        raise ValueError("missing id")
    try:
        info = ModelInfo(**record)
    except KeyError as exc:
        raise ValueError(f"missing field {exc}") from None
    except (TypeError, AttributeError) as exc:
        raise ValueError(f"wrong type: {exc}") from None
    except ValueError as exc:
        raise ValueError(f"bad value: {exc}") from None
    return info, facts_from(info, record)


def skip_reason(exc: Exception) -> str:
    """A short category for the skip counters ('missing id', 'bad date', 'wrong type', ...)."""
    text = str(exc)
    if "missing id" in text:
        return "missing id"
    if "date" in text.lower() or "time" in text.lower() or "isoformat" in text.lower():
        return "bad date"
    if "wrong type" in text or "not an object" in text:
        return "wrong type"
    if "missing field" in text:
        return "missing field"
    return "malformed record"


# --------------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------------


@dataclass
class Page:
    """One page of raw records and the cursor that resumes *after* it (None = the source is exhausted)."""

    records: list[Any]
    next_cursor: dict[str, Any] | None
    errors: list[str] = field(default_factory=list)
    skipped_lines: list[str] = field(default_factory=list)
    total: int | None = None  # records this run will see, when the source knows it (snapshots)


class Source(Protocol):
    """Where records come from: yields pages from a cursor (None = start)."""

    name: str
    complete_pass_possible: bool

    def pages(self, cursor: dict[str, Any] | None) -> Iterator[Page]: ...


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
            records = data.get("models") if isinstance(data, dict) else data
            if not isinstance(records, list):
                raise SyncError(f"snapshot file {self.path}: expected a list of records or {{'models': [...]}}")
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

    def pages(self, cursor: dict[str, Any] | None) -> Iterator[Page]:
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


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
        except (TypeError, ValueError):
            return None


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
        self.on_retry = on_retry or (lambda wait, why: None)
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

    def _get(self, url: str) -> httpx2.Response:
        headers = build_hf_headers(token=self.token or False, library_name="hfops")
        try:
            response = get_session().get(url, headers=headers, timeout=self.hub.request_timeout_seconds)
        except (httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError) as exc:
            raise RetryableHubError(f"{type(exc).__name__} on {url.split('?')[0]}") from None
        if response.status_code in RETRYABLE_STATUS:
            raise RetryableHubError(
                f"HTTP {response.status_code} from {url.split('?')[0]}",
                _retry_after_seconds(response.headers.get("retry-after")),
            )
        try:
            hf_raise_for_status(response)
        except HfHubHTTPError as exc:
            raise SyncError(f"the Hub refused the listing: HTTP {response.status_code}: {exc.server_message or ''}".strip()) from None
        return response

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        backoff = min(self.hub.max_backoff_seconds, 2.0 ** (state.attempt_number - 1))
        wait = retry_after if retry_after is not None else backoff
        return max(0.0, float(wait))

    def _give_up(self, state: RetryCallState) -> bool:
        wait = self._wait(state)
        if self.waited + wait > self.hub.deadline_seconds:
            exc = state.outcome.exception() if state.outcome else None
            raise SyncError(
                f"gave up after {self.waited:.1f} s of back-off: {exc}; the next wait ({wait:.0f} s) "
                f"would pass the {self.hub.deadline_seconds:.0f} s deadline. What was stored is kept; "
                "the next sync resumes from this page."
            )
        self.waited += wait
        self.on_retry(wait, str(state.outcome.exception() if state.outcome else ""))
        return False

    def fetch(self, url: str) -> httpx2.Response:
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

    def _page_from(self, url: str, response: httpx2.Response, query_index: int, queries: list, fetched: int
                   ) -> tuple[Page, int]:
        following = response.links.get("next", {}).get("url")
        errors: list[str] = []
        try:
            records = orjson.loads(response.content)
            if not isinstance(records, list):
                raise ValueError(f"expected a JSON list, got {type(records).__name__}")
        except ValueError as exc:
            records = []
            errors.append(f"malformed page {url.split('?')[0]} ({str(exc)[:80]}): skipped")
            done = False
        else:
            done = self._query_done(records)
        fetched += len(records)
        capped = bool(self.hub.max_models) and fetched >= self.hub.max_models
        if following and not done and not capped:
            cursor_after: dict[str, Any] | None = {"query": query_index, "url": following}
        elif query_index + 1 < len(queries) and not capped:
            cursor_after = {"query": query_index + 1}
        else:
            cursor_after = None
        return Page(records, cursor_after, errors=errors), fetched

    def _url(self, cursor: dict[str, Any], queries: list) -> str:
        return cursor.get("url") or f"{self.endpoint}/api/models?{urlencode(queries[cursor['query']])}"

    def pages(self, cursor: dict[str, Any] | None) -> Iterator[Page]:
        queries = self.queries()
        position = {"query": int((cursor or {}).get("query", 0)), "url": (cursor or {}).get("url")}
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


# --------------------------------------------------------------------------------------------------
# Sync
# --------------------------------------------------------------------------------------------------


def raw_json(record: Any) -> tuple[str, str]:
    """The record as stored (compact JSON, key order as received) and its content hash."""
    data = orjson.dumps(record, default=str)
    return data.decode(), hashlib.blake2b(data, digest_size=16).hexdigest()


def _model_row(facts: ModelFacts, raw: str, record_hash: str, failures: list[str],
               source: str, sync_id: int, now: str) -> dict[str, Any]:
    return {
        "model_id": facts.model_id,
        "author": facts.author,
        "sha": facts.sha,
        "pipeline_tag": facts.pipeline_tag,
        "library_name": facts.library_name,
        "license": facts.license,
        "use_restricted": int(facts.use_restricted),
        "tags": orjson.dumps(facts.tags).decode(),
        "siblings": orjson.dumps(facts.siblings).decode(),
        "downloads": facts.downloads,
        "downloads_all_time": facts.downloads_all_time,
        "likes": facts.likes,
        "trending_score": facts.trending_score,
        "created_at": facts.created_at,
        "last_modified": facts.last_modified,
        "gated": facts.gated,
        "safetensors": int(facts.safetensors),
        "quantization": ",".join(facts.quantization),
        "matches_rule": int(not failures),
        "rule_failures": dumps(failures),
        "raw": raw,
        "record_hash": record_hash,
        "source": source,
        "last_seen": now,
        "last_sync_id": sync_id,
    }


@dataclass
class SyncCounts:
    pages: int = 0
    seen: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    matched: int = 0
    new_candidates: int = 0
    flagged: int = 0
    skip_reasons: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)


def rule_fingerprint(rule: DiscoveryConfig) -> str:
    """Hash of the rule settings: a stored model is re-evaluated when the rule changes."""
    return stable_hash(dataclasses.asdict(rule))[:16]


def _store_page(db: sqlite_utils.Database, records: list[Any], counts: SyncCounts, rule: DiscoveryConfig,
                source: str, sync_id: int, pass_id: int, now_dt: datetime) -> None:
    """Upsert one page of records and their candidates (caller holds the write transaction).

    A record whose content hash and rule fingerprint are unchanged is not parsed again: it is only marked
    as seen by this pass (one UPDATE per page).
    """
    now = utcnow()
    rule_hash = rule_fingerprint(rule)
    hashed = [(r, raw_json(r)) for r in records]
    ids = [r["id"] for r, _ in hashed if isinstance(r, dict) and isinstance(r.get("id"), str)]
    existing: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        for row in rows(
            db,
            "SELECT m.model_id, m.record_hash, m.rule_hash, c.model_id AS cand, c.flag FROM models m "
            f"LEFT JOIN candidates c ON c.model_id = m.model_id WHERE m.model_id IN ({', '.join('?' for _ in chunk)})",
            chunk,
        ):
            existing[row["model_id"]] = row
    unchanged_ids: list[str] = []
    new_rows, changed_rows, candidate_updates, new_candidates, transitions = [], [], [], [], []
    for record, (raw, record_hash) in hashed:
        counts.seen += 1
        old = existing.get(record.get("id")) if isinstance(record, dict) else None
        if old and old["record_hash"] == record_hash and old["rule_hash"] == rule_hash and not (
            old["cand"] and old["flag"]
        ):
            unchanged_ids.append(old["model_id"])
            counts.unchanged += 1
            counts.matched += int(bool(old["cand"]))
            continue
        try:
            _, facts = parse_record(record)
        except ValueError as exc:
            counts.skipped += 1
            counts.skip_reasons[skip_reason(exc)] += 1
            if len(counts.errors) < 50:
                rid = record.get("id") if isinstance(record, dict) else None
                counts.errors.append(f"skipped {rid or '(no id)'}: {exc}")
            continue
        failures = rule_failures(facts, rule)
        row = _model_row(facts, raw, record_hash, failures, source, pass_id, now)
        row["rule_hash"] = rule_hash
        if old is None:
            new_rows.append({**row, "first_seen": now})
            counts.inserted += 1
        else:
            changed_rows.append(row)
            counts.updated += 1
        has_candidate = bool(old and old["cand"])
        if not failures:
            counts.matched += 1
            score, breakdown = quality_score(facts, now_dt)
            candidate = {"model_id": facts.model_id, "score": score, "score_breakdown": dumps(breakdown),
                         "flag": None, "updated_at": now}
            if has_candidate:
                candidate_updates.append(candidate)
            else:
                new_candidates.append({**candidate, "status": "candidate", "created_at": now})
                transitions.append((facts.model_id, None, "candidate", now, "sync", "matched the candidate rule",
                                    f"sync_run:{sync_id}"))
        elif has_candidate:
            flag = "no longer matches the rule: " + "; ".join(failures)
            if old["flag"] != flag:
                counts.flagged += 1
            candidate_updates.append({"model_id": facts.model_id, "flag": flag, "updated_at": now})
    for start in range(0, len(unchanged_ids), 500):
        chunk = unchanged_ids[start:start + 500]
        db.execute(
            f"UPDATE models SET last_seen = ?, last_sync_id = ? WHERE model_id IN ({', '.join('?' for _ in chunk)})",
            [now, pass_id, *chunk],
        )
    if new_rows:
        columns = list(new_rows[0])
        db.conn.executemany(
            f"INSERT INTO models ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
            [[row[c] for c in columns] for row in new_rows],
        )
    if changed_rows:
        columns = [c for c in changed_rows[0] if c != "model_id"]
        db.conn.executemany(
            f"UPDATE models SET {', '.join(f'{c} = ?' for c in columns)} WHERE model_id = ?",
            [[row[c] for c in columns] + [row["model_id"]] for row in changed_rows],
        )
    if new_candidates:
        db["candidates"].insert_all(new_candidates)
        counts.new_candidates += len(new_candidates)
        db.conn.executemany(
            "INSERT INTO status_transitions (model_id, from_status, to_status, at, actor, reason, evidence) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            transitions,
        )
    for candidate in candidate_updates:
        db["candidates"].update(candidate["model_id"], candidate)


def _flag_unlisted(db: sqlite_utils.Database, source: str, pass_id: int, counts: SyncCounts) -> None:
    """After a complete pass, flag candidates from this source that the pass did not list."""
    flag = "not listed by the last complete sync of its source"
    cursor = db.execute(
        "UPDATE candidates SET flag = ?, updated_at = ? WHERE flag IS NULL AND model_id IN "
        "(SELECT model_id FROM models WHERE source = ? AND (last_sync_id IS NULL OR last_sync_id < ?))",
        [flag, utcnow(), source, pass_id],
    )
    counts.flagged += cursor.rowcount


def _save_run(db: sqlite_utils.Database, sync_id: int, counts: SyncCounts, **extra: Any) -> None:
    values = {
        "pages": counts.pages, "seen": counts.seen, "inserted": counts.inserted, "updated": counts.updated,
        "unchanged": counts.unchanged, "skipped": counts.skipped, "matched": counts.matched,
        "new_candidates": counts.new_candidates, "flagged": counts.flagged,
        "skip_reasons": dumps(dict(counts.skip_reasons)), "errors": dumps(counts.errors), **extra,
    }
    db["sync_runs"].update(sync_id, values)


def _start_run(db: sqlite_utils.Database, source: Source) -> tuple[int, int, dict[str, Any] | None]:
    """Create a sync run; resume the previous unfinished pass of the same source if there is one.

    A resumed Hub pass keeps its mode: an interrupted incremental pass resumes with its own watermark.
    """
    with write_tx(db):
        previous = one(
            db,
            "SELECT id, status, resume_cursor, message FROM sync_runs WHERE source = ? ORDER BY id DESC LIMIT 1",
            [source.name],
        )
        cursor = None
        pass_id = None
        if previous and previous["status"] in ("running", "failed", "interrupted") and previous["resume_cursor"]:
            state = loads(previous["resume_cursor"], {})
            cursor = state.get("cursor")
            pass_id = state.get("pass_id")
            if isinstance(source, HubSource):
                source.since = state.get("since")
                source.complete_pass_possible = source.since is None
            if previous["status"] == "running":
                db.execute("UPDATE sync_runs SET status = 'interrupted', finished_at = ? WHERE id = ?",
                           [utcnow(), previous["id"]])
        mode = "full" if source.complete_pass_possible else "incremental"
        sync_id = int(db.execute(
            "INSERT INTO sync_runs (source, mode, started_at, status, message) VALUES (?, ?, ?, 'running', ?)",
            [source.name, mode, utcnow(), f"resumed the pass of run {pass_id}" if pass_id else None],
        ).lastrowid)
        pass_id = pass_id or sync_id
        db.execute("UPDATE sync_runs SET resume_cursor = ? WHERE id = ?",
                   [dumps(_resume_state(source, pass_id, cursor)), sync_id])
    return sync_id, pass_id, cursor


def _resume_state(source: Source, pass_id: int, cursor: dict[str, Any] | None) -> dict[str, Any]:
    return {"pass_id": pass_id, "cursor": cursor, "since": getattr(source, "since", None)}


def incremental_watermark(db: sqlite_utils.Database, source_name: str, full_sync_hours: float) -> str | None:
    """The lastModified watermark for an incremental pass, or None when a full pass is due.

    A full pass is due when none succeeded within ``full_sync_hours`` (it refreshes download and like counts,
    which change without a commit, and flags models no longer listed). Otherwise the watermark is the older
    of the newest stored lastModified and the last full pass's start, less one hour of safety margin.
    """
    last_full = one(
        db,
        "SELECT started_at FROM sync_runs WHERE source = ? AND mode = 'full' AND status = 'succeeded' "
        "ORDER BY id DESC LIMIT 1",
        [source_name],
    )
    if not last_full or full_sync_hours <= 0:
        return None
    started = datetime.fromisoformat(last_full["started_at"].replace("Z", "+00:00"))
    if (datetime.now(UTC) - started).total_seconds() > full_sync_hours * 3600:
        return None
    newest = db.execute("SELECT MAX(last_modified) FROM models WHERE source = ?", [source_name]).fetchone()[0]
    candidates = [started]
    if newest:
        candidates.append(datetime.fromisoformat(newest.replace("Z", "+00:00")))
    mark = min(candidates) - timedelta(hours=1)
    return mark.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def run_sync(db_path: str, source: Source, rule: DiscoveryConfig, progress: ProgressFn | None = None,
             now: datetime | None = None) -> dict[str, Any]:
    """Sync ``source`` into the store at ``db_path``; returns the finished sync run as a dict.

    Each page is committed together with the cursor that resumes after it, so a crash or kill loses at
    most the page in flight. Raises :class:`SyncError` (after recording it) when the source gives up.
    """
    db = get_db(db_path)
    sync_id, pass_id, cursor = _start_run(db, source)
    counts = SyncCounts()
    now_dt = now or datetime.now(UTC)
    started = time.monotonic()
    if isinstance(source, HubSource):
        def on_retry(wait: float, why: str) -> None:  # may run on the prefetch thread: its own connection
            retry_db = get_db(db_path)
            with write_tx(retry_db):
                retry_db.execute(
                    "UPDATE sync_runs SET retries = retries + 1, retry_wait_seconds = retry_wait_seconds + ?, "
                    "message = ? WHERE id = ?",
                    [wait, f"backing off {wait:.0f} s: {why}", sync_id],
                )
            if progress:
                progress(counts.seen, None, f"backing off {wait:.0f} s: {why}", force=True)
        source.on_retry = on_retry
    try:
        for page in source.pages(cursor):
            with write_tx(db):
                counts.pages += 1
                counts.errors.extend(page.errors)
                for bad in page.skipped_lines:
                    counts.skipped += 1
                    counts.skip_reasons["invalid JSON"] += 1
                    if len(counts.errors) < 50:
                        counts.errors.append(f"skipped {bad}")
                _store_page(db, page.records, counts, rule, source.name, sync_id, pass_id, now_dt)
                state = _resume_state(source, pass_id, page.next_cursor)
                _save_run(db, sync_id, counts, resume_cursor=dumps(state) if page.next_cursor else None)
            if progress:
                progress(counts.seen, page.total, f"page {counts.pages}: {counts.seen} records, "
                         f"{counts.new_candidates} new candidates")
    except (SyncError, RetryableHubError, httpx2.HTTPError) as exc:
        message = str(exc) if isinstance(exc, SyncError) else f"{type(exc).__name__}: {exc}"
        with write_tx(db):
            counts.errors.append(message)
            _save_run(db, sync_id, counts, status="failed", finished_at=utcnow(), message=message)
        raise SyncError(f"sync {sync_id} failed: {message}") from None
    except BaseException:
        with write_tx(db):
            _save_run(db, sync_id, counts, status="interrupted", finished_at=utcnow(),
                      message="interrupted; the next sync resumes from the last stored page")
        raise
    with write_tx(db):
        if source.complete_pass_possible:
            _flag_unlisted(db, source.name, pass_id, counts)
        elapsed = time.monotonic() - started
        _save_run(db, sync_id, counts, status="succeeded", finished_at=utcnow(), resume_cursor=None,
                  message=f"{counts.seen} records in {elapsed:.1f} s")
    if progress:
        progress(counts.seen, counts.seen, "done", force=True)
    return last_sync_run(db) or {}


def sync_snapshot(db_path: str, snapshot_path: str | Path = HUB_SNAPSHOT, settings: Settings | None = None,
                  progress: ProgressFn | None = None) -> dict[str, Any]:
    """Sync a snapshot file of API records (default: the embedded one shipped in data/hub/)."""
    settings = settings or load_settings()
    return run_sync(db_path, SnapshotSource(snapshot_path, settings.hub.page_size), settings.discovery, progress)


def sync_hub(db_path: str, settings: Settings, progress: ProgressFn | None = None, mode: str = "auto"
             ) -> dict[str, Any]:
    """Sync from the configured Hub endpoint (``[hub] endpoint``; the real Hub by default).

    ``mode``: ``full``, ``incremental`` (records changed since the watermark only; a full pass when there is
    no recent one), or ``auto`` (incremental while the last full pass is younger than ``[hub] full_sync_hours``).
    """
    if mode not in ("auto", "full", "incremental"):
        raise SyncError(f"unknown sync mode {mode!r}; choose auto, full or incremental")
    source = HubSource(settings.hub, settings.discovery, token=api_key())
    if mode != "full":
        hours = settings.hub.full_sync_hours if mode == "auto" else float("inf")
        since = incremental_watermark(get_db(db_path), source.name, hours)
        source.since = since
        source.complete_pass_possible = since is None
    return run_sync(db_path, source, settings.discovery, progress)


def _decode_run(run: dict[str, Any]) -> dict[str, Any]:
    run["skip_reasons"] = loads(run["skip_reasons"], {})
    run["errors"] = loads(run["errors"], [])
    run["resume_cursor"] = loads(run["resume_cursor"])
    return run


def last_sync_run(db: sqlite_utils.Database) -> dict[str, Any] | None:
    """The most recent sync run, decoded, or None."""
    run = one(db, "SELECT * FROM sync_runs ORDER BY id DESC LIMIT 1")
    return _decode_run(run) if run else None


def list_sync_runs(db: sqlite_utils.Database, limit: int = 20) -> list[dict[str, Any]]:
    """Recent sync runs, newest first."""
    return [_decode_run(r) for r in rows(db, "SELECT * FROM sync_runs ORDER BY id DESC LIMIT ?", [limit])]


def ensure_embedded_default(db_path: str, settings: Settings | None = None) -> dict[str, Any] | None:
    """Load the shipped snapshot when the store has never been synced (first start); else do nothing."""
    db = get_db(db_path)
    if db.execute("SELECT COUNT(*) FROM sync_runs").fetchone()[0]:
        return None
    return sync_snapshot(db_path, HUB_SNAPSHOT, settings)


def endpoint_in_use(settings: Settings) -> str:
    """The Hub endpoint the next sync talks to (config, else huggingface_hub's default)."""
    return settings.hub.endpoint or constants.ENDPOINT


@jobs.handler("sync")
def sync_job(db_path: str, params: dict[str, Any], progress: jobs.Progress) -> dict[str, Any]:
    """Worker job: ``{"snapshot": path}`` or ``{"endpoint": url}`` (omitted: the configured endpoint)."""
    settings = load_settings(params.get("config"), **{"store.path": db_path, "hub.endpoint": params.get("endpoint")})
    if params.get("snapshot"):
        run = sync_snapshot(db_path, params["snapshot"], settings, progress)
    else:
        run = sync_hub(db_path, settings, progress, mode=params.get("mode", "auto"))
    return {k: run.get(k) for k in ("id", "mode", "status", "seen", "inserted", "updated", "unchanged", "skipped",
                                    "matched", "new_candidates", "flagged", "message")}
