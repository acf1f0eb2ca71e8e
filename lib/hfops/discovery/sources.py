"""What a source of records is: pages of raw API records with the cursor that resumes after each (no store).

Two sources implement it: :class:`~hfops.discovery.hub.HubSource` (the Hub's ``/api/models``) and
:class:`~hfops.discovery.snapshot.SnapshotSource` (a file of the same records).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

Cursor = dict[str, Any]


@dataclass
class Page:
    """One page of raw records and the cursor that resumes *after* it (None = the source is exhausted)."""

    records: list[Any]
    next_cursor: Cursor | None
    errors: list[str] = field(default_factory=list)
    skipped_lines: list[str] = field(default_factory=list)
    total: int | None = None  # records this run will see, when the source knows it (snapshots)
    lost: list[str] = field(default_factory=list)  # what could not be read: the pass is partial
    duplicates: list[str] = field(default_factory=list)  # ids the source merged (last wins) before the page


class Source(Protocol):
    """Where records come from: yields pages from a cursor (None = start)."""

    name: str
    complete_pass_possible: bool

    def pages(self, cursor: Cursor | None) -> Iterator[Page]: ...


def merge_duplicates(records: list[Any]) -> tuple[list[Any], list[str]]:
    """``records`` with one record per id, the last one winning (at the position of the first), and the ids
    that came more than once (once per extra occurrence). Records without a string id are kept as they are."""
    position: dict[str, int] = {}
    merged: list[Any] = []
    duplicates: list[str] = []
    for record in records:
        model_id = record.get("id") if isinstance(record, dict) else None
        if not isinstance(model_id, str):
            merged.append(record)
        elif model_id in position:
            merged[position[model_id]] = record
            duplicates.append(model_id)
        else:
            position[model_id] = len(merged)
            merged.append(record)
    return merged, duplicates
