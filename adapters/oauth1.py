"""OAuth 1.0a request signing (RFC 5849, HMAC-SHA1), as X's API takes it for a user's actions:
posting, replying, sending direct messages, uploading media. Pure: the nonce and the time are
given, so a test can check the documented example byte for byte.

Signed are the method, the URL without its query, and every query parameter with the oauth_*
ones; a JSON or multipart body is not (RFC 5849 §3.4.1.3 signs form-encoded bodies only).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

from bot.config.settings import Secret


def percent(value: str) -> str:
    """RFC 3986 percent-encoding: everything but A-Z a-z 0-9 - . _ ~ (RFC 5849 §3.6)."""
    return quote(value, safe="-._~")


@dataclass(frozen=True)
class OAuth1Keys:
    """The four keys of an app acting as one account: the app's (consumer) key and secret and
    the account's access token and secret."""

    consumer_key: str
    consumer_secret: Secret
    token: str
    token_secret: Secret

    def secrets(self) -> list[str]:
        """What must never appear in a log or an error text."""
        return [self.consumer_secret.reveal(), self.token_secret.reveal()]


def signature(
    method: str,
    url: str,
    params: Mapping[str, str],
    consumer_secret: str,
    token_secret: str,
) -> str:
    """The base64 HMAC-SHA1 of the signature base string (RFC 5849 §3.4)."""
    parts = urlsplit(url)
    base_url = urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path, "", ""))
    pairs = sorted((percent(key), percent(value)) for key, value in params.items())
    normalized = "&".join(f"{key}={value}" for key, value in pairs)
    base = "&".join((method.upper(), percent(base_url), percent(normalized)))
    key = f"{percent(consumer_secret)}&{percent(token_secret)}".encode()
    digest = hmac.new(key, base.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def authorization(
    method: str,
    url: str,
    keys: OAuth1Keys,
    *,
    query: Mapping[str, str] | None = None,
    form: Mapping[str, str] | None = None,
    nonce: str | None = None,
    timestamp: int | None = None,
) -> str:
    """The `Authorization: OAuth ...` header of one request; `query` is what goes in the URL
    (not part of `url`), `form` a form-encoded body's fields."""
    oauth = {
        "oauth_consumer_key": keys.consumer_key,
        "oauth_nonce": nonce or secrets.token_hex(16),
        "oauth_signature_method": "HMAC-SHA1",
        "oauth_timestamp": str(int(time.time()) if timestamp is None else timestamp),
        "oauth_token": keys.token,
        "oauth_version": "1.0",
    }
    signed = {**(query or {}), **(form or {}), **oauth}
    oauth["oauth_signature"] = signature(
        method, url, signed, keys.consumer_secret.reveal(), keys.token_secret.reveal()
    )
    fields = ", ".join(f'{percent(key)}="{percent(value)}"' for key, value in sorted(oauth.items()))
    return f"OAuth {fields}"
