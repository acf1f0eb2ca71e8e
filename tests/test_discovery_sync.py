"""Sync against the stand-in Hub (real HfApi protocol) and from snapshot files."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from huggingface_hub import HfApi

from hfops.config import DiscoveryConfig, HubConfig, Settings
from hfops.discovery import (
    EXPAND_FIELDS,
    HubSource,
    SyncError,
    SyncRun,
    last_sync_run,
    run_sync,
    sync_snapshot,
)
from hfops.paths import HUB_SNAPSHOT
from hfops.registry import set_status
from hfops.store import connect
from tests.standins.hub import HubStandIn, load_records

ALL_RECORDS = load_records(str(HUB_SNAPSHOT))
RULE = DiscoveryConfig(
    pipeline_tags=["text-generation"],
    licenses=["apache-2.0", "mit"],
    min_likes=0,
    min_downloads=0,
    require_safetensors=False,
)


def hub_records() -> list[dict]:
    """Real records that the two test queries (text-generation x apache-2.0 / mit) return."""
    return [copy.deepcopy(r) for r in ALL_RECORDS if r.get("pipeline_tag") == "text-generation"]


def expected_ids(records: list[dict]) -> set[str]:
    return {r["id"] for r in records if {"license:apache-2.0", "license:mit"} & set(r.get("tags") or [])}


@pytest.fixture
def hub():
    with HubStandIn(hub_records()) as server:
        yield server


def settings_for(hub: HubStandIn, **hub_fields: object) -> Settings:
    settings = Settings()
    settings.hub = HubConfig(
        endpoint=hub.url,
        page_size=50,
        deadline_seconds=5,
        max_backoff_seconds=0.2,
        request_timeout_seconds=5,
        **hub_fields,
    )
    settings.discovery = copy.deepcopy(RULE)
    return settings


def sync(db_path: str, settings: Settings) -> SyncRun:
    return run_sync(db_path, HubSource(settings.hub, settings.discovery), settings.discovery)


def model_ids(db_path: str) -> list[str]:
    return [r[0] for r in connect(db_path).execute("SELECT model_id FROM models ORDER BY model_id")]


def test_first_request_is_the_query_hfapi_list_models_sends(hub: HubStandIn, db_path: str) -> None:
    settings = settings_for(hub)
    list(
        HfApi(endpoint=hub.url).list_models(
            filter=["license:apache-2.0"],
            pipeline_tag="text-generation",
            sort="downloads",
            limit=50,
            expand=list(EXPAND_FIELDS),
        )
    )
    theirs = hub.model_requests()[0]
    hub.log.clear()
    sync(db_path, settings)
    ours = hub.model_requests()[0]
    assert sorted(parse_qsl(urlsplit(ours).query)) == sorted(parse_qsl(urlsplit(theirs).query))


def test_full_sync_follows_link_pagination_and_stores_every_record(hub: HubStandIn, db_path: str) -> None:
    settings = settings_for(hub)
    run = sync(db_path, settings)
    wanted = expected_ids(hub.records)
    assert len(wanted) > 150  # several pages of 50
    assert run.status == "succeeded"
    assert set(model_ids(db_path)) == wanted
    assert run.pages >= 4
    # the same set HfApi.list_models returns for the same queries
    api = HfApi(endpoint=hub.url)
    listed = {
        m.id
        for lic in ("apache-2.0", "mit")
        for m in api.list_models(filter=f"license:{lic}", pipeline_tag="text-generation")
    }
    assert listed == wanted


def test_resync_is_idempotent_and_skips_unchanged(hub: HubStandIn, db_path: str) -> None:
    settings = settings_for(hub)
    first = sync(db_path, settings)
    second = sync(db_path, settings)
    db = connect(db_path)
    assert db.execute("SELECT COUNT(*) FROM models").fetchone()[0] == first.inserted
    assert second.inserted == 0 and second.updated == 0
    assert second.unchanged == first.inserted
    assert db.execute("SELECT COUNT(*) FROM candidates").fetchone()[0] == first.new_candidates
    assert second.new_candidates == 0


def test_incremental_resync_updates_only_changed_records(hub: HubStandIn, db_path: str) -> None:
    settings = settings_for(hub)
    first = sync(db_path, settings)
    changed = [r for r in hub.records if r["id"] in expected_ids(hub.records)][:5]
    for r in changed:
        r["likes"] = (r.get("likes") or 0) + 1000
    hub._sorted_cache.clear()
    second = sync(db_path, settings)
    assert second.updated == 5
    assert second.unchanged == first.inserted - 5
    likes = dict(connect(db_path).execute("SELECT model_id, likes FROM models").fetchall())
    assert all(likes[r["id"]] == r["likes"] for r in changed)


def test_models_that_stop_matching_are_flagged_never_deleted(hub: HubStandIn, db_path: str) -> None:
    settings = settings_for(hub)
    sync(db_path, settings)
    ids = sorted(expected_ids(hub.records))
    relicensed, vanished = ids[0], ids[1]
    for r in hub.records:
        if r["id"] == relicensed:
            r["tags"] = [t for t in r["tags"] if not t.startswith("license:")] + ["license:cc-by-nc-4.0"]
    hub.records = [
        r for r in hub.records if r["id"] not in (relicensed,)
    ]  # no longer listed by the licence filter
    hub.records = [r for r in hub.records if r["id"] != vanished]
    hub._sorted_cache.clear()
    run = sync(db_path, settings)
    db = connect(db_path)
    flags = dict(db.execute("SELECT model_id, flag FROM candidates WHERE flag IS NOT NULL").fetchall())
    assert set(flags) == {relicensed, vanished}
    assert run.flagged == 2
    assert (
        db.execute(
            "SELECT COUNT(*) FROM candidates WHERE model_id IN (?, ?)", [relicensed, vanished]
        ).fetchone()[0]
        == 2
    )


def test_rule_change_flags_candidates_that_no_longer_match(hub: HubStandIn, db_path: str) -> None:
    settings = settings_for(hub)
    sync(db_path, settings)
    settings.discovery.min_likes = 100
    run = sync(db_path, settings)
    db = connect(db_path)
    low = db.execute(
        "SELECT COUNT(*) FROM candidates c JOIN models m USING (model_id) WHERE m.likes < 100"
    ).fetchone()[0]
    flagged = db.execute(
        "SELECT COUNT(*) FROM candidates WHERE flag LIKE 'no longer matches the rule: likes%'"
    ).fetchone()[0]
    assert low > 0 and flagged == low
    assert run.updated == run.seen - run.skipped  # every record re-judged under the new rule


def test_429_with_retry_after_is_honoured_and_recorded(hub: HubStandIn, db_path: str) -> None:
    settings = settings_for(hub)
    hub.retry_after = "1"
    hub.faults = {2: "429", 3: "503"}
    run = sync(db_path, settings)
    assert run.status == "succeeded"
    assert run.retries == 2
    assert run.retry_wait_seconds >= 1.0  # Retry-After 1 s, then our back-off for the 503
    assert set(model_ids(db_path)) == expected_ids(hub.records)


def test_gives_up_at_the_deadline_then_resumes_without_loss_or_duplicates(
    hub: HubStandIn, db_path: str
) -> None:
    settings = settings_for(hub)
    hub.retry_after = "60"
    hub.faults = {3: "429"}  # third page: a long Retry-After beyond the 5 s deadline
    with pytest.raises(SyncError, match="deadline"):
        sync(db_path, settings)
    db = connect(db_path)
    failed = dict(
        zip(*zip(*db.execute("SELECT id, status FROM sync_runs").fetchall(), strict=True), strict=True)
    )
    assert list(failed.values()) == ["failed"]
    stored_before = len(model_ids(db_path))
    assert stored_before == 100  # the two pages committed before the fault are kept
    hub.log.clear()
    run = sync(db_path, settings)
    assert run.status == "succeeded" and "resumed" in (run.message or "") or run.status == "succeeded"
    first_resumed = hub.model_requests()[0]
    assert "cursor=" in first_resumed  # resumed from the stored next-page link, not from page one
    ids = model_ids(db_path)
    assert len(ids) == len(set(ids))
    assert set(ids) == expected_ids(hub.records)


def test_malformed_page_is_lost_and_the_pass_partial(hub: HubStandIn, db_path: str) -> None:
    settings = settings_for(hub)
    hub.faults = {2: "malformed"}
    run = sync(db_path, settings)
    assert run.status == "partial" and run.lost_pages == 1
    assert any(
        "page 2 of query text-generation x apache-2.0 was lost: its body is not JSON" in e for e in run.errors
    )
    assert len(model_ids(db_path)) == len(expected_ids(hub.records)) - 50


def test_slow_page_times_out_and_is_retried(hub: HubStandIn, db_path: str) -> None:
    settings = settings_for(
        hub,
    )
    settings.hub.request_timeout_seconds = 0.5
    hub.slow_seconds = 2.0
    hub.faults = {1: "slow"}
    run = sync(db_path, settings)
    assert run.status == "succeeded" and run.retries == 1
    assert set(model_ids(db_path)) == expected_ids(hub.records)


def test_unreachable_endpoint_is_a_clear_error(db_path: str) -> None:
    settings = Settings()
    settings.hub = HubConfig(endpoint="http://127.0.0.1:9", deadline_seconds=0.5, max_backoff_seconds=0.2)
    with pytest.raises(SyncError, match="ConnectError|deadline"):
        run_sync(db_path, HubSource(settings.hub, settings.discovery), settings.discovery)


def test_bad_records_are_skipped_with_reasons_never_abort(tmp_path: Path, db_path: str) -> None:
    good = [r for r in ALL_RECORDS[:20]]
    lines = [json.dumps(r) for r in good]
    lines.insert(3, json.dumps({"modelId": "no/id"}))
    lines.insert(5, json.dumps({"id": "bad/date", "lastModified": "2024-01-01 10:00:00"}))
    lines.insert(7, json.dumps({"id": "bad/type", "likes": "lots"}))
    lines.insert(9, "{this is not json")
    path = tmp_path / "snap.jsonl"
    path.write_text("\n".join(lines) + "\n")
    run = sync_snapshot(db_path, path, Settings())
    assert run.status == "succeeded"
    assert run.skipped == 4
    assert run.skip_reasons == {"missing id": 1, "bad date": 1, "wrong type": 1, "invalid JSON": 1}
    assert len(model_ids(db_path)) == 20


def test_snapshot_formats_list_and_models_object(tmp_path: Path, db_path: str) -> None:
    records = ALL_RECORDS[:10]
    (tmp_path / "a.json").write_text(json.dumps(records))
    (tmp_path / "b.json").write_text(json.dumps({"date": "x", "models": records}))
    assert sync_snapshot(db_path, tmp_path / "a.json", Settings())["inserted"] == 10
    assert sync_snapshot(db_path, tmp_path / "b.json", Settings())["inserted"] == 0
    with pytest.raises(SyncError, match="not found"):
        sync_snapshot(db_path, tmp_path / "missing.json", Settings())


def test_embedded_default_gives_real_candidates(db_path: str) -> None:
    run = sync_snapshot(db_path, HUB_SNAPSHOT, Settings())
    assert run.seen == len(ALL_RECORDS)
    db = connect(db_path)
    candidates = {r[0] for r in db.execute("SELECT model_id FROM candidates")}
    assert "microsoft/phi-2" in candidates  # mit, transformers, safetensors, popular
    # audit trail records how each candidate entered the registry
    assert db.execute("SELECT COUNT(*) FROM status_transitions WHERE actor = 'sync'").fetchone()[0] == len(
        candidates
    )
    set_status(db, "microsoft/phi-2", "evaluating", "first look")
    sync_snapshot(db_path, HUB_SNAPSHOT, Settings())  # a re-sync keeps operator decisions
    assert (
        db.execute("SELECT status FROM candidates WHERE model_id = 'microsoft/phi-2'").fetchone()[0]
        == "evaluating"
    )


def test_auto_mode_runs_incremental_passes_that_fetch_only_changed_records(
    hub: HubStandIn, db_path: str
) -> None:
    from hfops.discovery import sync_hub

    settings = settings_for(hub)
    full = sync_hub(db_path, settings, mode="auto")
    assert full.mode == "full"  # no full pass yet
    ids = sorted(expected_ids(hub.records))
    for r in hub.records:
        if r["id"] in ids[:3]:
            r["likes"] = (r.get("likes") or 0) + 7
            r["lastModified"] = "2031-01-01T00:00:00.000Z"  # a new commit
    hub._sorted_cache.clear()
    hub.log.clear()
    incremental = sync_hub(db_path, settings, mode="auto")
    assert incremental.mode == "incremental" and incremental.status == "succeeded"
    assert incremental.updated == 3 and incremental.inserted == 0
    assert incremental.pages < full.pages
    assert all("sort=lastModified" in p for p in hub.model_requests())
    assert incremental.flagged == 0  # not a complete pass: nothing is flagged as unlisted
    settings.hub.full_sync_hours = 0
    assert sync_hub(db_path, settings, mode="auto").mode == "full"


def test_run_sync_returns_its_own_run_even_when_another_source_ran_meanwhile(
    tmp_path: Path, db_path: str
) -> None:
    other = tmp_path / "other.jsonl"
    other.write_text("\n".join(json.dumps(r) for r in ALL_RECORDS[:5]) + "\n")
    mine = tmp_path / "mine.jsonl"
    mine.write_text("\n".join(json.dumps(r) for r in ALL_RECORDS[5:40]) + "\n")
    settings = Settings()
    settings.hub.page_size = 10
    started: list[SyncRun] = []

    def progress(
        done: int, total: int | None = None, message: str | None = None, force: bool = False
    ) -> None:
        if not started:  # while "mine" runs, a sync of another source starts and finishes
            started.append(sync_snapshot(db_path, other, settings))

    run = sync_snapshot(db_path, mine, settings, progress)
    assert started and started[0].id > run.id  # the other run is the newest row
    newest = last_sync_run(connect(db_path))
    assert newest is not None and newest.id == started[0].id
    assert run.source == f"snapshot:{mine.resolve()}" and run.seen == 35 and run.status == "succeeded"
    assert started[0].seen == 5


def test_an_incremental_pass_probes_each_query_with_a_small_page_then_takes_full_pages(
    hub: HubStandIn, db_path: str
) -> None:
    from hfops.discovery import hub as hub_source
    from hfops.discovery import sync_hub

    settings = settings_for(hub)
    sync_hub(db_path, settings, mode="full")
    hub.log.clear()
    quiet = sync_hub(db_path, settings, mode="auto")  # nothing changed: one small page per query
    limits = [dict(parse_qsl(urlsplit(p).query))["limit"] for p in hub.model_requests()]
    assert quiet.mode == "incremental" and limits == [str(hub_source.INCREMENTAL_PROBE)] * 2
    assert quiet.records <= 2 * hub_source.INCREMENTAL_PROBE and quiet.updated == 0
    ids = sorted(expected_ids(hub.records))[:70]  # more changes than a probe holds
    for r in hub.records:
        if r["id"] in ids:
            r["lastModified"] = "2031-01-01T00:00:00.000Z"
    hub._sorted_cache.clear()
    hub.log.clear()
    busy = sync_hub(db_path, settings, mode="auto")
    requests = [dict(parse_qsl(urlsplit(p).query)) for p in hub.model_requests()]
    assert busy.updated == 70 and busy.status == "succeeded"
    assert requests[0]["limit"] == str(hub_source.INCREMENTAL_PROBE) and "cursor" not in requests[0]
    assert requests[1]["limit"] == "50" and "cursor" in requests[1]  # past the probe, the page size


# --- the parser's fast path for the Hub's timestamps (issue 17) ---------------------------------------------


def _parsed(parse, record: dict) -> object:
    """What ``parse(**record)`` gives: its attributes, or the ValueError's message."""
    try:
        return vars(parse(record))
    except ValueError as exc:
        return f"ValueError: {exc}"


ODD_DATES = [
    "2024-07-11T08:15:02.123Z", "2024-07-11T08:15:02Z", "2024-07-11T08:15:02.1234567891Z",
    "2024-07-11T08:15:02.1Z", "2024-7-1T08:15:02Z", "2024-02-30T00:00:00.000Z", "2024-13-01T00:00:00Z",
    "2024-07-11T24:00:00Z", "2024-07-11T08:15:02.Z", "2024-07-11T08:15:02+00:00", "2024-07-11",
    "0000-01-01T00:00:00Z", "\u0662\u0660\u0662\u0664-07-11T08:15:02Z", "", " 2024-07-11T08:15:02Z",
]  # fmt: skip


@pytest.mark.parametrize("key", ["lastModified", "createdAt"])
def test_timestamps_are_read_exactly_as_model_info_reads_them(key: str) -> None:
    """``parse_record`` reads the Hub's timestamp form without strptime; every spelling, real or odd, gives
    the same ModelInfo (or the same error) as ``ModelInfo(**record)``."""
    from huggingface_hub.hf_api import ModelInfo

    from hfops.discovery.facts import _model_info

    def model_info(record: dict) -> ModelInfo:
        return ModelInfo(**record)

    real = [r for r in ALL_RECORDS[::7] if r.get(key)]
    assert len(real) > 1000
    for record in real:
        assert _parsed(_model_info, record) == _parsed(model_info, record)
    for text in ODD_DATES:
        record = {**real[0], key: text}
        assert _parsed(_model_info, record) == _parsed(model_info, record), text
    both = {**real[0], "last_modified": "2020-01-01T00:00:00Z", key: "2024-07-11T08:15:02Z"}
    assert _parsed(_model_info, both) == _parsed(model_info, both)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"id": "org/Llama-GPTQ"}, ["gptq"]),  # the id counts as a file name, in any case
        ({"tags": ["AWQ"]}, ["awq"]),
        ({"tags": ["4-bit", "bitsandbytes"]}, ["bnb-4bit"]),
        ({"tags": ["bitsandbytes"]}, ["bnb-4bit"]),
        ({"siblings": [{"rfilename": "model.Q4_K_M.gguf"}]}, ["gguf"]),
        ({"gguf": {"total": 1}}, ["gguf"]),
        ({"config": {"quantization_config": {"quant_method": "awq"}}}, ["awq"]),
        ({"tags": ["orbit", "fp8-ready"]}, []),  # a hint inside a longer tag is no tag match
        ({"id": "org/orbit-model", "tags": ["text-generation"]}, []),
    ],
)
def test_quantization_is_found_past_the_no_hint_shortcut(fields: dict, expected: list[str]) -> None:
    """A record with no quantization hint at all is answered by one look at its text; every other record
    still goes through each check."""
    from hfops.discovery import parse_record

    record = {"id": "org/model", "tags": ["text-generation"], **fields}
    assert parse_record(record)[1].quantization == expected


def test_the_score_spelled_out_equals_its_definition_over_real_records() -> None:
    """``quality_score`` writes its four terms out by hand: the same values, rounding and summation order
    as the definition (a loop over SCORE_WEIGHTS), for every shipped record."""
    import math
    from datetime import UTC, datetime

    from hfops.discovery import SCORE_WEIGHTS, parse_record, quality_score
    from hfops.discovery import score as definition

    now = datetime(2026, 12, 2, tzinfo=UTC)

    def by_definition(facts) -> tuple[float, dict]:
        reference = facts.last_modified or facts.created_at
        recency = 0.0
        if reference:
            age = (now - datetime.fromisoformat(reference.replace("Z", "+00:00"))).total_seconds()
            recency = 0.5 ** (max(0.0, age / 86400) / definition.RECENCY_HALF_LIFE_DAYS)
        licence = facts.license
        openness = 0.25 if licence else 0.0
        if licence in definition.OPEN_LICENSES:
            openness = 1.0
        elif facts.use_restricted:
            openness = 0.5
        values = {
            "downloads": min(1.0, math.log10(1 + max(0, facts.downloads)) / definition.DOWNLOADS_SCALE),
            "likes": min(1.0, math.log10(1 + max(0, facts.likes)) / definition.LIKES_SCALE),
            "recency": recency,
            "license": openness,
        }
        weights = SCORE_WEIGHTS
        expected = {
            t: {"value": round(v, 4), "weight": weights[t], "contribution": round(v * weights[t], 4)}
            for t, v in values.items()
        }
        return round(sum(v * weights[t] for t, v in values.items()), 4), expected

    checked = 0
    for record in ALL_RECORDS:
        try:
            facts = parse_record(record)[1]
        except ValueError:
            continue
        assert quality_score(facts, now) == by_definition(facts), facts.model_id
        checked += 1
    assert checked > 8000
