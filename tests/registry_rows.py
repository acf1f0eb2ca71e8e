"""Insert registry rows directly (models + candidates) for console tests that need exact, known data.

The rows are built by discovery's own code: the ``models`` row by :func:`hfops.discovery.model_row` from
:class:`~hfops.discovery.ModelFacts`, the stored record and its hash by :func:`hfops.discovery.raw_json`,
and the score and its breakdown by :func:`hfops.discovery.quality_score`. So pages and the registry read them
exactly as they read synced records. A spec may still pin ``score`` (to fix an order); the breakdown is
then still the real one for the model's facts.
"""

from __future__ import annotations

from typing import Any

from hfops.discovery import ModelFacts, quality_score, raw_json
from hfops.discovery import model_row as discovery_model_row
from hfops.store import connect, dumps, utcnow, write_tx

# Facts every test model has unless a spec says otherwise (they pass the default candidate rule).
FACT_DEFAULTS: dict[str, Any] = {
    "author": None,
    "sha": None,
    "pipeline_tag": "feature-extraction",
    "library_name": "sentence-transformers",
    "license": "apache-2.0",
    "tags": ["sentence-transformers", "safetensors", "license:apache-2.0"],
    "siblings": ["config.json", "model.safetensors", "README.md"],
    "downloads": 5000,
    "downloads_all_time": None,
    "likes": 20,
    "trending_score": None,
    "created_at": "2024-01-01T00:00:00Z",
    "last_modified": "2025-06-01T00:00:00Z",
    "gated": None,
    "safetensors": True,
    "quantization": [],
}
# Columns of ``models`` that are facts of the record (the rest: rule outcome, bookkeeping).
MODEL_FACT_COLUMNS = set(FACT_DEFAULTS) | {"use_restricted"}


def model_facts(model_id: str, fields: dict[str, Any]) -> ModelFacts:
    """Facts from the defaults and the fact columns in ``fields`` (consumed from it)."""
    values = {**FACT_DEFAULTS, "author": model_id.split("/")[0] if "/" in model_id else None}
    for key in list(fields):
        if key in FACT_DEFAULTS:
            values[key] = fields.pop(key)
    fields.pop("use_restricted", None)  # derived from the licence, as discovery does
    quantization = values["quantization"]
    if isinstance(quantization, str):
        values["quantization"] = [q for q in quantization.split(",") if q]
    values["safetensors"] = bool(values["safetensors"])
    return ModelFacts(model_id=model_id, **values)


def model_row(model_id: str, **fields: Any) -> dict[str, Any]:
    """A ``models`` row as discovery stores it.

    ``fields`` override facts and columns (lists/dicts JSON encoded).
    """
    fields = dict(fields)
    facts = model_facts(model_id, fields)
    raw = fields.pop("raw", {"id": model_id, "tags": facts.tags})
    raw_text, record_hash = raw_json(raw)
    failures = fields.pop("rule_failures", [])
    stamp = utcnow()
    row = discovery_model_row(facts, raw_text, record_hash, failures, fields.pop("source", "tests"), 0, stamp)
    row["matches_rule"] = int(not failures)
    row["last_sync_id"] = None
    row["first_seen"] = stamp
    for key, value in fields.items():
        row[key] = dumps(value) if isinstance(value, list | dict) else value
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
            model_id = spec.pop("model_id")
            status = spec.pop("status", "candidate")
            pinned_score = spec.pop("score", None)
            pinned_breakdown = spec.pop("score_breakdown", None)
            flag = spec.pop("flag", None)
            row = model_row(model_id, **spec)
            score, breakdown = quality_score(model_facts(model_id, dict(spec)))
            db["models"].insert(row)
            db["candidates"].insert({
                "model_id": model_id,
                "status": status,
                "score": score if pinned_score is None else pinned_score,
                "score_breakdown": dumps(breakdown if pinned_breakdown is None else pinned_breakdown),
                "flag": flag,
                "created_at": now,
                "updated_at": now,
            })  # fmt: skip
            ids.append(model_id)
    db.conn.close()
    return ids


def numbered(n: int, prefix: str = "org/model", **fields: Any) -> list[dict[str, Any]]:
    """``n`` specs ``{prefix}-000 ...`` with descending scores (so score order = id order)."""
    return [
        {"model_id": f"{prefix}-{i:03d}", "score": round(0.99 - i * 0.001, 4), **fields} for i in range(n)
    ]
