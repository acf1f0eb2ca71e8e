"""Sync faults in page bodies: truncated JSON, an object, HTML with 200, empty, gzip garbage, too big,
too deep, NaN numbers (issue 10 item 4).

An unreadable page is an error of the pass: the run is ``partial``, says what was lost, flags no candidate
as unlisted (even those on the lost page), and the next sync (a full pass again) fetches it.
"""

from __future__ import annotations

import json

import pytest

from hfops.discovery import hub as hub_source
from tests.faults.sync_standin import (
    hub_records,
    listed_ids,
    on_page,
    settings_for,
    stored_ids,
    sync_with_token,
    unlisted_flags,
)
from tests.standins.hub import HubStandIn, Reply

UNREADABLE = {
    "truncated": (lambda body: body[: len(body) // 2], "application/json", "not JSON"),
    "object": (
        lambda body: json.dumps({"models": json.loads(body)}).encode(),
        "application/json",
        "JSON but an object",
    ),
    "html": (lambda body: b"<!doctype html><html><body>Service busy</body></html>", "text/html", "HTML"),
    "empty": (lambda body: b"", "application/json", "empty"),
    "deep": (lambda body: b"[" * 100_000 + b"]" * 100_000, "application/json", "not JSON"),
}


@pytest.fixture
def hub():
    with HubStandIn(hub_records()) as server:
        yield server


def break_page(number: int, kind: str):
    change, content_type, _ = UNREADABLE[kind]

    def rewrite(served: int, reply: Reply) -> Reply:
        reply.body = change(reply.body)
        reply.content_type = content_type
        return reply

    return on_page(number, rewrite)


@pytest.mark.parametrize("kind", sorted(UNREADABLE))
def test_an_unreadable_page_makes_the_pass_partial_and_the_next_pass_fetches_it(
    hub: HubStandIn, db_path: str, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    settings = settings_for(hub)
    assert sync_with_token(db_path, settings, monkeypatch).status == "succeeded"
    on_page_2 = {r["id"] for r in json.loads(_page_body(hub, settings, 2))}
    for r in hub.records:  # the models of page 2 are no longer listed where the clean pass saw them...
        if r["id"] in on_page_2:
            r["likes"] = (r.get("likes") or 0) + 1
    hub._sorted_cache.clear()
    hub.pages_served = 0
    hub.rewrite = break_page(2, kind)  # ...and page 2 is unreadable
    run = sync_with_token(db_path, settings, monkeypatch, mode="full")
    assert run.status == "partial" and run.lost_pages == 1
    what = UNREADABLE[kind][2]
    assert any(
        f"page 2 of query text-generation x apache-2.0 was lost: its body is {what}" in e for e in run.errors
    ), run.errors
    assert "1 page(s) lost" in (run.message or "")
    assert not unlisted_flags(db_path)
    hub.rewrite = None
    again = sync_with_token(db_path, settings, monkeypatch, mode="auto")
    assert again.mode == "full"  # a partial full pass is not a base for incremental ones
    assert again.status == "succeeded" and again.lost_pages == 0
    assert again.updated == len(on_page_2)  # the lost page's records arrived now
    assert stored_ids(db_path) == listed_ids(hub.records)


def _page_body(hub: HubStandIn, settings, number: int) -> bytes:
    """The body the stand-in serves as the ``number``-th page of the first query."""
    import httpx

    url = (
        f"{hub.url}/api/models?filter=license%3Aapache-2.0&pipeline_tag=text-generation"
        "&sort=downloads&limit=50"
    )
    for _ in range(number - 1):
        link = httpx.get(url).headers["link"]
        url = link.split(">")[0].lstrip("<")
    body = httpx.get(url).content
    hub.pages_served = 0
    return body


def test_garbage_under_content_encoding_gzip_is_a_lost_page(
    hub: HubStandIn, db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def gzip_garbage(served: int, reply: Reply) -> Reply:
        reply.body = b"\x1f\x8b\x08\x00not really gzip at all"
        reply.headers["Content-Encoding"] = "gzip"
        return reply

    hub.rewrite = on_page(1, gzip_garbage)
    run = sync_with_token(db_path, settings_for(hub), monkeypatch)
    assert run.status == "partial" and "could not be decoded" in " ".join(run.errors)
    assert listed_ids(hub.records, "mit") <= stored_ids(db_path)


def test_a_page_over_the_size_limit_is_a_lost_page(
    hub: HubStandIn, db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub_source, "MAX_PAGE_BYTES", 4096)  # real pages of 50 full records are larger
    run = sync_with_token(db_path, settings_for(hub), monkeypatch)
    assert run.status == "partial" and "MiB" in " ".join(run.errors)
    assert not stored_ids(db_path) - listed_ids(hub.records)


def test_nan_and_infinity_in_a_page_cost_only_their_records(
    hub: HubStandIn, db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def non_standard(served: int, reply: Reply) -> Reply:
        records = json.loads(reply.body)
        records[0]["likes"], records[1]["downloads"], records[2]["trendingScore"] = (
            "NaN",
            "Infinity",
            "-Infinity",
        )
        text = json.dumps(records)
        for word in ("NaN", "Infinity", "-Infinity"):
            text = text.replace(f'"{word}"', word)
        reply.body = text.encode()
        return reply

    hub.rewrite = on_page(1, non_standard)
    run = sync_with_token(db_path, settings_for(hub), monkeypatch)
    assert run.status == "succeeded" and run.lost_pages == 0
    assert run.skipped == 3 and set(run.skip_reasons) <= {"wrong type", "wrong value"}
    assert len(stored_ids(db_path)) == len(listed_ids(hub.records)) - 3


def test_a_list_of_non_objects_is_read_and_each_item_skipped(
    hub: HubStandIn, db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.rewrite = on_page(
        1, lambda served, reply: Reply(200, b'[1, "two", null, [3]]', reply.headers, reply.path)
    )
    run = sync_with_token(db_path, settings_for(hub), monkeypatch)
    assert run.skipped == 4 and run.skip_reasons == {"wrong type": 4}
