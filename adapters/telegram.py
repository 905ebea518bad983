"""Telegram bots through the Bot API webhook (`setWebhook` with a `secret_token`).

Telegram signs nothing: every delivery carries the `secret_token` given to `setWebhook` verbatim
in `X-Telegram-Bot-Api-Secret-Token`, and that header is the proof. Private chats are answered
privately; in groups the bot answers only what is addressed to it (an @mention, a reply to one of
its messages, a /command@bot) and quotes the question with `reply_parameters`, so other chatter in
the group is left alone even when the bot is an admin or its privacy mode is off.

Message ids are `<chat id>:<message id>`: a message's own identity (a redelivered update carries
the same message), in the same form as the id of a sent reply, so a citizen's reply to an answer
has `reply_to` equal to that answer's platform id. Every reply quotes the message it answers
(`reply_parameters`), in private chats too: an answer from staff may come days after the question.

Staff mode (the channel has a STAFF_ROOM, the staff group's chat id): tickets are posted in that
group, their updates as replies to the ticket, and a staff member's reply to one of the bot's
messages there is staff acting on the ticket (`reply_to` = "<chat id>:<message id>" of the bot's
message). Privacy mode delivers replies to the bot's messages, so the bot needs no admin rights.

Announcements (`publish`) go to PUBLISH_TO, a channel (@name or its -100… id) where the bot is an
administrator allowed to post: `sendPhoto` with the text as caption when there is a picture (the
composer fits the text to a caption's 1024 characters then), else `sendMessage`. The Bot API keeps
no idempotency key: a publication whose earlier attempt ended in doubt (a crash mid-send) is not
posted again but dead-lettered for staff to check the channel.
"""

from __future__ import annotations

import functools
import logging
import re
from typing import Any

import aiohttp

from adapters.http import JsonReply, SessionSlot, call_json, post_multipart, same
from adapters.payload import compact, json_object
from adapters.publishing import not_again, picture
from adapters.telegram_parts import (
    as_dict,
    chat_ref,
    child_object,
    display_name,
    entities_of,
    id_of,
    is_service,
    media_of,
    read_context,
    send_failure,
    short,
    text_of,
)
from bot.config.settings import AdapterSpec, ChannelConfig, ChannelSetting, Secret
from bot.platform.adapter import TEXT_RULES, BadRequest, HttpReply, RawRequest, Unauthorized
from bot.platform.messages import InboundMessage, OutboundMessage, Publication, SendResult

log = logging.getLogger("civicdesk.telegram")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
API_BASE = "https://api.telegram.org"
TIMEOUT = 10.0
GROUP_TYPES = ("group", "supergroup")
_TOKEN = re.compile(r"^(\d+):[A-Za-z0-9_-]+$")
_SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_USERNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,31}$")
_CHANNEL = re.compile(r"^(@[A-Za-z][A-Za-z0-9_]{3,31}|-100\d{5,20})$")


def _token(value: str) -> str:
    if not _TOKEN.match(value.strip()):
        raise ValueError("must be the token @BotFather gave, like 123456789:AAH...")
    return value.strip()


def _secret_token(value: str) -> str:
    if not _SECRET_TOKEN.match(value.strip()):
        raise ValueError("must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
    return value.strip()


def _channel(value: str) -> str:
    if not _CHANNEL.match(value.strip()):
        raise ValueError("must be a channel's @username or its id (-100 followed by digits)")
    return value.strip()


def post_url(chat: dict[str, Any], message_id: Any) -> str | None:
    """The t.me link of a channel post: public channels by username, others by their id."""
    if not isinstance(message_id, int):
        return None
    username = chat.get("username")
    if isinstance(username, str) and username:
        return f"https://t.me/{username}/{message_id}"
    chat_id = str(chat.get("id", ""))
    if chat_id.startswith("-100"):
        return f"https://t.me/c/{chat_id[4:]}/{message_id}"
    return None


def _username(value: str) -> str:
    name = value.strip().removeprefix("@")
    if not _USERNAME.match(name):
        raise ValueError("must be the bot's username, like civicdesk_bot (with or without @)")
    return name


SETTINGS = (
    ChannelSetting(
        "TOKEN", "The bot token from @BotFather.", required=True, secret=True, parse=_token
    ),
    ChannelSetting(
        "SECRET_TOKEN",
        "The secret_token given to setWebhook (1-256 of A-Z a-z 0-9 _ -): Telegram sends it "
        "with every update.",
        required=True,
        secret=True,
        parse=_secret_token,
    ),
    ChannelSetting(
        "PUBLISH_TO",
        "Where announcements are posted: a channel's @username or id (-100...), with the bot an "
        "administrator allowed to post there.",
        parse=_channel,
    ),
    ChannelSetting(
        "BOT_USERNAME",
        "The bot's username, so that @mentions of it in groups are answered.",
        parse=_username,
    ),
)


class TelegramAdapter:
    """One Telegram bot."""

    text_rules = TEXT_RULES["telegram"]

    def __init__(
        self,
        name: str,
        token: Secret,
        secret_token: Secret,
        *,
        username: str | None = None,
        api_base: str = API_BASE,
        staff_room: str | None = None,
        publish_to: str | None = None,
    ) -> None:
        match = _TOKEN.match(token.reveal())
        if match is None:
            raise ValueError("the bot token must look like 123456789:AAH...")
        self.name = name
        self._token = token
        self._secret_token = secret_token
        self.bot_id = match.group(1)  # the bot's own user id is the token's first part
        self.username = username
        self.api_base = api_base.rstrip("/")
        self.staff_room = staff_room.strip() if staff_room else None
        self.publish_to = publish_to
        self._http = SessionSlot()

    @classmethod
    def from_config(cls, config: ChannelConfig) -> TelegramAdapter:
        username = config.get("BOT_USERNAME")
        if username is None:
            log.warning(
                "channel=%s: %s is not set, so in groups only replies to the bot's messages are "
                "answered, not @mentions",
                config.name,
                config.var("BOT_USERNAME"),
            )
        return cls(
            config.name,
            config.secret("TOKEN"),
            config.secret("SECRET_TOKEN"),
            username=username,
            api_base=config.api_base or API_BASE,
            publish_to=config.get("PUBLISH_TO"),
            staff_room=config.staff_room_id(
                r"-\d+",
                "must be the staff group's chat id (a negative number such as -1001234567890: "
                "getUpdates shows it as chat.id once someone writes in the group)",
            ),
        )

    def attach_session(self, session: aiohttp.ClientSession) -> None:
        self._http.attach(session)

    def handshake(self, raw: RawRequest) -> HttpReply | None:
        return None  # setWebhook is called by the deployer; Telegram sends no challenge

    def verify(self, raw: RawRequest) -> None:
        given = raw.header(SECRET_HEADER)
        if not given:
            raise Unauthorized(
                f"missing {SECRET_HEADER} header: call setWebhook with secret_token set to "
                "the channel's SECRET_TOKEN"
            )
        if not same(given.strip(), self._secret_token.reveal()):
            raise Unauthorized(
                f"{SECRET_HEADER} does not match: the secret_token given to setWebhook must be "
                "the channel's SECRET_TOKEN"
            )

    def parse(self, raw: RawRequest) -> list[InboundMessage]:
        update = json_object(raw.body, "a Telegram Update")
        if not isinstance(update.get("update_id"), int):
            raise BadRequest('"update_id" is missing: this is not a Telegram update')
        message = update.get("message")
        if message is None:
            return []  # edits, channel posts, callbacks, member updates, reactions...
        if not isinstance(message, dict):
            raise BadRequest('"message" must be an object')
        inbound = self._inbound(message)
        return [] if inbound is None else [inbound]

    def _inbound(self, message: dict[str, Any]) -> InboundMessage | None:
        chat = child_object(message, "chat")
        chat_id, message_id = chat.get("id"), message.get("message_id")
        if not isinstance(chat_id, int) or not isinstance(message_id, int):
            raise BadRequest('a message needs "message_id" and "chat.id" (integers)')
        sender = message.get("from")
        text, _ = text_of(message)
        media = media_of(message)
        if media is None and not isinstance(message.get("text"), str) and not is_service(message):
            media = "unsupported"  # a content kind newer than this adapter: still a message
        sender_id = id_of(sender)
        if sender is not None and sender_id is None:
            raise BadRequest('"from.id" of a message must be an integer')
        if (
            not isinstance(sender, dict)
            or sender_id is None
            or sender.get("is_bot")  # other bots, and anonymous admins (GroupAnonymousBot)
            or sender_id == self.bot_id
            or message.get("is_automatic_forward")  # a linked channel's post copied in
            or id_of(message.get("via_bot")) == self.bot_id
            or is_service(message)  # joins, leaves, pinned messages, topic changes...
        ):
            return None
        public = chat.get("type") in GROUP_TYPES
        if chat.get("type") not in (*GROUP_TYPES, "private"):
            return None
        replied = message.get("reply_to_message")
        replied_id = replied.get("message_id") if isinstance(replied, dict) else None
        if self.staff_room is not None:
            if media is not None or not text:
                return None  # staff act on tickets in words
            return self._staff_inbound(message, chat, sender, text, replied)
        if public and not self._addressed(message, replied):
            return None
        context: dict[str, Any] = {"message_id": message_id}
        if message.get("is_topic_message") and isinstance(message.get("message_thread_id"), int):
            context["thread_id"] = message["message_thread_id"]
        return InboundMessage(
            channel=self.name,
            platform_id=f"{chat_id}:{message_id}",
            conversation=str(chat_id),
            sender=sender_id,
            sender_name=display_name(sender),
            text=self._question(message, text),
            public=public,
            media=media,
            # No "@name": a group answer quotes the question (reply_parameters), which shows whom
            # it is for; a display name is no mention on Telegram, and @username may be unset.
            mention=None,
            lang_hint=short(sender.get("language_code"), 16),
            reply_to=f"{chat_id}:{replied_id}" if isinstance(replied_id, int) else None,
            reply_context=compact(context),
            raw=message,
        )

    def _staff_inbound(
        self,
        message: dict[str, Any],
        chat: dict[str, Any],
        sender: dict[str, Any],
        text: str,
        replied: Any,
    ) -> InboundMessage | None:
        """A staff member's reply to one of the bot's messages (a ticket or an update) in the
        staff group; other talk there, and every other chat, is not the bot's business."""
        chat_id, message_id = chat["id"], message["message_id"]
        if (
            str(chat_id) != self.staff_room
            or not isinstance(replied, dict)
            or id_of(replied.get("from")) != self.bot_id
            or not isinstance(replied.get("message_id"), int)
        ):
            return None
        if self.username:  # "/claim@civicdesk_bot" is "/claim"
            text = without_handle(text, self.username).strip()
        return InboundMessage(
            channel=self.name,
            platform_id=f"{chat_id}:{message_id}",
            conversation=str(chat_id),
            sender=str(sender["id"]),
            sender_name=display_name(sender),
            text=text,
            public=False,
            reply_to=f"{chat_id}:{replied['message_id']}",
            raw=message,
        )

    def _addressed(self, message: dict[str, Any], replied: Any) -> bool:
        """A group message is for the bot when it replies to the bot, mentions it or is a
        command addressed to it."""
        if isinstance(replied, dict) and id_of(replied.get("from")) == self.bot_id:
            return True
        for kind, piece, entity in entities_of(message):
            if kind == "text_mention" and id_of(entity.get("user")) == self.bot_id:
                return True
            if self.username is None:
                continue
            if kind == "mention" and piece[1:].lower() == self.username.lower():
                return True
            if kind == "bot_command" and piece.lower().endswith("@" + self.username.lower()):
                return True
        return False

    def _question(self, message: dict[str, Any], text: str) -> str:
        """The text (or caption) without a leading /command (a bare /start is an empty message:
        a greeting) and without the mentions of the bot: "@civicdesk_bot" and a text_mention of
        its name, wherever they stand."""
        cuts: list[str] = []
        for kind, piece, entity in entities_of(message):
            if kind == "bot_command" and entity.get("offset") == 0:
                addressee = piece.partition("@")[2]
                if not addressee or (self.username and addressee.lower() == self.username.lower()):
                    text = text[len(piece) :] if text.startswith(piece) else text
            elif kind == "text_mention" and id_of(entity.get("user")) == self.bot_id:
                cuts.append(piece)
        for piece in cuts:
            text = text.replace(piece, " ", 1)
        if self.username:
            text = without_handle(text, self.username, " ")
        original, _ = text_of(message)
        return " ".join(text.split()) if text != original else text

    def acknowledge(self, raw: RawRequest) -> HttpReply:
        return HttpReply(200, b"", "text/plain")

    async def send(self, msg: OutboundMessage) -> SendResult:
        context = read_context(msg)
        payload: dict[str, Any] = {
            "chat_id": chat_ref(msg.conversation),
            "text": msg.text,
        }
        if "message_id" in context:
            # Quote what is answered, privately too: a staff answer may come days later.
            # allow_sending_without_reply: a deleted question still gets its answer.
            payload["reply_parameters"] = {
                "message_id": context["message_id"],
                "allow_sending_without_reply": True,
            }
        if "thread_id" in context:
            payload["message_thread_id"] = context["thread_id"]
        result, migrated = await self._send_message(payload)
        if migrated is not None:  # the group became a supergroup: the same chat, a new id
            log.info("channel=%s chat %s moved to %s", self.name, msg.conversation, migrated)
            payload["chat_id"] = migrated
            payload.pop("reply_parameters", None)  # message ids do not carry over
            result, _ = await self._send_message(payload)
        return result

    async def _send_message(self, payload: dict[str, Any]) -> tuple[SendResult, int | None]:
        token = self._token.reveal()
        reply = await call_json(
            self._http.session,
            f"{self.api_base}/bot{token}/sendMessage",
            payload,
            headers={"User-Agent": "civicdesk"},
            timeout=TIMEOUT,
            secrets=(token,),
        )
        if isinstance(reply, SendResult):
            return reply, None
        data = reply.fields
        if 200 <= reply.status < 300 and data.get("ok") is True:
            sent = as_dict(data.get("result"))
            chat = id_of(sent.get("chat")) or str(payload["chat_id"])
            message_id = sent.get("message_id")
            return SendResult.sent(f"{chat}:{message_id}" if message_id is not None else None), None
        parameters = as_dict(data.get("parameters"))
        migrated = parameters.get("migrate_to_chat_id")
        if isinstance(migrated, int) and migrated != payload["chat_id"]:
            return SendResult.failed("the group moved to a supergroup"), migrated
        return send_failure(reply, data, token), None

    async def publish(self, publication: Publication) -> SendResult:
        if self.publish_to is None:
            return SendResult.failed(
                f"channel {self.name} has no PUBLISH_TO: set it to the channel to post in",
                retryable=False,
            )
        if publication.in_doubt:
            return not_again("Telegram", publication)
        token = self._token.reveal()
        upload = picture(publication, "photo")
        reply: JsonReply | SendResult
        if upload is not None:
            fields = {"chat_id": self.publish_to, "caption": publication.text}
            reply = await post_multipart(
                self._http.session,
                f"{self.api_base}/bot{token}/sendPhoto",
                fields,
                upload,
                headers={"User-Agent": "civicdesk"},
                timeout=TIMEOUT * 3,
                secrets=(token,),
            )
        else:
            reply = await call_json(
                self._http.session,
                f"{self.api_base}/bot{token}/sendMessage",
                {"chat_id": chat_ref(self.publish_to), "text": publication.text},
                headers={"User-Agent": "civicdesk"},
                timeout=TIMEOUT,
                secrets=(token,),
            )
        if isinstance(reply, SendResult):
            return reply
        data = reply.fields
        if not (200 <= reply.status < 300 and data.get("ok") is True):
            return send_failure(reply, data, token)
        sent = as_dict(data.get("result"))
        chat = as_dict(sent.get("chat"))
        message_id = sent.get("message_id")
        chat_id = id_of(chat) or self.publish_to
        return SendResult.sent(
            f"{chat_id}:{message_id}" if message_id is not None else None,
            url=post_url(chat, message_id),
        )

    async def close(self) -> None:
        """Nothing to release: the HTTP session is the app's."""


@functools.lru_cache(maxsize=16)
def _handle_pattern(username: str) -> re.Pattern[str]:
    # "(?<!\s)": a match starts only where a run of spaces starts. "\s*@name" alone is tried at
    # every space of a run, each try scanning the rest of it: quadratic (20,000 spaces: 0.7 s).
    return re.compile(rf"(?<!\s)\s*@{re.escape(username)}\b", re.IGNORECASE)


def without_handle(text: str, username: str, replacement: str = "") -> str:
    """`text` with "@username" and the spaces before it replaced by `replacement` (by default
    removed: "/claim@civicdesk_bot" is "/claim")."""
    return _handle_pattern(username).sub(replacement, text)


SPEC = AdapterSpec(
    name="telegram",
    summary="Telegram bot through the Bot API webhook (secret_token header).",
    settings=SETTINGS,
    build=TelegramAdapter.from_config,
    api_base=API_BASE,
)
