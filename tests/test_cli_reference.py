"""docs/cli.md is the generated command-line reference: it matches the parser and documents every verb."""

from __future__ import annotations

from pathlib import Path

from hfops.cli import build_parser
from hfops.cli.reference import render, verbs

DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def test_the_reference_is_up_to_date() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), (
        "run `make docs` (python -m hfops.cli.reference > docs/cli.md)"
    )


def test_every_verb_and_sub_verb_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    names = [full for full, _, _ in verbs(build_parser())]
    assert {"sync", "candidates", "eval", "score", "refine", "worker"} <= set(names)
    for full in names:
        assert f"## hfops {full}\n" in text, f"`hfops {full}` is not in docs/cli.md"


def test_every_verb_says_what_it_does() -> None:
    assert all(summary.strip() for _, summary, _ in verbs(build_parser()))
