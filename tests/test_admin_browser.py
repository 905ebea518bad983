"""/admin in a real headless Chromium (Debian's package, driven by Playwright) against a served
civicdesk with seeded data: an operator signs in, filters the escalation list, opens a ticket and
answers it (the citizen's end of the webhook channel receives the answer), retries a dead letter
(it arrives too), and opens the report. Citizen markup shows as text and runs nothing.

Screenshots of a ticket page and of the report page are written to $CIVICDESK_SCREENSHOTS
(default tests/artifacts/): admin-ticket.png, admin-report.png.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from admin_support import (
    CASE_QUESTION,
    DEAD_ERROR,
    MARKUP,
    OPERATOR,
    OPERATOR_PASSWORD,
    Seeded,
    seed,
)
from aiohttp import web
from playwright.async_api import Page, async_playwright, expect
from test_chat_browser import CHROMIUM, CHROMIUM_ARGS, free_port
from web_support import SAMPLE_KB, Receiver, environment, served_app, start_receiver

SCREENSHOTS = Path(os.environ.get("CIVICDESK_SCREENSHOTS") or Path(__file__).parent / "artifacts")
ANSWER = "您的案件已于11月20日立案，承办法官会在五个工作日内联系您。"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="Debian's chromium is not installed (apt-get install chromium; .ci/run does it)",
)


@dataclass
class Served:
    url: str
    citizen: Receiver  # the other end of the webhook channel: where citizens' replies arrive
    seeded: Seeded


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    receiver, receiver_server = await start_receiver()
    database = tmp_path / "civicdesk.db"
    seeded = await seed(database, SAMPLE_KB)
    app, _, _ = await served_app(
        environment(database, str(receiver_server.make_url("/replies"))), SAMPLE_KB
    )
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield Served(f"http://127.0.0.1:{port}", receiver, seeded)
    await runner.cleanup()
    await receiver_server.close()


async def sign_in(page: Page, url: str) -> None:
    await page.goto(f"{url}/admin/escalations")
    await expect(page).to_have_url(f"{url}/admin/signin?next=/admin/escalations")
    await page.get_by_label("姓名 Name").fill(OPERATOR)
    await page.get_by_label("密码 Password").fill(OPERATOR_PASSWORD)
    await page.get_by_role("button", name="登录 Sign in").click()
    await expect(page).to_have_url(f"{url}/admin/escalations")


async def test_an_operator_answers_a_ticket_retries_a_dead_letter_and_reads_the_report(
    served: Served,
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    url, citizen = served.url, served.citizen
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1200, "height": 900}, locale="zh-CN")
            errors: list[str] = []
            dialogs: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on(
                "console",
                lambda message: errors.append(message.text) if message.type == "error" else None,
            )
            page.on("dialog", lambda dialog: dialogs.append(dialog.message))

            await sign_in(page, url)

            # Filter: open tickets whose text mentions the case.
            await page.locator("select[name=status]").select_option("open")
            await page.locator("input[name=q]").fill("案件进展")
            await page.get_by_role("button", name="筛选 Filter").click()
            rows = page.locator("table.list tbody tr")
            await expect(rows).to_have_count(1)
            await expect(rows).to_contain_text(CASE_QUESTION)
            reference = served.seeded.references["case-1"]

            # The ticket, answered from its page.
            await rows.get_by_role("link", name=reference).click()
            await expect(page.locator("blockquote.question")).to_have_text(CASE_QUESTION)
            await page.get_by_label("答复内容").fill(ANSWER)
            await page.get_by_role("button", name="发送答复 Send answer").click()
            await expect(page.locator(".flash")).to_contain_text("Answer sent")
            await expect(page.locator("table.history")).to_contain_text("answered")
            replies = await citizen.wait_for(1)
            assert replies[0]["text"] == ANSWER and replies[0]["conversation"] == "case-1"
            await page.reload()  # the answer's delivery shows as sent
            await expect(page.locator("table.list").last).to_contain_text("sent")
            await page.screenshot(path=str(SCREENSHOTS / "admin-ticket.png"), full_page=True)

            # A ticket whose question carries markup: shown as text, nothing runs.
            await page.goto(f"{url}/admin/escalations/{served.seeded.references['case-2']}")
            await expect(page.locator("blockquote.question")).to_have_text(MARKUP)
            assert await page.locator("main script, main b").count() == 0

            # The dead-lettered acknowledgement of case-1, queued again: it arrives.
            await page.get_by_role("link", name="投递 Deliveries").click()
            await expect(page.locator("table.list")).to_contain_text(DEAD_ERROR)
            dead_id = served.seeded.dead_id
            await page.get_by_role("button", name=f"重试 Retry #{dead_id}").click()
            await expect(page.locator(".flash")).to_contain_text("Queued again")
            replies = await citizen.wait_for(2)
            assert replies[1]["conversation"] == "case-1" and reference in replies[1]["text"]

            # The report of public concerns, with its charts.
            await page.get_by_role("link", name="报告 Report").click()
            await expect(page.locator("h1")).to_have_text("Report of public concerns")
            await expect(page.locator("section.civicdesk-report svg").first).to_be_visible()
            await page.screenshot(path=str(SCREENSHOTS / "admin-report.png"), full_page=True)

            assert dialogs == [] and errors == []
        finally:
            await browser.close()
