"""Evals in a real headless Chromium: launch a small run from the page, the worker executes it (packaged
MiniLM vs BM25, offline), and the run's charts appear. Screenshots go to test-artifacts/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hfops import registry
from hfops.evals import runs
from hfops.evals.tasks import MINILM_ID
from hfops.store import connect
from tests.browser import choose_option, open_page, save_screenshot, wait_for, wait_for_text, wait_idle
from tests.registry_rows import add_candidates

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


def test_launch_a_small_run_and_see_its_chart(
    chrome: Any, console_server: Any, db_path: str, artifacts: Path
) -> None:
    connect(db_path)
    add_candidates(
        db_path, [{"model_id": MINILM_ID, "pipeline_tag": "sentence-similarity"}]
    )  # promotable later
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

    chart = wait_for(chrome, "[data-testid=stVegaLiteChart] .marks", timeout=RUN_TIMEOUT)
    wait_for_text(chrome, "Candidate vs production (95% CI)", timeout=RUN_TIMEOUT)
    wait_for_text(chrome, "Recommendation:")
    assert chart.size["height"] > 200 and chart.size["width"] > 300
    wait_idle(chrome)
    save_screenshot(chrome, artifacts, "evals-run-chart")
    assert not chrome.find_elements("css selector", "[data-testid=stException]")

    run = runs.get_run(connect(db_path), 1)
    assert run["status"] == "succeeded", server.log()
    assert (run["model_id"], run["production_id"], run["dataset"], run["total"]) == (
        "sentence-transformers/all-MiniLM-L6-v2",
        "baseline:bm25",
        "ms_marco",
        3,
    )

    # The disagreements: a meaningful threshold, the examples' text side by side.
    wait_for(chrome, "[data-testid=stCheckbox]", text="Only disagreements").click()
    wait_for_text(chrome, "of 3 examples disagree: |delta ndcg@10| ≥ 0.1")
    wait_idle(chrome)
    examples = chrome.find_elements("css selector", "[data-testid=stDataFrame]")[-1]
    chrome.execute_script("arguments[0].scrollIntoView({block: 'center'})", examples)
    wait_idle(chrome)
    save_screenshot(chrome, artifacts, "evals-disagreements")

    # Leaderboard: promote (the board refreshes, production is marked), then one-click rollback (audited).
    open_page(chrome, "Leaderboard")
    choose_option(chrome, "Dataset", "ms_marco")
    wait_for_text(chrome, "Production for retrieval: no model is promoted, the baseline baseline:bm25 serves")
    reason = wait_for(chrome, "[data-testid=stTextInput]", text="Reason").find_element(
        "css selector", "input"
    )
    reason.send_keys("browser test: MiniLM beats BM25")
    wait_idle(chrome)
    wait_for(chrome, "button", text="Promote to production").click()
    wait_for_text(chrome, f"Production for retrieval: {MINILM_ID} (promoted")
    wait_for_text(chrome, "promoted (was", css="[data-testid=stAlert]")
    save_screenshot(chrome, artifacts, "leaderboard-promoted")
    wait_for(chrome, "button", text="Roll back").click()
    wait_for_text(chrome, "Rolled back retrieval", css="[data-testid=stAlert]")
    wait_for_text(chrome, "Production for retrieval: no model is promoted")
    save_screenshot(chrome, artifacts, "leaderboard-rolled-back")
    history = registry.status_history(connect(db_path), MINILM_ID)
    assert [(h["to_status"], h["actor"]) for h in history[-2:]] == [
        ("promoted", "console"),
        ("shadow", "console"),
    ]
    assert not chrome.find_elements("css selector", "[data-testid=stException]")
