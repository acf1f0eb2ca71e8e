"""Stand-in for the Hub's model listing API, ``GET /api/models``, serving real records.

Protocol as the Hub speaks it:
- query: ``pipeline_tag``, repeated ``filter`` (each must hold: a tag, ``license:<id>``, or the library),
  ``search`` (substring of the id), ``sort`` (``downloads`` | ``likes`` | ``lastModified`` | ``createdAt`` |
  ``trendingScore``, always descending), ``limit`` (page size, capped at 1000), repeated ``expand``;
- field projection: with ``expand`` only ``_id``, ``id`` and the expanded fields come back; without it the
  list defaults (``_id, id, likes, trendingScore, private, downloads, tags, pipeline_tag, library_name,
  createdAt, modelId``);
- pagination: a ``Link: <absolute next URL>; rel="next"`` header with an opaque ``cursor``.

Faults for tests (``server.faults[page_number] = kind``, pages counted from 1 across all requests, or
``server.fault_every``): ``429`` (with ``Retry-After: server.retry_after``), ``500``, ``503``, ``slow``
(sleeps ``server.slow_seconds`` before answering), ``malformed`` (200 with a body that is not JSON), ``drop``
(closes the connection). Each fault fires once (``server.sticky_faults`` keeps them). ``server.log`` records
every request path.

Any other fault (for tests/faults): ``server.rewrite = fn(number, reply) -> reply`` sees every
``/api/models`` answer as a :class:`Reply` (status, body, headers, the request path) and may change it.
``server.auth_log`` records the ``Authorization`` header of every request (None when absent).

Control (for benchmarks running the stand-in in another process): ``POST /_control/touch`` with
``{"every": 100, "last_modified": "...Z"}`` changes every N-th record (likes + 1, new lastModified) as a
commit would; ``GET /_control/stats`` returns ``{"pages_served": n}``. Run it as a process with
``python -m tests.standins.hub --records FILE [--replicate N]``: it prints its URL and serves until killed.
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.standins.base import LocalServer, QuietHandler

DEFAULT_LIST_FIELDS = (
    "_id",
    "id",
    "likes",
    "trendingScore",
    "private",
    "downloads",
    "tags",
    "pipeline_tag",
    "library_name",
    "createdAt",
    "modelId",
)
SORT_KEYS = {"downloads", "likes", "lastModified", "createdAt", "trendingScore"}


@dataclass
class Reply:
    """One answer of the stand-in, before it is sent (what ``server.rewrite`` may change)."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    path: str = ""
    content_type: str = "application/json; charset=utf-8"


def load_records(path: str) -> list[dict[str, Any]]:
    """Records of a JSON Lines snapshot (the shipped data/hub/models_snapshot.jsonl; ``.gz`` files too)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _matches(record: dict[str, Any], query: dict[str, list[str]]) -> bool:
    tags = record.get("tags") or []
    if "pipeline_tag" in query and record.get("pipeline_tag") != query["pipeline_tag"][0]:
        return False
    for wanted in query.get("filter", []):
        if wanted not in tags and record.get("library_name") != wanted:
            return False
    if "search" in query and query["search"][0].lower() not in str(record.get("id", "")).lower():
        return False
    return True


class HubStandIn(LocalServer):
    """A threaded HTTP server on 127.0.0.1 serving ``records`` as the Hub's /api/models would."""

    def __init__(self, records: list[dict[str, Any]], default_page_size: int = 1000) -> None:
        self.records = records
        self.default_page_size = default_page_size
        self.faults: dict[int, str] = {}
        self.fault_every: tuple[int, str] | None = None
        self.sticky_faults = False
        self.retry_after = "1"
        self.slow_seconds = 2.0
        self.pages_served = 0
        self.log: list[str] = []
        self.auth_log: list[str | None] = []
        self.rewrite: Callable[[int, Reply], Reply] | None = None
        self._lock = threading.Lock()
        # result sets and their records encoded per field projection (clear it after changing records)
        self._sorted_cache: dict[tuple[Any, ...], list[Any]] = {}
        super().__init__(self._handler())

    def model_requests(self) -> list[str]:
        return [p for p in self.log if p.startswith("/api/models")]

    def _result_set(self, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        key = json.dumps(
            {k: v for k, v in sorted(query.items()) if k in ("pipeline_tag", "filter", "search", "sort")}
        )
        sort = (query.get("sort") or [""])[0]
        cache_key = (key, sort)
        if cache_key not in self._sorted_cache:
            found = [r for r in self.records if _matches(r, query)]
            if sort in SORT_KEYS:
                found.sort(key=lambda r: (r.get(sort) is not None, r.get(sort) or 0), reverse=True)
            self._sorted_cache[cache_key] = found
        return self._sorted_cache[cache_key]

    def _encoded(self, query: dict[str, list[str]], fields: tuple[str, ...]) -> list[bytes]:
        """The result set's records projected on ``fields``, each JSON-encoded once (pages only join them)."""
        key = (
            "encoded",
            json.dumps(sorted((k, v) for k, v in query.items() if k not in ("limit", "cursor"))),
            fields,
        )
        if key not in self._sorted_cache:
            found = self._result_set(query)
            self._sorted_cache[key] = [
                json.dumps({k: r[k] for k in fields if k in r}).encode() for r in found
            ]
        return self._sorted_cache[key]

    def _take_fault(self) -> tuple[int, str | None]:
        with self._lock:
            self.pages_served += 1
            number = self.pages_served
            if self.fault_every and number % self.fault_every[0] == 0:
                return number, self.fault_every[1]
            fault = self.faults.get(number)
            if fault and not self.sticky_faults:
                del self.faults[number]
            return number, fault

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(QuietHandler):
            _send = QuietHandler.send_bytes

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.read_body() or b"{}")
                if self.path == "/_control/touch":
                    every = int(body.get("every", 100))
                    for record in standin.records[::every]:
                        record["likes"] = (record.get("likes") or 0) + 1
                        record["lastModified"] = body.get("last_modified", "2030-01-01T00:00:00.000Z")
                    standin._sorted_cache.clear()
                    self._send(200, json.dumps({"touched": len(standin.records[::every])}).encode())
                else:
                    self._send(404, b'{"error":"Not Found"}')

            def do_GET(self) -> None:  # noqa: N802
                if self.path == "/_control/stats":
                    self._send(200, json.dumps({"pages_served": standin.pages_served}).encode())
                    return
                standin.log.append(self.path)
                standin.auth_log.append(self.headers.get("Authorization"))
                parts = urlsplit(self.path)
                if parts.path != "/api/models":
                    self._send(404, b'{"error":"Not Found"}')
                    return
                number, fault = standin._take_fault()
                if fault == "429":
                    self._send(429, b'{"error":"rate limited"}', {"Retry-After": standin.retry_after})
                    return
                if fault in ("500", "503"):
                    self._send(int(fault), b'{"error":"server error"}')
                    return
                if fault == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if fault == "slow":
                    time.sleep(standin.slow_seconds)
                query = parse_qs(parts.query)
                cursor = query.pop("cursor", ["0"])[0]
                offset = int(base64.urlsafe_b64decode(cursor.encode()).decode() or 0) if cursor != "0" else 0
                limit = min(int((query.get("limit") or [standin.default_page_size])[0]), 1000)
                expand = query.get("expand")
                fields = ("_id", "id", *expand) if expand else DEFAULT_LIST_FIELDS
                found = standin._encoded(query, tuple(fields))
                headers = {}
                if offset + limit < len(found):
                    next_query = {k: v for k, v in query.items()}
                    next_query["cursor"] = [base64.urlsafe_b64encode(str(offset + limit).encode()).decode()]
                    pairs = [(k, v) for k, vs in next_query.items() for v in vs]
                    headers["Link"] = f'<{standin.url}/api/models?{urlencode(pairs)}>; rel="next"'
                page = b"[" + b", ".join(found[offset : offset + limit]) + b"]"
                payload = b"{not json" if fault == "malformed" else page
                reply = Reply(200, payload, headers, self.path)
                if standin.rewrite is not None:
                    reply = standin.rewrite(number, reply)
                self._send(reply.status, reply.body, reply.headers, reply.content_type)

        return Handler


def replicate(records: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """``n`` copies of ``records`` cycled with distinct ids (``<id>-r<i>``) and a strict downloads order."""
    out = []
    for i in range(n):
        record = json.loads(json.dumps(records[i % len(records)]))
        record["id"] = f"{record['id']}-r{i}"
        record["downloads"] = n - i
        out.append(record)
    return out


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", required=True, help="JSON Lines file of API records")
    parser.add_argument("--replicate", type=int, default=0, help="serve this many replicated records")
    parser.add_argument("--pipeline-tag", help="keep only records with this pipeline tag")
    parser.add_argument("--license", help="keep only records with this licence tag")
    cli = parser.parse_args()
    chosen = load_records(cli.records)
    if cli.pipeline_tag:
        chosen = [r for r in chosen if r.get("pipeline_tag") == cli.pipeline_tag]
    if cli.license:
        chosen = [r for r in chosen if f"license:{cli.license}" in (r.get("tags") or [])]
    if cli.replicate:
        chosen = replicate(chosen, cli.replicate)
    server = HubStandIn(chosen).start()
    print(server.url, flush=True)
    threading.Event().wait()
