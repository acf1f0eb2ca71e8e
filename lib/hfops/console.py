"""Shared helpers for the Streamlit pages (the only library module that imports Streamlit).

Pages hold widgets and layout only; they call the library through these helpers. The console finds its
settings from ``HFOPS_CONFIG`` (TOML path), ``HFOPS_DB`` (store path) and ``HFOPS_DEMO=1`` (read-only
demo), set by ``hfops console`` / ``make run`` or by tests.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import sqlite_utils
import streamlit as st

from hfops.config import ConfigError, Settings, load_settings
from hfops.errors import HfopsError
from hfops.store import get_db

CONFIG_ENV = "HFOPS_CONFIG"
DB_ENV = "HFOPS_DB"
DEMO_ENV = "HFOPS_DEMO"


def settings() -> Settings:
    """Settings for this console process (re-read each run: cheap, and picks up edits)."""
    overrides: dict[str, object] = {"store.path": os.environ.get(DB_ENV) or None}
    if os.environ.get(DEMO_ENV) == "1":
        overrides["demo.enabled"] = True
    return load_settings(os.environ.get(CONFIG_ENV) or None, **overrides)


def db() -> sqlite_utils.Database:
    """This session thread's connection to the store (one connection per thread)."""
    return get_db(settings().store.path)


def demo_mode() -> bool:
    """True when write actions must be absent (demo config, ``HFOPS_DEMO=1`` or inside a Space)."""
    return settings().demo_mode


@contextlib.contextmanager
def operator_errors(action: str) -> Iterator[None]:
    """Show an expected failure as a clear error box instead of a traceback."""
    try:
        yield
    except (HfopsError, ConfigError) as exc:
        st.error(f"{action} failed: {exc}")


def plain(text: object) -> str:
    """Hub text is untrusted: escape Markdown so it renders as literal text (never HTML)."""
    value = "" if text is None else str(text)
    for ch in "\\`*_{}[]()#+-.!|<>~$":
        value = value.replace(ch, "\\" + ch)
    return value
