"""The console in a real headless Chromium, served by ``streamlit run``: the candidates table, the detail
view, a status change through the form, and the Status page. Screenshots go to test-artifacts/."""

from __future__ import annotations

import sqlite3
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hfops import discovery, registry
from hfops.store import connect
from tests.browser import (
    ConsoleServer,
    choose_option,
    open_page,
    save_screenshot,
    serve_console,
    wait_for,
    wait_for_text,
    wait_idle,
)

pytest_plugins = ["tests.browser"]
pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]
ROW_HEIGHT = 35  # px of a dataframe row (and of its header) in Streamlit's grid


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The embedded snapshot (real Hub records) synced into a fresh store."""
    path = str(tmp_path_factory.mktemp("browser-store") / "hfops.db")
    discovery.sync_snapshot(path)
    return path


@pytest.fixture(scope="module")
def server(store: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleServer]:
    with serve_console(store, tmp_path_factory.mktemp("streamlit-logs")) as running:
        yield running


def top_candidates(store: str, n: int = 2) -> list[str]:
    """The ids of the ``n`` best-scored candidates, as the page sorts them by default."""
    found, _ = registry.list_candidates(connect(store), page_size=n)
    assert len(found) == n, "the embedded snapshot should yield candidates"
    return [row["model_id"] for row in found]


def test_candidates_table_and_detail_view(
    chrome: Any, server: ConsoleServer, store: str, artifacts: Path
) -> None:
    first, second = top_candidates(store)
    chrome.get(server.url)
    wait_for_text(chrome, "Candidates", css="h1")
    table = wait_for(chrome, "[data-testid=stDataFrame]")
    assert table.size["height"] > 100 and table.size["width"] > 400
    wait_idle(chrome)
    assert not chrome.find_elements("css selector", "h3")  # the first paint draws no detail: a pick opens it
    # Ticking the top candidate's box opens its detail: heading, Hub link we built, score breakdown chart.
    click_row_marker(chrome, table, 0)
    wait_for_text(chrome, first, css="h3")
    link = wait_for(chrome, f'a[href="https://huggingface.co/{urllib.parse.quote(first, safe="/")}"]')
    assert first in link.text
    wait_for(chrome, "[data-testid=stVegaLiteChart] .marks")  # the bar chart of the score breakdown
    wait_idle(chrome)
    save_screenshot(chrome, artifacts, "console-candidates")

    # Every column fits: no horizontal scrolling in the candidates table (issue 13).
    scroll, visible = chrome.execute_script(
        "const s = arguments[0].querySelector('.dvn-scroller'); return [s.scrollWidth, s.clientWidth];", table
    )
    assert scroll <= visible + 1, f"the table scrolls sideways: {scroll} px of content in {visible} px"

    # Ticking a row's box opens that model's detail.
    click_row_marker(chrome, table, 1)
    wait_for_text(chrome, second, css="h3")
    wait_for_text(chrome, "Score breakdown", css="[role=tab]")
    save_screenshot(chrome, artifacts, "console-candidate-detail")
    choose_option(chrome, "Model details", first)  # the selectbox still chooses
    wait_for_text(chrome, first, css="h3")
    assert not chrome.find_elements("css selector", "[data-testid=stException]")


def click_row_marker(chrome: Any, table: Any, row: int) -> None:
    """Tick the selection box of data row ``row`` (0-based) of a Streamlit dataframe (a canvas)."""
    from selenium.webdriver.common.action_chains import ActionChains

    width, height = table.size["width"], table.size["height"]
    x, y = 15 - width / 2, ROW_HEIGHT * (row + 1) + ROW_HEIGHT / 2 - height / 2  # offsets from the centre
    ActionChains(chrome).move_to_element_with_offset(table, int(x), int(y)).click().perform()


def test_search_finds_phi_2_and_explains_a_non_candidate(
    chrome: Any, server: ConsoleServer, store: str, artifacts: Path
) -> None:
    chrome.get(server.url)
    wait_for_text(chrome, "Candidates", css="h1")
    box = wait_for(chrome, "[data-testid=stTextInput] input")
    box.send_keys("phi 2\n")
    wait_for_text(chrome, "All synced models matching", css="[data-testid=stMarkdown]")
    wait_for_text(chrome, "ignoring case and separators")
    tables = chrome.find_elements("css selector", "[data-testid=stDataFrame]")
    assert len(tables) >= 2  # the candidates matching, then every synced model matching
    wait_idle(chrome)
    save_screenshot(chrome, artifacts, "console-candidates-search")
    clear = wait_for(chrome, "button", text="Clear filters")
    clear.click()
    wait_for_text(chrome, "Showing 1–", css="[data-testid=stCaptionContainer]")
    assert not chrome.find_elements("css selector", "[data-testid=stException]")


def test_status_change_flow_and_status_page(
    chrome: Any, server: ConsoleServer, store: str, artifacts: Path
) -> None:
    first, _ = top_candidates(store)
    chrome.get(server.url)
    table = wait_for(chrome, "[data-testid=stDataFrame]")
    wait_idle(chrome)
    click_row_marker(chrome, table, 0)  # opens the top candidate's detail and its status form
    wait_for_text(chrome, first, css="h3")
    wait_idle(chrome)
    reason = wait_for(chrome, "[data-testid=stTextArea] textarea")
    reason.send_keys("browser test: queue for shadow evals")
    button = wait_for(chrome, "[data-testid=stFormSubmitButton] button", text="Change status")
    button.click()
    wait_for_text(chrome, "candidate → evaluating", css="[data-testid=stAlert]")
    with sqlite3.connect(store) as conn:
        audit = conn.execute(
            "SELECT from_status, to_status, actor, reason FROM status_transitions WHERE model_id = ? "
            "AND actor = 'console'",
            [first],
        ).fetchall()
    assert audit == [("candidate", "evaluating", "console", "browser test: queue for shadow evals")]

    open_page(chrome, "Status")
    wait_for_text(chrome, "Candidates by status", css="h3")
    wait_for_text(chrome, "HUGGINGFACE_API_KEY: not set")
    wait_for(chrome, "button", text="Sync now")
    save_screenshot(chrome, artifacts, "console-status")
    assert not chrome.find_elements("css selector", "[data-testid=stException]")


def test_first_start_sync_now_runs_in_the_worker(
    chrome: Any, console_server: Callable[..., ConsoleServer], db_path: str, artifacts: Path
) -> None:
    """Empty store -> Status -> Sync now (embedded snapshot) -> the worker runs it, the page follows the
    job by itself until it succeeds -> the Candidates page lists the new candidates."""
    server = console_server(db_path, worker=True)
    chrome.get(server.url)
    wait_for_text(chrome, "The store holds no models yet", css="[data-testid=stAlert]")
    open_page(chrome, "Status")
    wait_for_text(chrome, "No sync has run yet.", css="[data-testid=stAlert]")
    wait_for(chrome, "button", text="Sync now").click()
    wait_for_text(chrome, "Queued sync job 1", css="[data-testid=stAlert]")
    # No clicks from here: the page polls the job until the worker has finished it.
    wait_for_text(chrome, "Job 1 · sync · succeeded", css="[data-testid=stAlert]", timeout=90)
    wait_for_text(chrome, "Run 1: succeeded")
    save_screenshot(chrome, artifacts, "console-status-after-sync")
    open_page(chrome, "Candidates")
    table = wait_for(chrome, "[data-testid=stDataFrame]")
    click_row_marker(chrome, table, 0)
    wait_for_text(chrome, top_candidates(db_path, 1)[0], css="h3")


def test_a_bad_config_key_shows_a_clear_page_with_the_sidebar(
    chrome: Any, console_server: Callable[..., ConsoleServer], db_path: str, tmp_path: Path, artifacts: Path
) -> None:
    config = tmp_path / "hfops.toml"
    config.write_text("[refine]\nbudget_msx = 800\n")
    server = console_server(db_path, HFOPS_CONFIG=str(config))
    chrome.get(server.url)
    wait_for_text(chrome, "Configuration error", css="h1")
    wait_for_text(chrome, "budget_msx")
    wait_for_text(chrome, "Remove budget_msx from [refine]")
    links = [
        a.text.splitlines()[-1] for a in chrome.find_elements("css selector", "[data-testid=stSidebarNav] a")
    ]
    assert {"Candidates", "Status", "Evals"} <= set(links), links
    save_screenshot(chrome, artifacts, "console-config-error")
    from selenium.webdriver.support.ui import WebDriverWait

    wait_for(chrome, "[data-testid=stSidebarNav] a", text="Status").click()  # the sidebar works...
    WebDriverWait(chrome, 30, poll_frequency=0.2).until(lambda d: d.current_url.endswith("/status"))
    wait_idle(chrome)
    wait_for_text(chrome, "Configuration error", css="h1")  # ...and every page explains the same problem
    wait_for_text(chrome, "Remove budget_msx from [refine]")
    assert not chrome.find_elements("css selector", "[data-testid=stException]")


def test_observability_tiles_render_without_empty_axes(
    chrome: Any, server: ConsoleServer, artifacts: Path
) -> None:
    """A freshly synced store: the candidates tile has data, tiles without data say so (issue 13)."""
    chrome.get(server.url)
    wait_for(chrome, "[data-testid=stSidebarNav]")
    open_page(chrome, "Observability")
    wait_for(chrome, "[data-testid=stVegaLiteChart] .marks")
    wait_for_text(chrome, "No data in the selected range", css="[data-testid=stVegaLiteChart]")
    wait_idle(chrome)
    charts = chrome.find_elements("css selector", "[data-testid=stVegaLiteChart]")
    assert len(charts) == 8 and all(c.size["height"] > 200 for c in charts)
    save_screenshot(chrome, artifacts, "console-observability")
    assert not chrome.find_elements("css selector", "[data-testid=stException]")


def test_a_deep_link_as_a_fresh_servers_first_visit_runs_the_console(
    chrome: Any, console_server: Callable[..., ConsoleServer], store: str, artifacts: Path
) -> None:
    """The first visit after a start opens /status directly (a bookmark, a reload): the console's own
    navigation, titles and wide layout, not ``pages/status.py`` run alone as a v1 multipage folder."""
    fresh = console_server(store)
    chrome.get(f"{fresh.url}/status")
    wait_for_text(chrome, "Status", css="h1")
    nav = wait_for(chrome, "[data-testid=stSidebarNav]")
    wait_idle(chrome)
    links = nav.text.splitlines()
    assert "Candidates" in links and "Refine Lab" in links and "app" not in links, links
    main = wait_for(chrome, "[data-testid=stMainBlockContainer]")
    assert main.size["width"] > 900  # app.py's wide layout (the centred default is ~730 px)
    save_screenshot(chrome, artifacts, "deep-link-first-visit")
