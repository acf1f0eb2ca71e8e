"""Metric exactness: hand-checked cases, the official SQuAD v2 script on the shipped sample, the reference
ROUGE-L/BLEU implementations, retrieval metrics, and the local evaluate modules (alone and combined)."""

from __future__ import annotations

import collections
import json
import math
import re
import string

import pytest

from hfops.evals import scoring
from hfops.evals.backends import LexicalQA
from hfops.paths import DATA_DIR

SQUAD_OFFICIAL = DATA_DIR / "squad_v2" / "dev-v2.0.sample.json"
SQUAD_FLAT = DATA_DIR / "squad_v2" / "dev-v2.0.sample.flat.jsonl"


# --- the official evaluate-v2.0.py functions, verbatim (reference for the comparison below) -----------------


def _official_normalize_answer(s):
    def remove_articles(text):
        regex = re.compile(r"\b(a|an|the)\b", re.UNICODE)
        return re.sub(regex, " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def _official_get_tokens(s):
    if not s:
        return []
    return _official_normalize_answer(s).split()


def _official_compute_exact(a_gold, a_pred):
    return int(_official_normalize_answer(a_gold) == _official_normalize_answer(a_pred))


def _official_compute_f1(a_gold, a_pred):
    gold_toks = _official_get_tokens(a_gold)
    pred_toks = _official_get_tokens(a_pred)
    common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
    num_same = sum(common.values())
    if len(gold_toks) == 0 or len(pred_toks) == 0:
        return int(gold_toks == pred_toks)
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(pred_toks)
    recall = 1.0 * num_same / len(gold_toks)
    f1 = (2 * precision * recall) / (precision + recall)
    return f1


def _official_evaluate(dataset, preds):
    """main() of evaluate-v2.0.py without no-answer probabilities (all 0, threshold 1.0: a no-op)."""
    qid_to_has_ans = {}
    exact_scores, f1_scores = {}, {}
    for article in dataset:
        for p in article["paragraphs"]:
            for qa in p["qas"]:
                qid_to_has_ans[qa["id"]] = bool(qa["answers"])
                gold_answers = [a["text"] for a in qa["answers"] if _official_normalize_answer(a["text"])]
                if not gold_answers:
                    gold_answers = [""]
                a_pred = preds[qa["id"]]
                exact_scores[qa["id"]] = max(_official_compute_exact(a, a_pred) for a in gold_answers)
                f1_scores[qa["id"]] = max(_official_compute_f1(a, a_pred) for a in gold_answers)

    def make_eval_dict(qid_list=None):
        if not qid_list:
            total = len(exact_scores)
            return {
                "exact": 100.0 * sum(exact_scores.values()) / total,
                "f1": 100.0 * sum(f1_scores.values()) / total,
                "total": total,
            }
        total = len(qid_list)
        return {
            "exact": 100.0 * sum(exact_scores[k] for k in qid_list) / total,
            "f1": 100.0 * sum(f1_scores[k] for k in qid_list) / total,
            "total": total,
        }

    out = make_eval_dict()
    has_ans = [k for k, v in qid_to_has_ans.items() if v]
    no_ans = [k for k, v in qid_to_has_ans.items() if not v]
    if has_ans:
        for k, v in make_eval_dict(has_ans).items():
            out[f"HasAns_{k}"] = v
    if no_ans:
        for k, v in make_eval_dict(no_ans).items():
            out[f"NoAns_{k}"] = v
    return out


# --- SQuAD v2: hand-checked ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("The Normans", "normans"),
        ("a  Cat, an Owl and THE dog!", "cat owl and dog"),
        ("the", ""),
        ("theory of the atom", "theory of atom"),  # 'the' inside a word is kept
        ("U.S.A.", "usa"),
        ("Café—Crème", "café—crème"),  # unicode dash is not ASCII punctuation: kept
        ("  Ägypten  (Egypt) ", "ägypten egypt"),
        ("10th and 11th centuries", "10th and 11th centuries"),
    ],
)
def test_normalize_answer(text: str, normalised: str) -> None:
    assert scoring.normalize_answer(text) == normalised
    assert scoring.normalize_answer(text) == _official_normalize_answer(text)


def test_exact_and_f1_hand_checked() -> None:
    assert scoring.compute_exact("The Normans", "normans.") == 1
    assert scoring.compute_exact("Normans", "the Norman") == 0
    # gold [cat, sat], prediction [cat, sat, down]: P = 2/3, R = 1, F1 = 0.8
    assert scoring.compute_f1("the cat sat", "a cat sat down") == pytest.approx(0.8)
    # repeated tokens count with multiplicity: gold [a? no: 'paris','paris'] vs pred ['paris']
    assert scoring.compute_f1("Paris Paris", "Paris") == pytest.approx(2 * 1 * 0.5 / 1.5)
    assert scoring.compute_f1("Rollo", "Charles") == 0


def test_max_over_gold_answers() -> None:
    exact, f1 = scoring.squad_example(
        "10th century", ["in the 10th and 11th centuries", "10th century", "10th"]
    )
    assert (exact, f1) == (1, 1.0)
    exact, f1 = scoring.squad_example("10th", ["10th and 11th centuries", "the 10th century"])
    assert exact == 0
    assert f1 == pytest.approx(2 * 1 * 0.5 / 1.5)  # best gold: "the 10th century" -> [10th, century]


def test_no_answer_both_ways() -> None:
    assert scoring.squad_example("", []) == (1, 1)  # unanswerable, abstained: right
    assert scoring.squad_example("Normandy", []) == (0, 0)  # unanswerable, answered: wrong
    assert scoring.squad_example("", ["Normandy"]) == (0, 0)  # answerable, abstained: wrong
    assert scoring.squad_example("the", []) == (1, 1)  # normalises to empty = no answer
    assert scoring.squad_example("", ["The"]) == (1, 1)  # gold empty after normalisation -> [""]


def test_squad_v2_aggregate_hand_checked() -> None:
    preds = {"q1": "Normans", "q2": "a cat sat down", "q3": "", "q4": "France"}
    refs = {"q1": ["The Normans"], "q2": ["the cat sat"], "q3": [], "q4": []}
    result = scoring.squad_v2(preds, refs)
    assert result == pytest.approx(
        {
            "exact": 100 * (1 + 0 + 1 + 0) / 4,
            "f1": 100 * (1 + 0.8 + 1 + 0) / 4,
            "total": 4,
            "HasAns_exact": 50.0,
            "HasAns_f1": 90.0,
            "HasAns_total": 2,
            "NoAns_exact": 50.0,
            "NoAns_f1": 50.0,
            "NoAns_total": 2,
        }
    )


def test_squad_v2_missing_ids_is_an_error() -> None:
    with pytest.raises(scoring.ScoreError, match="1 reference id\\(s\\) have no prediction.*q2"):
        scoring.squad_v2({"q1": "x"}, {"q1": ["x"], "q2": ["y"]})
    with pytest.raises(scoring.ScoreError, match="prediction id\\(s\\) have no reference.*zz"):
        scoring.squad_v2({"q1": "x", "zz": "y"}, {"q1": ["x"]})


def test_squad_v2_equals_official_script_on_shipped_sample() -> None:
    official = json.loads(SQUAD_OFFICIAL.read_text())["data"]
    flat = [json.loads(line) for line in SQUAD_FLAT.read_text().splitlines()]
    baseline = LexicalQA()
    # a mix of right, partly right, wrong and abstaining predictions
    preds = {}
    for i, row in enumerate(flat):
        kind = i % 5
        if kind == 0:
            preds[row["id"]] = baseline.answer(row["question"], row["context"], span_style=True)
        elif kind == 1:
            preds[row["id"]] = ("The " + row["answers"]["text"][0] + "!") if row["answers"]["text"] else ""
        elif kind == 2:
            preds[row["id"]] = ""
        elif kind == 3:
            preds[row["id"]] = row["context"][:40]
        else:
            preds[row["id"]] = (row.get("plausible_answers") or row["answers"])["text"][0]
    ours = scoring.squad_v2(preds, {row["id"]: row["answers"]["text"] for row in flat})
    reference = _official_evaluate(official, preds)
    assert set(ours) == set(reference) == set(scoring.SQUAD_V2_KEYS)
    for key in reference:
        assert ours[key] == pytest.approx(reference[key], abs=1e-12), key
    assert reference["total"] == 1124 and reference["NoAns_total"] == 541


# --- ROUGE-L and BLEU -------------------------------------------------------------------------------------


def test_rouge_l_hand_checked() -> None:
    # LCS("the cat on the mat", "the cat sat on the mat") = 5: P = 5/5, R = 5/6, F = 10/11
    assert scoring.rouge_l(["the cat on the mat"], [["the cat sat on the mat"]]) == pytest.approx(
        100 * 10 / 11
    )
    # stemming on: "running dogs" ~ "run dog"
    assert scoring.rouge_l(["running dogs"], [["run dog"]]) == pytest.approx(100.0)
    # max over references, mean over predictions
    assert scoring.rouge_l(["a b", "x"], [["a b", "c"], ["y"]]) == pytest.approx(50.0)
    assert scoring.rouge_l(["", "same"], [["something"], ["same"]]) == pytest.approx(50.0)


def test_rouge_l_matches_rouge_score() -> None:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    pred, ref = "Rollo agreed to swear fealty to King Charles", "Rollo swore fealty to Charles III"
    assert scoring.rouge_l([pred], [[ref]]) == pytest.approx(100 * scorer.score(ref, pred)["rougeL"].fmeasure)


def test_bleu_matches_sacrebleu_and_bootstrap_statistics() -> None:
    import sacrebleu

    hyps = ["the cat sat on the mat", "a quick brown fox jumps", "completely different words here"]
    refs = [
        ["the cat sat on the mat"],
        ["the quick brown fox jumps over", "a fast brown fox"],
        ["nothing alike"],
    ]
    expected = sacrebleu.corpus_bleu(
        hyps, [[r[0] for r in refs], [r[1] if len(r) > 1 else None for r in refs]]
    ).score
    assert scoring.bleu(hyps, refs) == pytest.approx(expected)
    assert scoring.bleu(["the cat sat on the mat"], [["the cat sat on the mat"]]) == pytest.approx(100.0)
    assert scoring.bleu(["zzz yyy xxx www"], [["a b c d"]]) == pytest.approx(0.0)
    stats = scoring.bleu_statistics(hyps, refs)
    summed = [sum(column) for column in zip(*stats, strict=True)]
    assert scoring.bleu_from_statistics(summed) == pytest.approx(expected)


def test_bleu_and_rouge_need_references() -> None:
    with pytest.raises(scoring.ScoreError, match="at least one reference"):
        scoring.bleu(["x"], [[]])
    with pytest.raises(scoring.ScoreError, match="predictions but"):
        scoring.rouge_l(["x", "y"], [["x"]])


# --- retrieval ----------------------------------------------------------------------------------------------


def test_retrieval_hand_checked() -> None:
    ranked = ["a", "b", "c", "d", "e", "f"]
    result = scoring.retrieval_example(ranked, ["b", "d"])
    ideal = 1 + 1 / math.log2(3)
    assert result == pytest.approx(
        {
            "mrr@10": 0.5,
            "recall@1": 0.0,
            "recall@5": 1.0,
            "recall@10": 1.0,
            "ndcg@10": (1 / math.log2(3) + 1 / math.log2(5)) / ideal,
        }
    )
    first = scoring.retrieval_example(["x", "y"], ["x"])
    assert first == pytest.approx(
        {"mrr@10": 1.0, "recall@1": 1.0, "recall@5": 1.0, "recall@10": 1.0, "ndcg@10": 1.0}
    )
    beyond = scoring.retrieval_example([str(i) for i in range(20)], ["15"])
    assert beyond == {"mrr@10": 0.0, "recall@1": 0.0, "recall@5": 0.0, "recall@10": 0.0, "ndcg@10": 0.0}
    dupes = scoring.retrieval_example(["a", "a", "b"], ["b"])  # a duplicate id counts once
    assert dupes["mrr@10"] == 0.5


def test_retrieval_mean_over_queries_and_bad_inputs() -> None:
    result = scoring.retrieval({"q1": ["a", "b"], "q2": ["b", "a"]}, {"q1": ["a"], "q2": ["a"]})
    assert result["mrr@10"] == pytest.approx(0.75) and result["recall@1"] == pytest.approx(0.5)
    assert result["total"] == 2
    with pytest.raises(scoring.ScoreError, match="at least one relevant"):
        scoring.retrieval_example(["a"], [])
    with pytest.raises(scoring.ScoreError, match="have no prediction"):
        scoring.retrieval({"q1": ["a"]}, {"q1": ["a"], "q2": ["b"]})


# --- local evaluate modules, offline ----------------------------------------------------------------------


def test_evaluate_modules_load_offline_and_match() -> None:
    import evaluate

    squad = scoring.load_metric("squad_v2")
    result = squad.compute(
        predictions=[
            {"id": "1", "prediction_text": "The Normans"},
            {"id": "2", "prediction_text": ""},
            {"id": "3", "prediction_text": "a cat sat down"},
        ],
        references=[
            {"id": "1", "answers": {"text": ["Normans"], "answer_start": [4]}},
            {"id": "2", "answers": {"text": [], "answer_start": []}},
            {"id": "3", "answers": {"text": ["the cat sat"], "answer_start": [0]}},
        ],
    )
    assert result == pytest.approx(
        scoring.squad_v2(
            {"1": "The Normans", "2": "", "3": "a cat sat down"},
            {"1": ["Normans"], "2": [], "3": ["the cat sat"]},
        )
    )
    retrieval = scoring.load_metric("retrieval")
    assert retrieval.compute(predictions=[["a", "b", "c", "d"]], references=[["b", "d"]])["mrr@10"] == 0.5

    combined = evaluate.combine([str(scoring.METRICS_DIR / "rouge_l"), str(scoring.METRICS_DIR / "bleu")])
    preds, refs = ["the cat on the mat", "hello world"], ["the cat sat on the mat", "hello there world"]
    out = combined.compute(predictions=preds, references=refs)
    assert out["rougeL"] == pytest.approx(scoring.rouge_l(preds, [[r] for r in refs]))
    assert out["bleu"] == pytest.approx(scoring.bleu(preds, [[r] for r in refs]))

    rouge = scoring.load_metric("rouge_l")  # add_batch then compute, multiple references per prediction
    rouge.add_batch(predictions=["a b"], references=[["a b", "c"]])
    rouge.add_batch(predictions=["x"], references=[["y"]])
    assert rouge.compute()["rougeL"] == pytest.approx(50.0)


def test_metric_scripts_import_one_module_per_line() -> None:
    for name in scoring.LOCAL_METRICS:
        script = (scoring.METRICS_DIR / name / f"{name}.py").read_text()
        for line in script.splitlines():
            if line.startswith("import "):
                assert "," not in line, f"{name}.py: {line}"


def test_unknown_metric() -> None:
    with pytest.raises(scoring.ScoreError, match="unknown metric"):
        scoring.load_metric("meteor")
