"""Stand-ins and helpers for the sync fault tests (tests/faults/test_sync_*.py).

The Hub stand-in (tests/standins/hub.py) serves real API records from data/hub; ``server.rewrite`` changes
one answer (a Link header, a body, a status) to inject a fault. :class:`OtherOrigin` is a second server on
another port that records every request it gets (with its Authorization header): a pass must never reach it.
Syncs run through :func:`hfops.discovery.sync_hub` with ``HUGGINGFACE_API_KEY`` set, i.e. through the real
huggingface_hub session the sync uses.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from hfops.config import DiscoveryConfig, HubConfig, Settings
from hfops.discovery import SyncRun, sync_hub
from hfops.paths import HUB_SNAPSHOT
from hfops.store import connect
from tests.standins.base import LocalServer, QuietHandler
from tests.standins.hub import HubStandIn, Reply, load_records

TOKEN = "hf_" + "Zq9" * 12  # token-shaped, so that scrubbing must catch it by value and by shape
ALL_RECORDS = load_records(str(HUB_SNAPSHOT))
RULE = DiscoveryConfig(
    pipeline_tags=["text-generation"], licenses=["apache-2.0", "mit"], min_likes=0, min_downloads=0,
    require_safetensors=False,
)  # fmt: skip
Rewrite = Callable[[int, Reply], Reply]


def hub_records() -> list[dict]:
    """Real records listed by the two test queries (text-generation x apache-2.0, then x mit)."""
    return [copy.deepcopy(r) for r in ALL_RECORDS if r.get("pipeline_tag") == "text-generation"]


def listed_ids(records: list[dict], licence: str | None = None) -> set[str]:
    """Ids the test queries list (one licence, or both)."""
    wanted = {f"license:{licence}"} if licence else {"license:apache-2.0", "license:mit"}
    return {r["id"] for r in records if wanted & set(r.get("tags") or [])}


def settings_for(hub: HubStandIn, **hub_fields: object) -> Settings:
    settings = Settings()
    settings.hub = HubConfig(
        endpoint=hub.url, page_size=50, deadline_seconds=3, max_backoff_seconds=0.1,
        request_timeout_seconds=5, **hub_fields,  # type: ignore[arg-type]
    )  # fmt: skip
    settings.discovery = copy.deepcopy(RULE)
    return settings


def sync_with_token(
    db_path: str, settings: Settings, monkeypatch: pytest.MonkeyPatch, mode: str = "full"
) -> SyncRun:
    """A Hub sync as the CLI runs it, with an API key in the environment."""
    monkeypatch.setenv("HUGGINGFACE_API_KEY", TOKEN)
    return sync_hub(db_path, settings, mode=mode)


def stored_ids(db_path: str) -> set[str]:
    return {r[0] for r in connect(db_path).execute("SELECT model_id FROM models")}


def unlisted_flags(db_path: str) -> set[str]:
    db = connect(db_path)
    return {r[0] for r in db.execute("SELECT model_id FROM candidates WHERE flag LIKE 'not listed%'")}


def run_row(db_path: str, run_id: int) -> dict:
    """The stored row of a run (to check that nothing secret was stored)."""
    return next(iter(connect(db_path).query("SELECT * FROM sync_runs WHERE id = ?", [run_id])))


def on_page(number: int, change: Rewrite) -> Rewrite:
    """A rewrite applied to the ``number``-th /api/models answer only."""

    def rewrite(served: int, reply: Reply) -> Reply:
        return change(served, reply) if served == number else reply

    return rewrite


def with_link(reply: Reply, link: str) -> Reply:
    reply.headers["Link"] = f'<{link}>; rel="next"'
    return reply


def link_of(reply: Reply) -> str | None:
    """The URL in the reply's Link header (the stand-in's own next page), or None on the last page."""
    value = reply.headers.get("Link")
    return value.split(">")[0].lstrip("<") if value else None


def requested_urls(hub: HubStandIn) -> list[str]:
    """Every /api/models request, query pairs sorted (to compare pages spelled differently)."""
    out = []
    for path in hub.model_requests():
        parts = urlsplit(path)
        out.append(f"{parts.path}?{urlencode(sorted(parse_qsl(parts.query, keep_blank_values=True)))}")
    return out


class OtherOrigin(LocalServer):
    """A server on another origin.

    Answers ``[]`` to anything and records each path and Authorization header.
    """

    def __init__(self) -> None:
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802
                server.requests.append((self.path, self.headers.get("Authorization")))
                self.send_bytes(200, json.dumps([]).encode())

        handler: type[BaseHTTPRequestHandler] = Handler
        super().__init__(handler)


def no_secret_in(*texts: object) -> bool:
    """True when none of ``texts`` holds the token (by value or by its ``hf_`` shape)."""
    joined = "\n".join(str(t) for t in texts)
    return TOKEN not in joined and "hf_Zq9" not in joined
