"""Deterministic query clean-up and rule-based intent detection (no model, microseconds per query)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from hfops.refine.result import INVISIBLE_CATEGORIES, MAX_QUERY_CHARS

# Intents, close to MS MARCO's query types plus the shapes people type into a search/QA box.
INTENTS = (
    "definition",  # what is X / meaning of X
    "how_to",  # how do I / how to
    "numeric",  # how many / how much / cost / population
    "time",  # when / what year
    "person",  # who
    "location",  # where
    "reason",  # why
    "comparison",  # X vs Y / difference between
    "yes_no",  # is / does / can ...
    "entity",  # which / what <noun> (other factoid questions)
    "search",  # keywords, no question form
)

_LEADING_FILLERS = [
    r"(?:um+|uh+|erm+|hmm+|ah+|eh+|well|so|ok(?:ay)?|hey|hi|hello|yo|like|basically|actually|just|please|pls|plz)\b[\s,.!]*",
    r"(?:i\s+(?:was\s+)?wonder(?:ing)?|i\s+want(?:ed)?\s+to\s+know|i(?:'d|\s+would)\s+like\s+to\s+know"
    r"|i\s+need\s+to\s+know|do\s+you\s+know|(?:can|could|would)\s+(?:you|u)\s+(?:please\s+)?(?:tell|show)\s+me"
    r"|tell\s+me|explain\s+to\s+me|quick\s+question)\b[\s,:]*",
]
_LEADING_FILLER = re.compile(r"^(?:" + "|".join(_LEADING_FILLERS) + r")", re.IGNORECASE)
_INNER_FILLER = re.compile(r"(?:(?<=\s)|^)(?:um+|uh+|erm+|you\s+know|i\s+mean)\b[,]?\s*", re.IGNORECASE)
# A polite "please" anywhere, unless it is the verb ("how to please a customer", "did it please them").
_INNER_PLEASE = re.compile(
    r"[(\[]?\b(?<!\bto\s)(?<!\bnot\s)(?<!\bit\s)(?<!\bwill\s)(?<!\bwould\s)(?:please|pls|plz)\b[)\]]?[,!]?\s*",
    re.IGNORECASE,
)
_TRAILING_FILLER = re.compile(
    r"[\s,]*\b(?:please|pls|plz|thanks|thank\s+you|thx|ty|lol|ok(?:ay)?)\s*[.!]*\s*"
    r"(?=[?!.]*$)",
    re.IGNORECASE,
)
_EMOTICON = re.compile(r"(?:(?<=\s)|^)[:;=8]-?[)(\]\[pPdDoO/|*]+(?=\s|$)")
_EMPTY_BRACKETS = re.compile(r"\(\s*\)|\[\s*\]")
_REPEATED_PUNCT = re.compile(r"([?!.,;:])[?!.,;:]*")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([?!.,;:])")
_MISSING_SPACE_AFTER = re.compile(r"([,;:])(?=[^\s\d])")
_LONE_I = re.compile(r"\bi\b(?!\.)")

_QUESTION_START = re.compile(
    r"^(?:what|whats|what's|which|who|whom|whose|where|when|why|how|is|are|was|were|do|does|did|can|could|"
    r"should|would|will|shall|has|have|had|may|might|am)\b",
    re.IGNORECASE,
)

_INTENT_RULES: list[tuple[str, re.Pattern[str]]] = [
    (
        "comparison",
        re.compile(r"\b(?:vs\.?|versus|difference\s+between|compared?\s+(?:to|with)|better\s+than)\b"),
    ),
    ("how_to", re.compile(r"^(?:how\s+(?:do|does|can|could|should|would)\s+(?:i|you|we|one)|how\s+to)\b")),
    (
        "numeric",
        re.compile(
            r"^(?:how\s+(?:many|much|long|far|old|big|large|tall|high|deep|wide|often|fast))\b"
            r"|\b(?:cost|price|salary|population|percentage|percent|number\s+of|amount\s+of|average|calories|"
            r"temperature|distance|length)\b"
        ),
    ),
    ("time", re.compile(r"^(?:when)\b|^(?:what|which)\s+(?:year|date|day|month|century|time|decade)\b")),
    ("person", re.compile(r"^(?:who|whom|whose)\b|\bwho\s+(?:is|was|were|are)\b")),
    (
        "location",
        re.compile(
            r"^(?:where)\b|^(?:what|which)\s+(?:country|city|state|region|continent|county|river)\b|\bcapital\s+of\b"
        ),
    ),
    ("reason", re.compile(r"^(?:why)\b|\bwhat\s+causes?\b|\breason\s+(?:for|why)\b")),
    (
        "definition",
        re.compile(
            r"^(?:what|whats|what's)\s+(?:is|are|was|were)\s+(?:an?\s+|the\s+)?\w+(?:\s+\w+){0,3}\s*$"
            r"|^(?:define|definition\s+of|meaning\s+of)\b|\bmeaning\s+of\b|\bdefinition\b|^(?:what|whats|what's)\s+does\b.*\bmean\b"
        ),
    ),
    (
        "yes_no",
        re.compile(
            r"^(?:is|are|was|were|do|does|did|can|could|should|would|will|shall|has|have|had|may|might|am)\b"
        ),
    ),
    ("entity", re.compile(r"^(?:what|whats|what's|which|how)\b")),
]


def _strip_fillers(text: str) -> str:
    previous = None
    while previous != text:  # "um so like what is" -> "what is"; "... please thank you" -> "..."
        previous = text
        text = _LEADING_FILLER.sub("", text, count=1).lstrip(" ,.;:!-")
        text = _TRAILING_FILLER.sub("", text)
    text = _INNER_FILLER.sub("", text)
    text = _INNER_PLEASE.sub("", text)
    return _EMPTY_BRACKETS.sub("", text)


_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def strip_invisible(text: str) -> str:
    """Controls and bidi controls (they delimit runs of text) become spaces; other format characters
    (zero-width space, word joiner, BOM, soft hyphen), surrogates and private-use characters are removed. A
    zero-width (non-)joiner between two letters is kept: it shapes words in Persian and Indic scripts."""
    out = []
    last = len(text) - 1
    for i, char in enumerate(text):
        category = unicodedata.category(char)
        if category not in INVISIBLE_CATEGORIES:
            out.append(char)
        elif category == "Cc" or char in _BIDI_CONTROLS:
            out.append(" ")
        elif char in "\u200c\u200d" and 0 < i < last and text[i - 1].isalpha() and text[i + 1].isalpha():
            out.append(char)
    return "".join(out)


def bounded(text: str, limit: int = MAX_QUERY_CHARS) -> str:
    """``text`` cut to at most ``limit`` characters, at the last space before the limit when there is one
    (compatibility normalisation can make a text many times longer: U+FDFA becomes 18 characters)."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip()


def _fix_casing(text: str) -> str:
    letters = [c for c in text if c.isalpha()]
    if letters and sum(c.isupper() for c in letters) / len(letters) > 0.7 and len(letters) > 3:
        text = text.lower()  # SHOUTING -> normal case (proper nouns are lost; a fair trade)
    text = _LONE_I.sub("I", text)
    return text[:1].upper() + text[1:]


def clean_query(query: str, correct: Callable[[str], str] | None = None) -> str:
    """Invisible characters, compatibility forms (NFKC), whitespace, repeated punctuation, filler words,
    spelling (``correct``, e.g. :meth:`hfops.refine.spelling.Speller.correct`) and casing cleaned up.

    Questions end with a single ``?``. The result is at most :data:`MAX_QUERY_CHARS` characters and never
    empty for a query with a visible character: when clean-up would remove everything, the query with
    only invisible characters and spacing cleaned is returned.
    """
    text = unicodedata.normalize("NFKC", strip_invisible(query))
    text = " ".join(bounded(" ".join(text.split())).split())
    fallback = text or " ".join(query.split()) or query
    text = _EMOTICON.sub(" ", text)
    text = _REPEATED_PUNCT.sub(r"\1", text)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    text = _MISSING_SPACE_AFTER.sub(r"\1 ", text)
    text = _strip_fillers(text)
    if correct is not None:
        text = correct(text)
    text = " ".join(text.split()).strip(" ,;:-")
    if not any(c.isalnum() for c in text):
        return fallback
    text = _fix_casing(text)
    if _QUESTION_START.match(text):
        text = text.rstrip(" .!?") + "?"
    return text


def detect_intent(text: str) -> str:
    """The first matching intent of :data:`INTENTS` for a (cleaned) query; ``search`` for keywords."""
    lowered = " ".join(text.casefold().replace("?", " ").split())
    for intent, pattern in _INTENT_RULES:
        if pattern.search(lowered):
            return intent
    return "search"


_WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")


def proper_case_map(texts: list[str], min_count: int = 2) -> dict[str, str]:
    """Words the corpus always capitalises (``rhine`` -> ``Rhine``, ``np`` -> ``NP``), from
    non-initial positions."""
    forms: dict[str, dict[str, int]] = {}
    for text in texts:
        for match in list(_WORD.finditer(text))[1:]:
            word = match.group(0)
            forms.setdefault(word.lower(), {}).setdefault(word, 0)
            forms[word.lower()][word] += 1
    mapping: dict[str, str] = {}
    for lower, counts in forms.items():
        if lower in counts:  # also written in lower case: an ordinary word
            continue
        form, count = max(counts.items(), key=lambda item: (item[1], item[0]))
        if count >= min_count:
            mapping[lower] = form
    return mapping


def apply_proper_case(text: str, mapping: dict[str, str]) -> str:
    """Restore the casing of known proper nouns/acronyms in words typed all lower case."""
    if not mapping:
        return text

    def fix(match: re.Match[str]) -> str:
        word = match.group(0)
        return mapping.get(word, word) if word.islower() else word

    return _WORD.sub(fix, text)
