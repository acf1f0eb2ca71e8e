"""Custom eval sets, the pure part: read rows (JSON Lines, JSON, CSV, parquet, a Hub dataset), map columns to
the fields of a task, validate every row, and fingerprint the result.

Fields (the names ``--map FIELD=COLUMN`` uses; a column may be a dotted path into nested values, e.g.
``passages.passage_text``; an unmapped field defaults to the column of the same name when there is one):

- ``qa``: ``id`` (optional: the row number), ``question``, ``context`` (optional; a string or a list of
  passages), ``answers`` (a list of strings, one string, a SQuAD ``{"text": [...]}`` object, or empty =
  unanswerable).
- ``retrieval``: ``id`` (optional), ``query`` and, either, ``relevant`` (a list of document ids or one id)
  with the documents in a separate ``--corpus`` file mapped by ``doc_id`` and ``doc_text``; or ``passages`` (a
  column holding each query's own passages) with ``relevant`` as 0-based positions in it or ``selected`` as
  one 0/1 flag per passage (MS MARCO's ``is_selected``). A query without any relevant document cannot be
  scored: it is left out and reported (``MappedSet.skipped``), as the built-in MS MARCO set does.

Every problem is a :class:`~hfops.errors.DatasetError` naming the file (or Hub location), the row and the
column; nothing is stored by this module. The version of a set is the SHA-256 of its task, examples and
documents in canonical JSON: one changed row gives another version.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hfops.errors import DatasetError
from hfops.evals import jsonl
from hfops.evals.data import Example
from hfops.evals.tasks import TASK_NAMES

FIELDS = {
    "qa": ("id", "question", "context", "answers"),
    "retrieval": ("id", "query", "relevant", "passages", "selected"),
}
REQUIRED = {"qa": ("question", "answers"), "retrieval": ("query",)}
CORPUS_FIELDS = ("doc_id", "doc_text")
FORMATS = (".jsonl", ".json", ".csv", ".parquet")
MISSING = object()


@dataclass
class SourceRows:
    """Rows read from one source, each with the label that names it in messages (``line 3``, ``row 3``)."""

    location: str
    rows: list[tuple[str, dict[str, Any]]]
    columns: list[str]


@dataclass
class MappedSet:
    """A validated set: its examples (and documents), ready to store."""

    task: str
    location: str
    mapping: dict[str, str]
    examples: list[Example]
    corpus: dict[str, str] = field(default_factory=dict)
    per_query: bool = False  # retrieval: documents are each query's own passages
    skipped: list[str] = field(default_factory=list)  # retrieval: rows left out (no relevant document)

    @property
    def unanswerable(self) -> int:
        return sum(1 for e in self.examples if self.task == "qa" and not e.answers)

    @property
    def version(self) -> str:
        return content_version(self.task, self.examples, self.corpus)


def example_data(example: Example) -> dict[str, Any]:
    """The stored JSON of one example (what the version hashes)."""
    return {
        "id": example.id,
        "query": example.query,
        "context": example.context,
        "answers": example.answers,
        "relevant": example.relevant,
        "candidates": example.candidates,
    }


def content_version(task: str, examples: list[Example], corpus: dict[str, str]) -> str:
    """``sha256:`` + 16 hex digits over the task, every example and every document (canonical JSON)."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"task": task}, sort_keys=True).encode())
    for example in examples:
        digest.update(b"\n" + json.dumps(example_data(example), sort_keys=True, ensure_ascii=False).encode())
    for doc_id in sorted(corpus):
        digest.update(b"\n" + json.dumps([doc_id, corpus[doc_id]], ensure_ascii=False).encode())
    return "sha256:" + digest.hexdigest()[:16]


# --- reading ------------------------------------------------------------------------------------------------


def _columns_of(rows: list[tuple[str, dict[str, Any]]]) -> list[str]:
    seen: dict[str, None] = {}
    for _, row in rows[:1000]:
        seen.update(dict.fromkeys(row))
    return list(seen)


def _jsonl_rows(path: Path, limit: int | None) -> Iterator[tuple[str, dict[str, Any]]]:
    for count, (line, row) in enumerate(jsonl.iter_rows(path, DatasetError), start=1):
        yield f"line {line}", row
        if limit and count >= limit:
            return


def _json_rows(path: Path, limit: int | None) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        size = path.stat().st_size
        if size > 512 * 1024 * 1024:
            raise DatasetError(f"{path}: {size:,} bytes is too large for a JSON file (use JSON Lines)")
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not valid UTF-8 (byte {exc.start})") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc.strerror or type(exc).__name__}") from None
    try:
        value = jsonl.parse_json_line(text)
    except ValueError as exc:
        raise DatasetError(f"{path}: {exc}") from None
    if isinstance(value, dict) and isinstance(value.get("data"), list):
        value = value["data"]
    if not isinstance(value, list):
        raise DatasetError(f"{path}: expected a JSON array of row objects, got {jsonl.json_type(value)}")
    for index, row in enumerate(value[:limit] if limit else value, start=1):
        if not isinstance(row, dict):
            raise DatasetError(f"{path}: row {index}: expected a JSON object, got {jsonl.json_type(row)}")
        yield f"row {index}", row


def _csv_rows(path: Path, limit: int | None) -> Iterator[tuple[str, dict[str, Any]]]:
    csv.field_size_limit(jsonl.MAX_LINE_BYTES)
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc.strerror or type(exc).__name__}") from None
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if header is None:
                return
            duplicates = sorted({h for h in header if header.count(h) > 1})
            if duplicates:
                raise DatasetError(
                    f"{path}: line 1: duplicate column name(s) {', '.join(map(repr, duplicates))}"
                )
            count = 0
            start = reader.line_num + 1
            for record in reader:
                where = f"row {count + 1} (line {start})"
                start = reader.line_num + 1
                if not record:
                    continue
                if len(record) != len(header):
                    raise DatasetError(
                        f"{path}: {where}: {len(record)} field(s), the header has {len(header)}"
                    )
                count += 1
                yield where, dict(zip(header, record, strict=True))
                if limit and count >= limit:
                    return
        except UnicodeDecodeError:
            raise DatasetError(f"{path}: {_first_bad_utf8(path)}: not valid UTF-8") from None
        except csv.Error as exc:
            raise DatasetError(f"{path}: line {reader.line_num}: not valid CSV ({exc})") from None


def _first_bad_utf8(path: Path) -> str:
    """Where a file first stops being UTF-8: ``line N, byte 0xNN at column C`` (the decoder reads ahead)."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                return f"line {number}, byte 0x{raw[exc.start]:02x} at column {exc.start + 1}"
    return "at the end"


def _parquet_rows(path: Path, limit: int | None) -> Iterator[tuple[str, dict[str, Any]]]:
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    try:
        table = pq.read_table(path)
        if limit:
            table = table.slice(0, limit)
        found = table.to_pylist()
    except Exception as exc:  # pyarrow raises ArrowInvalid/OSError/... for a file that is not parquet
        raise DatasetError(f"{path}: not a readable parquet file ({type(exc).__name__}: {exc})") from None
    for index, row in enumerate(found, start=1):
        yield f"row {index}", row


READERS = {".jsonl": _jsonl_rows, ".json": _json_rows, ".csv": _csv_rows, ".parquet": _parquet_rows}


def read_file(path: str | Path, limit: int | None = None) -> SourceRows:
    """Rows of a ``.jsonl`` / ``.json`` / ``.csv`` / ``.parquet`` file (the first ``limit`` when given)."""
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix not in READERS:
        raise DatasetError(f"{file}: unsupported file type {suffix or '(none)'} (use {', '.join(FORMATS)})")
    if not file.exists():
        raise DatasetError(f"{file}: file not found")
    if not file.is_file():
        raise DatasetError(f"{file}: not a file")
    rows = list(READERS[suffix](file, limit))
    if not rows:
        raise DatasetError(f"{file}: no rows")
    return SourceRows(str(file), rows, _columns_of(rows))


def hub_location(repo: str, config: str | None, split: str, limit: int) -> str:
    return f"hf://datasets/{repo}" + (f" ({config})" if config else "") + f" {split}[:{limit}]"


def read_hub(repo: str, config: str | None, split: str, limit: int, token: str | None = None) -> SourceRows:
    """The first ``limit`` rows of a Hub dataset split, streamed through ``datasets``
    (``HF_ENDPOINT``'s Hub)."""
    import datasets

    datasets.disable_progress_bars()
    datasets.utils.logging.set_verbosity_error()
    location = hub_location(repo, config, split, limit)
    try:
        stream = datasets.load_dataset(repo, config, split=split, streaming=True, token=token or None)
        rows = [(f"row {i}", dict(r)) for i, r in enumerate(stream.take(limit), start=1)]
    except Exception as exc:  # offline, network, auth, unknown config/split: one clear message
        from hfops.net import one_line

        raise DatasetError(
            f"{location}: could not load from the Hub: {one_line(f'{type(exc).__name__}: {exc}')}"
        ) from None
    if not rows:
        raise DatasetError(f"{location}: no rows")
    return SourceRows(location, rows, _columns_of(rows))


# --- mapping ------------------------------------------------------------------------------------------------


def mapping_fields(task: str) -> tuple[str, ...]:
    """The fields a ``task`` mapping may name (retrieval: also the corpus fields ``doc_id``, ``doc_text``)."""
    if task not in FIELDS:
        raise DatasetError(f"unknown task {task!r} (choose {' or '.join(TASK_NAMES)})")
    return (*FIELDS[task], *(CORPUS_FIELDS if task == "retrieval" else ()))


def _check_field(task: str, known: tuple[str, ...], mapping: dict[str, str], name: str) -> None:
    if name not in known:
        raise DatasetError(f"--map: unknown field {name!r} for a {task} set (fields: {', '.join(known)})")
    if name in mapping:
        raise DatasetError(f"--map: field {name!r} is mapped twice")


def parse_mapping(text: str | dict[str, str] | None, task: str) -> dict[str, str]:
    """``FIELD=COLUMN,FIELD=COLUMN`` (the CLI's ``--map``) or ``{field: column}`` (a page's form) ->
    ``{field: column}``; unknown fields and malformed pairs are errors, the same for both forms. A field
    mapped to an empty column in a dict is left unmapped."""
    known = mapping_fields(task)
    mapping: dict[str, str] = {}
    if isinstance(text, dict):
        for name, column in text.items():
            name, column = str(name).strip(), str(column or "").strip()
            if not column:
                continue
            _check_field(task, known, mapping, name)
            mapping[name] = column
        return mapping
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, sep, column = part.partition("=")
        name, column = name.strip(), column.strip()
        if not sep or not name or not column:
            raise DatasetError(f"--map: {part.strip()!r} is not FIELD=COLUMN")
        _check_field(task, known, mapping, name)
        mapping[name] = column
    return mapping


def column_paths(rows: list[dict[str, Any]], limit: int = 200) -> list[str]:
    """Every column :func:`lookup` can reach in ``rows``: the top-level columns, then dotted paths into nested
    objects and lists of objects (``passages.passage_text``), in first-seen order (at most ``limit``)."""
    seen: dict[str, None] = {}

    def walk(prefix: str, value: Any, depth: int) -> None:
        if depth > 3 or len(seen) >= limit:
            return
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for item in value[:20]:
                walk(prefix, item, depth)
            return
        if not isinstance(value, dict):
            return
        for key, inner in value.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            seen.setdefault(path, None)
            walk(path, inner, depth + 1)

    for row in rows:
        seen.update(dict.fromkeys(str(k) for k in row))
    for row in rows:
        walk("", row, 0)
    return list(seen)[:limit]


def lookup(row: dict[str, Any], column: str) -> Any:
    """The value of ``column`` in ``row``: an exact key first, then a dotted path, which also reaches into a
    list of objects (``passages.passage_text`` over ``[{"passage_text": ...}, ...]`` is the list of texts);
    :data:`MISSING` if absent."""
    if column in row:
        return row[column]
    value: Any = row
    for part in column.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and value and all(isinstance(v, dict) and part in v for v in value):
            value = [v[part] for v in value]
        else:
            return MISSING
    return value


def _resolve_mapping(
    task: str, mapping: dict[str, str], source: SourceRows, fields: tuple[str, ...]
) -> dict[str, str]:
    resolved = {f: c for f, c in mapping.items() if f in fields}
    for name in fields:
        if name not in resolved and name in source.columns:
            resolved[name] = name
    first = source.rows[0][1]
    for name, column in resolved.items():
        if lookup(first, column) is MISSING and all(
            lookup(r, column) is MISSING for _, r in source.rows[:100]
        ):
            raise DatasetError(
                f"{source.location}: column {column!r} (mapped to {name}) not found "
                f"(columns: {', '.join(source.columns) or 'none'})"
            )
    return resolved


def _where(source: SourceRows, label: str, column: str) -> str:
    return f"{source.location}: {label}, column {column!r}"


def _maybe_json_list(value: Any) -> Any:
    """A CSV cell holding a JSON array becomes the array; anything else is returned as is."""
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            parsed = jsonl.parse_json_line(value)
        except ValueError:
            return value
        return parsed if isinstance(parsed, list) else value
    return value


def _text(source: SourceRows, label: str, column: str, value: Any, required: bool) -> str:
    if value is MISSING or value is None:
        if required:
            raise DatasetError(f"{_where(source, label, column)}: missing")
        return ""
    if not isinstance(value, str):
        raise DatasetError(
            f"{_where(source, label, column)}: expected a string, got {jsonl.json_type(value)}"
        )
    if required and not value.strip():
        raise DatasetError(f"{_where(source, label, column)}: empty")
    return value


def _context(source: SourceRows, label: str, column: str, value: Any) -> str:
    value = _maybe_json_list(value)
    if isinstance(value, list):
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise DatasetError(
                    f"{_where(source, label, column)}: passage {i + 1} is {jsonl.json_type(item)}, "
                    "not a string"
                )
        return "\n\n".join(f"[{j + 1}] {t}" for j, t in enumerate(value))
    return _text(source, label, column, value, required=False)


def _answers(source: SourceRows, label: str, column: str, value: Any) -> list[str]:
    if isinstance(value, dict) and "text" in value:  # the SQuAD layout {"text": [...], "answer_start": [...]}
        value = value["text"]
    value = _maybe_json_list(value)
    if value is MISSING or value is None or value == "":
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    if not isinstance(value, list):
        raise DatasetError(
            f"{_where(source, label, column)}: expected a list of answers or one answer, got "
            f"{jsonl.json_type(value)}"
        )
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise DatasetError(
                f"{_where(source, label, column)}: answer {i + 1} is {jsonl.json_type(item)}, not a string"
            )
    return [a for a in value if a.strip()]


def _is_id(value: Any) -> bool:
    return (isinstance(value, str) and value.strip() != "") or (
        isinstance(value, int) and not isinstance(value, bool)
    )


def _ids(source: SourceRows, label: str, column: str, value: Any) -> list[str]:
    value = _maybe_json_list(value)
    if _is_id(value):
        return [str(value)]
    if not isinstance(value, list):
        raise DatasetError(
            f"{_where(source, label, column)}: expected a list of ids or one id, got {jsonl.json_type(value)}"
        )
    for i, item in enumerate(value):
        if not _is_id(item):
            raise DatasetError(
                f"{_where(source, label, column)}: item {i + 1} is {jsonl.json_type(item)}, not an id"
            )
    return [str(v) for v in value]


def _row_id(source: SourceRows, label: str, column: str | None, row: dict[str, Any], number: int) -> str:
    if column is None:
        return str(number)
    value = lookup(row, column)
    if not _is_id(value):
        shown = "missing" if value is MISSING else f"{jsonl.json_type(value)} is not an id"
        raise DatasetError(f"{_where(source, label, column)}: {shown}")
    return str(value)


def _unique_row_id(
    source: SourceRows,
    label: str,
    resolved: dict[str, str],
    row: dict[str, Any],
    number: int,
    first_seen: dict[str, str],
) -> str:
    """A question's id (:func:`_row_id` of the mapped ``id`` column), refused when an earlier row of
    ``first_seen`` (id -> where) has it; recorded there."""
    qid = _row_id(source, label, resolved.get("id"), row, number)
    if qid in first_seen:
        raise DatasetError(
            f"{_where(source, label, resolved.get('id', 'id'))}: duplicate id {qid!r} "
            f"(first at {first_seen[qid]})"
        )
    first_seen[qid] = label
    return qid


def read_corpus(source: SourceRows, mapping: dict[str, str]) -> dict[str, str]:
    """``{doc_id: text}`` from a corpus file's rows, mapped by ``doc_id`` and ``doc_text``."""
    resolved = _resolve_mapping("retrieval", mapping, source, CORPUS_FIELDS)
    missing = [f for f in CORPUS_FIELDS if f not in resolved]
    if missing:
        raise DatasetError(
            f"{source.location}: the corpus needs {' and '.join(missing)} (--map "
            f"{missing[0]}=COLUMN; columns: {', '.join(source.columns)})"
        )
    corpus: dict[str, str] = {}
    first_seen: dict[str, str] = {}
    for label, row in source.rows:
        doc_id = _row_id(source, label, resolved["doc_id"], row, 0)
        text = _text(source, label, resolved["doc_text"], lookup(row, resolved["doc_text"]), required=True)
        if doc_id in corpus:
            raise DatasetError(
                f"{_where(source, label, resolved['doc_id'])}: duplicate document id {doc_id!r} "
                f"(first at {first_seen[doc_id]})"
            )
        corpus[doc_id], first_seen[doc_id] = text, label
    return corpus


def map_rows(
    task: str, source: SourceRows, mapping: dict[str, str], corpus: dict[str, str] | None = None
) -> MappedSet:
    """Validate every row of ``source`` under ``mapping`` and build the examples of a ``task`` set."""
    if task not in FIELDS:
        raise DatasetError(f"unknown task {task!r} (choose {' or '.join(TASK_NAMES)})")
    resolved = _resolve_mapping(task, mapping, source, FIELDS[task])
    for name in REQUIRED[task]:
        if name not in resolved:
            raise DatasetError(
                f"{source.location}: no column for {name} (--map {name}=COLUMN; columns: "
                f"{', '.join(source.columns) or 'none'})"
            )
    if task == "retrieval":
        return _map_retrieval(source, resolved, corpus)
    if corpus:
        raise DatasetError("--corpus is for retrieval sets")
    examples: list[Example] = []
    first_seen: dict[str, str] = {}
    for number, (label, row) in enumerate(source.rows, start=1):
        qid = _unique_row_id(source, label, resolved, row, number, first_seen)
        question = _text(
            source, label, resolved["question"], lookup(row, resolved["question"]), required=True
        )
        context = (
            _context(source, label, resolved["context"], lookup(row, resolved["context"]))
            if "context" in resolved
            else ""
        )
        answers = _answers(source, label, resolved["answers"], lookup(row, resolved["answers"]))
        examples.append(Example(id=qid, query=question.strip(), context=context, answers=answers))
    if not any(e.answers for e in examples):
        raise DatasetError(
            f"{source.location}: column {resolved['answers']!r} (answers) is empty in every row: a QA "
            "set needs gold answers (an empty answer marks one unanswerable question, not all)"
        )
    return MappedSet("qa", source.location, resolved, examples)


def _map_retrieval(source: SourceRows, resolved: dict[str, str], corpus: dict[str, str] | None) -> MappedSet:
    per_query = "passages" in resolved
    if per_query and corpus:
        raise DatasetError("give the documents either as a passages column or as --corpus, not both")
    if not per_query and not corpus:
        raise DatasetError(
            f"{source.location}: a retrieval set needs documents: --corpus FILE (mapped by doc_id and "
            "doc_text) or a passages column (--map passages=COLUMN)"
        )
    if per_query and not ({"relevant", "selected"} & set(resolved)):
        raise DatasetError(
            f"{source.location}: with a passages column, map relevant (0-based positions) or selected "
            "(a 0/1 flag per passage)"
        )
    if not per_query and "relevant" not in resolved:
        raise DatasetError(f"{source.location}: no column for relevant (--map relevant=COLUMN)")
    if not per_query and "selected" in resolved:
        raise DatasetError("selected flags need a passages column")
    documents: dict[str, str] = dict(corpus or {})
    examples: list[Example] = []
    skipped: list[str] = []
    first_seen: dict[str, str] = {}
    for number, (label, row) in enumerate(source.rows, start=1):
        qid = _unique_row_id(source, label, resolved, row, number, first_seen)
        query = _text(source, label, resolved["query"], lookup(row, resolved["query"]), required=True)
        if per_query:
            relevant, candidates = _passages(source, label, resolved, row, qid, documents)
        else:
            relevant = _ids(source, label, resolved["relevant"], lookup(row, resolved["relevant"]))
            unknown = [d for d in relevant if d not in documents]
            if unknown:
                raise DatasetError(
                    f"{_where(source, label, resolved['relevant'])}: document {unknown[0]!r} is not "
                    "in the corpus"
                )
            candidates = None
        if not relevant:  # a query no document answers cannot be scored: left out, and reported
            skipped.append(label)
            for doc_id in candidates or []:
                documents.pop(doc_id, None)
            continue
        examples.append(Example(id=qid, query=query.strip(), relevant=relevant, candidates=candidates))
    if not examples:
        raise DatasetError(
            f"{source.location}: no row has a relevant document (column "
            f"{resolved.get('relevant') or resolved['selected']!r})"
        )
    return MappedSet("retrieval", source.location, resolved, examples, documents, per_query, skipped)


def _passages(
    source: SourceRows,
    label: str,
    resolved: dict[str, str],
    row: dict[str, Any],
    qid: str,
    documents: dict[str, str],
) -> tuple[list[str], list[str]]:
    column = resolved["passages"]
    passages = _maybe_json_list(lookup(row, column))
    if not isinstance(passages, list) or not passages:
        raise DatasetError(f"{_where(source, label, column)}: expected a non-empty list of passages")
    for i, text in enumerate(passages):
        if not isinstance(text, str) or not text.strip():
            raise DatasetError(f"{_where(source, label, column)}: passage {i + 1} is not a non-empty string")
    doc_ids = [f"{qid}#{j}" for j in range(len(passages))]
    for doc_id, text in zip(doc_ids, passages, strict=True):
        documents[doc_id] = text
    if "selected" in resolved:
        flags = _maybe_json_list(lookup(row, resolved["selected"]))
        if not isinstance(flags, list) or len(flags) != len(passages) or any(f not in (0, 1) for f in flags):
            raise DatasetError(
                f"{_where(source, label, resolved['selected'])}: expected one 0/1 flag per passage "
                f"({len(passages)})"
            )
        return [d for d, f in zip(doc_ids, flags, strict=True) if int(f) == 1], doc_ids
    positions = _maybe_json_list(lookup(row, resolved["relevant"]))
    if isinstance(positions, int) and not isinstance(positions, bool):
        positions = [positions]
    if not isinstance(positions, list) or any(
        isinstance(p, bool) or not isinstance(p, int) for p in positions
    ):
        raise DatasetError(
            f"{_where(source, label, resolved['relevant'])}: expected 0-based passage positions"
        )
    outside = [p for p in positions if not 0 <= p < len(passages)]
    if outside:
        raise DatasetError(
            f"{_where(source, label, resolved['relevant'])}: position {outside[0]} is outside the "
            f"{len(passages)} passages"
        )
    return [doc_ids[p] for p in dict.fromkeys(positions)], doc_ids
