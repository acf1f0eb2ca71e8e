"""Observability page (AppTest): the eight tiles from the store, alert states from the shared thresholds,
the time range selector, an empty store, demo mode."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from hfops.observability import series
from hfops.observability.thresholds import TILES
from hfops.store import connect
from tests.charts_kit import VegaChart, page_charts
from tests.console_kit import APP, open_console
from tests.observability_seed import seed

PAGE = "pages/observability.py"


def open_page(db_path: str, monkeypatch: pytest.MonkeyPatch, **env: str) -> AppTest:
    return open_console(db_path, monkeypatch, PAGE, **env)


def figures(at: AppTest) -> dict[str, VegaChart]:
    """The page's charts by tile key, in the tiles' order."""
    charts = page_charts(at)
    assert len(charts) == len(TILES)
    return {tile.key: chart for tile, chart in zip(TILES, charts, strict=True)}


def markdown(at: AppTest) -> str:
    """Markdown shown on the page, with the escaping of untrusted text removed."""
    return "\n".join(m.value for m in at.markdown).replace("\\", "")


def captions(at: AppTest) -> list[str]:
    return [c.value.replace("\\", "") for c in at.caption]


def test_tiles_and_alert_states_of_a_seeded_store(db_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    now = seed(db_path)
    at = open_page(db_path, monkeypatch)
    assert at.title[0].value == "Observability"
    assert [s.value for s in at.subheader] == [t.title for t in TILES]

    table = at.dataframe[0].value
    expected = series.alert_table(series.alert_states(connect(db_path), now))
    assert table[["alert", "state", "condition"]].to_dict("records") == expected[
        ["alert", "state", "condition"]
    ].to_dict("records")
    assert set(table[table["state"] == "alert"]["alert"]) == {
        "HfInferenceSuccessLow",
        "HfInferenceRateLimitedHigh",
        "HfDatasetsEvalSuccessLow (dataset=ms_marco)",
        "HfEvalScoreLow (task=retrieval, dataset=ms_marco)",
    }
    assert "4 alert condition(s) true" in at.error[0].value
    text = markdown(at)
    assert ":red[ALERT] HfInferenceSuccessLow: 50.0% (alert when < 90.0% over 1h)" in text
    assert ":green[ok] RefineLatencyP95High: 660 ms (alert when > 800 ms over 15m)" in text
    assert ":gray[no data] HfEvalScoreLow task=qa dataset=ms_marco: — (alert when < 0.400)" in text

    figs = figures(at)
    assert sum(figs["candidates"].column("n")) == 3  # open candidates only
    assert figs["refine_latency"].thresholds() == [500, 800]
    steps = series.inference_series(series.refine_steps(connect(db_path), series.window("24 h")))
    rates = [100 * r for r in steps["success_rate"].dropna()]
    assert figs["inference_success"].column("percent") == pytest.approx(rates)
    assert sorted(rates) in ([0.0, 50.0], [0.0, 0.0, 100.0])  # 1 failed 2 h ago; 2 of 4 ok in the last hour
    assert "5 HF Inference requests in range." in captions(at)
    assert figs["inference_success"].thresholds() == [90]
    assert figs["rate_limited"].thresholds() == [20]
    datasets = figs["datasets_eval"].frames_with("percent")[0]
    assert dict(zip(datasets["dataset"], datasets["percent"], strict=True)) == {
        "squad_v2": 100.0,
        "ms_marco": 50.0,
    }
    scores = figs["eval_scores"].frames_with("score")[0]
    assert sorted(scores[scores["system"] == "production"]["score"]) == [0.56, 0.72]
    assert sorted(round(b, 2) for b in figs["eval_scores"].column("bar")) == [0.4, 0.6, 0.7, 0.7]
    assert sum(figs["eval_runs"].column("runs")) == 3  # in the last 24 h


def test_time_range_selector_changes_the_charts(db_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(db_path)
    at = open_page(db_path, monkeypatch)
    assert at.radio(key="obs_range").value == "24 h"
    assert len(figures(at)["sync_freshness"].column("started")) == 2  # the runs of 10 h and 3 h ago
    at.radio(key="obs_range").set_value("7 d").run()
    assert not at.exception
    figs = figures(at)
    assert sum(figs["eval_runs"].column("runs")) == 4
    assert len(figs["sync_freshness"].column("started")) == 3
    at.radio(key="obs_range").set_value("1 h").run()
    figs = figures(at)
    assert figs["eval_runs"].column("runs") == []  # run 4 ended just over 1 h ago
    assert figs["eval_runs"].no_data_note == "No data in the selected range"
    assert "4 HF Inference requests in range." in captions(at)
    assert "3 of 6 wanted requests rate limited in range." in captions(at)


def test_empty_store_shows_the_alerts_without_errors(db_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(db_path, monkeypatch)
    table = at.dataframe[0].value
    states = dict(zip(table["alert"], table["state"], strict=True))
    expected = series.alert_table(
        series.alert_states(connect(db_path))
    )  # the library's verdict on an empty store
    assert states == dict(zip(expected["alert"], expected["state"], strict=True))
    assert states["HfCandidatesNone"] == "alert" and states["HfInferenceSuccessLow"] == "no data"
    assert "Last run ended never." in captions(at)
    assert len(page_charts(at)) == len(TILES)


def test_page_is_read_only_in_demo_mode(db_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(db_path)
    monkeypatch.setenv("HFOPS_DB", db_path)
    monkeypatch.setenv("HFOPS_DEMO", "1")
    # the page alone (the demo console opens on the Demo page, which loads the embedding model)
    at = AppTest.from_file(str(Path(APP).parent / PAGE), default_timeout=60).run()
    assert not at.exception, at.exception
    assert len(page_charts(at)) == len(TILES)
    assert not at.button and not at.text_input and not at.selectbox and not at.checkbox


def test_alert_summaries_are_filled_in_not_raw_templates(
    db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13: the summary column showed ``{{ $labels.dataset }}``."""
    seed(db_path)
    at = open_page(db_path, monkeypatch)
    table = at.dataframe[0].value
    assert not any("{{" in s or "$labels" in s for s in table["summary"])
    by_alert = dict(zip(table["alert"], table["summary"], strict=True))
    assert by_alert["HfDatasetsEvalSuccessLow (dataset=ms_marco)"] == (
        "Eval runs on ms_marco succeed less than 95 % of the time"
    )


def test_charts_keep_legends_off_the_axis_labels(db_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 13: eval-score x labels were cut and the legend (below the plot) overlapped them."""
    seed(db_path)
    figs = figures(open_page(db_path, monkeypatch))
    for key, fig in figs.items():
        legends = [
            layer["encoding"]["color"].get("legend")
            for layer in fig.layers
            if "color" in layer.get("encoding", {})
        ]
        assert all(legend is None or legend["orient"] == "top" for legend in legends), key
    scores = figs["eval_scores"]
    labels = scores.column("group")
    axis = scores.layers[0]["encoding"]["x"]["axis"]
    assert axis["labelAngle"] == 0 and "split(datum.label" in axis["labelExpr"]  # drawn one part a line
    assert labels and all(x.count("\n") == 2 and " / " not in x for x in labels)
    assert all(len(part) <= 20 for x in labels for part in x.split("\n"))  # short lines, nothing cut
    assert figs["eval_runs"].layers[0]["encoding"]["x"]["title"] == "time (UTC)"


def test_tiles_without_data_say_so_instead_of_empty_axes(
    db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13: tiles with no data drew empty 0-6 axes."""
    figs = figures(open_page(db_path, monkeypatch))
    for key, fig in figs.items():  # nothing in an empty store: the note, no axes, no threshold lines
        assert fig.no_data_note == "No data in the selected range", key
        assert fig.thresholds() == [], key
