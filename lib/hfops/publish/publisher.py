"""Publishing a run: build its files, write them locally, push them (not in a dry run), record the attempt;
and the same as a worker job (the console's Publish button)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlite_utils

from hfops import jobs, net
from hfops.config import Settings
from hfops.errors import PublishError
from hfops.publish import hub, records, report
from hfops.store import dumps, get_db, utcnow


def build_report(db: sqlite_utils.Database, run_id: int) -> dict[str, Any]:
    """The eval report of the stored run ``run_id`` (:class:`PublishError` unless it succeeded)."""
    from hfops.evals import custom, runs

    run = runs.get_run(db, run_id)
    report.check_publishable(run, run_id)
    return report.build_report(run, utcnow(), custom.report_facts(db, run))


def _set_rows_files(db: sqlite_utils.Database, run_id: int) -> list[report.PublishFile]:
    from hfops.errors import DatasetError
    from hfops.evals import custom, runs

    run = runs.get_run(db, run_id)
    try:
        set_rows = custom.published_rows(db, run)
    except DatasetError as exc:
        raise PublishError(str(exc)) from None
    return report.set_rows_files(set_rows, run["dataset"] if run else "")


def default_out_dir(settings: Settings, run_id: int) -> Path:
    """``[publish] out_dir`` or ``<store folder>/publish``, then ``run-<id>``."""
    base = (
        Path(settings.publish.out_dir)
        if settings.publish.out_dir
        else Path(settings.store.path).parent / "publish"
    )
    return base / f"run-{run_id}"


def _write_files(folder: Path, files: list[report.PublishFile]) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for f in files:
            (folder / f.path).write_bytes(f.content)
    except OSError as exc:
        raise PublishError(f"cannot write the report files to {folder}: {exc.strerror or exc}") from None


def publish_run(
    db_path: str,
    run_id: int,
    settings: Settings,
    repo: str | None = None,
    dry_run: bool = False,
    out_dir: str | Path | None = None,
    include_set_rows: bool = False,
) -> dict[str, Any]:
    """Build the report files of ``run_id``, write them to ``out_dir`` and push them unless this is a dry run.

    A dry run happens when ``dry_run`` is set or ``HUGGINGFACE_WRITE_TOKEN`` is not; it needs no repo.
    A run on a custom set publishes the set's name, version and size, never its rows unless
    ``include_set_rows`` asks (then the rows of the version the run used, as JSON Lines).
    Returns what was (or would be) pushed where; every attempt is recorded in ``eval_publications``.
    """
    db = get_db(db_path)
    token = hub.write_token_in_use()
    repo_id = (repo or settings.publish.repo or "").strip()
    reason = "--dry-run" if dry_run else (None if token else "HUGGINGFACE_WRITE_TOKEN is not set")
    if repo_id:
        repo_id = hub.check_repo_id(repo_id)
    elif reason is None:
        raise PublishError("no target repo: pass --repo ORG/NAME or set [publish] repo")
    built = build_report(db, run_id)
    files = report.report_files(built)
    if include_set_rows:
        files += _set_rows_files(db, run_id)
    folder = Path(out_dir) if out_dir else default_out_dir(settings, run_id)
    _write_files(folder, files)
    endpoint = settings.hub.endpoint.rstrip("/")
    message = report.commit_message(built)
    outcome: dict[str, Any] = {
        "run_id": run_id,
        "mode": "dry-run" if reason else "push",
        "dry_run_reason": reason,
        "repo_id": repo_id,
        "endpoint": endpoint,
        "private": True,
        "commit_message": message,
        "files": [f.describe() for f in files],
        "out_dir": str(folder),
        "commit_url": None,
        "commit_oid": None,
    }
    publication_id = records.record_attempt(
        db,
        run_id=run_id,
        repo_id=repo_id,
        endpoint=endpoint,
        mode=outcome["mode"],
        dry_run_reason=reason,
        status="succeeded" if reason else "running",
        files=dumps(outcome["files"]),
        out_dir=str(folder),
        created_at=utcnow(),
        finished_at=utcnow() if reason else None,
    )
    outcome["publication_id"] = publication_id
    if reason:
        return outcome
    try:
        commit_url, oid = hub.push_files(
            endpoint, token or "", repo_id, files, message, report.commit_description(built)
        )
    except PublishError as exc:
        records.finish_attempt(db, publication_id, status="failed", error=str(exc))
        raise
    except Exception as exc:  # unexpected: recorded as failed (never left "running"), then raised as is
        records.finish_attempt(
            db, publication_id, status="failed", error=net.scrub(f"{type(exc).__name__} while pushing", token)
        )
        raise
    records.finish_attempt(db, publication_id, status="succeeded", commit_url=commit_url, commit_oid=oid)
    outcome.update(commit_url=commit_url, commit_oid=oid)
    return outcome


def enqueue_publish(
    db_path: str,
    run_id: int,
    repo: str | None = None,
    dry_run: bool = False,
    settings: Settings | None = None,
    include_set_rows: bool = False,
) -> int:
    """Queue a ``publish`` job with ``settings`` (checks the run and the repo id first); the job id."""
    from hfops.evals import runs

    report.check_publishable(runs.get_run(get_db(db_path), run_id), run_id)
    if repo and repo.strip():
        repo = hub.check_repo_id(repo)
    params = {
        "run_id": run_id,
        "repo": repo or None,
        "dry_run": dry_run,
        "include_set_rows": include_set_rows,
    }
    return jobs.enqueue(db_path, records.JOB_KIND, params, settings)


def publish_job(ctx: jobs.JobContext) -> dict[str, Any]:
    """Worker job ``{"run_id", "repo", "dry_run", "include_set_rows"}``: :func:`publish_run` with the
    enqueuer's settings."""
    if "run_id" not in ctx.params:
        raise PublishError("a publish job needs a run_id")
    run_id = int(ctx.params["run_id"])
    ctx.progress(0, 1, f"publishing eval run {run_id}", force=True)
    result = publish_run(
        ctx.db_path,
        run_id,
        ctx.settings,
        ctx.params.get("repo"),
        bool(ctx.params.get("dry_run")),
        include_set_rows=bool(ctx.params.get("include_set_rows")),
    )
    ctx.progress(1, 1, "published" if result["mode"] == "push" else "dry run: files written", force=True)
    return result
