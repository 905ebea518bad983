"""WeChat Official Accounts (公众号): XML pushed to us, replies by the customer-service API.

WeChat proves each request with `signature = sha1(sorted([token, timestamp, nonce]))` in the
query. In plaintext mode that does not cover the body, so a captured query could carry another
body: `timestamp` must be recent (REPLAY_WINDOW), and safe mode (安全模式, an EncodingAESKey) is
recommended; with a key configured only encrypted messages are accepted, signed over the
ciphertext and sealed for our AppID (`adapters.wechat_crypto`). Text messages become private
questions; events (subscribe, menu clicks) and other message types are skipped. The answer to a
delivery is `success` at once; the reply follows through the customer-service API (at most 5
messages within 48 h of the user's message; `adapters.wechat_api`).
"""

from __future__ import annotations

import logging
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from adapters.http import check_fresh, same, sha1_sorted
from adapters.wechat_api import WeChatApi
from adapters.wechat_crypto import CryptoError, WeChatCrypto, aes_key
from bot.config.settings import AdapterSpec, ChannelConfig, ChannelSetting, Secret, seconds
from bot.platform.adapter import TEXT_RULES, BadRequest, HttpReply, RawRequest, Unauthorized
from bot.platform.messages import InboundMessage, OutboundMessage, SendResult

log = logging.getLogger("civicdesk.wechat")

API_BASE = "https://api.weixin.qq.com"
MAX_ID = 255
MAX_TEXT = 10_000
MAX_XML_BYTES = 128 * 1024  # a text message of MAX_TEXT characters, encrypted, is about 40 KiB
MAX_XML_DEPTH = 8  # WeChat's messages are <xml> and one level of fields


def _aes_key_text(value: str) -> str:
    aes_key(value)  # ValueError says what is wrong
    return value.strip()


SETTINGS = (
    ChannelSetting(
        "APP_ID", "The account's AppID (开发者ID, under 设置与开发 → 基本配置).", required=True
    ),
    ChannelSetting(
        "APP_SECRET",
        "The AppSecret (开发者密码); it fetches the access token replies are sent with.",
        required=True,
        secret=True,
    ),
    ChannelSetting(
        "TOKEN",
        "The Token entered under 服务器配置; WeChat signs every request with it.",
        required=True,
        secret=True,
    ),
    ChannelSetting(
        "ENCODING_AES_KEY",
        "The EncodingAESKey (43 characters) of safe mode (安全模式); when set, only "
        "encrypted messages are accepted.",
        secret=True,
        parse=_aes_key_text,
    ),
    ChannelSetting(
        "REPLAY_WINDOW",
        "Seconds a request's timestamp may differ from the server's clock.",
        default="300",
        parse=seconds,
    ),
    ChannelSetting(
        "TIMEOUT", "Seconds to wait for WeChat's API to answer.", default="10", parse=seconds
    ),
)


class WeChatAdapter:
    """One Official Account."""

    text_rules = TEXT_RULES["wechat"]

    def __init__(
        self,
        name: str,
        app_id: str,
        app_secret: Secret,
        token: Secret,
        encoding_aes_key: Secret | None = None,
        *,
        api_base: str = API_BASE,
        replay_window: float = 300.0,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.app_id = app_id
        self._token = token
        self._crypto = (
            WeChatCrypto(token.reveal(), encoding_aes_key.reveal(), app_id)
            if encoding_aes_key is not None
            else None
        )
        self.replay_window = replay_window
        self._clock = clock
        self._api = WeChatApi(name, app_id, app_secret, api_base, timeout=timeout, clock=clock)

    @classmethod
    def from_config(cls, config: ChannelConfig) -> WeChatAdapter:
        key = config.get("ENCODING_AES_KEY")
        return cls(
            config.name,
            config.get("APP_ID"),
            config.secret("APP_SECRET"),
            config.secret("TOKEN"),
            key if isinstance(key, Secret) else None,
            api_base=config.api_base or API_BASE,
            replay_window=config.get("REPLAY_WINDOW"),
            timeout=config.get("TIMEOUT"),
        )

    def attach_session(self, session: aiohttp.ClientSession) -> None:
        self._api.attach(session)

    # --- Inbound ---------------------------------------------------------------------------

    def handshake(self, raw: RawRequest) -> HttpReply | None:
        """The server-address check (GET with echostr): echo echostr when the signature holds."""
        if raw.method != "GET" or "echostr" not in raw.query:
            return None
        query = raw.query
        expected = sha1_sorted(
            self._token.reveal(), query.get("timestamp", ""), query.get("nonce", "")
        )
        if not same(query.get("signature", "").strip().lower(), expected):
            # The web layer answers 401 and counts and logs the refusal.
            raise Unauthorized(
                "signature does not match: the Token under WeChat's server configuration must "
                "equal the channel's TOKEN"
            )
        return HttpReply(200, query["echostr"].encode("utf-8"), "text/plain")

    def verify(self, raw: RawRequest) -> None:
        query = raw.query
        timestamp, nonce = query.get("timestamp", "").strip(), query.get("nonce", "").strip()
        if not timestamp or not nonce:
            raise Unauthorized(
                "timestamp and nonce are missing from the query: set WeChat's server URL "
                "(服务器地址) to this address exactly"
            )
        check_fresh(
            timestamp,
            self._clock(),
            self.replay_window,
            name="timestamp",
            fix="a replayed request, or the server's clock is wrong",
        )
        encrypted = query.get("encrypt_type", "").strip().lower() == "aes"
        if self._crypto is None:
            if encrypted:
                raise Unauthorized(
                    "the request is encrypted (safe or compatible mode): set the channel's "
                    "ENCODING_AES_KEY to the account's EncodingAESKey"
                )
            expected = sha1_sorted(self._token.reveal(), timestamp, nonce)
            if not same(query.get("signature", "").strip().lower(), expected):
                raise Unauthorized(
                    "signature does not match: sha1 of the sorted Token, timestamp and nonce; "
                    "check that TOKEN equals the Token under WeChat's server configuration"
                )
            return
        if not encrypted:
            raise Unauthorized(
                "the request is not encrypted, but the channel has an ENCODING_AES_KEY: set "
                "WeChat's message encryption (消息加解密方式) to safe mode (安全模式)"
            )
        self._open(raw)

    def _open(self, raw: RawRequest) -> bytes:
        """The plaintext XML of a safe-mode request; Unauthorized unless it is ours."""
        assert self._crypto is not None
        try:
            sealed = _fields(raw.body).get("Encrypt", "")
        except BadRequest as exc:
            raise Unauthorized(
                f"an encrypted request must be WeChat's XML envelope: {exc}"
            ) from None
        if not sealed:
            raise Unauthorized("the encrypted request has no Encrypt element")
        query = raw.query
        if not self._crypto.check_signature(
            query.get("msg_signature", ""),
            query.get("timestamp", "").strip(),
            query.get("nonce", "").strip(),
            sealed,
        ):
            raise Unauthorized(
                "msg_signature does not match: sha1 of the sorted Token, timestamp, nonce and "
                "Encrypt; check that TOKEN equals the Token under WeChat's server configuration"
            )
        try:
            return self._crypto.decrypt(sealed)
        except CryptoError as exc:
            raise Unauthorized(
                f"cannot open the message ({exc}): check ENCODING_AES_KEY and APP_ID"
            ) from None

    def parse(self, raw: RawRequest) -> list[InboundMessage]:
        body = self._open(raw) if self._crypto is not None else raw.body
        fields = _fields(body)
        kind = fields.get("MsgType", "")
        if kind == "event" or not kind:
            # Subscribe, scan, menu clicks, the periodic LOCATION report...: nobody asked.
            log.debug("channel=%s skipped Event=%s", self.name, fields.get("Event"))
            return []
        openid = _required(fields, "FromUserName", MAX_ID)
        text, media = _content(kind, fields)
        if media == "unsupported" and not fields.get("MsgId"):
            # A kind newer than this adapter, without a MsgId: the sender and the second it
            # was sent stand for it (WeChat's advice for deduplicating events).
            platform_id = f"{openid}:{fields.get('CreateTime', '')}:{kind}"
        else:
            platform_id = _required(fields, "MsgId", MAX_ID)
        return [
            InboundMessage(
                channel=self.name,
                platform_id=platform_id[:MAX_ID],
                conversation=openid,
                sender=openid,
                text=text,
                public=False,
                received_at=datetime.fromtimestamp(self._clock(), UTC),
                raw=fields,
                media=media,
            )
        ]

    def acknowledge(self, raw: RawRequest) -> HttpReply:
        return HttpReply(200, b"success", "text/plain")

    # --- Replies -----------------------------------------------------------------------------

    async def send(self, msg: OutboundMessage) -> SendResult:
        return await self._api.send_text(msg.recipient or msg.conversation, msg.text)

    async def close(self) -> None:
        """Nothing to release: the HTTP session is the app's."""


class _XmlRefused(Exception):
    """The document is deeper than MAX_XML_DEPTH (raised from inside the parser)."""


class _ShallowTreeBuilder(ET.TreeBuilder):
    """ElementTree's builder, refusing elements nested deeper than MAX_XML_DEPTH."""

    def __init__(self) -> None:
        super().__init__()
        self._depth = 0

    def start(self, tag: Any, attrs: dict[Any, Any]) -> ET.Element:
        self._depth += 1
        if self._depth > MAX_XML_DEPTH:
            raise _XmlRefused
        return super().start(tag, attrs)

    def end(self, tag: Any) -> ET.Element:
        self._depth -= 1
        return super().end(tag)


# MsgType → InboundMessage.media (the official account's "receiving ordinary messages" guide).
MEDIA_TYPES = {
    "image": "image",
    "voice": "audio",
    "video": "video",
    "shortvideo": "video",
    "location": "location",
    "link": "file",  # a shared article: its title and link, which the desk does not read
    "file": "file",
}
# What WeChat puts in Content when the account cannot show what the citizen sent (a red packet,
# a mini program card, a newer kind): not the citizen's words.
_PLACEHOLDER = re.compile(r"^[【\[]?收到不支持的消息类型[，,]?\s*暂无法显示[】\]]?$")


def _content(kind: str, fields: Mapping[str, str]) -> tuple[str, str | None]:
    """(text, media kind) of a message: a text's Content; a voice message's speech recognition
    when the account has it on (`Recognition`); "" with the kind for other media and for kinds
    newer than this adapter ("unsupported")."""
    if kind == "text":
        content = _required(fields, "Content", MAX_TEXT, allow_empty=True)
        if _PLACEHOLDER.match(content.strip()):
            return "", "unsupported"
        return content, None
    recognition = fields.get("Recognition", "").strip()[:MAX_TEXT] if kind == "voice" else ""
    return recognition, MEDIA_TYPES.get(kind, "unsupported")


def _fields(body: bytes) -> dict[str, str]:
    """The top-level elements of WeChat's `<xml>` message as text.

    Bounded before and while parsing: at most MAX_XML_BYTES, elements at most MAX_XML_DEPTH
    deep, and no DTD at all (defusedxml refuses it in every encoding: a UTF-16 document hid its
    <!ENTITY> from a search of the bytes, and its entities were expanded)."""
    if len(body) > MAX_XML_BYTES:
        raise BadRequest(f"the XML is {len(body)} bytes long: at most {MAX_XML_BYTES}")
    parser = DefusedXMLParser(target=_ShallowTreeBuilder(), forbid_dtd=True)
    try:
        parser.feed(body)
        root = parser.close()
    except DefusedXmlException:
        raise BadRequest("the XML must not declare a DTD or entities") from None
    except _XmlRefused:
        raise BadRequest(f"the XML nests deeper than {MAX_XML_DEPTH} elements") from None
    except ET.ParseError as exc:
        raise BadRequest(f"the body is not valid XML ({exc})") from None
    except ValueError as exc:  # expat: "multi-byte encodings are not supported" (GB18030)
        raise BadRequest(f"the XML cannot be read ({exc}): send it in UTF-8") from None
    if root.tag != "xml":
        raise BadRequest(f"the root element must be <xml>, not <{root.tag}>")
    return {child.tag: (child.text or "").strip() for child in root}


def _required(fields: Mapping[str, str], key: str, limit: int, *, allow_empty: bool = False) -> str:
    value = fields.get(key)
    if value is None or (not value and not allow_empty):
        raise BadRequest(f"<{key}> is missing from the message")
    if len(value) > limit:
        raise BadRequest(f"<{key}> is {len(value)} characters long: at most {limit}")
    return value


SPEC = AdapterSpec(
    name="wechat",
    summary="WeChat Official Account: XML push (plaintext or safe mode), customer-service replies.",
    settings=SETTINGS,
    build=WeChatAdapter.from_config,
    api_base=API_BASE,
)
