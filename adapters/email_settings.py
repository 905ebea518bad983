"""The e-mail channel's settings (CIVICDESK_<NAME>_<KEY>), kept apart from the adapter."""

from __future__ import annotations

from collections.abc import Callable
from email.utils import parseaddr

from adapters.email_imap import TLS_MODES
from bot.config.settings import ChannelSetting, seconds

SMTP_TLS_MODES = ("implicit", "starttls", "none")
SMTP_PORTS = {"implicit": 465, "starttls": 587, "none": 25}


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        lowered = value.strip().lower()
        if lowered not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return lowered

    return parse


def _address(value: str) -> str:
    _, address = parseaddr(value)
    if "@" not in address or any(c in address for c in " \r\n<>"):
        raise ValueError("must be an e-mail address such as desk@example.gov.cn")
    return value.strip()


def _port(value: str) -> int:
    number = int(value)
    if not 1 <= number <= 65535:
        raise ValueError("must be a port number from 1 to 65535")
    return number


SETTINGS = (
    ChannelSetting("IMAP_HOST", "IMAP server of the mailbox citizens write to.", required=True),
    ChannelSetting("IMAP_PORT", "IMAP port.", default="993", parse=_port),
    ChannelSetting("IMAP_USER", "IMAP login name (often the address).", required=True),
    ChannelSetting("IMAP_PASSWORD", "IMAP password or app password.", required=True, secret=True),
    ChannelSetting(
        "IMAP_TLS",
        "implicit (TLS from the first byte, port 993) or none (only for a loopback server).",
        default="implicit",
        parse=_choice(*TLS_MODES),
    ),
    ChannelSetting("MAILBOX", "The folder polled for questions.", default="INBOX"),
    ChannelSetting(
        "POLL_INTERVAL", "Seconds between two looks into the mailbox.", default="60", parse=seconds
    ),
    ChannelSetting("SMTP_HOST", "SMTP submission server for the answers.", required=True),
    ChannelSetting(
        "SMTP_PORT", "SMTP port; default 465 (implicit), 587 (starttls), 25 (none).", parse=_port
    ),
    ChannelSetting("SMTP_USER", "SMTP login name; none: send without logging in."),
    ChannelSetting("SMTP_PASSWORD", "SMTP password or app password.", secret=True),
    ChannelSetting(
        "SMTP_TLS",
        "implicit (port 465), starttls (port 587) or none (only for a loopback server).",
        default="implicit",
        parse=_choice(*SMTP_TLS_MODES),
    ),
    ChannelSetting(
        "FROM",
        "The channel's address, answers come from it ('Name <desk@example.gov.cn>' works too).",
        required=True,
        parse=_address,
    ),
    ChannelSetting(
        "PUBLISH_TO",
        "The mailing list address announcements are sent to (its subscribers get them).",
        parse=_address,
    ),
    ChannelSetting(
        "TIMEOUT", "Seconds to wait for the IMAP or SMTP server.", default="30", parse=seconds
    ),
)
