"""The /admin session: a cookie signed with HMAC-SHA256 that carries who signed in, until when,
the session's CSRF token and a fingerprint of the credential used (a changed password or a
removed account ends the sessions made with the old one).

Sessions live in the cookie, so several web processes share them when they share
CIVICDESK_SESSION_SECRET. Signing out clears the cookie in that browser and revokes the session
in this process (a copy of the cookie no longer works here); the revocations are kept in memory
until the sessions would have expired anyway.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from bot.admin.csrf import new_token

COOKIE = "civicdesk_admin"
PATH = "/admin"
SESSION_SECONDS = 10 * 3600  # a working day; then sign in again
ANONYMOUS_SECONDS = 3600  # the sign-in form's own session (its CSRF token)


@dataclass(frozen=True)
class Session:
    csrf: str
    expires: int  # Unix time
    operator: str | None = None  # None: not signed in (the sign-in form)
    credential: str | None = None  # fingerprint of the password that signed in


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


MAX_REVOKED = 100_000  # sessions signed out and not yet expired; the oldest go first past this


class SessionSigner:
    def __init__(self, secret: bytes, clock: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self._clock = clock
        self._revoked: dict[str, int] = {}  # CSRF token of a signed-out session -> its expiry

    def revoke(self, session: Session) -> None:
        """This session is over (signed out): `load` refuses its cookie from now on."""
        now = self._clock()
        if len(self._revoked) >= MAX_REVOKED:
            for token in [t for t, expires in self._revoked.items() if expires <= now]:
                del self._revoked[token]
            while len(self._revoked) >= MAX_REVOKED:
                del self._revoked[next(iter(self._revoked))]
        self._revoked[session.csrf] = session.expires

    def _mac(self, purpose: str, data: bytes) -> bytes:
        return hmac.new(self._secret, purpose.encode() + b"\0" + data, hashlib.sha256).digest()

    def anonymous(self) -> Session:
        return Session(new_token(), int(self._clock()) + ANONYMOUS_SECONDS)

    def signed_in(self, operator: str, credential: str) -> Session:
        """A new session (and a new CSRF token: none seen before sign-in stays valid)."""
        return Session(new_token(), int(self._clock()) + SESSION_SECONDS, operator, credential)

    def fingerprint(self, credential: str) -> str:
        return _b64(self._mac("credential", credential.encode())[:16])

    def dump(self, session: Session) -> str:
        payload = {"c": session.csrf, "e": session.expires}
        if session.operator is not None:
            payload.update(o=session.operator, k=session.credential or "")
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return f"{body}.{_b64(self._mac('session', body.encode()))}"

    def load(self, cookie: str | None) -> Session | None:
        """The session in `cookie`; None when there is none, or it is forged or expired."""
        if not cookie or cookie.count(".") != 1:
            return None
        body, mac = cookie.split(".")
        try:
            if not hmac.compare_digest(_unb64(mac), self._mac("session", body.encode())):
                return None
            data = json.loads(_unb64(body))
            session = Session(str(data["c"]), int(data["e"]))
            if "o" in data:
                session = replace(session, operator=str(data["o"]), credential=str(data["k"]))
        except (ValueError, KeyError, TypeError):
            return None
        if session.csrf in self._revoked:
            return None
        return session if session.expires > self._clock() else None
