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
    proc = subprocess.run([sys.executable, "-m", "hfops.cli", "sync", "--snapshot", str(path), "--db", db_path],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
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
