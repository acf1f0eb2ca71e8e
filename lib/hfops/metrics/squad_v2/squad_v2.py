"""SQuAD v2 (official definitions): exact, f1 and the HasAns_/NoAns_ breakdown on the 0-100 scale.

Loaded offline with ``evaluate.load("<path to this folder>")``; the scoring lives in ``hfops.evals.scoring``.
An empty ``prediction_text`` means "no answer"; a reference with no answers is an unanswerable question.
"""

from typing import Any

import datasets
import evaluate

from hfops.evals import scoring

_DESCRIPTION = "SQuAD v2 exact match and F1 with the official normalisation, max over gold answers."
_CITATION = "Rajpurkar, Jia & Liang (2018). Know What You Don't Know: Unanswerable Questions for SQuAD."
_KWARGS = """
predictions: list of {"id": str, "prediction_text": str}
references: list of {"id": str, "answers": {"text": [str], "answer_start": [int]}}
Returns: exact, f1, total, HasAns_exact, HasAns_f1, HasAns_total, NoAns_exact, NoAns_f1, NoAns_total.
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class SquadV2(evaluate.Metric):
    """SQuAD v2 scores, identical to the official evaluate-v2.0.py without no-answer probabilities."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS,
            features=datasets.Features(
                {
                    "predictions": {
                        "id": datasets.Value("string"),
                        "prediction_text": datasets.Value("string"),
                    },
                    "references": {
                        "id": datasets.Value("string"),
                        "answers": datasets.Sequence(
                            {"text": datasets.Value("string"), "answer_start": datasets.Value("int32")}
                        ),
                    },
                }
            ),
            reference_urls=["https://rajpurkar.github.io/SQuAD-explorer/"],
        )

    def _compute(self, predictions: list[Any], references: list[Any]) -> dict[str, float]:
        preds = {}
        for p in predictions:
            if p["id"] in preds:
                raise scoring.ScoreError(f"duplicate prediction id {p['id']!r}")
            preds[p["id"]] = p["prediction_text"]
        refs = {}
        for r in references:
            if r["id"] in refs:
                raise scoring.ScoreError(f"duplicate reference id {r['id']!r}")
            refs[r["id"]] = list(r["answers"]["text"])
        return scoring.squad_v2(preds, refs)
