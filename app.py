"""hfops console: the Streamlit entry point (``streamlit run app.py``)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from hfops.console import demo_requested, record_hub_usage, settings, settings_problem, show_settings_problem

HERE = Path(__file__).parent

# (file, title, icon, write_page): write pages are absent in demo mode.
PAGES = [
    ("pages/candidates.py", "Candidates", ":material/list:", False),
    ("pages/evals.py", "Evals", ":material/science:", False),
    ("pages/leaderboard.py", "Leaderboard", ":material/leaderboard:", False),
    ("pages/refine_lab.py", "Refine Lab", ":material/auto_fix_high:", False),
    ("pages/observability.py", "Observability", ":material/monitoring:", False),
    ("pages/demo.py", "Demo", ":material/play_circle:", False),
    ("pages/status.py", "Status", ":material/settings:", False),
]

st.set_page_config(page_title="hfops", page_icon=":material/hub:", layout="wide")
# A configuration that does not load gets a page saying which file, key and fix, with the sidebar intact.
problem = settings_problem()
demo = demo_requested() if problem else settings().demo_mode
DEMO_PAGE = "pages/demo.py"
# The read-only demo opens on the Demo page; the operator console on the first page.
default_page = DEMO_PAGE if demo and (HERE / DEMO_PAGE).is_file() else PAGES[0][0]
available = [
    st.Page(str(HERE / path), title=title, icon=icon, default=(path == default_page))
    for path, title, icon, write_page in PAGES
    if (HERE / path).is_file() and not (write_page and demo)
]
if demo:
    st.sidebar.info("Read-only demo: write actions are not available.")
page = st.navigation(available)
if problem is not None:
    show_settings_problem(problem)
else:
    record_hub_usage(settings())
    page.run()
