"""A strict JSON Lines reader: every malformed input is one clear error naming the file and the line.

Used by ``hfops score`` and by custom eval sets. Refused, each with its own message: a file that is missing,
unreadable, empty or a folder; a UTF-8 byte-order mark; bytes that are not
UTF-8 (or lone surrogates that are not Unicode text); a line longer than ``max_line_bytes``; text that is
not JSON, nested deeper than ``max_depth``, or holding ``NaN``/``Infinity``/numbers too large to represent;
a line that is not a JSON object. Blank lines are skipped; Windows (CR LF) line endings are read as the JSON
Lines format defines them (the CR is whitespace around the value). Nothing here raises anything but ``error``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hfops.errors import HfopsError

MAX_LINE_BYTES = 8 * 1024 * 1024  # one row; a longer line is refused rather than parsed
MAX_DEPTH = 64  # nesting of objects/arrays within one row (SQuAD rows need 3)
BOM = b"\xef\xbb\xbf"
ErrorType = Callable[[str], HfopsError]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKET = re.compile(r"[\[\]{}]")


def _depth_within(text: str, limit: int) -> bool:
    """Whether brackets outside strings nest at most ``limit`` deep (checked before parsing)."""
    if text.count("[") + text.count("{") <= limit:
        return True
    depth = 0
    for match in _BRACKET.finditer(_STRING.sub("", text)):
        depth += 1 if match.group() in "[{" else -1
        if depth > limit:
            return False
    return True


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


def parse_json_line(text: str, max_depth: int = MAX_DEPTH) -> Any:
    """One JSON value from ``text``; ``ValueError`` with a short reason when it is not acceptable."""
    if not _depth_within(text, max_depth):
        raise ValueError(f"nested more than {max_depth} levels deep")
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:  # the depth check above makes this unreachable; kept as a guard
        raise ValueError(f"nested more than {max_depth} levels deep") from None
    except ValueError as exc:  # NaN/Infinity, out-of-range floats, integers with too many digits
        reason = "an integer with too many digits" if "digits" in str(exc) else str(exc)
        raise ValueError(f"not valid JSON ({reason})") from None
    if _has_lone_surrogate(value):
        raise ValueError("holds a lone surrogate escape (not Unicode text)")
    return value


def iter_rows(
    path: str | Path,
    error: ErrorType,
    *,
    max_line_bytes: int | None = None,
    max_depth: int | None = None,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, row)`` for every non-blank line of a JSON Lines file.

    Raises ``error(message)`` on anything else. Limits default to :data:`MAX_LINE_BYTES` and
    :data:`MAX_DEPTH` (read at call time).
    """
    max_line_bytes = max_line_bytes or MAX_LINE_BYTES
    max_depth = max_depth or MAX_DEPTH
    file = Path(path)
    if not file.exists():
        raise error(f"{file}: file not found")
    if not file.is_file():
        raise error(f"{file}: not a file")
    try:
        handle = file.open("rb")
    except OSError as exc:
        raise error(f"{file}: cannot read: {exc.strerror or type(exc).__name__}") from None
    with handle:
        line_no = 0
        while True:
            try:
                raw = handle.readline(max_line_bytes + 1)
            except OSError as exc:
                raise error(
                    f"{file}: line {line_no + 1}: cannot read: {exc.strerror or type(exc).__name__}"
                ) from None
            if not raw:
                return
            line_no += 1
            where = f"{file}: line {line_no}"
            if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
                raise error(
                    f"{where}: longer than {max_line_bytes:,} bytes (one JSON object per line expected)"
                )
            if line_no == 1 and raw.startswith(BOM):
                raise error(
                    f"{where}: starts with a UTF-8 byte-order mark; save the file as UTF-8 without BOM"
                )
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise error(
                    f"{where}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
                ) from None
            if not text.strip():
                continue
            try:
                value = parse_json_line(text, max_depth)
            except ValueError as exc:
                raise error(f"{where}: {exc}") from None
            if not isinstance(value, dict):
                raise error(f"{where}: expected a JSON object, got {json_type(value)}")
            yield line_no, value


def json_type(value: Any) -> str:
    """The JSON name of a Python value's type (for messages)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
