"""Exact metric definitions (SQuAD v2, ROUGE-L, BLEU, retrieval) and the ``hfops score`` file readers.

- SQuAD v2 follows the official evaluation script (``evaluate-v2.0.py``) line for line: answers are
  normalised (lower-case, punctuation removed, articles a/an/the removed, whitespace collapsed), the score
  of a question is the max over its gold answers, a question whose gold answers are all empty after
  normalisation (the unanswerable ones) has the single gold answer ``""``, so an empty prediction means
  "no answer". Scores are reported on the 0-100 scale with the ``HasAns_``/``NoAns_`` breakdown.
- ROUGE-L is the F-measure of ``rouge_score`` with the Porter stemmer, max over references, mean x 100.
- BLEU is ``sacrebleu`` corpus BLEU (default 13a tokenisation, exp smoothing), 0-100.
- Retrieval metrics use binary relevance: MRR@10, Recall@1/5/10 and nDCG@10, each the mean over queries
  on the 0-1 scale (the convention of MS MARCO and BEIR).

The local ``evaluate`` modules in ``hfops/metrics/<name>/<name>.py`` are thin wrappers over these functions.
"""

from __future__ import annotations

import collections
import math
import re
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

from hfops.errors import ScoreError
from hfops.evals.jsonl import iter_rows, json_type

METRICS_DIR = Path(__file__).resolve().parents[1] / "metrics"
LOCAL_METRICS = ("squad_v2", "rouge_l", "bleu", "retrieval")
SQUAD_V2_KEYS = (
    "exact",
    "f1",
    "total",
    "HasAns_exact",
    "HasAns_f1",
    "HasAns_total",
    "NoAns_exact",
    "NoAns_f1",
    "NoAns_total",
)
RETRIEVAL_KEYS = ("mrr@10", "recall@1", "recall@5", "recall@10", "ndcg@10")
RETRIEVAL_CUTOFF = 10


# --- SQuAD v2: the official script's definitions ---------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace (official SQuAD v2)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = re.sub(_ARTICLES, " ", text)
    return " ".join(text.split())


def get_tokens(text: str) -> list[str]:
    """Normalised tokens of an answer (empty answer -> no tokens)."""
    if not text:
        return []
    return normalize_answer(text).split()


def compute_exact(a_gold: str, a_pred: str) -> int:
    """1 if the normalised answers are equal, else 0."""
    return int(normalize_answer(a_gold) == normalize_answer(a_pred))


def compute_f1(a_gold: str, a_pred: str) -> float:
    """Token-overlap F1 of two answers; if either is a no-answer, 1 when both are, else 0."""
    gold_toks = get_tokens(a_gold)
    pred_toks = get_tokens(a_pred)
    common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
    num_same = sum(common.values())
    if len(gold_toks) == 0 or len(pred_toks) == 0:
        return int(gold_toks == pred_toks)
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(pred_toks)
    recall = 1.0 * num_same / len(gold_toks)
    return (2 * precision * recall) / (precision + recall)


def squad_gold_answers(answers: Sequence[str]) -> list[str]:
    """The gold answers the official script scores against: non-empty after normalisation, else ``[""]``."""
    gold = [a for a in answers if normalize_answer(a)]
    return gold or [""]


def squad_example(prediction: str, answers: Sequence[str]) -> tuple[int, float]:
    """``(exact, f1)`` of one prediction (0/1 and 0-1), max over the gold answers."""
    gold = squad_gold_answers(answers)
    return max(compute_exact(a, prediction) for a in gold), max(compute_f1(a, prediction) for a in gold)


def squad_v2(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """Official SQuAD v2 scores (0-100) of ``{id: prediction_text}`` against ``{id: [gold answer texts]}``.

    A question "has an answer" when its reference answer list is not empty (``qid_to_has_ans``).
    """
    check_same_ids(predictions, references)
    exact: dict[str, int] = {}
    f1: dict[str, float] = {}
    for qid, answers in references.items():
        exact[qid], f1[qid] = squad_example(predictions[qid], answers)
    has_ans = [qid for qid, answers in references.items() if answers]
    no_ans = [qid for qid, answers in references.items() if not answers]
    result = _squad_eval_dict(exact, f1, list(references))
    if has_ans:
        for key, value in _squad_eval_dict(exact, f1, has_ans).items():
            result[f"HasAns_{key}"] = value
    if no_ans:
        for key, value in _squad_eval_dict(exact, f1, no_ans).items():
            result[f"NoAns_{key}"] = value
    return result


def _squad_eval_dict(exact: dict[str, int], f1: dict[str, float], qids: list[str]) -> dict[str, float]:
    total = len(qids)
    if total == 0:
        return {"exact": 0.0, "f1": 0.0, "total": 0}
    return {
        "exact": 100.0 * sum(exact[k] for k in qids) / total,
        "f1": 100.0 * sum(f1[k] for k in qids) / total,
        "total": total,
    }


# --- ROUGE-L and BLEU: the reference implementations --------------------------------------------------------


@lru_cache(maxsize=1)
def _rouge_scorer() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l_example(prediction: str, references: Sequence[str]) -> float:
    """ROUGE-L F-measure (0-1) of one prediction, max over its references (``score_multi``)."""
    refs = [r for r in references if r is not None]
    if not refs:
        raise ScoreError("ROUGE-L needs at least one reference per prediction")
    return float(_rouge_scorer().score_multi(refs, prediction)["rougeL"].fmeasure)


def rouge_l(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Mean ROUGE-L F-measure x 100."""
    _check_lengths(predictions, references)
    if not predictions:
        return 0.0
    return (
        100.0
        * sum(rouge_l_example(p, r) for p, r in zip(predictions, references, strict=True))
        / len(predictions)
    )


def text_metric_features() -> list[Any]:
    """``evaluate`` input features of the text-generation metrics (ROUGE-L, BLEU): a prediction string and
    one reference string or a list of them."""
    import datasets

    string = datasets.Value("string")
    return [
        datasets.Features({"predictions": string, "references": datasets.Sequence(string)}),
        datasets.Features({"predictions": string, "references": string}),
    ]


def reference_lists(references: Sequence[str | Sequence[str]]) -> list[list[str]]:
    """Each prediction's references as a list (a single reference string becomes a one-item list)."""
    return [[r] if isinstance(r, str) else list(r) for r in references]


def _reference_streams(references: Sequence[Sequence[str]]) -> list[list[str | None]]:
    """Transpose per-prediction reference lists into sacrebleu streams (None pads variable counts)."""
    width = max((len(r) for r in references), default=0)
    if any(len(r) == 0 for r in references):
        raise ScoreError("BLEU needs at least one reference per prediction")
    return [[refs[i] if i < len(refs) else None for refs in references] for i in range(width)]


def bleu(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """sacrebleu corpus BLEU (0-100), multiple references per prediction allowed."""
    import sacrebleu

    _check_lengths(predictions, references)
    if not predictions:
        return 0.0
    return float(sacrebleu.corpus_bleu(list(predictions), cast(Any, _reference_streams(references))).score)


def bleu_statistics(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> list[list[int]]:
    """Per-sentence BLEU sufficient statistics (for exact bootstrap of corpus BLEU)."""
    from sacrebleu.metrics import BLEU

    _check_lengths(predictions, references)
    metric = BLEU()
    return [
        list(map(int, s))
        for s in metric._extract_corpus_statistics(
            list(predictions), cast(Any, _reference_streams(references))
        )
    ]


def bleu_from_statistics(stats_sum: Sequence[float]) -> float:
    """Corpus BLEU (0-100) from summed sufficient statistics (same smoothing as :func:`bleu`)."""
    from sacrebleu.metrics import BLEU

    return float(BLEU()._compute_score_from_stats([int(round(x)) for x in stats_sum]).score)


# --- Retrieval ----------------------------------------------------------------------------------------------


def retrieval_example(
    ranked: Sequence[str], relevant: Iterable[str], k: int = RETRIEVAL_CUTOFF
) -> dict[str, float]:
    """MRR@10, Recall@1/5/10, nDCG@10 (binary relevance, 0-1) of one ranked list."""
    rel = set(relevant)
    if not rel:
        raise ScoreError("a query needs at least one relevant id")
    ranking = list(dict.fromkeys(ranked))  # duplicates count once
    top = ranking[:k]
    mrr = 0.0
    for position, doc in enumerate(top, start=1):
        if doc in rel:
            mrr = 1.0 / position
            break
    dcg = sum(1.0 / math.log2(position + 1) for position, doc in enumerate(top, start=1) if doc in rel)
    ideal = sum(1.0 / math.log2(position + 1) for position in range(1, min(len(rel), k) + 1))
    return {
        "mrr@10": mrr,
        "recall@1": len(rel.intersection(ranking[:1])) / len(rel),
        "recall@5": len(rel.intersection(ranking[:5])) / len(rel),
        "recall@10": len(rel.intersection(ranking[:10])) / len(rel),
        "ndcg@10": dcg / ideal,
    }


def retrieval(ranked: Mapping[str, Sequence[str]], relevant: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """Mean retrieval metrics over queries (0-1) plus ``total``."""
    check_same_ids(ranked, relevant)
    per_query = [retrieval_example(ranked[qid], relevant[qid]) for qid in relevant]
    result: dict[str, float] = {key: mean([q[key] for q in per_query]) for key in RETRIEVAL_KEYS}
    result["total"] = len(per_query)
    return result


# --- helpers ------------------------------------------------------------------------------------------------


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean (0 for no values)."""
    return float(sum(values) / len(values)) if values else 0.0


def _check_lengths(predictions: Sequence[Any], references: Sequence[Any]) -> None:
    if len(predictions) != len(references):
        raise ScoreError(f"{len(predictions)} predictions but {len(references)} references")


def check_same_ids(predictions: Mapping[str, Any], references: Mapping[str, Any], what: str = "") -> None:
    """Raise :class:`ScoreError` listing ids present on one side only."""
    missing = [qid for qid in references if qid not in predictions]
    extra = [qid for qid in predictions if qid not in references]
    if not missing and not extra:
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} reference id(s) have no prediction (e.g. {', '.join(missing[:3])})")
    if extra:
        parts.append(f"{len(extra)} prediction id(s) have no reference (e.g. {', '.join(extra[:3])})")
    raise ScoreError(f"{what}{'; '.join(parts)}")


# --- files for ``hfops score`` ------------------------------------------------------------------------------
#
# Every file goes through the strict JSON Lines reader (hfops.evals.jsonl) and every field through a check
# that names the file, the line and the field: nothing malformed is scored, nothing is silently converted.


def _is_id(value: Any) -> bool:
    return (isinstance(value, str) and value.strip() != "") or (
        isinstance(value, int) and not isinstance(value, bool)
    )


def _field_error(
    file: Path, line: int, field: str, expected: str, value: Any, item: int | None = None
) -> ScoreError:
    got = f"item {item + 1} is {json_type(value)}" if item is not None else f"got {json_type(value)}"
    return ScoreError(f"{file}: line {line}: field {field!r} must be {expected} ({got})")


def _id_list(file: Path, line: int, field: str, value: Any) -> list[str]:
    if not isinstance(value, list):
        raise _field_error(file, line, field, "an array of ids (strings or integers)", value)
    for i, item in enumerate(value):
        if not _is_id(item):
            raise _field_error(file, line, field, "an array of ids (strings or integers)", item, i)
    return [str(v) for v in value]


def _text_list(file: Path, line: int, field: str, value: Any) -> list[str]:
    if not isinstance(value, list):
        raise _field_error(file, line, field, "an array of strings", value)
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise _field_error(file, line, field, "an array of strings", item, i)
    return list(value)


def _check_qa_prediction(file: Path, line: int, row: dict[str, Any]) -> str:
    value = row["prediction_text"]
    if not isinstance(value, str):
        raise _field_error(file, line, "prediction_text", "a string", value)
    return value


def _check_qa_reference(file: Path, line: int, row: dict[str, Any]) -> list[str]:
    answers = row["answers"]
    if not isinstance(answers, dict):
        raise _field_error(file, line, "answers", 'an object {"text": [...], "answer_start": [...]}', answers)
    if "text" not in answers:
        raise ScoreError(f"{file}: line {line}: missing field 'answers.text'")
    texts = _text_list(file, line, "answers.text", answers["text"])
    if "answer_start" in answers:
        starts = answers["answer_start"]
        if not isinstance(starts, list):
            raise _field_error(file, line, "answers.answer_start", "an array of integers", starts)
        for i, start in enumerate(starts):
            if isinstance(start, bool) or not isinstance(start, int):
                raise _field_error(file, line, "answers.answer_start", "an array of integers", start, i)
        if len(starts) != len(texts):
            raise ScoreError(
                f"{file}: line {line}: 'answers.answer_start' has {len(starts)} item(s) but "
                f"'answers.text' has {len(texts)}"
            )
    return texts


def _check_ranked(file: Path, line: int, row: dict[str, Any]) -> list[str]:
    return _id_list(file, line, "ranked", row["ranked"])


def _check_relevant(file: Path, line: int, row: dict[str, Any]) -> list[str]:
    relevant = _id_list(file, line, "relevant", row["relevant"])
    if not relevant:
        raise ScoreError(f"{file}: line {line}: id {str(row['id'])!r} has no relevant ids")
    return relevant


def read_scored_file(
    path: str | Path, field: str, check: Callable[[Path, int, dict[str, Any]], Any]
) -> dict[str, tuple[int, Any]]:
    """``{id: (line, checked value of field)}`` of a JSON Lines file.

    Any malformed line is a :class:`ScoreError`.
    """
    file = Path(path)
    found: dict[str, tuple[int, Any]] = {}
    for line, row in iter_rows(file, ScoreError):
        for key in ("id", field):
            if key not in row:
                raise ScoreError(f"{file}: line {line}: missing field {key!r}")
        if not _is_id(row["id"]):
            raise _field_error(file, line, "id", "a non-empty string or an integer", row["id"])
        qid = str(row["id"])
        if qid in found:
            raise ScoreError(f"{file}: line {line}: duplicate id {qid!r} (first on line {found[qid][0]})")
        found[qid] = (line, check(file, line, row))
    if not found:
        raise ScoreError(f"{file}: no rows")
    return found


def read_jsonl(path: str | Path, required: dict[str, type | tuple[type, ...]]) -> dict[str, dict[str, Any]]:
    """Rows of a JSON Lines file keyed by ``id`` (strict reader).

    Each field in ``required`` is present with its type.
    """
    file = Path(path)
    rows: dict[str, dict[str, Any]] = {}
    lines: dict[str, int] = {}
    for line, row in iter_rows(file, ScoreError):
        for key, kind in {"id": (str, int), **required}.items():
            if key not in row:
                raise ScoreError(f"{file}: line {line}: missing field {key!r}")
            if isinstance(row[key], bool) or not isinstance(row[key], kind):
                raise ScoreError(
                    f"{file}: line {line}: field {key!r} has the wrong type ({json_type(row[key])})"
                )
        qid = str(row["id"])
        if qid in rows:
            raise ScoreError(f"{file}: line {line}: duplicate id {qid!r} (first on line {lines[qid]})")
        rows[qid], lines[qid] = row, line
    if not rows:
        raise ScoreError(f"{file}: no rows")
    return rows


def _check_same_file_ids(
    predictions: dict[str, tuple[int, Any]],
    references: dict[str, tuple[int, Any]],
    predictions_path: str | Path,
    references_path: str | Path,
) -> None:
    """One line naming, for each side, how many ids the other side lacks, the first one and its line."""
    missing = [qid for qid in references if qid not in predictions]
    extra = [qid for qid in predictions if qid not in references]
    parts = []
    if missing:
        parts.append(
            f"{references_path}: line {references[missing[0]][0]}: {len(missing)} reference id(s) have no "
            f"prediction in {predictions_path} (e.g. {', '.join(missing[:3])})"
        )
    if extra:
        parts.append(
            f"{predictions_path}: line {predictions[extra[0]][0]}: {len(extra)} prediction id(s) have no "
            f"reference in {references_path} (e.g. {', '.join(extra[:3])})"
        )
    if parts:
        raise ScoreError("; ".join(parts))


def score_qa_files(predictions_path: str | Path, references_path: str | Path) -> dict[str, float]:
    """SQuAD v2 metrics on all questions, plus ROUGE-L and BLEU over the answerable ones."""
    preds = read_scored_file(predictions_path, "prediction_text", _check_qa_prediction)
    refs = read_scored_file(references_path, "answers", _check_qa_reference)
    _check_same_file_ids(preds, refs, predictions_path, references_path)
    answers = {qid: value for qid, (_, value) in refs.items()}
    predictions = {qid: preds[qid][1] for qid in answers}
    result: dict[str, float] = squad_v2(predictions, answers)
    answerable = [qid for qid in answers if answers[qid]]
    hyp = [predictions[q] for q in answerable]
    gold = [answers[q] for q in answerable]
    result["rougeL"] = rouge_l(hyp, gold)
    result["bleu"] = bleu(hyp, gold)
    return result


def score_retrieval_files(predictions_path: str | Path, references_path: str | Path) -> dict[str, float]:
    """Retrieval metrics of ``{"id", "ranked"}`` rows against ``{"id", "relevant"}`` rows."""
    preds = read_scored_file(predictions_path, "ranked", _check_ranked)
    refs = read_scored_file(references_path, "relevant", _check_relevant)
    _check_same_file_ids(preds, refs, predictions_path, references_path)
    return retrieval({q: v for q, (_, v) in preds.items()}, {q: v for q, (_, v) in refs.items()})


def score_files(task: str, predictions_path: str | Path, references_path: str | Path) -> dict[str, float]:
    """Score prediction files against reference files for ``task`` (``qa`` or ``retrieval``)."""
    scorer = FILE_SCORERS.get(task)
    if scorer is None:
        raise ScoreError(f"unknown task {task!r} (choose {' or '.join(FILE_SCORERS)})")
    return scorer(predictions_path, references_path)


FILE_SCORERS = {"qa": score_qa_files, "retrieval": score_retrieval_files}


def load_metric(name: str) -> Any:
    """One of the local ``evaluate`` modules (``squad_v2``, ``rouge_l``, ``bleu``, ``retrieval``), offline."""
    if name not in LOCAL_METRICS:
        raise ScoreError(f"unknown metric {name!r} (choose one of {', '.join(LOCAL_METRICS)})")
    import evaluate

    return evaluate.load(str(METRICS_DIR / name))
