"""Refine Lab page (AppTest): single run side by side, latency chart with the 500/800 ms lines, limiter state,
cooldown warning and lift, history, bulk mode with p50/p95 and a verdict; the token is never shown."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from hfops import jobs
from hfops.refine.bank import load_samples
from hfops.refine.lab import BULK_KIND, refine_bulk_job
from hfops.refine.limits import active_cooldown, open_cooldown
from hfops.store import get_db
from tests.charts_kit import page_charts
from tests.console_kit import open_console
from tests.standins.inference import InferenceStandIn

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("warm_local_refiner")]

PAGE = "pages/refine_lab.py"
TOKEN = "hf_test_SECRET_lab_token_5566778899"


def open_page(db_path: str, monkeypatch: pytest.MonkeyPatch, config: Path | None = None) -> AppTest:
    return open_console(db_path, monkeypatch, PAGE, **({"HFOPS_CONFIG": str(config)} if config else {}))


def texts(at: AppTest) -> list[str]:
    return [t.value for t in at.text]


def frame_with(at: AppTest, column: str) -> pd.DataFrame:
    """The first dataframe with ``column`` (dataframes carry no key in AppTest)."""
    for frame in at.dataframe:
        if column in frame.value.columns:
            return frame.value
    raise AssertionError(f"no dataframe with a {column!r} column")


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def rendered(at: AppTest) -> str:
    parts = [str(el.proto) for el in at.main if getattr(el, "proto", None) is not None]
    parts += [frame.value.to_csv() for frame in at.dataframe]
    parts += [json.dumps(chart.spec) for chart in page_charts(at)]
    parts += [frame.to_csv() for chart in page_charts(at) for frame in chart.data.values()]
    return "\n".join(parts + texts(at) + [m.value for m in at.markdown] + [c.value for c in at.caption])


def write_config(tmp_path: Path, url: str, generous: bool = True) -> Path:
    """Console config for the stand-in; ``generous`` widens the deadline so a busy machine cannot flake it."""
    path = tmp_path / "lab.toml"
    deadline = "budget_ms = 3000\nfallback_deadline_ms = 2000\n" if generous else ""
    path.write_text(
        f'[inference]\nbase_url = "{url}"\n[refine]\nper_minute = 5\nper_hour = 50\n{deadline}',
        encoding="utf-8",
    )
    return path


def test_page_shows_the_limiter_and_a_local_run(db_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(db_path, monkeypatch)
    assert at.title[0].value == "Refine Lab"
    assert metric(at, "Left this minute") == "10 / 10" and metric(at, "Left this hour") == "100 / 100"
    assert metric(at, "Cooldown until") == "none"
    samples = load_samples()
    at.selectbox(key="refine_sample").set_value(samples[0]["query"]).run()
    assert at.text_area(key="refine_query").value == samples[0]["query"]
    at.button(key="refine_run").click().run()
    assert not at.exception, at.exception
    shown = texts(at)
    assert "Refined: What country is Normandy in?" in shown
    assert "Intent: location · confidence 0.90" in shown
    assert any(t.startswith("Try asking 1: ") for t in shown)
    assert any("Fallback not used: HUGGINGFACE_API_KEY is not set" in i.value for i in at.info)
    (chart,) = page_charts(at)
    assert chart.thresholds() == [500, 800]
    assert chart.column("part") == ["local", "HF attempt", "end to end"]
    history = frame_with(at, "created_at")
    assert len(history) == 1 and history.iloc[0]["bypass_reason"] == "no_key"
    assert history.iloc[0]["query"].startswith("#")


def test_typed_query_with_the_hf_fallback_side_by_side(
    tmp_path: Path, db_path: str, standin: InferenceStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    standin.behaviour, standin.reply = "fast", None
    monkeypatch.setenv("HUGGINGFACE_API_KEY", TOKEN)
    at = open_page(db_path, monkeypatch, write_config(tmp_path, standin.url))
    at.text_area(key="refine_query").input("um what is np complete??").run()
    at.button(key="refine_run").click().run()
    assert not at.exception, at.exception
    shown = texts(at)
    assert "Refined: What is NP complete?" in shown  # local side
    assert "Refined: Um what is np complete?" in shown  # HF side (the stand-in's answer)
    assert any(t.startswith("Returned: hf result in") for t in shown)
    assert metric(at, "Left this minute") == "4 / 5"
    assert TOKEN not in rendered(at)
    assert any("HUGGINGFACE_API_KEY set" in c.value for c in at.caption)


def test_failing_fallback_shows_the_bypass_reason(
    tmp_path: Path, db_path: str, standin: InferenceStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    standin.behaviour = "hanging"
    monkeypatch.setenv("HUGGINGFACE_API_KEY", TOKEN)
    at = open_page(db_path, monkeypatch, write_config(tmp_path, standin.url, generous=False))
    at.text_area(key="refine_query").input("best pizza near me").run()
    at.button(key="refine_run").click().run()
    assert any("no answer before the fallback deadline" in i.value for i in at.info)
    assert any("bypass_reason: timeout" in t and "within the 800 ms budget" in t for t in texts(at))
    standin.behaviour = "fast"


def test_credits_cooldown_warning_and_lift(db_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    open_cooldown(db_path, "credits_exhausted", 3600, 402)
    at = open_page(db_path, monkeypatch)
    assert any("credits are exhausted" in w.value for w in at.warning)
    assert metric(at, "Cooldown until") != "none"
    at.button(key="refine_lift_cooldown").click().run()
    assert active_cooldown(db_path) is None
    assert metric(at, "Cooldown until") == "none" and not at.warning


def test_demo_mode_hides_the_lift_button(db_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HFOPS_DEMO", "1")
    open_cooldown(db_path, "rate_limited", 60, 429)
    at = open_page(db_path, monkeypatch)
    assert not [b for b in at.button if b.key == "refine_lift_cooldown"]
    assert any("Cooldown after a 429" in i.value for i in at.info)


def run_bulk_job(db_path: str) -> jobs.Job:
    """What the worker does with the queued bulk job (its table maps refine_bulk to refine_bulk_job)."""
    job = jobs.list_jobs(get_db(db_path), kind=BULK_KIND, limit=1)[0]
    jobs.execute_job(db_path, job.id, {BULK_KIND: refine_bulk_job})
    return job


def test_bulk_mode_runs_as_a_job_and_reports_one_p95(db_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(db_path, monkeypatch)
    at.button(key="refine_bulk").click().run()
    assert not at.exception, at.exception
    queued = jobs.list_jobs(get_db(db_path), kind=BULK_KIND, limit=1)[0]
    assert queued.status == "queued" and len(queued.params["queries"]) == len(load_samples())
    bars = at.get("progress")
    assert bars and "waiting for the worker" in bars[0].proto.text  # not run on the script thread
    run_bulk_job(db_path)
    at.run()
    table = frame_with(at, "refined")
    assert len(table) == len(load_samples())
    assert set(table["bypass_reason"]) <= {"no_key", ""}
    assert {m.label for m in at.metric} >= {"p50", "p95", "max", "answered by HF"}
    verdicts = [s.value for s in at.success] + [e.value for e in at.error]
    assert len(verdicts) == 1 and verdicts[0].startswith("Verdict: ")
    p95_tile = metric(at, "p95")
    assert f"p95 {p95_tile} (goal" in verdicts[0]  # the tile and the verdict show the same p95
    bulk = page_charts(at)[-1]
    assert f"{p95_tile}" in bulk.column("text")  # and so does the chart
    assert len(frame_with(at, "created_at")) == len(table)


def test_an_empty_query_shows_its_error_in_place_of_the_previous_result(
    db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page(db_path, monkeypatch)
    at.text_area(key="refine_query").input("um what is np complete??").run()
    at.button(key="refine_run").click().run()
    assert "Refined: What is NP complete?" in texts(at)
    at.text_area(key="refine_query").input("   ").run()
    at.button(key="refine_run").click().run()
    assert [e.value for e in at.error] == ["Refine: query must not be empty"]
    assert not [t for t in texts(at) if t.startswith("Refined: ")]  # the previous result is gone
    assert not page_charts(at)


def test_a_long_paste_is_cut_to_2000_characters_and_says_so(
    db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page(db_path, monkeypatch)
    at.text_area(key="refine_query").input(
        "where does the rhine begin " * 111 + "abc"
    ).run()  # 3,000 characters
    at.button(key="refine_run").click().run()
    assert not at.exception, at.exception
    assert [w.value for w in at.warning] == [
        "The query had 3,000 characters: only the first 2,000 were refined."
    ]
    assert any(t.startswith("Refined: ") for t in texts(at))


@pytest.mark.parametrize(
    ("typed", "refined"),
    [
        ("waht is teh captial of frnace", "Refined: What is the capital of France?"),
        ("can you please tell me what is np complete please", "Refined: What is NP complete?"),
    ],
)
def test_typos_are_fixed_and_fillers_removed(
    db_path: str, monkeypatch: pytest.MonkeyPatch, typed: str, refined: str
) -> None:
    at = open_page(db_path, monkeypatch)
    at.text_area(key="refine_query").input(typed).run()
    at.button(key="refine_run").click().run()
    assert refined in texts(at)
