"""Candidates page (AppTest): filters, SQL paging, detail view, audited status changes, demo mode."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from hfops import discovery, registry
from hfops.store import connect, utcnow, write_tx
from hfops.views import candidates as view
from tests.charts_kit import page_charts
from tests.console_kit import open_console
from tests.registry_rows import add_candidates, model_row, numbered

PAGE = "pages/candidates.py"

# Known rows: 60 plain embedding candidates plus a few with distinctive facets.
SPECIAL = [
    {
        "model_id": "acme/gen-gptq",
        "pipeline_tag": "text-generation",
        "library_name": "transformers",
        "license": "mit",
        "quantization": "gptq",
        "score": 0.31,
    },
    {
        "model_id": "acme/gen-awq-gguf",
        "pipeline_tag": "text2text-generation",
        "library_name": "transformers",
        "license": "creativeml-openrail-m",
        "use_restricted": 1,
        "quantization": "awq,gguf",
        "score": 0.22,
    },
    {
        "model_id": "acme/old-flagged",
        "license": "bsd-3-clause",
        "score": 0.12,
        "status": "rejected",
        "flag": "no longer matches the rule: licence",
        "rule_failures": ["licence not allowed: cc-by-nc-4.0"],
    },
]


def open_page(db_path: str, monkeypatch: pytest.MonkeyPatch, demo: bool = False) -> AppTest:
    """The console on the Candidates page over the store at ``db_path``."""
    return open_console(db_path, monkeypatch, PAGE, timeout=30, **({"HFOPS_DEMO": "1"} if demo else {}))


def shown_ids(at: AppTest) -> list[str]:
    return at.dataframe[0].value["model_id"].tolist()


def frame_with(at: AppTest, column: str) -> pd.DataFrame:
    """The first dataframe on the page that has ``column`` (dataframes carry no key in AppTest)."""
    for frame in at.dataframe:
        if column in frame.value.columns:
            return frame.value
    raise AssertionError(f"no dataframe with a {column!r} column")


def status_button(at: AppTest) -> Any:
    """The submit button of the status form."""
    return next(b for b in at.button if b.label == "Change status")


def unescaped(text: str) -> str:
    """Markdown text as the reader sees it (the escaping of untrusted text removed)."""
    return re.sub(r"\\(.)", r"\1", text)


def rendered_markdown(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown]


def open_detail(at: AppTest, model_id: str) -> AppTest:
    """Open ``model_id``'s detail through the selectbox below the table (no detail is open until a pick)."""
    at.selectbox(key="cand_detail").set_value(model_id).run()
    assert not at.exception
    return at


@pytest.fixture
def store(db_path: str) -> str:
    add_candidates(db_path, numbered(60) + SPECIAL)
    return db_path


def test_first_page_sorted_by_score(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(store, monkeypatch)
    assert shown_ids(at) == [f"org/model-{i:03d}" for i in range(50)]
    assert unescaped(at.caption[0].value) == "Showing 1–50 of 63 candidates"
    assert at.number_input(key="cand_page").label == "Page (of 2)"


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("cand_pipeline", ["text-generation"], ["acme/gen-gptq"]),
        ("cand_license", ["mit", "creativeml-openrail-m"], ["acme/gen-gptq", "acme/gen-awq-gguf"]),
        ("cand_library", ["transformers"], ["acme/gen-gptq", "acme/gen-awq-gguf"]),
        ("cand_quant", ["gguf"], ["acme/gen-awq-gguf"]),
        ("cand_status", ["rejected"], ["acme/old-flagged"]),
    ],
)
def test_multiselect_filters_change_rows(
    store: str, monkeypatch: pytest.MonkeyPatch, key: str, value: list[str], expected: list[str]
) -> None:
    at = open_page(store, monkeypatch)
    at.multiselect(key=key).set_value(value).run()
    assert shown_ids(at) == expected


def test_quantization_none_score_text_and_flag_filters(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(store, monkeypatch)
    at.multiselect(key="cand_quant").set_value(["none"]).run()
    assert "acme/gen-gptq" not in shown_ids(at)
    assert unescaped(at.caption[0].value).endswith("of 61 candidates")

    at.multiselect(key="cand_quant").set_value([])
    at.slider(key="cand_min_score").set_value(0.95).run()
    assert shown_ids(at) == [f"org/model-{i:03d}" for i in range(41)]  # scores 0.99 .. 0.95

    at.slider(key="cand_min_score").set_value(0.0)
    at.text_input(key="cand_text").input("model-05").run()
    assert shown_ids(at) == [f"org/model-05{i}" for i in range(10)]

    at.text_input(key="cand_text").input("no_such%model").run()
    assert not at.dataframe  # LIKE wildcards are escaped: nothing matches
    assert unescaped(at.info[0].value).startswith(
        "No candidate matches these filters (63 candidates in the store)"
    )
    assert "without model id contains “no_such%model”: 63" in unescaped(at.info[0].value)

    at.text_input(key="cand_text").input("")
    at.checkbox(key="cand_flagged").check().run()
    assert shown_ids(at) == ["acme/old-flagged"]


def test_pagination_and_sorting(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(store, monkeypatch)
    at.selectbox(key="cand_page_size").set_value(25).run()
    assert at.number_input(key="cand_page").label == "Page (of 3)"
    at.number_input(key="cand_page").set_value(2).run()
    assert shown_ids(at) == [f"org/model-{i:03d}" for i in range(25, 50)]
    assert unescaped(at.caption[0].value) == "Showing 26–50 of 63 candidates"
    at.number_input(key="cand_page").set_value(3).run()
    assert shown_ids(at)[-3:] == ["acme/gen-gptq", "acme/gen-awq-gguf", "acme/old-flagged"]

    # A filter change goes back to page 1.
    at.multiselect(key="cand_library").set_value(["sentence-transformers"]).run()
    assert at.number_input(key="cand_page").value == 1
    assert shown_ids(at)[0] == "org/model-000"

    at.selectbox(key="cand_sort").set_value("model_id")
    at.toggle(key="cand_desc").set_value(False).run()
    assert shown_ids(at)[:2] == ["acme/old-flagged", "org/model-000"]


def test_detail_view_content(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    registry.set_status(
        connect(store), "acme/old-flagged", "candidate", "licence fixed upstream", actor="alice"
    )
    at = open_page(store, monkeypatch)
    at.multiselect(key="cand_license").set_value(["bsd-3-clause"]).run()
    assert at.selectbox(key="cand_detail").options == ["acme/old-flagged"]
    open_detail(at, "acme/old-flagged")

    assert at.subheader[0].value == "acme/old\\-flagged"
    assert (
        "[Open acme/old\\-flagged on the Hub](https://huggingface.co/acme/old-flagged)"
        in rendered_markdown(at)
    )
    assert {m.label: m.value for m in at.metric}["Score"] == "0.120"
    warnings = " ".join(w.value for w in at.warning)
    assert "no longer matches the rule" in warnings and "cc\\-by\\-nc\\-4\\.0" in warnings

    breakdown = frame_with(at, "contribution")
    stored = registry.get_model(connect(store), "acme/old-flagged")["candidate"]["score_breakdown"]
    assert breakdown.set_index("term")["contribution"].to_dict() == {
        term: entry["contribution"] for term, entry in stored.items()
    }
    assert (
        list(stored) == ["downloads", "likes", "recency", "license"] and stored["license"]["contribution"] > 0
    )
    (chart,) = page_charts(at)
    assert chart.spec["mark"]["type"] == "bar" and chart.spec["encoding"]["y"]["field"] == "term"
    assert chart.column("term") == ["downloads", "likes", "recency", "license"]
    assert chart.column("contribution") == pytest.approx([stored[t]["contribution"] for t in stored])
    assert "license:apache-2.0" in " ".join(t.value for t in at.text)
    assert frame_with(at, "file")["file"].tolist() == ["config.json", "model.safetensors", "README.md"]
    history = frame_with(at, "to_status")
    assert history[["from_status", "to_status", "actor", "reason"]].values.tolist() == [
        ["rejected", "candidate", "alice", "licence fixed upstream"]
    ]


def test_untrusted_hub_text_is_never_html(db_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    evil = "evil/<img src=x onerror=alert(1)>[x](javascript:alert(1))"
    add_candidates(
        db_path,
        [
            {
                "model_id": evil,
                "tags": ["<script>alert(1)</script>"],
                "siblings": ["<b>weights</b>.safetensors"],
            }
        ],
    )
    at = open_detail(open_page(db_path, monkeypatch), evil)
    link = next(m for m in rendered_markdown(at) if m.startswith("[Open"))
    html = MarkdownIt("commonmark").render(link)  # what a Markdown renderer makes of it
    assert "<img" not in html and "javascript:" not in html.split('href="')[1].split('"')[0]
    assert html.count("<a ") == 1
    assert (
        'href="https://huggingface.co/evil/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E%5Bx%5D'
        '%28javascript%3Aalert%281%29%29"'
    ) in html
    assert all(not m.proto.allow_html for m in at.markdown)
    assert frame_with(at, "file")["file"].tolist() == ["<b>weights</b>.safetensors"]  # shown as data


def test_status_change_lands_in_audit_table(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_detail(open_page(store, monkeypatch), "org/model-000")
    assert at.selectbox(key="cand_next_status").options == list(registry.TRANSITIONS["candidate"])
    at.selectbox(key="cand_next_status").set_value("evaluating")
    at.text_area(key="cand_reason").input("top score; run the shadow evals")
    status_button(at).click().run()
    assert not at.exception and not at.error
    assert "candidate → evaluating" in at.success[0].value
    assert at.text_area(key="cand_reason").value == ""  # cleared after success

    with sqlite3.connect(store) as conn:
        audit = conn.execute(
            "SELECT model_id, from_status, to_status, actor, reason FROM status_transitions"
        ).fetchall()
        status = conn.execute("SELECT status FROM candidates WHERE model_id = 'org/model-000'").fetchone()[0]
    assert audit == [
        ("org/model-000", "candidate", "evaluating", "console", "top score; run the shadow evals")
    ]
    assert status == "evaluating"
    assert frame_with(at, "to_status")["to_status"].tolist() == ["evaluating"]
    assert at.selectbox(key="cand_next_status").options == list(registry.TRANSITIONS["evaluating"])


def test_missing_reason_shows_error_not_exception(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_detail(open_page(store, monkeypatch), "org/model-000")
    at.selectbox(key="cand_next_status").set_value("promoted")
    at.text_area(key="cand_reason").input("   ")
    status_button(at).click().run()
    assert not at.exception
    assert at.error[0].value == "Status change failed: a reason is required for every status change"
    with sqlite3.connect(store) as conn:
        assert conn.execute("SELECT COUNT(*) FROM status_transitions").fetchone()[0] == 0


def test_demo_mode_has_no_status_form(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_detail(open_page(store, monkeypatch, demo=True), "org/model-000")
    assert at.subheader[0].value == "org/model\\-000"  # the detail view is still there
    assert [b.key for b in at.button] == ["cand_clear_filters"] and not at.text_area  # no write button
    assert "cand_next_status" not in [s.key for s in at.selectbox]


def test_empty_store_explains_how_to_load(db_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(db_path, monkeypatch)
    assert unescaped(at.info[0].value).startswith(
        "The store holds no models yet: load the embedded snapshot or sync"
    )


def test_an_empty_result_says_why(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 13: an empty filter result named the store as the cause even when it was full."""
    at = open_page(store, monkeypatch)
    at.multiselect(key="cand_pipeline").set_value(["text-generation"])
    at.multiselect(key="cand_status").set_value(["rejected"]).run()
    assert not at.dataframe
    info = unescaped(at.info[0].value)
    assert len(at.info) == 1 and "snapshot" not in info and "sync the Hub" not in info
    assert info.startswith("No candidate matches these filters (63 candidates in the store)")
    assert "without pipeline tag text-generation: 1" in info  # acme/old-flagged is rejected
    assert "without status rejected: 1" in info  # acme/gen-gptq is text-generation


def test_no_model_passes_the_rule_is_said(db_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    db = connect(db_path)
    with write_tx(db):
        db["models"].insert(model_row("acme/nc-model", rule_failures=["licence not allowed: cc-by-nc-4.0"]))
    at = open_page(db_path, monkeypatch)
    assert unescaped(at.info[0].value).startswith("1 models are synced but none passes the candidate rule")


def test_clear_filters_resets_every_filter(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(store, monkeypatch)
    at.multiselect(key="cand_license").set_value(["mit"])
    at.slider(key="cand_min_score").set_value(0.3)
    at.text_input(key="cand_text").input("gen")
    at.checkbox(key="cand_flagged").check().run()
    assert "cand_table" not in [
        d.key for d in at.dataframe
    ]  # no candidate left (the search still shows models)
    at.button(key="cand_clear_filters").click().run()
    assert not at.exception
    assert at.multiselect(key="cand_license").value == [] and at.slider(key="cand_min_score").value == 0.0
    assert at.text_input(key="cand_text").value == "" and not at.checkbox(key="cand_flagged").value
    assert unescaped(at.caption[0].value) == "Showing 1–50 of 63 candidates"


def test_selecting_a_row_opens_its_detail(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(store, monkeypatch)
    # The first paint draws the table only: no model is open (no heading, chart or status form) until a pick.
    assert at.selectbox(key="cand_detail").value is None
    assert at.selectbox(key="cand_detail").options[:2] == ["org/model-000", "org/model-001"]
    assert not at.subheader and not page_charts(at) and not at.get("form") and not at.metric
    at.session_state["cand_table"] = {"selection": {"rows": [3], "columns": []}}  # a click on the 4th row
    at.run()
    assert not at.exception
    assert at.selectbox(key="cand_detail").value == "org/model-003"
    assert at.subheader[0].value == "org/model\\-003"
    at.selectbox(key="cand_detail").set_value("org/model-007").run()  # the selectbox still chooses
    assert at.subheader[0].value == "org/model\\-007"


def test_search_covers_every_synced_model_ignoring_separators(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13: "phi 2" missed phi-2, and models that are not candidates were not searched at all."""
    db = connect(store)
    with write_tx(db):
        db["models"].insert(
            model_row(
                "microsoft/phi-2", pipeline_tag="text-generation", library_name="transformers", license="mit"
            )
        )
        db["candidates"].insert(
            {
                "model_id": "microsoft/phi-2",
                "status": "candidate",
                "score": 0.5,
                "score_breakdown": "{}",
                "created_at": utcnow(),
                "updated_at": utcnow(),
            }
        )
        db["models"].insert(
            model_row(
                "someone/phi-2_gguf-q4",
                pipeline_tag="text-generation",
                license="other",
                rule_failures=["licence not allowed: other", "library not allowed: none"],
            )
        )
    at = open_page(store, monkeypatch)
    at.text_input(key="cand_text").input("PHI 2").run()
    assert not at.exception
    assert shown_ids(at) == ["microsoft/phi-2"]  # the candidate table finds it too
    assert unescaped(at.caption[0].value) == "Showing 1–1 of 1 candidates whose id contains “PHI-2”"
    found = frame_with(at, "fails the rule")
    assert found["model_id"].tolist() == ["microsoft/phi-2", "someone/phi-2_gguf-q4"]  # candidates first
    assert found["status"].tolist() == ["candidate", "not a candidate"]
    assert found["fails the rule"].tolist() == ["", "licence not allowed: other; library not allowed: none"]
    assert any(
        "2 synced model(s) match “PHI 2” ignoring case and separators" in unescaped(c.value)
        for c in at.caption
    )
    # The non-candidate opens like any model: its detail says which clauses it fails.
    at.session_state["cand_search_table"] = {"selection": {"rows": [1], "columns": []}}
    at.run()
    assert at.selectbox(key="cand_detail").value == "someone/phi-2_gguf-q4"
    assert any(
        "Fails the candidate rule: licence not allowed: other" in unescaped(w.value) for w in at.warning
    )
    assert {m.label: m.value for m in at.metric}["Status"] == "—"
    assert not at.get("form")  # no status form: it is not a candidate


@pytest.fixture(scope="module")
def snapshot_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The embedded snapshot synced once for this module (real Hub records)."""
    path = str(tmp_path_factory.mktemp("snapshot") / "hfops.db")
    discovery.sync_snapshot(path)
    return path


def test_real_snapshot_rows_match_the_registry(
    snapshot_store: str, db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with sqlite3.connect(snapshot_store) as src, sqlite3.connect(db_path) as dst:
        src.backup(dst)  # a consistent copy, WAL included
    at = open_page(db_path, monkeypatch)
    found, total = registry.list_candidates(connect(db_path), page_size=50)
    assert total > 0
    assert shown_ids(at) == [r["model_id"] for r in found]
    tag = found[0]["pipeline_tag"]
    at.multiselect(key="cand_pipeline").set_value([tag]).run()
    expected, _ = registry.list_candidates(connect(db_path), registry.CandidateFilter(pipeline_tags=[tag]))
    assert shown_ids(at) == [r["model_id"] for r in expected]
    detail = registry.get_model(connect(db_path), found[0]["model_id"])
    open_detail(at, found[0]["model_id"])
    assert frame_with(at, "contribution")["term"].tolist() == list(detail["candidate"]["score_breakdown"])


def test_filter_options_follow_a_new_sync(db_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(db_path, monkeypatch)
    assert at.multiselect(key="cand_pipeline").options == []
    add_candidates(db_path, SPECIAL)
    db = connect(db_path)
    with write_tx(db):  # what a finished sync leaves behind
        db["sync_runs"].insert(
            {
                "source": "tests",
                "started_at": utcnow(),
                "finished_at": utcnow(),
                "status": "succeeded",
                "seen": 3,
            }
        )
    at.run()
    assert at.multiselect(key="cand_pipeline").options == [
        "feature-extraction",
        "text-generation",
        "text2text-generation",
    ]
    assert "gguf" in at.multiselect(key="cand_quant").options


def test_every_table_column_has_a_width_that_fits_the_wide_layout(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13: Quantization was clipped and Downloads/Likes/Flag/Last modified sat behind sideways
    scrolling. The browser test measures the real grid; this checks the widths the page asks for."""
    at = open_page(store, monkeypatch)
    table = next(d for d in at.dataframe if d.key == "cand_table")
    config = json.loads(table.proto.columns)
    shown = [c for c in table.value.columns if not config.get(c, {}).get("hidden")]
    assert {"quantization", "downloads", "likes", "flag", "last_modified"} <= set(shown)
    widths = {c: config[c]["width"] for c in shown}
    assert all(isinstance(w, int) for w in widths.values()), widths
    # 1400 px window, sidebar open: 928 px of content, 35 px of it for the row-selection boxes.
    assert sum(widths.values()) <= 928 - 35, widths
    assert widths["quantization"] >= 90 and widths["model_id"] >= 160 and widths["pipeline_tag"] >= 105
    dates = table.value["last_modified"].tolist()
    assert all(d == "" or re.fullmatch(r"\d{4}-\d\d-\d\d", d) for d in dates), dates  # a date, or nothing


# --- the narrow tables behind the page (migration 0014) and the same answers as the registry ----------------

JOINED = (
    "SELECT c.model_id, c.score, c.status, c.flag, m.pipeline_tag, m.license, m.library_name, "
    "m.quantization, m.downloads, m.likes, m.last_modified, m.created_at, m.use_restricted, m.safetensors "
    "FROM candidates c JOIN models m ON m.model_id = c.model_id ORDER BY c.model_id"
)
NARROW = (
    "SELECT model_id, score, status, flag, pipeline_tag, license, library_name, quantization, downloads, "
    "likes, last_modified, created_at, use_restricted, safetensors FROM candidate_rows ORDER BY model_id"
)


def test_candidate_rows_follow_every_write(snapshot_store: str, db_path: str) -> None:
    """Issue 17: the page reads candidate_rows / model_search; triggers keep them equal to the registry
    through a sync, a re-sync of changed records, status changes, direct updates and deletes."""
    with sqlite3.connect(snapshot_store) as src, sqlite3.connect(db_path) as dst:
        src.backup(dst)
    db = connect(db_path)
    assert db.execute(NARROW).fetchall() == db.execute(JOINED).fetchall()
    assert len(db.execute(NARROW).fetchall()) > 600

    first = db.execute("SELECT model_id FROM candidate_rows ORDER BY score DESC LIMIT 1").fetchone()[0]
    registry.set_status(db, first, "evaluating", "bench the narrow table", actor="tests")
    with write_tx(db):
        db.execute(
            "UPDATE models SET downloads = 7, likes = 3, quantization = 'gguf' WHERE model_id = ?", [first]
        )
        db.execute("UPDATE candidates SET flag = 'no longer listed' WHERE model_id = ?", [first])
        gone = db.execute("SELECT model_id FROM candidate_rows ORDER BY score LIMIT 1").fetchone()[0]
        db.execute("DELETE FROM status_transitions WHERE model_id = ?", [gone])
        db.execute("DELETE FROM candidates WHERE model_id = ?", [gone])
    add_candidates(db_path, [{"model_id": "acme/new-one", "downloads": 123}])
    assert db.execute(NARROW).fetchall() == db.execute(JOINED).fetchall()
    row = db.execute(
        "SELECT status, downloads, flag FROM candidate_rows WHERE model_id = ?", [first]
    ).fetchone()
    assert row == ("evaluating", 7, "no longer listed")

    keys = dict(db.execute("SELECT model_id, search_key FROM model_search").fetchall())
    ids = [r[0] for r in db.execute("SELECT model_id FROM models").fetchall()]
    assert sorted(keys) == sorted(ids)
    assert all(keys[m] == view.search_key(m) for m in ids if m.isascii())
    assert keys["acme/new-one"] == "acmenewone"


@pytest.mark.parametrize(
    ("flt", "sort", "descending", "page"),
    [
        (registry.CandidateFilter(), "score", True, 1),
        (registry.CandidateFilter(), "downloads", True, 3),
        (registry.CandidateFilter(), "likes", False, 2),
        (registry.CandidateFilter(pipeline_tags=["text-generation"]), "last_modified", True, 1),
        (registry.CandidateFilter(licenses=["mit"], min_score=0.2), "created_at", False, 1),
        (registry.CandidateFilter(quantization=["gguf"]), "model_id", True, 1),
        (registry.CandidateFilter(quantization=["none"], text="bge"), "status", True, 1),
        (
            registry.CandidateFilter(libraries=["sentence-transformers"], flagged_only=False),
            "score",
            False,
            2,
        ),
    ],
)
@pytest.mark.parametrize("scan_below", [0, 10**9], ids=["many matches", "few matches"])
def test_the_page_query_answers_like_the_registry(
    snapshot_store: str,
    flt: registry.CandidateFilter,
    sort: str,
    descending: bool,
    page: int,
    scan_below: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The page's query over candidate_rows gives exactly the rows and total of registry.list_candidates,
    whether it walks the sort column's index (many matches) or the filters' (few)."""
    monkeypatch.setattr(view, "SCAN_BELOW", scan_below)
    db = connect(snapshot_store)
    expected = registry.list_candidates(db, flt, sort, descending, page=page, page_size=25)
    got = view.list_candidates(db, flt, sort, descending, page=page, page_size=25)
    assert expected[1] > 0
    assert got[1] == expected[1]
    assert [r.to_dict() for r in got[0]] == [r.to_dict() for r in expected[0]]


def test_check_evaluability_queues_one_worker_job_for_the_unchecked(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hfops import jobs

    at = open_page(store, monkeypatch)
    at.button(key="cand_check").click().run()
    assert not at.exception, [e.value for e in at.exception]
    queued = jobs.list_jobs(connect(store))
    assert [j.kind for j in queued] == ["models_check"] and queued[0].status == "queued"
    live = (
        connect(store)
        .execute("SELECT model_id FROM candidates WHERE status NOT IN ('rejected', 'retired')")
        .fetchall()
    )
    checked = queued[0].params["model_ids"]
    assert sorted(checked) == sorted(r[0] for r in live)  # none of them has a local copy here
    assert set(queued[0].params["tasks"]) == set(checked)
    assert any(f"Job {queued[0].id} checks {len(live)} candidates" in i.value for i in at.info)


def _plans(db: Any, run: Callable[[], object]) -> list[tuple[str, str]]:
    """Each SELECT that ``run`` sends to ``db`` and SQLite's plan for it (``EXPLAIN QUERY PLAN``, its
    steps joined)."""
    sent: list[str] = []
    db.conn.set_trace_callback(sent.append)
    try:
        run()
    finally:
        db.conn.set_trace_callback(None)
    selects = [sql for sql in sent if sql.lstrip().upper().startswith("SELECT")]
    return [
        (sql, " | ".join(r[-1] for r in db.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()))
        for sql in selects
    ]


def test_a_facet_filter_counts_from_its_index_and_pages_by_the_sort_index(
    snapshot_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A facet filter counts from the facets index (migration 0020), not every candidate; its page walks the
    facet's index when it matches few candidates and the sort column's when it matches many (a facet index
    would hand them all to a sort)."""
    db = connect(snapshot_store)
    flt = registry.CandidateFilter(pipeline_tags=["text-generation"])
    for scan_below, page_index in ((10**9, "candidate_rows_facets"), (0, "candidate_rows_downloads")):
        monkeypatch.setattr(view, "SCAN_BELOW", scan_below)
        plans = _plans(db, lambda: view.list_candidates(db, flt, "downloads", True, page=1, page_size=25))
        count, rows = plans
        assert "COUNT(*)" in count[0]
        assert "COVERING INDEX candidate_rows_facets" in count[1]
        assert f"INDEX {page_index}" in rows[1], rows
        assert ("TEMP B-TREE FOR ORDER BY" in rows[1]) == (scan_below > 0), rows  # (not its ties: RIGHT PART)
