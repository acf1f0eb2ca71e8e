"""Faults for ``hfops score`` (issue 10 item 7).

Every malformed input is one ``error:`` line naming the file and the line, exit 2 — never a traceback,
never silently scored. Runs the real CLI (``hfops.cli.main``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from hfops.cli import main
from hfops.evals.jsonl import MAX_DEPTH

GOOD_QA_PRED = {"id": "q1", "prediction_text": "Normans"}
GOOD_QA_REF = {"id": "q1", "answers": {"text": ["Normans"], "answer_start": [0]}}
GOOD_RET_PRED = {"id": "a", "ranked": ["d1", "d2"]}
GOOD_RET_REF = {"id": "a", "relevant": ["d2"]}


def line(row: object) -> bytes:
    return json.dumps(row).encode() + b"\n"


def score(capsys: pytest.CaptureFixture[str], task: str, preds: Path, refs: Path) -> tuple[int, str, str]:
    code = main(["score", "--task", task, "--predictions", str(preds), "--references", str(refs)])
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_one_line_error(code: int, out: str, err: str, file: Path, where: str) -> None:
    assert code == 2, (out, err)
    assert out == ""  # no metrics printed for a malformed input
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert f"{file}: {where}" in lines[0], err


# (name, bytes of the predictions file, the location in the message, words of the message)
QA_PREDICTION_FAULTS: list[tuple[str, bytes, str, str]] = [
    (
        "invalid UTF-8",
        line(GOOD_QA_PRED) + b'{"id": "q2", "prediction_text": "caf\xe9"}\n',
        "line 2",
        "not valid UTF-8",
    ),
    (
        "truncated UTF-8",
        line(GOOD_QA_PRED) + b'{"id": "q2", "prediction_text": "\xe2\x82"}\n',
        "line 2",
        "not valid UTF-8",
    ),
    (
        "100,000-deep nesting",
        line(GOOD_QA_PRED) + b"[" * 100_000 + b"]" * 100_000 + b"\n",
        "line 2",
        f"nested more than {MAX_DEPTH} levels deep",
    ),
    (
        "deep nesting in a field",
        line(GOOD_QA_PRED) + b'{"id": "q2", "prediction_text": ' + b"[" * 5000 + b"]" * 5000 + b"}\n",
        "line 2",
        "nested more than",
    ),
    ("BOM", b"\xef\xbb\xbf" + line(GOOD_QA_PRED), "line 1", "byte-order mark"),
    ("NaN", b'{"id": "q1", "prediction_text": NaN}\n', "line 1", "NaN"),
    ("Infinity", b'{"id": "q1", "prediction_text": "x", "score": -Infinity}\n', "line 1", "Infinity"),
    ("float overflow", b'{"id": "q1", "prediction_text": "x", "score": 1e999}\n', "line 1", "out of range"),
    ("huge integer", b'{"id": ' + b"9" * 5000 + b', "prediction_text": "x"}\n', "line 1", "too many digits"),
    ("lone surrogate", b'{"id": "q1", "prediction_text": "\\ud800"}\n', "line 1", "lone surrogate"),
    (
        "prediction as a number",
        b'{"id": "q1", "prediction_text": 5}\n',
        "line 1",
        "'prediction_text' must be a string",
    ),
    ("prediction as null", b'{"id": "q1", "prediction_text": null}\n', "line 1", "got null"),
    ("prediction as a list", b'{"id": "q1", "prediction_text": ["x"]}\n', "line 1", "got an array"),
    ("id as a boolean", b'{"id": true, "prediction_text": "x"}\n', "line 1", "field 'id' must be"),
    ("id as a float", b'{"id": 1.5, "prediction_text": "x"}\n', "line 1", "field 'id' must be"),
    ("empty id", b'{"id": "", "prediction_text": "x"}\n', "line 1", "field 'id' must be"),
    ("id as an object", b'{"id": {"a": 1}, "prediction_text": "x"}\n', "line 1", "got an object"),
    ("missing id", b'{"prediction_text": "x"}\n', "line 1", "missing field 'id'"),
    ("missing prediction", b'{"id": "q1"}\n', "line 1", "missing field 'prediction_text'"),
    ("a JSON array", b'["q1", "x"]\n', "line 1", "expected a JSON object, got an array"),
    ("a JSON string", b'"q1"\n', "line 1", "expected a JSON object, got a string"),
    ("a bare number", b"7\n", "line 1", "expected a JSON object, got a number"),
    ("truncated JSON", b'{"id": "q1", "prediction_text": "x"\n', "line 1", "not valid JSON"),
    (
        "two objects on a line",
        b'{"id": "q1", "prediction_text": "x"} {"id": "q2"}\n',
        "line 1",
        "not valid JSON",
    ),
    (
        "duplicate id",
        line(GOOD_QA_PRED) + line(GOOD_QA_PRED),
        "line 2",
        "duplicate id 'q1' (first on line 1)",
    ),
    (
        "duplicate id, string and integer",
        b'{"id": 7, "prediction_text": "x"}\n{"id": "7", "prediction_text": "y"}\n',
        "line 2",
        "duplicate id '7'",
    ),
    ("NUL bytes", line(GOOD_QA_PRED) + b"\x00\x00\x00\n", "line 2", "not valid JSON"),
]


@pytest.mark.parametrize(
    ("name", "content", "where", "words"), QA_PREDICTION_FAULTS, ids=[f[0] for f in QA_PREDICTION_FAULTS]
)
def test_malformed_qa_predictions(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, content: bytes, where: str, words: str
) -> None:
    preds, refs = tmp_path / "p.jsonl", tmp_path / "r.jsonl"
    preds.write_bytes(content)
    refs.write_bytes(line(GOOD_QA_REF) + line({**GOOD_QA_REF, "id": "q2"}))
    code, out, err = score(capsys, "qa", preds, refs)
    assert_one_line_error(code, out, err, preds, where)
    assert words in err


QA_REFERENCE_FAULTS: list[tuple[str, object, str]] = [
    (
        "answers.text as integers",
        {"id": "q1", "answers": {"text": [1, 2], "answer_start": [0, 0]}},
        "'answers.text' must be an array of strings (item 1 is a number)",
    ),
    (
        "answers.text mixed",
        {"id": "q1", "answers": {"text": ["a", 3], "answer_start": [0, 0]}},
        "item 2 is a number",
    ),
    (
        "answers.text as a string",
        {"id": "q1", "answers": {"text": "Normans", "answer_start": [0]}},
        "must be an array of strings (got a string)",
    ),
    (
        "answers.text with null",
        {"id": "q1", "answers": {"text": [None], "answer_start": [0]}},
        "item 1 is null",
    ),
    (
        "answers.text nested",
        {"id": "q1", "answers": {"text": [["a"]], "answer_start": [0]}},
        "item 1 is an array",
    ),
    ("answers without text", {"id": "q1", "answers": {"answer_start": [0]}}, "missing field 'answers.text'"),
    ("answers as a list", {"id": "q1", "answers": ["Normans"]}, "field 'answers' must be an object"),
    ("answers as null", {"id": "q1", "answers": None}, "got null"),
    (
        "answer_start as strings",
        {"id": "q1", "answers": {"text": ["a"], "answer_start": ["0"]}},
        "'answers.answer_start' must be an array of integers",
    ),
    (
        "answer_start as booleans",
        {"id": "q1", "answers": {"text": ["a"], "answer_start": [True]}},
        "a boolean",
    ),
    (
        "answer_start length",
        {"id": "q1", "answers": {"text": ["a", "b"], "answer_start": [0]}},
        "has 1 item(s) but 'answers.text' has 2",
    ),
    ("missing answers", {"id": "q1"}, "missing field 'answers'"),
]


@pytest.mark.parametrize(
    ("name", "row", "words"), QA_REFERENCE_FAULTS, ids=[f[0] for f in QA_REFERENCE_FAULTS]
)
def test_malformed_qa_references(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, row: object, words: str
) -> None:
    preds, refs = tmp_path / "p.jsonl", tmp_path / "r.jsonl"
    preds.write_bytes(line(GOOD_QA_PRED) + line({**GOOD_QA_PRED, "id": "q2"}))
    refs.write_bytes(line({**GOOD_QA_REF, "id": "q2"}) + line(row))
    code, out, err = score(capsys, "qa", preds, refs)
    assert_one_line_error(code, out, err, refs, "line 2")
    assert words in err


RETRIEVAL_FAULTS: list[tuple[str, str, object, str]] = [
    ("ranked as a string", "p", {"id": "b", "ranked": "d1"}, "'ranked' must be an array of ids"),
    ("ranked with null", "p", {"id": "b", "ranked": ["d1", None]}, "item 2 is null"),
    ("ranked with a float", "p", {"id": "b", "ranked": [1.5]}, "item 1 is a number"),
    ("ranked with a boolean", "p", {"id": "b", "ranked": [True]}, "item 1 is a boolean"),
    ("ranked with an object", "p", {"id": "b", "ranked": [{"id": "d1"}]}, "item 1 is an object"),
    ("relevant empty", "r", {"id": "b", "relevant": []}, "id 'b' has no relevant ids"),
    (
        "relevant as a number",
        "r",
        {"id": "b", "relevant": 3},
        "'relevant' must be an array of ids (strings or integers) (got a number)",
    ),
    ("relevant with an empty id", "r", {"id": "b", "relevant": [""]}, "item 1 is a string"),
]


@pytest.mark.parametrize(
    ("name", "side", "row", "words"), RETRIEVAL_FAULTS, ids=[f[0] for f in RETRIEVAL_FAULTS]
)
def test_malformed_retrieval_rows(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, side: str, row: object, words: str
) -> None:
    preds, refs = tmp_path / "p.jsonl", tmp_path / "r.jsonl"
    preds.write_bytes(
        line(GOOD_RET_PRED) + (line(row) if side == "p" else line({**GOOD_RET_PRED, "id": "b"}))
    )
    refs.write_bytes(line(GOOD_RET_REF) + (line(row) if side == "r" else line({**GOOD_RET_REF, "id": "b"})))
    code, out, err = score(capsys, "retrieval", preds, refs)
    assert_one_line_error(code, out, err, preds if side == "p" else refs, "line 2")
    assert words in err


def test_a_huge_line_is_refused_without_reading_it_all(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hfops.evals import jsonl

    monkeypatch.setattr(jsonl, "MAX_LINE_BYTES", 4096)
    preds, refs = tmp_path / "p.jsonl", tmp_path / "r.jsonl"
    preds.write_bytes(line(GOOD_QA_PRED) + b'{"id": "q2", "prediction_text": "' + b"x" * 10_000 + b'"}\n')
    refs.write_bytes(line(GOOD_QA_REF) + line({**GOOD_QA_REF, "id": "q2"}))
    code, out, err = score(capsys, "qa", preds, refs)
    assert_one_line_error(code, out, err, preds, "line 2")
    assert "longer than 4,096 bytes" in err


def test_the_default_line_limit_refuses_a_50_mb_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    preds, refs = tmp_path / "p.jsonl", tmp_path / "r.jsonl"
    with preds.open("wb") as handle:
        handle.write(line(GOOD_QA_PRED) + b'{"id": "q2", "prediction_text": "')
        handle.write(b"x" * (50 * 1024 * 1024))
        handle.write(b'"}\n')
    refs.write_bytes(line(GOOD_QA_REF) + line({**GOOD_QA_REF, "id": "q2"}))
    code, out, err = score(capsys, "qa", preds, refs)
    assert_one_line_error(code, out, err, preds, "line 2")
    assert "longer than" in err


FILE_FAULTS: list[tuple[str, Callable[[Path], Path], str]] = [
    ("empty file", lambda d: _write(d / "p.jsonl", b""), "no rows"),
    ("blank lines only", lambda d: _write(d / "p.jsonl", b"\n\n  \n"), "no rows"),
    ("missing file", lambda d: d / "missing.jsonl", "file not found"),
    ("a folder", lambda d: _mkdir(d / "folder.jsonl"), "not a file"),
]


def _write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


@pytest.mark.parametrize(("name", "make", "words"), FILE_FAULTS, ids=[f[0] for f in FILE_FAULTS])
def test_unusable_files(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, make: Callable[[Path], Path], words: str
) -> None:
    preds = make(tmp_path)
    refs = _write(tmp_path / "r.jsonl", line(GOOD_QA_REF))
    code, out, err = score(capsys, "qa", preds, refs)
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.startswith(f"error: {preds}: {words}"), err


def test_mismatched_ids_name_both_files_and_lines(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    preds = _write(tmp_path / "p.jsonl", line(GOOD_QA_PRED) + line({"id": "extra", "prediction_text": "y"}))
    refs = _write(tmp_path / "r.jsonl", line(GOOD_QA_REF) + line({"id": "q9", "answers": {"text": []}}))
    code, out, err = score(capsys, "qa", preds, refs)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert f"{refs}: line 2: 1 reference id(s) have no prediction in {preds} (e.g. q9)" in err
    assert f"{preds}: line 2: 1 prediction id(s) have no reference in {refs} (e.g. extra)" in err


def test_unreadable_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    preds = _write(tmp_path / "p.jsonl", line(GOOD_QA_PRED))
    refs = _write(tmp_path / "r.jsonl", line(GOOD_QA_REF))
    real_open = Path.open

    def refuse(self: Path, *args: object, **kwargs: object) -> object:  # as a file without read permission
        if self == preds:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "open", refuse)
    code, out, err = score(capsys, "qa", preds, refs)
    assert code == 2 and out == "" and err.strip() == f"error: {preds}: cannot read: Permission denied"


def test_the_installed_command_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    import subprocess
    import sys

    preds = _write(tmp_path / "p.jsonl", b"[" * 100_000 + b"]" * 100_000 + b"\n")
    refs = _write(tmp_path / "r.jsonl", line(GOOD_QA_REF))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "hfops.cli",
            "score",
            "--task",
            "qa",
            "--predictions",
            str(preds),
            "--references",
            str(refs),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == f"error: {preds}: line 1: nested more than {MAX_DEPTH} levels deep"


def test_well_formed_files_still_score(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The strict reader accepts what it should: blank lines, integer ids, unicode, escapes, extra fields,
    Windows line endings (jsonlines.org: the CR of CR LF is whitespace around the value)."""
    preds = _write(
        tmp_path / "p.jsonl",
        b"\n"
        + line({"id": 1, "prediction_text": "caf\u00e9 \u2603", "x": [1]})
        + b"\r\n"
        + line({"id": "q2", "prediction_text": ""}).replace(b"\n", b"\r\n"),
    )
    refs = _write(
        tmp_path / "r.jsonl",
        line({"id": "1", "answers": {"text": ["caf\u00e9 \u2603"]}})
        + line({"id": "q2", "answers": {"text": [], "answer_start": []}}),
    )
    code = main(["score", "--task", "qa", "--predictions", str(preds), "--references", str(refs), "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    result = json.loads(out.out)
    assert result["exact"] == pytest.approx(100.0) and result["total"] == 2
