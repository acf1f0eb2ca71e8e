"""Eval verbs: ``hfops eval`` (shadow runs, nightly, resume, show) and ``hfops score`` (score files)."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from hfops import jobs  # light: the queue imports huey only when a job is handed to it
from hfops.cli import ProgressLine, print_json
from hfops.config import Settings
from hfops.errors import DatasetError, EvalError, HfopsError, JobError, ScoreError
from hfops.evals.tasks import BACKEND_CHOICES, DATASET_NAMES, TASK_NAMES

if TYPE_CHECKING:
    from hfops.evals.custom import CustomSet
    from hfops.evals.records import EvalMetric
from hfops.store import get_db


class _DropJobFailures(logging.Filter):
    """The job runner's "job N failed" record (and traceback) of a job run here.

    Its outcome is printed after.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return False


CTRL_C_WAIT_SECONDS = 30.0  # how long Ctrl-C waits for the run's current batch before quitting anyway


def _run_job_with_progress(db_path: str, job_id: int, quiet: bool) -> dict[str, Any]:
    """Execute a job in this process (a thread) while printing its progress to stderr (:class:`ProgressLine`).

    Libraries are quiet at their source (:func:`hfops.evals.backends.base.quiet_libraries`); stderr is left
    alone, so a real problem still shows. The job runner's log record of a failed job is dropped: the run's
    stored error is printed with the outcome, without a traceback.
    """
    from hfops.evals.backends.base import quiet_libraries
    from hfops.progress import split_time_left
    from hfops.worker import execute_job

    quiet_libraries()
    outcome: dict[str, Any] = {}
    finished = threading.Event()  # Thread.join interrupted by Ctrl-C can return early later: the job says so

    def run() -> None:
        try:
            outcome.update(execute_job(db_path, job_id))
        finally:
            finished.set()

    worker = threading.Thread(target=run, daemon=True)
    progress = None if quiet else ProgressLine()
    job_log, drop = logging.getLogger("hfops.jobs"), _DropJobFailures()
    job_log.addFilter(drop)
    try:
        worker.start()
        try:
            done = False
            while not done:  # the job's state shown every 0.3 s, and once more when it has ended
                done = finished.wait(0.3)
                job = None if progress is None else jobs.get_job(get_db(db_path), job_id)
                if progress is not None and job is not None:  # the line estimates the time left itself
                    progress(job.done or 0, job.total, split_time_left(job.message)[0])
        except KeyboardInterrupt:  # Ctrl-C: the run stops at its next batch, cancelled and resumable
            try:
                jobs.cancel(get_db(db_path), job_id)
            except JobError:  # it finished meanwhile
                pass
            if progress is not None:
                progress.close()
                progress = None
            print("stopping at the next batch (Ctrl-C again to quit now)", file=sys.stderr)
            finished.wait(CTRL_C_WAIT_SECONDS)
            raise
    finally:
        job_log.removeFilter(drop)
        if progress is not None:
            progress.close()
    return outcome


def _print_run(db_path: str, run_id: int) -> None:
    from hfops.evals.queries import get_run

    run = get_run(get_db(db_path), run_id)
    if run is None:
        return
    print(
        f"run {run.id} {run.status}: {run.model_id} vs {run.production_id} - {run.task} on "
        f"{run.dataset} ({run.dataset_version}), {run.done}/{run.total} examples, "
        f"errors {run.candidate_errors}/{run.production_errors}"
    )
    for side, source in (("candidate", run.candidate_source), ("production", run.production_source)):
        if source:
            quant = f" {source['quantization']}" if source.get("quantization") else ""
            print(
                f"  {side}: {source['model_id']} from {source['source']} ({source['format']}{quant}) "
                f"revision {source['revision']}, {len(source.get('files') or {})} files hashed"
            )
    if run.metrics:
        print(f"  {'metric':<14} {'candidate':>22} {'production':>22} {'delta':>24}")
        by_metric: dict[str, dict[str, EvalMetric]] = {}
        for m in run.metrics:
            by_metric.setdefault(m.metric, {})[m.system] = m

        def cell(m: EvalMetric | None, sign: str = "") -> str:
            if m is None or m.value is None or m.ci_low is None or m.ci_high is None:
                return "-" if m is None or m.value is None else f"{m.value:{sign}.3f}"
            return f"{m.value:{sign}.3f} [{m.ci_low:{sign}.3f},{m.ci_high:{sign}.3f}]"

        for metric, systems in by_metric.items():
            print(
                f"  {metric:<14} {cell(systems.get('candidate')):>22} {cell(systems.get('production')):>22} "
                f"{cell(systems.get('delta'), '+'):>24}"
            )
    if run.recommendation:
        print(f"recommendation: {run.recommendation} - {run.recommendation_reason}")
        if run.status_after:
            print(f"registry status: {run.status_before} -> {run.status_after}")
    if run.error:
        print(f"error: {run.error}")
    elif run.status == "cancelled" and run.message:
        print(run.message)
    print(f"cache: {run.cache_hits} hits, {run.cache_misses} misses, {run.model_calls} model calls")


NIGHTLY_NAMES_SHOWN = 3  # models named per skip reason (--json lists every one)


def _print_nightly(result: dict[str, Any]) -> None:
    """Each run, then a summary: runs by outcome and one line per skip reason (count, reason, a few names)."""
    for item in result["runs"]:
        status = f"error: {item['error']}" if item.get("error") else item.get("recommendation")
        print(f"  run {item.get('run_id', '-')}: {item['model']} {item['task']}/{item['dataset']}: {status}")
    runs = result["runs"]
    failed = sum(1 for item in runs if item.get("error"))
    ran = (
        f"{len(runs)} of {result['planned']} runs, cancelled before the rest"
        if result.get("cancelled")
        else f"{len(runs)} runs"
    )
    skipped = result["skipped"]
    print(
        f"nightly: {ran} ({len(runs) - failed} finished, {failed} failed); {len(skipped)} models skipped"
        + (" (--json lists every one):" if skipped else "")
    )
    for group in result.get("skipped_by_reason") or []:
        names = group["models"][:NIGHTLY_NAMES_SHOWN]
        more = group["count"] - len(names)
        print(
            f"  {group['count']} skipped: {group['reason']} - {', '.join(names)}"
            + (f" and {more} more" if more else "")
        )


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    """Run (or enqueue) a shadow evaluation, the nightly batch, or resume/show a run."""
    from hfops.evals import queries, runs

    db_path = settings.store.path
    db = get_db(db_path)
    if args.show is not None:
        run = queries.get_run(db, args.show)
        if run is None:
            raise EvalError(f"no eval run {args.show}")
        print_json(run.to_dict()) if args.json else _print_run(db_path, args.show)
        return 0
    if args.list:
        found = queries.list_runs(db, limit=args.list)
        if args.json:
            print_json([r.to_dict() for r in found])
        for r in [] if args.json else found:
            score = (
                ""
                if r.candidate_score is None or r.production_score is None
                else (f" {r.primary_metric} {r.candidate_score:.3f} vs {r.production_score:.3f}")
            )
            print(
                f"{r.id:>4} {r.status:<9} {r.model_id} vs {r.production_id} {r.task}/{r.dataset} "
                f"{r.done}/{r.total or '?'}{score} {r.recommendation or ''}"
            )
        return 0
    if args.nightly:
        if args.enqueue:
            job_id = jobs.enqueue(db_path, "eval_nightly", {}, settings)
            print(f"nightly evaluation queued as job {job_id} (the worker runs it: hfops worker)")
            return 0
        job_id = jobs.create_job(db, "eval_nightly", {}, settings)
        result = _run_job_with_progress(db_path, job_id, args.quiet)
        if args.json:
            print_json(result)
            return 0 if "error" not in result else 1
        if "error" in result:
            print(f"error: {result['error']}", file=sys.stderr)
            return 1
        _print_nightly(result)
        return 0
    if args.resume is not None:
        run = queries.get_run(db, args.resume)
        if run is None or run.job_id is None:
            raise EvalError(f"no eval run {args.resume} to resume")
        run_id, job_id = run.id, run.job_id
        job = jobs.get_job(db, job_id)
        if job is not None and job.status == "running" and job.cancel_requested_at:
            raise EvalError(f"run {run_id} is still stopping (cancelled while running); try again shortly")
        if job is not None and job.status == "cancelled":
            if args.enqueue:
                jobs.resume(db_path, job_id)
                print(f"eval run {run_id} queued again as job {job_id} (the worker resumes it: hfops worker)")
                return 0
            jobs.reopen(db, job_id)  # resumed here, where it stopped
    else:
        missing = [
            flag
            for flag, value in (("--model", args.model), ("--task", args.task), ("--dataset", args.dataset))
            if not value
        ]
        if missing:
            raise EvalError(
                f"{', '.join(missing)} required (or use --nightly, --resume RUN, --show RUN, --list)"
            )
        limit = settings.eval.default_limit if args.limit is None else args.limit
        ids = runs.submit_run(
            db_path,
            args.model,
            args.task,
            args.dataset,
            limit or None,
            settings,
            backend=args.backend,
            production=args.production,
            enqueue=args.enqueue,
            config_path=args.config,
        )
        run_id, job_id = ids.run_id, ids.job_id
        if args.enqueue:
            if args.json:
                print_json(ids.to_dict())
            else:
                print(f"eval run {run_id} queued as job {job_id} (the worker runs it: hfops worker)")
            return 0
    try:
        outcome = _run_job_with_progress(db_path, job_id, args.quiet)
    except KeyboardInterrupt:
        print(
            f"interrupted; resume with: hfops eval --resume {run_id}", file=sys.stderr
        )  # progress ended its line
        return 130  # the shell's code for Ctrl-C (main() would add a second "interrupted" line)
    if args.json:
        print_json(queries.summary(db, run_id).to_dict())
    else:
        _print_run(db_path, run_id)
    if outcome.get("status") != "succeeded":
        print(f"run {run_id} did not finish; resume it with: hfops eval --resume {run_id}", file=sys.stderr)
        return 1
    return 0


def cmd_score(args: argparse.Namespace, settings: Settings) -> int:
    """Score prediction files against references without running a model."""
    from hfops.evals.scoring import score_files

    started = time.perf_counter()
    try:
        result = score_files(args.task, args.predictions, args.references)
    except (ValueError, TypeError, KeyError, RecursionError, UnicodeError) as exc:
        if isinstance(exc, HfopsError):
            raise
        # the readers check every line first; this is the last guard against a metric library's surprise
        raise ScoreError(
            f"{args.predictions} vs {args.references}: could not score: {type(exc).__name__}: {exc}"
        ) from None
    if args.json:
        print_json(result)
        return 0
    for key, value in result.items():
        print(f"{key:<14} {value:.4f}" if isinstance(value, float) else f"{key:<14} {value}")
    print(f"({time.perf_counter() - started:.2f}s)", file=sys.stderr)
    return 0


def _describe_set(found: CustomSet) -> str:
    extra = f", {found.documents} documents" if found.documents else ""
    extra += f", {found.unanswerable} unanswerable" if found.unanswerable else ""
    return (
        f"{found.name}: {found.task}, {found.examples} examples{extra}, version {found.version}, "
        f"from {found.location}"
    )


def cmd_dataset(args: argparse.Namespace, settings: Settings) -> int:
    """Add, list, show or remove custom eval sets."""
    from hfops.evals import custom

    db = get_db(settings.store.path)
    if args.action == "add":
        if bool(args.file) == bool(args.hub):
            raise DatasetError("give exactly one of --file PATH or --hub ORG/NAME")
        if args.file:
            result = custom.add_from_file(
                db, args.name, args.task, args.file, args.map, args.corpus, args.limit, args.replace
            )
        else:
            result = custom.add_from_hub(
                db,
                settings,
                args.name,
                args.task,
                args.hub,
                args.hub_config,
                args.split,
                args.map,
                args.corpus,
                args.limit,
                args.replace,
            )
        if args.json:
            print_json(result.to_dict())
        else:
            change = f" (was {result.previous_version})" if result.previous_version else ""
            print(f"{result.status}{change}: {_describe_set(result.set)}")
            if result.skipped:
                print(
                    f"  left out {len(result.skipped)} row(s) without a relevant document: "
                    f"{', '.join(result.skipped[:5])}{' ...' if len(result.skipped) > 5 else ''}"
                )
        return 0
    if args.action == "list":
        found = custom.list_sets(db, args.task)
        if args.json:
            print_json([s.to_dict() for s in found])
        elif not found:
            print(
                "no custom eval sets "
                "(add one: hfops dataset add NAME --task qa|retrieval --file PATH --map ...)"
            )
        for item in [] if args.json else found:
            print(_describe_set(item))
        return 0
    found_set = custom.get_set(db, args.name)
    if args.action == "show":
        if args.json:
            print_json(found_set.to_dict())
        else:
            print(_describe_set(found_set))
            print(f"  mapping: {', '.join(f'{k}={v}' for k, v in found_set.mapping.items())}")
            print(f"  evaluate: hfops eval --task {found_set.task} --dataset {found_set.name} --model ...")
        return 0
    removed = custom.remove_set(db, args.name)
    print(
        f"removed {removed.name} ({removed.examples} examples, version {removed.version}); runs on it keep "
        "their results"
    )
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add ``eval``, ``score`` and ``dataset``."""
    p = sub.add_parser(
        "eval",
        parents=[common],
        help="shadow-evaluate a candidate against production",
        description="Shadow evaluation: the candidate and the task's production model (or baseline) "
        "on the same examples. Runs in this process with a progress line unless "
        "--enqueue hands it to the worker.",
    )
    p.add_argument(
        "--model", metavar="ID", help="candidate model id (Hub id, or baseline:bm25 / baseline:lexical)"
    )
    p.add_argument("--task", choices=TASK_NAMES)
    p.add_argument(
        "--dataset",
        metavar="NAME",
        help=f"{' or '.join(DATASET_NAMES)}, or a custom set (hfops dataset list)",
    )
    p.add_argument(
        "--limit",
        type=int,
        metavar="N",
        help="evaluate a deterministic sample of N examples (default: [eval] default_limit; 0 = all)",
    )
    p.add_argument(
        "--backend",
        choices=BACKEND_CHOICES,
        default="auto",
        help="auto (local first, then the HF Inference API when HUGGINGFACE_API_KEY is set), local, api",
    )
    p.add_argument(
        "--production", metavar="ID", help="compare with this model instead of the task's production model"
    )
    p.add_argument(
        "--enqueue", action="store_true", help="hand the run to the worker instead of running it here"
    )
    p.add_argument(
        "--nightly",
        action="store_true",
        help="evaluate every candidate/shadow model without a run on the current dataset version",
    )
    p.add_argument(
        "--resume",
        type=int,
        metavar="RUN",
        help="resume an interrupted or failed run (a cancelled one with --enqueue, in the worker)",
    )
    p.add_argument("--show", type=int, metavar="RUN", help="print one run's metrics and recommendation")
    p.add_argument("--list", type=int, nargs="?", const=20, metavar="N", help="list the N most recent runs")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser(
        "score",
        parents=[common],
        help="score prediction files (no model runs)",
        description="qa: predictions {id, prediction_text} vs references {id, answers: {text, "
        "answer_start}}; retrieval: {id, ranked: [...]} vs {id, relevant: [...]}.",
    )
    p.add_argument("--task", choices=TASK_NAMES, required=True)
    p.add_argument("--predictions", metavar="P.jsonl", required=True)
    p.add_argument("--references", metavar="R.jsonl", required=True)
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    # score reads two files and no store: a store path (and the check that its folder exists) does not apply
    p.set_defaults(func=cmd_score, setting_overrides=lambda a: {"store.path": ":memory:"})

    d = sub.add_parser(
        "dataset",
        parents=[common],
        help="custom eval sets: add, list, show, remove",
        description="Your own eval sets from a file (JSON Lines, JSON, CSV, parquet) or a Hub dataset "
        "(streamed), versioned by content hash, evaluable with hfops eval --dataset NAME.",
    )
    actions = d.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", parents=[common], help="read, map, validate and store a set")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--task", choices=TASK_NAMES, required=True)
    add.add_argument("--file", metavar="PATH", help="a .jsonl, .json, .csv or .parquet file")
    add.add_argument("--hub", metavar="ORG/NAME", help="a Hub dataset (streamed through datasets)")
    add.add_argument("--config", dest="hub_config", metavar="C", help="the Hub dataset's config")
    add.add_argument(
        "--split", default="validation", metavar="S", help="the Hub dataset's split (default validation)"
    )
    add.add_argument(
        "--map",
        metavar="FIELD=COLUMN,...",
        help="qa: id, question, context, answers; retrieval: id, query, relevant, passages, selected, "
        "doc_id, doc_text (dotted columns reach nested values; unmapped fields use the same-named "
        "column)",
    )
    add.add_argument(
        "--corpus", metavar="PATH", help="retrieval: the documents (mapped by doc_id and doc_text)"
    )
    add.add_argument(
        "--limit", type=int, metavar="N", help="the first N rows (Hub default: [eval] hub_max_rows)"
    )
    add.add_argument("--replace", action="store_true", help="store changed rows as the new version of NAME")
    add.add_argument("--json", action="store_true")
    listing = actions.add_parser("list", parents=[common], help="the stored sets")
    listing.add_argument("--task", choices=TASK_NAMES)
    listing.add_argument("--json", action="store_true")
    show = actions.add_parser("show", parents=[common], help="one set's task, size, version and mapping")
    show.add_argument("name", metavar="NAME")
    show.add_argument("--json", action="store_true")
    remove = actions.add_parser(
        "remove", parents=[common], help="delete a set (runs on it keep their results)"
    )
    remove.add_argument("name", metavar="NAME")
    d.set_defaults(func=cmd_dataset)
