"""Masking personal data in citizen text (bot.runtime.privacy): what is masked and how, what is left
alone, two properties over any text, and the logs of a served app with DEBUG on everywhere."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web_support import (
    SMALL_KB,
    Receiver,
    environment,
    event,
    served_app,
    signed_post,
    start_receiver,
)

from bot.runtime.logs import configure_logging
from bot.runtime.privacy import MaskingFilter, install_log_masking, mask

# Real-looking values: the ID's check digit and the cards' Luhn digit are valid.
PHONE = "13812345678"
RESIDENT_ID = "110101199003074514"
RESIDENT_ID_X = "11010119800101103X"
EMAIL = "zhang.san@example.com"
CARD = "6222020200001235"
CARD_GROUPED = "6222 0202 0000 1235"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        # Mobile numbers, as people write them.
        (f"电话{PHONE}", "电话138****5678"),
        ("138 1234 5678", "138 **** 5678"),
        ("138-1234-5678", "138-****-5678"),
        ("+86 138 1234 5678", "+86 138 **** 5678"),
        ("+8613812345678", "+86138****5678"),
        ("手机：１３８１２３４５６７８。", "手机：１３８****５６７８。"),  # full-width digits
        # Landlines and international numbers.
        ("010-12345678", "010-****5678"),
        ("(0755) 8765 4321", "(0755) **** 4321"),
        ("电话0571-8888123", "电话0571-***8123"),
        ("+44 20 7946 0958", "+44 ** **** 0958"),
        ("call +1 415 555 2671", "call +1 *** *** 2671"),
        # Resident IDs: 18 characters (X as the check), grouped, and the old 15 digits.
        (f"身份证{RESIDENT_ID}。", "身份证1101**********4514。"),
        (f"ID {RESIDENT_ID_X}", "ID 1101**********103X"),
        ("110101 19900307 4514", "1101** ******** 4514"),
        ("110101900307451", "1101********451"),
        # E-mail addresses: the domain stays, one letter of the name.
        (f"邮箱{EMAIL}谢谢", "邮箱z***@example.com谢谢"),
        ("13812345678@qq.com", "138*******@qq.com"),  # a phone as the name: both masks
        # Bank cards: Luhn-checked, grouped or not.
        (f"卡号 {CARD_GROUPED}", "卡号 **** **** **** 1235"),
        (f"卡号{CARD}", "卡号************1235"),
        ("4111-1111-1111-1111", "****-****-****-1111"),
        ("6222 0202 0000 1234 562", "**** **** **** ***4 562"),  # 19 digits
        ("+4111 1111 1111 1111", "+**** **** **** 1111"),  # not a phone number: a card
        # Several in one message.
        (
            f"我是张三，手机{PHONE}，身份证{RESIDENT_ID}，邮箱{EMAIL}，卡号{CARD_GROUPED}",
            "我是张三，手机138****5678，身份证1101**********4514，邮箱z***@example.com，"
            "卡号**** **** **** 1235",
        ),
        # Two values joined by a space: no digit of either is kept where it could join.
        (f"{PHONE} 13987654321", "138******** *******4321"),
    ],
)
def test_personal_data_is_masked_with_a_hint(text: str, masked: str) -> None:
    assert mask(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "订单号20260415000123",  # order numbers: no valid region, date, check or card prefix
        "订单号 2026041500012345",
        "订单 202604150000000012",
        "2026-04-15",
        "2026年4月15日 14:30",
        "(2026)京01民初123号",
        "（2026）沪0105民初12345号",
        "诉讼费 ¥12,345.67",
        "标的额 1380000 元",
        "1 380 000 元",
        "room 1203, 1204",
        "110101199003074515",  # an ID with the wrong check digit
        "110101199013074514",  # ... with no such month
        "4111 1111 1111 1112",  # a card that fails the Luhn check
        "12345678901",  # 11 digits, but not a mobile number
        "138****5678",  # masked already
        "timestamp 1712345678 and 1712345678123",
        "version 3.14.159265",
        "no at sign here",
        "@mention and user@ and @example.com",
    ],
)
def test_what_is_not_personal_data_is_left_alone(text: str) -> None:
    assert mask(text) == text


# --- Properties over any text -------------------------------------------------------------------

_PIECES = [
    PHONE,
    "138 1234 5678",
    "+86 138 1234 5678",
    RESIDENT_ID,
    RESIDENT_ID_X,
    CARD_GROUPED,
    CARD,
    EMAIL,
    "1@qq.com",
    "010-12345678",
    "(0755) 8765 4321",
    "+44 20 7946 0958",
    "0123",
    "4567890",
    "(2026)京01民初123号",
    "１３８１２３４５６７８",
]
_CHARACTERS = st.sampled_from([*"0123456789" * 3, *" -)+Xx*@.az京", "\u3000", "１", "８"])
_TEXTS = st.one_of(
    st.lists(
        st.one_of(st.sampled_from(_PIECES), st.text(_CHARACTERS, max_size=12)), max_size=10
    ).map("".join),
    st.text(_CHARACTERS, max_size=60),
    st.text(),
)


def _digits(text: str) -> int:
    return sum(character.isdecimal() for character in text)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TEXTS)
def test_masking_twice_changes_nothing_more(text: str) -> None:
    once = mask(text)
    assert mask(once) == once


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TEXTS)
def test_masking_never_shows_more_digits(text: str) -> None:
    assert _digits(mask(text)) <= _digits(text)


# --- The log filter -------------------------------------------------------------------------------


@pytest.fixture
def log_lines() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    logger = logging.Logger("civicdesk.test_privacy", logging.DEBUG)  # of no hierarchy
    stream = io.StringIO()
    logger.addHandler(logging.StreamHandler(stream))
    yield logger, stream


def test_the_filter_masks_messages_their_arguments_and_tracebacks(
    log_lines: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = log_lines
    assert install_log_masking(logger) == 1
    assert install_log_masking(logger) == 0  # once per handler

    logger.debug("question: %s from %r", f"my phone is {PHONE}", EMAIL)
    logger.info(f"card {CARD}")
    try:
        raise ValueError(f"cannot parse {RESIDENT_ID}")
    except ValueError:
        logger.exception("failed on %d", 7)
    logger.warning("broken format %d", PHONE)  # a malformed call still shows nothing
    logger.info("stack", stack_info=True, extra={"unused": PHONE})

    written = stream.getvalue()
    for raw in (PHONE, EMAIL, CARD, RESIDENT_ID):
        assert raw not in written
    assert "question: my phone is 138****5678 from 'z***@example.com'" in written
    assert "card ************1235" in written
    assert "ValueError: cannot parse 1101**********4514" in written


def test_records_without_personal_data_are_written_as_they_were() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "took %.3fs", (0.5,), None)

    assert MaskingFilter().filter(record)
    assert record.getMessage() == "took 0.500s"


def test_serve_installs_masking_on_the_handlers_it_configures(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = logging.getLogger()
    level = root.level
    monkeypatch.setattr(root, "handlers", [])
    try:
        configure_logging()
        (handler,) = root.handlers
    finally:
        root.setLevel(level)

    assert any(isinstance(f, MaskingFilter) for f in handler.filters)
    assert getattr(handler, "stream", None) is sys.stderr


# --- The served app's logs, DEBUG everywhere (SQL, parameters and rows included) -----------------


@pytest.fixture
def root_handlers_restored() -> Iterator[None]:
    """The filters of the root logger's handlers (pytest's among them) as they were."""
    handlers = {handler: list(handler.filters) for handler in logging.getLogger().handlers}
    yield
    for handler, filters in handlers.items():
        handler.filters[:] = filters


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    fake, server = await start_receiver()
    yield fake, str(server.make_url("/replies"))
    await server.close()


async def test_citizen_text_logged_at_debug_shows_only_masked_values(
    aiohttp_client: Any,
    receiver: tuple[Receiver, str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    root_handlers_restored: None,
) -> None:
    caplog.set_level(logging.DEBUG)
    # SQLAlchemy logs each statement with its parameters at INFO and each row read at DEBUG:
    # what an operator turns on to see what the service stores.
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")
    assert install_log_masking() >= 1  # on caplog's handlers, as serve does on its own
    fake, url = receiver
    app, _, _ = await served_app(environment(tmp_path / "civicdesk.db", url), SMALL_KB)
    client = await aiohttp_client(app)
    question = (
        f"我是张三，手机{PHONE}，身份证{RESIDENT_ID}，邮箱{EMAIL}，银行卡{CARD_GROUPED}，"
        "请问我的案件怎么样了？"
    )
    body = event("evt-pii", question, sender_name=f"张三 {PHONE}")

    response = await client.post("/webhooks/webhook", data=body, headers=signed_post(body))
    assert response.status == 200
    await fake.wait_for(1)
    await client.close()

    messages = [record.getMessage() for record in caplog.records]
    logged = "\n".join(messages) + caplog.text
    assert any("手机138****5678" in m for m in messages), "the question was not logged"
    for raw in (PHONE, RESIDENT_ID, EMAIL, CARD_GROUPED, CARD):
        assert raw not in logged
    for hint in ("138****5678", "1101**********4514", "z***@example.com", "**** **** **** 1235"):
        assert hint in logged
