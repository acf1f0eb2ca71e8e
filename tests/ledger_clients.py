"""Child processes for the ledger tests: each installs the ledger on a shared store and talks to a stand-in
with the real huggingface_hub clients, then prints one JSON line with what it did.

- ``list``: ``HfApi(endpoint).list_models()`` to the end (a sync's listing);
- ``download``: ``hf_hub_download`` of ``--files`` files of one repo (HEAD + GET each);
- ``chat``: ``InferenceClient(base_url).chat_completion`` until ``--max`` requests or the allowance for
  ``--purpose`` refuses (``check_allowance``), then flushes the ledger.

Settings the config does not declare yet are set on the sections directly (``--reserve``, ``--no-pacing``,
``--monthly-requests``, ``--monthly-tokens``, ``--refine-reserve``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any


def main(argv: list[str]) -> int:
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.pop("HF_HUB_OFFLINE", None)
    parser = argparse.ArgumentParser()
    parser.add_argument("action", choices=("list", "download", "chat"))
    parser.add_argument("--db", required=True)
    parser.add_argument("--endpoint", default="http://127.0.0.1:9")
    parser.add_argument("--base-url", default="http://127.0.0.1:9")
    parser.add_argument("--reserve", type=float, default=0.05)
    parser.add_argument("--no-pacing", action="store_true")
    parser.add_argument("--files", type=int, default=5)
    parser.add_argument("--cache", default="")
    parser.add_argument("--purpose", default="eval")
    parser.add_argument("--max", type=int, default=20)
    parser.add_argument("--monthly-requests", type=int, default=0)
    parser.add_argument("--monthly-tokens", type=int, default=0)
    parser.add_argument("--refine-reserve", type=float, default=0.1)
    parser.add_argument("--run-id", default="")
    args = parser.parse_args(argv)

    from hfops import config, ledger
    from hfops.ledger import hub_window, inference_usage
    from hfops.store import get_db

    settings = config.load_settings(
        None, **{"hub.endpoint": args.endpoint, "inference.base_url": args.base_url, "store.path": args.db}
    )
    settings.hub.ratelimit_reserve = args.reserve  # type: ignore[attr-defined]
    settings.hub.ratelimit_pacing = not args.no_pacing  # type: ignore[attr-defined]
    settings.inference.monthly_requests = args.monthly_requests  # type: ignore[attr-defined]
    settings.inference.monthly_tokens = args.monthly_tokens  # type: ignore[attr-defined]
    settings.inference.refine_reserve = args.refine_reserve  # type: ignore[attr-defined]
    waits: list[str] = []
    ledger.install(args.db, settings, on_wait=lambda notice: waits.append(notice.message))
    token = config.api_key()
    out: dict[str, Any] = {"action": args.action, "pid": os.getpid()}
    run = hub_window.RunRef(args.action, args.run_id) if args.run_id else None

    if args.action == "list":
        from huggingface_hub import HfApi

        with hub_window.scope(run=run):
            ids = [m.id for m in HfApi(endpoint=args.endpoint, token=token).list_models()]
        out["ids"] = ids
    elif args.action == "download":
        from huggingface_hub import hf_hub_download

        contents = {}
        with hub_window.scope(run=run):
            for i in range(args.files):
                path = hf_hub_download(
                    "org/repo", f"file-{i}.txt", endpoint=args.endpoint, cache_dir=args.cache, token=token
                )
                with open(path, encoding="utf-8") as fh:
                    contents[f"file-{i}.txt"] = fh.read()
        out["files"] = contents
    else:
        from huggingface_hub import InferenceClient

        client = InferenceClient(base_url=args.base_url, token=token, timeout=10)
        sent, refused = 0, None
        for i in range(args.max):
            decision = inference_usage.check_allowance(get_db(args.db), settings, args.purpose)
            if not decision.allowed:
                refused = {"reason": decision.reason, "message": decision.message}
                break
            client.chat_completion(
                [{"role": "user", "content": " ".join(["word"] * (i + 1))}],
                model="org/chat-model",
                max_tokens=8,
            )
            sent += 1
        inference_usage.flush()
        out.update({"sent": sent, "refused": refused})
    out["waits"] = waits
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
