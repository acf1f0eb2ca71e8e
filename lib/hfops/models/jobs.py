"""Job handlers (the worker maps kinds to them): ``models_pull`` and ``models_check``."""

from __future__ import annotations

from typing import Any

from hfops import jobs, store
from hfops.config import Settings
from hfops.models import checks as evalmod
from hfops.models import resolver

CHECK_KIND = "models_check"


def enqueue_checks(db_path: str, settings: Settings, tasks: dict[str, str]) -> int:
    """Queue a ``models_check`` job for ``{model_id: task}`` (the worker checks them, rate-limited);
    its id."""
    return jobs.enqueue(db_path, CHECK_KIND, {"model_ids": list(tasks), "tasks": tasks}, settings)


def enqueue_candidate_checks(db_path: str, settings: Settings, limit: int = 0) -> tuple[int | None, int]:
    """Queue the evaluability check of the candidates not checked yet (at most ``limit``, 0 = all):
    ``(job id, models)``, or ``(None, 0)`` when every candidate is checked or has a local copy."""
    found = evalmod.unchecked_candidates(store.get_db(db_path), settings, limit=limit)
    if not found:
        return None, 0
    return enqueue_checks(db_path, settings, found), len(found)


def models_pull_job(ctx: Any) -> dict[str, Any]:
    """Job ``models_pull``: params ``{"model_id", "revision"?, "task"?}``; the resolved record (job progress =
    bytes downloaded). Re-running after an interruption fetches only the files still missing."""
    model_id = str(ctx.params["model_id"])
    resolved = resolver.pull(
        model_id,
        ctx.settings,
        revision=ctx.params.get("revision"),
        task=ctx.params.get("task", ""),
        progress=lambda done, total, message: ctx.progress(done, total, message),
    )
    fact = evalmod.local_evaluability(model_id, ctx.settings, resolved.task)
    if fact is not None:
        evalmod.save(store.get_db(ctx.db_path), [fact])
    return resolved.record()


def models_check_job(ctx: Any) -> dict[str, Any]:
    """Job ``models_check``: params ``{"model_ids": [...], "tasks": {id: task}}``; facts saved every 10
    checks, at most ``[models] check_per_minute`` Hub checks a minute; stops early when cancelled
    or rate-limited."""
    ids = list(dict.fromkeys(ctx.params.get("model_ids") or []))
    db = store.get_db(ctx.db_path)
    counts: dict[str, int] = {}
    pending: list[evalmod.Evaluability] = []
    done = 0
    for fact in evalmod.iter_checks(
        ids, ctx.settings, tasks=ctx.params.get("tasks"), cancelled=ctx.cancelled
    ):
        pending.append(fact)
        done += 1
        counts[fact.state] = counts.get(fact.state, 0) + 1
        if len(pending) >= 10:
            evalmod.save(db, pending)
            pending = []
            ctx.progress(done, len(ids), f"checked {done}/{len(ids)}")
    evalmod.save(db, pending)
    ctx.progress(done, len(ids), f"checked {done}/{len(ids)}", force=True)
    return {"checked": done, "total": len(ids), "states": counts}
