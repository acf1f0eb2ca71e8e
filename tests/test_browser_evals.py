"""Evals in a real headless Chromium: launch a small run from the page, the worker executes it (packaged
MiniLM vs BM25, offline), and the run's charts appear. Screenshots go to test-artifacts/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hfops.evals import runs
from hfops.store import connect
from tests.browser import choose_option, open_page, save_screenshot, wait_for, wait_for_text, wait_idle

pytest_plugins = ["tests.browser"]
pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

RUN_TIMEOUT = 240.0  # the worker imports sentence-transformers and embeds the sample on a busy 2-core machine


def set_number(driver: Any, label: str, value: int) -> None:
    """Type ``value`` into the ``st.number_input`` labelled ``label``."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = wait_for(driver, "[data-testid=stNumberInput]", text=label)
    field = box.find_element(By.CSS_SELECTOR, "input")
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(str(value), Keys.ENTER)
    wait_idle(driver)


def test_launch_a_small_run_and_see_its_chart(chrome: Any, console_server: Any, db_path: str,
                                              artifacts: Path) -> None:
    connect(db_path)
    server = console_server(db_path, worker=True)
    chrome.get(server.url)
    wait_for(chrome, "[data-testid=stSidebarNav]")
    open_page(chrome, "Evals")
    choose_option(chrome, "Dataset", "ms_marco")
    set_number(chrome, "Sample size", 3)
    wait_for_text(chrome, "Compared with the production model of retrieval: baseline:bm25")
    wait_for(chrome, "button", text="Launch shadow run").click()
    wait_for_text(chrome, "Queued eval run 1")
    save_screenshot(chrome, artifacts, "evals-launched")

    chart = wait_for(chrome, "[data-testid=stPlotlyChart] .main-svg", timeout=RUN_TIMEOUT)
    wait_for_text(chrome, "Candidate vs production (95% CI)", timeout=RUN_TIMEOUT)
    wait_for_text(chrome, "Recommendation:")
    assert chart.size["height"] > 200 and chart.size["width"] > 300
    wait_idle(chrome)
    save_screenshot(chrome, artifacts, "evals-run-chart")
    assert not chrome.find_elements("css selector", "[data-testid=stException]")

    run = runs.get_run(connect(db_path), 1)
    assert run["status"] == "succeeded", server.log()
    assert (run["model_id"], run["production_id"], run["dataset"], run["total"]) == (
        "sentence-transformers/all-MiniLM-L6-v2", "baseline:bm25", "ms_marco", 3)
