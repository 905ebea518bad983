"""Matrix events → InboundMessage, shared by both inbound modes (/sync and application service).

No I/O here. What the bot answers:

- `m.room.message` events with msgtype `m.text` from anyone but the bot itself; notices (what
  bots send), emotes, media, edits (`m.replace`), redacted events, state events and membership
  are skipped, and so are encrypted events (the adapter has no end-to-end encryption).
- In a private room (the bot and one other member, counting invites) every message; in a group
  room only messages that mention the bot (`m.mentions.user_ids`, or, from clients that do not
  send `m.mentions`, its user id, a matrix.to link to it or its display name in the text) or
  that reply to one of the bot's own messages.
- In the staff room of a staff channel (`staff_message_from`): every staff member's text that
  sits in a thread (its root is the ticket post) or replies to a message (a ticket post or an
  update), no mention needed; top-level talk is the staff's own.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from adapters.html_text import tokens
from adapters.payload import compact, load_object
from bot.platform.messages import InboundMessage

MAX_TEXT = 10_000
OWN_EVENTS_KEPT = 2000  # the bot's recent event ids, to tell replies to the bot
NAMES_KEPT = 1000  # display names of staff members
MAX_NAME = 80
MAX_ID = 255
"""The longest event, room or user id: the spec's limit (255 bytes) and the inbox's columns. An
event with a longer one is no Matrix event (skipped); a longer relation target is no target."""


@dataclass(frozen=True)
class Identity:
    """Who the bot is, to skip its own events and to notice mentions."""

    user_id: str
    display_name: str | None = None


@dataclass(frozen=True)
class ReplyContext:
    """What a reply needs of the question: its event id, and the thread root when in a thread."""

    event_id: str
    thread_root: str | None = None

    def dumps(self) -> str:
        return compact({"event": self.event_id, "thread": self.thread_root or None})

    @classmethod
    def loads(cls, text: str | None) -> ReplyContext | None:
        data = load_object(text)
        event, thread = data.get("event"), data.get("thread")
        if not isinstance(event, str):
            return None
        return cls(event, thread if isinstance(thread, str) else None)


class OwnEvents:
    """The ids of the bot's recent events (bounded), so that a reply to one counts as addressed
    to the bot without an API call."""

    def __init__(self, size: int = OWN_EVENTS_KEPT) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def add(self, event_id: str) -> None:
        self._ids[event_id] = None
        self._ids.move_to_end(event_id)
        while len(self._ids) > self._size:
            self._ids.popitem(last=False)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids


class DisplayNames:
    """Staff members' display names, learnt from the `m.room.member` events /sync (or a
    transaction) carries anyway: no profile lookup per message. Bounded."""

    def __init__(self, size: int = NAMES_KEPT) -> None:
        self._names: OrderedDict[str, str] = OrderedDict()
        self._size = size

    def learn(self, event: Mapping[str, Any]) -> None:
        user_id, content = event.get("state_key"), event.get("content")
        if event.get("type") != "m.room.member" or not isinstance(user_id, str):
            return
        name = content.get("displayname") if isinstance(content, Mapping) else None
        name = " ".join(name.split())[:MAX_NAME] if isinstance(name, str) else ""
        if not name:
            return
        self._names[user_id] = name
        self._names.move_to_end(user_id)
        while len(self._names) > self._size:
            self._names.popitem(last=False)

    def get(self, user_id: str) -> str | None:
        return self._names.get(user_id)


def relation(content: Mapping[str, Any]) -> Mapping[str, Any]:
    value = content.get("m.relates_to")
    return value if isinstance(value, Mapping) else {}


def matrix_id(value: Any) -> str | None:
    """`value` when it is a string that can be a Matrix id (1 to MAX_ID characters)."""
    return value if isinstance(value, str) and 0 < len(value) <= MAX_ID else None


def replied_to(content: Mapping[str, Any]) -> str | None:
    reply = relation(content).get("m.in_reply_to")
    return matrix_id(reply.get("event_id")) if isinstance(reply, Mapping) else None


def thread_root(content: Mapping[str, Any]) -> str | None:
    rel = relation(content)
    return matrix_id(rel.get("event_id")) if rel.get("rel_type") == "m.thread" else None


def membership_of(event: Mapping[str, Any], user_id: str) -> str | None:
    """The membership an `m.room.member` event gives `user_id` (invite, join, leave...)."""
    if event.get("type") != "m.room.member" or event.get("state_key") != user_id:
        return None
    content = event.get("content")
    value = content.get("membership") if isinstance(content, Mapping) else None
    return value if isinstance(value, str) else None


def mentions(content: Mapping[str, Any], me: Identity) -> bool:
    """Whether the message is addressed to the bot by name. When the sender's client sends
    `m.mentions` it is the whole truth (the spec's intentional mentions): a reply quoting the
    bot's text must not count as naming it."""
    explicit = content.get("m.mentions")
    if isinstance(explicit, Mapping):
        users = explicit.get("user_ids")
        return isinstance(users, list) and me.user_id in users
    body = content.get("body")
    text = body if isinstance(body, str) else ""
    formatted = content.get("formatted_body")
    html = formatted if isinstance(formatted, str) else ""
    if me.user_id in text or me.user_id in html or quote(me.user_id, safe="") in html:
        return True
    name = (me.display_name or "").strip().casefold()
    return bool(name) and name in text.casefold()


_FALLBACK = re.compile(r"\A(?:>[^\n]*\n)+\n?")
MAX_PILLS = 20


def _links(html: str) -> list[tuple[str, str]]:
    """(href, text) of the first MAX_PILLS links in `html`, read by the linear tokenizer (a
    pattern of "<a [^>]*href=...>.*?</a>" took 16 s on 20 KB of '<a href="')."""
    found: list[tuple[str, str]] = []
    href: str | None = None
    inner: list[str] = []
    for kind, value, attrs in tokens(html):
        if kind == "start" and value == "a":
            href, inner = dict(attrs).get("href"), []
        elif kind == "data" and href is not None:
            inner.append(value)
        elif kind == "end" and value == "a" and href is not None:
            found.append((href, "".join(inner)))
            href = None
            if len(found) >= MAX_PILLS:
                break
    return found


def pill_names(content: Mapping[str, Any], me: Identity) -> list[str]:
    """The texts of the links to the bot in `formatted_body` (Element's pills: <a
    href="https://matrix.to/#/@bot:server">Civic Desk</a>), which clients copy into `body`."""
    formatted = content.get("formatted_body")
    if not isinstance(formatted, str):
        return []
    targets = (me.user_id, quote(me.user_id, safe=""), quote(me.user_id, safe="@:"))
    names = []
    for href, inner in _links(formatted[:MAX_TEXT]):
        if any(href.endswith("/" + target) or href.endswith("#" + target) for target in targets):
            name = inner.strip()
            if name:
                names.append(name)
    return names


def _without_lead_name(text: str, me: Identity) -> str:
    names = [n for n in (me.display_name, me.user_id.split(":", 1)[0].lstrip("@")) if n]
    for name in names:
        name_ = re.escape(name)
        lead = re.compile(rf"\A\s*(?:@{name_}\b[:,：，]?|{name_}\s*[:,：，])\s*", re.IGNORECASE)
        text = lead.sub("", text, count=1)
    return text


def _without_names(text: str, names: list[str]) -> str:
    """`text` without each of `names` wherever it stands (a pill in the middle of a sentence,
    "请问 Civic Desk 诉讼费怎么交"), with the "@" and the ":" or "," that clients put around it."""
    for name in sorted({n for n in names if n.strip()}, key=len, reverse=True):
        escaped = re.escape(name.strip())
        text = re.sub(rf"@?{escaped}\s*[:,：，]?", " ", text, flags=re.IGNORECASE)
    return text


def clean_text(body: str, me: Identity, names: list[str] | None = None) -> str:
    """The question without the quoted reply fallback of older clients and without the bot's
    name: in front ("civicdesk: how do I ..."), and, when `names` are given (the message
    mentions the bot), wherever they stand."""
    text = _FALLBACK.sub("", body, count=1)
    text = _without_lead_name(text.replace(me.user_id, " "), me)
    if names:
        text = _without_names(text, names)
    return " ".join(text.split())[:MAX_TEXT]


def staff_text(body: str, me: Identity) -> str:
    """A staff member's answer or command: without the quoted fallback and a leading bot name
    ("civicdesk: close ..."), its line breaks kept (an answer may have paragraphs)."""
    text = _without_lead_name(_FALLBACK.sub("", body, count=1), me)
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    return "\n".join(lines).strip()[:MAX_TEXT]


def message_from(
    channel: str,
    event: Mapping[str, Any],
    room_id: str,
    me: Identity,
    *,
    direct: bool | None,
    own: OwnEvents,
) -> InboundMessage | None:
    """The citizen's message in `event`, or None when the bot should not answer it.

    `direct`: True in a private room, False in a group room, None when not known (treated as a
    group room: answered when it names the bot; the application service finds out before it
    gets here, see `MatrixAppServiceAdapter.prepare`). Media come with `media` set and their
    caption (or "") as text; an encrypted message in a private room, which the bot cannot read,
    comes as media "unsupported"."""
    if matrix_id(room_id) is None:
        return None
    if _encrypted_from_someone(event, me) and direct:
        return _inbound(channel, event, room_id, text="", media="unsupported", public=False)
    message = _room_message(event)
    if message is None:
        return None
    event_id, sender, content = message
    if sender == me.user_id:
        own.add(event_id)
        return None
    read = _new_content(event, content)
    if read is None:
        return None
    body, media = read
    answers = replied_to(content)
    if not direct and not (mentions(content, me) or (answers is not None and answers in own)):
        return None
    names = [*pill_names(content, me), *([me.display_name] if me.display_name else [])]
    text = clean_text(body, me, names)
    if not text and media is None:
        return None
    return _inbound(channel, event, room_id, text=text, media=media, public=not direct)


def _inbound(
    channel: str,
    event: Mapping[str, Any],
    room_id: str,
    *,
    text: str,
    media: str | None,
    public: bool,
) -> InboundMessage:
    content = event.get("content")
    content = content if isinstance(content, Mapping) else {}
    event_id, answers, root = str(event["event_id"]), replied_to(content), thread_root(content)
    return InboundMessage(
        channel=channel,
        platform_id=event_id,
        conversation=room_id,
        sender=str(event["sender"]),
        text=text,
        public=public,
        # No "@alice:example.org" in the body: a reply quotes the question (m.in_reply_to) and
        # names the asker in m.mentions, which notifies them (see matrix_client.reply_content).
        mention=None,
        reply_to=answers or root,
        reply_context=ReplyContext(event_id, root).dumps(),
        raw=dict(event),
        media=media,
    )


def _encrypted_from_someone(event: Mapping[str, Any], me: Identity) -> bool:
    return (
        event.get("type") == "m.room.encrypted"
        and "state_key" not in event
        and matrix_id(event.get("event_id")) is not None
        and matrix_id(event.get("sender")) is not None
        and event.get("sender") != me.user_id
    )


def staff_message_from(
    channel: str,
    event: Mapping[str, Any],
    room_id: str,
    me: Identity,
    *,
    names: DisplayNames,
) -> InboundMessage | None:
    """A staff member's message in the staff room that answers something: in a thread (reply_to
    = the thread root, the ticket post) or a reply (reply_to = the replied-to event: a ticket
    post or an update in its thread). None for the bot's own events, top-level talk, edits and
    what is not text. civicdesk itself tells ticket threads from other threads."""
    message = _room_message(event)
    if message is None or message[1] == me.user_id or matrix_id(room_id) is None:
        return None
    event_id, sender, content = message
    read = _new_content(event, content)
    body = read[0] if read is not None and read[1] is None else None
    answers = thread_root(content) or replied_to(content)
    if answers is None or body is None:
        return None
    text = staff_text(body, me)
    if not text:
        return None
    return InboundMessage(
        channel=channel,
        platform_id=event_id,
        conversation=room_id,
        sender=sender,
        text=text,
        public=False,
        sender_name=names.get(sender) or sender,
        reply_to=answers,
        raw=dict(event),
    )


# msgtype → InboundMessage.media; m.text comes as text, m.notice (what bots send) and m.emote
# (an action, "/me waves") are skipped, and so are the key verification requests clients send
# as messages. Any other msgtype a person sends is "unsupported": the bot says what it reads.
MEDIA_MSGTYPES = {
    "m.image": "image",
    "m.file": "file",
    "m.audio": "audio",
    "m.video": "video",
    "m.location": "location",
}
SKIPPED_MSGTYPES = ("m.notice", "m.emote", "m.key.verification.request")


def _room_message(event: Mapping[str, Any]) -> tuple[str, str, Mapping[str, Any]] | None:
    """(event id, sender, content) of an `m.room.message` or `m.sticker` event; None for
    anything else."""
    if event.get("type") not in ("m.room.message", "m.sticker") or "state_key" in event:
        return None
    event_id, sender = matrix_id(event.get("event_id")), matrix_id(event.get("sender"))
    content = event.get("content")
    if event_id is None or sender is None or not isinstance(content, Mapping):
        return None
    return event_id, sender, content


def _new_content(
    event: Mapping[str, Any], content: Mapping[str, Any]
) -> tuple[str, str | None] | None:
    """(text, media kind) of a message as first sent; None for a redacted one, an edit, a
    notice, an emote. The text of a media message is its caption: `body` when the event has a
    `filename` apart from it (Matrix 1.10 media captions), else "" (the body is a file name)."""
    unsigned = event.get("unsigned")
    if isinstance(unsigned, Mapping) and "redacted_because" in unsigned:
        return None
    if relation(content).get("rel_type") == "m.replace":
        return None
    body = content.get("body")
    body = body if isinstance(body, str) else ""
    if event.get("type") == "m.sticker":
        return "", "sticker"
    msgtype = content.get("msgtype")
    if msgtype == "m.text":
        return (body, None) if body else None
    if not isinstance(msgtype, str) or msgtype in SKIPPED_MSGTYPES:
        return None
    media = MEDIA_MSGTYPES.get(msgtype, "unsupported")
    filename = content.get("filename")
    caption = body if isinstance(filename, str) and filename and body != filename else ""
    return caption, media


def is_private(joined: int, invited: int = 0) -> bool:
    """A room of the bot and one other person (joined or invited) is a private conversation."""
    return joined + invited <= 2
