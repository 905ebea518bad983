"""CSRF protection: every form carries its session's token in the field `csrf`, and every POST
to /admin must send it back (checked in `bot.admin.guard` before any handler runs).

The token is random per session and renewed at sign-in; the session cookie itself is
SameSite=Strict, so this is the second of two locks."""

from __future__ import annotations

import hmac
import secrets

FIELD = "csrf"
REFUSED = (
    "This form was refused: it did not carry this session's security token (it may come from "
    "another site, or from a page opened before you signed in again). Reload the page and send "
    "it again."
)


def new_token() -> str:
    return secrets.token_urlsafe(24)


def token_matches(expected: str, submitted: object) -> bool:
    if not isinstance(submitted, str) or not submitted:
        return False
    return hmac.compare_digest(expected.encode(), submitted.encode())
