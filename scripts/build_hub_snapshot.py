"""Build data/hub/models_snapshot.jsonl (the embedded default) from the real Hub records in shared/data.

Normalisation, only what huggingface_hub's ModelInfo parser needs:
- records with ``modelId`` but no ``id`` (the 2022 list API) get ``id`` = ``modelId``;
- timestamps already in the API's ``...Z`` form are kept; any other form is rewritten to ``...Z``.
A model present in several snapshots is kept once, from the richest source (2025 model_info, then the
2022 full listing, then the 2026 top list). Everything else is unchanged.

Usage: python scripts/build_hub_snapshot.py ../shared/data/hf_hub_models data/hub/models_snapshot.jsonl
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

SOURCES = [  # richest first
    "hf_model_info_2025-04_model_trees.json",
    "hf_api_models_2022-02_subset.json",
    "hf_api_models_2026-08-22_top_likes_downloads.json",
]


def _z(value: object) -> object:
    if not isinstance(value, str) or value.endswith("Z"):
        return value
    parsed = datetime.fromisoformat(value.replace(" ", "T"))
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def main(src_dir: str, out_path: str) -> None:
    seen: set[str] = set()
    out: list[dict] = []
    for name in SOURCES:
        data = json.loads((Path(src_dir) / name).read_text())
        records = data["models"] if isinstance(data, dict) else data
        for record in records:
            record = dict(record)
            record.setdefault("id", record.get("modelId"))
            for key in ("createdAt", "lastModified"):
                if record.get(key) is not None:
                    record[key] = _z(record[key])
            if not record["id"] or record["id"] in seen:
                continue
            seen.add(record["id"])
            out.append(record)
    with open(out_path, "w", encoding="utf-8") as fh:
        for record in out:
            fh.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
    print(f"wrote {len(out)} records to {out_path}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
