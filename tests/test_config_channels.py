"""Channels as a deployer configures them: CIVICDESK_CHANNELS and CIVICDESK_<NAME>_<KEY>, with
errors that name the variable and say what it should hold, and secrets that never show."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from adapters import ADAPTERS
from adapters.webchat import WebchatAdapter
from adapters.webhook import WebhookAdapter
from bot.cli.serve import worker_config
from bot.config.settings import (
    AdapterSpec,
    ChannelConfig,
    ConfigError,
    Secret,
    Settings,
    read_channels,
    redacted_url,
)
from bot.platform.adapter import Adapter

WEBHOOK = {
    "CIVICDESK_CHANNELS": "webchat,webhook",
    "CIVICDESK_WEBHOOK_SECRET": "s3cret-value",
    "CIVICDESK_WEBHOOK_OUTBOUND_URL": "https://crm.example.org/civicdesk",
}


def channels(environ: dict[str, str]):  # type: ignore[no-untyped-def]
    settings = Settings.from_env(environ)
    return read_channels(environ, settings.channels, ADAPTERS)


def test_the_web_chat_is_on_with_no_configuration() -> None:
    (chat,) = channels({})

    assert chat.name == "webchat"
    assert isinstance(ADAPTERS[chat.adapter].build(chat), WebchatAdapter)


def test_a_webhook_channel_reads_its_own_keys() -> None:
    _chat, hook = channels(WEBHOOK)

    assert (hook.name, hook.adapter) == ("webhook", "webhook")
    assert hook.get("OUTBOUND_URL") == "https://crm.example.org/civicdesk"
    assert hook.secret("SECRET").reveal() == "s3cret-value"
    assert hook.get("REPLAY_WINDOW") == 300.0
    adapter = ADAPTERS[hook.adapter].build(hook)
    assert isinstance(adapter, WebhookAdapter)
    assert adapter.name == "webhook"


def test_two_accounts_of_one_adapter_side_by_side() -> None:
    environ = {
        "CIVICDESK_CHANNELS": "crm, city-portal",
        "CIVICDESK_CRM_ADAPTER": "webhook",
        "CIVICDESK_CRM_SECRET": "one",
        "CIVICDESK_CRM_OUTBOUND_URL": "http://127.0.0.1:9000/out",
        "CIVICDESK_CITY_PORTAL_ADAPTER": "webhook",
        "CIVICDESK_CITY_PORTAL_SECRET": "two",
        "CIVICDESK_CITY_PORTAL_OUTBOUND_URL": "http://127.0.0.1:9001/out",
        "CIVICDESK_CITY_PORTAL_RATE": "5",
    }

    crm, portal = channels(environ)

    assert (crm.name, portal.name) == ("crm", "city-portal")
    assert crm.secret("SECRET").reveal() == "one"
    assert portal.secret("SECRET").reveal() == "two"
    assert crm.rate is None and portal.rate == 5.0


def test_an_unknown_adapter_names_the_variable_and_the_choices() -> None:
    with pytest.raises(ConfigError) as error:
        channels({"CIVICDESK_CHANNELS": "crm", "CIVICDESK_CRM_ADAPTER": "webhooks"})

    message = str(error.value)
    assert "CIVICDESK_CRM_ADAPTER" in message
    assert "webhook" in message and "webchat" in message


def test_a_channel_named_after_no_adapter_says_to_set_its_adapter() -> None:
    with pytest.raises(ConfigError, match="CIVICDESK_CRM_ADAPTER"):
        channels({"CIVICDESK_CHANNELS": "crm"})


def test_a_missing_required_setting_names_the_variable_and_what_it_holds() -> None:
    environ = dict(WEBHOOK)
    del environ["CIVICDESK_WEBHOOK_SECRET"]

    with pytest.raises(ConfigError) as error:
        channels(environ)

    assert "CIVICDESK_WEBHOOK_SECRET is missing" in str(error.value)
    assert "secret" in str(error.value).lower()


def test_a_misspelt_key_is_an_error_with_a_suggestion() -> None:
    environ = {**WEBHOOK, "CIVICDESK_WEBHOOK_OUTBOUND_ULR": "https://x.example"}

    with pytest.raises(ConfigError, match="did you mean CIVICDESK_WEBHOOK_OUTBOUND_URL"):
        channels(environ)


def test_keys_of_a_channel_with_a_longer_name_are_not_mistaken_for_typos() -> None:
    environ = {
        **WEBHOOK,
        "CIVICDESK_CHANNELS": "webhook,webhook-two",
        "CIVICDESK_WEBHOOK_TWO_ADAPTER": "webhook",
        "CIVICDESK_WEBHOOK_TWO_SECRET": "x",
        "CIVICDESK_WEBHOOK_TWO_OUTBOUND_URL": "https://two.example",
    }

    assert [c.name for c in channels(environ)] == ["webhook", "webhook-two"]


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("CIVICDESK_WEBHOOK_OUTBOUND_URL", "crm.example.org/in", "http:// or https://"),
        ("CIVICDESK_WEBHOOK_REPLAY_WINDOW", "-5", "seconds above 0"),
        ("CIVICDESK_WEBHOOK_RATE", "fast", "per second"),
    ],
)
def test_a_malformed_channel_value_names_the_variable(
    variable: str, value: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as error:
        channels({**WEBHOOK, variable: value})

    assert variable in str(error.value)
    assert expected in str(error.value)


def test_a_required_api_base_names_the_variable_and_what_it_holds() -> None:
    def build(config: ChannelConfig) -> Adapter:
        raise AssertionError("not built: the configuration is refused first")

    spec = AdapterSpec("fedi", "A test adapter.", (), build, api_base_required=True)
    registry = {"fedi": spec}
    environ = {"CIVICDESK_CHANNELS": "fedi"}

    with pytest.raises(ConfigError) as error:
        read_channels(environ, ["fedi"], registry)
    message = str(error.value)
    assert message.startswith("CIVICDESK_FEDI_API_BASE is missing (channel 'fedi')")
    assert "https://" in message and "server the account is on" in message

    environ["CIVICDESK_FEDI_API_BASE"] = "https://social.example.gov/"
    (channel,) = read_channels(environ, ["fedi"], registry)
    assert channel.api_base == "https://social.example.gov"


def test_api_base_is_refused_for_an_adapter_that_calls_no_platform_api() -> None:
    with pytest.raises(ConfigError, match="CIVICDESK_WEBHOOK_API_BASE"):
        channels({**WEBHOOK, "CIVICDESK_WEBHOOK_API_BASE": "https://api.example"})


@pytest.mark.parametrize(
    "value", ["Web Chat", "webchat,WEBCHAT", "a-b,a_b", "-x", "x" * 65, "中文"]
)
def test_bad_channel_lists_are_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="CIVICDESK_CHANNELS"):
        Settings.from_env({"CIVICDESK_CHANNELS": value})


def test_a_secret_never_shows_in_a_repr_or_an_error() -> None:
    (_, hook) = channels(WEBHOOK)
    adapter = ADAPTERS["webhook"].build(hook)

    assert "s3cret-value" not in repr(hook)
    assert "s3cret-value" not in str(hook.values)
    assert "s3cret-value" not in repr(vars(adapter))
    assert repr(Secret("x")) == "Secret('********')"


def test_a_database_password_never_shows() -> None:
    url = "postgresql+asyncpg://civic:pa55word@db.internal/civicdesk"
    settings = Settings.from_env({"DATABASE_URL": url})

    assert settings.database_url == url
    assert "pa55word" not in repr(settings)
    assert redacted_url(url) == "postgresql+asyncpg://civic:***@db.internal/civicdesk"


def test_server_defaults_and_the_procfile_port() -> None:
    default = Settings.from_env({})
    assert (default.host, default.port) == ("127.0.0.1", 8080)
    assert default.database_url == "sqlite+aiosqlite:///civicdesk.db"
    assert default.max_body_bytes == 1024 * 1024

    platform = Settings.from_env({"PORT": "5000"})
    assert (platform.host, platform.port) == ("0.0.0.0", 5000)

    explicit = Settings.from_env({"PORT": "5000", "CIVICDESK_PORT": "8081"})
    assert (explicit.host, explicit.port) == ("127.0.0.1", 8081)

    pinned_host = Settings.from_env({"PORT": "5000", "CIVICDESK_HOST": "10.0.0.5"})
    assert (pinned_host.host, pinned_host.port) == ("10.0.0.5", 5000)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CIVICDESK_PORT", "http"),
        ("CIVICDESK_PORT", "70000"),
        ("PORT", "-1"),
        ("CIVICDESK_MAX_BODY_BYTES", "0"),
        ("CIVICDESK_MAX_ATTEMPTS", "0"),
        ("CIVICDESK_LEASE_SECONDS", "0"),
        ("CIVICDESK_POLL_INTERVAL", "nan"),
        ("CIVICDESK_RATE_PER_SECOND", "-1"),
        ("DATABASE_URL", "civicdesk.db"),
    ],
)
def test_malformed_server_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_worker_settings_reach_the_workers() -> None:
    environ = {
        **WEBHOOK,
        "CIVICDESK_MAX_ATTEMPTS": "3",
        "CIVICDESK_LEASE_SECONDS": "45",
        "CIVICDESK_POLL_INTERVAL": "0.5",
        "CIVICDESK_RATE_PER_SECOND": "0",
        "CIVICDESK_WEBHOOK_RATE": "2.5",
        "CIVICDESK_BUSINESS_HOURS": "mon-fri 08:00-16:00",
        "CIVICDESK_ANSWER_TARGET": "3d",
    }
    settings = Settings.from_env(environ)

    config = worker_config(settings, read_channels(environ, settings.channels, ADAPTERS))

    assert (config.max_attempts, config.lease_seconds, config.poll_interval) == (3, 45.0, 0.5)
    assert config.rate_per_second == 0.0
    assert dict(config.channel_rates) == {"webhook": 2.5}
    # Three working days of eight hours: a Monday 10:00 question is due Thursday 10:00.
    monday = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert config.handoff.due(monday) == monday + timedelta(days=3)


def test_a_malformed_holiday_list_names_the_variable_and_what_to_write() -> None:
    with pytest.raises(ConfigError, match=r"CIVICDESK_HOLIDAYS.*YYYY-MM-DD"):
        Settings.from_env({"CIVICDESK_HOLIDAYS": "2026-13-01"})


def test_a_staff_channel_must_be_a_configured_channel_with_a_room() -> None:
    with pytest.raises(ConfigError, match="CIVICDESK_ESCALATE_TO names slack-staff"):
        Settings.from_env({**WEBHOOK, "CIVICDESK_ESCALATE_TO": "slack-staff"})
    environ = {
        **WEBHOOK,
        "CIVICDESK_CHANNELS": "webhook,telegram",
        "CIVICDESK_ESCALATE_TO": "telegram",
        "CIVICDESK_TELEGRAM_TOKEN": "1:x",
        "CIVICDESK_TELEGRAM_SECRET_TOKEN": "s",
    }
    settings = Settings.from_env(environ)
    with pytest.raises(ConfigError, match="CIVICDESK_TELEGRAM_STAFF_ROOM is missing"):
        worker_config(settings, read_channels(environ, settings.channels, ADAPTERS))


def test_a_lease_shorter_than_a_delivery_is_refused() -> None:
    settings = Settings.from_env({"CIVICDESK_LEASE_SECONDS": "5"})

    with pytest.raises(ConfigError, match="CIVICDESK_LEASE_SECONDS"):
        worker_config(settings, ())


MAIL = {
    "CIVICDESK_MAIL_ADAPTER": "email",
    "CIVICDESK_MAIL_IMAP_HOST": "imap.example.gov",
    "CIVICDESK_MAIL_IMAP_USER": "desk@example.gov",
    "CIVICDESK_MAIL_IMAP_PASSWORD": "imap-secret",
    "CIVICDESK_MAIL_SMTP_HOST": "smtp.example.gov",
    "CIVICDESK_MAIL_FROM": "desk@example.gov",
}


def test_answers_past_a_reply_window_leave_from_the_named_citizen_email_channel() -> None:
    environ = {**WEBHOOK, **MAIL, "CIVICDESK_CHANNELS": "webhook,mail",
               "CIVICDESK_ANSWER_BY_EMAIL": "mail"}  # fmt: skip
    settings = Settings.from_env(environ)
    config = worker_config(settings, read_channels(environ, settings.channels, ADAPTERS))
    assert config.handoff.email_fallback == "mail"
    assert worker_config(Settings.from_env(WEBHOOK), ()).handoff.email_fallback is None


def test_an_answer_by_email_channel_must_be_a_configured_citizen_email_channel() -> None:
    with pytest.raises(ConfigError, match="CIVICDESK_ANSWER_BY_EMAIL names mail, which"):
        Settings.from_env({**WEBHOOK, "CIVICDESK_ANSWER_BY_EMAIL": "mail"})
    staff = {**WEBHOOK, **MAIL, "CIVICDESK_CHANNELS": "webhook,mail",
             "CIVICDESK_ESCALATE_TO": "mail", "CIVICDESK_ANSWER_BY_EMAIL": "mail"}  # fmt: skip
    with pytest.raises(ConfigError, match="a staff channel"):
        Settings.from_env(staff)
    environ = {**WEBHOOK, "CIVICDESK_ANSWER_BY_EMAIL": "webhook"}
    settings = Settings.from_env(environ)
    with pytest.raises(ConfigError, match="adapter is webhook: name a channel with the email"):
        worker_config(settings, read_channels(environ, settings.channels, ADAPTERS))
