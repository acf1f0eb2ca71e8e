"""Build data/hub/models_snapshot.jsonl (the embedded default) from the real Hub records in shared/data.

Sources, in the order that decides which record of a model is kept (the first source holding an id wins):

1. ``hf_model_info_2025-04_model_trees.json``: whole ``/api/models/{id}`` records (tags, cardData, siblings,
   sha, lastModified): the richest and, of the sources with tags, the newest.
2. ``hf_api_models_2024-07-11_text_tasks_dl1000.jsonl``: the complete list-API listing of 11 July 2024
   (four text tasks, downloads >= 1000): tags carry licence, ``safetensors`` and quantization markers.
3. ``hf_api_models_2022-02_subset.json``: the Feb 2022 full listing; older than 1 and 2 (it predates the
   ``safetensors`` tag), so it only supplies models they do not hold.
4. ``hf_api_models_2026-08-22_top_likes_downloads.json``: the newest, but without ``tags`` (so without a
   licence or a safetensors marker); it only supplies models no other source holds.

Records are kept whole, never merged across sources. Normalisation, only what huggingface_hub's ModelInfo
parser needs: records with ``modelId`` but no ``id`` (the 2022 list API) get ``id`` = ``modelId``; a timestamp
not in the API's ``...Z`` form is rewritten to it. Output: the kept records in source order, each source in
its own order.

Usage:
  python scripts/build_hub_snapshot.py ../shared/data/hf_hub_models data/hub/models_snapshot.jsonl
  python scripts/build_hub_snapshot.py --benchmark ../shared/data/hf_hub_models /tmp/hub_165k.jsonl
    (benchmarks and scale tests only: source 2 replaced by the 165,746-record listing of the same day)
"""

from __future__ import annotations

import argparse
import gzip
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

LISTING_2024 = "hf_api_models_2024-07-11_text_tasks_dl1000.jsonl"
LISTING_2024_FULL = "hf_api_models_2024-07-11_text_tasks.jsonl.gz"
SOURCES = [  # precedence order: the first source holding a model id supplies its record
    "hf_model_info_2025-04_model_trees.json",
    LISTING_2024,
    "hf_api_models_2022-02_subset.json",
    "hf_api_models_2026-08-22_top_likes_downloads.json",
]


def _z(value: object) -> object:
    if not isinstance(value, str) or value.endswith("Z"):
        return value
    parsed = datetime.fromisoformat(value.replace(" ", "T"))
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Records of a JSON list, a ``{"models": [...]}`` object, or JSON Lines (optionally gzip-compressed)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        if ".jsonl" in path.name:
            for line in fh:
                if line.strip():
                    yield json.loads(line)
            return
        data = json.load(fh)
    yield from data["models"] if isinstance(data, dict) else data


def normalised(record: dict[str, Any]) -> dict[str, Any]:
    """The record with ``id`` set from ``modelId`` when missing and timestamps in the ``...Z`` form."""
    record = dict(record)
    record.setdefault("id", record.get("modelId"))
    for key in ("createdAt", "lastModified"):
        if record.get(key) is not None:
            record[key] = _z(record[key])
    return record


def build(src_dir: Path, sources: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The deduplicated records and, per source, how many were read, kept and dropped as duplicates."""
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    stats: list[dict[str, Any]] = []
    for name in sources:
        read = kept = 0
        for raw in read_records(src_dir / name):
            read += 1
            record = normalised(raw)
            if not record["id"] or record["id"] in seen:
                continue
            seen.add(record["id"])
            out.append(record)
            kept += 1
        stats.append({"source": name, "read": read, "kept": kept, "duplicates": read - kept})
    return out, stats


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "src_dir", type=Path, help="the folder holding the source files (shared/data/hf_hub_models)"
    )
    parser.add_argument("out", type=Path, help="the JSON Lines file to write")
    parser.add_argument(
        "--benchmark",
        action="store_true",
        help=f"use {LISTING_2024_FULL} (165,746 records) instead of {LISTING_2024}: "
        "for benchmarks, not shipping",
    )
    args = parser.parse_args(argv)
    sources = [LISTING_2024_FULL if s == LISTING_2024 and args.benchmark else s for s in SOURCES]
    records, stats = build(args.src_dir, sources)
    with open(args.out, "w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
    for row in stats:
        print(f"{row['source']}: read {row['read']}, kept {row['kept']}, duplicates {row['duplicates']}")
    print(f"wrote {len(records)} records to {args.out}")


if __name__ == "__main__":
    main()
