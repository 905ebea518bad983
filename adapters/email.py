"""E-mail: questions polled from an IMAP mailbox, answers sent by SMTP as threaded replies.

Inbound, every POLL_INTERVAL seconds: the messages whose UID is above the cursor's. The cursor is
`{"uidvalidity": V, "uid": U}`; the first poll starts at the mailbox's UIDNEXT (mail already there
is staff's business, not the bot's), and so does a poll that finds UIDVALIDITY changed (the
mailbox was recreated: old UIDs mean nothing, and replaying it would answer old mail again).
Auto-replies, bounces, list mail and the channel's own mail are skipped (RFC 3834; no loops).

Outbound: `Re: <subject>` with In-Reply-To / References, `Auto-Submitted: auto-replied` and a
Message-ID made from the outbox id, so a reply re-sent after a crash carries the same id.

Staff mode (the channel has a STAFF_ROOM, the staff's address): tickets are mailed there, and the
mailbox is read for the staff's replies to them (`adapters.email_staff`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formataddr, formatdate, parseaddr

import aiosmtplib

from adapters.email_imap import ImapAccount, ImapError, is_loopback, open_mailbox
from adapters.email_limits import MailRefused
from adapters.email_parse import Mail, authentication_summary, read_mail, reply_subject
from adapters.email_settings import SETTINGS, SMTP_PORTS
from adapters.email_staff import staff_headers, staff_message, staff_room
from adapters.payload import compact, load_object
from adapters.publishing import not_again
from bot.config.settings import AdapterSpec, ChannelConfig, ConfigError, Secret
from bot.platform.adapter import TEXT_RULES, HttpReply, PollFailed, PollResult, RawRequest
from bot.platform.messages import InboundMessage, OutboundMessage, Publication, SendResult

log = logging.getLogger("civicdesk.adapters.email")

BATCH = 50  # messages per poll; the rest come with the next one
MAX_TEXT = 10_000
MAX_REFERENCES = 20  # ids kept in References: the root and the most recent (RFC 5322 §3.6.4)


class EmailAdapter:
    """One mailbox: polled by IMAP, answered by SMTP."""

    text_rules = TEXT_RULES["email"]

    def __init__(
        self,
        name: str,
        imap: ImapAccount,
        *,
        from_address: str,
        smtp_host: str,
        smtp_port: int | None = None,
        smtp_user: str | None = None,
        smtp_password: Secret | None = None,
        smtp_tls: str = "implicit",
        poll_interval: float = 60.0,
        timeout: float = 30.0,
        staff_room: str | None = None,
        publish_to: str | None = None,
    ) -> None:
        self.name = name
        self.imap = imap
        self.from_name, self.from_address = parseaddr(from_address)
        self.smtp_host = smtp_host
        self.smtp_tls = smtp_tls
        self.smtp_port = smtp_port or SMTP_PORTS[smtp_tls]
        self.smtp_user = smtp_user
        self._smtp_password = smtp_password
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.staff_room = staff_room
        self.publish_to = publish_to
        for mode, host, what in ((imap.tls, imap.host, "IMAP"), (smtp_tls, smtp_host, "SMTP")):
            if mode == "none" and not is_loopback(host):
                raise ConfigError(
                    f"{what}_TLS=none of channel {name!r} would send the password and citizens' "
                    f"mail in clear text to {host}: use implicit TLS (or starttls for SMTP); "
                    "none is only for a server on this machine (localhost)"
                )

    @classmethod
    def from_config(cls, config: ChannelConfig) -> EmailAdapter:
        timeout = config.get("TIMEOUT")
        imap = ImapAccount(
            host=config.get("IMAP_HOST"),
            port=config.get("IMAP_PORT"),
            user=config.get("IMAP_USER"),
            password=config.secret("IMAP_PASSWORD"),
            tls=config.get("IMAP_TLS"),
            mailbox=config.get("MAILBOX"),
            timeout=timeout,
        )
        password = config.get("SMTP_PASSWORD")
        return cls(
            config.name,
            imap,
            from_address=config.get("FROM"),
            smtp_host=config.get("SMTP_HOST"),
            smtp_port=config.get("SMTP_PORT"),
            smtp_user=config.get("SMTP_USER"),
            smtp_password=password if isinstance(password, Secret) else None,
            smtp_tls=config.get("SMTP_TLS"),
            poll_interval=config.get("POLL_INTERVAL"),
            timeout=timeout,
            publish_to=config.get("PUBLISH_TO"),
            staff_room=staff_room(
                config.staff_room, parseaddr(config.get("FROM"))[1], config.var("STAFF_ROOM")
            ),
        )

    # --- no webhook: mail arrives by polling ----------------------------------------------------

    def verify(self, raw: RawRequest) -> None:
        """Nothing is pushed to this channel: the web layer never routes mail here."""

    def handshake(self, raw: RawRequest) -> HttpReply | None:
        return HttpReply(404, b"the e-mail channel is polled, not pushed to")

    def parse(self, raw: RawRequest) -> list[InboundMessage]:
        return []

    def acknowledge(self, raw: RawRequest) -> HttpReply:
        return HttpReply(404, b"the e-mail channel is polled, not pushed to")

    # --- inbound --------------------------------------------------------------------------------

    async def poll(self, cursor: str | None) -> PollResult:
        previous = _read_cursor(cursor)
        try:
            async with open_mailbox(self.imap) as box:
                state = box.state
                start = {"uidvalidity": state.uidvalidity, "uid": state.uidnext - 1}
                if previous is None:
                    log.info("channel %s: first poll, starting at UID %d", self.name, state.uidnext)
                    return PollResult([], _cursor(start))
                if previous["uidvalidity"] != state.uidvalidity:
                    log.warning(
                        "channel %s: UIDVALIDITY of %s changed from %d to %d (mailbox recreated): "
                        "continuing from UIDNEXT %d without answering the mail already there",
                        self.name,
                        self.imap.mailbox,
                        previous["uidvalidity"],
                        state.uidvalidity,
                        state.uidnext,
                    )
                    return PollResult([], _cursor(start))
                uids = (await box.uids_after(previous["uid"]))[:BATCH]
                fetched = await box.fetch(uids)
        except ImapError as exc:
            raise PollFailed(f"channel {self.name}: {exc}") from None
        if not uids:
            return PollResult([], None)
        # Parsing is CPU work on what strangers wrote: in a thread, so that the server keeps
        # answering (health checks, webhooks, the web chat) while a large mail is read.
        messages = await asyncio.to_thread(self._read_fetched, state.uidvalidity, fetched)
        return PollResult(messages, _cursor({"uidvalidity": state.uidvalidity, "uid": max(uids)}))

    def _read_fetched(
        self, uidvalidity: int, fetched: list[tuple[int, bytes]]
    ) -> list[InboundMessage]:
        return [
            message
            for uid, data in fetched
            if (message := self._inbound_or_none(uidvalidity, uid, data)) is not None
        ]

    def _inbound_or_none(self, uidvalidity: int, uid: int, data: bytes) -> InboundMessage | None:
        """A mail that is refused or that the parser chokes on is logged and skipped: it must
        not stop the mailbox."""
        try:
            return self.inbound(uidvalidity, uid, data)
        except MailRefused as exc:
            log.warning("channel %s: UID %d refused (%s); skipped", self.name, uid, exc)
            return None
        except Exception:
            log.exception("channel %s: UID %d could not be read; skipped", self.name, uid)
            return None

    def inbound(self, uidvalidity: int, uid: int, data: bytes) -> InboundMessage | None:
        """The question in one fetched mail; None for mail that must not be answered."""
        mail = read_mail(data, own_address=self.from_address)
        where = f"{uidvalidity}:{uid}"
        if mail.automatic:
            log.info("channel %s: skipped UID %d (%s)", self.name, uid, mail.automatic)
            return None
        if not mail.reply_address or "@" not in mail.reply_address:
            log.info("channel %s: skipped UID %d (no sender address)", self.name, uid)
            return None
        platform_id = mail.message_id or where
        if self.staff_room is not None:
            return staff_message(self.name, mail, platform_id, uid, self.from_address)
        log.info(
            "channel %s: UID %d is %s from a sender at %s (%s)",
            self.name,
            uid,
            platform_id,
            mail.address.rsplit("@", 1)[-1],
            authentication_summary(mail.authentication),
        )
        return InboundMessage(
            channel=self.name,
            platform_id=platform_id,
            conversation=mail.references[0] if mail.references else platform_id,
            sender=mail.address,
            sender_name=mail.name,
            text=mail.text[:MAX_TEXT],
            public=False,
            lang_hint=mail.lang,
            reply_to=mail.in_reply_to,
            reply_context=reply_context(mail),
            raw={"uid": where, "authentication_results": list(mail.authentication)},
            media=mail.media,
        )

    # --- outbound -------------------------------------------------------------------------------

    def compose(self, msg: OutboundMessage) -> EmailMessage:
        """The reply as it goes out (also for tests and previews)."""
        message = EmailMessage(policy=SMTP_POLICY)
        message["From"] = formataddr((self.from_name, self.from_address))
        if self.staff_room is not None:  # a ticket, or an update in its thread
            staff_headers(message, msg, self.staff_room)
        else:
            context = load_object(msg.reply_context)
            message["To"] = context.get("to") or msg.recipient or ""
            subject = context.get("subject") or ""
            # "new": a first message from the desk (an answer by e-mail after another
            # platform's reply window closed), not a reply to one received here.
            message["Subject"] = subject if context.get("new") else reply_subject(subject)
            question = context.get("message_id")
            if question:
                message["In-Reply-To"] = question
                message["References"] = " ".join([*context.get("references", []), question])
        message["Date"] = formatdate(localtime=False, usegmt=True)
        message["Message-ID"] = self.message_id(msg)
        # RFC 3834: no auto-reply to this, please (a ticket is no reply: auto-generated).
        message["Auto-Submitted"] = "auto-generated" if self.staff_room else "auto-replied"
        message["X-Auto-Response-Suppress"] = "All"  # the same for Exchange's out-of-office
        message.set_content(msg.text, subtype="plain", charset="utf-8")
        return message

    def message_id(self, msg: OutboundMessage) -> str:
        """Deterministic: the same outbox row gives the same id on every attempt. The question's
        id and the text are mixed in so a rebuilt database's row 1 does not repeat an old reply's
        id, and so that a ticket's id (which a staff reply names) cannot be guessed."""
        domain = self.from_address.rsplit("@", 1)[1]
        where = msg.reply_to or msg.conversation
        salt = hashlib.sha256(f"{self.name}\n{where}\n{msg.text}".encode())
        return f"<civicdesk.{msg.id}.{salt.hexdigest()[:12]}@{domain}>"

    def compose_announcement(self, publication: Publication, to: str) -> EmailMessage:
        """An announcement to the list: its first line (the title) is the subject; plain text
        only (the link says where the picture and the whole text are)."""
        subject, _, rest = publication.text.partition("\n")
        message = EmailMessage(policy=SMTP_POLICY)
        message["From"] = formataddr((self.from_name, self.from_address))
        message["To"] = to
        message["Subject"] = subject.strip()
        message["Date"] = formatdate(localtime=False, usegmt=True)
        domain = self.from_address.rsplit("@", 1)[1]
        salt = hashlib.sha256(f"{self.name}\n{to}\n{publication.text}".encode()).hexdigest()
        message["Message-ID"] = f"<civicdesk.announcement.{publication.id}.{salt[:12]}@{domain}>"
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(rest.strip() or subject, subtype="plain", charset="utf-8")
        return message

    async def publish(self, publication: Publication) -> SendResult:
        if self.publish_to is None:
            return SendResult.failed(
                f"channel {self.name} has no PUBLISH_TO: set it to the list's address",
                retryable=False,
            )
        if publication.in_doubt:
            return not_again("e-mail", publication)
        try:
            message = self.compose_announcement(publication, self.publish_to)
        except (ValueError, TypeError) as exc:
            return SendResult.failed(
                f"the announcement could not be composed: {exc}", retryable=False
            )
        return await self._submit(message, "announcement", publication.id)

    async def send(self, msg: OutboundMessage) -> SendResult:
        try:
            message = self.compose(msg)
        except (ValueError, TypeError) as exc:  # a header the email package refuses
            return SendResult.failed(f"the answer could not be composed: {exc}", retryable=False)
        return await self._submit(message, "answer", msg.id)

    async def _submit(self, message: EmailMessage, what: str, outbox_id: int) -> SendResult:
        to = str(message["To"] or "")
        if "@" not in to:
            return SendResult.failed("no address to answer: the question had none", retryable=False)
        if parseaddr(to)[1].lower() == self.from_address.lower():
            return SendResult.failed("the answer would go to the channel itself", retryable=False)
        password = self._smtp_password.reveal() if self._smtp_password else None
        try:
            await aiosmtplib.send(
                message,
                sender=self.from_address,
                recipients=[parseaddr(to)[1]],
                hostname=self.smtp_host,
                port=self.smtp_port,
                username=self.smtp_user or None,
                password=password if self.smtp_user else None,
                use_tls=self.smtp_tls == "implicit",
                start_tls=self.smtp_tls == "starttls",
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            return _smtp_failure(min(codes) if codes else 550, f"recipient refused: {exc}")
        except aiosmtplib.SMTPResponseException as exc:
            return _smtp_failure(exc.code, f"SMTP {exc.code} {exc.message}")
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return SendResult.failed(
                f"{type(exc).__name__} talking to {self.smtp_host}:{self.smtp_port}: {exc}"
            )
        log.info("channel %s: %s %d sent as %s", self.name, what, outbox_id, message["Message-ID"])
        return SendResult.sent(str(message["Message-ID"]))

    async def close(self) -> None:
        """Nothing held between polls and sends: each opens and closes its own connection."""


def reply_context(mail: Mail) -> str:
    """What the answer needs: the ids to thread on, the subject, and where to send it."""
    references = list(mail.references or ([mail.in_reply_to] if mail.in_reply_to else []))
    if len(references) > MAX_REFERENCES:  # keep the root and the newest
        references = [references[0], *references[-(MAX_REFERENCES - 1) :]]
    context = {
        "message_id": mail.message_id,
        "references": references,
        "subject": mail.subject[:300],
        "to": mail.reply_address,
    }
    return compact(context)


def _smtp_failure(code: int, detail: str) -> SendResult:
    """4xx: the server asks to try later; 5xx: it will refuse again (RFC 5321 §4.2.1)."""
    return SendResult.failed(detail[:300], retryable=not 500 <= code < 600)


def _read_cursor(cursor: str | None) -> dict[str, int] | None:
    if not cursor:
        return None
    try:
        data = json.loads(cursor)
        return {"uidvalidity": int(data["uidvalidity"]), "uid": int(data["uid"])}
    except (ValueError, KeyError, TypeError):
        log.warning("unreadable e-mail cursor %r: starting from the newest mail", cursor)
        return None


def _cursor(value: dict[str, int]) -> str:
    return compact(value)


SPEC = AdapterSpec(
    name="email",
    summary="E-mail: an IMAP mailbox polled for questions, answers sent by SMTP.",
    settings=SETTINGS,
    build=EmailAdapter.from_config,
    api_base=None,
)
