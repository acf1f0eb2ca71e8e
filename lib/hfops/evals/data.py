"""Evaluation datasets: SQuAD v2 and MS MARCO v1.1 through ``datasets``, offline samples or Hub slices.

Offline (``[eval] source = "local"``, the default) reads the real samples shipped in ``data/`` with
``datasets.load_dataset("json", data_files=...)`` (cached by ``datasets`` under ``$HF_HOME/datasets``);
``source = "hub"`` streams a small slice of ``rajpurkar/squad_v2`` (validation) or ``microsoft/ms_marco``
config ``v1.1`` (validation) from the Hub. Every loaded set carries a ``version``: the SHA-256 of the source
file (local) or of the rows fetched (hub), stored with each run so results stay comparable.

Tasks built from the rows:

- ``retrieval`` on SQuAD v2: each question must find its own paragraph among *all* paragraphs of the set.
- ``retrieval`` on MS MARCO: each query ranks its own candidate passages; relevant = ``is_selected``.
  Queries without a selected passage are left out.
- ``qa`` on SQuAD v2: answer from the paragraph; unanswerable questions expect an empty answer.
- ``qa`` on MS MARCO: answer from the query's passages; queries without a gold answer are left out.

``--limit N`` picks a deterministic sample (the N ids with the smallest SHA-256 of ``dataset:id``), so
the same limit always selects the same examples, spread over the whole set.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hfops.config import Settings
from hfops.errors import DatasetError
from hfops.evals.tasks import DATASET_NAMES, DATASET_SPECS, TASK_NAMES, dataset_spec, is_ranking
from hfops.paths import DATA_DIR

# Views of the task table (hfops.evals.tasks), kept for callers that read them by dataset name.
LOCAL_FILES = {name: spec.local_file for name, spec in DATASET_SPECS.items()}
HUB_SOURCES = {name: (spec.hub.repo, spec.hub.config, spec.hub.split) for name, spec in DATASET_SPECS.items()}
REQUIRED_FIELDS = {name: spec.required_fields for name, spec in DATASET_SPECS.items()}
NO_ANSWER_MARKERS = {"no answer present.", "no answer present"}
_memo: dict[tuple[Any, ...], tuple[list[dict[str, Any]], str]] = {}
_memo_lock = threading.Lock()


@dataclass
class Example:
    """One evaluation item: the query, what a system sees, and the gold truth."""

    id: str
    query: str
    context: str = ""  # qa: the text to answer from
    answers: list[str] = field(default_factory=list)  # qa: gold answers ([] = unanswerable)
    relevant: list[str] = field(default_factory=list)  # retrieval: relevant document ids
    candidates: list[str] | None = None  # retrieval: ids to rank (None = the whole corpus)


@dataclass
class EvalSet:
    """The examples of one dataset for one task, with the corpus (retrieval) and the dataset version."""

    dataset: str
    task: str
    source: str
    version: str
    location: str
    examples: list[Example]
    corpus: dict[str, str] = field(default_factory=dict)  # retrieval: document id -> text
    available: int = 0  # examples before --limit

    @property
    def example_ids_hash(self) -> str:
        return hashlib.sha256("\n".join(e.id for e in self.examples).encode()).hexdigest()[:16]


def data_dir(settings: Settings) -> Path:
    """Folder holding the offline samples (``[eval] data_dir`` or the shipped ``data/``)."""
    return Path(settings.eval.data_dir) if settings.eval.data_dir else DATA_DIR


def local_file(settings: Settings, dataset: str) -> Path:
    """The sample file of ``dataset`` in the data folder."""
    _check_dataset(dataset)
    return data_dir(settings) / dataset_spec(dataset).local_file


def _check_dataset(dataset: str) -> None:
    if dataset not in DATASET_SPECS:
        raise DatasetError(f"unknown dataset {dataset!r} (choose one of {', '.join(DATASET_NAMES)})")


def _quiet_datasets() -> Any:
    import datasets

    datasets.disable_progress_bars()
    datasets.utils.logging.set_verbosity_error()
    return datasets


def _diagnose(path: Path) -> str:
    """Why ``path`` could not be parsed, with the line number when it is a JSON problem."""
    text = path.read_text(encoding="utf-8", errors="replace")
    if not text.strip():
        return "the file is empty"
    if path.suffix == ".jsonl":
        for line_no, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                return f"line {line_no}: not valid JSON ({exc.msg})"
            if not isinstance(value, dict):
                return f"line {line_no}: expected a JSON object, got {type(value).__name__}"
    else:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            return f"line {exc.lineno}: not valid JSON ({exc.msg})"
        if not isinstance(value, list):
            return f"expected a JSON list of rows, got {type(value).__name__}"
    return "rows with inconsistent types or layout"


def _load_local_rows(path: Path, dataset: str) -> tuple[list[dict[str, Any]], str]:
    """Rows of a local sample file via ``datasets`` and the file's content hash."""
    if not path.is_file():
        raise DatasetError(
            f"{path}: dataset file not found (the {dataset} sample ships in data/; "
            f'set [eval] data_dir, or [eval] source = "hub" to load from the Hub)'
        )
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _memo_lock:
        if key in _memo:
            return _memo[key]
    content = path.read_bytes()
    version = "sha256:" + hashlib.sha256(content).hexdigest()[:16]
    if not content.strip():
        raise DatasetError(f"{path}: the file is empty (no examples)")
    datasets = _quiet_datasets()
    try:
        table = datasets.load_dataset("json", data_files=str(path), split="train")
    except Exception as exc:  # datasets wraps parser errors in several exception types
        raise DatasetError(f"{path}: malformed dataset file: {_diagnose(path)}") from exc
    missing = [f for f in dataset_spec(dataset).required_fields if f not in table.column_names]
    if missing:
        raise DatasetError(
            f"{path}: wrong schema for {dataset}: missing field(s) {', '.join(missing)} "
            f"(found: {', '.join(table.column_names) or 'none'})"
        )
    rows = table.to_list()
    if not rows:
        raise DatasetError(f"{path}: no examples")
    with _memo_lock:
        _memo[key] = (rows, version)
    return rows, version


def _load_hub_rows(dataset: str, max_rows: int) -> tuple[list[dict[str, Any]], str, str]:
    """A small slice of the dataset streamed from the Hub, its version hash and its location."""
    hub = dataset_spec(dataset).hub
    repo, config, split = hub.repo, hub.config, hub.split
    location = hub.describe(max_rows)
    datasets = _quiet_datasets()
    try:
        stream = datasets.load_dataset(repo, config, split=split, streaming=True)
        rows = [dict(r) for r in stream.take(max_rows)]
    except Exception as exc:  # offline, network, auth: one clear message
        raise DatasetError(f"{location}: could not load from the Hub: {type(exc).__name__}: {exc}") from exc
    if not rows:
        raise DatasetError(f"{location}: no examples")
    missing = [f for f in dataset_spec(dataset).required_fields if f not in rows[0]]
    if missing:
        raise DatasetError(f"{location}: wrong schema: missing field(s) {', '.join(missing)}")
    version = "hub:" + hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return rows, version, location


def _row_error(location: str, index: int, message: str) -> DatasetError:
    return DatasetError(f"{location}: row {index + 1}: {message}")


def _squad_examples(
    rows: list[dict[str, Any]], task: str, location: str
) -> tuple[list[Example], dict[str, str]]:
    corpus: dict[str, str] = {}
    doc_of_context: dict[str, str] = {}
    per_title: dict[str, int] = {}
    examples: list[Example] = []
    for i, row in enumerate(rows):
        question, context, answers = row.get("question"), row.get("context"), row.get("answers")
        if not isinstance(question, str) or not question.strip():
            raise _row_error(location, i, "'question' must be a non-empty string")
        if not isinstance(context, str) or not context.strip():
            raise _row_error(location, i, "'context' must be a non-empty string")
        if not isinstance(answers, dict) or not isinstance(answers.get("text"), list):
            raise _row_error(location, i, '\'answers\' must be {"text": [...], "answer_start": [...]}')
        if context not in doc_of_context:
            title = str(row.get("title") or "doc")
            doc_id = f"{title}#{per_title.get(title, 0)}"
            per_title[title] = per_title.get(title, 0) + 1
            doc_of_context[context] = doc_id
            corpus[doc_id] = context
        examples.append(
            Example(
                id=str(row["id"]),
                query=question.strip(),
                context=context,
                answers=[str(a) for a in answers["text"]],
                relevant=[doc_of_context[context]],
            )
        )
    return examples, corpus if is_ranking(task) else {}


def _ms_marco_examples(
    rows: list[dict[str, Any]], task: str, location: str
) -> tuple[list[Example], dict[str, str]]:
    corpus: dict[str, str] = {}
    examples: list[Example] = []
    for i, row in enumerate(rows):
        query, passages, answers = row.get("query"), row.get("passages"), row.get("answers")
        if not isinstance(query, str) or not query.strip():
            raise _row_error(location, i, "'query' must be a non-empty string")
        if (
            not isinstance(passages, dict)
            or not isinstance(passages.get("passage_text"), list)
            or not isinstance(passages.get("is_selected"), list)
            or len(passages["passage_text"]) != len(passages["is_selected"])
        ):
            raise _row_error(
                location,
                i,
                '\'passages\' must be {"is_selected": [...], "passage_text": [...]} with equal lengths',
            )
        if not isinstance(answers, list):
            raise _row_error(location, i, "'answers' must be a list of strings")
        qid = str(row["query_id"])
        doc_ids = [f"{qid}#{j}" for j in range(len(passages["passage_text"]))]
        gold = [str(a) for a in answers if str(a).strip() and str(a).strip().lower() not in NO_ANSWER_MARKERS]
        if is_ranking(task):
            relevant = [
                d for d, sel in zip(doc_ids, passages["is_selected"], strict=True) if int(sel or 0) == 1
            ]
            if not relevant:
                continue
            for doc_id, text in zip(doc_ids, passages["passage_text"], strict=True):
                corpus[doc_id] = str(text)
            examples.append(Example(id=qid, query=query.strip(), relevant=relevant, candidates=doc_ids))
        else:
            if not gold:
                continue
            context = "\n\n".join(f"[{j + 1}] {t}" for j, t in enumerate(passages["passage_text"]))
            examples.append(Example(id=qid, query=query.strip(), context=context, answers=gold))
    return examples, corpus


Reader = Callable[[list[dict[str, Any]], str, str], tuple[list[Example], dict[str, str]]]
READERS: dict[str, Reader] = {"squad": _squad_examples, "ms_marco": _ms_marco_examples}


def sample_ids(dataset: str, ids: list[str], limit: int | None) -> list[str]:
    """The deterministic ``limit``-sized sample of ``ids`` (all of them when ``limit`` is falsy)."""
    if not limit or limit >= len(ids):
        return list(ids)
    ranked = sorted(ids, key=lambda i: hashlib.sha256(f"{dataset}:{i}".encode()).hexdigest())
    return ranked[:limit]


def load_eval_set(settings: Settings, dataset: str, task: str, limit: int | None = None) -> EvalSet:
    """Load ``dataset`` for ``task`` from the configured source, sampled to ``limit`` examples."""
    _check_dataset(dataset)
    if task not in TASK_NAMES:
        raise DatasetError(f"unknown task {task!r} (choose {' or '.join(TASK_NAMES)})")
    if limit is not None and limit < 0:
        raise DatasetError("limit must be >= 0")
    source = settings.eval.source
    if source == "local":
        path = local_file(settings, dataset)
        rows, version = _load_local_rows(path, dataset)
        location = str(path)
    elif source == "hub":
        rows, version, location = _load_hub_rows(dataset, settings.eval.hub_max_rows)
    else:
        raise DatasetError(f'[eval] source must be "local" or "hub", not {source!r}')
    spec = dataset_spec(dataset)
    examples, corpus = READERS[spec.reader](rows, task, location)
    if not examples:
        raise DatasetError(f"{location}: no usable examples for {task}")
    seen: set[str] = set()
    for example in examples:
        if example.id in seen:
            raise DatasetError(f"{location}: duplicate id {example.id!r}")
        seen.add(example.id)
    chosen = set(sample_ids(dataset, [e.id for e in examples], limit))
    picked = [e for e in examples if e.id in chosen]
    if spec.tasks[task].corpus == "per_query":  # keep only the sampled queries' own passages
        wanted = {d for e in picked for d in e.candidates or []}
        corpus = {d: t for d, t in corpus.items() if d in wanted}
    return EvalSet(dataset, task, source, version, location, picked, corpus, available=len(examples))


def dataset_version(settings: Settings, dataset: str) -> str:
    """The current version of ``dataset`` (local: file hash; hub: hash of the slice fetched)."""
    if settings.eval.source == "local":
        return _load_local_rows(local_file(settings, dataset), dataset)[1]
    return _load_hub_rows(dataset, settings.eval.hub_max_rows)[1]
