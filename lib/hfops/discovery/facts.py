"""Facts from one API record: licence, library, safetensors, quantization, counts and dates (pure).

Every record goes through ``huggingface_hub.hf_api.ModelInfo``, the parser ``HfApi.list_models`` uses, and
then through :func:`facts_from`, which type-checks what the rule and the score read.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from huggingface_hub.hf_api import ModelInfo

QUANT_METHODS = ("gptq", "awq", "bnb-4bit", "bnb-8bit", "gguf", "fp8", "compressed-tensors")
MAX_COUNT = 2**63 - 1  # what SQLite's INTEGER holds
MAX_ID_CHARS = 1024  # real Hub ids reach 257 characters (2022 espnet ids); far longer is not an id


@dataclass
class ModelFacts:
    """What the rule and the score read from one parsed record."""

    model_id: str
    author: str | None
    sha: str | None
    pipeline_tag: str | None
    library_name: str | None
    license: str | None
    tags: list[str]
    siblings: list[str]
    downloads: int
    downloads_all_time: int | None
    likes: int
    trending_score: float | None
    created_at: str | None
    last_modified: str | None
    gated: str | None
    safetensors: bool
    quantization: list[str]

    @property
    def use_restricted(self) -> bool:
        """RAIL-family licences carry use restrictions."""
        return bool(self.license) and ("openrail" in (self.license or "") or "-rail-" in (self.license or ""))


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def _int_or_none(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"wrong type for {name}: {type(value).__name__}")
    if not 0 <= value <= MAX_COUNT:
        raise ValueError(f"wrong value for {name}: {value} is out of range")
    return value


def license_of(info: ModelInfo) -> str | None:
    """Licence id from the ``license:`` tag, else from card data."""
    for tag in info.tags or []:
        if tag.startswith("license:"):
            return tag.removeprefix("license:").strip().lower() or None
    card_license = getattr(info.card_data, "license", None) if info.card_data is not None else None
    if isinstance(card_license, list):
        card_license = card_license[0] if card_license else None
    return card_license.strip().lower() if isinstance(card_license, str) and card_license.strip() else None


# Every hint :func:`detect_quantization` reads in tags and file names holds one of these (``4-bit``,
# ``8-bit``, ``bnb-4bit``, ``bnb-8bit`` and ``bitsandbytes`` all hold "bit"): a record whose lower-cased tags
# and names hold none of them, with no ``gguf`` field and no ``quantization_config``, has no quantization.
# Looked for one by one with ``in`` (a substring search each): a regex alternation over the same text cost
# ~2 us a record.
def _has_quant_hint(text: str) -> bool:
    return (
        "bit" in text
        or "gguf" in text
        or "gptq" in text
        or "awq" in text
        or "fp8" in text
        or "compressed-tensors" in text
    )


def detect_quantization(info: ModelInfo) -> list[str]:
    """Quantization methods seen in tags, config ``quantization_config`` and file names (sorted, unique)."""
    tag_list = info.tags or []
    siblings = info.siblings or []
    names = (
        "\n".join([info.id, *[s.rfilename or "" for s in siblings]]) if siblings else info.id
    ).lower() + "\n"
    config = info.config if isinstance(info.config, dict) else {}
    quant = config.get("quantization_config")
    if not info.gguf and not isinstance(quant, dict):  # the usual record: one look at one string
        if not _has_quant_hint(names + "\n".join(tag_list).lower()):
            return []
    found: set[str] = set()
    tags = {t.lower() for t in tag_list}
    for method in ("gptq", "awq", "fp8"):
        if method in tags or method in names:
            found.add(method)
    if "gguf" in tags or ".gguf\n" in names or "-gguf\n" in names or info.gguf:
        found.add("gguf")
    if "compressed-tensors" in tags:
        found.add("compressed-tensors")
    if "4-bit" in tags or "bnb-4bit" in names:
        found.add("bnb-4bit")
    if "8-bit" in tags or "bnb-8bit" in names:
        found.add("bnb-8bit")
    if "bitsandbytes" in tags and not found & {"bnb-4bit", "bnb-8bit"}:
        found.add("bnb-4bit")
    if isinstance(quant, dict):
        method = str(quant.get("quant_method", "")).lower()
        if method == "bitsandbytes":
            found.add("bnb-8bit" if quant.get("load_in_8bit") else "bnb-4bit")
        elif method in ("gptq", "awq", "fp8", "compressed-tensors"):
            found.add(method)
    return sorted(found)


def _api_date(raw: Any, parsed: datetime | None) -> str | None:
    """The API's own timestamp string when already ISO-8601 ``...Z`` (validated by ModelInfo).

    Otherwise the parsed datetime, re-formatted.
    """
    if parsed is None:
        return None
    return raw if isinstance(raw, str) and raw.endswith("Z") else _iso(parsed)


def facts_from(info: ModelInfo, record: dict[str, Any] | None = None) -> ModelFacts:
    """Extract and type-check the facts of one parsed record (ValueError on a wrong type)."""
    record = record or {}
    if not isinstance(info.id, str) or not info.id.strip():
        raise ValueError("missing id")
    tags = info.tags or []
    if not isinstance(tags, list) or not set(map(type, tags)) <= {str}:
        raise ValueError("wrong type for tags")
    siblings = [
        s.rfilename if isinstance(s.rfilename, str) else str(s.rfilename) for s in info.siblings or []
    ]
    for name, value in (("pipeline_tag", info.pipeline_tag), ("library_name", info.library_name)):
        if value is not None and not isinstance(value, str):
            raise ValueError(f"wrong type for {name}")
    trending = info.trending_score
    if trending is not None and (isinstance(trending, bool) or not isinstance(trending, int | float)):
        raise ValueError("wrong type for trendingScore")
    if trending is not None and not math.isfinite(trending):
        raise ValueError(f"wrong value for trendingScore: {trending}")
    safetensors = (
        "safetensors" in tags
        or info.safetensors is not None
        or any(s.endswith(".safetensors") for s in siblings)
    )
    author = (
        info.author if isinstance(info.author, str) else (info.id.split("/")[0] if "/" in info.id else None)
    )
    return ModelFacts(
        model_id=info.id,
        author=author,
        sha=info.sha if isinstance(info.sha, str) else None,
        pipeline_tag=info.pipeline_tag,
        library_name=info.library_name,
        license=license_of(info),
        tags=tags,
        siblings=siblings,
        downloads=_int_or_none(info.downloads, "downloads") or 0,
        downloads_all_time=_int_or_none(info.downloads_all_time, "downloadsAllTime"),
        likes=_int_or_none(info.likes, "likes") or 0,
        trending_score=float(trending) if trending is not None else None,
        created_at=_api_date(record.get("createdAt"), info.created_at),
        last_modified=_api_date(record.get("lastModified"), info.last_modified),
        gated=str(info.gated) if info.gated is not None else None,
        safetensors=safetensors,
        quantization=detect_quantization(info),
    )


def check_model_id(model_id: Any) -> str:
    """``model_id`` when it can be a Hub model id; ValueError otherwise.

    Refused: a missing or blank id, one over :data:`MAX_ID_CHARS`, one that is not valid UTF-8 (lone
    surrogates), or one holding whitespace, control or format characters (NUL, bidi overrides, zero-width):
    none can name a Hub repo, and all of them could disguise one id as another in the console.
    """
    if not isinstance(model_id, str) or not model_id.strip():
        raise ValueError("missing id")
    if len(model_id) > MAX_ID_CHARS:
        raise ValueError(f"wrong value for id: {len(model_id)} characters (at most {MAX_ID_CHARS})")
    try:
        model_id.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("wrong value for id: not valid UTF-8") from None
    if model_id.isascii():  # the usual case, checked without a look at each character
        if model_id.isprintable() and " " not in model_id:
            return model_id
    odd = [c for c in model_id if c.isspace() or unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn")]
    if odd:
        shown = ", ".join(sorted({f"U+{ord(c):04X}" for c in odd}))
        raise ValueError(f"wrong value for id: holds whitespace, control or format characters ({shown})")
    return model_id


# The Hub's own timestamp form, ``2024-07-11T08:15:02.123Z`` (fraction optional): read without strptime.
_HUB_DATE = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?Z", re.ASCII)
_DATE_KEYS = (("lastModified", "last_modified"), ("createdAt", "created_at"))


def hub_datetime(text: str) -> datetime | None:
    """``text`` read as :func:`huggingface_hub.utils.parse_datetime` reads it, when it has the Hub's exact
    form and is a real date; else None (the caller then lets ``parse_datetime`` decide, and raise)."""
    found = _HUB_DATE.fullmatch(text)
    if found is None:
        return None
    try:  # the matched form, without its Z: fromisoformat pads the fraction and cuts it at 6 digits, as ever
        return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)
    except ValueError:  # e.g. month 13: parse_datetime says so in its own words
        return None


def _model_info(record: dict[str, Any]) -> ModelInfo:
    """``ModelInfo(**record)``, its two timestamps read by :func:`hub_datetime` when they have the Hub's form.

    Same result and same errors as ``ModelInfo(**record)``: strptime, most of its cost in a listing, is only
    left to ``parse_datetime`` for other spellings (which it may accept or refuse, as ever).
    """
    fields = record
    dates: dict[str, datetime] = {}
    for key, alias in _DATE_KEYS:
        value = record.get(key)
        if value and isinstance(value, str) and alias not in record:
            parsed = hub_datetime(value)
            if parsed is not None:
                if fields is record:
                    fields = dict(record)
                del fields[key]
                dates[alias] = parsed
    info = ModelInfo(**fields)
    for attribute, parsed in dates.items():
        setattr(info, attribute, parsed)
    if "last_modified" in dates:
        info.lastModified = info.last_modified  # ModelInfo's backward-compatible alias
    return info


def parse_record(record: Any) -> tuple[ModelInfo, ModelFacts]:
    """Parse one API record through ModelInfo and extract its facts; ValueError names what is wrong."""
    if not isinstance(record, dict):
        raise ValueError(f"record is {type(record).__name__}, not an object")
    check_model_id(record.get("id"))
    try:
        info = _model_info(record)
    except KeyError as exc:
        raise ValueError(f"missing field {exc}") from None
    except (TypeError, AttributeError) as exc:
        raise ValueError(f"wrong type: {exc}") from None
    except ValueError as exc:
        raise ValueError(f"bad value: {exc}") from None
    return info, facts_from(info, record)


def skip_reason(exc: Exception) -> str:
    """A short category for the skip counters ('missing id', 'bad date', 'wrong type', ...)."""
    text = str(exc)
    if "missing id" in text:
        return "missing id"
    if "date" in text.lower() or "time" in text.lower() or "isoformat" in text.lower():
        return "bad date"
    if "wrong type" in text or "not an object" in text:
        return "wrong type"
    if "wrong value" in text:
        return "wrong value"
    if "missing field" in text:
        return "missing field"
    return "malformed record"
