"""The one place where a value a stranger sent (a query parameter, a header, a form field) becomes
a number or a bounded text: ASCII digits only, a bounded length before any conversion, finite
numbers within a range.

Python's own `int()` and `float()` are too generous for input from the internet: they take
Arabic-Indic and full-width digits ("٣"), underscores ("1_0"), "nan", "inf" and "1e23", each of
which later broke a timer, an HMAC or a date. Every parser here raises `BadParameter` (a
`BadRequest`, so the web layer answers 400) saying what is expected; callers that must answer
otherwise (a signature check answers 401) catch it.
"""

from __future__ import annotations

import re

from bot.platform.adapter import BadRequest

MAX_NUMBER_LENGTH = 20  # characters of a whole number: 19 digits and a sign (any int64)
MAX_DECIMAL_LENGTH = 32

_WHOLE = re.compile(r"-?[0-9]{1,19}", re.ASCII)
_DECIMAL = re.compile(r"-?[0-9]{1,15}(?:\.[0-9]{1,15})?", re.ASCII)


class BadParameter(BadRequest):
    """A parameter that is not what it must be; the message names it and says what is expected."""


def whole_number(
    value: str | None, *, name: str, low: int, high: int, default: int | None = None
) -> int:
    """`value` as an int in [low, high]: ASCII digits with an optional "-", at most 19 digits,
    surrounding spaces ignored. Missing or empty gives `default` (BadParameter without one)."""
    text = _present(value, name=name, limit=MAX_NUMBER_LENGTH, default=default)
    if text is None:
        assert default is not None
        return default
    if not _WHOLE.fullmatch(text):
        raise BadParameter(
            f"{name} must be a whole number written in ASCII digits ({low} to {high})"
        )
    number = int(text)
    if not low <= number <= high:
        raise BadParameter(f"{name} must be between {low} and {high}")
    return number


def decimal(
    value: str | None, *, name: str, low: float, high: float, default: float | None = None
) -> float:
    """`value` as a finite float in [low, high]: ASCII digits, an optional "-" and decimal part;
    no exponent, no "nan" or "inf". Missing or empty gives `default`."""
    text = _present(value, name=name, limit=MAX_DECIMAL_LENGTH, default=default)
    if text is None:
        assert default is not None
        return default
    if not _DECIMAL.fullmatch(text):
        raise BadParameter(f"{name} must be a number written in ASCII digits ({low:g} to {high:g})")
    number = float(text)
    if not low <= number <= high:  # always finite: at most 15 digits before the point
        raise BadParameter(f"{name} must be between {low:g} and {high:g}")
    return number


def bounded_text(value: str | None, *, name: str, limit: int, default: str = "") -> str:
    """`value` (or `default` when missing), refused when longer than `limit` characters or when
    it holds a control character (CR and LF included: they would forge log lines)."""
    if value is None:
        return default
    if len(value) > limit:
        raise BadParameter(f"{name} is longer than {limit} characters")
    if _CONTROL.search(value):
        raise BadParameter(f"{name} must not contain control characters")
    return value


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _present(value: str | None, *, name: str, limit: int, default: object) -> str | None:
    """The stripped text, or None when it is missing and a default applies."""
    if value is None or not value.strip():
        if default is None:
            raise BadParameter(f"{name} is missing")
        return None
    if len(value) > limit + 8:  # a few spaces around are fine; a megabyte of them is not
        raise BadParameter(f"{name} is longer than {limit} characters")
    return value.strip()
