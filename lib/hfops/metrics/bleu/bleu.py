"""Corpus BLEU via sacrebleu (13a tokenisation, exponential smoothing), 0-100.

Loaded offline with ``evaluate.load("<path to this folder>")``; the scoring lives in ``hfops.evals.scoring``.
"""

from typing import Any

import evaluate

from hfops.evals import scoring

_DESCRIPTION = "sacrebleu corpus BLEU with its default settings, variable number of references allowed."
_CITATION = "Post (2018). A Call for Clarity in Reporting BLEU Scores."
_KWARGS = """
predictions: list of str
references: list of str, or list of lists of str
Returns: {"bleu": float}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class Bleu(evaluate.Metric):
    """Corpus BLEU on the 0-100 scale."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS,
            features=scoring.text_metric_features(),
            reference_urls=["https://github.com/mjpost/sacrebleu"],
        )

    def _compute(self, predictions: list[Any], references: list[Any]) -> dict[str, float]:
        return {"bleu": scoring.bleu(predictions, scoring.reference_lists(references))}
