"""Snapshot files that are not what they claim (``hfops sync --snapshot``): one-line errors naming the file,
never a traceback; JSON Lines read line by line (a U+2028 inside a string is not a line break)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from hfops.config import Settings
from hfops.discovery import sync_snapshot
from hfops.errors import SyncError
from tests.faults.sync_standin import ALL_RECORDS

BROKEN = {
    "not_utf8": (b'[{"id": "org/\xff\xfe"}]', "not UTF-8 text"),
    "deep_document": (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    "object_without_models": (b'{"date": "2026-01-01", "count": 3}', "expected a list of records"),
    "bad_gzip": (b"\x1f\x8b\x08\x00 truncated", "cannot read snapshot file"),
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_an_unreadable_snapshot_is_a_one_line_error(tmp_path: Path, db_path: str, kind: str) -> None:
    content, words = BROKEN[kind]
    path = tmp_path / ("snap.json.gz" if kind == "bad_gzip" else "snap.json")
    path.write_bytes(content)
    with pytest.raises(SyncError, match=words) as caught:
        sync_snapshot(db_path, path, Settings())
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)
    proc = subprocess.run(
        [sys.executable, "-m", "hfops.cli", "sync", "--snapshot", str(path), "--db", db_path],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr


def test_deep_lines_and_line_separators_in_json_lines(tmp_path: Path, db_path: str) -> None:
    records = [dict(r) for r in ALL_RECORDS[:5]]
    records[2]["cardData"] = {"description": "one\u2028two\u2029three\x85four"}
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    lines.insert(1, "[" * 50_000 + "]" * 50_000)
    path = tmp_path / "snap.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = sync_snapshot(db_path, path, Settings())
    assert run.status == "succeeded" and run.seen == 6 and run.skipped == 1
    assert run.skip_reasons == {"invalid JSON": 1}
    assert any("line 2: nested too deeply" in e for e in run.errors)


def test_a_gzipped_snapshot_is_read(tmp_path: Path, db_path: str) -> None:
    path = tmp_path / "snap.jsonl.gz"
    path.write_bytes(gzip.compress("\n".join(json.dumps(r) for r in ALL_RECORDS[:40]).encode()))
    run = sync_snapshot(db_path, path, Settings())
    assert run.status == "succeeded" and run.inserted == 40


@pytest.mark.parametrize("layout", ["pretty_models", "pretty_list", "bad_first_line"])
def test_document_or_json_lines_is_told_apart(tmp_path: Path, db_path: str, layout: str) -> None:
    records = [dict(r) for r in ALL_RECORDS[:8]]
    path = tmp_path / "snap.json"
    if layout == "pretty_models":
        path.write_text(json.dumps({"date": "2026-01-01", "models": records}, indent=2))
    elif layout == "pretty_list":
        path.write_text(json.dumps(records, indent=2))
    else:
        path.write_text("{this is not json\n" + "\n".join(json.dumps(r) for r in records) + "\n")
    run = sync_snapshot(db_path, path, Settings())
    assert run.inserted == 8 and run.skipped == (1 if layout == "bad_first_line" else 0)


def test_a_large_json_lines_snapshot_is_streamed_and_resumes_by_offset(tmp_path: Path, db_path: str) -> None:
    from hfops.discovery import SnapshotSource

    path = tmp_path / "snap.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in ALL_RECORDS[:95]) + "\n")
    source = SnapshotSource(path, page_size=10)
    pages = list(source.pages({"offset": 40}))
    assert [len(p.records) for p in pages] == [10, 10, 10, 10, 10, 5]
    assert pages[0].records[0]["id"] == ALL_RECORDS[40]["id"] and pages[-1].next_cursor is None
    assert pages[0].total == 55
