"""Who may sign in: operator accounts (`civicdesk users add`), or anyone who knows the office's
shared password (CIVICDESK_ADMIN_PASSWORD) under the name they type. An account's own password
always counts for its name; the shared one only for names without an account."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import unicodedata

from bot.admin.passwords import verify_password, waste_time
from bot.admin.sessions import Session, SessionSigner
from bot.config.settings import Secret
from bot.storage.admin_queries import AdminStore

NAME_MAX = 64
_NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,64}$")


# Characters that show as nothing: a name with one appended would look like another's name.
_INVISIBLE = re.compile(
    r"[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f"
    r"\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0]"
)
# Letters of other scripts drawn like Latin ones (Unicode's confusables, the common ones): a
# name written with them is read as the Latin name, so it cannot pass as another operator.
_LOOK_ALIKES = str.maketrans(
    "аввсԁеһіјӏкмноорԛѕтухуьАВСЕНІЈКМНОРЅТХУαβεικνορτυχΑΒΕΗΙΚΜΝΟΡΤΥΧΖ",
    "abbcdehijlkmhoopqstyxybABCEHIJKMHOPSTXYaBeiknoptuxABEHIKMNOPTYXZ",
)


def normalise_name(name: str) -> str:
    """The name an operator is known by: NFKC (full-width letters and ligatures become the
    plain ones), without invisible characters, with look-alike letters of other scripts read
    as the Latin ones when the name is otherwise Latin, and without surrounding spaces."""
    name = _INVISIBLE.sub("", unicodedata.normalize("NFKC", name)).strip()
    mapped = name.translate(_LOOK_ALIKES)
    # Only a name that then is all ASCII is mapped: "Иван" stays Иван, "lі" becomes "li".
    return mapped if mapped.isascii() and not name.isascii() else name


def name_problem(name: str) -> str | None:
    """Why `name` cannot be an operator's name, or None."""
    if not name.strip() or name != name.strip():
        return "a name must not be empty or start or end with spaces"
    if not _NAME.match(name):
        return f"a name has at most {NAME_MAX} characters and no control characters"
    if normalise_name(name) != name:
        return (
            "a name must not hold invisible characters or letters that look like other ones: "
            f"write it as {normalise_name(name)!r}"
        )
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

    async def is_operator(self, name: str) -> bool:
        """Whether `name` has an account (so that a log line may name it)."""
        return await self._store.operator_hash(name) is not None

    async def still_valid(self, session: Session) -> bool:
        """The account still exists with the same password (or the shared password is still
        the one it was signed in with)."""
        if session.operator is None or session.credential is None:
            return False
        stored, credential = await self._credential(session.operator)
        if stored is None and self._shared is None:
            return False
        return hmac.compare_digest(self._signer.fingerprint(credential), session.credential)
