"""Candidates: filter, sort and page through the registry in SQL; inspect one model; change its status.

Hub text (ids, tags, file names, card data) is untrusted: it is shown in dataframes, ``st.text``,
``st.json`` or escaped with :func:`hfops.console.plain`, never as HTML.
"""

from __future__ import annotations

import math
import urllib.parse
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from hfops import discovery, registry
from hfops.console import db, demo_mode, operator_errors, plain, settings
from hfops.store import get_db

PAGE_SIZES = (25, 50, 100, 200)
SORT_LABELS = {
    "score": "Score",
    "downloads": "Downloads (30 days)",
    "likes": "Likes",
    "last_modified": "Last modified",
    "created_at": "Created",
    "model_id": "Model id",
    "status": "Status",
}
TABLE_COLUMNS = {
    "model_id": st.column_config.TextColumn("Model", width="large"),
    "score": st.column_config.ProgressColumn("Score", min_value=0.0, max_value=1.0, format="%.3f"),
    "status": st.column_config.TextColumn("Status"),
    "pipeline_tag": st.column_config.TextColumn("Pipeline tag"),
    "license": st.column_config.TextColumn("Licence"),
    "library": st.column_config.TextColumn("Library"),
    "quantization": st.column_config.TextColumn("Quantization"),
    "downloads": st.column_config.NumberColumn("Downloads", format="localized"),
    "likes": st.column_config.NumberColumn("Likes", format="localized"),
    "safetensors": st.column_config.CheckboxColumn("safetensors"),
    "flag": st.column_config.TextColumn("Flag"),
    "last_modified": st.column_config.TextColumn("Last modified"),
}
# Widget keys (tests address widgets by these).
K_PAGE = "cand_page"
K_DETAIL = "cand_detail"
K_NEXT_STATUS = "cand_next_status"
K_REASON = "cand_reason"
K_FLASH = "cand_flash"
K_CLEAR_REASON = "cand_clear_reason"


def hub_url(endpoint: str, model_id: str) -> str:
    """The model's page on the configured Hub; the id is percent-encoded (it is untrusted)."""
    return f"{endpoint.rstrip('/')}/{urllib.parse.quote(model_id, safe='/')}"


@st.cache_data(ttl=600, show_spinner=False, max_entries=16)
def _cached_facets(store_path: str, sync_marker: tuple[Any, ...]) -> dict[str, list[str]]:
    return registry.facet_values(get_db(store_path))


def facets_for(conn: Any, store_path: str) -> dict[str, list[str]]:
    """Filter options (distinct values among candidates). They scan the whole table, so they are cached
    until the next sync run changes the models (status changes never add options)."""
    last = discovery.last_sync_run(conn) or {}
    return _cached_facets(store_path, (last.get("id"), last.get("status"), last.get("finished_at"), last.get("seen")))


def _reset_page() -> None:
    st.session_state[K_PAGE] = 1


def filter_widgets(facets: dict[str, list[str]]) -> tuple[registry.CandidateFilter, str, bool, int, Any]:
    """Filter, sort and page-size widgets; returns the filter, sort key, direction, page size and the
    column where the page number goes (it needs the total first)."""
    col = st.columns(4)
    pipeline_tags = col[0].multiselect(
        "Pipeline tag", facets["pipeline_tags"], key="cand_pipeline", on_change=_reset_page
    )
    licenses = col[1].multiselect("Licence", facets["licenses"], key="cand_license", on_change=_reset_page)
    libraries = col[2].multiselect("Library", facets["libraries"], key="cand_library", on_change=_reset_page)
    quantization = col[3].multiselect(
        "Quantization", facets["quantization"], key="cand_quant", on_change=_reset_page,
        help="'none' selects models without a detected quantization",
    )
    col = st.columns(4)
    statuses = col[0].multiselect("Status", facets["statuses"], key="cand_status", on_change=_reset_page)
    min_score = col[1].slider(
        "Minimum score", 0.0, 1.0, 0.0, 0.05, key="cand_min_score", on_change=_reset_page
    )
    text = col[2].text_input("Search model id", key="cand_text", on_change=_reset_page)
    flagged_only = col[3].checkbox(
        "Flagged only", key="cand_flagged", on_change=_reset_page,
        help="models that no longer match the candidate rule",
    )
    col = st.columns(4)
    sort = col[0].selectbox(
        "Sort by", list(SORT_LABELS), format_func=SORT_LABELS.__getitem__, key="cand_sort", on_change=_reset_page
    )
    descending = col[1].toggle("Descending", value=True, key="cand_desc", on_change=_reset_page)
    page_size = col[2].selectbox("Rows per page", PAGE_SIZES, index=1, key="cand_page_size", on_change=_reset_page)
    flt = registry.CandidateFilter(
        pipeline_tags=pipeline_tags,
        licenses=licenses,
        libraries=libraries,
        quantization=quantization,
        statuses=statuses,
        min_score=float(min_score),
        text=text,
        flagged_only=flagged_only,
    )
    return flt, sort, descending, int(page_size), col[3]


def show_table(found: list[dict[str, Any]], total: int, page: int, page_size: int) -> None:
    """The current page of candidates as a dataframe (drawn on a canvas: never HTML)."""
    first = (page - 1) * page_size + 1
    st.caption(f"Showing {first:,}–{first + len(found) - 1:,} of {total:,} candidates")
    frame = pd.DataFrame(found, columns=list(TABLE_COLUMNS))
    st.dataframe(frame, hide_index=True, column_config=TABLE_COLUMNS, column_order=list(TABLE_COLUMNS))


def breakdown_chart(breakdown: dict[str, float]) -> go.Figure:
    """A small horizontal bar chart of the score's per-term contributions."""
    terms = list(breakdown)
    fig = go.Figure(go.Bar(x=[breakdown[t] for t in terms], y=terms, orientation="h"))
    fig.update_layout(height=60 + 30 * len(terms), margin={"l": 10, "r": 10, "t": 10, "b": 10},
                      xaxis_title="contribution to the score", yaxis={"autorange": "reversed"})
    return fig


def breakdown_rows(breakdown: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows ``term, value, weight, contribution`` from a stored breakdown ``{term: {value, weight, contribution}}``
    (a bare number is taken as the contribution)."""
    out = []
    for term, entry in breakdown.items():
        if isinstance(entry, dict):
            out.append({"term": term, "value": entry.get("value"), "weight": entry.get("weight"),
                        "contribution": entry.get("contribution")})
        else:
            out.append({"term": term, "value": None, "weight": None, "contribution": entry})
    return out


def show_detail(model: dict[str, Any]) -> None:
    """Score breakdown, facts, tags, files, Hub link, rule failures and status history of one model."""
    model_id = model["model_id"]
    candidate = model.get("candidate") or {}
    st.subheader(plain(model_id))
    st.markdown(f"[Open {plain(model_id)} on the Hub]({hub_url(discovery.endpoint_in_use(settings()), model_id)})")
    col = st.columns(4)
    col[0].metric("Status", candidate.get("status", "—"))
    col[1].metric("Score", f"{candidate.get('score', 0.0):.3f}")
    col[2].metric("Downloads (30 days)", f"{model.get('downloads') or 0:,}")
    col[3].metric("Likes", f"{model.get('likes') or 0:,}")
    if candidate.get("flag"):
        st.warning(f"Flagged: {plain(candidate['flag'])}")
    if model.get("rule_failures"):
        st.warning("Fails the candidate rule: " + "; ".join(plain(f) for f in model["rule_failures"]))
    if model.get("use_restricted"):
        st.info("Licence is use-restricted (RAIL): check the use restrictions before production.")

    tab_score, tab_facts, tab_files, tab_history, tab_raw = st.tabs(
        ["Score breakdown", "Facts & tags", "Files", "Status history", "Raw Hub record"]
    )
    with tab_score:
        breakdown = candidate.get("score_breakdown") or {}
        if breakdown:
            table = breakdown_rows(breakdown)
            st.dataframe(pd.DataFrame(table), hide_index=True, key="cand_breakdown")
            terms = {r["term"]: float(r["contribution"]) for r in table
                     if isinstance(r["contribution"], int | float) and not isinstance(r["contribution"], bool)}
            if terms:
                st.plotly_chart(breakdown_chart(terms), config={"displayModeBar": False}, key="cand_breakdown_chart")
        else:
            st.caption("No score breakdown stored.")
    with tab_facts:
        facts = {
            "pipeline tag": model.get("pipeline_tag"),
            "task": model.get("task"),
            "licence": model.get("license"),
            "library": model.get("library_name"),
            "safetensors": model.get("safetensors"),
            "quantization": model.get("quantization") or "none",
            "downloads (all time)": model.get("downloads_all_time"),
            "created": model.get("created_at"),
            "last modified": model.get("last_modified"),
            "gated": model.get("gated"),
            "source": model.get("source"),
            "first seen": model.get("first_seen"),
            "last seen": model.get("last_seen"),
        }
        st.dataframe(
            pd.DataFrame([{"field": k, "value": "" if v is None else str(v)} for k, v in facts.items()]),
            hide_index=True, key="cand_facts",
        )
        st.markdown("**Tags**")
        st.text(", ".join(str(t) for t in model.get("tags") or []) or "(none)")
    with tab_files:
        siblings = model.get("siblings") or []
        if siblings:
            st.dataframe(pd.DataFrame({"file": [str(s) for s in siblings]}), hide_index=True, key="cand_files")
        else:
            st.caption("No file list in the stored record.")
    with tab_history:
        history = model.get("history") or []
        if history:
            st.dataframe(
                pd.DataFrame(history, columns=["at", "from_status", "to_status", "actor", "reason", "evidence"]),
                hide_index=True, key="cand_history",
            )
        else:
            st.caption("No status changes yet.")
    with tab_raw:
        st.json(model.get("raw") or {}, expanded=False)


def status_form(model: dict[str, Any]) -> None:
    """Move the model to an allowed next status with a required reason (recorded in the audit trail)."""
    current = (model.get("candidate") or {}).get("status")
    allowed = registry.TRANSITIONS.get(current or "", ())
    if not allowed:
        return
    if st.session_state.pop(K_CLEAR_REASON, False):
        st.session_state[K_REASON] = ""
    with st.form("cand_status_form"):
        st.markdown(f"**Change status** (now: {current})")
        to_status = st.selectbox("New status", allowed, key=K_NEXT_STATUS)
        reason = st.text_area("Reason (required, kept in the audit trail)", key=K_REASON)
        submitted = st.form_submit_button("Change status", type="primary")
    if submitted:
        with operator_errors("Status change"):
            result = registry.set_status(db(), model["model_id"], to_status, reason, actor="console")
            message = f"{plain(result['model_id'])}: {result['from']} → {result['to']}"
            if result["demoted"]:
                message += "; demoted to shadow: " + ", ".join(plain(m) for m in result["demoted"])
            st.session_state[K_FLASH] = message
            st.session_state[K_CLEAR_REASON] = True
            st.rerun()


st.title("Candidates")
conn = db()
flt, sort, descending, page_size, page_slot = filter_widgets(facets_for(conn, settings().store.path))
page = int(st.session_state.get(K_PAGE) or 1)
found, total = registry.list_candidates(conn, flt, sort, descending, page=page, page_size=page_size)
pages = max(1, math.ceil(total / page_size))
if page > pages:  # the result shrank under the current page: back to the first page
    page = st.session_state[K_PAGE] = 1
    found, total = registry.list_candidates(conn, flt, sort, descending, page=page, page_size=page_size)
page_slot.number_input(f"Page (of {pages:,})", min_value=1, max_value=pages, step=1, key=K_PAGE)

if not total:
    st.info("No candidates match. Load the embedded snapshot or sync the Hub from the Status page.")
    st.stop()
show_table(found, total, page, page_size)

st.divider()
ids = [row["model_id"] for row in found]
if st.session_state.get(K_DETAIL) not in ids:
    st.session_state.pop(K_DETAIL, None)
selected = st.selectbox("Model details (this page)", ids, key=K_DETAIL)
if flash := st.session_state.pop(K_FLASH, None):
    st.success(f"Status changed: {flash}")
model = registry.get_model(conn, selected) if selected else None
if model is None:
    st.stop()
show_detail(model)
if not demo_mode():
    status_form(model)
