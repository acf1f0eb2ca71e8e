"""Evals: launch a shadow run (a worker job), watch its progress, list runs, inspect one run, publish it.

A run page shows the metric table with 95% CIs, the recommendation and its rule, charts (candidate vs
production per metric with error bars, score distribution, latency histogram) and the per-example table,
filterable to the disagreements. The custom eval sets are listed, and one is added from an upload (previews of
the rows as read and as mapped, every row checked as ``hfops dataset add`` does, then saved and selected in
the launch form). Launching, adding sets and publishing are absent in the read-only demo.
Widgets and layout only: the data comes from :mod:`hfops.views.evals`.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from hfops.console import db, demo_mode, operator_errors, plain, require_settings, settings
from hfops.evals import TASKS
from hfops.views import evals as view

POLL_SECONDS = 1.5
# Widget keys (tests address widgets by these).
K_MODEL = "evals_model"
K_MODEL_TEXT = "evals_model_text"
K_TASK = "evals_task"
K_DATASET = "evals_dataset"
K_LIMIT = "evals_limit"
K_LAUNCH = "evals_launch"
K_RUN = "evals_run_select"
K_DISAGREE = "evals_disagreements"
K_THRESHOLD = "evals_threshold"
K_REFRESH = "evals_refresh"
K_CANCEL = "evals_cancel"
K_RESUME = "evals_resume"
K_FLASH = "evals_flash"
K_PUBLISH = "evals_publish"
K_PUBLISH_REPO = "evals_publish_repo"
K_SET_TASK = "evals_set_task"
K_SET_FILE = "evals_set_file"
K_SET_CORPUS = "evals_set_corpus"
K_SET_MAP = "evals_set_map_"  # + field (corpus fields: + "corpus_" + field)
K_SET_LIMIT = "evals_set_limit"
K_SET_NAME = "evals_set_name"
K_SET_REPLACE = "evals_set_replace"
K_SET_SAVE = "evals_set_save"
K_SET_FLASH = "evals_set_flash"
K_SET_PICK = "evals_set_pick"  # (task, name) to select in the launch form on the next run
K_SET_MEMO = "evals_set_memo_"
UPLOAD_TYPES = ["csv", "jsonl", "json", "parquet"]
EXAMPLE_TYPES = {
    "delta": st.column_config.NumberColumn("delta", format="%+.3f", width=70),
    "candidate": st.column_config.NumberColumn("candidate", format="%.3f", width=80),
    "production": st.column_config.NumberColumn("production", format="%.3f", width=80),
    "query": st.column_config.TextColumn("query", width=220),
    "expected": st.column_config.TextColumn("expected", width=260),
    "candidate output": st.column_config.TextColumn("candidate output", width=260),
    "production output": st.column_config.TextColumn("production output", width=260),
}
LEVELS = {"info": st.info, "success": st.success, "error": st.error, "warning": st.warning}


def launch_form() -> None:
    """Model, task, dataset, sample size -> a queued eval_run job."""
    cfg = settings()
    if picked := st.session_state.pop(K_SET_PICK, None):  # a set saved below: select it (before the widgets)
        st.session_state[K_TASK], st.session_state[K_DATASET] = picked
    st.subheader("Launch a shadow run")
    left, middle, right = st.columns(3)
    task = left.selectbox("Task", TASKS, key=K_TASK)
    dataset = middle.selectbox("Dataset", view.dataset_options(db(), task), key=K_DATASET)
    limit = right.number_input(
        "Sample size", min_value=1, max_value=5000, value=cfg.eval.default_limit, step=10, key=K_LIMIT
    )
    choice = st.selectbox("Candidate model", view.model_options(db(), task, cfg), key=K_MODEL)
    model_id = st.text_input("Model id", key=K_MODEL_TEXT) if choice == view.OTHER else choice
    st.caption(plain(view.comparison_caption(db(), task, model_id or "")))
    if st.button("Launch shadow run", type="primary", key=K_LAUNCH):
        with operator_errors("Launch"):
            run_id, job_id = view.launch(cfg, model_id or "", task, dataset, int(limit))
            st.session_state[K_RUN] = run_id
            st.success(
                f"Queued eval run {run_id} (job {job_id}); the worker runs it and this page shows its "
                "progress."
            )


def memo(name: str, key: tuple[Any, ...], make: Any) -> Any:
    """``make()`` once per ``key`` in this session (an upload is read and checked once, not on
    every rerun)."""
    slot = K_SET_MEMO + name
    kept = st.session_state.get(slot)
    if kept is None or kept[0] != key:
        kept = (key, make())
        st.session_state[slot] = kept
    return kept[1]


def staged(label: str, key: str, name: str) -> view.Staged | None:
    """A file uploader; the uploaded file kept beside the store and previewed (its first rows), or None."""
    cfg = settings()
    upload = st.file_uploader(label, type=UPLOAD_TYPES, key=key)
    if upload is None:
        return None
    kept: view.Staged = memo(
        name, (upload.file_id, upload.name), lambda: view.stage_upload(cfg, upload.name, upload.getvalue())
    )
    if kept.error:
        st.error(f"Not read: {plain(kept.error)}")
        return None
    st.caption(f"{plain(upload.name)}: {kept.total} rows; the first {len(kept.raw)} as read")
    st.dataframe(kept.raw, hide_index=True, key=f"{key}_raw")
    return kept


def mapping_widgets(choices: list[view.FieldChoice], prefix: str) -> dict[str, str]:
    chosen = {}
    columns = st.columns(min(len(choices), 3))
    for i, choice in enumerate(choices):
        label = choice.field + ("" if choice.required else " (optional)")
        chosen[choice.field] = columns[i % len(columns)].selectbox(
            label,
            choice.options,
            index=choice.options.index(choice.default),
            key=f"{K_SET_MAP}{prefix}{choice.field}",
            help=choice.help,
        )
    return view.mapping_of(chosen)


def custom_set_form() -> None:
    """Upload a file, map its columns (previews of the rows as read and as mapped), check every row, save."""
    cfg = settings()
    st.caption(
        "The same reader and checks as `hfops dataset add`: every row is checked before anything is stored; "
        "the file is kept beside the store."
    )
    task = st.selectbox("Task of the set", TASKS, key=K_SET_TASK)
    source = staged("Examples file (CSV, JSON Lines, JSON, parquet)", K_SET_FILE, "file")
    if source is None or source.path is None:
        return
    st.markdown("Map the columns")
    choices = view.field_choices(task, source.columns)
    mapping = mapping_widgets(choices, "")
    corpus_path = None
    if task == "retrieval" and "passages" not in mapping:
        corpus = staged("Corpus file (documents: doc_id, doc_text)", K_SET_CORPUS, "corpus")
        if corpus is not None and corpus.path is not None:
            mapping |= mapping_widgets(view.field_choices(task, corpus.columns, corpus=True), "corpus_")
            corpus_path = corpus.path
    limit = int(
        st.number_input("Only the first N rows (0 = all)", min_value=0, value=0, step=100, key=K_SET_LIMIT)
    )
    if missing := view.unmapped_required(choices, mapping):
        st.info(f"Choose the column for {' and '.join(missing)}.")
        return
    check: view.MappedCheck = memo(
        "check",
        (task, source.path, tuple(sorted(mapping.items())), corpus_path, limit),
        lambda: view.check_mapping(cfg, task, source.path or "", mapping, corpus_path, limit),
    )
    if check.error:
        st.error(f"The mapping does not fit the file: {plain(check.error)}")
        return
    st.success(check.summary)
    st.dataframe(check.examples, hide_index=True, key="evals_set_mapped")
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    name = left.text_input("Set name", value=view.suggested_set_name(source.filename), key=K_SET_NAME)
    replace = right.checkbox("Replace", key=K_SET_REPLACE, help="store these rows as the set's new version")
    if st.button("Save set", type="primary", key=K_SET_SAVE):
        saved = view.save_set(db(), cfg, name, task, source.path, mapping, corpus_path, limit, replace)
        if saved.error:
            st.error(f"Not saved: {plain(saved.error)}")
        else:
            st.session_state[K_SET_FLASH] = saved.message
            st.session_state[K_SET_PICK] = (saved.task, saved.name)
            st.rerun()


def custom_sets() -> None:
    """The stored custom sets; the upload form unless in the read-only demo."""
    st.subheader("Custom eval sets")
    if flash := st.session_state.pop(K_SET_FLASH, None):
        st.success(plain(flash))
    table = view.custom_sets_table(db())
    if table.empty:
        st.caption("No custom eval sets yet.")
    else:
        st.dataframe(table, hide_index=True, key="evals_sets_table")
    if not demo_mode():
        with st.expander("Add a custom eval set", expanded=table.empty):
            custom_set_form()


def live_runs(polling: bool) -> None:
    """Progress bars and the runs list; re-runs on a timer while a run is queued or running."""
    conn = db()
    active = view.active_eval_jobs(conn)
    if flash := st.session_state.pop(K_FLASH, None):
        st.info(plain(flash))
    if active:
        st.subheader("In progress")
        for line in view.progress_lines(conn, active):
            bar, action = st.columns([6, 1], vertical_alignment="center")
            if line.queued:
                bar.info(f"{line.label}: waiting for the worker (`hfops worker`; `make run` starts it)")
            else:
                bar.progress(line.fraction, text=f"{line.label} — {plain(line.text)}")
            if (
                not demo_mode()
                and not line.cancelling
                and action.button("Cancel", key=f"{K_CANCEL}_{line.job_id}")
            ):
                with operator_errors("Cancel"):
                    st.session_state[K_FLASH] = view.cancel(conn, line.job_id)
                    st.rerun()
    st.subheader("Runs")
    st.button("Refresh", key=K_REFRESH)
    table = view.runs_table(conn)
    if table.empty:
        st.caption("No eval runs yet.")
    else:
        st.dataframe(table, hide_index=True, key="evals_runs_table")
    if polling and not active:
        st.rerun(scope="app")


def show_run(run_id: int) -> view.RunView | None:
    """The run page: summary, recommendation, metric table, charts, per-example table."""
    conn = db()
    shown = view.run_view(conn, run_id)
    if shown is None:
        st.warning(f"No eval run {run_id}.")
        return None
    run = shown.run
    st.subheader(f"Run {run['id']}")
    for line in shown.lines:
        st.text(line)
    if shown.error:
        st.error(f"Run failed: {plain(shown.error)}")
    if run["status"] == "cancelled":
        st.warning(plain(run["message"] or "Run cancelled."))
    if not demo_mode() and view.resumable(conn, run):
        if st.button("Resume run", key=K_RESUME, icon=":material/play_arrow:"):
            with operator_errors("Resume"):
                st.success(plain(view.resume(settings(), run)))
    if shown.recommendation:
        decision, reason = shown.recommendation
        {"promote": st.success, "reject": st.error}.get(decision, st.warning)(
            f"Recommendation: {decision} — {plain(reason)}"
        )
        if shown.rule:
            st.caption(plain(shown.rule))
        if shown.registry:
            st.text(shown.registry)
    if not shown.finished:
        st.caption("Metrics appear when the run has finished.")
        return shown
    table = view.metric_table(run)
    st.dataframe(table, hide_index=True, key="evals_metric_table")
    st.altair_chart(view.metrics_chart(run, table), key="evals_chart_metrics")
    frame = view.examples_frame(conn, run_id)
    left, right = st.columns(2)
    with left:
        st.altair_chart(view.distribution_chart(frame, run["primary_metric"]), key="evals_chart_scores")
    with right:
        st.altair_chart(view.latency_chart(frame), key="evals_chart_latency")
    st.markdown("**Examples**")
    left, right = st.columns([1, 2])
    only = left.checkbox("Only disagreements (largest |delta| first)", key=K_DISAGREE)
    bounds = view.threshold_for(run["task"])
    threshold = right.slider(
        f"Disagreement: |delta {run['primary_metric']}| at least",
        0.0,
        bounds.maximum,
        bounds.default,
        bounds.step,
        key=f"{K_THRESHOLD}_{run['task']}",
        disabled=not only,
        help="or exactly one of the systems failed on the example",
    )
    examples, caption = view.examples_shown(conn, run, only, threshold, passages(run))
    st.caption(plain(caption))
    st.dataframe(examples, hide_index=True, key="evals_examples_table", column_config=EXAMPLE_TYPES)
    return shown


def passages(run: Any) -> dict[str, str] | None:
    """The run's passages (retrieval on a shipped sample or a custom set), cached per dataset version."""
    return cached_corpus(run["task"], run["dataset"], run["dataset_source"], run["dataset_version"] or "")


@st.cache_data(ttl=3600, show_spinner=False, max_entries=8)
def cached_corpus(task: str, dataset: str, source: str, version: str) -> dict[str, str] | None:
    return view.corpus_for(
        settings(), {"task": task, "dataset": dataset, "dataset_source": source, "dataset_version": version}
    )


def publish_status(run_id: int, polling: bool) -> None:
    """The latest publish job of the run; re-runs on a timer while it is queued or running."""
    notice = view.publish_notice(db(), run_id)
    if notice is None:
        return
    LEVELS[notice.level](plain(notice.headline) if notice.level == "error" else notice.headline)
    if notice.detail:
        st.text(notice.detail)
    if polling and not notice.active:
        st.rerun(scope="app")


def publish_panel(run_id: int) -> None:
    """Publish a succeeded run's report and model card to a private Hub repo (dry run without the token)."""
    cfg = settings()
    panel = view.publish_panel(db(), run_id, cfg)
    st.markdown("**Publish to the Hub**")
    if panel.last_push:
        st.text(panel.last_push)
    st.caption(panel.token_note)
    repo = st.text_input("Hub repo (ORG/NAME)", value=panel.default_repo, key=K_PUBLISH_REPO)
    if st.button("Publish", key=K_PUBLISH):
        with operator_errors("Publish"):
            job_id = view.queue_publish(cfg, run_id, repo)
            st.success(f"Queued publish job {job_id}.")
    active = view.publish_in_progress(db(), run_id)
    st.fragment(publish_status, run_every=POLL_SECONDS if active else None)(run_id, active)


require_settings()  # a configuration that does not load: its explanation instead of the page
st.title("Evals")
if not demo_mode():
    launch_form()
custom_sets()
active_now = bool(view.active_eval_jobs(db()))
st.fragment(live_runs, run_every=POLL_SECONDS if active_now else None)(active_now)
run_ids = view.run_ids(db())
if run_ids:
    if st.session_state.get(K_RUN) not in run_ids:
        st.session_state.pop(K_RUN, None)
    chosen = int(st.selectbox("Run", run_ids, key=K_RUN, format_func=lambda i: f"run {i}"))
    shown_run = show_run(chosen)
    if not demo_mode() and shown_run is not None and shown_run.publishable:
        publish_panel(chosen)
