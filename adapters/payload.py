"""Reading what platforms send and what adapters keep: a JSON request body (bounded in size and
depth: `read_json`), its string fields, and the compact JSON of `reply_context` and poll
cursors. No I/O; errors are `BadRequest`s whose message says what is wrong, for the platform's
(or the deployer's) eyes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bot.platform.adapter import BadRequest

MAX_JSON_BYTES = 64 << 20
"""A backstop for the JSON read from a request: the limit that matters is the web layer's
CIVICDESK_MAX_BODY_BYTES (1 MiB by default), which an operator may raise, so this one must not
refuse what that one let through."""
MAX_JSON_DEPTH = 64
"""The deepest nesting of arrays and objects a request may have: platforms send 5 to 10 levels;
100,000 levels made the parser raise RecursionError (500 instead of 400)."""
MAX_API_JSON_BYTES = 32 << 20
"""A platform's answer to our own call (a Matrix /sync can be several megabytes)."""
MAX_API_JSON_DEPTH = None
"""A platform's answer carries what its users wrote (a Matrix /sync holds every room's events):
a depth limit below the interpreter's own (about 1,000 levels, a RecursionError turned into
BadRequest here) would let one user's deeply nested event make the whole answer unreadable."""


def read_json(
    data: bytes | str,
    expected: str,
    *,
    max_bytes: int = MAX_JSON_BYTES,
    max_depth: int | None = MAX_JSON_DEPTH,
) -> Any:
    """The one bounded JSON reader: the value in `data`, or BadRequest when it is not UTF-8 JSON,
    is larger than `max_bytes` or nests deeper than `max_depth` (None: than the interpreter can
    parse). `expected` says what the document should be ("a Telegram Update") in the
    BadRequest."""
    if len(data) > max_bytes:
        raise BadRequest(f"the JSON is larger than {max_bytes} bytes: it should be {expected}")
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise BadRequest(f"the body is not UTF-8 text: it should be {expected}") from None
    limit = f"{max_depth} levels" if max_depth is not None else "the parser can read"
    too_deep = f"the JSON nests deeper than {limit}: it should be {expected}"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"the body is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}): "
            f"it should be {expected}"
        ) from None
    except RecursionError:  # deeper than the interpreter's stack: deeper than max_depth too
        raise BadRequest(too_deep) from None
    except ValueError as exc:  # an integer of more than 4300 digits (sys.int_info)
        raise BadRequest(f"the body is not usable JSON ({exc}): it should be {expected}") from None
    # Fewer brackets than the limit cannot nest deeper than it: the common case costs two
    # C-speed counts, no walk.
    if max_depth is None:
        return value
    if text.count("[") + text.count("{") > max_depth and _depth(value, max_depth) > max_depth:
        raise BadRequest(too_deep)
    return value


def _depth(value: Any, limit: int) -> int:
    """How deep `value` nests (a scalar: 0), without recursion; stops once past `limit`."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        level += 1
        if level > deepest:
            deepest = level
            if deepest > limit:
                return deepest
        stack.extend((child, level) for child in children if isinstance(child, dict | list))
    return deepest


def json_object(body: bytes, expected: str) -> dict[str, Any]:
    """The request body as one JSON object (bounded: `read_json`); `expected` says what it should
    be ("a Telegram Update") in the BadRequest."""
    data = read_json(body, expected)
    if not isinstance(data, dict):
        raise BadRequest(f"the body must be one JSON object: {expected}")
    return data


def optional_string(
    data: Mapping[str, Any], key: str, *, limit: int, allow_empty: bool = False
) -> str | None:
    """`data[key]` when it is a non-empty string of at most `limit` characters; None when it is
    absent, null or (unless `allow_empty`) blank; BadRequest for another type or a longer text."""
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        hint = ' (quote numbers: "42")' if isinstance(value, int | float) else ""
        raise BadRequest(f'"{key}" must be a string{hint}')
    if not value.strip() and not allow_empty:
        return None
    if len(value) > limit:
        raise BadRequest(f'"{key}" is {len(value)} characters long: at most {limit}')
    return value


def required_string(
    data: Mapping[str, Any], key: str, *, limit: int, allow_empty: bool = False
) -> str:
    """`optional_string` for a field that must be there."""
    value = optional_string(data, key, limit=limit, allow_empty=allow_empty)
    if value is None:
        missing = key not in data or data[key] is None
        raise BadRequest(
            f'"{key}" is missing: it is required (a string)'
            if missing
            else f'"{key}" must not be empty'
        )
    return value


def compact(data: Mapping[str, Any]) -> str:
    """Compact JSON for `reply_context` and cursors (non-ASCII kept as it is); None values are
    left out."""
    kept = {key: value for key, value in data.items() if value is not None}
    return json.dumps(kept, ensure_ascii=False, separators=(",", ":"))


def load_object(text: str | None) -> dict[str, Any]:
    """A `reply_context` (or cursor) written by `compact`: {} when it is absent or unreadable,
    so that a reply to a message stored by an older version still goes out."""
    if not text:
        return {}
    try:
        data = read_json(text, "stored JSON", max_bytes=len(text), max_depth=MAX_API_JSON_DEPTH)
    except BadRequest:
        return {}
    return data if isinstance(data, dict) else {}


def string_values(text: str | None) -> dict[str, str]:
    """`load_object` keeping only the string values."""
    return {key: value for key, value in load_object(text).items() if isinstance(value, str)}
