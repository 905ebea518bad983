"""Staff mode of the e-mail channel: tickets mailed to the staff's address, their replies read back.

A ticket is a mail to STAFF_ROOM with the subject "[civicdesk] <its first line>" and a Message-ID
of ours (deterministic, `EmailAdapter.message_id`), which is the ticket post's platform id.
Updates answer it (`In-Reply-To`/`References`, "Re: " subject). Staff answer by replying to the
ticket (or to an update): their reply reaches the channel's mailbox with `In-Reply-To` naming our
Message-ID, and that id is the `reply_to` civicdesk matches against its ticket posts. Anything
else in the mailbox (new mail, replies to other mail, out-of-office notices) is not acted on.
"""

from __future__ import annotations

import logging
import re
from email.message import EmailMessage
from email.utils import parseaddr

from adapters.email_parse import Mail, reply_subject
from bot.config.settings import ConfigError
from bot.platform.messages import InboundMessage, OutboundMessage

log = logging.getLogger("civicdesk.adapters.email")

TAG = "[civicdesk]"
MAX_TEXT = 10_000
MAX_SUBJECT = 200
# Out-of-office notices that do not say so in their headers (RFC 3834) mostly say it here.
_AUTO_SUBJECT = re.compile(
    r"^\s*(?:automatic\s+reply|auto(?:matic)?[-\s]?reply|autoreply|auto:|out\s+of\s+(?:the\s+)?"
    r"office|abwesenheitsnotiz|réponse\s+automatique|自动回复|自動回覆|自動回复|自动答复|休假)",
    re.IGNORECASE,
)


def staff_room(value: str | None, own_address: str, variable: str) -> str | None:
    """The staff's address (STAFF_ROOM), checked: tickets go there, never to the channel itself."""
    if value is None:
        return None
    room = value.strip()
    address = parseaddr(room)[1]
    if "@" not in address or any(c in address for c in " \r\n<>"):
        raise ConfigError(
            f"{variable}={room!r} must be the e-mail address tickets go to (a staff list such "
            "as duty-desk@example.gov.cn)"
        )
    if address.lower() == own_address.lower():
        raise ConfigError(
            f"{variable} must be the staff's address, not the channel's own FROM address: "
            "staff reply to the ticket, and their replies come back to FROM"
        )
    return room


def staff_headers(message: EmailMessage, msg: OutboundMessage, room: str) -> None:
    """To, Subject and threading of a ticket (reply_to None) or of an update in its thread."""
    message["To"] = room
    subject = ticket_subject(msg.text)
    if msg.reply_to:
        message["Subject"] = f"Re: {subject}"
        message["In-Reply-To"] = msg.reply_to
        message["References"] = msg.reply_to
    else:
        message["Subject"] = subject


def ticket_subject(text: str) -> str:
    """ "[civicdesk] <first line>" (the ticket's first line starts with the tag already)."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    subject = first if first.startswith(TAG) else f"{TAG} {first}".strip()
    return subject[:MAX_SUBJECT]


def is_ours(message_id: str, domain: str) -> bool:
    """Whether a Message-ID is one this channel made (`EmailAdapter.message_id`)."""
    lowered = message_id.lower()
    return lowered.startswith("<civicdesk.") and lowered.endswith(f"@{domain.lower()}>")


def ticket_root(mail: Mail, domain: str) -> str | None:
    """The post of ours a staff reply answers: In-Reply-To, else the newest of ours in
    References (clients that drop In-Reply-To keep References)."""
    if mail.in_reply_to and is_ours(mail.in_reply_to, domain):
        return mail.in_reply_to
    return next((ref for ref in reversed(mail.references) if is_ours(ref, domain)), None)


def staff_text(mail: Mail) -> str | None:
    """What the staff member wrote; None for an out-of-office notice or an empty reply (whose
    text the parser took from the subject: it must never reach a citizen as an answer)."""
    if _AUTO_SUBJECT.match(mail.subject):
        return None
    subject = reply_subject(mail.subject).removeprefix("Re:").strip()
    text = mail.text.strip()
    return None if not text or text == subject else text


def staff_message(
    channel: str, mail: Mail, platform_id: str, uid: int, own_address: str
) -> InboundMessage | None:
    """A staff member's reply to a ticket (or to an update in its thread); None for other mail."""
    root = ticket_root(mail, own_address.rsplit("@", 1)[1])
    text = staff_text(mail) if root else None
    if root is None or text is None:
        why = "not a reply to a ticket" if root is None else "no text, or an auto-reply"
        log.info("channel %s: skipped UID %d (%s)", channel, uid, why)
        return None
    log.info("channel %s: UID %d is %s, a reply to %s", channel, uid, platform_id, root)
    return InboundMessage(
        channel=channel,
        platform_id=platform_id,
        conversation=root,
        sender=mail.address,
        sender_name=mail.name,
        text=text[:MAX_TEXT],
        public=False,
        lang_hint=mail.lang,
        reply_to=root,
        raw={"uid": uid, "authentication_results": list(mail.authentication)},
    )
