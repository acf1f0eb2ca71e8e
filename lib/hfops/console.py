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
from hfops.views.config import ConfigProblem, config_problem

CONFIG_ENV = "HFOPS_CONFIG"
DB_ENV = "HFOPS_DB"
DEMO_ENV = "HFOPS_DEMO"


def settings() -> Settings:
    """Settings for this console process (re-read each run: cheap, and picks up edits)."""
    overrides: dict[str, object] = {"store.path": os.environ.get(DB_ENV) or None}
    if os.environ.get(DEMO_ENV) == "1":
        overrides["demo.enabled"] = True
    return load_settings(os.environ.get(CONFIG_ENV) or None, **overrides)


def settings_problem() -> ConfigProblem | None:
    """Why the console's configuration does not load (file, key, fix), or None when it does."""
    try:
        settings()
    except ConfigError as exc:
        return config_problem(exc, os.environ.get(CONFIG_ENV) or None)
    return None


def demo_requested() -> bool:
    """Demo mode as far as it is known without a valid configuration (``HFOPS_DEMO=1`` or a Space)."""
    return os.environ.get(DEMO_ENV) == "1" or bool(os.environ.get("SPACE_ID"))


def show_settings_problem(problem: ConfigProblem) -> None:
    """The page shown instead of any page while the configuration does not load (the sidebar stays)."""
    st.title("Configuration error")
    st.error(f"The console cannot load its configuration file `{problem.file}`.", icon=":material/error:")
    st.markdown(f"**Where:** `{problem.file}`, {plain(problem.where)}")
    st.text(problem.message)
    st.markdown(f"**Fix:** {plain(problem.fix)}")
    st.caption(
        "The file is read again on every page load: save it and reload this page (or pick a page in the "
        "sidebar). `hfops --config FILE status show` loads it the same way on the command line."
    )


def require_settings() -> Settings:
    """The settings, or (when they do not load) the explanation page and a stop.

    Every page calls this first.
    """
    problem = settings_problem()
    if problem is not None:
        show_settings_problem(problem)
        st.stop()
    return settings()


def record_hub_usage(cfg: Settings) -> None:
    """Log this console process's Hub and Inference responses in the store's free-tier ledger (idempotent)."""
    from hfops import ledger

    ledger.install(cfg.store.path, cfg)


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
