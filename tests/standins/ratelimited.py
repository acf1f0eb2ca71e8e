"""Stand-in for a rate-limited Hub (and an OpenAI-style chat endpoint reporting ``usage``).

Rate limits as the Hub announces them (IETF draft headers, fixed windows):
``RateLimit: "<resource>";r=<left after this request>;t=<seconds to reset>`` and
``RateLimit-Policy: "fixed window";"<resource>";q=<quota>;w=<window>`` on every counted response. Windows
are aligned on the server's start; ``t`` is rounded up (at least 1). When a bucket is exhausted the answer
is 429 with ``Retry-After: t`` and ``r=0``. Buckets: ``api`` (``/api/...``), ``resolvers``
(``/{repo}/resolve/...``), or one ``api`` bucket for everything with ``shared_bucket=True``.

Routes:
- ``GET /api/models``: ``models`` records ``org/model-<i>``, ``page_size`` per page,
  ``Link: <...>; rel="next"`` pagination with a ``cursor`` offset (what ``HfApi.list_models`` follows);
- ``GET /api/models/{org}/{name}`` and ``/api/models/{org}/{name}/tree/{rev}``: a repo holding ``a.txt``
  (what ``HfApi.model_info`` / ``list_repo_tree`` read);
- ``HEAD`` / ``GET /{org}/{name}/resolve/main/{file}``: a small text file with ``ETag``, ``X-Repo-Commit``
  and ``Content-Length`` (what ``hf_hub_download`` needs);
- ``POST /v1/chat/completions``: an OpenAI chat completion whose ``usage`` counts the words of the messages
  (prompt) and ``min(max_tokens, 5 + number of messages)`` (completion); ``behaviour`` = ``ok`` |
  ``credits`` (402) | ``rate_limited`` (429). Not rate limited.
- ``GET /_control/stats``: counters as JSON (not counted).

``server.log`` has one entry per counted request: path, route, resource, window index, status, ``r``, ``t``,
and the Unix time it arrived. ``server.chat_log`` has the ``usage`` of every chat completion answered.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.standins.base import LocalServer, QuietHandler

COMMIT = hashlib.sha1(b"ratelimited-standin").hexdigest()


def file_content(repo: str, filename: str) -> bytes:
    """The bytes served for ``repo/filename`` (tests compare downloads with it)."""
    return f"{repo}/{filename}\n".encode() * 8


class RateLimitedHub(LocalServer):
    """A threaded HTTP server on 127.0.0.1 counting requests per bucket and fixed window."""

    def __init__(
        self,
        quota: int = 10,
        window: int = 2,
        *,
        shared_bucket: bool = False,
        models: int = 40,
        page_size: int = 4,
        behaviour: str = "ok",
    ) -> None:
        self.quota = quota
        self.window = window
        self.shared_bucket = shared_bucket
        self.models = models
        self.page_size = page_size
        self.behaviour = behaviour
        self.log: list[dict[str, Any]] = []
        self.chat_log: list[dict[str, Any]] = []
        self.authorizations: list[str] = []  # Authorization headers received (tests check tokens were sent)
        self._counts: dict[str, tuple[int, int]] = {}  # resource -> (window index, requests counted)
        self._lock = threading.Lock()
        self._start = time.monotonic()
        super().__init__(self._handler_class())

    @property
    def rejected(self) -> int:
        """429s served so far."""
        with self._lock:
            return sum(1 for entry in self.log if entry["status"] == 429)

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.log)

    def charge(self, path: str) -> tuple[int, dict[str, str], dict[str, Any]]:
        """Count one request against its bucket: (status 200 | 429, rate-limit headers, log entry)."""
        route = "api" if path.startswith("/api/") else "resolvers"
        resource = "api" if self.shared_bucket else route
        with self._lock:
            now = time.monotonic()
            index = int((now - self._start) // self.window)
            reset_in = max(1, math.ceil(self._start + (index + 1) * self.window - now))
            current, used = self._counts.get(resource, (index, 0))
            if current != index:
                used = 0
            status = 200 if used < self.quota else 429
            if status == 200:
                used += 1
            self._counts[resource] = (index, used)
            left = self.quota - used
            entry = {
                "path": path,
                "route": route,
                "resource": resource,
                "window": index,
                "status": status,
                "r": left,
                "t": reset_in,
                "at": time.time(),
            }
            self.log.append(entry)
        headers = {
            "RateLimit": f'"{resource}";r={left};t={reset_in}',
            "RateLimit-Policy": f'"fixed window";"{resource}";q={self.quota};w={self.window}',
        }
        if status == 429:
            headers["Retry-After"] = str(reset_in)
        return status, headers, entry

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(QuietHandler):
            def _json(self, status: int, value: Any, headers: dict[str, str] | None = None) -> None:
                self.send_bytes(status, json.dumps(value).encode(), headers)

            def _note_auth(self) -> None:
                if self.headers.get("Authorization"):
                    with standin._lock:
                        standin.authorizations.append(self.headers["Authorization"])

            def do_HEAD(self) -> None:  # noqa: N802
                self._note_auth()
                self._resolve(head=True)

            def do_GET(self) -> None:  # noqa: N802
                self._note_auth()
                path = urlsplit(self.path).path
                if path == "/_control/stats":
                    self._json(200, {"requests": len(standin.entries()), "rejected": standin.rejected})
                elif path.startswith("/api/"):
                    self._api(path)
                elif "/resolve/" in path:
                    self._resolve(head=False)
                else:
                    self._json(404, {"error": "not found"})

            def do_POST(self) -> None:  # noqa: N802
                raw = self.read_body()
                self._note_auth()
                if urlsplit(self.path).path != "/v1/chat/completions":
                    self._json(404, {"error": "not found"})
                    return
                if standin.behaviour == "credits":
                    self._json(402, {"error": "You have exceeded your monthly included credits"})
                    return
                if standin.behaviour == "rate_limited":
                    self._json(429, {"error": "Rate limit reached"}, {"Retry-After": "30"})
                    return
                body = json.loads(raw or b"{}")
                messages = body.get("messages") or []
                prompt = sum(len(str(m.get("content", "")).split()) for m in messages)
                completion = min(int(body.get("max_tokens") or 64), 5 + len(messages))
                usage = {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                }
                with standin._lock:
                    standin.chat_log.append({"model": body.get("model"), "usage": usage})
                self._json(
                    200,
                    {
                        "id": "ratelimited-1",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model", "standin"),
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": "ok " * completion},
                            }
                        ],
                        "usage": usage,
                    },
                )

            def _api(self, path: str) -> None:
                status, headers, _ = standin.charge(path)
                if status == 429:
                    self._json(429, {"error": "You have exceeded our rate limit"}, headers)
                    return
                parts = path.strip("/").split("/")  # api, models, org, name[, tree, rev]
                if len(parts) == 4 and parts[:2] == ["api", "models"]:  # model_info
                    repo = "/".join(parts[2:4])
                    siblings = [{"rfilename": "a.txt"}]
                    self._json(200, {"id": repo, "sha": COMMIT, "siblings": siblings}, headers)
                    return
                if len(parts) == 6 and parts[:2] == ["api", "models"] and parts[4] == "tree":
                    size = len(file_content("/".join(parts[2:4]), "a.txt"))
                    self._json(200, [{"type": "file", "path": "a.txt", "size": size, "oid": COMMIT}], headers)
                    return
                if path != "/api/models":
                    self._json(404, {"error": "not found"}, headers)
                    return
                query = parse_qs(urlsplit(self.path).query)
                offset = int(query.get("cursor", ["0"])[0])
                end = min(offset + standin.page_size, standin.models)
                page = [
                    {
                        "id": f"org/model-{i}",
                        "_id": f"id{i}",
                        "downloads": 10_000 - i,
                        "likes": i,
                        "createdAt": "2026-01-01T00:00:00.000Z",
                        "tags": ["license:mit"],
                        "pipeline_tag": "feature-extraction",
                        "library_name": "sentence-transformers",
                    }
                    for i in range(offset, end)
                ]
                if end < standin.models:
                    host = self.headers.get("Host", "127.0.0.1")
                    next_url = f"http://{host}/api/models?" + urlencode({"cursor": end})
                    headers["Link"] = f'<{next_url}>; rel="next"'
                self._json(200, page, headers)

            def _resolve(self, head: bool) -> None:
                path = urlsplit(self.path).path
                repo, _, rest = path.strip("/").partition("/resolve/")
                filename = rest.partition("/")[2]
                status, headers, _ = standin.charge(path)
                if status == 429:
                    body = b"" if head else b'{"error": "rate limited"}'
                    self._raw(429, body, headers, head)
                    return
                content = file_content(repo, filename)
                headers.update(
                    {"ETag": '"' + hashlib.sha256(content).hexdigest() + '"', "X-Repo-Commit": COMMIT}
                )
                self._raw(200, content, headers, head, content_type="text/plain")

            def _raw(
                self,
                status: int,
                body: bytes,
                headers: dict[str, str],
                head: bool,
                content_type: str = "application/json",
            ) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    if not head:
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        return Handler


if __name__ == "__main__":  # manual use: python -m tests.standins.ratelimited
    server = RateLimitedHub().start()
    print(server.url, flush=True)
    threading.Event().wait()
