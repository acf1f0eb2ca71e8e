"""Stand-in for the Hub's write API: what ``HfApi.create_repo`` + ``HfApi.create_commit`` call
(huggingface_hub 2.4).

Endpoints, as read in the installed client (``hf_api.py``, ``_commit_api.py``):

- ``POST /api/repos/create`` — JSON ``{"name", "organization", "visibility": "private", "type"?}`` →
  ``{"url"}``; 409 when the repo exists (``create_repo(exist_ok=True)`` swallows it). After a 401/403 with
  ``exist_ok`` the client asks ``GET /api/models/{repo_id}`` (``repo_info``) whether the repo exists anyway.
- ``POST /api/validate-yaml`` — ``{"content", "repoType"}``: ``create_commit`` validates a committed
  README.md's front matter first → ``{"errors": [], "warnings": []}`` (400 with errors when the YAML is not a
  mapping).
- ``POST /api/models/{repo_id}/preupload/{revision}`` — ``{"files": [{"path", "sample", "size"}]}`` →
  ``{"files": [{"path", "uploadMode": "regular", "shouldIgnore": false, "oid": null}]}``. The client retries
  429/5xx here (``http_backoff``), so errors are best injected elsewhere.
- ``POST /api/models/{repo_id}/commit/{revision}`` — NDJSON: a ``header`` line (``summary``, ``description``),
  then ``file`` lines (``path``, base64 ``content``) → ``{"commitUrl", "commitOid"}``.

Every request needs ``Authorization: Bearer <token>`` with the stand-in's token (else 401, as the Hub answers
a bad token). Faults: ``standin.fail(endpoint, status, times=1)`` with endpoint ``create`` | ``validate`` |
``preupload`` | ``commit`` | ``repo_info`` and status 401, 403, 409 or any 5xx, with the Hub's error headers.
``standin.requests`` logs every request (method, path, endpoint, status, whether it was authorised);
``standin.repos[repo_id]`` holds ``{"private", "files": {path: bytes}, "commits": [...]}``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml

from tests.standins.base import LocalServer, QuietHandler

REPO_PATH = re.compile(
    r"^/api/(?P<type>models|datasets|spaces)/(?P<repo>[^/]+/[^/]+)/(?P<op>preupload|commit)/(?P<rev>[^/]+)$"
)
INFO_PATH = re.compile(r"^/api/(?P<type>models|datasets|spaces)/(?P<repo>[^/]+/[^/]+)$")
FAULT_MESSAGES = {
    401: "Invalid credentials in Authorization header",
    403: "You don't have the rights to create a model under this namespace",
    409: "A commit has happened since. Please refresh and try again.",
}


@dataclass
class Request:
    """One request as the stand-in saw it (the Authorization value itself is not kept)."""

    method: str
    path: str
    endpoint: str
    status: int = 0
    authorized: bool = False
    body: Any = None


@dataclass
class _Fault:
    status: int
    times: int


@dataclass
class StoredRepo:
    repo_id: str
    private: bool
    files: dict[str, bytes] = field(default_factory=dict)
    commits: list[dict[str, Any]] = field(default_factory=list)


class HubWriteStandIn(LocalServer):
    """A threaded HTTP server on 127.0.0.1.

    It implements repo creation, README validation, preupload and commit.
    """

    def __init__(self, token: str) -> None:
        self.token = token
        self.repos: dict[str, StoredRepo] = {}
        self.requests: list[Request] = []
        self._faults: dict[str, _Fault] = {}
        # (quota, window seconds): announce the Hub's RateLimit headers on every response (a fixed count)
        self.ratelimit: tuple[int, int] | None = None
        self._lock = threading.Lock()
        super().__init__(self._handler())

    def fail(self, endpoint: str, status: int, times: int = 1) -> None:
        """Answer the next ``times`` requests to ``endpoint`` with ``status``."""
        self._faults[endpoint] = _Fault(status, times)

    def endpoints(self) -> list[str]:
        """The endpoint names of the logged requests, in order."""
        return [r.endpoint for r in self.requests]

    def _take_fault(self, endpoint: str) -> int | None:
        with self._lock:
            fault = self._faults.get(endpoint)
            if fault is None or fault.times <= 0:
                return None
            fault.times -= 1
            return fault.status

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(QuietHandler):
            def end_headers(self) -> None:
                if standin.ratelimit is not None:
                    quota, window = standin.ratelimit
                    self.send_header("RateLimit", f'"api";r={quota - 1};t={window}')
                    self.send_header("RateLimit-Policy", f'"fixed window";"api";q={quota};w={window}')
                super().end_headers()

            def _send(
                self, entry: Request, status: int, payload: Any, headers: dict[str, str] | None = None
            ) -> None:
                entry.status = status
                self.send_bytes(status, json.dumps(payload).encode(), headers)

            def _error(self, entry: Request, status: int, message: str | None = None) -> None:
                message = (
                    message or FAULT_MESSAGES.get(status) or "Internal Error - We're working hard to fix this"
                )
                self._send(entry, status, {"error": message}, {"X-Error-Message": message})

            _body = QuietHandler.read_body

            def _route(self, method: str) -> tuple[str, dict[str, str]]:
                path = unquote(urlsplit(self.path).path)
                if method == "POST" and path == "/api/repos/create":
                    return "create", {}
                if method == "POST" and path == "/api/validate-yaml":
                    return "validate", {}
                match = REPO_PATH.match(path)
                if method == "POST" and match:
                    return match["op"], match.groupdict()
                match = INFO_PATH.match(path)
                if method == "GET" and match:
                    return "repo_info", match.groupdict()
                return "unknown", {}

            def _handle(self, method: str) -> None:
                endpoint, parts = self._route(method)
                raw = self._body()
                entry = Request(method, self.path, endpoint)
                entry.authorized = self.headers.get("Authorization") == f"Bearer {standin.token}"
                with standin._lock:
                    standin.requests.append(entry)
                if endpoint == "unknown":
                    self._error(entry, 404, "Not Found")
                    return
                fault = standin._take_fault(endpoint)
                if fault is not None:
                    self._error(entry, fault)
                    return
                if not entry.authorized:
                    self._error(entry, 401)
                    return
                if endpoint == "create":
                    body = json.loads(raw or b"{}")
                    entry.body = body
                    repo_id = f"{body.get('organization') or 'user'}/{body['name']}"
                    if repo_id in standin.repos:
                        self._send(
                            entry,
                            409,
                            {
                                "error": "You already created this model repo",
                                "url": f"{standin.url}/{repo_id}",
                            },
                            {"X-Error-Message": "You already created this model repo"},
                        )
                        return
                    standin.repos[repo_id] = StoredRepo(repo_id, body.get("visibility") == "private")
                    self._send(entry, 200, {"url": f"{standin.url}/{repo_id}", "name": repo_id})
                elif endpoint == "validate":
                    body = json.loads(raw or b"{}")
                    entry.body = {"repoType": body.get("repoType")}
                    errors = _front_matter_errors(str(body.get("content", "")))
                    self._send(entry, 400 if errors else 200, {"errors": errors, "warnings": []})
                elif endpoint == "repo_info":
                    repo = standin.repos.get(parts["repo"])
                    if repo is None:
                        self._send(
                            entry,
                            404,
                            {"error": "Repository not found"},
                            {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"},
                        )
                    else:
                        self._send(
                            entry, 200, {"id": repo.repo_id, "private": repo.private, "sha": _head(repo)}
                        )
                elif parts.get("repo") not in standin.repos:
                    self._send(
                        entry,
                        404,
                        {"error": "Repository not found"},
                        {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"},
                    )
                elif endpoint == "preupload":
                    body = json.loads(raw or b"{}")
                    entry.body = body
                    files = [
                        {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": None}
                        for f in body.get("files", [])
                    ]
                    self._send(entry, 200, {"files": files})
                else:  # commit
                    self._commit(entry, standin.repos[parts["repo"]], raw)

            def _commit(self, entry: Request, repo: StoredRepo, raw: bytes) -> None:
                lines = [json.loads(line) for line in raw.splitlines() if line.strip()]
                header = next((item["value"] for item in lines if item.get("key") == "header"), None)
                if header is None:
                    self._error(entry, 400, "missing commit header")
                    return
                files = {
                    item["value"]["path"]: base64.b64decode(item["value"]["content"])
                    for item in lines
                    if item.get("key") == "file"
                }
                entry.body = {"header": header, "files": sorted(files)}
                oid = hashlib.sha1(
                    json.dumps([header, sorted(files), _head(repo)]).encode()
                    + b"".join(files[p] for p in sorted(files))
                ).hexdigest()
                repo.files.update(files)
                repo.commits.append(
                    {
                        "oid": oid,
                        "summary": header.get("summary"),
                        "description": header.get("description"),
                        "files": sorted(files),
                    }
                )
                self._send(
                    entry,
                    200,
                    {
                        "success": True,
                        "commitOid": oid,
                        "commitUrl": f"{standin.url}/{repo.repo_id}/commit/{oid}",
                    },
                )

            def do_POST(self) -> None:  # noqa: N802
                self._handle("POST")

            def do_GET(self) -> None:  # noqa: N802
                self._handle("GET")

        return Handler


def _head(repo: StoredRepo) -> str:
    return repo.commits[-1]["oid"] if repo.commits else "0" * 40


def _front_matter_errors(content: str) -> list[dict[str, str]]:
    """What the Hub's validator would refuse at the simplest level.

    That is front matter that is not a YAML mapping.
    """
    match = re.match(r"^---\n(.*?)\n---\n", content, re.DOTALL)
    if match is None:
        return []
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        return [{"message": f"invalid YAML: {exc}"}]
    if data is not None and not isinstance(data, dict):
        return [{"message": "metadata must be a mapping"}]
    return []
