"""Candidates: filter, sort and page through the registry; inspect one model; change its status.

Widgets and layout only: the data comes from :mod:`hfops.views.candidates`. Hub text is shown in dataframes,
``st.text``, ``st.json`` or escaped with :func:`hfops.console.plain`, never as HTML.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from hfops.console import db, demo_mode, operator_errors, plain, require_settings, settings
from hfops.views import candidates as view

# Widths fit every column in the wide layout of a 1400 px window, sidebar open, without horizontal scrolling
# (checked in the browser test); library and safetensors are in the detail's facts.
COLUMN_TYPES = {
    "model_id": st.column_config.TextColumn("Model", width=162),
    "score": st.column_config.NumberColumn("Score", format="%.3f", width=55),
    view.PUBLISHED: st.column_config.NumberColumn(
        "Published",
        format="%.3f",
        width=70,
        help="published MTEB MSMARCO nDCG@10 (full benchmark; not our measurement: see the detail's "
        "Published scores tab)",
    ),
    "status": st.column_config.TextColumn("Status", width=80),
    "runnable": st.column_config.TextColumn(
        "Runs here",
        width=70,
        help="packaged, local, cached, ↓ N GB (downloadable), api only, too large, pickle only, gated, "
        "no runtime, unknown (not checked: hfops models check)",
    ),
    "pipeline_tag": st.column_config.TextColumn("Pipeline tag", width=105),
    "license": st.column_config.TextColumn("Licence", width=78),
    "quantization": st.column_config.TextColumn("Quantization", width=90),
    "downloads": st.column_config.NumberColumn("Downloads", format="compact", width=75, help="last 30 days"),
    "likes": st.column_config.NumberColumn("Likes", format="compact", width=50),
    "flag": st.column_config.TextColumn("Flag", width=50, help="why it no longer matches the rule"),
    "last_modified": st.column_config.TextColumn(
        "Modified", width=78, help="last modified on the Hub (UTC date)"
    ),
}
SEARCH_TYPES = {
    "model_id": st.column_config.TextColumn("Model", width=190),
    "status": st.column_config.TextColumn("Status", width=105),
    "score": st.column_config.NumberColumn("Score", format="%.3f", width=55),
    "pipeline_tag": st.column_config.TextColumn("Pipeline tag", width=120),
    "license": st.column_config.TextColumn("Licence", width=80),
    "downloads": st.column_config.NumberColumn("Downloads", format="compact", width=75),
    "fails the rule": st.column_config.TextColumn("Fails the candidate rule", width=260),
}
# Widget keys (tests address widgets by these).
K_PAGE = "cand_page"
K_DETAIL = "cand_detail"
K_NEXT_STATUS = "cand_next_status"
K_REASON = "cand_reason"
K_FLASH = "cand_flash"
K_CLEAR_REASON = "cand_clear_reason"
K_TABLE = "cand_table"
K_SEARCH_TABLE = "cand_search_table"
K_PICKED = "cand_picked"
K_CLEAR = "cand_clear_filters"
FILTER_DEFAULTS: dict[str, Any] = {
    "cand_pipeline": [],
    "cand_license": [],
    "cand_library": [],
    "cand_quant": [],
    "cand_status": [],
    "cand_min_score": 0.0,
    "cand_text": "",
    "cand_flagged": False,
    "cand_runnable": False,
}
K_PUBLISHED = "cand_published_column"


@st.cache_data(ttl=600, show_spinner=False, max_entries=16)
def cached_facets(store_path: str, marker: tuple[Any, ...]) -> dict[str, list[str]]:
    """Filter options, cached until the next sync run changes the models."""
    return view.facets(store_path)


@st.cache_data(ttl=600, show_spinner=False, max_entries=16)
def cached_published(store_path: str, marker: tuple[Any, ...]) -> dict[str, float]:
    """Published retrieval scores of the stored models, cached until the next sync run changes the models."""
    return view.published_values(store_path)


def _reset_page() -> None:
    st.session_state[K_PAGE] = 1


def _clear_filters() -> None:
    for key, value in FILTER_DEFAULTS.items():
        st.session_state[key] = value
    _reset_page()


def filter_widgets(facets: dict[str, list[str]]) -> tuple[view.Filter, str, bool, int, Any]:
    """Filter, sort and page-size widgets; returns the filter, sort key, direction, page size and the
    column where the page number goes (it needs the total first)."""
    col = st.columns(4)
    pipeline_tags = col[0].multiselect(
        "Pipeline tag", facets["pipeline_tags"], key="cand_pipeline", on_change=_reset_page
    )
    licenses = col[1].multiselect("Licence", facets["licenses"], key="cand_license", on_change=_reset_page)
    libraries = col[2].multiselect("Library", facets["libraries"], key="cand_library", on_change=_reset_page)
    quantization = col[3].multiselect(
        "Quantization",
        facets["quantization"],
        key="cand_quant",
        on_change=_reset_page,
        help="'none' selects models without a detected quantization",
    )
    col = st.columns(4)
    statuses = col[0].multiselect("Status", facets["statuses"], key="cand_status", on_change=_reset_page)
    min_score = col[1].slider(
        "Minimum score", 0.0, 1.0, step=0.05, key="cand_min_score", on_change=_reset_page
    )
    text = col[2].text_input(
        "Search model id",
        key="cand_text",
        on_change=_reset_page,
        help="also searches every synced model, ignoring case and separators (phi 2 finds phi-2)",
    )
    flagged_only = col[3].checkbox(
        "Flagged only",
        key="cand_flagged",
        on_change=_reset_page,
        help="models that no longer match the candidate rule",
    )
    col[3].checkbox(
        "Runnable here only",
        key="cand_runnable",
        on_change=_reset_page,
        help="packaged, local or cached copies, and models a check found downloadable or on the API",
    )
    col[3].button("Clear filters", key=K_CLEAR, on_click=_clear_filters, icon=":material/filter_alt_off:")
    if not demo_mode() and col[3].button(
        "Queue evaluability check",
        key="cand_check",
        icon=":material/fact_check:",
        help=f"a worker job asks the Hub how up to {view.CHECK_BATCH} unchecked candidates can run here",
    ):
        with operator_errors("Queueing the check"):
            st.info(view.queue_evaluability_checks(settings().store.path, settings()))
    col = st.columns(4)
    sort = col[0].selectbox(
        "Sort by",
        list(view.SORT_LABELS),
        format_func=view.SORT_LABELS.__getitem__,
        key="cand_sort",
        on_change=_reset_page,
    )
    descending = col[1].toggle("Descending", value=True, key="cand_desc", on_change=_reset_page)
    col[1].toggle(
        "Published score column",
        key=K_PUBLISHED,
        help="the published MTEB MSMARCO nDCG@10 beside our score (also shown when sorting by it)",
    )
    page_size = col[2].selectbox(
        "Rows per page",
        view.PAGE_SIZES,
        index=view.PAGE_SIZES.index(view.DEFAULT_PAGE_SIZE),
        key="cand_page_size",
        on_change=_reset_page,
    )
    flt = view.Filter(
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


def follow_selection(table: str, rows: list[int], ids: list[str]) -> None:
    """A newly selected row of ``table`` opens that model's detail (the selectbox below can still
    change it)."""
    picked = ids[rows[0]] if rows and 0 <= rows[0] < len(ids) else None
    if picked is not None and st.session_state.get(K_PICKED) != [table, picked]:
        st.session_state[K_PICKED] = [table, picked]
        st.session_state[K_DETAIL] = picked


def show_table(found: view.CandidatePage) -> None:
    """The current page of candidates as a dataframe (drawn on a canvas: never HTML); a row click opens it."""
    st.caption(plain(found.caption))
    event = st.dataframe(
        found.frame(),
        hide_index=True,
        column_config=COLUMN_TYPES,
        column_order=found.columns,
        on_select="rerun",
        selection_mode="single-row",
        key=K_TABLE,
        width="stretch",
    )
    st.caption("Tick a row's box to open its detail below.")
    follow_selection(K_TABLE, list(event.selection.rows), found.ids)


def show_search(result: view.SearchResult) -> None:
    """Every synced model matching the search, with the rule clauses each non-candidate fails."""
    st.markdown(f"**All synced models matching “{plain(result.text)}”**")
    st.caption(plain(result.caption))
    if not result.rows:
        return
    event = st.dataframe(
        result.frame(),
        hide_index=True,
        column_config=SEARCH_TYPES,
        column_order=list(view.SEARCH_COLUMNS),
        on_select="rerun",
        selection_mode="single-row",
        key=K_SEARCH_TABLE,
        width="stretch",
    )
    follow_selection(K_SEARCH_TABLE, list(event.selection.rows), result.ids)


def show_detail(model: view.ModelDetail) -> None:
    """Score breakdown, facts, tags, files, Hub link, rule failures and status history of one model."""
    st.subheader(plain(model.model_id))
    st.markdown(f"[Open {plain(model.model_id)} on the Hub]({model.hub_url})")
    col = st.columns(4)
    col[0].metric("Status", model.status)
    col[1].metric("Score", f"{model.score:.3f}")
    col[2].metric("Downloads (30 days)", f"{model.downloads:,}")
    col[3].metric("Likes", f"{model.likes:,}")
    if model.flag:
        st.warning(f"Flagged: {plain(model.flag)}")
    if model.rule_failures:
        st.warning("Fails the candidate rule: " + "; ".join(plain(f) for f in model.rule_failures))
    if model.use_restricted:
        st.info("Licence is use-restricted (RAIL): check the use restrictions before production.")

    tab_score, tab_facts, tab_published, tab_files, tab_history, tab_raw = st.tabs(
        ["Score breakdown", "Facts & tags", "Published scores", "Files", "Status history", "Raw Hub record"]
    )
    with tab_published:
        if model.published:
            st.caption(plain(model.published_note))
            st.dataframe(model.published, hide_index=True, key="cand_published")
        else:
            st.caption("No published MTEB scores for this model.")
    with tab_score:
        if model.breakdown:
            st.dataframe(model.breakdown, hide_index=True, key="cand_breakdown")
            if model.chart_terms:
                st.altair_chart(view.breakdown_chart(model.chart_terms), key="cand_breakdown_chart")
        else:
            st.caption("No score breakdown stored.")
    with tab_facts:
        st.dataframe(model.facts, hide_index=True, key="cand_facts")
        st.markdown("**Tags**")
        st.text(model.tags)
    with tab_files:
        if model.files:
            st.dataframe({"file": model.files}, hide_index=True, key="cand_files")
        else:
            st.caption("No file list in the stored record.")
    with tab_history:
        if not model.history.empty:
            st.dataframe(model.history, hide_index=True, key="cand_history")
        else:
            st.caption("No status changes yet.")
    with tab_raw:
        st.json(model.raw, expanded=False)


def status_form(model: view.ModelDetail) -> None:
    """Move the model to an allowed next status with a required reason (recorded in the audit trail)."""
    if not model.next_statuses:
        return
    if st.session_state.pop(K_CLEAR_REASON, False):
        st.session_state[K_REASON] = ""
    with st.form("cand_status_form"):
        st.markdown(f"**Change status** (now: {model.status})")
        to_status = st.selectbox("New status", model.next_statuses, key=K_NEXT_STATUS)
        reason = st.text_area("Reason (required, kept in the audit trail)", key=K_REASON)
        submitted = st.form_submit_button("Change status", type="primary")
    if submitted:
        with operator_errors("Status change"):
            st.session_state[K_FLASH] = view.change_status(db(), model.model_id, to_status, reason)
            st.session_state[K_CLEAR_REASON] = True
            st.rerun()


require_settings()  # a configuration that does not load: its explanation instead of the page
st.title("Candidates")
conn = db()
store_path = settings().store.path
flt, sort, descending, page_size, page_slot = filter_widgets(
    cached_facets(store_path, view.facets_marker(conn))
)
with_published = sort == view.PUBLISHED or bool(st.session_state.get(K_PUBLISHED))
found = view.candidate_page(
    conn,
    flt,
    sort,
    descending,
    int(st.session_state.get(K_PAGE) or 1),
    page_size,
    settings=settings(),
    runnable_only=bool(st.session_state.get("cand_runnable")),
    published=cached_published(store_path, view.published_marker(conn)) if with_published else None,
)
if found.page != st.session_state.get(K_PAGE):  # the result shrank under the page shown
    st.session_state[K_PAGE] = found.page
page_slot.number_input(f"Page (of {found.pages:,})", min_value=1, max_value=found.pages, step=1, key=K_PAGE)

search = view.search_models(conn, flt.text)
if found.total:
    show_table(found)
else:
    st.info(plain(view.explain_empty(conn, flt)))
if search is not None:
    show_search(search)
choices = list(dict.fromkeys([*found.ids, *(search.ids if search else [])]))
if not choices:
    st.stop()

st.divider()
if st.session_state.get(K_DETAIL) not in choices:
    st.session_state.pop(K_DETAIL, None)
# No model is open until one is picked (a ticked row or this selectbox): the first paint draws the table
# only, not the detail's chart, tabs and raw record (issue 13: seconds of browser work before the table).
selected = st.selectbox(
    "Model details (this page and the search)",
    choices,
    index=None,
    placeholder="Tick a row's box above, or choose a model here",
    key=K_DETAIL,
)
if flash := st.session_state.pop(K_FLASH, None):
    st.success(f"Status changed: {plain(flash)}")
detail = view.model_detail(conn, selected, settings()) if selected else None
if detail is None:
    st.stop()
show_detail(detail)
if not demo_mode():
    status_form(detail)
