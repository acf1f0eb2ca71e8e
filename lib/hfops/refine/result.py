"""The refinement result shape shared by the library, the CLI (``--json``) and the HTTP API."""

from __future__ import annotations

import re
import sys
import unicodedata
from dataclasses import asdict, dataclass, field
from functools import cache
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
    "budget_exhausted",
)
# Confidence ceiling for a refinement that leaves the query unchanged (same words, ignoring case and
# punctuation): doing nothing is never rewarded with a high confidence.
UNCHANGED_CONFIDENCE_CAP = 0.5
# Characters that show nothing: controls (Cc), format characters (Cf: zero-width, bidi overrides, BOM, soft
# hyphen...), surrogates (Cs) and private use (Co). Clean-up removes them; a query made only of them (and
# whitespace) is refused, so a refinement is never empty.
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co"})


def is_invisible(char: str) -> bool:
    """Whether ``char`` shows nothing (see :data:`INVISIBLE_CATEGORIES`) or is whitespace."""
    return char.isspace() or unicodedata.category(char) in INVISIBLE_CATEGORIES


@cache
def visible_pattern() -> str:
    """A regular expression matching one visible character: the request schema's ``pattern`` for ``query``
    (Python ``re`` syntax, BMP code points as ``\\uXXXX``), derived from :func:`is_invisible`."""
    ranges: list[tuple[int, int]] = []
    # Planes 2-13 hold no control, format, surrogate or private-use code point: skip them (~4x faster).
    # Surrogates are left out: no UTF-8 text holds them, and regex engines that read the schema refuse them.
    for code in (*range(0x20000), *range(0xE0000, sys.maxunicode + 1)):
        if is_invisible(chr(code)) and not 0xD800 <= code <= 0xDFFF:
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1] = (ranges[-1][0], code)
            else:
                ranges.append((code, code))

    def char(code: int) -> str:
        return f"\\u{code:04x}" if code <= 0xFFFF else chr(code)

    return "[^" + "".join(char(a) if a == b else f"{char(a)}-{char(b)}" for a, b in ranges) + "]"


def validate_query(query: object) -> str:
    """Return ``query`` if it is a string of at most :data:`MAX_QUERY_CHARS` characters with at least one
    visible character and no lone surrogate (text that cannot be UTF-8); else :class:`RefineInputError`."""
    if not isinstance(query, str):
        raise RefineInputError(f"query must be a string, got {type(query).__name__}")
    if not query.strip():
        raise RefineInputError("query must not be empty")
    if len(query) > MAX_QUERY_CHARS:
        raise RefineInputError(f"query is too long ({len(query)} characters, at most {MAX_QUERY_CHARS})")
    surrogate = next((i for i, c in enumerate(query) if "\ud800" <= c <= "\udfff"), None)
    if surrogate is not None:
        raise RefineInputError(
            f"query is not valid Unicode text: a lone surrogate U+{ord(query[surrogate]):04X} "
            f"at character {surrogate + 1}"
        )
    if all(is_invisible(c) for c in query):
        raise RefineInputError(
            "query has no visible characters (only control, format or zero-width characters)"
        )
    return query


_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)


def canonical(text: str) -> str:
    """Lower-case words only: two texts with the same canonical form differ only in
    case/punctuation/spaces."""
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
