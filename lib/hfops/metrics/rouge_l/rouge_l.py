"""ROUGE-L F-measure via rouge_score (Porter stemming on), max over references, mean x 100.

Loaded offline with ``evaluate.load("<path to this folder>")``; the scoring lives in ``hfops.evals.scoring``.
"""

from typing import Any

import evaluate

from hfops.evals import scoring

_DESCRIPTION = "ROUGE-L F-measure (rouge_score, use_stemmer=True), mean over predictions, 0-100."
_CITATION = "Lin (2004). ROUGE: A Package for Automatic Evaluation of Summaries."
_KWARGS = """
predictions: list of str
references: list of str, or list of lists of str (max over references)
Returns: {"rougeL": float}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class RougeL(evaluate.Metric):
    """Mean ROUGE-L F-measure on the 0-100 scale."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS,
            features=scoring.text_metric_features(),
            reference_urls=["https://github.com/google-research/google-research/tree/master/rouge"],
        )

    def _compute(self, predictions: list[Any], references: list[Any]) -> dict[str, float]:
        return {"rougeL": scoring.rouge_l(predictions, scoring.reference_lists(references))}
