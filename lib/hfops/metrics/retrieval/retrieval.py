"""Retrieval metrics with binary relevance: MRR@10, Recall@1/5/10, nDCG@10 (means over queries, 0-1).

Loaded offline with ``evaluate.load("<path to this folder>")``; the scoring lives in ``hfops.evals.scoring``.
"""

from typing import Any

import datasets
import evaluate

from hfops.evals import scoring

_DESCRIPTION = "MRR@10, Recall@1/5/10 and nDCG@10 of ranked document ids against relevant ids."
_CITATION = "Jarvelin & Kekalainen (2002). Cumulated gain-based evaluation of IR techniques."
_KWARGS = """
predictions: list of ranked id lists (best first)
references: list of relevant id lists (at least one id each)
Returns: mrr@10, recall@1, recall@5, recall@10, ndcg@10, total
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class Retrieval(evaluate.Metric):
    """Mean ranking metrics over queries."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("string")),
                    "references": datasets.Sequence(datasets.Value("string")),
                }
            ),
        )

    def _compute(self, predictions: list[Any], references: list[Any]) -> dict[str, float]:
        ranked = {str(i): list(p) for i, p in enumerate(predictions)}
        relevant = {str(i): list(r) for i, r in enumerate(references)}
        return scoring.retrieval(ranked, relevant)
