"""The ledger's Prometheus families and its alert rules.

Families: values from the store, valid exposition; rules: checked with promtool.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from hfops import config
from hfops.ledger import hub_window, inference_usage, metrics
from hfops.store import get_db
from tests.charts_kit import library_chart

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool missing (make sysdeps installs prometheus)"
)
PROMTOOL_DIR = Path(__file__).resolve().parent / "promtool"
NOW = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)
HUB = "https://huggingface.co:443"


class _Info:
    def __init__(self, resource: str, remaining: int, reset_in: int, quota: int, window: int) -> None:
        self.resource_type, self.remaining, self.reset_in_seconds = resource, remaining, reset_in
        self.limit, self.window_seconds = quota, window


def _exposition(db_path: str, settings: config.Settings | None) -> str:
    db = get_db(db_path)

    class Ledger(Collector):
        def collect(self) -> Iterator[Metric]:
            return metrics.families(db, "sarvanom", settings, now=NOW.timestamp())

    registry = CollectorRegistry()
    registry.register(Ledger())
    return generate_latest(registry).decode()


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture
def filled(db_path: str) -> config.Settings:
    db = get_db(db_path)
    now = NOW.timestamp()
    hub_window.observe(db, HUB, "api", _Info("api", 120, 40, 500, 300), now)
    hub_window.observe(db, HUB, "resolvers", _Info("resolvers", 3, 20, 3000, 300), now - 400)  # window passed
    hub_window.observe(db, "http://127.0.0.1:9", "api", _Info("api", 1, 40, 10, 60), now)  # not the Hub
    notice = hub_window.WaitNotice(HUB, "api", 41.0, 25, 500, 25, None)
    for _ in range(2):
        hub_window._record_wait(db, notice, now)
    for tokens in ((100, 20), (50, 10)):
        inference_usage.record_inference(
            db,
            "org/a",
            "https://router.huggingface.co",
            {"prompt_tokens": tokens[0], "completion_tokens": tokens[1]},
            now=NOW,
        )
    inference_usage.record_inference(
        db, "org/a", "https://router.huggingface.co", None, "rate_limited", now=NOW
    )
    settings = config.load_settings(None, **{"store.path": db_path})
    settings.inference.monthly_requests = 4  # type: ignore[attr-defined]
    settings.inference.monthly_tokens = 1000  # type: ignore[attr-defined]
    return settings


def test_families_report_the_ledger(db_path: str, filled: config.Settings) -> None:
    samples = _samples(_exposition(db_path, filled))
    r = (("resource", "resolvers"),)
    a = (("resource", "api"),)
    assert samples[("sarvanom_hub_ratelimit_remaining", a)] == 120
    assert samples[("sarvanom_hub_ratelimit_remaining", r)] == 3000  # the announced reset has passed
    assert samples[("sarvanom_hub_ratelimit_quota", a)] == 500
    assert samples[("sarvanom_hub_ratelimit_reset_seconds", a)] == 40
    assert samples[("sarvanom_hub_ratelimit_waits_total", a)] == 2
    assert samples[("sarvanom_hub_ratelimit_wait_seconds_total", a)] == 82
    assert (
        len([k for k in samples if k[0] == "sarvanom_hub_ratelimit_remaining"]) == 2
    )  # only the Hub's origin
    assert samples[("sarvanom_hf_inference_used_requests", ())] == 3
    assert samples[("sarvanom_hf_inference_used_tokens", (("direction", "input"),))] == 150
    assert samples[("sarvanom_hf_inference_used_tokens", (("direction", "output"),))] == 30
    assert samples[("sarvanom_hf_inference_month_failures", (("outcome", "rate_limited"),))] == 1
    assert samples[("sarvanom_hf_inference_allowance_requests", ())] == 4
    assert samples[("sarvanom_hf_inference_allowance_used_ratio", (("limit", "requests"),))] == 0.75
    assert samples[("sarvanom_hf_inference_allowance_used_ratio", (("limit", "tokens"),))] == 0.18
    assert samples[("sarvanom_hf_inference_month_closed", ())] == 0
    assert (
        samples[("sarvanom_hf_inference_allowance_reset_timestamp_seconds", ())]
        == datetime(2027, 1, 1, tzinfo=UTC).timestamp()
    )


def test_without_settings_or_allowance_the_ratio_is_absent(db_path: str, filled: config.Settings) -> None:
    for settings in (None, config.load_settings(None, **{"store.path": db_path})):
        names = {name for name, _ in _samples(_exposition(db_path, settings))}
        assert "sarvanom_hf_inference_allowance_used_ratio" not in names
        assert "sarvanom_hf_inference_used_requests" in names


def test_every_declared_name_is_exported_and_the_rules_use_only_them(
    db_path: str, filled: config.Settings
) -> None:
    text = _exposition(db_path, filled)
    exported = {
        f.name + ("_total" if f.type == "counter" else "") for f in text_string_to_metric_families(text)
    }
    assert exported == set(metrics.metric_names("sarvanom"))
    alerts = Path(__file__).resolve().parent.parent / "docs" / "observability" / "alerts.yml"
    rules = [
        r
        for r in yaml.safe_load(alerts.read_text())["groups"][0]["rules"]
        if r["labels"]["tile"] == "free_tier"
    ]
    assert {r["alert"] for r in rules} == {"HfInferenceAllowanceHigh", "HfInferenceClosedForTheMonth"}
    for rule in rules:
        used = {word for word in _names_in(rule["expr"]) if word.startswith("sarvanom_")}
        assert used and used <= exported, rule["alert"]


def _names_in(expr: str) -> set[str]:
    import re

    return set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr))


@needs_promtool
def test_promtool_accepts_the_exposition_and_the_rules(
    db_path: str, filled: config.Settings, tmp_path: Path
) -> None:
    exposition = _exposition(db_path, filled)
    checked = subprocess.run(
        [str(PROMTOOL), "check", "metrics"], input=exposition, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(
        [str(PROMTOOL), "test", "rules", "ledger_test.yml"],
        cwd=str(PROMTOOL_DIR),
        capture_output=True,
        text=True,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_status_panel_figures(db_path: str, filled: config.Settings) -> None:
    from hfops.ledger.status import free_tier

    panel = free_tier(get_db(db_path), filled, now=NOW.timestamp())
    rows = {b.resource: b for b in panel.buckets}
    assert set(rows) == {"api", "resolvers"}  # the configured Hub only
    assert (rows["api"].remaining, rows["api"].quota, rows["api"].reserve, rows["api"].left_ratio) == (
        120,
        500,
        25,
        0.24,
    )
    assert (rows["api"].reset_in_seconds, rows["api"].waits, rows["api"].wait_seconds) == (40, 2, 82)
    assert rows["resolvers"].remaining == 3000 and rows["resolvers"].reset_in_seconds == 0
    limits = {a.limit: a for a in panel.allowance}
    assert (limits["requests"].used, limits["requests"].allowance, limits["requests"].eval_limit) == (3, 4, 3)
    assert limits["requests"].used_ratio == 0.75 and limits["tokens"].used_ratio == 0.18
    assert panel.days_to_reset == pytest.approx(21.5) and panel.closed is None


def test_the_status_panel_as_a_page_draws_it(db_path: str, filled: config.Settings) -> None:
    from hfops.ledger.status import HUB_GROUP, INFERENCE_GROUP, panel
    from hfops.observability import charts

    drawn = panel(get_db(db_path), filled, now=NOW.timestamp())
    assert not drawn.empty
    bars = {(b.group, b.label): b for b in drawn.bars}
    assert set(bars) == {
        (HUB_GROUP, "api"),
        (HUB_GROUP, "resolvers"),
        (INFERENCE_GROUP, "requests"),
        (INFERENCE_GROUP, "tokens"),
    }
    api = bars[(HUB_GROUP, "api")]
    assert (api.fraction, api.short, api.level) == (0.24, "120 / 500 left", "ok")
    assert "reserve 25" in api.text and "resets in 40 s" in api.text and "2 wait(s) taken" in api.text
    assert bars[(HUB_GROUP, "resolvers")].fraction == 1.0  # the announced reset has passed
    requests = bars[(INFERENCE_GROUP, "requests")]
    assert (requests.fraction, requests.short, requests.level) == (0.75, "3 / 4 used", "ok")
    assert "evals stop at 3" in requests.text
    assert bars[(INFERENCE_GROUP, "tokens")].fraction == pytest.approx(0.18)
    assert any("1 rate_limited" in n for n in drawn.notes)
    assert drawn.resets_at == "2027-01-01T00:00:00Z" and drawn.days_to_reset == pytest.approx(21.5)
    assert [r["what"] for r in drawn.rows()] == ["api", "resolvers", "requests", "tokens"]
    figure = library_chart(charts.free_tier(drawn))
    assert figure.column("percent") == pytest.approx([24.0, 100.0, 75.0, 18.0])
    assert figure.thresholds() == [80.0]  # the HfInferenceAllowanceHigh line

    filled.inference.monthly_requests = 3
    inference_usage.close_month(
        get_db(db_path), "credits_exhausted", 402, "https://router.huggingface.co", now=NOW
    )
    closed = panel(get_db(db_path), filled, now=NOW.timestamp())
    requests = next(b for b in closed.bars if b.label == "requests")
    assert (requests.fraction, requests.level) == (1.0, "alert")
    assert any(n.startswith("HF Inference is closed for 2026-12") for n in closed.notes)


def test_the_status_panel_of_a_new_store_says_nothing_is_recorded(db_path: str) -> None:
    from hfops.ledger.status import panel
    from hfops.observability import charts

    drawn = panel(get_db(db_path), config.load_settings(None, **{"store.path": db_path}), now=NOW.timestamp())
    assert drawn.empty == "no Hub or Inference use recorded yet"
    assert all(b.fraction is None for b in drawn.bars)  # unlimited: nothing to fill
    assert drawn.notes[0].startswith("No Hub response with rate-limit headers recorded yet")
    figure = library_chart(charts.free_tier(drawn))
    assert figure.no_data_note == "no Hub or Inference use recorded yet"
