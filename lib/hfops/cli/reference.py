"""The command-line reference (docs/cli.md), generated from the parser so it never drifts from the code.

``python -m hfops.cli.reference > docs/cli.md`` rewrites it; a test checks the file matches :func:`render`.
"""

from __future__ import annotations

import argparse
import os
import sys

from hfops.cli import build_parser

HEADER = (
    "# Command-line reference\n"
    "\n"
    "Generated from the parser by `python -m hfops.cli.reference > docs/cli.md`; a test keeps it in step "
    "with the code.\n"
    "Every verb takes `--db PATH` (the store, default `[store] path`) and `hfops --config PATH VERB` reads "
    "a TOML file.\n"
    "Expected failures print one `error: ...` line and exit 2.\n"
)


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps no public handle on its sub-commands
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _help_of(parser: argparse.ArgumentParser, name: str) -> str:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                if choice.dest == name:
                    return choice.help or ""
    return ""


def verbs(parser: argparse.ArgumentParser | None = None, prefix: str = "") -> list[tuple[str, str, str]]:
    """``(full verb, one-line help, full --help text)`` for every verb and sub-verb, depth first."""
    parser = parser or build_parser()
    found: list[tuple[str, str, str]] = []
    for name, sub in _subparsers(parser).items():
        full = f"{prefix}{name}"
        found.append((full, _help_of(parser, name), sub.format_help()))
        found.extend(verbs(sub, f"{full} "))
    return found


def render() -> str:
    """The whole reference as Markdown."""
    os.environ["COLUMNS"] = "110"  # argparse wraps to the terminal: a fixed width keeps the file stable
    table = ["| verb | what it does |", "|---|---|"]
    sections = []
    for full, summary, text in verbs():
        table.append(f"| `hfops {full}` | {summary.replace('|', '/')} |")
        sections.append(f"## hfops {full}\n\n```text\n{text.rstrip()}\n```\n")
    return "\n".join([HEADER, *table, "", *sections])


if __name__ == "__main__":
    sys.stdout.write(render())
