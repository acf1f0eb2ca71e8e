"""``hfops <verb>``: the command line, one verb per library operation.

Each feature has a module in this package with ``register(subparsers, common)``; ``common`` is a parent
parser carrying ``--db PATH``. A verb's function takes ``(args, settings)`` and returns an exit code.
Expected failures (:class:`hfops.errors.HfopsError`) print ``error: ...`` and exit 2, never a traceback.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import importlib.util
import json
import math
import re
import shutil
import sqlite3
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from hfops.config import Settings, load_settings
from hfops.errors import HfopsError
from hfops.progress import duration, time_left
from hfops.store import check_location, describe_db_error

# Feature modules that add verbs; a module that does not exist yet is skipped.
COMMAND_MODULES = (
    "hfops.cli.core",
    "hfops.cli.evals",
    "hfops.cli.refine",
    "hfops.cli.observability",
    "hfops.cli.publish",
    "hfops.cli.models",
)
# The module that adds each verb (tests/test_cli_output.py checks it against the modules): running a verb
# imports its module only; a verb missing here (or --help, a typo) builds the full parser.
VERB_MODULES = {
    **dict.fromkeys(
        ("sync", "candidates", "status", "history", "init", "worker", "console"), "hfops.cli.core"
    ),
    **dict.fromkeys(("eval", "score", "dataset"), "hfops.cli.evals"),
    **dict.fromkeys(("refine", "serve"), "hfops.cli.refine"),
    "metrics": "hfops.cli.observability",
    **dict.fromkeys(("publish", "space"), "hfops.cli.publish"),
    **dict.fromkeys(("models", "pull"), "hfops.cli.models"),
}
# Verbs that never reach the Hub or the Inference API (no ledger hooks: they also start fastest).
LOCAL_VERBS = frozenset({"candidates", "status", "history", "metrics", "score", "init", "console", "worker"})
# Verbs that may create the store's folder; every other verb needs it to exist.
CREATING_VERBS = frozenset({"init", "console"})


class Parser(argparse.ArgumentParser):
    """argparse with "did you mean" for a mistyped verb or choice."""

    def error(self, message: str) -> Any:
        found = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if found:
            choices = re.findall(r"'([^']*)'", found.group(2)) or [
                c.strip() for c in found.group(2).split(",")
            ]
            close = difflib.get_close_matches(found.group(1), choices, n=1, cutoff=0.6)
            if close:
                message += f"; did you mean '{close[0]}'?"
        return super().error(message)


def _verb_of(argv: Sequence[str]) -> str | None:
    """The verb ``argv`` names (after the global options), or None (none yet, or ``--help``)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    pre.add_argument("--db")
    pre.add_argument("verb", nargs="?")
    try:
        known, _ = pre.parse_known_args(list(argv))
    except SystemExit:  # e.g. --db without its value: the full parser says so
        return None
    before = list(argv)[: list(argv).index(known.verb)] if known.verb in argv else []
    return None if {"-h", "--help"} & set(before) else known.verb  # hfops -h VERB: the full help


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The argument parser: every available verb, or just ``verb`` and its siblings if its module is known."""
    parser = Parser(prog="hfops", description="Hugging Face free-tier operator console")
    parser.add_argument(
        "--config", metavar="PATH", help="TOML config file (default: ./hfops.toml if present)"
    )
    db_help = "SQLite store (default: [store] path, var/hfops.db)"
    parser.add_argument("--db", metavar="PATH", help=db_help)
    common = Parser(add_help=False)  # --db is accepted before or after the verb
    common.add_argument("--db", metavar="PATH", default=argparse.SUPPRESS, help=db_help)
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True, parser_class=Parser)
    modules = (VERB_MODULES[verb],) if verb in VERB_MODULES else COMMAND_MODULES
    for name in modules:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name).register(sub, common)
    return parser


def settings_for(args: argparse.Namespace, **overrides: Any) -> Settings:
    """Settings with precedence flag > config file > default (``--db`` overrides ``[store] path``)."""
    return load_settings(args.config, **{"store.path": getattr(args, "db", None), **overrides})


def print_json(value: Any) -> None:
    """Write ``value`` as indented JSON to stdout."""
    json.dump(value, sys.stdout, indent=2, default=str, ensure_ascii=False)
    sys.stdout.write("\n")


# Off a terminal (a pipe, a log file, CI) progress is plain lines: one per phase, else at most one
# every this many seconds.
PLAIN_PROGRESS_SECONDS = 10.0


class ProgressLine:
    """Progress of a long verb on stderr, called like a job's: ``(done, total, message, force=False)``.

    On a terminal: one line rewritten in place (cut to the terminal's width). Anywhere else: plain lines,
    never a carriage return: one when the phase changes (the message's wording or the total), one when
    ``force`` is set, otherwise at most one per ``every`` seconds; :meth:`close` prints the last state if it
    was held back. Each line carries the elapsed time and, once the phase has moved, an estimate of the time
    left in it. Nothing is printed before there is something to say (no message, no total).
    """

    def __init__(self, stream: TextIO | None = None, every: float = PLAIN_PROGRESS_SECONDS) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.every = every
        self.started = time.monotonic()
        self._printed_at = -math.inf
        self._shown = ""  # the last line printed, without its timing
        self._held = ""  # the last line seen, with its timing, when it was not printed
        self._phase: tuple[tuple[str, int | None], int, float] | None = (
            None  # (shape, done, time) at its start
        )

    def __call__(
        self, done: int, total: int | None = None, message: str | None = None, force: bool = False
    ) -> None:
        text = " ".join((message or "").split())
        if not text and not total:
            return
        now = time.monotonic()
        shape = (re.sub(r"\d+", "#", text), total)
        changed = self._phase is None or self._phase[0] != shape
        if changed:
            self._phase = (shape, done, now)
        core = f"{self.bar(done, total)} {text}".strip()
        line = f"{core} ({self._timing(done, total, now)})"
        if self.tty:
            width = max(20, shutil.get_terminal_size().columns - 1)
            self.stream.write(f"\r\033[K{line[:width]}")
            self.stream.flush()
            self._shown, self._held = core, ""
            return
        if force or changed or now - self._printed_at >= self.every:
            if core != self._shown or now - self._printed_at >= self.every:
                print(line, file=self.stream, flush=True)
                self._printed_at, self._shown, self._held = now, core, ""
                return
        self._held = line if core != self._shown else ""

    def _timing(self, done: int, total: int | None, now: float) -> str:
        timing = f"{duration(now - self.started, compact=True)} elapsed"
        if self._phase is None:
            return timing
        _, first, since = self._phase
        left = time_left(total, done, first, now - since)
        return timing if left is None else f"{timing}, ~{duration(left, compact=True)} left"

    @staticmethod
    def bar(done: int, total: int | None, width: int = 30) -> str:
        """``[####......] 3/10``; nothing without a total (the message says how far it got)."""
        if not total:
            return ""
        filled = int(width * min(done, total) / total)
        return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"

    def close(self) -> None:
        """End the progress display: the terminal's line is kept; a held-back plain line is printed."""
        if self.tty and self._shown:
            self.stream.write("\n")
        elif self._held:
            print(self._held, file=self.stream)
        self.stream.flush()
        self._held = ""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hfops`` console script."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_verb_of(arguments))
    args = parser.parse_args(arguments)
    try:
        settings = settings_for(args, **getattr(args, "setting_overrides", lambda a: {})(args))
        uses_store = getattr(args, "uses_store", True)
        if callable(uses_store) and uses_store(args) or uses_store is True:
            check_location(settings.store.path, create=args.verb in CREATING_VERBS)
        if args.verb not in LOCAL_VERBS:
            from hfops import ledger

            ledger.install(settings.store.path, settings)  # Hub/Inference responses into the store's ledger
        return int(args.func(args, settings) or 0)
    except HfopsError as exc:
        from hfops.net import one_line  # on failure only: the HTTP layer is no read-only verb's start-up cost

        print(f"error: {one_line(exc, 2000)}", file=sys.stderr)
        return 2
    except sqlite3.DatabaseError as exc:  # a store failure outside a write transaction
        from hfops.net import one_line

        print(
            f"error: {one_line(describe_db_error(getattr(args, 'db', None) or '(store)', exc), 2000)}",
            file=sys.stderr,
        )
        return 2
    except BrokenPipeError:  # output piped into e.g. head
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
