"""The /chat page in a real headless Chromium (Debian's package, driven by Playwright): a citizen
types a question and the answer appears. A screenshot is kept in tests/artifacts/chat.png."""

from __future__ import annotations

import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from playwright.async_api import async_playwright, expect
from web_support import SAMPLE_KB, environment, served_app, start_receiver

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"
# Flags for a sandboxed CI machine with no network beyond loopback and no GPU.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="Debian's chromium is not installed (apt-get install chromium; .ci/run does it)",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[str]:
    """civicdesk on a real port with the sample knowledge base, as `civicdesk serve` runs it."""
    _receiver, receiver_server = await start_receiver()
    app, _, _ = await served_app(
        environment(tmp_path / "civicdesk.db", str(receiver_server.make_url("/replies"))),
        SAMPLE_KB,
    )
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()
    await receiver_server.close()


async def test_a_citizen_asks_on_the_chat_page_and_reads_the_answer(served: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 800, "height": 600}, locale="zh-CN")
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on(
                "console",
                lambda message: errors.append(message.text) if message.type == "error" else None,
            )

            await page.goto(f"{served}/chat")
            await expect(page).to_have_title("在线咨询 · Online inquiry")
            question = page.get_by_label("您的问题 Your question")
            await question.fill("诉讼费怎么交")
            await page.get_by_role("button", name="发送 Send").click()

            mine = page.locator(".msg.mine")
            answer = page.locator(".msg.bot")
            await expect(mine).to_contain_text("诉讼费怎么交")
            await expect(answer).to_contain_text("诉讼服务中心", timeout=15_000)
            await expect(answer.get_by_role("link")).to_have_attribute(
                "href", "https://court.example.gov/fees/pay"
            )
            await expect(question).to_have_value("")

            # Markup typed by a user is shown as text, never run or rendered.
            await question.fill("<img src=x onerror=alert(1)>你好")
            await question.press("Enter")
            await expect(mine.nth(1)).to_contain_text("<img src=x onerror=alert(1)>你好")
            await expect(answer.nth(1)).to_be_visible(timeout=15_000)
            assert await page.locator(".log img").count() == 0

            await page.screenshot(path=str(ARTIFACTS / "chat.png"), full_page=True)
            assert errors == []
        finally:
            await browser.close()


async def test_every_message_of_a_conversation_is_answered_and_no_spinner_is_left(
    served: str,
) -> None:
    """Issue 12, finding 1: after a question went to staff, the next one ("court fee") got no
    reply and the page showed "Replying…" for ever."""
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 800, "height": 900}, locale="en-GB")
            await page.goto(f"{served}/chat")
            question = page.get_by_label("您的问题 Your question")
            answers = page.locator(".msg.bot")
            said = ["Hello", "can I bring my dog to the hearing?", "court fee"]
            for count, text in enumerate(said, 1):
                await question.fill(text)
                await question.press("Enter")
                await expect(page.locator(".msg.mine").nth(count - 1)).to_contain_text(text)
                await expect(answers).to_have_count(count, timeout=15_000)
            await expect(answers.nth(0)).to_contain_text("How can we help")
            await expect(answers.nth(1)).to_contain_text("ref.")  # the ticket's code
            await expect(answers.nth(2)).to_contain_text("court fee")  # the FAQ still answers
            await expect(page.locator("#status")).to_have_text("")  # no "Replying…" left
            await page.screenshot(path=str(ARTIFACTS / "conversation.png"), full_page=True)
            assert await answers.count() == len(said)
            assert "Replying" not in await page.locator("#status").inner_text()
        finally:
            await browser.close()
