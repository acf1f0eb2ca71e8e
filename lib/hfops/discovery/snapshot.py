"""A snapshot file of API records as a source: JSON Lines (``.gz`` too, streamed), a JSON list, or
``{"models": [...]}`` (no store)."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from hfops.discovery.sources import Cursor, Page, merge_duplicates
from hfops.errors import SyncError


class SnapshotSource:
    """A file of API records: JSON Lines (``.gz`` too), a JSON list, or ``{"models": [...]}``.

    JSON Lines are streamed in two passes (the first finds each id's last line, bad lines and the total; the
    second yields the records page by page), so memory holds one page and the ids, not the file. Duplicate
    ids are merged, the last line winning. A JSON document is read whole.
    """

    complete_pass_possible = True

    def __init__(self, path: str | Path, page_size: int = 1000) -> None:
        self.path = Path(path)
        self.name = f"snapshot:{self.path.resolve()}"
        self.page_size = page_size

    def _lines(self) -> Iterator[tuple[int, str]]:
        """Numbered lines (split on newlines only: a U+2028 may sit inside a string).

        On failure a SyncError names the cause.
        """
        if not self.path.is_file():
            raise SyncError(f"snapshot file not found: {self.path}")
        try:
            raw = gzip.open(self.path, "rb") if self.path.suffix == ".gz" else self.path.open("rb")
            with raw as fh:
                for number, data in enumerate(fh, start=1):
                    text = data.decode("utf-8-sig" if number == 1 else "utf-8")
                    yield number, text.rstrip("\r\n")
        except UnicodeDecodeError as exc:
            raise SyncError(
                f"snapshot file {self.path} is not UTF-8 text (line {number}, byte {exc.start})"
            ) from None
        except (OSError, EOFError, zlib.error) as exc:
            raise SyncError(f"cannot read snapshot file {self.path}: {exc}") from None

    def _is_document(self) -> bool:
        """Whether the file is one JSON document (a list, or an object holding "models"), not JSON Lines.

        A first line that is a record (an object with an id) means JSON Lines; a list means a document; any
        other first line means a document unless a later line opens an object (JSON Lines with a bad line).
        """
        lines = (line for _, line in self._lines())
        for line in lines:
            first = line.strip()
            if not first:
                continue
            if first.startswith("["):
                return True
            try:
                record = orjson.loads(first)
            except orjson.JSONDecodeError:
                record = None
            if isinstance(record, dict) and "id" in record:
                return False
            if isinstance(record, dict) and "models" in record:
                return True
            return not any(later.startswith("{") for later in lines)  # at column 0: not pretty-printed
        return False

    def _document(self) -> list[Any]:
        text = "\n".join(line for _, line in self._lines())
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SyncError(f"snapshot file {self.path} is not valid JSON: {exc}") from None
        except RecursionError:
            raise SyncError(
                f"snapshot file {self.path} is nested too deeply to be a list of records"
            ) from None
        records = data.get("models") if isinstance(data, dict) else data
        if not isinstance(records, list):
            raise SyncError(f"snapshot file {self.path}: expected a list of records or {{'models': [...]}}")
        return records

    def _parsed_lines(self) -> Iterator[tuple[int, Any, str | None]]:
        """``(line number, record, None)`` per JSON line, or ``(number, None, why)`` for a bad one."""
        for number, line in self._lines():
            if not line.strip():
                continue
            try:
                yield number, orjson.loads(line), None
                continue
            except orjson.JSONDecodeError:
                pass  # the stdlib says why, and also reads NaN / Infinity
            try:
                yield number, json.loads(line), None
            except json.JSONDecodeError as exc:
                yield number, None, f"line {number}: invalid JSON ({exc.msg})"
            except RecursionError:
                yield number, None, f"line {number}: nested too deeply"

    def pages(self, cursor: Cursor | None) -> Iterator[Page]:
        start = int((cursor or {}).get("offset", 0))
        if self._is_document():
            records, merged = merge_duplicates(self._document())
            yield from self._paged(iter(records), len(records), start, [], merged)
            return
        last_line: dict[str, int] = {}
        duplicates: list[str] = []
        bad: list[str] = []
        total = 0
        for number, record, why in self._parsed_lines():  # pass 1: ids, duplicates, bad lines
            if why is not None:
                bad.append(why)
                continue
            model_id = record.get("id") if isinstance(record, dict) else None
            if isinstance(model_id, str):
                if model_id in last_line:
                    duplicates.append(model_id)
                else:
                    total += 1
                last_line[model_id] = number
            else:
                total += 1

        def kept() -> Iterator[Any]:  # pass 2: each record once, at its last line
            for number, record, why in self._parsed_lines():
                if why is None:
                    model_id = record.get("id") if isinstance(record, dict) else None
                    if not isinstance(model_id, str) or last_line.get(model_id) == number:
                        yield record

        yield from self._paged(kept(), total, start, bad, duplicates)

    def _paged(
        self, records: Iterator[Any], total: int, start: int, bad: list[str], duplicates: list[str]
    ) -> Iterator[Page]:
        first = start == 0
        for _ in range(start):  # resume: skip what the earlier run stored
            next(records, None)
        offset = start
        while offset < total or first:
            page = [r for _, r in zip(range(self.page_size), records, strict=False)]
            offset += len(page)
            more = offset < total and bool(page)
            yield Page(
                page,
                {"offset": offset} if more else None,
                skipped_lines=bad if first else [],
                total=total - start,
                duplicates=duplicates if first else [],
            )
            first = False
            if not more:
                return
