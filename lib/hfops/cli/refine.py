"""``hfops refine "QUERY" [--json] [--no-fallback]`` and ``hfops serve [--host H] [--port N]``."""

from __future__ import annotations

import argparse
import sys

from hfops.config import Settings

DEFAULT_PORT = 8765


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add the ``refine`` and ``serve`` verbs."""
    p = sub.add_parser(
        "refine",
        parents=[common],
        help="refine a query (local first, HF Inference fallback if configured)",
        description="Refine a search/QA query: clean-up, intent and up to 3 suggestions. "
        "Uses the HF Inference fallback only when HUGGINGFACE_API_KEY is set, within the [refine] budget "
        "and limits.",
    )
    p.add_argument("query", help="the raw query (1-2000 characters)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--no-fallback", action="store_true", help="local refiner only (bypass_reason: disabled)")
    p.set_defaults(func=cmd_refine)

    s = sub.add_parser(
        "serve",
        parents=[common],
        help="serve the refine HTTP API (POST /refine, GET /healthz, /docs)",
        description="Run the refinement HTTP API with uvicorn. OpenAPI at /openapi.json, docs at /docs.",
    )
    s.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    s.set_defaults(func=cmd_serve)


def format_result(result: dict) -> str:
    """A refine result as plain text lines."""
    lines = [
        f"refined:     {result['refined']}",
        f"intent:      {result['intent']}  (confidence {result['confidence']:.2f})",
    ]
    for i, suggestion in enumerate(result["suggestions"], 1):
        lines.append(f"suggestion {i}: {suggestion}")
    budget = "within" if result["within_budget"] else "OVER"
    lines.append(f"source:      {result['source']} ({result['model']})")
    lines.append(f"latency:     {result['latency_ms']:.0f} ms ({budget} the {result['budget_ms']} ms budget)")
    if result["bypass_reason"]:
        lines.append(f"fallback:    not used ({result['bypass_reason']})")
    return "\n".join(lines)


def cmd_refine(args: argparse.Namespace, settings: Settings) -> int:
    """Refine one query and print it."""
    from hfops.cli import print_json
    from hfops.refine import refine, validate_query, warm_up
    from hfops.refine.limits import limiter_state

    validate_query(args.query)  # a bad query fails before the model loads
    warm_up(settings)  # model load is process start-up, not part of the request's budget
    result = refine(args.query, settings, fallback_allowed=not args.no_fallback, caller="cli").to_dict()
    if args.json:
        print_json(result)
    else:
        print(format_result(result))
    if result["bypass_reason"] == "credits_exhausted" or (
        result["bypass_reason"] == "cooldown" and limiter_state(settings)["credits_exhausted"]
    ):
        print("warning: HF Inference credits are exhausted (402); the fallback is paused", file=sys.stderr)
    return 0


def serve(settings: Settings, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
    """Run the refine API with uvicorn until interrupted.

    This is ``hfops serve``; the load benchmark starts it too.
    """
    import uvicorn

    from hfops.api import create_app

    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the refine API until interrupted."""
    serve(settings, args.host, args.port)
    return 0
