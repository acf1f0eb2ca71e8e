"""The one base of the typed records queries return (jobs, sync runs, candidates, eval runs...).

Each record is a dataclass; new code reads attributes. Mapping-style reads (``r["status"]``, ``r.get("x")``,
``"x" in r``) keep callers written against the former ``dict`` rows working, and :meth:`Record.to_dict`
gives plain JSON-able data (what a job returns, what ``--json`` prints). Pure: no store, no jobs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar


class Record:
    """Mapping-style reads over a dataclass (through ``ALIASES`` and an ``extra`` dict when it has one)."""

    ALIASES: ClassVar[dict[str, str]] = {}

    def __getitem__(self, key: str) -> Any:
        name = self.ALIASES.get(key, key)
        if name.startswith("_") or not hasattr(self, name):
            extra = getattr(self, "extra", None)
            if isinstance(extra, dict) and key in extra:
                return extra[key]
            raise KeyError(key)
        return getattr(self, name)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        try:
            self[key]
        except KeyError:
            return False
        return True

    def keys(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self)]  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def _known(cls, row: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """``row`` split into this record's fields and the rest."""
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return {k: v for k, v in row.items() if k in names}, {k: v for k, v in row.items() if k not in names}
