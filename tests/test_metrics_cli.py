"""``hfops score``: metric files in, JSON metrics out; malformed lines and id mismatches are clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hfops.cli import main
from hfops.evals import scoring


def write_jsonl(path: Path, rows: list[object]) -> str:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return str(path)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def qa_files(tmp_path: Path) -> tuple[str, str]:
    preds = write_jsonl(
        tmp_path / "p.jsonl",
        [
            {"id": "q1", "prediction_text": "The Normans"},
            {"id": "q2", "prediction_text": "a cat sat down"},
            {"id": "q3", "prediction_text": ""},
            {"id": "q4", "prediction_text": "France"},
        ],
    )
    refs = write_jsonl(
        tmp_path / "r.jsonl",
        [
            {"id": "q1", "answers": {"text": ["Normans"], "answer_start": [4]}},
            {"id": "q2", "answers": {"text": ["the cat sat"], "answer_start": [0]}},
            {"id": "q3", "answers": {"text": [], "answer_start": []}},
            {"id": "q4", "answers": {"text": [], "answer_start": []}},
        ],
    )
    return preds, refs


def test_score_qa_json(capsys: pytest.CaptureFixture[str], qa_files: tuple[str, str]) -> None:
    code, out, err = run_cli(
        capsys, "score", "--task", "qa", "--predictions", qa_files[0], "--references", qa_files[1], "--json"
    )
    assert code == 0, err
    result = json.loads(out)
    assert set(result) == {*scoring.SQUAD_V2_KEYS, "rougeL", "bleu"}
    assert result["exact"] == pytest.approx(50.0)
    assert result["f1"] == pytest.approx(70.0)
    assert result["HasAns_f1"] == pytest.approx(90.0) and result["NoAns_exact"] == pytest.approx(50.0)
    # ROUGE-L / BLEU over the answerable questions: "The Normans"~"Normans", "a cat sat down"~"the cat sat"
    assert result["rougeL"] == pytest.approx(
        scoring.rouge_l(["The Normans", "a cat sat down"], [["Normans"], ["the cat sat"]])
    )


def test_score_qa_table(capsys: pytest.CaptureFixture[str], qa_files: tuple[str, str]) -> None:
    code, out, _ = run_cli(
        capsys, "score", "--task", "qa", "--predictions", qa_files[0], "--references", qa_files[1]
    )
    assert code == 0
    assert "HasAns_f1" in out and "90.0000" in out


def test_score_retrieval_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    preds = write_jsonl(
        tmp_path / "p.jsonl", [{"id": "a", "ranked": ["d1", "d2", "d3"]}, {"id": "b", "ranked": ["d3", "d1"]}]
    )
    refs = write_jsonl(
        tmp_path / "r.jsonl", [{"id": "a", "relevant": ["d2"]}, {"id": "b", "relevant": ["d3"]}]
    )
    code, out, err = run_cli(
        capsys, "score", "--task", "retrieval", "--predictions", preds, "--references", refs, "--json"
    )
    assert code == 0, err
    result = json.loads(out)
    assert set(result) == {*scoring.RETRIEVAL_KEYS, "total"}
    assert result["mrr@10"] == pytest.approx(0.75)
    assert result["recall@1"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ('{"id": "q2", "prediction_text": "x"', "line 2: not valid JSON"),
        ('["q2", "x"]', "line 2: expected a JSON object"),
        ('{"id": "q2"}', "line 2: missing field 'prediction_text'"),
        (
            '{"id": "q2", "prediction_text": 5}',
            "line 2: field 'prediction_text' must be a string (got a number)",
        ),
        ('{"id": "q1", "prediction_text": "dup"}', "line 2: duplicate id 'q1'"),
    ],
)
def test_malformed_line_names_its_number(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, bad_line: str, message: str
) -> None:
    preds = write_jsonl(tmp_path / "p.jsonl", [{"id": "q1", "prediction_text": "x"}, bad_line])
    refs = write_jsonl(tmp_path / "r.jsonl", [{"id": "q1", "answers": {"text": ["x"], "answer_start": [0]}}])
    code, out, err = run_cli(capsys, "score", "--task", "qa", "--predictions", preds, "--references", refs)
    assert code == 2
    assert err.startswith("error: ") and f"p.jsonl: {message}" in err
    assert "Traceback" not in err and out == ""


def test_missing_ids_between_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    preds = write_jsonl(
        tmp_path / "p.jsonl", [{"id": "q1", "prediction_text": "x"}, {"id": "extra", "prediction_text": "y"}]
    )
    refs = write_jsonl(
        tmp_path / "r.jsonl",
        [
            {"id": "q1", "answers": {"text": ["x"], "answer_start": [0]}},
            {"id": "q9", "answers": {"text": [], "answer_start": []}},
        ],
    )
    code, _, err = run_cli(capsys, "score", "--task", "qa", "--predictions", preds, "--references", refs)
    assert code == 2
    assert "r.jsonl: line 2: 1 reference id(s) have no prediction in" in err and "(e.g. q9)" in err
    assert "p.jsonl: line 2: 1 prediction id(s) have no reference in" in err and "(e.g. extra)" in err


def test_empty_and_missing_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    refs = write_jsonl(tmp_path / "r.jsonl", [{"id": "a", "relevant": ["d"]}])
    code, _, err = run_cli(
        capsys, "score", "--task", "retrieval", "--predictions", str(empty), "--references", refs
    )
    assert code == 2 and "empty.jsonl: no rows" in err
    code, _, err = run_cli(
        capsys,
        "score",
        "--task",
        "retrieval",
        "--predictions",
        str(tmp_path / "nope.jsonl"),
        "--references",
        refs,
    )
    assert code == 2 and "nope.jsonl: file not found" in err


def test_retrieval_reference_without_relevant_ids(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    preds = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "ranked": ["d"]}])
    refs = write_jsonl(tmp_path / "r.jsonl", [{"id": "a", "relevant": []}])
    code, _, err = run_cli(
        capsys, "score", "--task", "retrieval", "--predictions", preds, "--references", refs
    )
    assert code == 2 and "id 'a' has no relevant ids" in err
