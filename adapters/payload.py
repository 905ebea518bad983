"""Reading what platforms send and what adapters keep: a JSON request body, its string fields,
and the compact JSON of `reply_context` and poll cursors. No I/O; errors are `BadRequest`s whose
message says what is wrong, for the platform's (or the deployer's) eyes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bot.platform.adapter import BadRequest


def json_object(body: bytes, expected: str) -> dict[str, Any]:
    """The request body as one JSON object; `expected` says what it should be ("a Telegram
    Update") in the BadRequest."""
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadRequest(f"the body is not UTF-8 text: it should be {expected}") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"the body is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}): "
            f"it should be {expected}"
        ) from None
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
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def string_values(text: str | None) -> dict[str, str]:
    """`load_object` keeping only the string values."""
    return {key: value for key, value in load_object(text).items() if isinstance(value, str)}
