"""Real mail for the e-mail tests: a throwaway dovecot (Debian's dovecot-imapd) on a free loopback
port, and an SMTP sink (aiosmtpd) in the test's event loop that records what it is sent.

Dovecot gets its own configuration, passwd-file user and Maildir in a fresh temporary directory;
no system service is touched. Run as root (CI containers), dovecot refuses root for its login and
mail processes, so those run as the package's `dovenull` and `dovecot` users; otherwise the whole
instance runs as the current user. Install it with `bash .ci/dovecot install`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import re
import shutil
import socket
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

import aioimaplib
from aiosmtpd.smtp import SMTP, Envelope, Session

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USER = "desk@example.gov"
PASSWORD = "imap-test-password"
START_TIMEOUT = 15.0


def dovecot_missing() -> str | None:
    """Why the dovecot tests cannot run here, or None."""
    if not os.access(DOVECOT, os.X_OK):
        return f"dovecot is not installed ({DOVECOT}): run `bash .ci/dovecot install`"
    if os.geteuid() == 0:
        for user in ("dovecot", "dovenull"):
            try:
                pwd.getpwnam(user)
            except KeyError:
                return f"user {user} is missing: run `bash .ci/dovecot install`"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Dovecot:
    port: int
    base: Path
    process: asyncio.subprocess.Process
    host: str = "127.0.0.1"
    user: str = USER
    password: str = PASSWORD

    def log(self) -> str:
        path = self.base / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else "(no log)"

    async def append(self, message: bytes, mailbox: str = "INBOX") -> None:
        """Put a message into the mailbox as a mail server's delivery would (IMAP APPEND)."""
        client = aioimaplib.IMAP4(self.host, self.port, timeout=10)
        await client.wait_hello_from_server()
        assert (await client.login(self.user, self.password)).result == "OK", self.log()
        response = await client.append(message, mailbox=mailbox)
        assert response.result == "OK", (response, self.log())
        await client.logout()

    async def unseen(self, mailbox: str = "INBOX") -> int:
        """How many messages in the mailbox are not marked \\Seen."""
        client = aioimaplib.IMAP4(self.host, self.port, timeout=10)
        await client.wait_hello_from_server()
        await client.login(self.user, self.password)
        response = await client.status(mailbox, "(UNSEEN)")
        await client.logout()
        match = re.search(rb"UNSEEN (\d+)", b" ".join(bytes(line) for line in response.lines))
        assert match, response
        return int(match.group(1))


def _config(base: Path, port: int) -> str:
    if os.geteuid() == 0:  # dovecot will not run login or mail processes as root
        login, internal, mail = "dovenull", "dovecot", pwd.getpwnam("dovecot")
    else:
        me = pwd.getpwuid(os.geteuid())
        login, internal, mail = me.pw_name, me.pw_name, me
    return f"""
protocols = imap
listen = 127.0.0.1
base_dir = {base}/run
state_dir = {base}/state
instance_name = civicdesk-test-{port}
log_path = {base}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_fsync = never
default_internal_user = {internal}
default_internal_group = {internal}
default_login_user = {login}
first_valid_uid = {mail.pw_uid}
last_valid_uid = 0
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {base}/passwd
}}
userdb {{
  driver = static
  args = uid={mail.pw_uid} gid={mail.pw_gid} home={base}/home/%n
}}
mail_location = maildir:~/Maildir
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0600
  }}
  unix_listener stats-writer {{
    mode = 0600
  }}
}}
"""


@contextlib.asynccontextmanager
async def running_dovecot() -> AsyncIterator[Dovecot]:
    """A dovecot serving one user (USER / PASSWORD) on a free loopback port, stopped after."""
    base = Path(tempfile.mkdtemp(prefix="cd-dovecot-"))  # short: unix socket paths are limited
    base.chmod(0o755)  # dovecot's unprivileged processes must reach their sockets
    port = free_port()
    (base / "dovecot.conf").write_text(_config(base, port))
    (base / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
    home = base / "home" / USER.split("@", maxsplit=1)[0]
    home.mkdir(parents=True)
    if os.geteuid() == 0:
        mail = pwd.getpwnam("dovecot")
        os.chown(home, mail.pw_uid, mail.pw_gid)
    process = await asyncio.create_subprocess_exec(
        DOVECOT,
        "-F",
        "-c",
        str(base / "dovecot.conf"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    server = Dovecot(port=port, base=base, process=process)
    try:
        await _wait_listening(server)
        yield server
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
        shutil.rmtree(base, ignore_errors=True)


async def _wait_listening(server: Dovecot) -> None:
    """Dovecot says nothing when it listens: try to connect until its greeting arrives."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if server.process.returncode is not None:
            stderr = await server.process.stderr.read() if server.process.stderr else b""
            raise RuntimeError(f"dovecot exited: {stderr.decode(errors='replace')}{server.log()}")
        try:
            reader, writer = await asyncio.open_connection(server.host, server.port)
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"dovecot is not listening after {START_TIMEOUT} s") from None
            await asyncio.sleep(0.05)
            continue
        greeting = await asyncio.wait_for(reader.readline(), START_TIMEOUT)
        writer.close()
        await writer.wait_closed()
        assert greeting.startswith(b"* OK"), greeting
        return


# --- SMTP ------------------------------------------------------------------------------------


@dataclass
class SentMail:
    sender: str
    recipients: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class SmtpSink:
    """An SMTP server that accepts everything (or answers `reply_with`) and records it."""

    port: int = 0
    mails: list[SentMail] = field(default_factory=list)
    reply_with: str | None = None  # answer to DATA, e.g. "451 4.3.0 try later"
    refuse_recipients: str | None = None  # answer to RCPT, e.g. "550 5.1.1 no such user"
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.refuse_recipients:
            return self.refuse_recipients
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.reply_with:
            return self.reply_with
        content = envelope.original_content or b""
        self.mails.append(SentMail(str(envelope.mail_from), list(envelope.rcpt_tos), content))
        self.arrived.set()
        return "250 OK"

    async def wait_for(self, count: int, timeout: float = 15.0) -> list[SentMail]:
        deadline = time.monotonic() + timeout
        while len(self.mails) < count:
            self.arrived.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{len(self.mails)} mails arrived, expected {count}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), remaining)
        return self.mails


@contextlib.asynccontextmanager
async def smtp_sink() -> AsyncIterator[SmtpSink]:
    sink = SmtpSink()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(sink, hostname="sink.test", loop=loop), "127.0.0.1", 0
    )
    sink.port = server.sockets[0].getsockname()[1]
    try:
        yield sink
    finally:
        server.close()
        await server.wait_closed()


def citizen_mail(
    text: str,
    *,
    subject: str = "咨询",
    sender: str = "Zhang San <zhang.san@example.cn>",
    to: str = USER,
    message_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    """A citizen's mail as a mail client writes it."""
    mail = EmailMessage(policy=policy.SMTP)
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = subject
    mail["Date"] = formatdate()
    mail["Message-ID"] = message_id or make_msgid(domain="example.cn")
    mail.set_content(text, charset="utf-8")  # before the extra headers: it drops Content-*
    for name, value in (headers or {}).items():
        mail[name] = value
    return mail.as_bytes()
