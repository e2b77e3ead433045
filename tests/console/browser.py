"""Headless Chromium for the console's browser tests: Debian's `chromium`, driven by Playwright
through the system browser (Playwright's own browser download is never used). Screenshots go to
`$CERX_SCREENSHOTS`, by default build/screenshots/, one file per page and language."""

from __future__ import annotations

import os
import shutil
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.console.people import PASSWORD

SCREENSHOTS = Path(os.environ.get("CERX_SCREENSHOTS", "build/screenshots"))
CHROMIUM = os.environ.get("CERX_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
PHONE = {"width": 390, "height": 844}


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install chromium (.ci/run does)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield browser
        await browser.close()


async def person(
    browser: Browser, server: TestServer, login: str | None, lang: str = "zh"
) -> tuple[BrowserContext, Page]:
    """A browser of its own (cookies and all), signed in as `login` unless None."""
    context = await browser.new_context(locale="zh-CN" if lang == "zh" else "en-GB")
    page = await context.new_page()
    page.set_default_timeout(15_000)
    if login is not None:
        await page.goto(str(server.make_url("/console/login")))
        await page.get_by_label("登录名" if lang == "zh" else "Login").fill(login)
        await page.get_by_label("密码" if lang == "zh" else "Password").fill(PASSWORD)
        await page.locator("form.stack button[type=submit]").click()
        await page.wait_for_url("**/console/")
    return context, page


async def shoot(page: Page, name: str, both: bool = True) -> None:
    """`name-zh.png` or `name-en.png` of the page as it is; with `both`, the page again in the
    other language (reloaded), then back in the first."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    first = "en" if (await page.get_attribute("html", "lang")) == "en" else "zh"
    await page.screenshot(path=str(SCREENSHOTS / f"{name}-{first}.png"), full_page=True)
    if not both:
        return
    here = urllib.parse.urlsplit(page.url)
    back = urllib.parse.quote(here.path + (f"?{here.query}" if here.query else ""), safe="")
    for lang in ("zh", "en") if first == "en" else ("en", "zh"):
        await page.goto(page.url.split("/console/")[0] + f"/console/lang/{lang}?back={back}")
        await page.wait_for_load_state("networkidle")
        if lang != first:
            await page.screenshot(path=str(SCREENSHOTS / f"{name}-{lang}.png"), full_page=True)
