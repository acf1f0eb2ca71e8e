"""Sync faults in pagination: cycles, foreign origins, odd links and redirects (issue 10 items 1-2).

A pass never requests a URL twice, follows a next link only on the endpoint's origin (scheme, host, port)
and listing path, never sends the token anywhere else, and a link it refuses is an error of the pass: the
pass is ``partial``, flags no candidate as unlisted, and the rest of the listing is still fetched.
"""

from __future__ import annotations

import pytest

from hfops.discovery import hub as hub_source
from tests.faults.sync_standin import (
    TOKEN,
    OtherOrigin,
    hub_records,
    link_of,
    listed_ids,
    on_page,
    requested_urls,
    settings_for,
    stored_ids,
    sync_with_token,
    unlisted_flags,
    with_link,
)
from tests.standins.hub import HubStandIn, Reply


@pytest.fixture
def hub():
    with HubStandIn(hub_records()) as server:
        yield server


@pytest.fixture
def other():
    with OtherOrigin() as server:
        yield server


def complete_then(
    hub: HubStandIn, db_path: str, monkeypatch: pytest.MonkeyPatch, rewrite, between=None
) -> object:
    """A clean full pass (stores everything), then the same pass with ``rewrite`` injected (and ``between``
    called before it: e.g. a tighter listing bound, which the clean pass must not meet)."""
    settings = settings_for(hub)
    first = sync_with_token(db_path, settings, monkeypatch)
    assert first.status == "succeeded" and not unlisted_flags(db_path)
    if between is not None:
        between()
    hub.log.clear()
    hub.auth_log.clear()
    hub.pages_served = 0
    hub.rewrite = rewrite
    return sync_with_token(db_path, settings, monkeypatch)


def assert_partial_without_flags(run, db_path: str, words: str) -> None:
    assert run.status == "partial" and run.lost_pages >= 1, (run.status, run.message)
    assert any(words in e for e in run.errors), run.errors
    assert "partial" in (run.message or "") and "no candidate was flagged" in (run.message or "")
    assert not unlisted_flags(db_path)  # an incomplete pass never flags unlisted candidates


def test_link_back_to_the_same_page_ends_the_query_without_a_second_request(
    hub: HubStandIn, db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def loop(number: int, reply: Reply) -> Reply:  # page 2 says its next page is page 2
        return with_link(reply, f"{hub.url}{reply.path}")

    run = complete_then(hub, db_path, monkeypatch, on_page(2, loop))
    urls = requested_urls(hub)
    assert len(urls) == len(set(urls))  # never the same URL twice
    assert_partial_without_flags(run, db_path, "a cycle")
    assert any("license%3Amit" in u for u in urls)  # the next query still ran


@pytest.mark.parametrize("back_to", [1, 2])
def test_longer_cycles_and_respelled_urls_are_cycles_too(
    hub: HubStandIn, db_path: str, monkeypatch: pytest.MonkeyPatch, back_to: int
) -> None:
    seen: dict[int, str] = {}

    def cycle(number: int, reply: Reply) -> Reply:
        seen[number] = reply.path
        if number == 3:  # page 3 links back to page 1 or 2, its query pairs in another order
            path, _, query = seen[back_to].partition("?")
            reply = with_link(reply, f"{hub.url}{path}?{'&'.join(reversed(query.split('&')))}")
        return reply

    run = complete_then(hub, db_path, monkeypatch, cycle)
    urls = requested_urls(hub)
    assert len(urls) == len(set(urls))
    assert_partial_without_flags(run, db_path, "a cycle")


def test_a_new_url_that_serves_the_same_records_is_no_progress(
    hub: HubStandIn, db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def same_again(number: int, reply: Reply) -> Reply:  # page 2's next link: page 2 with a junk parameter
        return with_link(reply, f"{hub.url}{reply.path}&nonce={number}") if number >= 2 else reply

    run = complete_then(hub, db_path, monkeypatch, same_again)
    assert_partial_without_flags(run, db_path, "no new records")
    assert len(hub.model_requests()) < 10


def test_the_page_cap_bounds_a_listing_that_never_ends(
    hub: HubStandIn, db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A query stopped at its page cap has not seen the whole listing: the pass is ``partial``
    (docs/discovery.md, "Lost pages make a pass partial") and flags nothing as unlisted, however many models
    it did not list."""
    template = hub.records[0]

    def endless(number: int, reply: Reply) -> Reply:  # fresh ids on every page, always a next link
        import json

        records = [
            {**template, "id": f"endless/m-{number}-{i}", "tags": ["license:apache-2.0"]} for i in range(50)
        ]
        reply.body = json.dumps(records).encode()
        return with_link(reply, f"{hub.url}/api/models?pipeline_tag=text-generation&page={number}")

    def cap_at_5_pages() -> None:  # with 50 per page: at most ceil(200 / 50) + 1 = 5 pages a query
        monkeypatch.setattr(hub_source, "HUB_LISTING_BOUND", 200)

    run = complete_then(hub, db_path, monkeypatch, endless, between=cap_at_5_pages)
    assert_partial_without_flags(run, db_path, "cap of 5 pages")
    assert len(hub.model_requests()) <= 2 * 5  # two queries, each stopped at its cap
    assert run.lost_pages == 2  # one per query


def test_a_pass_stopped_by_max_models_is_partial_and_flags_nothing(
    hub: HubStandIn, db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``[hub] max_models`` ends the pass before the listing does.

    What it did not list is not "not listed".
    """
    first = sync_with_token(db_path, settings_for(hub), monkeypatch)
    assert first.status == "succeeded"
    hub.log.clear()
    run = sync_with_token(db_path, settings_for(hub, max_models=60), monkeypatch)
    assert_partial_without_flags(run, db_path, "max_models = 60")
    assert run.seen == 100  # two pages of 50 of the apache-2.0 query (1,919 listed), then the pass stopped
    assert not any("license%3Amit" in u for u in requested_urls(hub))


@pytest.mark.parametrize(
    "foreign",
    [
        "other_port",  # another port on the same host
        "other_host",  # localhost is not 127.0.0.1
        "https",  # scheme change on the same host and port
        "scheme_relative",  # //host:port/... resolves to another origin
        "userinfo_trick",  # http://127.0.0.1:PORT@other/ names the other host
        "credentials",  # the endpoint's own origin, with user:password
        "other_path",  # the endpoint's origin, outside the listing
    ],
)
def test_a_next_link_off_the_listing_is_refused_and_the_token_stays_home(
    hub: HubStandIn, other: OtherOrigin, db_path: str, monkeypatch: pytest.MonkeyPatch, foreign: str
) -> None:
    port = hub.url.rsplit(":", 1)[1]
    other_hostport = other.url.removeprefix("http://")

    def elsewhere(number: int, reply: Reply) -> Reply:
        own = link_of(reply) or f"{hub.url}/api/models?cursor=x"
        path = own.removeprefix(hub.url)
        target = {
            "other_port": f"{other.url}{path}",
            "other_host": f"http://localhost:{port}{path}",
            "https": f"https://127.0.0.1:{port}{path}",
            "scheme_relative": f"//{other_hostport}{path}",
            "userinfo_trick": f"http://127.0.0.1:{port}@{other_hostport}{path}",
            "credentials": f"http://user:{TOKEN}@127.0.0.1:{port}{path}",
            "other_path": f"{hub.url}/api/whoami-v2",
        }[foreign]
        return with_link(reply, target)

    run = complete_then(hub, db_path, monkeypatch, on_page(1, elsewhere))
    assert_partial_without_flags(run, db_path, "not followed")
    assert other.requests == []  # nothing ever reached the other origin
    assert all(path.startswith("/api/models") for path in hub.log)
    assert set(hub.auth_log) == {f"Bearer {TOKEN}"}  # the token went to the endpoint only, on every request
    assert TOKEN not in " ".join(run.errors) + (run.message or "")
    assert listed_ids(hub.records, "mit") <= stored_ids(db_path)  # the other query still ran


def test_a_relative_next_link_is_resolved_on_the_endpoint(
    hub: HubStandIn, db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def relative(number: int, reply: Reply) -> Reply:
        own = link_of(reply)
        return with_link(reply, own.removeprefix(hub.url)) if own else reply

    hub.rewrite = relative
    run = sync_with_token(db_path, settings_for(hub), monkeypatch)
    assert run.status == "succeeded" and run.lost_pages == 0
    assert stored_ids(db_path) == listed_ids(hub.records)


@pytest.mark.parametrize("where", ["other", "same"])
def test_a_redirect_is_never_followed(
    hub: HubStandIn, other: OtherOrigin, db_path: str, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    def redirect(number: int, reply: Reply) -> Reply:
        target = f"{other.url}{reply.path}" if where == "other" else f"{hub.url}{reply.path}&again=1"
        return Reply(302, b"", {"Location": target}, reply.path)

    run = complete_then(hub, db_path, monkeypatch, on_page(2, redirect))
    assert_partial_without_flags(run, db_path, "redirect (HTTP 302)")
    assert other.requests == []
    assert not any("again=1" in p for p in hub.log)
