"""Eval datasets: the shipped samples through ``datasets``, deterministic samples, versions, clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hfops.config import load_settings
from hfops.evals.data import DatasetError, load_eval_set, local_file
from hfops.paths import DATA_DIR


def settings_with_data(data_dir: Path | None = None, **overrides: object):
    values = {"eval.data_dir": str(data_dir) if data_dir else None, **overrides}
    return load_settings(None, **values)


def test_shipped_samples_and_their_sources() -> None:
    for folder in ("squad_v2", "ms_marco"):
        assert (DATA_DIR / folder / "SOURCE.md").is_file()
    notice = (DATA_DIR / "ms_marco" / "NOTICE").read_text()
    assert "non-commercial research" in notice


def test_squad_v2_tasks() -> None:
    settings = settings_with_data()
    qa = load_eval_set(settings, "squad_v2", "qa")
    assert len(qa.examples) == qa.available == 1124
    assert sum(1 for e in qa.examples if not e.answers) == 541
    assert qa.version.startswith("sha256:") and qa.source == "local"
    first = next(e for e in qa.examples if e.id == "56ddde6b9a695914005b9628")
    assert first.answers == ["France", "France", "France", "France"]
    assert first.context.startswith("The Normans")
    retrieval = load_eval_set(settings, "squad_v2", "retrieval")
    assert len(retrieval.corpus) == 131  # each question searches all 131 paragraphs
    assert all(
        e.candidates is None and len(e.relevant) == 1 and e.relevant[0] in retrieval.corpus
        for e in retrieval.examples
    )
    same = next(e for e in retrieval.examples if e.id == first.id)
    assert retrieval.corpus[same.relevant[0]] == first.context


def test_ms_marco_tasks() -> None:
    settings = settings_with_data()
    retrieval = load_eval_set(settings, "ms_marco", "retrieval")
    assert len(retrieval.examples) == 189  # queries with a selected passage
    assert sum(len(e.relevant) for e in retrieval.examples) == 211
    assert all(set(e.relevant) <= set(e.candidates or []) for e in retrieval.examples)
    assert len(retrieval.corpus) == sum(len(e.candidates or []) for e in retrieval.examples)
    qa = load_eval_set(settings, "ms_marco", "qa")
    assert len(qa.examples) == 193  # queries with a gold answer
    assert all(e.answers for e in qa.examples)


def test_limit_is_a_deterministic_spread_sample() -> None:
    settings = settings_with_data()
    a = load_eval_set(settings, "squad_v2", "qa", limit=30)
    b = load_eval_set(settings, "squad_v2", "qa", limit=30)
    assert [e.id for e in a.examples] == [e.id for e in b.examples]
    assert a.example_ids_hash == b.example_ids_hash and a.version == b.version
    assert len(a.examples) == 30 and a.available == 1124
    paragraphs = {e.context for e in a.examples}
    assert len(paragraphs) > 5  # spread over paragraphs, not the first 30 rows
    bigger = load_eval_set(settings, "squad_v2", "qa", limit=60)
    assert {e.id for e in a.examples} <= {e.id for e in bigger.examples}
    small = load_eval_set(settings, "ms_marco", "retrieval", limit=5)
    assert len(small.examples) == 5
    assert set(small.corpus) == {d for e in small.examples for d in e.candidates or []}


def copy_data(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    for folder in ("squad_v2", "ms_marco"):
        (target / folder).mkdir(parents=True)
    shutil.copy(local_file(settings_with_data(), "squad_v2"), target / "squad_v2")
    shutil.copy(local_file(settings_with_data(), "ms_marco"), target / "ms_marco")
    return target


def test_version_changes_with_content(tmp_path: Path) -> None:
    data = copy_data(tmp_path)
    settings = settings_with_data(data)
    before = load_eval_set(settings, "squad_v2", "qa", limit=3).version
    path = local_file(settings, "squad_v2")
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n")
    after = load_eval_set(settings, "squad_v2", "qa", limit=3)
    assert after.version != before and after.available == 1123


def test_missing_file_names_it(tmp_path: Path) -> None:
    settings = settings_with_data(tmp_path / "nowhere")
    with pytest.raises(DatasetError) as err:
        load_eval_set(settings, "squad_v2", "qa")
    assert str(tmp_path / "nowhere" / "squad_v2" / "dev-v2.0.sample.flat.jsonl") in str(err.value)
    assert "not found" in str(err.value)


def test_malformed_jsonl_names_the_line(tmp_path: Path) -> None:
    data = copy_data(tmp_path)
    path = data / "squad_v2" / "dev-v2.0.sample.flat.jsonl"
    lines = path.read_text().splitlines()
    lines[6] = lines[6][:-5]  # truncate line 7
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        DatasetError,
        match=r"dev-v2\.0\.sample\.flat\.jsonl: malformed dataset file: line 7: "
        r"not valid JSON",
    ):
        load_eval_set(settings_with_data(data), "squad_v2", "qa")


def test_malformed_json_list_names_the_line(tmp_path: Path) -> None:
    data = copy_data(tmp_path)
    path = data / "ms_marco" / "ms_marco_v1.1_train_sample200.json"
    path.write_text('[\n  {"query_id": 1,\n  "query": oops}\n]\n')
    with pytest.raises(
        DatasetError, match=r"ms_marco_v1\.1_train_sample200\.json: malformed dataset file: line 3"
    ):
        load_eval_set(settings_with_data(data), "ms_marco", "retrieval")


def test_wrong_schema_names_missing_fields(tmp_path: Path) -> None:
    data = copy_data(tmp_path)
    path = data / "squad_v2" / "dev-v2.0.sample.flat.jsonl"
    path.write_text(json.dumps({"id": "1", "title": "t", "context": "c", "query": "q?"}) + "\n")
    with pytest.raises(
        DatasetError, match="wrong schema for squad_v2: missing field\\(s\\) question, answers"
    ):
        load_eval_set(settings_with_data(data), "squad_v2", "qa")


def test_wrong_row_type_names_the_row(tmp_path: Path) -> None:
    data = copy_data(tmp_path)
    path = data / "squad_v2" / "dev-v2.0.sample.flat.jsonl"
    good = {
        "id": "1",
        "title": "t",
        "context": "Some context.",
        "question": "What?",
        "answers": {"text": ["x"], "answer_start": [0]},
    }
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "id": "2", "question": ""}) + "\n")
    with pytest.raises(DatasetError, match="row 2: 'question' must be a non-empty string"):
        load_eval_set(settings_with_data(data), "squad_v2", "qa")


def test_empty_dataset(tmp_path: Path) -> None:
    data = copy_data(tmp_path)
    (data / "squad_v2" / "dev-v2.0.sample.flat.jsonl").write_text("")
    with pytest.raises(DatasetError, match="the file is empty"):
        load_eval_set(settings_with_data(data), "squad_v2", "qa")
    (data / "ms_marco" / "ms_marco_v1.1_train_sample200.json").write_text("[]")
    with pytest.raises(DatasetError, match="ms_marco_v1.1_train_sample200.json"):
        load_eval_set(settings_with_data(data), "ms_marco", "qa")


def test_no_usable_examples(tmp_path: Path) -> None:
    data = copy_data(tmp_path)
    row = {
        "query_id": 7,
        "query": "q",
        "query_type": "x",
        "answers": [],
        "passages": {"is_selected": [0], "passage_text": ["p"], "url": ["u"]},
    }
    (data / "ms_marco" / "ms_marco_v1.1_train_sample200.json").write_text(json.dumps([row]))
    with pytest.raises(DatasetError, match="no usable examples for retrieval"):
        load_eval_set(settings_with_data(data), "ms_marco", "retrieval")


def test_unknown_names() -> None:
    settings = settings_with_data()
    with pytest.raises(DatasetError, match="unknown dataset 'imdb'"):
        load_eval_set(settings, "imdb", "qa")
    with pytest.raises(DatasetError, match="unknown task 'summarise'"):
        load_eval_set(settings, "squad_v2", "summarise")


def test_hub_source_offline_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # HF_DATASETS_OFFLINE=1 (conftest): the Hub cannot be reached; the error names the dataset, not a
    # traceback
    settings = settings_with_data(**{"eval.source": "hub", "eval.hub_max_rows": 5})
    with pytest.raises(
        DatasetError, match=r"hf://datasets/rajpurkar/squad_v2 validation\[:5\]: could not load"
    ):
        load_eval_set(settings, "squad_v2", "qa")


def test_every_table_entry_has_its_code_and_its_file() -> None:
    """The task table is complete.

    Each dataset's reader, each scorer's functions and each shipped sample exist.
    """
    from hfops.evals import data, stats, tasks
    from hfops.evals.backends.resolve import BACKENDS
    from hfops.paths import DATA_DIR

    for name, spec in tasks.DATASET_SPECS.items():
        assert spec.name == name and spec.reader in data.READERS, name
        assert (DATA_DIR / spec.local_file).is_file(), spec.local_file
        for task, evaluation in spec.tasks.items():
            assert task in tasks.TASK_SPECS and evaluation.scorer in tasks.SCORERS, (name, task)
            assert evaluation.scorer in stats.EXAMPLE_SCORERS and evaluation.scorer in stats.RUN_SCORERS
            assert tasks.eval_spec(task, name).primary == tasks.SCORERS[evaluation.scorer].metrics[0]
    for name, task_spec in tasks.TASK_SPECS.items():
        assert name in BACKENDS and task_spec.default_eval is not None
        assert (
            tasks.eval_spec(name, "a-custom-set").spec == task_spec.default_eval
        )  # custom sets: the default
    assert (
        tasks.task_of_pipeline("sentence-similarity") == "retrieval" and tasks.task_of_pipeline("x") is None
    )
