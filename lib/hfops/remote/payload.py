"""What travels between the store owner and a compute worker: plain data with a schema version.

A compute task's payload and its result hold only built-in types (dicts, lists, strings, numbers), so any
worker can read them whatever its version, check :data:`SCHEMA_VERSION` first and refuse a payload it does
not speak (:func:`check_schema`) with a message naming both versions. Secrets never travel: a compute worker
reads its own ``HUGGINGFACE_API_KEY``; the settings in a payload hold none.

Payload (``kind = "eval_batch"``)::

    {"schema": 2, "kind": "eval_batch", "key": "...", "run_id": 7, "task": "retrieval", "dataset": "ms_marco",
     "source": "local", "dataset_version": "...", "corpus_key": "hfops:corpus:<sha>" | "",
     "candidate": {"model_id": "...", "backend": "auto", "revision": "<commit sha>" | "pypi:..." | null},
     "production": {"model_id": "...", "revision": ...},
     "settings": {...settings_to_mapping...}, "examples": [{"id": ..., "query": ..., ...}, ...]}

Result::

    {"schema": 2, "key": "...", "worker": "host:pid", "systems": {"candidate": {...}, "production": {...}},
     "candidate": [{"output": ..., "latency_ms": ..., "cached": ..., "error": ...}, ...], "production": [...],
     "calls": 3, "cache_hits": 0, "cache_misses": 3, "seconds": 0.2}
    or {"schema": 2, "key": "...", "worker": "...", "failed": "operator message"}
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from typing import Any

from hfops.errors import JobError
from hfops.evals.backends import Outcome
from hfops.evals.data import EvalSet, Example

SCHEMA_VERSION = 2  # 2: each system carries the revision the store owner pinned (workers acquire it)
EVAL_BATCH = "eval_batch"
PING = "ping"  # answered at once (round-trip measurements, health checks)


class SchemaMismatch(JobError):
    """A payload written for another payload schema version (the worker refuses it)."""


def digest(value: Any) -> str:
    """A short SHA-256 of a JSON-serialisable value (sorted keys): content-addressed keys."""
    data = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")
    return hashlib.sha256(data).hexdigest()[:20]


def example_data(example: Example) -> dict[str, Any]:
    return dataclasses.asdict(example)


def example_from(data: dict[str, Any]) -> Example:
    return Example(**data)


def outcome_data(outcome: Outcome) -> dict[str, Any]:
    return dataclasses.asdict(outcome)


def outcomes_from(items: Sequence[dict[str, Any]]) -> list[Outcome]:
    return [Outcome(**item) for item in items]


def eval_batch(
    run_id: int,
    task: str,
    evalset: EvalSet,
    candidate: dict[str, Any],
    production: dict[str, Any],
    settings: dict[str, Any],
    examples: Sequence[Example],
    corpus_key: str = "",
) -> dict[str, Any]:
    """The payload of one eval batch (``candidate``/``production``: model_id, backend, revision), keyed by its
    content: the same batch of the same run always gets the same key (an owner that came back adopts it)."""
    payload = {
        "schema": SCHEMA_VERSION,
        "kind": EVAL_BATCH,
        "run_id": run_id,
        "task": task,
        "dataset": evalset.dataset,
        "source": evalset.source,
        "dataset_version": evalset.version,
        "corpus_key": corpus_key,
        "candidate": candidate,
        "production": production,
        "settings": settings,
        "examples": [example_data(e) for e in examples],
    }
    payload["key"] = f"eval_{run_id}_{digest(payload)}"
    return payload


def check_schema(data: dict[str, Any], worker: str) -> None:
    """Raise :class:`SchemaMismatch` when ``data`` was written for another schema version than this code's."""
    found = data.get("schema") if isinstance(data, dict) else None
    if found != SCHEMA_VERSION:
        raise SchemaMismatch(
            f"compute worker {worker} refuses a payload of schema version {found!r}: it speaks version "
            f"{SCHEMA_VERSION}. Run the same hfops version on the store owner and every compute worker "
            "(upgrade this machine, or the owner), then restart this worker."
        )
