"""The conversation rules: what a citizen's message does, given the conversation's ticket, what
the desk would say, and the time. One pure function, `decide_turn`; the pipeline asks it and the
storage layer applies its `Turn` (docs/conversations.md explains the rules and why).

- Media without text: a short reply that only text can be read (per channel, configurable).
- While a ticket is open and no person has claimed or answered it, the bot answers what the FAQ
  answers; what it cannot answer joins the open ticket, with one line naming its code.
- Once a person claimed or answered it, the bot steps aside until the ticket closes (and for a
  quiet period after a staff answer): follow-ups join the ticket and are acknowledged briefly,
  at most once per `acknowledge_every`.
- A message the FAQ cannot answer and that has no question in it (greetings, tests, emoji,
  placeholders: `bot.answering.message_form`) never opens a ticket: the citizen is asked to type
  their question, in their language.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from bot.answering.composer import compose
from bot.answering.message_form import Form, question_form, script_lang
from bot.answering.replies import pick
from bot.platform.adapter import TextRules
from bot.runtime.privacy import email_addresses

QUIET_AFTER_ANSWER = timedelta(minutes=10)  # a "thanks" or "but what about…" goes to the person
ACKNOWLEDGE_EVERY = timedelta(minutes=3)  # one "a colleague is on it" per burst of messages

# Ticket statuses as the rules read them (the same strings as bot.storage.models).
OPEN, CLOSED, UNDELIVERABLE = "open", "closed", "undeliverable"

PROMPT_FOR_QUESTION = {
    "zh": "您好，请用一句话写下您想咨询的问题，我们会尽快解答。",
    "en": "Hello! Please type your question in a sentence, and we will answer it.",
}
STILL_WITH_STAFF = {
    "zh": "您的问题 {ref} 已转交工作人员；如有其他问题，请直接输入。",
    "en": "Your question {ref} is with our staff. If you have another question, please type it.",
}
ONLY_TEXT = {
    "zh": "抱歉，目前只能阅读文字消息，请用文字写下您的问题。",
    "en": "Sorry, we can only read text messages: please type your question.",
}
ADDED_TO_TICKET = {
    "zh": "您的补充已加入问题 {ref}，工作人员会一并答复。",
    "en": "Added to your question {ref}; our staff will answer it together.",
}
PERSON_ON_IT = {
    "zh": "已加入您的问题 {ref}，{who}正在处理。",
    "en": "Added to your question {ref}; {who} is on it.",
}
PERSON_ANSWERED = {
    "zh": "已转给答复您问题 {ref} 的{who}。",
    "en": "Passed on to {who}, who answered your question {ref}.",
}
A_COLLEAGUE = {"zh": "工作人员", "en": "a colleague"}
NAMED_COLLEAGUE = {"zh": "工作人员{name}", "en": "a colleague ({name})"}


class _Say(Protocol):
    def __call__(self, texts: Mapping[str, str], **values: str) -> str: ...


class Step(StrEnum):
    ANSWER = "answer"  # the desk's reply goes out: an FAQ answer, a clarifying question, small talk
    OPEN_TICKET = "open-ticket"  # a person must answer: a new ticket, acknowledged with its code
    ADD_TO_TICKET = "add-to-ticket"  # joins the open, unclaimed ticket; one line with its code
    STEP_ASIDE = "step-aside"  # a person has it: joins the ticket, brief acknowledgement
    PROMPT = "prompt"  # no question in it: ask for one
    MEDIA_ONLY = "media-only"  # nothing to read: say that only text can be read


@dataclass(frozen=True)
class ConversationRules:
    quiet_after_answer: timedelta = QUIET_AFTER_ANSWER
    acknowledge_every: timedelta = ACKNOWLEDGE_EVERY
    media_replies: Mapping[str, str] = field(default_factory=dict)  # channel -> its own text


@dataclass(frozen=True)
class TicketView:
    """The conversation's ticket as the rules need it: open, undeliverable, or closed lately."""

    reference: str
    status: str
    assigned_to: str | None = None
    answered_by: str | None = None
    answered_at: datetime | None = None
    closed_at: datetime | None = None
    close_reason: str | None = None  # closed without the answer reaching the citizen here
    acknowledged_at: datetime | None = None


@dataclass(frozen=True)
class Incoming:
    text: str
    channel: str
    media: str | None = None
    mention: str | None = None  # to start a public reply with


@dataclass(frozen=True)
class DeskView:
    """What the desk would say: its decision ("answer", "clarify", "chat", "escalate", ...),
    its reply as composed, and the language it chose."""

    decision: str
    text: str
    lang: str


@dataclass(frozen=True)
class Turn:
    step: Step
    decision: str  # recorded on the inbox row
    text: str | None  # what the citizen is told, composed for their channel
    follow_up: bool = False  # the message joins the conversation's ticket
    # The reply is a rate-limited acknowledgement: sent only if the ticket's acknowledged_at is
    # still empty or not after `acknowledged_before` when written (the storage checks it in the
    # update itself, so of two workers only one sends it).
    acknowledge: bool = False
    acknowledged_before: datetime | None = None
    silent_because: str | None = None  # why no reply, when `text` is None


def is_media_only(incoming: Incoming) -> bool:
    return incoming.media is not None and not incoming.text.strip()


def stepped_aside(ticket: TicketView | None, now: datetime, rules: ConversationRules) -> bool:
    """A person has the conversation: they claimed or answered its ticket (and, once answered,
    the quiet period has not passed)."""
    if ticket is None:
        return False
    if ticket.status == UNDELIVERABLE:
        return True  # answered, the answer kept until the citizen writes again
    if ticket.status == OPEN:
        return ticket.assigned_to is not None or ticket.answered_by is not None
    return delivered_lately(ticket, now, rules)


def delivered_lately(ticket: TicketView, now: datetime, rules: ConversationRules) -> bool:
    """Closed by a person's answer that went out here within the quiet period (a ticket closed
    with a reason, such as "reached by phone", has no quiet period: the bot answers again)."""
    return (
        ticket.status == CLOSED
        and ticket.answered_by is not None
        and ticket.close_reason is None
        and ticket.closed_at is not None
        and now - ticket.closed_at < rules.quiet_after_answer
    )


def needs_desk(
    ticket: TicketView | None, incoming: Incoming, now: datetime, rules: ConversationRules
) -> bool:
    """Whether `decide_turn` needs the desk's view (it does not when the bot steps aside)."""
    return not is_media_only(incoming) and not stepped_aside(ticket, now, rules)


_DIGIT_RUN = re.compile(r"\d{4,}")


def carries_details(text: str) -> bool:
    """A short message that staff need though it asks nothing: an e-mail address (the answer
    can go there after a reply window closes), a case, phone or ID number."""
    return bool(email_addresses(text)) or _DIGIT_RUN.search(text) is not None


def decide_turn(
    ticket: TicketView | None,
    incoming: Incoming,
    desk: DeskView | None,
    *,
    now: datetime,
    rules: ConversationRules,
    text_rules: TextRules,
    default_lang: str,
) -> Turn:
    """What a citizen's message does. `ticket`: the conversation's open ticket, or one answered
    within the quiet period; `desk`: None only when `needs_desk` said so."""
    lang = script_lang(incoming.text, desk.lang if desk is not None else default_lang)

    def say(texts: Mapping[str, str], **values: str) -> str:
        return compose(
            pick(dict(texts), lang).format(**values), text_rules, mention=incoming.mention
        )

    if is_media_only(incoming):
        own = rules.media_replies.get(incoming.channel)
        text = compose(own, text_rules, mention=incoming.mention) if own else say(ONLY_TEXT)
        return Turn(Step.MEDIA_ONLY, "media", text)
    if ticket is not None and stepped_aside(ticket, now, rules):
        return _step_aside(ticket, now, rules, say, lang)
    if desk is None:
        raise ValueError("the desk's view is needed unless the bot steps aside")
    if desk.decision != "escalate":
        return Turn(
            Step.ANSWER,
            desk.decision,
            desk.text or None,
            silent_because=None if desk.text else "the desk had nothing to say",
        )
    if question_form(incoming.text) is not Form.QUESTION:
        if ticket is not None and ticket.status == OPEN:
            if carries_details(incoming.text):  # "邮箱 wang@example.cn", a case number
                return Turn(
                    Step.ADD_TO_TICKET,
                    "follow-up",
                    say(ADDED_TO_TICKET, ref=ticket.reference),
                    follow_up=True,
                )
            # "hello?" while waiting
            return Turn(Step.PROMPT, "prompt", say(STILL_WITH_STAFF, ref=ticket.reference))
        return Turn(Step.PROMPT, "prompt", say(PROMPT_FOR_QUESTION))
    if ticket is not None and ticket.status == OPEN:
        return Turn(
            Step.ADD_TO_TICKET,
            "follow-up",
            say(ADDED_TO_TICKET, ref=ticket.reference),
            follow_up=True,
        )
    return Turn(Step.OPEN_TICKET, "escalate", desk.text)


def _step_aside(
    ticket: TicketView,
    now: datetime,
    rules: ConversationRules,
    say: _Say,
    lang: str,
) -> Turn:
    if ticket.status == UNDELIVERABLE:
        return Turn(
            Step.STEP_ASIDE,
            "follow-up",
            None,
            follow_up=True,
            silent_because="the staff's kept answer is sent now",
        )
    # At most one acknowledgement per `acknowledge_every`; a person's answer starts afresh.
    since = now - rules.acknowledge_every
    if ticket.answered_at is not None and ticket.answered_at > since:
        since = ticket.answered_at
    last = ticket.acknowledged_at
    if last is not None and last > since:
        minutes = rules.acknowledge_every.total_seconds() / 60
        return Turn(
            Step.STEP_ASIDE,
            "follow-up",
            None,
            follow_up=True,
            silent_because=f"acknowledged less than {minutes:g} minutes ago",
        )
    person = ticket.answered_by if ticket.status == CLOSED else ticket.assigned_to
    person = person or ticket.answered_by
    who = pick(NAMED_COLLEAGUE, lang).format(name=person) if person else pick(A_COLLEAGUE, lang)
    texts = PERSON_ANSWERED if ticket.status == CLOSED else PERSON_ON_IT
    return Turn(
        Step.STEP_ASIDE,
        "follow-up",
        say(texts, ref=ticket.reference, who=who),
        follow_up=True,
        acknowledge=True,
        acknowledged_before=since,
    )
