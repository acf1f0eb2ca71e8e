"""The nightly batch: evaluate every ``candidate``/``shadow`` model that has no run on the current dataset
version.

The datasets of a task are the built-in ones of the task table and the custom sets of that task.

:func:`nightly_job` is the worker's ``eval_nightly`` handler (the huey periodic task enqueues it with the
worker's resolved settings); :func:`plan_nightly` says what it would do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hfops import jobs
from hfops.config import Settings
from hfops.errors import BackendError, HfopsError
from hfops.evals import custom, tasks
from hfops.evals.backends import resolve_system
from hfops.evals.data import dataset_version
from hfops.evals.records import PlannedRun, SkippedModel
from hfops.evals.runs import eval_run_job, submit_run
from hfops.store import get_db, one, rows

if TYPE_CHECKING:
    from hfops.jobs import JobContext

ProgressFn = Callable[..., None]
CancelledFn = Callable[[], bool]
EVALUABLE_STATUSES = ("candidate", "shadow")
NOT_DONE_STATUSES = ("failed", "cancelled")  # runs that do not count as "evaluated on this version"


def plan_nightly(db_path: str, settings: Settings) -> tuple[list[PlannedRun], list[SkippedModel]]:
    """``(planned, skipped)``: (model, task, dataset) combinations without a run on the current dataset
    version.

    Candidates in ``candidate``/``shadow`` status with a known task are considered; a model that cannot run
    here (not local, no API key) is skipped with the reason. Failed or cancelled runs do not count as done.
    """
    db = get_db(db_path)
    tags = [tag for spec in tasks.TASK_SPECS.values() for tag in spec.pipeline_tags]
    models = rows(
        db,
        "SELECT c.model_id, m.pipeline_tag FROM candidates c JOIN models m ON m.model_id = c.model_id "
        f"WHERE c.status IN ({', '.join('?' for _ in EVALUABLE_STATUSES)}) "
        f"AND m.pipeline_tag IN ({', '.join('?' for _ in tags)}) ORDER BY c.score DESC, c.model_id",
        [*EVALUABLE_STATUSES, *tags],
    )
    versions = {d: dataset_version(settings, d) for d in tasks.DATASET_NAMES}
    custom_sets = custom.list_sets(db)
    versions.update({s.name: s.version for s in custom_sets})
    planned: list[PlannedRun] = []
    skipped: list[SkippedModel] = []
    for model in models:
        task = tasks.task_of_pipeline(model["pipeline_tag"])
        if task is None:
            continue
        try:
            resolve_system(model["model_id"], task, settings)
        except BackendError as exc:
            skipped.append(SkippedModel(model=model["model_id"], reason=str(exc)))
            continue
        datasets = [d for d in tasks.DATASET_NAMES if task in tasks.DATASET_SPECS[d].tasks]
        datasets += [s.name for s in custom_sets if s.task == task]
        for dataset in datasets:
            existing = one(
                db,
                "SELECT id FROM eval_runs WHERE model_id = ? AND task = ? AND dataset = ? "
                f"AND status NOT IN ({', '.join('?' for _ in NOT_DONE_STATUSES)}) "
                "AND (dataset_version = ? OR (dataset_version = '' AND status IN ('queued', 'running')))",
                [model["model_id"], task, dataset, *NOT_DONE_STATUSES, versions[dataset]],
            )
            if existing is None:
                planned.append(PlannedRun(model=model["model_id"], task=task, dataset=dataset))
    return planned, skipped


def nightly(
    db_path: str, settings: Settings, progress: ProgressFn | None = None, cancelled: CancelledFn | None = None
) -> dict[str, Any]:
    """Run every planned nightly evaluation in this process, one after the other; failures are reported.

    Stops before the next run when ``cancelled()`` says so (the runs done so far are kept).
    """
    report = progress or (lambda *a, **k: None)
    stop = cancelled or (lambda: False)
    planned, skipped = plan_nightly(db_path, settings)
    results: list[dict[str, Any]] = []
    for i, item in enumerate(planned):
        if stop():
            break
        report(i, len(planned), f"nightly: {item.model} {item.task} on {item.dataset}", force=True)
        try:
            ids = submit_run(
                db_path,
                item.model,
                item.task,
                item.dataset,
                settings.eval.default_limit,
                settings,
                enqueue=False,
            )
        except HfopsError as exc:
            results.append({**item.to_dict(), "error": str(exc)})
            continue
        outcome = jobs.execute_job(db_path, ids.job_id, {"eval_run": eval_run_job})  # the run is its own job
        results.append(
            {
                **item.to_dict(),
                **ids.to_dict(),
                "recommendation": outcome.get("recommendation"),
                "error": outcome.get("error"),
            }
        )
    report(len(planned), len(planned), "nightly: done", force=True)
    return {
        "planned": len(planned),
        "runs": results,
        "skipped": [s.to_dict() for s in skipped],
        "skipped_by_reason": skipped_by_reason(skipped),
        "cancelled": len(results) < len(planned) and stop(),
    }


def skipped_by_reason(skipped: list[SkippedModel]) -> list[dict[str, Any]]:
    """The skipped models grouped by why, most common first: ``{"reason", "count", "models"}``.

    A reason names its model first ("org/name is not available locally ..."); the model is left out of the
    grouped reason, so one cause shared by hundreds of models is one entry.
    """
    groups: dict[str, list[str]] = {}
    for item in skipped:
        reason = item.reason.strip()
        if reason.startswith(item.model):  # "org/name is not available ..." -> "not available ..."
            rest = reason[len(item.model) :].lstrip(":").strip()
            reason = rest.removeprefix("is ").strip() or reason
        groups.setdefault(reason, []).append(item.model)
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return [{"reason": reason, "count": len(models), "models": models} for reason, models in ordered]


def nightly_job(ctx: JobContext) -> dict[str, Any]:
    """Worker job ``eval_nightly``: evaluate candidates without a current run, with the enqueuer's
    settings."""
    return nightly(ctx.db_path, ctx.settings, ctx.progress, ctx.cancelled)
