"""Core verbs: sync, candidates, status, jobs, worker, console."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

from hfops import console_server, registry, search_index
from hfops.cli import ProgressLine, print_json
from hfops.config import Settings
from hfops.errors import HfopsError
from hfops.paths import REPO_ROOT
from hfops.store import get_db

SYNC_SUMMARY_FIELDS = (
    "id", "source", "mode", "status", "pages", "seen", "inserted", "updated", "unchanged", "skipped",
    "skip_reasons", "matched", "new_candidates", "flagged", "retries", "retry_wait_seconds", "hub_waits",
    "hub_wait_seconds", "message",
)  # fmt: skip


def cmd_sync(args: argparse.Namespace, settings: Settings) -> int:
    """Sync the Hub (or a snapshot file) into the registry."""
    from hfops import discovery

    report = None if args.quiet else ProgressLine()  # plain lines when stderr is not a terminal
    try:
        if args.snapshot:
            run = discovery.sync_snapshot(settings.store.path, args.snapshot, settings, report)
        else:
            run = discovery.sync_hub(settings.store.path, settings, report, mode=args.mode)
    finally:
        if report:
            report.close()
    summary = {k: getattr(run, k) for k in SYNC_SUMMARY_FIELDS}
    if args.json:
        print_json(summary)
    else:
        print(
            f"sync {summary['id']} ({summary['mode']}) {summary['status']}: {summary['seen']} records, "
            f"{summary['inserted']} new, "
            f"{summary['updated']} updated, {summary['unchanged']} unchanged, {summary['skipped']} skipped, "
            f"{summary['matched']} match the rule ({summary['new_candidates']} new candidates, "
            f"{summary['flagged']} flagged)"
        )
        for reason, count in (summary["skip_reasons"] or {}).items():
            print(f"  skipped {count}: {reason}")
    return 0


def cmd_candidates(args: argparse.Namespace, settings: Settings) -> int:
    """List candidates (JSON with --json)."""
    db = get_db(settings.store.path)
    flt = registry.CandidateFilter(statuses=[args.status] if args.status else [])
    if args.status and args.status not in registry.STATUSES:
        raise HfopsError(f"unknown status {args.status!r}; choose one of {', '.join(registry.STATUSES)}")
    found, total = registry.list_candidates(db, flt, sort=args.sort, page=1, page_size=args.limit)
    keys = (
        "model_id",
        "pipeline_tag",
        "license",
        "library",
        "downloads",
        "likes",
        "safetensors",
        "quantization",
        "score",
        "status",
    )
    out = [
        {k: (r.quantization_methods if k == "quantization" else getattr(r, k)) for k in keys} for r in found
    ]
    from hfops.evals import runnable

    facts = runnable.facts(db, [(c.model_id, c.pipeline_tag) for c in found], settings)
    from hfops import reference

    refs = reference.references_for_models(db, [str(r["model_id"]) for r in out])
    for r in out:  # how each can be evaluated here (no network: local state or the stored check)
        r["runnable"] = runnable.runnable_field(facts[str(r["model_id"])])
        published = refs.get(str(r["model_id"]))  # published MTEB scores, never mixed with ours
        r["reference"] = published.as_json() if published is not None else None
    if args.json:
        print_json(out)
        return 0
    print(f"{total} candidates" + (f" (showing {len(out)})" if total > len(out) else ""))
    for r in out:
        quant = ",".join(r["quantization"]) or "-"
        print(
            f"{r['score']:.3f}  {r['status']:<10} {r['pipeline_tag'] or '-':<20} {r['license'] or '-':<14} "
            f"{quant:<10} {r['model_id']}"
        )
    return 0


def cmd_status_set(args: argparse.Namespace, settings: Settings) -> int:
    """Change a candidate's status with a reason (audited)."""
    db = get_db(settings.store.path)
    result = registry.set_status(
        db, args.model_id, args.status, args.reason, actor=args.actor, evidence=args.evidence
    )
    print(f"{result.model_id}: {result.from_status} -> {result.to_status}")
    for demoted in result.demoted:
        print(f"{demoted}: promoted -> shadow (replaced in production)")
    return 0


def cmd_status_show(args: argparse.Namespace, settings: Settings) -> int:
    """Counts by status and the last sync run."""
    from hfops import discovery

    db = get_db(settings.store.path)
    last = discovery.last_sync_run(db)
    counts = registry.counts_by_status(db)
    if args.json:
        print_json(
            {
                "store": str(settings.store.path),
                "counts": counts,
                "last_sync": last.to_dict() if last else None,
            }
        )
    else:
        print(f"store: {settings.store.path}")
        for status, n in counts.items():
            print(f"  {status:<10} {n}")
        print(f"last sync: {last.status} {last.started_at} ({last.message})" if last else "last sync: never")
    return 0


def cmd_history(args: argparse.Namespace, settings: Settings) -> int:
    """The audit trail of one model."""
    db = get_db(settings.store.path)
    if registry.get_model(db, args.model_id) is None:
        raise HfopsError(f"no model {args.model_id!r} in the registry")
    history = registry.status_history(db, args.model_id)
    if args.json:
        print_json([h.to_dict() for h in history])
    else:
        for h in history:
            print(
                f"{h.at}  {h.from_status or '-'} -> {h.to_status}  by {h.actor}: {h.reason}"
                + (f" [{h.evidence}]" if h.evidence else "")
            )
    return 0


def cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    """Create the store and load the embedded default on first start."""
    from hfops import discovery

    run = discovery.ensure_embedded_default(settings.store.path, settings)
    search_index.catch_up(settings.store.path)  # a store migrated to 0018 gets its search index now
    if run:
        print(f"loaded the embedded default: {run.seen} records, {run.matched} candidates")
    else:
        print(f"store ready: {settings.store.path}")
    if getattr(args, "no_starter_runs", False) or getattr(args, "demo", False):
        return 0
    from hfops.evals import starter

    if settings.eval.starter_runs and starter.is_fresh(settings.store.path):
        for result in starter.queue_starter_runs(settings.store.path, settings):
            if result.queued:
                print(f"starter run {result.run_id} queued ({result.name}; the worker runs it)")
            else:
                print(f"starter {result.name} skipped: {result.note}")
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    """Run the job worker in the foreground (Ctrl-C stops it): the store owner, or a compute worker."""
    import logging

    from hfops.worker import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    where = "the store's queue"
    if settings.queue.backend == "redis":
        from hfops.remote.broker import redacted

        where = f"queue {redacted(settings.queue.url)}"
    if args.role == "compute":  # a compute worker has no store: --db and [store] are not used
        print(f"compute worker on {where}", file=sys.stderr)
    else:
        get_db(settings.store.path)
        print(f"worker on {settings.store.path} (role {args.role}, {where})", file=sys.stderr)
    run_worker(settings.store.path, settings, workers=args.workers, role=args.role)
    return 0


def _worker_overrides(args: argparse.Namespace) -> dict[str, object]:
    overrides: dict[str, object] = {}
    if args.queue:
        overrides.update({"queue.backend": "redis", "queue.url": args.queue})
    if args.role == "compute":
        overrides["store.path"] = ""  # no store folder is checked or opened
    return overrides


# How long the console waits for its worker and Streamlit after Ctrl-C: running jobs stop at their next batch.
CHILD_STOP_SECONDS = 20


def cmd_console(args: argparse.Namespace, settings: Settings) -> int:
    """Load the embedded default if needed, start the worker and the Streamlit console; Ctrl-C stops both."""
    cmd_init(args, settings)
    env = dict(os.environ, HFOPS_DB=os.path.abspath(settings.store.path))
    if settings.source_file:
        env["HFOPS_CONFIG"] = os.path.abspath(settings.source_file)
    if args.demo:
        env["HFOPS_DEMO"] = "1"
    hfops_cmd = [sys.executable, "-m", "hfops.cli"]
    if settings.source_file:
        hfops_cmd += ["--config", env["HFOPS_CONFIG"]]
    hfops_cmd += ["worker", "--db", env["HFOPS_DB"]]
    children = []
    if not args.demo:
        children.append(subprocess.Popen(hfops_cmd, env=env))
    children.append(
        subprocess.Popen(
            console_server.command(REPO_ROOT / "app.py", port=args.port, address=args.host),
            env=env,
            cwd=str(REPO_ROOT),
        )
    )
    print(
        f"console on http://{args.host}:{args.port} (Ctrl-C stops the console and the worker)",
        file=sys.stderr,
    )

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        while all(c.poll() is None for c in children):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGINT)
        for child in children:
            try:
                child.wait(timeout=CHILD_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()  # reaped: no process is left behind
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add the core verbs."""
    p = sub.add_parser("sync", parents=[common], help="sync Hub models into the registry")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--endpoint", metavar="URL", help="Hub endpoint (default: [hub] endpoint)")
    src.add_argument("--snapshot", metavar="FILE", help="a JSON / JSON Lines file of API records")
    p.add_argument(
        "--mode",
        choices=("auto", "full", "incremental"),
        default="auto",
        help="Hub passes: full, incremental (changed since the last pass), or auto (default: "
        "incremental while the last full pass is younger than [hub] full_sync_hours)",
    )
    p.add_argument("--json", action="store_true", help="print the sync run as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=cmd_sync, setting_overrides=lambda a: {"hub.endpoint": a.endpoint})

    p = sub.add_parser("candidates", parents=[common], help="list candidates")
    p.add_argument("--status", help=f"one of {', '.join(registry.STATUSES)}")
    p.add_argument("--sort", default="score", choices=sorted(registry.SORT_KEYS))
    p.add_argument("--limit", type=int, default=1000, help="at most this many rows (default 1000)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_candidates)

    p = sub.add_parser("status", help="candidate status: set or show")
    status_sub = p.add_subparsers(dest="status_verb", metavar="ACTION", required=True)
    q = status_sub.add_parser("set", parents=[common], help="change a candidate's status (audited)")
    q.add_argument("model_id")
    q.add_argument("status", choices=registry.STATUSES)
    q.add_argument("--reason", required=True)
    q.add_argument("--actor", default=os.environ.get("USER") or "operator")
    q.add_argument(
        "--evidence",
        help=f"what the change rests on, checked to exist: {registry.EVIDENCE_FORMS}",
    )
    q.set_defaults(func=cmd_status_set)
    q = status_sub.add_parser("show", parents=[common], help="counts by status and the last sync")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_status_show)

    p = sub.add_parser("history", parents=[common], help="the audit trail of one model")
    p.add_argument("model_id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_history)

    p = sub.add_parser("init", parents=[common], help="create the store; load the embedded default if empty")
    p.add_argument(
        "--no-starter-runs",
        action="store_true",
        help="do not queue the starter shadow runs on a fresh store ([eval] starter_runs)",
    )
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("worker", parents=[common], help="run the job worker (huey) in the foreground")
    p.add_argument("--workers", type=int, default=1, help="tasks run at once (threads)")
    p.add_argument("--queue", metavar="URL", help="the Redis queue, redis://HOST:6379/0 (default: [queue])")
    p.add_argument(
        "--role",
        choices=("all", "writer", "compute"),
        default="all",
        help="all: the single-machine worker (default); writer: owns the store, computes no eval "
        "batch; compute: eval batches only, no store (needs the Redis queue)",
    )
    p.set_defaults(func=cmd_worker, setting_overrides=_worker_overrides)

    p = sub.add_parser("console", parents=[common], help="start the worker and the Streamlit console")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--demo", action="store_true", help="read-only demo mode (no worker, no write actions)")
    p.add_argument("--no-starter-runs", action="store_true", help="do not queue the starter shadow runs")
    p.set_defaults(func=cmd_console)
