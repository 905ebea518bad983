"""Human handoff, the pure part: staff channels, what staff write in a ticket's thread, and the
texts civicdesk posts there. The SQL is in `bot.storage.ticket_sql`; the orchestration in
`bot.gateway.pipeline`.

A ticket is posted to every staff channel (`CIVICDESK_ESCALATE_TO`), into the room each names
(`CIVICDESK_<NAME>_STAFF_ROOM`). A staff member answers by replying in the ticket's thread;
the platform tells which post a reply answers (Slack `thread_ts`, Matrix `m.in_reply_to` or
thread root, Telegram `reply_to_message`, e-mail `In-Reply-To`), which civicdesk matches against
the ids of the ticket posts it sent. A reply that starts with a command word is a command.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from bot.runtime.privacy import email_addresses
from bot.tickets.conversation import ConversationRules
from bot.tickets.drafts import KIND_TICKET, OutboxDraft
from bot.tickets.hours import OfficeCalendar, calendar_from_env


@dataclass(frozen=True)
class StaffChannel:
    name: str  # a configured channel
    room: str  # where its tickets go: a Slack channel id, a Matrix room id, an address, ...


T = TypeVar("T")
MEMO_SIZE = 4096  # minutes of working-time results kept (a few days of questions)

REPLY_WINDOWS: Mapping[str, timedelta] = {
    # Private replies only (public comments and mentions can be answered any time). From
    # ../shared/PLATFORMS.md: WeChat's customer-service messages within 48 h of the citizen's
    # last message; Weibo's private replies within 48 h (the issue says 72 h; the platform's own
    # page says 48 h); Messenger and WhatsApp 24 h. LINE's reply token lasts about a minute, but
    # its push API has no window: the adapter falls back to it by itself.
    "wechat": timedelta(hours=48),
    "weibo": timedelta(hours=48),
    "messenger": timedelta(hours=24),
    "whatsapp": timedelta(hours=24),
}


@dataclass(frozen=True)
class Handoff:
    """What the workers need to hand questions to people."""

    staff: Sequence[StaffChannel] = ()
    lang: str = "zh"  # the staff's language, for the texts civicdesk posts to them
    reply_windows: Mapping[str, timedelta] = field(default_factory=lambda: dict(REPLY_WINDOWS))
    # Working hours, holidays and the answer target: when an answer is due, and what the
    # acknowledgement promises.
    calendar: OfficeCalendar = field(default_factory=lambda: calendar_from_env({}))
    # A citizen e-mail channel for answers past a platform's reply window (bot.tickets.fallback).
    email_fallback: str | None = None
    # When the bot answers, adds to a ticket or steps aside (bot.tickets.conversation).
    conversation: ConversationRules = field(default_factory=ConversationRules)
    _memo: dict[tuple[Any, ...], Any] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def staff_names(self) -> frozenset[str]:
        return frozenset(s.name for s in self.staff)

    def due(self, received: datetime) -> datetime:
        """When the answer to a question received at `received` is due (working time)."""
        return self._remembered(("due", _minute(received)), self._due)

    def promise(self, received: datetime, lang: str) -> str:
        """The answer time told to the citizen, naming the next working period when closed."""
        return self._remembered(("promise", _minute(received), lang), self._promise)

    def _due(self, key: tuple[Any, ...]) -> datetime:
        return self.calendar.hours.add_working_time(key[1], self.calendar.target)

    def _promise(self, key: tuple[Any, ...]) -> str:
        return self.calendar.hours.answer_promise(key[1], self.calendar.target, key[2])

    def _remembered(self, key: tuple[Any, ...], compute: Callable[[tuple[Any, ...]], T]) -> T:
        """Working-time arithmetic walks the calendar day by day; the questions of one minute
        share its result (the promise is told to the minute anyway)."""
        found = self._memo.get(key)
        if found is None:
            if len(self._memo) > MEMO_SIZE:
                self._memo.clear()
            found = self._memo[key] = compute(key)
        result: T = found
        return result

    def invites_email(self, channel: str, public: bool, question: str) -> bool:
        """Whether the acknowledgement offers an answer by e-mail: the platform stops taking
        private replies after a while, there is an e-mail channel, no address was given yet."""
        return (
            self.email_fallback is not None
            and not public
            and self.reply_window(channel) is not None
            and not email_addresses(question)
        )

    def reply_window(self, channel: str) -> timedelta | None:
        platform = channel.strip().lower().replace("_", "-").split("-", 1)[0]
        return self.reply_windows.get(channel, self.reply_windows.get(platform))


def _minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


NO_HANDOFF = Handoff()  # no staff channel: tickets are handled from the command line


# --- what staff write ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    pass


@dataclass(frozen=True)
class Close:
    reason: str  # what the citizen is told


@dataclass(frozen=True)
class Note:
    text: str  # for colleagues; never sent to the citizen


@dataclass(frozen=True)
class Answer:
    text: str


StaffCommand = Claim | Close | Note | Answer

_WORDS: Mapping[str, str] = {
    "claim": "claim", "认领": "claim", "接单": "claim",
    "close": "close", "关闭": "close", "结案": "close",
    "note": "note", "备注": "note",
}  # fmt: skip


def parse_staff_reply(text: str) -> StaffCommand | None:
    """What a staff member's reply in a ticket's thread means; None when it says nothing.

    "claim", "close <reason>", "note <text>" (or 认领, 关闭 <原因>, 备注 <内容>), optionally
    after "/" or "!"; anything else is the answer to send to the citizen."""
    stripped = text.strip()
    if not stripped:
        return None
    head, _, rest = stripped.partition(" ") if " " in stripped else _split_cjk(stripped)
    word = _WORDS.get(head.lstrip("/!").rstrip(":：").casefold())
    rest = rest.strip().lstrip(":：").strip()
    if word == "claim" and not rest:
        return Claim()
    if word == "close":
        return Close(rest)
    if word == "note" and rest:
        return Note(rest)
    return Answer(stripped)


def _split_cjk(text: str) -> tuple[str, str, str]:
    """ "备注：已联系" and "关闭重复提问" have no space after the command word."""
    bare = text.lstrip("/!")
    for word in _WORDS:
        if bare.casefold().startswith(word) and not word.isascii():
            return word, " ", bare[len(word) :]
    return text, "", ""


# --- what civicdesk posts to staff --------------------------------------------------------------


def ticket_post(
    staff: StaffChannel,
    handoff: Handoff,
    *,
    reference: str,
    question: str,
    channel: str,
    public: bool,
    sender_name: str | None,
    candidates: Sequence[Mapping[str, Any]],
    due_at: datetime | None,
    reply_deadline: datetime | None,
) -> OutboxDraft:
    """The ticket as posted in one staff channel."""
    zh = handoff.lang == "zh"
    where = (
        f"{channel}（{'公开' if public else '私信'}）"
        if zh
        else f"{channel} ({'public' if public else 'private'})"
    )
    who = sender_name or ("市民" if zh else "citizen")
    lines = [
        f"[civicdesk] {'新工单' if zh else 'New ticket'} {reference} · {where} · {who}",
        f"{'问题' if zh else 'Question'}: {question}",
    ]
    if candidates:
        best = "; ".join(
            f"{c.get('entry_id')} {c['score']:.2f}"
            if c.get("score") is not None
            else str(c.get("entry_id"))
            for c in candidates[:3]
        )
        lines.append(f"{'候选' if zh else 'FAQ candidates'}: {best}")
    if due_at is not None:
        lines.append(f"{'承诺答复' if zh else 'Answer promised by'}: {staff_time(due_at, handoff)}")
    if reply_deadline is not None:
        lines.append(
            f"{'平台回复期限' if zh else 'Platform reply deadline'}: "
            f"{staff_time(reply_deadline, handoff)}"
        )
    lines.append(
        "在本条消息的回复（话题）中写答复即发送给市民；命令：认领 / 关闭 原因 / 备注 内容"
        if zh
        else "Reply in this thread to answer the citizen. "
        "Commands: claim / close <reason> / note <text>"
    )
    return OutboxDraft(
        channel=staff.name, conversation=staff.room, text="\n".join(lines), kind=KIND_TICKET
    )


UPDATES: Mapping[str, tuple[str, str]] = {
    # event kind: (zh, en)
    "claimed": ("已认领", "claimed"),
    "answered": ("已答复，答复已发给市民", "answered; the answer is on its way to the citizen"),
    "closed": ("已关闭，未答复", "closed without an answer"),
    "undeliverable": (
        "答复未能送达：平台的回复期限已过，请通过其他途径联系市民（市民再次来信时将自动发出）",
        "NOT delivered: the platform's reply window has closed; reach the citizen another way "
        "(it is sent by itself if the citizen writes again)",
    ),
    "follow-up": ("市民补充", "the citizen adds"),
    "reminded": (
        "已超过承诺的答复时间，请尽快处理",
        "overdue: the promised answer time has passed",
    ),
    "note": ("备注", "note"),
}


KEPT_ANSWER_SENT = (
    "市民再次来信，平台回复期限重新开始：之前未能送达的答复现已发出",
    "the citizen wrote again, which reopened the platform's reply window: the kept answer "
    "is sent now",
)


def for_staff(handoff: Handoff, texts: tuple[str, str]) -> str:
    """The (zh, en) text in the staff's language."""
    return texts[0 if handoff.lang == "zh" else 1]


def ticket_update(
    handoff: Handoff,
    reference: str,
    kind: str,
    *,
    actor: str | None,
    at: datetime,
    detail: str | None = None,
) -> str:
    """One line for a ticket's thread: what happened, who did it, when (and what was said)."""
    what = for_staff(handoff, UPDATES[kind])
    by = f" · {actor}" if actor else ""
    said = f"\n{detail}" if detail else ""
    return f"[{reference}] {what}{by} · {staff_time(at, handoff)}{said}"


def staff_time(when: datetime, handoff: Handoff) -> str:
    """A time as staff read it: in the office's time zone."""
    return when.astimezone(handoff.calendar.hours.zone).strftime("%m-%d %H:%M")
