"""View models of the console pages: one module per page, holding its queries, shaping and figures.

Pages (``pages/*.py``) hold widgets and layout only; everything they show comes from here as plain data,
pandas frames or Vega-Lite (Altair) charts. Nothing in this package imports Streamlit (only
:mod:`hfops.console` and the pages do), so every view model is testable without a browser or an AppTest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


def as_dict(record: Any) -> dict[str, Any]:
    """A query row as a plain dict, whether the query returns typed records (dataclasses) or dict rows."""
    if hasattr(record, "to_dict"):
        return dict(record.to_dict())
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        return dataclasses.asdict(record)
    if isinstance(record, Mapping):
        return dict(record)
    raise TypeError(f"not a row: {type(record).__name__}")
