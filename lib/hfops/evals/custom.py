"""Custom eval sets (``hfops dataset add``): stored in the store, versioned by content hash.

Phase-A placeholder of the interface :mod:`hfops.evals.runs` uses; the sets themselves land with issue 15.
"""

from __future__ import annotations

from typing import Any

import sqlite_utils

from hfops.errors import EvalError
from hfops.evals.data import EvalSet

SOURCE = "custom"
TABLE = "eval_datasets"


def _has_table(db: sqlite_utils.Database) -> bool:
    return (
        db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [TABLE]).fetchone()
        is not None
    )


def find_set(db: sqlite_utils.Database, name: str) -> dict[str, Any] | None:
    """The stored custom set ``name``, or None."""
    if not _has_table(db):
        return None
    return None


def set_names(db: sqlite_utils.Database | None) -> list[str]:
    """Names of the stored custom sets."""
    return []


def check_task(db: sqlite_utils.Database, name: str, task: str) -> None:
    """Raise :class:`EvalError` when the custom set ``name`` is not a ``task`` set."""


def load_custom_set(db: sqlite_utils.Database, name: str, task: str, limit: int | None) -> EvalSet:
    """The examples of the custom set ``name`` for ``task``."""
    raise EvalError(f"unknown dataset {name!r}")
