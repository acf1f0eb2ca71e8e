"""Observability: exact series of a seeded store, incremental refine log, alert states, generated rules and
dashboard, promtool (check metrics / check rules / test rules), the metrics verb and /metrics on the API."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from hfops.cli import main
from hfops.config import ConfigError, load_settings
from hfops.ledger import metrics as ledger_metrics
from hfops.observability import readings, series, thresholds
from hfops.observability.collector import FAMILIES, StoreCollector, metric_names, scrape
from hfops.observability.grafana import dashboard
from hfops.observability.readings import Histogram, histogram_quantile
from hfops.observability.thresholds import ALERT_RULES, DASHBOARD_TILES, SCORE_BARS, TILES, rules_yaml
from hfops.store import connect, write_tx
from tests.charts_kit import library_chart
from tests.observability_kit import dashboard_queries, parse
from tests.observability_seed import EXPECTED, EXPECTED_AGES, EXPECTED_CLOCK, EXPECTED_STATES, add_call, seed

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "observability"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool missing (make sysdeps installs prometheus)"
)


def state_key(state: series.AlertState) -> str:
    return state.rule.name + (f"[{'/'.join(state.labels.values())}]" if state.labels else "")


@pytest.fixture
def seeded(db_path: str) -> tuple[str, datetime]:
    return db_path, seed(db_path)


# --- the scrape ---------------------------------------------------------------------------------------------


def test_scrape_of_a_seeded_store_reports_exact_values(seeded: tuple[str, datetime]) -> None:
    db_path, now = seeded
    samples = parse(scrape(db_path))
    for key, value in EXPECTED.items():
        assert key in samples, key
        assert samples[key] == pytest.approx(value, abs=1e-9), key
    for name, age in EXPECTED_AGES.items():
        assert now.timestamp() - samples[(name, ())] == pytest.approx(age, abs=1e-3), name
    created = samples[("sarvanom_store_created_timestamp_seconds", ())]
    assert now.timestamp() - 60 < created <= datetime.now(UTC).timestamp()  # the seed created the store
    reset = datetime.fromtimestamp(
        samples[("sarvanom_hf_inference_allowance_reset_timestamp_seconds", ())], UTC
    )
    assert (reset.day, reset.hour, reset.minute) == (1, 0, 0) and reset > datetime.now(UTC)
    assert set(samples) == set(EXPECTED) | {(name, ()) for name in (*EXPECTED_AGES, *EXPECTED_CLOCK)}


def test_every_family_is_exported_with_help_and_type(seeded: tuple[str, datetime]) -> None:
    text = scrape(seeded[0])
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for suffix, kind, doc in (
        *FAMILIES,
        *ledger_metrics.FAMILIES,
    ):  # the ledger's families in the same scrape
        base = f"sarvanom_{suffix}"
        assert base in families, base
        assert families[base].type == kind
        assert families[base].documentation == doc
    exported = {f.name + ("_total" if f.type == "counter" else "") for f in families.values()}
    assert exported == set(metric_names("sarvanom"))
    assert {
        "sarvanom_hf_models_discovered_total",
        "sarvanom_hub_ratelimit_remaining",
        "sarvanom_hf_inference_allowance_used_ratio",
    } <= set(metric_names("sarvanom"))


def test_the_collector_takes_the_settings_for_the_ledger(db_path: str, tmp_path: Path) -> None:
    from hfops.ledger import inference_usage

    db = connect(db_path)
    inference_usage.record_inference(
        db, "org/a", "https://router.huggingface.co", {"prompt_tokens": 30, "completion_tokens": 10}
    )
    settings = load_settings(
        None,
        **{
            "store.path": db_path,
            "metrics.namespace": "acme",
            "inference.monthly_requests": 5,
            "inference.monthly_tokens": 50,
        },
    )
    samples = parse(scrape(settings=settings))
    assert samples[("acme_hf_inference_allowance_used_ratio", (("limit", "requests"),))] == pytest.approx(0.2)
    assert samples[("acme_hf_inference_allowance_used_ratio", (("limit", "tokens"),))] == pytest.approx(0.8)
    collector = StoreCollector(settings=settings)
    assert (str(collector.db_path), collector.namespace) == (db_path, "acme")
    states = {s.rule.name + str(s.labels): s for s in series.alert_states(db, settings=settings)}
    assert states["HfInferenceAllowanceHigh{'limit': 'tokens'}"].state == "alert"  # 0.8 >= 0.8
    assert states["HfInferenceAllowanceHigh{'limit': 'requests'}"].state == "ok"
    assert states["HfInferenceAllowanceHigh{'limit': 'tokens'}"].description.startswith(
        "80% of this month's HF Inference tokens allowance is used"
    )
    assert [s.state for s in series.alert_states(db) if s.rule.name == "HfInferenceAllowanceHigh"] == [
        "no data"
    ]
    with pytest.raises(ValueError, match="db_path or settings"):
        StoreCollector()


def test_empty_store_reports_zeros_never_and_the_baselines_as_such(db_path: str) -> None:
    samples = parse(scrape(db_path))
    assert samples[("sarvanom_hf_models_discovered_total", ())] == 0
    assert samples[("sarvanom_shadow_eval_last_run_timestamp_seconds", ())] == 0  # 0 = never
    assert samples[("sarvanom_hf_sync_last_success_timestamp_seconds", ())] == 0
    assert samples[("sarvanom_hf_inference_attempts_total", ())] == 0
    assert samples[("sarvanom_refine_latency_seconds_count", (("source", "local"),))] == 0
    baseline = (("model", "baseline:bm25"), ("role", "baseline"), ("task", "retrieval"))
    assert samples[("sarvanom_hf_production_model", baseline)] == 1
    assert (
        samples[
            (
                "sarvanom_hf_production_model",
                (("model", "baseline:lexical"), ("role", "baseline"), ("task", "qa")),
            )
        ]
        == 1
    )
    assert samples[("sarvanom_store_created_timestamp_seconds", ())] > 0
    assert not [
        k
        for k in samples
        if k[0]
        in (
            "sarvanom_hf_candidates_found",
            "sarvanom_hf_eval_scores",
            "sarvanom_hf_sync_last_duration_seconds",
        )
    ]


@needs_promtool
@pytest.mark.parametrize("store", ["seeded", "empty"])
def test_promtool_check_metrics_passes_on_a_real_scrape(store: str, db_path: str) -> None:
    if store == "seeded":
        seed(db_path)
    result = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=scrape(db_path), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == ""


def test_rows_are_counted_once_and_uncommitted_rows_are_not_seen(seeded: tuple[str, datetime]) -> None:
    db_path, now = seeded
    ok = ("sarvanom_hf_inference_requests_total", (("outcome", "ok"),))
    assert parse(scrape(db_path))[ok] == 2
    writer = connect(db_path)
    writer.conn.execute("BEGIN IMMEDIATE")  # another writer holds the lock with a new row not committed
    writer.execute(
        "INSERT INTO refine_calls (created_at, query_hash, query_chars, source, model, outcome, "
        "hf_requested, latency_ms, hf_latency_ms, budget_ms, within_budget) "
        "VALUES (?, 'h', 1, 'hf', 'm', 'ok', 1, 100, 90, 800, 1)",
        [series.iso(now)],
    )
    assert parse(scrape(db_path))[ok] == 2  # the scrape is not blocked and does not see it
    writer.conn.execute("COMMIT")
    first = parse(scrape(db_path))
    assert first[ok] == 3
    assert first[("sarvanom_refine_latency_seconds_count", (("source", "hf"),))] == 3
    assert first[("sarvanom_refiner_latency_hf_api_seconds_bucket", (("le", "0.1"),))] == 2  # 30 ms, 90 ms
    assert parse(scrape(db_path)) == first  # scraping again adds nothing
    add_call(writer, now, "local", 2000.0, "invalid_output", "invalid_output", 1, 450.0, 0)
    again = parse(scrape(db_path))
    assert again[("sarvanom_hf_inference_requests_total", (("outcome", "invalid_output"),))] == 1
    assert again[("sarvanom_refine_latency_seconds_bucket", (("le", "1.5"), ("source", "local")))] == 8
    assert again[("sarvanom_refine_latency_seconds_bucket", (("le", "2.5"), ("source", "local")))] == 9
    with write_tx(writer):
        writer.execute("DELETE FROM refine_calls")
    emptied = parse(scrape(db_path))  # the log was emptied: totals start over instead of going stale
    assert emptied[("sarvanom_hf_inference_attempts_total", ())] == 0
    writer.conn.close()


def test_namespace_is_configurable_and_checked(
    seeded: tuple[str, datetime], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db_path, _ = seeded
    names = {k[0] for k in parse(scrape(db_path, "acme"))}
    assert names and all(n.startswith("acme_") for n in names)
    assert "acme_hf_models_discovered_total" in names
    with pytest.raises(ConfigError, match="namespace"):
        scrape(db_path, "bad-name")
    config = tmp_path / "hfops.toml"
    config.write_text('[metrics]\nnamespace = "acme"\n', encoding="utf-8")
    assert main(["--config", str(config), "metrics", "--once", "--db", db_path]) == 0
    assert "acme_hf_candidates_found{" in capsys.readouterr().out
    assert main(["--config", str(config), "metrics", "--rules", "--db", db_path]) == 0
    rules = yaml.safe_load(capsys.readouterr().out)["groups"][0]["rules"]
    assert all("acme_" in r["expr"] and "sarvanom_" not in r["expr"] for r in rules)


# --- quantiles and alert states -----------------------------------------------------------------------------


def test_histogram_quantile_interpolates_like_promql() -> None:
    assert histogram_quantile(0.95, [(0.5, 0), (1.0, 0), (float("inf"), 0)]) is None
    # 10 observations in (0.8, 0.9]: rank 9.5 of 10 -> 0.8 + 0.1 * 0.95 (what promtool computes, see
    # tests/promtool/alerts_test.yml: "895ms")
    assert histogram_quantile(0.95, [(0.5, 0), (0.8, 0), (0.9, 10), (float("inf"), 10)]) == pytest.approx(
        0.895
    )
    # rank above every finite bucket: the highest finite bound
    assert histogram_quantile(0.95, [(0.5, 1), (0.8, 1), (float("inf"), 10)]) == 0.8
    assert histogram_quantile(0.5, [(0.1, 4), (float("inf"), 4)]) == pytest.approx(0.05)
    hist = Histogram()
    hist.add(Histogram([0] * 11 + [1] * 6, 1, 800.0))  # one call of exactly 800 ms: in the 0.8 bucket
    assert hist.quantile(0.95) == pytest.approx(0.795)  # 0.7 + 0.1 * 0.95


def test_alert_states_of_the_seeded_store(seeded: tuple[str, datetime]) -> None:
    db_path, now = seeded
    states = {state_key(s): s for s in series.alert_states(connect(db_path), now)}
    assert set(states) == set(EXPECTED_STATES)
    for key, (state, value) in EXPECTED_STATES.items():
        assert states[key].state == state, key
        if value is None:
            assert states[key].value is None, key
        else:
            assert states[key].value == pytest.approx(value, abs=1e-3), key


def test_alert_states_of_a_store_minutes_old(db_path: str) -> None:
    """Issue 12: nothing has happened yet is a state of its own, not a firing staleness alert."""
    found = {state_key(s): s for s in series.alert_states(connect(db_path))}
    states = {k: s.state for k, s in found.items()}
    assert states["HfCandidatesNone"] == "alert"
    assert states["ShadowEvalStale"] == "no data" and found["ShadowEvalStale"].note == series.NO_EVAL_RUN_YET
    assert (
        states["ShadowEvalNeverRan"] == "ok" and found["ShadowEvalNeverRan"].value < 60
    )  # the store is young
    assert states["HfSyncStale"] == "no data" and states["HfSyncNeverSucceeded"] == "ok"
    for quiet in ("RefineLatencyP95High", "HfInferenceSuccessLow", "HfInferenceRateLimitedHigh"):
        assert states[quiet] == "no data"  # no traffic: Prometheus has no sample either
    assert all(
        v == "no data" for k, v in states.items() if k.startswith(("HfEvalScoreLow", "HfDatasetsEval"))
    )
    assert "the baseline baseline:bm25 serves" in found["HfEvalScoreLow[retrieval/ms_marco/ndcg@10]"].note
    notes = series.onboarding(connect(db_path))
    assert any(n.startswith(series.NO_EVAL_RUN_YET) for n in notes)
    assert any("No retrieval model is promoted" in n for n in notes)


def test_an_old_store_that_never_ran_an_eval_says_so_and_an_old_stale_one_is_stale(db_path: str) -> None:
    db = connect(db_path)
    now = datetime.now(UTC)
    with write_tx(db):
        db.execute("UPDATE schema_migrations SET applied_at = ?", [series.iso(now - timedelta(days=3))])
    states = {state_key(s): s for s in series.alert_states(db, now)}
    assert states["ShadowEvalNeverRan"].state == "alert"
    assert states["ShadowEvalNeverRan"].value == pytest.approx(3 * 86400, abs=1)
    assert states["ShadowEvalStale"].state == "no data"
    assert states["HfSyncNeverSucceeded"].state == "alert"
    with write_tx(db):
        db.execute(
            "INSERT INTO eval_runs (model_id, production_id, task, dataset, dataset_source, dataset_version, "
            "status, created_at, started_at, finished_at, updated_at) "
            "VALUES ('org/a', 'baseline:bm25', 'retrieval', "
            "'ms_marco', 'local', 'v1', 'failed', ?, ?, ?, ?)",
            [series.iso(now - timedelta(days=2))] * 4,
        )
    states = {state_key(s): s for s in series.alert_states(db, now)}
    assert states["ShadowEvalStale"].state == "alert"
    assert states["ShadowEvalStale"].value == pytest.approx(2 * 86400, abs=1)
    assert states["ShadowEvalNeverRan"].state == "ok" and states["ShadowEvalNeverRan"].settled
    assert states["ShadowEvalStale"].description == (
        "The last shadow eval run ended 2d 0h 0m 0s ago. Is the worker running the nightly eval job?"
    )


def test_the_score_alert_is_about_a_promoted_model_never_a_baseline(db_path: str) -> None:
    from tests.registry_rows import add_candidates

    add_candidates(
        db_path, [{"model_id": "org/emb", "pipeline_tag": "feature-extraction", "status": "shadow"}]
    )
    db = connect(db_path)
    now = datetime.now(UTC)
    with write_tx(db):
        db.execute(
            "INSERT INTO eval_runs (id, model_id, production_id, task, dataset, dataset_source, "
            "dataset_version, status, created_at, started_at, finished_at, updated_at) "
            "VALUES (1, 'org/emb', 'baseline:bm25', "
            "'retrieval', 'ms_marco', 'local', 'v1', 'succeeded', ?, ?, ?, ?)",
            [series.iso(now)] * 4,
        )
        for system, model, value in (("candidate", "org/emb", 0.5), ("production", "baseline:bm25", 0.3)):
            db.execute(
                "INSERT INTO eval_metrics (run_id, system, model_id, metric, value, n) VALUES "
                "(1, ?, ?, 'ndcg@10', ?, 50)",
                [system, model, value],
            )
    key = "HfEvalScoreLow[retrieval/ms_marco/ndcg@10]"
    state = {state_key(s): s for s in series.alert_states(db, now)}[key]
    assert (state.state, state.value) == ("no data", None)  # the weak baseline serves: nobody promoted it
    scores = series.scores_table(db)
    assert scores.set_index("model").loc["baseline:bm25", ["production", "promoted"]].tolist() == [
        True,
        False,
    ]
    from hfops import registry

    registry.set_status(db, "org/emb", "promoted", "test")
    state = {state_key(s): s for s in series.alert_states(db, now)}[key]
    assert (state.state, state.value) == ("alert", 0.5)  # promoted at 0.5 < 0.7
    assert state.summary == "The promoted retrieval model scores below 0.7 ndcg@10 on ms_marco"
    samples = parse(scrape(db_path))
    assert (
        samples[
            (
                "sarvanom_hf_production_model",
                (("model", "org/emb"), ("role", "promoted"), ("task", "retrieval")),
            )
        ]
        == 1
    )


def test_custom_sets_are_datasets_of_the_metrics_and_the_score_alert(db_path: str, tmp_path: Path) -> None:
    from hfops.evals import custom

    rows = tmp_path / "faq.jsonl"
    rows.write_text(
        "\n".join(
            json.dumps({"id": str(i), "question": f"q{i}", "context": "c", "answers": ["c"]})
            for i in range(3)
        )
        + "\n",
        encoding="utf-8",
    )
    db = connect(db_path)
    custom.add_from_file(db, "support-faq", "qa", str(rows))
    assert readings.datasets(db) == ("squad_v2", "ms_marco", "support-faq")
    samples = parse(scrape(db_path))
    assert (
        samples[("sarvanom_hf_datasets_eval_total", (("dataset", "support-faq"), ("status", "failed")))] == 0
    )
    states = {state_key(s): s for s in series.alert_states(db)}
    assert "HfEvalScoreLow[qa/support-faq/f1]" in states  # the task's default scorer's bar (F1, 0.6)
    assert states["HfEvalScoreLow[qa/support-faq/f1]"].rule.threshold == 0.6
    assert "HfDatasetsEvalSuccessLow[support-faq]" in states
    assert thresholds.score_bar("qa", "support-faq") == thresholds.score_bar("qa", "squad_v2")


def test_refine_p95_alert_fires_when_a_tenth_of_calls_blow_the_budget(db_path: str) -> None:
    now = datetime.now(UTC)
    db = connect(db_path)
    for i in range(18):
        add_call(db, now, "local", 20.0 + i, "skipped", None, 0, None, 1)
    for _ in range(2):
        add_call(db, now, "local", 1200.0, "timeout", "timeout", 1, 500.0, 1)
    add_call(db, now, "local", 3000.0, "timeout", "timeout", 1, 500.0, 16)  # outside the 15 min window
    state = next(s for s in series.alert_states(db, now) if s.rule.name == "RefineLatencyP95High")
    assert state.state == "alert"
    assert state.value == pytest.approx(1.0 + 0.5 * 0.5)  # rank 19 of 20 -> half way into (1.0, 1.5]


# --- rules, dashboard, promtool -----------------------------------------------------------------------------


def test_committed_alerts_and_dashboard_are_what_the_thresholds_generate() -> None:
    assert (DOCS / "alerts.yml").read_text(encoding="utf-8") == rules_yaml("sarvanom")
    assert json.loads((DOCS / "grafana-dashboard.json").read_text(encoding="utf-8")) == dashboard("sarvanom")


def test_alerts_carry_the_seed_thresholds() -> None:
    rules = {r.key: r for r in ALERT_RULES}
    assert rules["HfCandidatesNone"].promql("sarvanom").endswith(" < 1")
    assert rules["ShadowEvalStale"].promql("sarvanom").endswith(" > 86400")
    assert rules["RefineLatencyP95High"].promql("sarvanom").endswith(" > 0.8")
    assert rules["HfInferenceSuccessLow"].promql("sarvanom").endswith(" < 0.9")
    assert rules["HfInferenceRateLimitedHigh"].promql("sarvanom").endswith(" > 0.2")
    assert rules["HfDatasetsEvalSuccessLow"].promql("sarvanom").endswith(" < 0.95")
    assert rules["HfEvalScoreLow[retrieval/ndcg@10]"].threshold == 0.7
    assert rules["HfInferenceAllowanceHigh"].promql("sarvanom").endswith(" >= 0.8")
    assert rules["HfInferenceClosedForTheMonth"].promql("sarvanom").endswith(" > 0")
    assert {r.tile for r in ALERT_RULES} <= {t.key for t in DASHBOARD_TILES}
    assert [t.key for t in DASHBOARD_TILES] == [*(t.key for t in TILES), "free_tier"]


def test_breached_follows_each_comparison() -> None:
    allowance = thresholds.rule("HfInferenceAllowanceHigh")
    assert allowance.breached(0.8) is True and allowance.breached(0.79) is False
    assert thresholds.rule("RefineLatencyP95High").breached(0.8) is False  # p95 exactly at the budget
    assert thresholds.rule("HfCandidatesNone").breached(0) is True and allowance.breached(None) is None
    with pytest.raises(ValueError, match="unknown comparison"):
        thresholds.AlertRule("X", "candidates", "m", "=>", 1, "q", "s", "d")


def test_thresholds_agree_with_the_modules_that_write_the_rows() -> None:
    from hfops import registry
    from hfops.config import RefineConfig
    from hfops.evals import DATASETS, tasks
    from hfops.evals.stats import primary_metric
    from hfops.refine.fallback import OUTCOMES

    assert thresholds.INFERENCE_OUTCOMES == OUTCOMES
    assert thresholds.EVAL_DATASETS == DATASETS
    assert set(thresholds.OPEN_CANDIDATE_STATUSES) <= set(registry.STATUSES)
    # every (task, dataset) of the task table, and a custom set of each task, has a bar on its primary metric
    for task, dataset in [*tasks.task_dataset_pairs(), *((t, "a-custom-set") for t in tasks.TASK_NAMES)]:
        assert thresholds.score_bar(task, dataset).metric == primary_metric(task, dataset)
    assert set(thresholds.SCORER_BARS) == set(tasks.SCORERS)
    # a rule selects its scores by (task, metric): no scorer of a task reports another's primary as a
    # secondary
    for bar in SCORE_BARS:
        others = [s for t, s in thresholds._task_scorers() if t == bar.task and s != bar.scorer]
        assert all(bar.metric not in tasks.SCORERS[s].metrics for s in others), bar
    assert RefineConfig().budget_ms / 1000 == thresholds.REFINE_P95_BUDGET_SECONDS
    assert RefineConfig().fallback_deadline_ms / 1000 == thresholds.FALLBACK_DEADLINE_SECONDS
    assert readings.score_scale("qa") == 100 and readings.score_scale("retrieval") == 1


def test_dashboard_has_one_panel_per_tile_drawing_the_alert_values_and_thresholds() -> None:
    board = dashboard("sarvanom")
    panels = board["panels"]
    assert [p["title"] for p in panels] == [t.title for t in DASHBOARD_TILES]
    assert "__inputs" not in board and board["templating"]["list"][0]["type"] == "datasource"
    by_tile = dict(zip([t.key for t in DASHBOARD_TILES], panels, strict=True))
    free_tier = [t["expr"] for t in by_tile["free_tier"]["targets"]]
    assert "sarvanom_hub_ratelimit_remaining / sarvanom_hub_ratelimit_quota" in free_tier
    for rule in ALERT_RULES:
        panel = by_tile[rule.tile]
        steps = [s["value"] for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]]
        for override in panel["fieldConfig"]["overrides"]:
            for prop in override["properties"]:
                if prop["id"] == "thresholds":
                    steps += [s["value"] for s in prop["value"]["steps"]]
        assert rule.threshold in steps, rule.key
        if rule.name != "HfEvalScoreLow":
            assert rule.value_promql("sarvanom") in [t["expr"] for t in panel["targets"]], rule.key


@needs_promtool
def test_promtool_checks_the_rules_and_the_dashboard_queries(tmp_path: Path) -> None:
    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(DOCS / "alerts.yml")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERT_RULES)} rules found" in result.stdout
    recording = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": expr}
                    for i, expr in enumerate(dashboard_queries(dashboard()))
                ],
            }
        ]
    }
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(recording), encoding="utf-8")
    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr  # every dashboard query is valid PromQL


@needs_promtool
def test_promtool_unit_tests_of_the_alerts_pass() -> None:
    files = sorted(str(p) for p in (ROOT / "tests" / "promtool").glob("*_test.yml"))
    assert len(files) >= 3
    result = subprocess.run([PROMTOOL, "test", "rules", *files], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    tested = "\n".join(Path(f).read_text(encoding="utf-8") for f in files)
    for rule in {r.name for r in ALERT_RULES}:  # every alert has a firing and a quiet case
        assert f"alertname: {rule}\n        exp_alerts: []" in tested, rule
        assert f"alertname: {rule}\n        exp_alerts:\n          - exp_labels" in tested, rule


@needs_promtool
def test_promtool_unit_tests_catch_a_wrong_threshold(tmp_path: Path) -> None:
    rules = (DOCS / "alerts.yml").read_text(encoding="utf-8").replace(" < 0.9\n", " < 0.75\n")
    (tmp_path / "docs" / "observability").mkdir(parents=True)
    (tmp_path / "docs" / "observability" / "alerts.yml").write_text(rules, encoding="utf-8")
    (tmp_path / "tests" / "promtool").mkdir(parents=True)
    test_file = tmp_path / "tests" / "promtool" / "alerts_test.yml"
    shutil.copy(ROOT / "tests" / "promtool" / "alerts_test.yml", test_file)
    result = subprocess.run(
        [PROMTOOL, "test", "rules", str(test_file)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "HfInferenceSuccessLow" in result.stdout + result.stderr


# --- CLI and API --------------------------------------------------------------------------------------------


def test_metrics_verb_once_rules_and_dashboard(
    seeded: tuple[str, datetime], capsys: pytest.CaptureFixture[str]
) -> None:
    db_path, _ = seeded
    assert main(["metrics", "--once", "--db", db_path]) == 0
    samples = parse(capsys.readouterr().out)
    assert samples[("sarvanom_hf_models_discovered_total", ())] == 7
    assert main(["metrics", "--rules", "--db", db_path]) == 0
    assert capsys.readouterr().out == (DOCS / "alerts.yml").read_text(encoding="utf-8")
    assert main(["metrics", "--dashboard", "--db", db_path]) == 0
    assert json.loads(capsys.readouterr().out) == dashboard("sarvanom")


def test_metrics_verb_reports_a_busy_port(db_path: str, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["metrics", "--port", str(port), "--db", db_path]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_serve_exposes_the_same_metrics(seeded: tuple[str, datetime]) -> None:
    from hfops.api import create_app

    db_path, _ = seeded
    app = create_app(load_settings(**{"store.path": db_path}), warm=False)
    with TestClient(app) as client:
        response = client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=")
        openmetrics = client.get(
            "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
        assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
        assert openmetrics.text.rstrip().endswith("# EOF")
        samples = parse(response.text)
        for key, value in EXPECTED.items():
            assert samples[key] == pytest.approx(value, abs=1e-9), key
        assert "/metrics" not in client.get("/openapi.json").json()["paths"]


def test_page_series_use_the_store_and_the_window(seeded: tuple[str, datetime]) -> None:
    db_path, now = seeded
    db = connect(db_path)
    day = series.window("24 h", now)
    assert day.until > now >= day.until - timedelta(hours=1) and day.until - day.since == timedelta(hours=24)
    steps = series.refine_steps(db, day)
    assert sum(t.calls for t in steps.values()) == 10
    hour = series.refine_steps(db, series.window("1 h", now))
    assert sum(t.calls for t in hour.values()) == 8  # the two calls of 2 h ago are outside
    inference = series.inference_series(hour)
    assert inference["requests"].sum() == 4 and inference["ok"].sum() == 2
    runs = series.eval_runs_series(db, day)
    assert runs.groupby("status")["runs"].sum().to_dict() == {
        "failed": 1,
        "succeeded": 2,
    }  # run 1 is 30 h old
    week = series.eval_runs_series(db, series.window("7 d", now))
    assert week["runs"].sum() == 4
    scores = series.scores_table(db)
    assert len(scores) == 5  # primary metrics only: emb-a, emb-b, emb-p ndcg@10; gen-b, gen-a f1
    assert sorted(scores[scores["production"]]["model"]) == ["org/emb-p", "org/gen-a"]
    assert scores["promoted"].tolist() == scores["production"].tolist()  # both promoted
    syncs = series.sync_runs_series(db, series.window("7 d", now))
    assert syncs["status"].tolist() == ["succeeded", "failed", "succeeded"]
    assert syncs["errors"].tolist() == [1, 2, 0]
    assert syncs["duration_seconds"].round(3).tolist() == [30.0, 5.0, 12.5]


# --- templates and charts -----------------------------------------------------------------------------------


def test_render_fills_templates_like_prometheus() -> None:
    # the strings promtool produced for the same values (tests/promtool/*_test.yml exp_annotations)
    assert thresholds.humanize_duration(0.895) == "895ms"
    assert thresholds.humanize_duration(93600) == "1d 2h 0m 0s"
    assert thresholds.humanize_duration(201600) == "2d 8h 0m 0s"
    assert thresholds.humanize_duration(42) == "42s" and thresholds.humanize_duration(0) == "0s"
    assert thresholds.humanize_percentage(0.8) == "80%" and thresholds.humanize_percentage(0.95) == "95%"
    assert thresholds.humanize(1500) == "1.5k" and thresholds.humanize(0.25) == "250m"
    datasets = thresholds.rule("HfDatasetsEvalSuccessLow")
    assert datasets.annotations({"dataset": "ms_marco"}, 0.9) == {
        "summary": "Eval runs on ms_marco succeed less than 95 % of the time",
        "description": "90% of the eval runs on ms_marco that ended in the last day succeeded.",
    }
    score = thresholds.rule("HfEvalScoreLow", task="qa", metric="rougeL")
    assert score.annotations({"dataset": "ms_marco"}, 0.35)["description"].startswith(
        "Latest rougeL (0-1) of the promoted qa model on ms_marco is 0.350, below the bar of 0.4."
    )
    assert thresholds.render("{{ $value | humanizePercentage }} left", {}, None) == "n/a left"
    with pytest.raises(ValueError, match="unsupported"):
        thresholds.render("{{ $value | reReplaceAll }}", {}, 1.0)
    for rule in ALERT_RULES:  # every rule renders to plain text
        text = rule.annotations({"dataset": "d", "limit": "requests"}, 0.5)
        assert "{{" not in text["summary"] + text["description"] and "$labels" not in text["description"], (
            rule.key
        )


def test_page_table_shows_rendered_summaries(seeded: tuple[str, datetime]) -> None:
    db_path, now = seeded
    table = series.alert_table(series.alert_states(connect(db_path), now))
    assert not table["summary"].str.contains("{{", regex=False).any()
    row = table[table["alert"] == "HfDatasetsEvalSuccessLow (dataset=ms_marco)"].iloc[0]
    assert row["summary"] == "Eval runs on ms_marco succeed less than 95 % of the time"


def test_charts_of_an_empty_store_say_no_data_yet(db_path: str) -> None:
    from hfops.observability import charts

    db = connect(db_path)
    w = series.window("24 h")
    figures = [
        charts.candidates(series.candidates_breakdown(db)),
        charts.eval_runs(series.eval_runs_series(db, w), w),
        charts.refine_latency(series.refine_latency_series(series.refine_steps(db, w)), w),
        charts.ratio(
            series.inference_series(series.refine_steps(db, w)),
            w,
            "success_rate",
            "HfInferenceSuccessLow",
            "success rate",
        ),
        charts.eval_scores(series.scores_table(db)),
        charts.sync_runs(series.sync_runs_series(db, w), w),
    ]
    for fig in map(library_chart, figures):
        note = fig.no_data_note  # the note alone: no empty 0-6 axes, no threshold lines
        assert note is not None and note.startswith("no ") and "yet" in note, fig.spec
        assert fig.thresholds() == []


def test_eval_score_chart_labels_fit_and_the_legend_stays_clear(seeded: tuple[str, datetime]) -> None:
    from hfops.observability import charts

    fig = library_chart(charts.eval_scores(series.scores_table(connect(seeded[0]))))
    assert fig.no_data_note is None
    x = fig.layers[0]["encoding"]["x"]
    groups = x["scale"]["domain"]
    assert groups[0] == "retrieval\nsquad_v2\nndcg@10"  # one short line per part: nothing cut
    assert all(max(len(part) for part in g.split("\n")) <= 10 for g in groups)
    assert x["axis"]["labelAngle"] == 0 and x["axis"]["labelExpr"] == "split(datum.label, '\\n')"
    legend = fig.layers[0]["encoding"]["color"]["legend"]
    assert legend["orient"] == "top"  # above the plot, away from the tick labels
    assert sorted(round(b, 2) for b in fig.column("bar")) == [0.4, 0.6, 0.7, 0.7]
