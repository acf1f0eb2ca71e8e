"""Publishing verbs: ``hfops publish --run RUN_ID`` (eval report + model card to the Hub) and
``hfops space build OUT_DIR`` (the read-only demo as a Docker Space bundle)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hfops.cli import print_json
from hfops.config import Settings


def _print_publication(result: dict[str, Any]) -> None:
    where = (
        f"the private model repo {result['repo_id']}"
        if result["repo_id"]
        else "a repo you name with --repo ORG/NAME (or [publish] repo)"
    )
    if result["mode"] == "push":
        print(
            f"published eval run {result['run_id']} to {result['repo_id']} on {result['endpoint']} "
            f"(private, one commit)"
        )
        print(f"commit: {result['commit_url']}")
    else:
        print(f"dry run ({result['dry_run_reason']}): nothing was pushed.")
        print(f"would create (if missing) {where} on {result['endpoint']} and push one commit:")
        print(f"  message: {result['commit_message']}")
    for f in result["files"]:
        print(f"  {f['path']:<18} {f['bytes']:>8,} bytes  {f['what']}")
    print(f"files written to {result['out_dir']}")


def cmd_publish(args: argparse.Namespace, settings: Settings) -> int:
    """Build a run's report files and push them (or write them only, in a dry run)."""
    from hfops.publish import publish_run

    result = publish_run(
        settings.store.path,
        args.run,
        settings,
        repo=args.repo,
        dry_run=args.dry_run,
        out_dir=args.out,
        include_set_rows=args.include_set_rows,
    )
    if args.json:
        print_json(result)
    else:
        _print_publication(result)
    return 0


def cmd_space_build(args: argparse.Namespace, settings: Settings) -> int:
    """Assemble the Docker Space bundle in OUT_DIR."""
    from hfops.space import build_space

    def say(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    bundle = build_space(
        args.out_dir,
        settings,
        eval_limit=args.eval_limit,
        with_eval=not args.no_eval,
        force=args.force,
        progress=say,
    )
    if args.json:
        print_json({**bundle.to_dict(), "file_list": bundle.files})
        return 0
    db = bundle.db
    print(
        f"Space bundle in {bundle.out_dir}: {len(bundle.files)} files, README front matter valid "
        f"(sdk: docker, app_port: 8501)"
    )
    print(
        f"  store {db['path']}: {db['models']} models, {db['candidates']} candidates, "
        f"{len(db['eval_runs'])} eval runs" + (f" ({db['eval_skipped']})" if db.get("eval_skipped") else "")
    )
    print(f"  try it: cd {bundle.out_dir} && PYTHONPATH=lib python -m hfops.console_server run app.py")
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add ``publish`` and ``space build``."""
    p = sub.add_parser(
        "publish",
        parents=[common],
        help="publish an eval run's report and model card to a private Hub repo",
        description="Build the eval report (JSON + Markdown) and a model card with model-index results for a "
        "succeeded eval run, write them to --out, and push them in one commit to a private Hub repo "
        "when HUGGINGFACE_WRITE_TOKEN is set (otherwise, or with --dry-run, nothing is pushed).",
    )
    p.add_argument("--run", type=int, required=True, metavar="RUN_ID", help="the eval run to publish")
    p.add_argument("--repo", metavar="ORG/NAME", help="target model repo (default: [publish] repo)")
    p.add_argument(
        "--dry-run", action="store_true", help="write the files and say what would be pushed; push nothing"
    )
    p.add_argument(
        "--out", metavar="DIR", help="where to write the files (default: <store folder>/publish/run-<id>)"
    )
    p.add_argument(
        "--include-set-rows",
        action="store_true",
        help="a run on a custom eval set: publish the set's rows too (by default only its name, version "
        "and size)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_publish)

    p = sub.add_parser("space", help="the read-only demo as a Hugging Face Space")
    space_sub = p.add_subparsers(dest="space_verb", metavar="ACTION", required=True)
    b = space_sub.add_parser(
        "build",
        parents=[common],
        help="assemble a Docker Space bundle (app, data, prebuilt read-only store)",
        description="Assemble OUT_DIR as a Docker Space: README with validated front matter (sdk: docker, "
        "app_port: 8501), Dockerfile, requirements, app, pages, lib, data and a prebuilt store "
        "(embedded Hub snapshot + small MiniLM-vs-BM25 eval runs).",
    )
    b.add_argument("out_dir", metavar="OUT_DIR")
    b.add_argument(
        "--eval-limit", type=int, default=50, metavar="N", help="examples per prebuilt eval run (default 50)"
    )
    b.add_argument("--no-eval", action="store_true", help="no eval runs in the prebuilt store (faster)")
    b.add_argument("--force", action="store_true", help="replace OUT_DIR if it holds a previous bundle")
    b.add_argument("--json", action="store_true", help="machine-readable output")
    b.add_argument("--quiet", action="store_true", help="no progress lines")
    b.set_defaults(func=cmd_space_build)
