"""Sync faults in records: the same id twice in one page or one snapshot, and ids no Hub repo can have
(issue 10 items 3 and 6).

Duplicates are merged (last wins), counted and reported, never an IntegrityError; ``seen`` and ``matched``
count distinct models; an odd id is skipped with its reason and never aborts the page.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from hfops.config import Settings
from hfops.discovery import sync_snapshot
from hfops.store import connect
from tests.faults.sync_standin import (
    ALL_RECORDS,
    hub_records,
    listed_ids,
    on_page,
    settings_for,
    stored_ids,
    sync_with_token,
)
from tests.standins.hub import HubStandIn, Reply


def loose_settings(page_size: int = 7) -> Settings:
    settings = Settings()
    settings.hub.page_size = page_size
    settings.discovery.min_likes = 0
    settings.discovery.min_downloads = 0
    settings.discovery.require_safetensors = False
    return settings


def likes(db_path: str, model_id: str) -> int:
    return connect(db_path).execute("SELECT likes FROM models WHERE model_id = ?", [model_id]).fetchone()[0]


@pytest.mark.parametrize("layout", ["jsonl", "json_list", "models_object"])
def test_duplicate_ids_in_a_snapshot_are_merged_last_wins_and_counted(
    tmp_path: Path, db_path: str, layout: str
) -> None:
    records = copy.deepcopy(ALL_RECORDS[:30])
    twice, thrice = records[20]["id"], records[3]["id"]
    again = [dict(records[3], likes=111_111), dict(records[3], likes=222_222), dict(records[20], likes=5)]
    records = records[:10] + again[:1] + records[10:25] + again[1:] + records[25:]  # across pages of 7
    path = tmp_path / "dups.json"
    if layout == "jsonl":
        path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    else:
        path.write_text(json.dumps(records if layout == "json_list" else {"models": records}))
    run = sync_snapshot(db_path, path, loose_settings())
    assert run.status == "succeeded"
    assert run.records == 33 and run.duplicates == 3 and run.seen == 30
    assert run.inserted == 30 and connect(db_path).execute("SELECT COUNT(*) FROM models").fetchone()[0] == 30
    assert likes(db_path, thrice) == 222_222 and likes(db_path, twice) == 5
    assert any("merged 3 duplicate record(s)" in e for e in run.errors)
    assert "3 duplicate record(s) merged" in (run.message or "")
    assert run.matched == connect(db_path).execute("SELECT COUNT(*) FROM candidates").fetchone()[0]
    rerun = sync_snapshot(db_path, path, loose_settings())  # and every rerun works the same way
    assert rerun.status == "succeeded" and rerun.unchanged == 30 and rerun.duplicates == 3


def test_duplicate_ids_in_one_hub_page_are_merged(db_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with HubStandIn(hub_records()) as hub:

        def doubled(served: int, reply: Reply) -> Reply:
            page = json.loads(reply.body)
            first = page[0]
            page[5:5] = [dict(first, likes=1), dict(first, likes=2)]
            reply.body = json.dumps(page).encode()
            return reply

        hub.rewrite = on_page(1, doubled)
        run = sync_with_token(db_path, settings_for(hub), monkeypatch)
    assert run.status == "succeeded"
    assert run.duplicates == 2 and run.records == run.seen + 2
    assert stored_ids(db_path) == listed_ids(hub.records)
    assert run.seen == len(listed_ids(hub.records)) and run.inserted == run.seen
    (model_id,) = [e.split(": ")[-1] for e in run.errors if e.startswith("merged 2 duplicate")]
    assert likes(db_path, model_id) == 2  # the last of the three wins


def test_a_model_listed_again_by_a_later_page_is_counted_once(
    db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with HubStandIn(hub_records()) as hub:
        kept: dict[str, dict] = {}

        def shifted(served: int, reply: Reply) -> Reply:  # the listing moved: page 2 repeats page 1's last
            page = json.loads(reply.body)
            if served == 1:
                kept["last"] = page[-1]
            elif served == 2:
                page.insert(0, dict(kept["last"], likes=(kept["last"].get("likes") or 0) + 3))
                reply.body = json.dumps(page).encode()
            return reply

        hub.rewrite = shifted
        run = sync_with_token(db_path, settings_for(hub), monkeypatch)
    assert run.status == "succeeded" and run.duplicates == 0
    assert run.records == run.seen + 1 and run.seen == len(listed_ids(hub.records))
    assert run.matched == connect(db_path).execute("SELECT COUNT(*) FROM candidates").fetchone()[0]
    assert likes(db_path, kept["last"]["id"]) == (kept["last"].get("likes") or 0) + 3  # last wins


ODD_IDS = {
    "nul": "org/bad\u0000id",
    "bidi_override": "org/\u202egnp.exe",
    "zero_width": "org/zero\u200bwidth",
    "whitespace": "org/two words",
    "blank": "   ",
    "newline": "org/line\nbreak",
    "too_long": "org/" + "x" * 5000,
}


def test_ids_no_hub_repo_can_have_are_skipped_with_a_reason(tmp_path: Path, db_path: str) -> None:
    good = copy.deepcopy(ALL_RECORDS[:10])
    odd = [dict(good[0], id=model_id) for model_id in ODD_IDS.values()]
    lines = [json.dumps(r) for r in good + odd]
    lines.append('{"id": "org/\\ud800lone-surrogate", "tags": ["x\\udfff"]}')  # not valid UTF-8 anywhere
    lines.append('{"id": "org/fine", "tags": ["\\udc00"]}')  # a good id, but the record cannot be stored
    path = tmp_path / "odd.jsonl"
    path.write_text("\n".join(lines) + "\n")
    run = sync_snapshot(db_path, path, loose_settings())
    assert run.status == "succeeded"
    assert run.skipped == len(ODD_IDS) + 2
    assert run.skip_reasons == {"wrong value": len(ODD_IDS) + 1, "missing id": 1}
    assert stored_ids(db_path) == {r["id"] for r in good}
    assert all("\u0000" not in e and "\u202e" not in e for e in run.errors)  # never echoed raw


def test_unicode_letters_in_ids_are_fine(tmp_path: Path, db_path: str) -> None:
    record = dict(ALL_RECORDS[0], id="org/modèle-日本語")
    (tmp_path / "u.jsonl").write_text(json.dumps(record) + "\n")
    run = sync_snapshot(db_path, tmp_path / "u.jsonl", loose_settings())
    assert run.skipped == 0 and stored_ids(db_path) == {"org/modèle-日本語"}
