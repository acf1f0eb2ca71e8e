"""Opening the console in ``streamlit.testing.v1.AppTest``: the one way page tests do it."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def open_console(
    db_path: str, monkeypatch: pytest.MonkeyPatch, page: str | None = None, timeout: float = 60, **env: str
) -> AppTest:
    """Run ``app.py`` over the store at ``db_path`` (``HFOPS_DB``) with extra ``env`` set, switch to ``page``
    (e.g. ``"pages/status.py"``) when given, and fail on any exception the page raised."""
    monkeypatch.setenv("HFOPS_DB", db_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at
