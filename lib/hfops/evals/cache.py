"""The inference cache: every model output (embedding or generated text) stored in SQLite.

Keyed by ``(backend, model, revision, input_hash)`` where ``input_hash`` is the SHA-256 of the exact input
(text, or the prompt and generation parameters). Embeddings are stored as little-endian float32 bytes,
texts as UTF-8 JSON. A re-run of the same evaluation therefore makes no model call at all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlite_utils

from hfops.store import utcnow, write_tx

_CHUNK = 500  # SQLite variables per IN (...) query


def input_hash(value: Any) -> str:
    """SHA-256 of a text, or of a JSON-serialisable request (sorted keys)."""
    if isinstance(value, str):
        data = value.encode("utf-8")
    else:
        data = json.dumps(value, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(data).hexdigest()


@dataclass
class CacheKey:
    """Which system produced a cached value."""

    backend: str
    model: str
    revision: str


@dataclass
class CacheStats:
    """Hits and misses counted by one :class:`InferenceCache`."""

    hits: int = 0
    misses: int = 0


class InferenceCache:
    """Read-through cache over the ``inference_cache`` table of the store."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        self.stats = CacheStats()

    def _get(self, key: CacheKey, hashes: Sequence[str]) -> dict[str, tuple[str, bytes]]:
        found: dict[str, tuple[str, bytes]] = {}
        unique = list(dict.fromkeys(hashes))
        for start in range(0, len(unique), _CHUNK):
            part = unique[start : start + _CHUNK]
            cursor = self.db.execute(
                "SELECT input_hash, kind, value FROM inference_cache WHERE backend = ? AND model = ? "
                f"AND revision = ? AND input_hash IN ({', '.join('?' for _ in part)})",
                [key.backend, key.model, key.revision, *part],
            )
            for h, kind, value in cursor.fetchall():
                found[h] = (kind, value)
        return found

    def _put(self, key: CacheKey, items: Iterable[tuple[str, str, bytes]]) -> None:
        now = utcnow()
        rows = [(key.backend, key.model, key.revision, h, kind, value, now) for h, kind, value in items]
        if not rows:
            return
        with write_tx(self.db):
            self.db.conn.executemany(
                "INSERT OR REPLACE INTO inference_cache "
                "(backend, model, revision, input_hash, kind, value, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def get_embeddings(self, key: CacheKey, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Cached vectors for ``texts`` (by text hash); counts hits and misses per text."""
        hashes = [input_hash(t) for t in texts]
        found = self._get(key, hashes)
        out = {h: np.frombuffer(v, dtype="<f4") for h, (kind, v) in found.items() if kind == "embedding"}
        hit = sum(1 for h in hashes if h in out)
        self.stats.hits += hit
        self.stats.misses += len(hashes) - hit
        return out

    def put_embeddings(self, key: CacheKey, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Store one vector per text."""
        self._put(
            key,
            (
                (input_hash(t), "embedding", np.asarray(v, dtype="<f4").tobytes())
                for t, v in zip(texts, vectors, strict=True)
            ),
        )

    def get_text(self, key: CacheKey, request: Any) -> str | None:
        """The cached generation for ``request``, or None."""
        h = input_hash(request)
        found = self._get(key, [h]).get(h)
        if found is None or found[0] != "text":
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        return str(json.loads(found[1]))

    def put_text(self, key: CacheKey, request: Any, text: str) -> None:
        """Store the generation for ``request``."""
        self._put(key, [(input_hash(request), "text", json.dumps(text, ensure_ascii=False).encode("utf-8"))])
