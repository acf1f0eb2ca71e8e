"""Serve the console: ``streamlit run`` itself, the landing page's imports done before it listens.

``streamlit run`` imports a page's modules (pandas, pyarrow, the registry views, the ledger's HTTP hook) in
the first visitor's session, so on 2 cores the first visit after a start waited ~0.7 s longer than every
later one. :func:`main` imports them first and then hands over to Streamlit's command line unchanged (same
flags, same ``.streamlit/config.toml``); :func:`command` is the one command line that ``hfops console``, the
Space bundle and the browser tests start.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

# What the landing page (Candidates; Demo in a demo) imports beyond Streamlit's server, heaviest first. Only
# imports: nothing here reads a store or a configuration, so a bad config still gets its explanation page.
WARM_MODULES = (
    "pandas",
    "pyarrow",
    "pyarrow.pandas_compat",
    "pyarrow.vendored.version",
    "hfops.console",
    "hfops.views.candidates",
    "hfops.views.demo",
    "hfops.evals.runnable",
    "hfops.ledger.install",
    "huggingface_hub.utils._http",
    "streamlit.material_icon_names",
)
# Flags every console server gets (also set in .streamlit/config.toml, which a bundle may lack).
BASE_FLAGS = ("--browser.gatherUsageStats", "false")


def warm_imports(modules: Sequence[str] = WARM_MODULES) -> list[str]:
    """Import ``modules``; the ones that fail to import are returned (the page reports them when used)."""
    failed = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # a broken optional module must not keep the console from starting
            failed.append(name)
    return failed


def command(app: str | Path, *, port: int, address: str, flags: Sequence[str] = ()) -> list[str]:
    """The argv that serves ``app`` on ``address:port`` (``flags``: further ``--section.option value``)."""
    return [
        sys.executable,
        "-m",
        "hfops.console_server",
        "run",
        str(app),
        "--server.port",
        str(port),
        "--server.address",
        address,
        *BASE_FLAGS,
        *flags,
    ]


def navigation_from_the_entrypoint() -> None:
    """Tell Streamlit that the entrypoint builds the navigation (``app.py`` calls ``st.navigation``).

    Until a process's first ``st.navigation`` call, Streamlit treats ``pages/`` beside the main script as a
    v1 multipage folder: on a fresh server, a first visit to a deep link (``/evals`` bookmarked, or reloaded
    after a restart) ran ``pages/evals.py`` alone, without ``app.py`` (no wide layout, no configuration
    check, no demo-mode page list, no ledger hook) and with the folder's file names in the sidebar. This sets
    the flag ``st.navigation`` itself sets; a browser test opens a deep link first on a fresh server.
    """
    from streamlit.runtime.pages_manager import PagesManager

    PagesManager.uses_pages_directory = False


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m hfops.console_server run app.py [streamlit flags]``: warm imports, then ``streamlit``."""
    warm_imports()
    navigation_from_the_entrypoint()
    from streamlit.web.cli import main as streamlit_main

    streamlit_main(args=list(sys.argv[1:] if argv is None else argv), prog_name="streamlit")


if __name__ == "__main__":
    main()
