"""Stand-in for the Hub's dataset repositories, as ``datasets.load_dataset(repo, streaming=True)`` reads them.

Serves ``rajpurkar/squad_v2`` and ``microsoft/ms_marco`` built from the samples shipped in ``data/``, in the
Hub's row layout, as JSON Lines files plus a ``README.md`` whose dataset-card YAML ``configs:`` maps configs
and splits to those files (so no parquet range reads are needed).

Protocol as the Hub speaks it (what datasets 5.2.0 / huggingface_hub 2.4.0 use):
- ``HEAD|GET /datasets/{repo}/resolve/{revision}/{path}``: the file, with ``X-Repo-Commit``, ``ETag``,
  ``Content-Length``, ``Accept-Ranges: bytes`` (``Range: bytes=a-b`` answers 206); a missing file is 404
  with ``X-Error-Code: EntryNotFound``, a missing repo 404 with ``X-Error-Code: RepoNotFound``;
- ``GET /api/datasets/{repo}`` and ``/api/datasets/{repo}/revision/{revision}``: the repo info (``id``,
  ``sha``, ``siblings``...);
- ``GET /api/datasets/{repo}/tree/{revision}[/{path}]`` (``recursive``, ``expand``): the listing;
- ``POST /api/datasets/{repo}/paths-info/{revision}`` (form ``paths`` repeated, ``expand``): entries of paths.
The revision is ``main`` or the repo's commit sha; anything else is 404 ``RevisionNotFound``.

``server.log`` records ``"METHOD path?query"`` of every request; ``server.missing_repos`` makes repos answer
404 ``RepoNotFound`` everywhere (as an unknown or private repo does).
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.standins.base import LocalServer, QuietHandler

ROOT = Path(__file__).resolve().parents[2]
SQUAD_SAMPLE = ROOT / "data" / "squad_v2" / "dev-v2.0.sample.flat.jsonl"
MS_MARCO_SAMPLE = ROOT / "data" / "ms_marco" / "ms_marco_v1.1_train_sample200.json"
SQUAD_FIELDS = ("id", "title", "context", "question", "answers")
LAST_MODIFIED = "2026-01-01T00:00:00.000Z"


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


def squad_rows() -> list[dict[str, Any]]:
    """The SQuAD v2 sample in the Hub's layout (``id, title, context, question, answers``)."""
    with SQUAD_SAMPLE.open(encoding="utf-8") as fh:
        return [{k: row[k] for k in SQUAD_FIELDS} for row in map(json.loads, fh) if row]


def ms_marco_rows() -> list[dict[str, Any]]:
    """The MS MARCO v1.1 sample (already in the Hub's layout)."""
    return json.loads(MS_MARCO_SAMPLE.read_text(encoding="utf-8"))


def _card(configs: dict[str, dict[str, str]], default: str | None = None) -> bytes:
    lines = ["---", "configs:"]
    for name, splits in configs.items():
        lines.append(f"- config_name: {name}")
        if name == default:
            lines.append("  default: true")
        lines.append("  data_files:")
        for split, path in splits.items():
            lines += [f"  - split: {split}", f"    path: {path}"]
    lines += ["---", "", "Local stand-in of a Hub dataset repository (tests only).", ""]
    return "\n".join(lines).encode()


def default_repos() -> dict[str, dict[str, bytes]]:
    """``repo -> {path: content}`` for the two eval datasets."""
    squad = squad_rows()
    marco = ms_marco_rows()
    return {
        "rajpurkar/squad_v2": {
            "README.md": _card(
                {"squad_v2": {"train": "squad_v2/train.jsonl", "validation": "squad_v2/validation.jsonl"}}
            ),
            "squad_v2/train.jsonl": _jsonl(squad[-50:]),
            "squad_v2/validation.jsonl": _jsonl(squad),
        },
        "microsoft/ms_marco": {
            "README.md": _card(
                {
                    "v1.1": {"validation": "v1.1/validation.jsonl", "train": "v1.1/train.jsonl"},
                    "v2.1": {"validation": "v2.1/validation.jsonl"},
                }
            ),
            "v1.1/validation.jsonl": _jsonl(marco),
            "v1.1/train.jsonl": _jsonl(marco[::-1]),
            "v2.1/validation.jsonl": _jsonl(marco[100:]),
        },
    }


class HubDatasetsStandIn(LocalServer):
    """A threaded HTTP server on 127.0.0.1 serving dataset repos as the Hub's file and tree APIs would."""

    def __init__(self, repos: dict[str, dict[str, bytes]] | None = None) -> None:
        self.repos = repos if repos is not None else default_repos()
        self.shas = {repo: hashlib.sha1(repo.encode() + b"@standin").hexdigest() for repo in self.repos}
        self.missing_repos: set[str] = set()
        # (quota, window seconds): announce the Hub's RateLimit headers on every response (a fixed count)
        self.ratelimit: tuple[int, int] | None = None
        self.log: list[str] = []
        self._lock = threading.Lock()
        super().__init__(self._handler())

    def requests_for(self, repo: str) -> list[str]:
        """Logged requests that touched ``repo``."""
        return [line for line in self.log if f"/{repo}/" in line or line.split("?")[0].endswith(f"/{repo}")]

    def file_downloads(self, repo: str) -> list[str]:
        """Logged GETs of ``repo`` files through ``/resolve/``."""
        return [
            line
            for line in self.requests_for(repo)
            if line.startswith("GET /datasets/") and "/resolve/" in line
        ]

    def _entry(self, repo: str, path: str) -> dict[str, Any] | None:
        files = self.repos[repo]
        if path in files:
            body = files[path]
            return {
                "type": "file",
                "oid": hashlib.sha1(body).hexdigest(),
                "size": len(body),
                "path": path,
                "lastCommit": None,
                "securityFileStatus": None,
            }
        prefix = path.rstrip("/") + "/"
        if path and any(p.startswith(prefix) for p in files):
            return {
                "type": "directory",
                "oid": hashlib.sha1(prefix.encode()).hexdigest(),
                "size": 0,
                "path": path,
            }
        return None

    def _tree(self, repo: str, path: str, recursive: bool) -> list[dict[str, Any]]:
        prefix = path.strip("/") + "/" if path.strip("/") else ""
        names: set[str] = set()
        for file in self.repos[repo]:
            if not file.startswith(prefix):
                continue
            parts = file[len(prefix) :].split("/")
            if recursive:
                names.update(prefix + "/".join(parts[:i]) for i in range(1, len(parts) + 1))
            else:
                names.add(prefix + parts[0])
        entries = [self._entry(repo, name) for name in sorted(names)]
        return [e for e in entries if e]

    def _info(self, repo: str) -> dict[str, Any]:
        sha = self.shas[repo]
        return {
            "_id": sha[:24],
            "id": repo,
            "author": repo.split("/")[0],
            "sha": sha,
            "private": False,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "lastModified": LAST_MODIFIED,
            "createdAt": LAST_MODIFIED,
            "cardData": {},
            "siblings": [{"rfilename": name} for name in sorted(self.repos[repo])],
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(QuietHandler):
            def end_headers(self) -> None:
                if server.ratelimit is not None:
                    quota, window = server.ratelimit
                    resource = "resolvers" if "/resolve/" in self.path else "api"
                    self.send_header("RateLimit", f'"{resource}";r={quota - 1};t={window}')
                    self.send_header("RateLimit-Policy", f'"fixed window";"{resource}";q={quota};w={window}')
                super().end_headers()

            def _error(self, status: int, code: str, message: str, head: bool = False) -> None:
                body = b"" if head else json.dumps({"error": message}).encode()
                headers = {"X-Error-Code": code, "X-Error-Message": message}
                if head:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                    self.send_header("Content-Length", "0")
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                else:
                    self.send_bytes(status, body, headers)

            def _repo_and_rest(self, path: str, prefix: str) -> tuple[str | None, str]:
                rest = path[len(prefix) :]
                for repo in server.repos:
                    if rest == repo or rest.startswith(repo + "/"):
                        return repo, rest[len(repo) :].lstrip("/")
                return None, rest

            def _revision_ok(self, repo: str, revision: str) -> bool:
                return unquote(revision) in ("main", server.shas[repo])

            def _serve(self, method: str) -> None:
                url = urlsplit(self.path)
                path = unquote(url.path)
                query = parse_qs(url.query)
                with server._lock:
                    server.log.append(f"{method} {self.path}")
                form: dict[str, list[str]] = {}
                if method == "POST":
                    form = parse_qs(self.read_body().decode())
                head = method == "HEAD"
                if path.startswith("/datasets/"):
                    return self._resolve(path, head)
                if path.startswith("/api/datasets/"):
                    return self._api(path, query, form, method)
                return self._error(404, "NotFound", "not served by the stand-in", head)

            def _known(self, repo: str | None, head: bool = False) -> bool:
                if repo is None or repo in server.missing_repos:
                    self._error(404, "RepoNotFound", "Repository not found", head)
                    return False
                return True

            def _resolve(self, path: str, head: bool) -> None:
                repo, rest = self._repo_and_rest(path, "/datasets/")
                if not self._known(repo, head):
                    return
                assert repo is not None
                if not rest.startswith("resolve/"):
                    return self._error(404, "NotFound", "not served by the stand-in", head)
                revision, _, file = rest[len("resolve/") :].partition("/")
                if not self._revision_ok(repo, revision):
                    return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", head)
                body = server.repos[repo].get(file)
                if body is None:
                    return self._error(404, "EntryNotFound", f'{file} does not exist on "{revision}"', head)
                headers = {
                    "X-Repo-Commit": server.shas[repo],
                    "ETag": '"' + hashlib.sha1(body).hexdigest() + '"',
                    "Accept-Ranges": "bytes",
                }
                status = 200
                wanted = self.headers.get("Range", "")
                if wanted.startswith("bytes=") and body:
                    start_s, _, end_s = wanted[len("bytes=") :].partition("-")
                    start = int(start_s) if start_s else max(len(body) - int(end_s), 0)
                    end = min(int(end_s), len(body) - 1) if start_s and end_s else len(body) - 1
                    if start >= len(body):
                        return self.send_bytes(416, b"", {"Content-Range": f"bytes */{len(body)}"})
                    headers["Content-Range"] = f"bytes {start}-{end}/{len(body)}"
                    body, status = body[start : end + 1], 206
                if head:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Content-Length", str(len(body)))
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    return None
                return self.send_bytes(status, body, headers, content_type="application/octet-stream")

            def _api(
                self, path: str, query: dict[str, list[str]], form: dict[str, list[str]], method: str
            ) -> None:
                repo, rest = self._repo_and_rest(path, "/api/datasets/")
                if not self._known(repo, method == "HEAD"):
                    return
                assert repo is not None
                kind, _, tail = rest.partition("/")
                if kind == "" or kind == "revision":
                    if kind == "revision" and not self._revision_ok(repo, tail):
                        return self._error(404, "RevisionNotFound", f"Invalid rev id: {tail}")
                    return self.send_bytes(200, json.dumps(server._info(repo)).encode())
                if kind == "tree" and method == "GET":
                    revision, _, sub = tail.partition("/")
                    if not self._revision_ok(repo, revision):
                        return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
                    if sub and server._entry(repo, sub) is None:
                        return self._error(404, "EntryNotFound", f'{sub} does not exist on "{revision}"')
                    recursive = (query.get("recursive") or ["false"])[0].lower() in ("1", "true")
                    return self.send_bytes(200, json.dumps(server._tree(repo, sub, recursive)).encode())
                if kind == "paths-info" and method == "POST":
                    if not self._revision_ok(repo, tail):
                        return self._error(404, "RevisionNotFound", f"Invalid rev id: {tail}")
                    entries = [server._entry(repo, p.strip("/")) for p in form.get("paths", [])]
                    return self.send_bytes(200, json.dumps([e for e in entries if e]).encode())
                return self._error(404, "NotFound", "not served by the stand-in")

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self._serve("GET")

            def do_HEAD(self) -> None:  # noqa: N802
                self._serve("HEAD")

            def do_POST(self) -> None:  # noqa: N802
                self._serve("POST")

        return Handler
