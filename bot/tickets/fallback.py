"""When a platform no longer accepts a reply: the staff answer by e-mail, where the citizen gave
an address (in the question or a follow-up) and the institution has an e-mail channel for it
(`CIVICDESK_ANSWER_BY_EMAIL`). Pure functions: which address, and the message's text.

WeChat's customer-service messages and Weibo's private replies are refused 48 hours after the
citizen last wrote (`bot.tickets.handoff.REPLY_WINDOWS`); an answer written later would otherwise
only be
marked undeliverable for operators to pass on by hand.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from bot.answering.text import detect_lang
from bot.runtime.privacy import email_addresses, mask


@dataclass(frozen=True)
class EmailAnswer:
    address: str
    subject: str
    body: str

    @property
    def reply_context(self) -> str:
        """For the e-mail adapter: a new message to `address`, not a reply to one it received."""
        context = {"to": self.address, "subject": self.subject, "new": True}
        return json.dumps(context, ensure_ascii=False, separators=(",", ":"))


def citizen_address(texts: Iterable[str]) -> str | None:
    """The address the citizen gave last (a later message corrects an earlier one)."""
    found = [address for text in texts for address in email_addresses(text)]
    return found[-1] if found else None


def email_answer(
    *,
    address: str,
    reference: str,
    question: str,
    asked_at: datetime,
    answer: str,
    channel: str,
    default_lang: str,
) -> EmailAnswer:
    """The answer as an e-mail in the language of the question: the reference code in the
    subject (so a reply from the citizen can be matched by staff), the question quoted, and
    why it comes by e-mail."""
    lang = detect_lang(question)
    zh = lang == "zh" or (lang not in ("en",) and default_lang == "zh")
    day = asked_at.strftime("%Y-%m-%d")
    quoted = "\n".join(f"> {line}" for line in question.splitlines() or [""])
    if zh:
        subject = f"您的咨询 {reference} 的答复"
        body = (
            f"您好！关于您 {day} 在 {channel} 上的咨询（编号 {reference}）：\n\n{quoted}\n\n"
            f"答复如下：\n\n{answer}\n\n"
            f"（{channel} 的回复期限已过，我们无法在原处答复，故按您留下的邮箱发送。）"
        )
    else:
        subject = f"Answer to your question {reference}"
        body = (
            f"Hello, about your question of {day} on {channel} (reference {reference}):\n\n"
            f"{quoted}\n\nOur answer:\n\n{answer}\n\n"
            f"({channel} no longer accepts our reply there, so we answer at the address "
            "you gave us.)"
        )
    return EmailAnswer(address, subject, body)


def staff_note(answer: EmailAnswer, lang: str) -> str:
    """The line in the ticket's thread saying where the answer went (the address masked)."""
    where = mask(answer.address)
    if lang == "zh":
        return f"平台回复期限已过：答复改由邮件发送至 {where}"
    return f"the platform's reply window had closed: the answer goes by e-mail to {where}"
