"""View model of the Evals page: what can be launched, live progress, the runs, one run, its Publish panel.

Runs and their rows come from :mod:`hfops.evals.runs`; which registry models can be evaluated is the evals
module's rule (:data:`hfops.evals.runs.EVALUABLE_STATUSES`); publishing is :mod:`hfops.publish`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import altair as alt
import numpy as np
import pandas as pd
import sqlite_utils

from hfops import charting, jobs, publish
from hfops.config import Settings
from hfops.errors import HfopsError
from hfops.evals import custom, custom_rows, runs, tasks
from hfops.evals.stats import metric_names
from hfops.progress import duration
from hfops.store import parse_ts
from hfops.views import as_dict

OTHER = "(other model id)"
COLORS = {"candidate": "#1f77b4", "production": "#ff7f0e"}
# (system, the run field naming its model)
SIDES = (("candidate", "model_id"), ("production", "production_id"))
OPTIONS_LIMIT = 200
EXAMPLES_SHOWN = 500
RUNS_SHOWN = 100
RUN_COLUMNS = [
    "id",
    "status",
    "model_id",
    "production_id",
    "task",
    "dataset",
    "done",
    "total",
    "primary_metric",
    "candidate_score",
    "production_score",
    "delta",
    "recommendation",
    "created_at",
]
METRIC_COLUMNS = [
    "metric",
    "candidate",
    "candidate CI low",
    "candidate CI high",
    "production",
    "production CI low",
    "production CI high",
    "delta",
    "delta CI low",
    "delta CI high",
    "n",
]
TEXT_WIDTH = 160
PASSAGE_WIDTH = 300
DISAGREEMENT_SHARE = 0.1  # default disagreement threshold: a tenth of the primary metric's scale
EXAMPLE_COLUMNS = [
    "delta",
    "candidate",
    "production",
    "query",
    "expected",
    "candidate output",
    "production output",
    "example",
    "candidate ms",
    "production ms",
    "candidate error",
    "production error",
]


# --- launching ----------------------------------------------------------------------------------------------


def evaluable_models(db: sqlite_utils.Database, task: str, limit: int = OPTIONS_LIMIT) -> list[str]:
    """Registry models of ``task`` in an evaluable status (the evals module's rule), best score first."""
    tags = list(tasks.task_spec(task).pipeline_tags)
    statuses = list(runs.EVALUABLE_STATUSES)
    found = db.execute(
        "SELECT c.model_id FROM candidates c JOIN models m ON m.model_id = c.model_id "
        f"WHERE c.status IN ({', '.join('?' for _ in statuses)}) "
        f"AND m.pipeline_tag IN ({', '.join('?' for _ in tags)}) ORDER BY c.score DESC, c.model_id LIMIT ?",
        [*statuses, *tags, limit],
    ).fetchall()
    return [str(r[0]) for r in found]


def model_options(db: sqlite_utils.Database, task: str, settings: Settings | None = None) -> list[str]:
    """Models worth offering for ``task``: the task's suggested models (the packaged MiniLM for retrieval),
    then evaluable registry models, then :data:`OTHER` (type an id). With ``settings`` the models that can
    run here come first (packaged, local, cached, downloadable, api only: :data:`hfops.models.checks.RANK`;
    no network)."""
    options = list(tasks.task_spec(task).suggested_models)
    options += [m for m in evaluable_models(db, task) if m not in options]
    if settings is not None:
        from hfops.evals import runnable

        pipeline = tasks.task_spec(task).pipeline_tags[0]
        options = runnable.runnable_first(
            options, runnable.facts(db, [(m, pipeline) for m in options], settings)
        )
    return [*options, OTHER]


def dataset_options(db: sqlite_utils.Database, task: str) -> list[str]:
    """The datasets a run of ``task`` can use: the built-in ones, then the stored custom sets."""
    return custom.dataset_choices(db, task)


def comparison_caption(db: sqlite_utils.Database, task: str, model_id: str) -> str:
    """Which model a run of ``model_id`` would be compared with (unescaped: the page escapes it)."""
    production = runs.production_for(db, task, model_id)
    baseline = " (no model promoted yet: the baseline)" if production == tasks.baseline_of(task) else ""
    return f"Compared with the production model of {task}: {production}{baseline}"


def launch(settings: Settings, model_id: str, task: str, dataset: str, limit: int) -> tuple[int, int]:
    """Store a run and queue its job with the console's settings; ``(run_id, job_id)``."""
    made = runs.submit_run(
        settings.store.path, model_id, task, dataset, limit, settings, config_path=settings.source_file
    )
    return int(made["run_id"]), int(made["job_id"])


# --- custom eval sets: upload, map, check, save -------------------------------------------------------------

NONE = "(none)"
PREVIEW_ROWS = 5
SET_COLUMNS = [
    "name",
    "task",
    "examples",
    "documents",
    "unanswerable",
    "version",
    "source",
    "file",
    "updated_at",
]
FIELD_HELP = {
    "id": "optional: the row number when unmapped",
    "question": "the question text",
    "context": "optional: a string, or a list of passages",
    "answers": "a list of answers, one answer, or empty = unanswerable",
    "query": "the query text",
    "relevant": "with a corpus file: the relevant document ids (a list or one id); with a passages column: "
    "their 0-based positions",
    "passages": "a column of each query's own passages (instead of a corpus file)",
    "selected": "with a passages column: one 0/1 flag per passage",
    "doc_id": "the corpus file's document id column",
    "doc_text": "the corpus file's document text column",
}
CORPUS_FIELDS = custom_rows.CORPUS_FIELDS


@dataclass
class Staged:
    """An uploaded file kept beside the store (``path``), its columns and first rows.

    Or why it cannot be read.
    """

    filename: str
    path: str | None
    columns: list[str]
    raw: pd.DataFrame
    total: int
    error: str | None = None


@dataclass
class FieldChoice:
    """One field of the mapping form: the columns offered (``NONE`` first when the field may stay unmapped)
    and the one chosen by default (the column named like the field, as the CLI's ``--map`` defaults)."""

    field: str
    required: bool
    options: list[str]
    default: str
    help: str


@dataclass
class MappedCheck:
    """The mapping checked on every row: a summary and the first mapped examples, or the error."""

    summary: str
    examples: pd.DataFrame
    version: str | None
    error: str | None = None


@dataclass
class Saved:
    """What saving a set did: the message, or the error; the set's name and task to select for a run."""

    message: str
    name: str | None = None
    task: str | None = None
    error: str | None = None


def _upload_error(exc: Exception, folder: Path) -> str:
    """An error as the operator reads it: the kept file's folder left out (``support.csv: line 3, ...``)."""
    return re.sub(re.escape(str(folder)) + r"[/\\][0-9a-f]{16}[/\\]", "", str(exc))


def _cell(value: Any) -> str:
    if isinstance(value, str):
        return short(value)
    return short(json.dumps(value, ensure_ascii=False, default=str))


def stage_upload(settings: Settings, filename: str, data: bytes) -> Staged:
    """Keep an uploaded file beside the store and read its columns and first rows with the CLI's reader."""
    folder = custom.upload_folder(settings.store.path)
    empty = pd.DataFrame()
    try:
        path = custom.save_upload(folder, filename, data)
        source = custom_rows.read_file(path)
    except HfopsError as exc:
        return Staged(filename, None, [], empty, 0, _upload_error(exc, folder))
    first = [row for _, row in source.rows[:PREVIEW_ROWS]]
    raw = pd.DataFrame([{c: _cell(r.get(c)) for c in source.columns} for r in first], columns=source.columns)
    paths = custom_rows.column_paths([row for _, row in source.rows[:100]])
    return Staged(filename, str(path), paths, raw, len(source.rows))


def field_choices(task: str, columns: list[str], corpus: bool = False) -> list[FieldChoice]:
    """The mapping form's fields for ``task`` (``corpus``: the corpus file's ``doc_id`` and ``doc_text``)."""
    fields = CORPUS_FIELDS if corpus else custom_rows.FIELDS[task]
    required = CORPUS_FIELDS if corpus else custom_rows.REQUIRED[task]
    choices = []
    for name in fields:
        same = name in columns
        options = list(columns) if same else [NONE, *columns]  # a same-named column is always used
        choices.append(FieldChoice(name, name in required, options, name if same else NONE, FIELD_HELP[name]))
    return choices


def unmapped_required(choices: list[FieldChoice], mapping: dict[str, str]) -> list[str]:
    """The required fields the form has not mapped yet (the page asks for them before checking the rows)."""
    return [c.field for c in choices if c.required and c.field not in mapping]


def mapping_of(chosen: dict[str, str]) -> dict[str, str]:
    """The form's choices as a mapping (fields left at ``NONE`` unmapped)."""
    return {f: c for f, c in chosen.items() if c and c != NONE}


def _example_row(task: str, example: Any, corpus: dict[str, str]) -> dict[str, Any]:
    if task == "qa":
        return {
            "id": example.id,
            "question": short(example.query),
            "context": short(example.context),
            "answers": short(" | ".join(example.answers)) if example.answers else "(unanswerable)",
        }
    first = (example.relevant or [""])[0]
    return {
        "id": example.id,
        "query": short(example.query),
        "relevant": short(example.relevant or []),
        "first relevant document": short(corpus.get(first, ""), PASSAGE_WIDTH),
        "documents": len(example.candidates) if example.candidates is not None else len(corpus),
    }


def check_mapping(
    settings: Settings,
    task: str,
    path: str,
    mapping: dict[str, str],
    corpus_path: str | None = None,
    limit: int | None = None,
) -> MappedCheck:
    """Map and validate every row as ``hfops dataset add`` would, storing nothing: the set's summary and its
    first mapped examples, or the error naming the row and the column."""
    folder = custom.upload_folder(settings.store.path)
    try:
        mapped = custom.map_file(task, path, mapping, corpus_path, limit or None)
    except HfopsError as exc:
        return MappedCheck("", pd.DataFrame(), None, _upload_error(exc, folder))
    parts = [f"{len(mapped.examples)} examples"]
    if mapped.corpus:
        parts.append(f"{len(mapped.corpus)} documents" + (" (each query's own)" if mapped.per_query else ""))
    if mapped.unanswerable:
        parts.append(f"{mapped.unanswerable} unanswerable")
    if mapped.skipped:
        parts.append(f"{len(mapped.skipped)} row(s) left out without a relevant document")
    parts.append(f"version {mapped.version}")
    rows = [_example_row(task, e, mapped.corpus) for e in mapped.examples[:PREVIEW_ROWS]]
    return MappedCheck("Every row checked: " + " · ".join(parts), pd.DataFrame(rows), mapped.version)


def save_set(
    db: sqlite_utils.Database,
    settings: Settings,
    name: str,
    task: str,
    path: str,
    mapping: dict[str, str],
    corpus_path: str | None = None,
    limit: int | None = None,
    replace: bool = False,
) -> Saved:
    """Store the set as ``hfops dataset add`` does (nothing is stored on an error)."""
    folder = custom.upload_folder(settings.store.path)
    try:
        result = custom.add_from_file(db, name, task, path, mapping, corpus_path, limit or None, replace)
    except HfopsError as exc:
        return Saved("", error=_upload_error(exc, folder))
    found = result.set
    change = f" (was {result.previous_version})" if result.previous_version else ""
    message = (
        f"{result.status}{change}: {found.name}, a {found.task} set of {found.examples} examples, version "
        f"{found.version}; selected in the launch form"
    )
    return Saved(message, found.name, found.task)


def suggested_set_name(filename: str) -> str:
    return custom.suggest_name(filename)


def custom_sets_table(db: sqlite_utils.Database) -> pd.DataFrame:
    """The stored custom sets (their files by name only)."""
    found = [
        {**s.to_dict(), "file": Path(s.location).name if s.source == "file" else s.location}
        for s in custom.list_sets(db)
    ]
    return pd.DataFrame(found, columns=SET_COLUMNS)


# --- progress and the runs list -----------------------------------------------------------------------------


@dataclass
class ProgressLine:
    """One queued or running eval job as the page shows it."""

    label: str
    queued: bool
    fraction: float
    text: str
    job_id: int = 0
    cancelling: bool = False  # a cancel was asked; the worker stops at its next batch


def active_eval_jobs(db: sqlite_utils.Database) -> list[jobs.Job]:
    return jobs.active_jobs(db, kind="eval_run")


def timing(job: jobs.Job, now: datetime | None = None) -> str:
    """How long a running job has been running (the time left is in its message, per phase:
    :mod:`hfops.progress`)."""
    started = parse_ts(job.started_at)
    if started is None:
        return ""
    return f"{duration(((now or datetime.now(UTC)) - started).total_seconds())} elapsed"


def progress_lines(
    db: sqlite_utils.Database, active: list[jobs.Job], now: datetime | None = None
) -> list[ProgressLine]:
    """A line per queued or running eval job: waiting, or the job's current phase (what it does, its counts
    and the time left in it, e.g. ``embedding the corpus with X 640/1730 · about 20 s left``) and the time
    elapsed; the bar is the phase's done/total."""
    lines = []
    for job in active:
        run = runs.run_for_job(db, job.id)
        label = f"Run {run['id'] if run else '?'} · job {job.id} · {job.status}"
        cancelling = bool(job.cancel_requested_at)
        if cancelling:
            label += " · cancelling"
        if job.status == "queued":
            lines.append(ProgressLine(label, True, 0.0, "", job.id, cancelling))
            continue
        done, total = job.done or 0, job.total or 0
        fraction = min(1.0, done / total) if total else 0.0
        text = " · ".join(part for part in (job.message or "starting", timing(job, now)) if part)
        lines.append(ProgressLine(label, False, fraction, text, job.id, cancelling))
    return lines


def cancel(db: sqlite_utils.Database, job_id: int) -> str:
    """Ask the worker to stop an eval job at its next batch (the run is then resumable)."""
    jobs.cancel(db, job_id)
    return f"Cancelling job {job_id}: the worker stops at its next batch; the run page can resume it."


def resumable(db: sqlite_utils.Database, run: Any) -> bool:
    """Whether a run stopped part-way (cancelled, or failed) and its job can be queued again."""
    if run["status"] not in ("cancelled", "failed") or not run["job_id"]:
        return False
    job = jobs.get_job(db, int(run["job_id"]))
    return job is not None and job.status in ("cancelled", "failed")


def resume(settings: Settings, run: Any) -> str:
    """Queue a cancelled or failed run's job again; the worker resumes where it stopped."""
    job = jobs.resume(settings.store.path, int(run["job_id"]))
    return f"Run {run['id']} queued again as job {job.id}; the worker resumes it where it stopped."


def runs_table(db: sqlite_utils.Database, limit: int = RUNS_SHOWN) -> pd.DataFrame:
    """The most recent runs, newest first (an empty frame when there are none)."""
    found = [as_dict(r) for r in runs.list_runs(db, limit=limit)]
    return pd.DataFrame(found, columns=RUN_COLUMNS)


def run_ids(db: sqlite_utils.Database, limit: int = RUNS_SHOWN) -> list[int]:
    return [int(r["id"]) for r in runs.list_runs(db, limit=limit)]


# --- one run ------------------------------------------------------------------------------------------------


@dataclass
class RunView:
    """The header of the run page, shaped for display (text is unescaped: the page escapes it)."""

    run: Any
    lines: list[str]
    error: str | None
    recommendation: tuple[str, str] | None  # (decision, reason)
    rule: str | None
    registry: str | None

    @property
    def finished(self) -> bool:
        return bool(self.run["metrics"])

    @property
    def publishable(self) -> bool:
        return self.run["status"] == "succeeded"


def run_view(db: sqlite_utils.Database, run_id: int) -> RunView | None:
    """The run's summary lines, error, recommendation and registry move, or None when there is no such run."""
    run = runs.get_run(db, run_id)
    if run is None:
        return None
    lines = [
        f"{run['model_id']} (candidate) vs {run['production_id']} (production)",
        f"{run['task']} on {run['dataset']} · dataset version {run['dataset_version'] or '—'} · "
        f"{run['done']}/{run['total'] or '?'} examples · status {run['status']}",
        f"Errors: candidate {run['candidate_errors']}, production {run['production_errors']} · cache "
        f"{run['cache_hits']} hits / {run['cache_misses']} misses · {run['model_calls']} model calls",
    ]
    recommendation = None
    if run["recommendation"]:
        recommendation = (str(run["recommendation"]), str(run["recommendation_reason"] or ""))
    rule = run["recommendation_rule"]
    registry_move = None
    if run["recommendation"] and run["status_after"]:
        registry_move = (
            f"Registry: {run['status_before']} → evaluating → {run['status_after']} "
            f"(evidence eval_run:{run['id']})"
        )
    return RunView(
        run=run,
        lines=lines,
        error=run["error"] or None,
        recommendation=recommendation,
        rule=f"Rule {rule['name']}: {rule['text']}" if run["recommendation"] and rule else None,
        registry=registry_move,
    )


def metric_table(run: Any) -> pd.DataFrame:
    """One row per metric: candidate, production and delta with their 95% CIs (the task's metric order)."""
    by_metric: dict[str, dict[str, Any]] = {}
    for m in run["metrics"]:
        row = by_metric.setdefault(m["metric"], {"metric": m["metric"], "n": m["n"]})
        row[m["system"]] = m["value"]
        row[f"{m['system']} CI low"] = m["ci_low"]
        row[f"{m['system']} CI high"] = m["ci_high"]
    order = list(metric_names(run["task"], run["dataset"]))
    rows = sorted(
        by_metric.values(), key=lambda r: order.index(r["metric"]) if r["metric"] in order else len(order)
    )
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)


def metrics_chart(run: Any, table: pd.DataFrame) -> alt.TopLevelMixin:
    """Candidate vs production per metric, error bars = bootstrap 95% CI."""
    labels = {system: f"{system}: {run[side]}" for system, side in SIDES}
    rows = [
        {
            "metric": row["metric"],
            "system": labels[system],
            "value": row[system],
            "CI low": row[f"{system} CI low"],
            "CI high": row[f"{system} CI high"],
        }
        for _, row in table.iterrows()
        for system, _side in SIDES
    ]
    data = pd.DataFrame(rows, columns=["metric", "system", "value", "CI low", "CI high"])
    base = alt.Chart(data).encode(
        x=alt.X("metric:N", sort=list(table["metric"]), title=None, axis=alt.Axis(labelAngle=0)),
        xOffset=alt.XOffset("system:N", sort=list(labels.values())),
    )
    bars = base.mark_bar().encode(
        y=alt.Y("value:Q", title="score"),
        color=_system_colors(labels),
        tooltip=["metric", "system", alt.Tooltip("value:Q", format=".4f"), "CI low", "CI high"],
    )
    errors = base.mark_rule(color="#333333").encode(y="CI low:Q", y2="CI high:Q")
    return alt.layer(bars, errors).properties(title="Candidate vs production (95% CI)", height=380)


def _system_colors(labels: dict[str, str]) -> alt.Color:
    """Candidate blue, production orange; the legend above the plot (one label a row: model ids are long)."""
    return alt.Color(
        "system:N",
        scale=alt.Scale(domain=list(labels.values()), range=[COLORS[s] for s in labels]),
        legend=charting.legend(columns=1, label_limit=400),
    )


def examples_frame(db: sqlite_utils.Database, run_id: int) -> pd.DataFrame:
    """Every example of the run as stored (for the distribution and latency charts)."""
    return pd.DataFrame([as_dict(e) for e in runs.run_examples(db, run_id, limit=100_000)])


def distribution_chart(examples: pd.DataFrame, metric: str) -> alt.TopLevelMixin:
    """Per-example primary scores of both systems (overlaid histograms, 20 bins)."""
    return _histograms(examples, "primary", 20, f"Score distribution ({metric} per example)", metric)


def latency_chart(examples: pd.DataFrame) -> alt.TopLevelMixin:
    """Per-example latency of both systems (batched encoders: batch time / batch size), 30 bins."""
    return _histograms(examples, "latency_ms", 30, "Latency per example (ms)", "ms")


def histogram_bins(examples: pd.DataFrame, column: str, bins: int) -> pd.DataFrame:
    """``system, start, end, examples``: both systems' ``{system}_{column}`` counted in the same ``bins``
    bins (values that are missing are left out). Binned here, so the chart carries ``2 * bins`` rows
    whatever the run's size."""
    values = {
        system: pd.to_numeric(examples.get(f"{system}_{column}", pd.Series(dtype=float)), errors="coerce")
        .dropna()
        .to_numpy(dtype=float)
        for system in ("candidate", "production")
    }
    both = np.concatenate(list(values.values()))
    if not both.size:
        return pd.DataFrame(columns=["system", "start", "end", "examples"])
    edges = np.histogram_bin_edges(both, bins=bins)
    rows = []
    for system, found in values.items():
        counts, _ = np.histogram(found, bins=edges)
        rows += [
            {"system": system, "start": float(lo), "end": float(hi), "examples": int(n)}
            for lo, hi, n in zip(edges[:-1], edges[1:], counts, strict=True)
        ]
    return pd.DataFrame(rows)


def _histograms(
    examples: pd.DataFrame, column: str, bins: int, title: str, x_title: str
) -> alt.TopLevelMixin:
    data = histogram_bins(examples, column, bins)
    labels = {"candidate": "candidate", "production": "production"}
    return (
        alt.Chart(data)
        .mark_bar(opacity=0.6, binSpacing=0)
        .encode(
            x=alt.X("start:Q", bin="binned", title=x_title),
            x2="end:Q",
            y=alt.Y("examples:Q", stack=None, title="examples"),
            color=_system_colors(labels),
            tooltip=["system", "start", "end", "examples"],
        )
        .properties(title=title, height=330)
    )


def short(value: Any, width: int = TEXT_WIDTH) -> str:
    """A value as one bounded line of text (lists joined with commas)."""
    text = (
        value
        if isinstance(value, str)
        else ", ".join(map(str, value))
        if isinstance(value, list)
        else str(value)
    )
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def corpus_for(settings: Settings, run: Any) -> dict[str, str] | None:
    """The passages of a retrieval run's dataset (id -> text) from the shipped sample or the stored custom
    set, or None when they cannot be shown here (a QA run, a Hub-streamed set, a custom set replaced or
    removed since the run, a dataset that no longer loads)."""
    from hfops.evals.data import load_eval_set
    from hfops.store import get_db

    if tasks.task_spec(run["task"]).expected_field != "relevant":
        return None
    if run["dataset_source"] == custom.SOURCE:
        db = get_db(settings.store.path)
        found = custom.find_set(db, run["dataset"])
        if found is None or found.version != run.get("dataset_version"):
            return None
        return custom.stored_documents(db, run["dataset"])
    if run["dataset_source"] != "local":
        return None
    if not tasks.is_builtin(run["dataset"]):
        return None
    try:
        return load_eval_set(settings, run["dataset"], run["task"]).corpus
    except (HfopsError, OSError, ValueError):
        return None


def _passage(doc_ids: Any, corpus: dict[str, str] | None, relevant: set[str]) -> str:
    """A ranking's first passage as text, marked ✓ when it is a relevant one."""
    if not doc_ids:
        return ""
    top = str(doc_ids[0])
    mark = "✓" if top in relevant else "✗"
    text = (corpus or {}).get(top)
    return short(f"{mark} {top}: {text}" if text else f"{mark} {top}", PASSAGE_WIDTH)


def _output(value: Any, expected: dict[str, Any], corpus: dict[str, str] | None, retrieval: bool) -> str:
    if value is None:
        return ""
    if retrieval:
        return _passage(value, corpus, {str(r) for r in expected.get("relevant") or []})
    return short(value)


def _expected(expected: dict[str, Any], field: str, corpus: dict[str, str] | None) -> str:
    gold = expected.get(field)
    if field == "relevant":
        ids = [str(g) for g in gold or []]
        if not ids:
            return "(no relevant passage)"
        text = (corpus or {}).get(ids[0])
        more = f" (+{len(ids) - 1} more)" if len(ids) > 1 else ""
        return short(f"{ids[0]}: {text}{more}" if text else ", ".join(ids), PASSAGE_WIDTH)
    return short(gold or "(no answer)")


def example_table(found: list[Any], task: str, corpus: dict[str, str] | None = None) -> pd.DataFrame:
    """Per-example rows, scores first, then the query, the expected answer or passage and both systems' output
    side by side (retrieval: each system's first passage as text, ✓ when relevant)."""
    field = tasks.task_spec(task).expected_field
    retrieval = field == "relevant"
    rows = []
    for r in found:
        expected = r["expected"] or {}
        rows.append(
            {
                "delta": r["delta"],
                "candidate": r["candidate_primary"],
                "production": r["production_primary"],
                "query": short(r["input"].get("query", "")),
                "expected": _expected(expected, field, corpus),
                "candidate output": _output(r["candidate_output"], expected, corpus, retrieval),
                "production output": _output(r["production_output"], expected, corpus, retrieval),
                "example": r["example_id"],
                "candidate ms": r["candidate_latency_ms"],
                "production ms": r["production_latency_ms"],
                "candidate error": r["candidate_error"] or "",
                "production error": r["production_error"] or "",
            }
        )
    return pd.DataFrame(rows, columns=EXAMPLE_COLUMNS)


@dataclass
class Threshold:
    """The |delta| from which two systems disagree on an example, on the primary metric's scale."""

    default: float
    maximum: float
    step: float


def threshold_for(task: str) -> Threshold:
    """A tenth of the metric's scale (0.1 of ndcg@10; 10 points of F1) by default."""
    scale = tasks.task_spec(task).score_scale
    return Threshold(default=DISAGREEMENT_SHARE * scale, maximum=scale, step=scale / 100)


def is_disagreement(example: Any, threshold: float) -> bool:
    """The systems' primary scores differ by at least ``threshold``, or exactly one of them failed."""
    if bool(example["candidate_error"]) != bool(example["production_error"]):
        return True
    delta = example["delta"]
    return delta is not None and abs(float(delta)) >= threshold - 1e-12


def examples_shown(
    db: sqlite_utils.Database,
    run: Any,
    disagreements_only: bool,
    threshold: float | None = None,
    corpus: dict[str, str] | None = None,
) -> tuple[pd.DataFrame, str]:
    """The per-example table (all examples, or the disagreements largest |delta| first) and its caption."""
    found = list(runs.run_examples(db, run["id"], limit=100_000))
    metric = run["primary_metric"]
    if disagreements_only:
        limit = threshold_for(run["task"]).default if threshold is None else threshold
        differ = [e for e in found if is_disagreement(e, limit)]
        differ.sort(key=lambda e: -abs(float(e["delta"] or 0.0)))
        caption = (
            f"{len(differ)} of {len(found)} examples disagree: |delta {metric}| ≥ {limit:g} or one side "
            "failed; largest |delta| first"
        )
        shown = differ[:EXAMPLES_SHOWN]
    else:
        shown = found[:EXAMPLES_SHOWN]
        caption = (
            f"{len(shown)} of {len(found)} example(s) shown · candidate/production = per-example {metric}"
        )
    return example_table(shown, run["task"], corpus), caption


# --- publishing ---------------------------------------------------------------------------------------------


@dataclass
class PublishNotice:
    """The latest publish job of a run: ``level`` (info | success | error), a headline and detail text."""

    level: str
    headline: str
    detail: str
    active: bool


def publish_notice(db: sqlite_utils.Database, run_id: int) -> PublishNotice | None:
    """What became of the run's latest publish job, or None when it has none."""
    job = publish.latest_publish_job(db, run_id)
    if job is None:
        return None
    label = f"Publish job {job.id}"
    result = job.result or {}
    if job.active:
        return PublishNotice("info", f"{label}: {job.status} (the worker runs it: `hfops worker`)", "", True)
    if job.status == "failed":
        return PublishNotice("error", f"{label} failed: {job.error}", "", False)
    if job.status == "cancelled":
        return PublishNotice("info", f"{label} was cancelled", "", False)
    if result.get("mode") == "push":
        return PublishNotice(
            "success",
            f"{label}: pushed in one commit",
            f"Repo: {result['repo_id']} (private)\nCommit: {result['commit_url']}",
            False,
        )
    return PublishNotice(
        "info",
        f"{label}: dry run ({result.get('dry_run_reason')}), nothing pushed",
        f"Files written to {result.get('out_dir')}",
        False,
    )


@dataclass
class PublishPanel:
    """What the Publish panel shows before the button."""

    last_push: str | None
    token_note: str
    default_repo: str


def publish_panel(db: sqlite_utils.Database, run_id: int, settings: Settings) -> PublishPanel:
    pushed = publish.latest_commit(db, run_id)
    token = publish.token_status()
    note = f"HUGGINGFACE_WRITE_TOKEN: {token} — " + (
        "the worker creates the private repo if needed and pushes the report, summary and model card in one "
        "commit"
        if token == "set"
        else "without it the worker only writes the files locally (dry run)"
    )
    return PublishPanel(
        last_push=f"Last published to {pushed['repo_id']}: {pushed['commit_url']}" if pushed else None,
        token_note=note,
        default_repo=settings.publish.repo,
    )


def publish_in_progress(db: sqlite_utils.Database, run_id: int) -> bool:
    """Whether a publish job of the run is queued or running (the panel polls while one is)."""
    return publish.publish_active(db, run_id)


def queue_publish(settings: Settings, run_id: int, repo: str) -> int:
    """Queue a publish job of ``run_id`` with the console's settings; the job id."""
    return publish.enqueue_publish(settings.store.path, run_id, repo, settings=settings)
