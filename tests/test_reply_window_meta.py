"""WhatsApp's and Messenger's 24-hour customer-service window in the ticket fallback: a staff
answer written in the window goes out; one written after it is kept as undeliverable (nothing
sent that the platform would refuse) and sent when the citizen writes again, or goes by e-mail
to an address the citizen gave. The channels are named as a deployer might ("wa-citizens"),
their platform known only from CIVICDESK_<NAME>_ADAPTER, as `civicdesk serve` reads it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from web_support import SMALL_KB

from adapters import ADAPTERS
from bot.answering.desk import Desk
from bot.answering.knowledge import load_knowledge
from bot.config.handoff import handoff_config
from bot.config.settings import Settings, read_channels
from bot.gateway.pipeline import Handled, handle_batch
from bot.platform.adapter import rules_for
from bot.platform.messages import InboundMessage
from bot.storage.store import Store
from bot.tickets.handoff import Answer, Handoff

CASE_QUESTION = "我的案件进展到哪一步了"  # an entry that always goes to a person
CHANNELS = {"wa-citizens": "whatsapp", "page": "messenger"}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(sqlite_url: str, clock: Clock) -> AsyncIterator[Store]:
    opened = await Store.open(sqlite_url, clock=clock)
    yield opened
    await opened.close()


def handoff(email: bool = False) -> Handoff:
    """The Handoff `civicdesk serve` builds from these settings."""
    environ = {
        "CIVICDESK_CHANNELS": "wa-citizens,page,staff" + (",mail" if email else ""),
        "CIVICDESK_WA_CITIZENS_ADAPTER": "whatsapp",
        "CIVICDESK_WA_CITIZENS_VERIFY_TOKEN": "v",
        "CIVICDESK_WA_CITIZENS_APP_SECRET": "s",
        "CIVICDESK_WA_CITIZENS_ACCESS_TOKEN": "t",
        "CIVICDESK_WA_CITIZENS_PHONE_NUMBER_ID": "1122334455667",
        "CIVICDESK_PAGE_ADAPTER": "messenger",
        "CIVICDESK_PAGE_VERIFY_TOKEN": "v",
        "CIVICDESK_PAGE_APP_SECRET": "s",
        "CIVICDESK_PAGE_ACCESS_TOKEN": "t",
        "CIVICDESK_STAFF_ADAPTER": "webhook",
        "CIVICDESK_STAFF_SECRET": "x" * 32,
        "CIVICDESK_STAFF_OUTBOUND_URL": "http://127.0.0.1:9/staff",
        "CIVICDESK_STAFF_STAFF_ROOM": "duty",
        "CIVICDESK_ESCALATE_TO": "staff",
        "CIVICDESK_DEFAULT_LANGUAGE": "en",
        "CIVICDESK_KNOWLEDGE": str(SMALL_KB),
    }
    if email:
        environ.update({
            "CIVICDESK_MAIL_ADAPTER": "email",
            "CIVICDESK_MAIL_IMAP_HOST": "127.0.0.1",
            "CIVICDESK_MAIL_IMAP_USER": "desk",
            "CIVICDESK_MAIL_IMAP_PASSWORD": "pw",
            "CIVICDESK_MAIL_IMAP_TLS": "none",
            "CIVICDESK_MAIL_SMTP_HOST": "127.0.0.1",
            "CIVICDESK_MAIL_SMTP_TLS": "none",
            "CIVICDESK_MAIL_FROM": "desk@example.gov",
            "CIVICDESK_ANSWER_BY_EMAIL": "mail",
        })  # fmt: skip
    settings = Settings.from_env(environ)
    return handoff_config(settings, read_channels(environ, settings.channels, ADAPTERS))


async def citizen_writes(
    store: Store, desk: Handoff, clock: Clock, channel: str, event_id: str, text: str
) -> Handled:
    await store.accept([InboundMessage(channel, event_id, "citizen-1", "citizen-1", text, False,
                                       received_at=clock.now)])  # fmt: skip
    rows = await store.claim_inbox("w", 10, 30)
    [handled] = await handle_batch(rows, Desk(load_knowledge(SMALL_KB)), rules_for, store,
                                   handoff=desk)  # fmt: skip
    assert not isinstance(handled, Exception)
    return handled


async def sent(store: Store) -> list[tuple[str, str, str]]:
    """Replies queued since the last look (marked sent, as the delivery would)."""
    rows = await store.claim_outbox("reader", 100, 30)
    for row in rows:
        await store.mark_sent(row.id, None)
    return [(row.kind, row.channel, row.text) for row in rows]


@pytest.mark.parametrize("channel", sorted(CHANNELS))
async def test_an_answer_in_the_24_hours_goes_out_and_a_later_one_waits_for_the_citizen(
    store: Store, clock: Clock, channel: str
) -> None:
    desk = handoff()
    assert desk.reply_window(channel) == timedelta(hours=24)
    handled = await citizen_writes(store, desk, clock, channel, "m-1", CASE_QUESTION)
    reference = handled.reference
    assert reference is not None
    await sent(store)

    clock.now += timedelta(hours=25)
    late = await store.staff_command(reference, Answer("It is filed."), actor="li", handoff=desk)
    assert late.kind == "undeliverable"
    assert [channel_ for _, channel_, _ in await sent(store)] == ["staff"]  # none to the citizen

    clock.now += timedelta(days=2)  # the citizen writes again: the window opens again
    again = await citizen_writes(store, desk, clock, channel, "m-2", "any news?")
    assert again.decision == "follow-up"
    assert ("answer", channel, "It is filed.") in await sent(store)
    ticket = await store.get_ticket(reference)
    assert ticket is not None and ticket.status == "closed"


@pytest.mark.parametrize("channel", sorted(CHANNELS))
async def test_an_answer_within_the_window_is_sent_at_once(
    store: Store, clock: Clock, channel: str
) -> None:
    desk = handoff()
    handled = await citizen_writes(store, desk, clock, channel, "m-1", CASE_QUESTION)
    assert handled.reference is not None
    await sent(store)
    clock.now += timedelta(hours=23)
    outcome = await store.staff_command(handled.reference, Answer("It is filed."), actor="li",
                                        handoff=desk)  # fmt: skip
    assert outcome.kind == "answered"
    assert ("answer", channel, "It is filed.") in await sent(store)


async def test_past_the_window_the_answer_goes_to_the_address_the_citizen_gave(
    store: Store, clock: Clock, tmp_path: Path
) -> None:
    desk = handoff(email=True)
    handled = await citizen_writes(store, desk, clock, "wa-citizens", "m-1", CASE_QUESTION)
    assert handled.reference is not None
    [ack] = [text for kind, _, text in await sent(store) if kind == "ack"]
    assert "可留下电子邮箱" in ack  # WhatsApp stops taking replies: the e-mail way is offered
    await citizen_writes(store, desk, clock, "wa-citizens", "m-2", "邮箱 wang.li@example.cn")
    await sent(store)

    clock.now += timedelta(hours=30)
    outcome = await store.staff_command(handled.reference, Answer("已受理。"), actor="li",
                                        handoff=desk)  # fmt: skip
    assert outcome.kind == "answered"
    answers = [(channel, kind) for kind, channel, _ in await sent(store) if kind == "answer"]
    assert answers == [("mail", "answer")]


def test_commands_without_staff_channels_know_the_window_by_the_adapter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bot.cli.wiring import handoff_from_environment  # noqa: PLC0415

    monkeypatch.setenv("CIVICDESK_WA_CITIZENS_ADAPTER", "whatsapp")
    settings = Settings.from_env(
        {"CIVICDESK_CHANNELS": "wa-citizens,telegram", "CIVICDESK_KNOWLEDGE": str(SMALL_KB)}
    )
    desk = handoff_from_environment(settings)
    assert desk.reply_window("wa-citizens") == timedelta(hours=24)
    assert desk.reply_window("telegram") is None
