"""Who may sign in: operator accounts (`civicdesk users add`), or anyone who knows the office's
shared password (CIVICDESK_ADMIN_PASSWORD) under the name they type. An account's own password
always counts for its name; the shared one only for names without an account."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re

from bot.admin.passwords import verify_password, waste_time
from bot.admin.sessions import Session, SessionSigner
from bot.config.settings import Secret
from bot.storage.admin_queries import AdminStore

NAME_MAX = 64
_NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,64}$")


def name_problem(name: str) -> str | None:
    """Why `name` cannot be an operator's name, or None."""
    if not name.strip() or name != name.strip():
        return "a name must not be empty or start or end with spaces"
    if not _NAME.match(name):
        return f"a name has at most {NAME_MAX} characters and no control characters"
    return None


def _digest(text: str) -> bytes:
    """Compared instead of the texts: equal lengths, so the time taken tells nothing."""
    return hashlib.sha256(text.encode()).digest()


class Accounts:
    def __init__(self, store: AdminStore, shared: Secret | None, signer: SessionSigner) -> None:
        self._store = store
        self._shared = shared
        self._signer = signer

    async def _credential(self, name: str) -> tuple[str | None, str]:
        """The stored hash of `name`'s account (None without one), and the credential string
        the session fingerprint is made of."""
        stored = await self._store.operator_hash(name)
        if stored is not None:
            return stored, f"account\0{name}\0{stored}"
        shared = self._shared.reveal() if self._shared is not None else ""
        return None, f"shared\0{shared}"

    async def authenticate(self, name: str, password: str) -> str | None:
        """The credential fingerprint for a session when `password` is right for `name`."""
        stored, credential = await self._credential(name)
        if stored is not None:
            right = await asyncio.to_thread(verify_password, password, stored)
        elif self._shared is not None:
            await asyncio.to_thread(waste_time, password)
            right = hmac.compare_digest(_digest(password), _digest(self._shared.reveal()))
        else:
            await asyncio.to_thread(waste_time, password)
            right = False
        return self._signer.fingerprint(credential) if right else None

    async def still_valid(self, session: Session) -> bool:
        """The account still exists with the same password (or the shared password is still
        the one it was signed in with)."""
        if session.operator is None or session.credential is None:
            return False
        stored, credential = await self._credential(session.operator)
        if stored is None and self._shared is None:
            return False
        return hmac.compare_digest(self._signer.fingerprint(credential), session.credential)
