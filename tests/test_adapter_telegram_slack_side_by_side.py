"""The `.env` of docs/platforms.md for a Telegram bot and a Slack app side by side, run as
written against fake Telegram and Slack APIs (only the API_BASE lines added): each question is
answered on the platform it was asked on, and nowhere else."""

from __future__ import annotations

import io
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from dotenv import dotenv_values
from fake_telegram_slack import fake_api, settled, slack_ok, telegram_ok
from test_adapter_slack import slack_signature
from web_support import ROOT, SMALL_KB, count_rows, served_app

Client = TestClient[web.Request, web.Application]

# Exactly the block of docs/platforms.md's "Telegram and Slack side by side".
README_ENV = """\
# .env: one Telegram bot and one Slack app, served side by side
CIVICDESK_CHANNELS=telegram,slack

# Telegram: the token from @BotFather, a secret of your own for setWebhook, the bot's username
CIVICDESK_TELEGRAM_TOKEN=123456789:AAE-replace-with-the-token-from-BotFather
CIVICDESK_TELEGRAM_SECRET_TOKEN=replace-with-openssl-rand-hex-32
CIVICDESK_TELEGRAM_BOT_USERNAME=civicdesk_bot

# Slack: Basic Information → Signing Secret; OAuth & Permissions → Bot User OAuth Token
CIVICDESK_SLACK_SIGNING_SECRET=replace-with-the-signing-secret
CIVICDESK_SLACK_BOT_TOKEN=xoxb-replace-with-the-bot-token
"""

_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def test_the_readme_shows_this_env() -> None:
    readme = (ROOT / "docs" / "platforms.md").read_text(encoding="utf-8")
    blocks = [b for b in _FENCE.findall(readme) if "CIVICDESK_CHANNELS=telegram,slack" in b]
    if not blocks:
        pytest.skip("docs/platforms.md has no Telegram-and-Slack .env yet")
    assert README_ENV in blocks


def telegram_update(text: str) -> dict[str, Any]:
    return {
        "update_id": 639974090,
        "message": {
            "message_id": 1301,
            "from": {"id": 639348, "is_bot": False, "first_name": "Fabio", "language_code": "zh"},
            "chat": {"id": 639348, "first_name": "Fabio", "type": "private"},
            "date": 1603834922,
            "text": text,
        },
    }


def slack_mention(text: str) -> dict[str, Any]:
    return {
        "type": "event_callback",
        "team_id": "T111",
        "api_app_id": "A111",
        "event_id": "Ev0PV52K25",
        "event_time": 1595926230,
        "event": {
            "type": "app_mention",
            "user": "W222",
            "text": f"<@U0APP> {text}",
            "ts": "1595926230.009600",
            "channel": "C111",
            "event_ts": "1595926230.009600",
        },
        "authorizations": [{"team_id": "T111", "user_id": "U0APP", "is_bot": True}],
    }


async def test_a_telegram_bot_and_a_slack_app_answer_side_by_side(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    env = {k: v or "" for k, v in dotenv_values(stream=io.StringIO(README_ENV)).items()}
    database = tmp_path / "d.db"
    async with fake_api(telegram_ok) as telegram, fake_api(slack_ok, prefix="/api") as slack:
        environ = {
            **env,
            "CIVICDESK_TELEGRAM_API_BASE": telegram.url,
            "CIVICDESK_SLACK_API_BASE": slack.url,
            "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        }
        app, adapters, _ = await served_app(environ, SMALL_KB)
        client: Client = await aiohttp_client(app)
        assert sorted(adapters) == ["slack", "telegram"]

        asked_on_telegram = await client.post(
            "/webhooks/telegram",
            json=telegram_update("诉讼费在哪里交"),
            headers={"X-Telegram-Bot-Api-Secret-Token": env["CIVICDESK_TELEGRAM_SECRET_TOKEN"]},
        )
        body = json.dumps(slack_mention("Where can I pay litigation costs?")).encode()
        timestamp = str(int(time.time()))
        asked_on_slack = await client.post(
            "/webhooks/slack",
            data=body,
            headers={
                "Content-Type": "application/json",
                "X-Slack-Request-Timestamp": timestamp,
                "X-Slack-Signature": slack_signature(
                    env["CIVICDESK_SLACK_SIGNING_SECRET"], timestamp, body
                ),
            },
        )

        assert asked_on_telegram.status == 200
        assert asked_on_slack.status == 200
        (on_telegram,) = await telegram.wait_for(1)
        (on_slack,) = await slack.wait_for(1)
        await settled(database)

    # Telegram: answered privately, in Chinese, with the token of the .env in the method URL.
    assert on_telegram.path == f"/bot{env['CIVICDESK_TELEGRAM_TOKEN']}/sendMessage"
    assert on_telegram.body["chat_id"] == 639348
    assert on_telegram.body["text"].startswith("可通过网上缴费，或到诉讼服务中心窗口缴纳。")
    assert on_telegram.body["reply_parameters"]["message_id"] == 1301  # the question, quoted
    # Slack: answered in the thread of the mention, in English, with the .env's bot token.
    assert on_slack.path == "/api/chat.postMessage"
    assert on_slack.headers["Authorization"] == f"Bearer {env['CIVICDESK_SLACK_BOT_TOKEN']}"
    assert on_slack.body["channel"] == "C111"
    assert on_slack.body["thread_ts"] == "1595926230.009600"
    assert on_slack.body["text"].startswith(
        "<@W222> Pay online or at the litigation service centre."
    )
    # Each platform got its own answer and nothing else.
    assert (len(telegram.calls), len(slack.calls)) == (1, 1)
    assert count_rows(database, "inbox") == 2
