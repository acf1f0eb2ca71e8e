"""Custom eval sets (issue 15): files and the Hub in, versioned sets out, evaluable like built-in datasets.

Real data in shapes the project has not seen (the MS MARCO sample mapped as QA, its JSON Lines twin with a
list of passage objects mapped as retrieval), a CSV with quoted newlines, parquet, a Hub dataset through the
stand-in (``datasets`` streaming in a child process pointed at it), bad mappings that store nothing, and
versions that follow the rows.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hfops.cli import main
from hfops.evals import custom, nightly, queries, runs, tasks
from hfops.store import get_db
from tests.registry_rows import add_candidates
from tests.standins.hub_datasets import HubDatasetsStandIn, squad_rows
from tests.standins.inference import InferenceStandIn
from tests.test_eval_runs import metric_rows, run_eval, settings_of, write_config

ROOT = Path(__file__).resolve().parent.parent
MARCO_JSON = ROOT / "data" / "ms_marco" / "ms_marco_v1.1_train_sample200.json"
MARCO_JSONL = ROOT / "data" / "ms_marco" / "ms_marco_v1.1_train_sample200.jsonl"
SQUAD_JSONL = ROOT / "data" / "squad_v2" / "dev-v2.0.sample.flat.jsonl"


def cli(capsys: pytest.CaptureFixture[str], db_path: str, *argv: str) -> tuple[int, str, str]:
    code = main([*argv[:2], "--db", db_path, *argv[2:]]) if argv[0] == "dataset" else main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def stored_names(db_path: str) -> list[str]:
    return custom.set_names(get_db(db_path))


# --- real data in new shapes --------------------------------------------------------------------------------


def test_ms_marco_rows_mapped_as_qa_run_and_reproduce(
    db_path: str,
    tmp_path: Path,
    fresh_standin: InferenceStandIn,
    api_key: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = cli(
        capsys,
        db_path,
        "dataset",
        "add",
        "marco-qa",
        "--task",
        "qa",
        "--file",
        str(MARCO_JSON),
        "--map",
        "id=query_id,question=query,context=passages.passage_text,answers=answers",
    )
    assert code == 0, err
    rows = json.loads(MARCO_JSON.read_text())
    assert out.startswith("added: marco-qa: qa, 200 examples")
    code, out, _ = cli(capsys, db_path, "dataset", "show", "marco-qa", "--json")
    shown = json.loads(out)
    assert (shown["task"], shown["examples"], shown["source"]) == ("qa", len(rows), "file")
    assert shown["version"].startswith("sha256:") and shown["unanswerable"] == sum(
        1 for r in rows if not r["answers"]
    )
    assert shown["mapping"] == {
        "id": "query_id",
        "question": "query",
        "context": "passages.passage_text",
        "answers": "answers",
    }
    example = next(
        e for e in custom.stored_examples(get_db(db_path), "marco-qa") if e.id == str(rows[0]["query_id"])
    )
    assert example.query == rows[0]["query"] and example.answers == rows[0]["answers"]
    assert example.context.startswith("[1] " + rows[0]["passages"]["passage_text"][0])

    config = write_config(tmp_path / "c.toml", fresh_standin.url)
    first = run_eval(db_path, config, "acme/chat", "qa", "marco-qa", 6)
    assert first["status"] == "succeeded", first["error"]
    assert first["dataset_version"] == shown["version"] and first["primary_metric"] == "f1"
    run = queries.get_run(get_db(db_path), first["run_id"])
    assert run is not None and run.dataset_source == "custom" and run.total == 6
    second = run_eval(
        db_path, config, "acme/chat", "qa", "marco-qa", 6
    )  # same examples, outputs from the cache
    assert second["model_calls"] == 0 and second["cache_hits"] >= 6
    assert metric_rows(db_path, second["run_id"]) == metric_rows(db_path, first["run_id"])
    outputs = [
        (e.example_id, e.candidate_output) for e in queries.run_examples(get_db(db_path), first["run_id"])
    ]
    assert outputs == [
        (e.example_id, e.candidate_output) for e in queries.run_examples(get_db(db_path), second["run_id"])
    ]


def test_passage_objects_mapped_as_retrieval(
    db_path: str,
    tmp_path: Path,
    fresh_standin: InferenceStandIn,
    api_key: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = cli(
        capsys,
        db_path,
        "dataset",
        "add",
        "marco-ret",
        "--task",
        "retrieval",
        "--file",
        str(MARCO_JSONL),
        "--map",
        "id=query_id,passages=passages.passage_text,selected=passages.is_selected",
    )
    assert code == 0, err
    rows = [json.loads(line) for line in MARCO_JSONL.read_text().splitlines() if line.strip()]
    judged = [r for r in rows if any(p["is_selected"] for p in r["passages"])]
    assert f"retrieval, {len(judged)} examples, {sum(len(r['passages']) for r in judged)} documents" in out
    assert f"left out {len(rows) - len(judged)} row(s) without a relevant document" in out
    config = write_config(tmp_path / "c.toml", fresh_standin.url)
    summary = run_eval(db_path, config, "acme/embed", "retrieval", "marco-ret", 5)
    assert summary["status"] == "succeeded" and summary["production_id"] == "baseline:bm25"
    for example in queries.run_examples(get_db(db_path), summary["run_id"]):
        assert set(example.candidate_output) <= {f"{example.example_id}#{j}" for j in range(10)}
        assert example.input["pool"] == len(
            next(r for r in judged if str(r["query_id"]) == example.example_id)["passages"]
        )


def test_csv_with_quoted_newlines(db_path: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "support.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ticket", "q", "body", "gold"])
        writer.writerow(
            [
                "t1",
                "How do I reset my password?",
                'Go to "Settings",\nthen "Security".\n\nClick reset.',
                json.dumps(["Settings, then Security", "click reset"]),
            ]
        )
        writer.writerow(["t2", "Which plan has SSO?", "SSO is part of the Enterprise plan.", "Enterprise"])
        writer.writerow(["t3", "Is there a phone line?", "We answer by e-mail only.", ""])
    code, out, err = cli(
        capsys,
        db_path,
        "dataset",
        "add",
        "support",
        "--task",
        "qa",
        "--file",
        str(path),
        "--map",
        "id=ticket,question=q,context=body,answers=gold",
    )
    assert code == 0, err
    assert "3 examples, 1 unanswerable" in out
    examples = {e.id: e for e in custom.stored_examples(get_db(db_path), "support")}
    assert examples["t1"].context == 'Go to "Settings",\nthen "Security".\n\nClick reset.'
    assert examples["t1"].answers == ["Settings, then Security", "click reset"]
    assert examples["t2"].answers == ["Enterprise"] and examples["t3"].answers == []


def test_parquet_queries_with_a_csv_corpus(
    db_path: str,
    tmp_path: Path,
    fresh_standin: InferenceStandIn,
    api_key: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    squad = squad_rows()[:40]
    contexts = list(dict.fromkeys(r["context"] for r in squad))
    corpus = tmp_path / "docs.csv"
    with corpus.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["doc", "text"])
        writer.writerows([f"p{i}", text] for i, text in enumerate(contexts))
    queries_file = tmp_path / "queries.parquet"
    pq.write_table(
        pa.table(
            {
                "qid": [r["id"] for r in squad],
                "question": [r["question"] for r in squad],
                "gold": [f"p{contexts.index(r['context'])}" for r in squad],
            }
        ),
        queries_file,
    )
    code, out, err = cli(
        capsys,
        db_path,
        "dataset",
        "add",
        "sq-ret",
        "--task",
        "retrieval",
        "--file",
        str(queries_file),
        "--corpus",
        str(corpus),
        "--map",
        "id=qid,query=question,relevant=gold,doc_id=doc,doc_text=text",
    )
    assert code == 0, err
    assert f"40 examples, {len(contexts)} documents" in out
    config = write_config(tmp_path / "c.toml", fresh_standin.url)
    summary = run_eval(db_path, config, "acme/embed", "retrieval", "sq-ret", 12)
    assert summary["status"] == "succeeded"
    examples = queries.run_examples(get_db(db_path), summary["run_id"])
    assert all(e.input["pool"] == len(contexts) for e in examples)  # one shared corpus
    assert {m for s, m in metric_rows(db_path, summary["run_id"]) if s == "candidate"} == set(
        tasks.RETRIEVAL_METRICS
    )


# --- the Hub ------------------------------------------------------------------------------------------------


def test_a_hub_dataset_through_datasets_streaming(db_path: str, tmp_path: Path) -> None:
    with HubDatasetsStandIn() as hub:
        config = tmp_path / "hub.toml"
        config.write_text(f'[hub]\nendpoint = "{hub.url}"\n')
        env = {
            k: v
            for k, v in os.environ.items()
            if k
            not in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE", "HF_TOKEN", "HF_HUB_CACHE", "HF_DATASETS_CACHE")
        }
        env.update(
            HF_ENDPOINT=hub.url,
            HF_HUB_DISABLE_TELEMETRY="1",
            HF_HOME=str(tmp_path / "hf-home"),
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "lib"), env.get("PYTHONPATH")])),
        )
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "hfops.cli",
                "--config",
                str(config),
                "dataset",
                "add",
                "hub-sq",
                "--db",
                db_path,
                "--task",
                "qa",
                "--hub",
                "rajpurkar/squad_v2",
                "--split",
                "validation",
                "--limit",
                "30",
                "--json",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        result = json.loads(done.stdout)
        assert any(
            line.endswith("/squad_v2/validation.jsonl") for line in hub.file_downloads("rajpurkar/squad_v2")
        )
        missing = subprocess.run(
            [
                sys.executable,
                "-m",
                "hfops.cli",
                "--config",
                str(config),
                "dataset",
                "add",
                "nope",
                "--db",
                db_path,
                "--task",
                "qa",
                "--hub",
                "acme/not-there",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            cwd=tmp_path,
        )
    assert result["status"] == "added" and result["set"]["source"] == "hub"
    assert result["set"]["location"] == "hf://datasets/rajpurkar/squad_v2 validation[:30]"
    served = squad_rows()[:30]
    stored = custom.stored_examples(get_db(db_path), "hub-sq")
    assert [e.id for e in stored] == [r["id"] for r in served]
    assert [e.answers for e in stored] == [[a for a in r["answers"]["text"] if a.strip()] for r in served]
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert missing.stderr.startswith(
        "error: hf://datasets/acme/not-there validation[:2000]: could not load from the Hub"
    )
    assert stored_names(db_path) == ["hub-sq"]


def test_a_hub_set_refuses_an_endpoint_datasets_does_not_use(db_path: str) -> None:
    from hfops.config import load_settings

    settings = load_settings(None, **{"hub.endpoint": "http://127.0.0.1:9", "store.path": db_path})
    with pytest.raises(custom.DatasetError, match="set HF_ENDPOINT=http://127.0.0.1:9"):
        custom.add_from_hub(get_db(db_path), settings, "x", "qa", "rajpurkar/squad_v2")
    assert stored_names(db_path) == []


# --- bad mappings store nothing -----------------------------------------------------------------------------


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


QA_ROWS = [
    {"qid": f"q{i}", "question": f"question {i}?", "context": f"context {i}.", "gold": [f"answer {i}"]}
    for i in range(1, 5)
]


@pytest.mark.parametrize(
    ("name", "rows", "mapping", "words"),
    [
        (
            "missing column",
            QA_ROWS,
            "id=qid,answers=answer_text",
            "column 'answer_text' (mapped to answers) not found (columns: qid, question, context, gold)",
        ),
        ("no answers column", QA_ROWS, "id=qid", "no column for answers (--map answers=COLUMN"),
        (
            "empty answers column",
            [{**r, "gold": []} for r in QA_ROWS],
            "id=qid,answers=gold",
            "column 'gold' (answers) is empty in every row",
        ),
        (
            "duplicate ids",
            [*QA_ROWS, {**QA_ROWS[1]}],
            "id=qid,answers=gold",
            "line 5, column 'qid': duplicate id 'q2' (first at line 2)",
        ),
        (
            "answers of the wrong type",
            [QA_ROWS[0], {**QA_ROWS[1], "gold": [7]}],
            "id=qid,answers=gold",
            "line 2, column 'gold': answer 1 is a number, not a string",
        ),
        (
            "empty question",
            [QA_ROWS[0], {**QA_ROWS[1], "question": "  "}],
            "id=qid,answers=gold",
            "line 2, column 'question': empty",
        ),
        (
            "id of the wrong type",
            [QA_ROWS[0], {**QA_ROWS[1], "qid": [1]}],
            "id=qid,answers=gold",
            "line 2, column 'qid': an array is not an id",
        ),
        ("unknown field", QA_ROWS, "id=qid,answer=gold", "--map: unknown field 'answer' for a qa set"),
        ("malformed pair", QA_ROWS, "id=qid,answers", "--map: 'answers' is not FIELD=COLUMN"),
    ],
)
def test_bad_mappings_are_clear_errors_and_store_nothing(
    db_path: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    rows: list[dict[str, Any]],
    mapping: str,
    words: str,
) -> None:
    path = write_jsonl(tmp_path / "set.jsonl", rows)
    code, out, err = cli(
        capsys, db_path, "dataset", "add", "mine", "--task", "qa", "--file", path, "--map", mapping
    )
    assert code == 2 and out == "" and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1 and words in err, err
    assert stored_names(db_path) == []


def test_a_50_mb_line_is_refused(db_path: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def add(path: Path) -> tuple[int, str]:
        code, _, err = cli(capsys, db_path, "dataset", "add", "big", "--task", "qa", "--file", str(path),
                           "--map", "id=qid,answers=gold")  # fmt: skip
        return code, err

    path = tmp_path / "big.jsonl"
    with path.open("wb") as handle:
        handle.write((json.dumps(QA_ROWS[0]) + "\n").encode())
        handle.write(b'{"qid": "q2", "question": "' + b"x" * (50 * 1024 * 1024) + b'", "gold": ["a"]}\n')
    code, err = add(path)
    assert code == 2 and f"{path}: line 2: longer than" in err
    csv_path = tmp_path / "big.csv"
    csv_path.write_bytes(b'qid,question,gold\nq1,what?,a\nq2,"' + b"y" * (9 * 1024 * 1024) + b'",b\n')
    code, err = add(csv_path)
    assert code == 2 and f"{csv_path}: line" in err and "not valid CSV" in err
    assert stored_names(db_path) == []


def test_retrieval_mapping_errors(db_path: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    queries_path = write_jsonl(
        tmp_path / "q.jsonl",
        [{"id": "a", "query": "x?", "relevant": ["d1"]}, {"id": "b", "query": "y?", "relevant": ["d9"]}],
    )
    corpus = write_jsonl(
        tmp_path / "docs.jsonl", [{"doc_id": "d1", "doc_text": "one"}, {"doc_id": "d2", "doc_text": "two"}]
    )
    code, _, err = cli(capsys, db_path, "dataset", "add", "r", "--task", "retrieval", "--file", queries_path)
    assert code == 2 and "a retrieval set needs documents" in err
    code, _, err = cli(
        capsys,
        db_path,
        "dataset",
        "add",
        "r",
        "--task",
        "retrieval",
        "--file",
        queries_path,
        "--corpus",
        corpus,
    )
    assert code == 2 and "q.jsonl: line 2, column 'relevant': document 'd9' is not in the corpus" in err
    dup = write_jsonl(
        tmp_path / "dup.jsonl", [{"doc_id": "d1", "doc_text": "one"}, {"doc_id": "d1", "doc_text": "x"}]
    )
    code, _, err = cli(
        capsys, db_path, "dataset", "add", "r", "--task", "retrieval", "--file", queries_path, "--corpus", dup
    )
    assert (
        code == 2
        and "dup.jsonl: line 2, column 'doc_id': duplicate document id 'd1' (first at line 1)" in err
    )
    code, _, err = cli(capsys, db_path, "dataset", "add", "squad_v2", "--task", "qa", "--file", queries_path)
    assert code == 2 and "'squad_v2' is a built-in dataset" in err
    assert stored_names(db_path) == []


# --- versions -----------------------------------------------------------------------------------------------


def test_the_version_follows_the_rows(
    db_path: str,
    tmp_path: Path,
    fresh_standin: InferenceStandIn,
    api_key: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "set.jsonl"
    rows = [
        {"id": r["id"], "question": r["question"], "context": r["context"], "answers": r["answers"]}
        for r in squad_rows()[:12]
    ]
    write_jsonl(path, rows)
    args = ("dataset", "add", "mine", "--task", "qa", "--file", str(path))
    assert cli(capsys, db_path, *args)[0] == 0
    first = custom.get_set(get_db(db_path), "mine").version
    code, out, _ = cli(capsys, db_path, *args)
    assert (
        code == 0
        and out.startswith("unchanged: mine")
        and custom.get_set(get_db(db_path), "mine").version == first
    )
    config = write_config(tmp_path / "c.toml", fresh_standin.url)
    before = run_eval(db_path, config, "acme/chat", "qa", "mine", None)
    assert before["status"] == "succeeded" and before["dataset_version"] == first

    rows[3] = {**rows[3], "question": rows[3]["question"] + " (edited)"}  # one row changes
    write_jsonl(path, rows)
    code, _, err = cli(capsys, db_path, *args)
    assert code == 2 and "exists" in err and "--replace" in err
    assert custom.get_set(get_db(db_path), "mine").version == first  # nothing stored
    code, out, _ = cli(capsys, db_path, *args, "--replace")
    second = custom.get_set(get_db(db_path), "mine").version
    assert code == 0 and out.startswith(f"replaced (was {first}): mine") and second != first
    after = run_eval(db_path, config, "acme/chat", "qa", "mine", None)
    assert after["dataset_version"] == second
    board = queries.leaderboard_entries(get_db(db_path), "qa", "mine")  # the newest version only
    assert {(e.model_id, e.latest_run, e.dataset_version) for e in board} == {
        ("acme/chat", after["run_id"], second),
        ("baseline:lexical", after["run_id"], second),
    }
    old_board = queries.leaderboard_entries(get_db(db_path), "qa", "mine", version=first)
    assert {e.latest_run for e in old_board} == {before["run_id"]}

    # a run started on the old version refuses to resume on the new one
    ids = runs.submit_run(db_path, "acme/chat", "qa", "mine", 3, settings_of(config, db_path), enqueue=False)
    get_db(db_path).execute("UPDATE eval_runs SET dataset_version = ? WHERE id = ?", [first, ids.run_id])
    with pytest.raises(runs.EvalError, match="dataset changed since run"):
        runs.execute_run(db_path, ids.run_id, settings_of(config, db_path))

    code, out, _ = cli(capsys, db_path, "dataset", "remove", "mine")
    assert code == 0 and out.startswith("removed mine") and stored_names(db_path) == []
    assert queries.get_run(get_db(db_path), after["run_id"]) is not None  # runs keep their results
    code, _, err = cli(capsys, db_path, "dataset", "show", "mine")
    assert code == 2 and "no custom eval set 'mine'" in err


def test_custom_sets_are_planned_nightly_and_listed(
    db_path: str,
    tmp_path: Path,
    fresh_standin: InferenceStandIn,
    api_key: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write_jsonl(
        tmp_path / "set.jsonl",
        [
            {"id": r["id"], "question": r["question"], "context": r["context"], "answers": r["answers"]}
            for r in squad_rows()[:6]
        ],
    )
    assert cli(capsys, db_path, "dataset", "add", "mine", "--task", "qa", "--file", path)[0] == 0
    add_candidates(db_path, [{"model_id": "acme/chat", "pipeline_tag": "text-generation"}])
    config = write_config(tmp_path / "c.toml", fresh_standin.url)
    planned, _ = nightly.plan_nightly(db_path, settings_of(config, db_path))
    assert {(p.model, p.dataset) for p in planned} == {
        ("acme/chat", "squad_v2"),
        ("acme/chat", "ms_marco"),
        ("acme/chat", "mine"),
    }
    code, out, _ = cli(capsys, db_path, "dataset", "list", "--json")
    assert code == 0 and [s["name"] for s in json.loads(out)] == ["mine"]
    assert custom.dataset_choices(get_db(db_path), "qa") == ["squad_v2", "ms_marco", "mine"]
    assert custom.dataset_choices(get_db(db_path), "retrieval") == ["squad_v2", "ms_marco"]
    code, _, err = cli(
        capsys,
        db_path,
        "eval",
        "--db",
        db_path,
        "--model",
        "acme/embed",
        "--task",
        "retrieval",
        "--dataset",
        "mine",
    )
    assert code == 2 and "mine is a qa set, not a retrieval set" in err


# --- what the Evals page's mapping form builds on -----------------------------------------------------------


def test_a_form_mapping_is_checked_as_the_cli_map_is(db_path: str, tmp_path: Path) -> None:
    from hfops.evals import custom_rows

    path = write_jsonl(tmp_path / "set.jsonl", QA_ROWS)
    with pytest.raises(custom.DatasetError) as from_text:
        custom.add_from_file(get_db(db_path), "mine", "qa", path, "id=qid,answer=gold")
    with pytest.raises(custom.DatasetError) as from_form:
        custom.add_from_file(get_db(db_path), "mine", "qa", path, {"id": "qid", "answer": "gold"})
    assert str(from_form.value) == str(from_text.value)
    assert custom_rows.parse_mapping({"id": "qid", "context": "", "answers": "gold"}, "qa") == {
        "id": "qid",
        "answers": "gold",
    }  # a field left empty in the form stays unmapped
    checked = custom.map_file("qa", path, {"id": "qid", "answers": "gold"})
    added = custom.add_from_file(get_db(db_path), "mine", "qa", path, "id=qid,answers=gold")
    assert checked.version == added.set.version and len(checked.examples) == added.set.examples == 4


def test_the_columns_offered_reach_nested_values_of_real_rows() -> None:
    from hfops.evals import custom_rows

    source = custom_rows.read_file(MARCO_JSON)
    rows = [row for _, row in source.rows]
    paths = custom_rows.column_paths(rows[:100])
    assert paths[: len(source.columns)] == source.columns  # the top-level columns first
    assert {"passages.passage_text", "passages.is_selected", "passages.url"} <= set(paths)
    for path in paths:  # every column offered is one the mapping can read
        assert any(custom_rows.lookup(row, path) is not custom_rows.MISSING for row in rows)


def test_an_upload_is_kept_by_its_bytes_and_refused_when_unreadable(tmp_path: Path) -> None:
    data = MARCO_JSONL.read_bytes()
    kept = custom.save_upload(tmp_path, "C:\\Users\\me\\../MS MARCO.jsonl", data)
    assert kept.name == "MS MARCO.jsonl" and kept.parent.parent == tmp_path and kept.read_bytes() == data
    assert custom.save_upload(tmp_path, "MS MARCO.jsonl", data) == kept  # the same bytes, the same file
    assert custom_rows_of(kept) == custom_rows_of(MARCO_JSONL)
    with pytest.raises(custom.DatasetError, match=r"notes.txt: unsupported file type \.txt"):
        custom.save_upload(tmp_path, "notes.txt", b"x")
    with pytest.raises(custom.DatasetError, match="empty.csv: the file is empty"):
        custom.save_upload(tmp_path, "empty.csv", b"")
    assert custom.suggest_name("Support Tickets (2026).CSV") == "support-tickets-2026"
    assert custom.suggest_name("squad_v2.jsonl") == "squad_v2-set"  # never a built-in dataset's name


def custom_rows_of(path: Path) -> list[dict[str, Any]]:
    from hfops.evals import custom_rows

    return [row for _, row in custom_rows.read_file(path).rows]
