"""Evaluability as a registry fact for lists of candidates: how each can run here, with no network.

Local states (packaged, added folder, HF cache) are read now; the others come from the stored
``models_check`` facts (``model_evaluability``), else ``unknown``. Used by ``hfops candidates --json``
(``runnable``), the Candidates page (column and filter) and the Evals launch form (runnable first).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlite_utils

from hfops.evals.tasks import task_of_pipeline
from hfops.models import checks


def facts(
    db: sqlite_utils.Database, models: Iterable[tuple[str, str | None]], settings: Any
) -> dict[str, checks.Evaluability]:
    """``{model_id: Evaluability}`` for ``(model_id, pipeline_tag)`` pairs: local state, stored check, or
    ``unknown``. No network."""
    from hfops.models import resolver

    pairs = list(models)
    held = resolver.held_locally([m for m, _ in pairs], settings)  # the others have no local copy to look at
    found: dict[str, checks.Evaluability] = {}
    rest: list[tuple[str, str]] = []
    for model_id, pipeline_tag in pairs:
        task = task_of_pipeline(pipeline_tag) or ""
        local = checks.local_evaluability(model_id, settings, task) if model_id in held else None
        if local is not None:
            found[model_id] = local
        else:
            rest.append((model_id, task))
    stored = checks.stored(db, [m for m, _ in rest]) if rest else {}
    for model_id, task in rest:
        found[model_id] = stored.get(model_id) or checks.Evaluability(
            model_id, "unknown", "unknown", False, task=task, detail="not checked against the Hub yet"
        )
    return found


def runnable_field(fact: checks.Evaluability) -> dict[str, Any]:
    """The ``runnable`` value of ``hfops candidates --json``: label, state, runnable, detail."""
    return {"label": fact.label, "state": fact.state, "runnable": fact.runnable, "detail": fact.detail}


def rank(fact: checks.Evaluability | None) -> int:
    """Sort key: runnable states first, in :data:`hfops.models.checks.RANK` order."""
    return checks.RANK.get(fact.state if fact is not None else "unknown", len(checks.RANK))


def runnable_first(model_ids: Sequence[str], found: dict[str, checks.Evaluability]) -> list[str]:
    """``model_ids`` reordered: runnable states first (stable within a state)."""
    return sorted(model_ids, key=lambda m: rank(found.get(m)))


def runnable_ids(db: sqlite_utils.Database, settings: Any) -> set[str]:
    """Every model id that can run here now: packaged, added folders, HF cache copies, and stored checks
    that found it runnable (downloadable, api only). No network."""
    from hfops.models import resolver

    ids = {str(m["model_id"]) for m in resolver.list_local(settings) if m.get("format") != "incomplete"}
    ids.update(m for m, fact in checks.stored(db).items() if fact.runnable)
    return ids


def short_label(fact: checks.Evaluability) -> str:
    """A table-cell label (at most ~10 characters).

    ``packaged``, ``cached``, ``↓ 0.10 GB``, ``api only``, ...
    """
    if fact.state == "downloadable" and fact.size_bytes is not None:
        return f"↓ {fact.size_bytes / 1e9:.2f} GB"
    return SHORT_LABELS.get(fact.state, fact.state)


SHORT_LABELS = {
    "packaged": "packaged",
    "local": "local",
    "cached": "cached",
    "downloadable": "↓ download",
    "api_only": "api only",
    "too_large": "too large",
    "pickle_only": "pickle only",
    "gated": "gated",
    "unsupported": "no runtime",
    "unknown": "unknown",
}
