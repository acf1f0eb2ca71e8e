"""The refinement result shape shared by the library, the CLI (``--json``) and the HTTP API."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from hfops.errors import RefineInputError

MAX_QUERY_CHARS = 2000
MAX_SUGGESTIONS = 3
SOURCES = ("local", "hf")
BYPASS_REASONS = (
    "no_key",
    "rate_limited",
    "cooldown",
    "timeout",
    "http_error",
    "credits_exhausted",
    "invalid_output",
    "disabled",
)
# Confidence ceiling for a refinement that leaves the query unchanged (same words, ignoring case and
# punctuation): doing nothing is never rewarded with a high confidence.
UNCHANGED_CONFIDENCE_CAP = 0.5



def validate_query(query: object) -> str:
    """Return ``query`` if it is a non-blank string of at most :data:`MAX_QUERY_CHARS` characters."""
    if not isinstance(query, str):
        raise RefineInputError(f"query must be a string, got {type(query).__name__}")
    if not query.strip():
        raise RefineInputError("query must not be empty")
    if len(query) > MAX_QUERY_CHARS:
        raise RefineInputError(f"query is too long ({len(query)} characters, at most {MAX_QUERY_CHARS})")
    return query


_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)


def canonical(text: str) -> str:
    """Lower-case words only: two texts with the same canonical form differ only in case/punctuation/spaces."""
    return " ".join(_NON_WORD.sub(" ", text.casefold()).split())


def is_unchanged(query: str, refined: str) -> bool:
    """True when ``refined`` keeps exactly the words of ``query`` (a no-op refinement)."""
    return canonical(query) == canonical(refined)


def fair_confidence(query: str, refined: str, confidence: float) -> float:
    """Clamp ``confidence`` to [0, 1] and cap it when the refinement changed nothing."""
    value = min(max(float(confidence), 0.0), 1.0)
    if is_unchanged(query, refined):
        value = min(value, UNCHANGED_CONFIDENCE_CAP)
    return round(value, 3)


@dataclass
class RefineResult:
    """One refinement: the exact shape returned everywhere (see docs/refine.md)."""

    query: str
    refined: str
    suggestions: list[str] = field(default_factory=list)
    intent: str = "unknown"
    confidence: float = 0.0
    source: str = "local"  # local | hf
    model: str = ""
    latency_ms: float = 0.0
    budget_ms: int = 0
    within_budget: bool = True
    bypass_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able result, keys in the documented order."""
        return asdict(self)
