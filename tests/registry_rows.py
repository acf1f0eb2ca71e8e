"""Insert registry rows directly (models + candidates) for console tests that need exact, known data.

The rows mirror what discovery stores (same columns, JSON encoded the same way), so pages and the
registry read them exactly as they read synced records.
"""

from __future__ import annotations

from typing import Any

from hfops.store import connect, dumps, stable_hash, utcnow, write_tx

# The shape discovery stores: {term: {value, weight, contribution}}.
BREAKDOWN = {
    "downloads": {"value": 0.6, "weight": 0.35, "contribution": 0.21},
    "likes": {"value": 0.4, "weight": 0.25, "contribution": 0.1},
    "recency": {"value": 0.5, "weight": 0.25, "contribution": 0.125},
    "license": {"value": 1.0, "weight": 0.15, "contribution": 0.15},
}


def model_row(model_id: str, **fields: Any) -> dict[str, Any]:
    """A models row with sensible defaults; ``fields`` override columns (lists/dicts are JSON encoded)."""
    now = utcnow()
    raw = fields.pop("raw", {"id": model_id, "tags": fields.get("tags", [])})
    row: dict[str, Any] = {
        "model_id": model_id,
        "author": model_id.split("/")[0] if "/" in model_id else None,
        "pipeline_tag": "feature-extraction",
        "library_name": "sentence-transformers",
        "license": "apache-2.0",
        "use_restricted": 0,
        "tags": ["sentence-transformers", "safetensors", "license:apache-2.0"],
        "siblings": ["config.json", "model.safetensors", "README.md"],
        "downloads": 5000,
        "likes": 20,
        "created_at": "2024-01-01T00:00:00Z",
        "last_modified": "2025-06-01T00:00:00Z",
        "safetensors": 1,
        "quantization": "",
        "matches_rule": 1,
        "rule_failures": [],
        "raw": raw,
        "source": "tests",
        "first_seen": now,
        "last_seen": now,
    }
    row.update(fields)
    for key in ("tags", "siblings", "rule_failures", "raw"):
        if not isinstance(row[key], str):
            row[key] = dumps(row[key])
    row["record_hash"] = stable_hash(row["raw"])
    return row


def add_candidates(db_path: str, specs: list[dict[str, Any]]) -> list[str]:
    """Insert one model + candidate per spec (``model_id`` required; ``score``, ``status``,
    ``score_breakdown``, ``flag`` go to candidates, everything else to models). Returns the ids."""
    db = connect(db_path)
    ids = []
    now = utcnow()
    with write_tx(db):
        for spec in specs:
            spec = dict(spec)
            candidate = {
                "model_id": spec["model_id"],
                "status": spec.pop("status", "candidate"),
                "score": spec.pop("score", 0.5),
                "score_breakdown": dumps(spec.pop("score_breakdown", BREAKDOWN)),
                "flag": spec.pop("flag", None),
                "created_at": now,
                "updated_at": now,
            }
            db["models"].insert(model_row(spec.pop("model_id"), **spec))
            db["candidates"].insert(candidate)
            ids.append(candidate["model_id"])
    db.conn.close()
    return ids


def numbered(n: int, prefix: str = "org/model", **fields: Any) -> list[dict[str, Any]]:
    """``n`` specs ``{prefix}-000 ...`` with descending scores (so score order = id order)."""
    return [
        {"model_id": f"{prefix}-{i:03d}", "score": round(0.99 - i * 0.001, 4), **fields}
        for i in range(n)
    ]
