"""A configuration that does not load (AppTest): a page naming the file, the key and the fix instead of a
ConfigError traceback, on every page of the console, with the navigation intact; fixing the file is enough."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.console_kit import APP

PAGES = ("pages/candidates.py", "pages/status.py", "pages/evals.py")


def unescaped(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def open_with(config: Path, db_path: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("HFOPS_DB", db_path)
    monkeypatch.setenv("HFOPS_CONFIG", str(config))
    at = AppTest.from_file(APP, default_timeout=60)
    return at.run()


def shown(at: AppTest) -> str:
    parts = [e.value for kind in ("title", "error", "markdown", "text", "caption") for e in at.get(kind)]
    return "\n".join(unescaped(str(p)) for p in parts)


@pytest.mark.parametrize(
    ("toml", "where", "fix"),
    [
        ("[refine]\nbudget_msx = 800\n", "[refine] budget_msx", "Remove budget_msx from [refine]"),
        ("[refine]\nbudget_ms = -5\n", "[refine] budget_ms", "to a value the rule above allows"),
        ("[refnie]\nbudget_ms = 800\n", "[refnie]", "Remove the [refnie] table"),
        ('[eval]\ndefault_limit = "many"\n', "[eval] default_limit", "a value of the expected type"),
    ],
)
def test_a_bad_key_gives_a_clear_page_not_a_traceback(
    toml: str, where: str, fix: str, db_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "hfops.toml"
    config.write_text(toml)
    at = open_with(config, db_path, monkeypatch)
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == ["Configuration error"]
    text = shown(at)
    assert str(config) in text and where in text and fix in text
    # Every page of the console shows the same explanation (the navigation still switches pages).
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception and [t.value for t in at.title] == ["Configuration error"], page
    # Fixing the file is enough: the next run shows the page itself.
    config.write_text("[refine]\nbudget_ms = 800\n")
    at.switch_page("pages/status.py").run()
    assert not at.exception and [t.value for t in at.title] == ["Status"]


def test_a_missing_config_file_is_explained(
    db_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_with(tmp_path / "nowhere.toml", db_path, monkeypatch)
    assert not at.exception
    text = shown(at)
    assert "config file not found" in text and "point HFOPS_CONFIG" in text
