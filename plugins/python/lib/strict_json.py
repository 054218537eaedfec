"""`json.loads` held to what the Rust siblings' serde_json accepts, so that the
same input is refused the same way (and never raises anything that would trap):
no `NaN`/`Infinity`, no number beyond the f64 range, no lone surrogate escapes,
and at most 127 nested arrays/objects (serde_json's recursion limit)."""

import json
import re
from typing import Any

MAX_DEPTH = 127

_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class JsonError(Exception):
    pass


def _float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number out of range: {text}")
    return value


def _int(text: str) -> Any:
    value = int(text)
    if -(2**63) <= value < 2**64:
        return value
    # serde_json reads a larger integer as an f64.
    return _float(text)


def _constant(text: str) -> Any:
    raise ValueError(f"expected value, found {text}")


def _too_deep(text: str) -> bool:
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False
    depth = 0
    for m in _TOKENS.finditer(text):
        token = m.group()
        if token in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif token in "]}":
            depth -= 1
    return False


def loads(text: Any) -> Any:
    """Parses JSON text (str, or bytes that must be UTF-8); raises `JsonError`."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            raise JsonError(f"invalid UTF-8: {e}")
    if _too_deep(text):
        raise JsonError("recursion limit exceeded")
    try:
        value = json.loads(text, parse_float=_float, parse_int=_int, parse_constant=_constant)
    except (ValueError, RecursionError) as e:
        raise JsonError(str(e))
    if _SURROGATE_ESCAPE.search(text) is not None:
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise JsonError("lone surrogate in a \\u escape")
    return value
