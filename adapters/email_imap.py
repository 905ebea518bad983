"""The IMAP side of the e-mail channel: one short session per poll with aioimaplib.

Each poll connects, logs in, SELECTs the mailbox (reading UIDVALIDITY and UIDNEXT), fetches the
messages above the cursor's UID with BODY.PEEK (so nothing is marked \\Seen: staff reading the
mailbox in their own client see the same unread state) and logs out. No IDLE: a poll every
minute answers mail fast enough and needs no connection kept open for days.

TLS: `implicit` (port 993, RFC 8314) or `none`, which is only accepted for a server on the
loopback interface (tests, or a local dovecot); aioimaplib has no STARTTLS.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aioimaplib

from adapters.email_limits import MAX_MAIL_BYTES
from bot.config.settings import Secret

MAX_FETCH_BYTES = MAX_MAIL_BYTES  # enough for the text parts; attachments after it are not needed
_STATUS = re.compile(rb"\[(UIDVALIDITY|UIDNEXT) (\d+)\]")
_FETCH_START = re.compile(rb"^(\d+) FETCH \(")
_UID = re.compile(rb"\bUID (\d+)")
TLS_MODES = ("implicit", "none")


class ImapError(Exception):
    """The mailbox could not be read; the message says what to check."""


def is_loopback(host: str) -> bool:
    if host.strip().lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ImapAccount:
    host: str
    port: int
    user: str
    password: Secret
    tls: str = "implicit"
    mailbox: str = "INBOX"
    timeout: float = 30.0


@dataclass(frozen=True)
class MailboxState:
    uidvalidity: int
    uidnext: int


class Mailbox:
    """A selected mailbox of a logged-in session."""

    def __init__(self, client: aioimaplib.IMAP4, state: MailboxState, account: ImapAccount):
        self._client = client
        self.state = state
        self._account = account

    async def uids_after(self, uid: int) -> list[int]:
        """The UIDs above `uid`, ascending. ("n:*" also names the last message when every UID
        is below n, RFC 3501 §6.4.8: it is filtered out here.)"""
        response = await self._client.uid_search(f"UID {uid + 1}:*", charset=None)
        _check(response, f"UID SEARCH in {self._account.mailbox}")
        found: set[int] = set()
        for line in response.lines[:-1]:  # the last one is the tagged "Search completed"
            # aioimaplib drops the "SEARCH" of "* SEARCH 4 5": the line is "4 5" (or empty)
            found.update(int(part) for part in bytes(line).split() if part.isdigit())
        return sorted(u for u in found if u > uid)

    async def fetch(self, uids: list[int]) -> list[tuple[int, bytes]]:
        """(uid, the message's bytes, at most MAX_FETCH_BYTES) for each UID still there."""
        if not uids:
            return []
        wanted = ",".join(str(u) for u in uids)
        response = await self._client.uid(
            "fetch", wanted, f"(UID BODY.PEEK[]<0.{MAX_FETCH_BYTES}>)"
        )
        _check(response, f"UID FETCH in {self._account.mailbox}")
        return sorted(u_body for u_body in _fetched(response.lines) if u_body[0] in set(uids))


@asynccontextmanager
async def open_mailbox(account: ImapAccount) -> AsyncIterator[Mailbox]:
    """A logged-in session with `account.mailbox` selected; logs out on leaving."""
    client: aioimaplib.IMAP4
    if account.tls == "implicit":
        client = aioimaplib.IMAP4_SSL(
            account.host, account.port, timeout=account.timeout, ssl_context=ssl_context()
        )
    else:
        client = aioimaplib.IMAP4(account.host, account.port, timeout=account.timeout)
    where = f"{account.host}:{account.port}"
    try:
        try:
            await client.wait_hello_from_server()
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            raise ImapError(f"cannot reach the IMAP server {where}: {_describe(exc)}") from None
        login = await client.login(account.user, account.password.reveal())
        if login.result != "OK":
            raise ImapError(
                f"the IMAP server {where} refused the login of {account.user!r}: check "
                "IMAP_USER and IMAP_PASSWORD (some providers need an app password)"
            )
        selected = await client.select(aioimaplib.quoted(account.mailbox))
        _check(selected, f"SELECT {account.mailbox}")
        yield Mailbox(client, _state(selected.lines, account), account)
    except (OSError, TimeoutError, aioimaplib.AioImapException) as exc:
        raise ImapError(f"IMAP with {where} failed: {_describe(exc)}") from None
    finally:
        await _logout(client)


def ssl_context() -> ssl.SSLContext:
    return ssl.create_default_context(ssl.Purpose.SERVER_AUTH)


async def _logout(client: aioimaplib.IMAP4) -> None:
    try:
        if client.protocol is not None and client.get_state() not in ("LOGOUT", "NONAUTH"):
            await client.logout()
    except (OSError, TimeoutError, aioimaplib.AioImapException, asyncio.CancelledError):
        pass  # the session ends either way
    transport = getattr(client.protocol, "transport", None)
    if transport is not None:
        transport.close()
    task = getattr(client, "_client_task", None)
    if task is not None and not task.done():
        task.cancel()


def _state(lines: list[bytes], account: ImapAccount) -> MailboxState:
    values: dict[bytes, int] = {}
    for line in lines:
        for name, number in _STATUS.findall(bytes(line)):
            values[name] = int(number)
    if b"UIDVALIDITY" not in values or b"UIDNEXT" not in values:
        raise ImapError(
            f"the IMAP server did not tell UIDVALIDITY and UIDNEXT of {account.mailbox!r}"
        )
    return MailboxState(values[b"UIDVALIDITY"], values[b"UIDNEXT"])


def _fetched(lines: list[bytes]) -> list[tuple[int, bytes]]:
    """Pairs of (UID, literal) from a FETCH response, whichever order the items come in."""
    out: list[tuple[int, bytes]] = []
    uid: int | None = None
    body: bytes | None = None
    for line in lines:
        if isinstance(line, bytearray):  # a literal: the message itself
            body = bytes(line)
        else:
            if _FETCH_START.match(line):
                if uid is not None and body is not None:
                    out.append((uid, body))
                uid, body = None, None
            match = _UID.search(line)
            if match:
                uid = int(match.group(1))
    if uid is not None and body is not None:
        out.append((uid, body))
    return out


def _check(response: aioimaplib.Response, what: str) -> None:
    if response.result != "OK":
        detail = b" ".join(bytes(line) for line in response.lines[-1:]).decode("utf-8", "replace")
        raise ImapError(f"{what} failed: {response.result} {detail}".strip())


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
