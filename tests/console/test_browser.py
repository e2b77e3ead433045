"""Each role's main path in headless Chromium against a real server and PostgreSQL: a trade
placed in one browser appears in another's book and tape; a ticket the instrument would refuse
is refused before it is sent; a trader cannot open the regulator's pages; the regulator
approves a certificate in the browser and the public verifies its file, and a tampered file is
shown as tampered. Screenshots of each page, in both languages, are saved (see browser.py)."""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page, expect

from exchange.rest_offsets import today
from exchange.service import Exchange
from matching import Side
from settlement.values import Role, TonneState
from tests.console.browser import PHONE, browser, person, shoot
from tests.console.people import give_login
from tests.exchange.conftest import Market
from tests.exchange.market import SYMBOL
from tests.exchange.rest_client import Rest, Staff
from tests.exchange.test_rest_certificates import retired_and_applied
from tests.exchange.test_rest_offsets import holder, ok, rules

__all__ = ["browser"]


async def place(page: Page, side: str, price: str, quantity: str) -> None:
    await page.locator(f'input[name="side"][value="{side}"]').check()
    await page.locator("#t-price").fill(price)
    await page.locator("#t-quantity").fill(quantity)
    await page.locator("#ticket button[type=submit]").click()


async def test_a_trade_placed_in_one_browser_shows_in_anothers_book_and_tape(
    browser: Browser, exchange: Exchange, server: TestServer, market: Market
) -> None:
    (_, seller), (buyer, _) = market
    _, public = await person(browser, server, None)
    await public.goto(str(server.make_url("/console/login")))
    await shoot(public, "login")
    await public.goto(str(server.make_url(f"/console/market/{SYMBOL}")))
    await expect(public.locator("#book-state")).to_have_text("实时")

    _, selling = await person(browser, server, await give_login(exchange, seller))
    await selling.goto(str(server.make_url("/console/trader")))
    await expect(selling.locator("#ws-state")).to_have_text("实时")
    await place(selling, "sell", "50.00", "5")
    await expect(selling.locator("#t-result")).to_have_text("已完成")
    await expect(selling.locator("#orders tr[data-order]")).to_have_count(1)
    # the public book shows the offer: ask 50.00 for 5 t
    ask = public.locator("#book tr").first.locator("td")
    await expect(ask.nth(2)).to_have_text("50.00")
    await expect(ask.nth(3)).to_have_text("5")
    # amended up to 6 t in the seller's page: the public book follows
    mine = selling.locator("#orders tr[data-order]")
    await expect(mine.locator("td").nth(3)).to_have_text("50.00")
    await mine.locator(".amend-qty").fill("6")
    await mine.get_by_role("button", name="改单").click()
    await expect(ask.nth(3)).to_have_text("6")

    _, buying = await person(browser, server, await give_login(exchange, buyer))
    await buying.goto(str(server.make_url("/console/trader")))
    await expect(buying.locator("#ws-state")).to_have_text("实时")
    # the book beside the ticket shows the offer too
    await expect(buying.locator("#book tr").first.locator("td").nth(2)).to_have_text("50.00")
    # refused in the page, with the exchange's code, before anything is sent
    for price, quantity, code in (
        ("5000.00", "5", "PRICE_MUST_BE_WITHIN_BAND"),
        ("50.001", "5", "PRICE_MUST_BE_GIVEN_FOR_LIMIT"),
        ("50.00", "0", "QUANTITY_MUST_BE_WITHIN_LIMITS"),
    ):
        await place(buying, "buy", price, quantity)
        await expect(buying.locator("#t-result code")).to_have_text(code)
    assert exchange.reports.open_orders(buyer) == []

    await place(buying, "buy", "50.00", "5")
    await expect(buying.locator("#fills tr").first.locator("td").nth(4)).to_have_text("5")
    tape = public.locator("#tape tr").first.locator("td")
    await expect(tape.nth(1)).to_have_text("50.00")
    await expect(tape.nth(2)).to_have_text("5")
    await expect(public.locator("#last")).to_have_text("50.00")
    await expect(public.locator("#volume")).to_have_text("5")
    await expect(mine.locator("td").nth(4)).to_have_text("1")  # 1 t left of 6
    await expect(ask.nth(3)).to_have_text("1")
    await mine.get_by_role("button", name="撤单").click()
    await expect(selling.locator("#orders tr[data-order]")).to_have_count(0)
    await expect(public.locator("#book tr")).to_have_count(0)
    assert exchange.reports.open_orders(seller) == []
    await exchange.settler.drain()
    fills = await exchange.ledger.balance(buyer)
    assert fills.available_fen < 5_000_000  # paid: 5 t at 50.00 and the fee

    await shoot(public, "market")
    await shoot(buying, "trader")
    await buying.goto(str(server.make_url("/console/lang/en?back=/console/trader")))
    await expect(buying.locator("h1")).to_have_text("My trading")
    await public.set_viewport_size(PHONE)
    await shoot(public, "market-phone", both=False)
    csv = await buying.request.get(str(server.make_url("/console/trader/trades.csv")))
    lines = (await csv.text()).splitlines()
    assert lines[0].startswith("trade_id,symbol,side")
    # a buy of 5 t at 50.00: the side as the API spells it, the price in yuan
    assert any(
        f",{SYMBOL},{Side.BUY.value}," in line and ",50.00,5," in line for line in lines[1:]
    ), lines


async def test_a_trader_cannot_open_the_regulators_desk(
    browser: Browser, exchange: Exchange, server: TestServer, market: Market
) -> None:
    (_, trader), _ = market
    _, page = await person(browser, server, await give_login(exchange, trader), "en")
    response = await page.goto(str(server.make_url("/console/regulator")))
    assert response is not None and response.status == 403
    await expect(page.locator("p.error code")).to_have_text("AUTH_FORBIDDEN")
    await expect(page.locator('a[href="/console/regulator"]')).to_have_count(0)
    # a write from the page without the session's CSRF token is refused, with its code
    refused = await page.evaluate(
        """async () => {
            const response = await fetch("/api/v1/retirements", {
                method: "POST", credentials: "same-origin",
                headers: {"Content-Type": "application/json", "Idempotency-Key": "no-token"},
                body: JSON.stringify({quantity_t: 1, beneficiary: "b", purpose: "p"}),
            });
            return [response.status, (await response.json()).error.code];
        }"""
    )
    assert refused == [403, "AUTH_CSRF_TOKEN_INVALID"]
    assert await exchange.offsets.retirements(trader) == []
    await shoot(page, "forbidden")


async def test_the_regulator_issues_a_certificate_that_the_public_verifies_and_a_tampered_one_fails(
    browser: Browser,
    exchange: Exchange,
    server: TestServer,
    rest: Rest,
    team: Staff,
    tmp_path: Path,
) -> None:
    _, application_id = await retired_and_applied(exchange, rest, team)
    _, desk = await person(browser, server, await give_login(exchange, team.regulator_id))
    await desk.goto(str(server.make_url("/console/regulator")))
    await shoot(desk, "regulator")
    row = desk.locator("tr", has_text="2026 年会")
    await expect(row.locator("td").first).to_have_text(str(application_id))
    await row.get_by_role("button", name="批准并签发").click()
    await expect(desk.locator("#reg-result")).to_have_text("已完成")
    await expect(desk.locator("tr", has_text="2026 年会")).to_have_count(0)  # reloaded
    application = next(
        a for a in await exchange.offsets.applications() if a.application_id == application_id
    )
    assert application.state == "approved" and application.certificate_id is not None
    certificate_id = application.certificate_id

    _, public = await person(browser, server, None, "en")
    await public.goto(str(server.make_url("/console/verify")))
    await shoot(public, "verify")
    await public.get_by_label("Certificate id").fill(certificate_id)
    await public.locator("#by-id button").click()
    await expect(public.locator("body")).to_contain_text(certificate_id)
    pdf = await public.request.get(str(server.make_url(f"/certificates/{certificate_id}.pdf")))
    assert pdf.ok and (await pdf.body()).startswith(b"%PDF")
    download = await public.request.get(
        str(server.make_url(f"/certificates/{certificate_id}.json"))
    )
    original = await download.body()
    genuine, tampered = tmp_path / "genuine.json", tmp_path / "tampered.json"
    genuine.write_bytes(original)
    document = json.loads(original)
    document["certificate"]["emissions_t"] += 1  # one tonne less to cover
    tampered.write_text(json.dumps(document, ensure_ascii=False, separators=(",", ":")))

    for file, verdict in ((genuine, "valid"), (tampered, "tampered")):
        await public.goto(str(server.make_url("/console/verify")))
        await public.locator("#file").set_input_files(str(file))
        await public.locator("#by-file button").click()
        await expect(public.locator("#verdict")).to_have_class(f"verdict {verdict}")
        await shoot(public, f"verify-{verdict}", both=False)
    await expect(public.locator("#verdict")).to_contain_text("SIGNATURE_INVALID")


async def test_a_surrender_is_confirmed_range_by_range_and_one_beyond_the_cap_moves_nothing(
    browser: Browser, exchange: Exchange, server: TestServer, rest: Rest, team: Staff
) -> None:
    year = 2091
    ok(await rest.post("/api/v1/regulator/offset-rules", rules(year), team.regulator))
    entity, project = await holder(exchange, rest, team, Role.COMPLIANCE_ENTITY)
    emissions = {"year": year, "account_id": entity, "emissions_t": 100}  # cap: 10 t
    ok(await rest.post("/api/v1/regulator/verified-emissions", emissions, team.regulator))
    _, page = await person(browser, server, await give_login(exchange, entity))
    await page.goto(str(server.make_url(f"/console/compliance?year={year}")))
    await expect(page.locator("#may-surrender")).to_have_text("10")

    await page.get_by_label("抵消数量（吨）").fill("8")
    await page.get_by_role("button", name="下一步：核对序列号").click()
    # the 2024 block is out of scope: the ranges shown are the oldest eligible, 2025's
    block = f"SZCER-{project}-2025-1"
    cells = page.locator("#planned tbody tr").first.locator("td")
    await expect(cells.nth(0)).to_have_text(block)
    await expect(cells.nth(1)).to_have_text("1")
    await expect(cells.nth(2)).to_have_text("8")
    await shoot(page, "compliance-confirm", both=False)
    await page.get_by_role("button", name="确认抵消").click()
    await expect(page.locator("#surrendered")).to_have_text("8")  # the page came back
    await expect(page.locator("#record tr")).to_have_count(1)

    holdings_before = await exchange.ledger.holdings(entity)
    await page.get_by_label("抵消数量（吨）").fill("5")
    await page.get_by_role("button", name="下一步：核对序列号").click()
    await expect(page.locator("#planned tbody td").first).to_have_text(block)
    await page.get_by_role("button", name="确认抵消").click()
    await expect(page.locator("#surrender-result code")).to_have_text("ENTITY_CAP_EXCEEDED")
    await shoot(page, "compliance-refused", both=False)
    await page.goto(str(server.make_url(f"/console/compliance?year={year}")))
    await shoot(page, "compliance")
    assert await exchange.ledger.holdings(entity) == holdings_before
    surrendered = await exchange.offsets.surrenders(entity, year)
    assert [s.quantity_t for s in surrendered] == [8]


async def test_a_holder_retires_applies_and_downloads_its_certificate_in_the_browser(
    browser: Browser, exchange: Exchange, server: TestServer, rest: Rest, team: Staff
) -> None:
    account, _ = await holder(exchange, rest, team, Role.TRADER)
    _, page = await person(browser, server, await give_login(exchange, account), "en")
    await page.goto(str(server.make_url("/console/retire")))
    retire = page.locator("#retire")
    await retire.get_by_label("Tonnes (or the ranges below)").fill("30")
    await retire.get_by_label("Beneficiary").fill("Futian Bakery Co.")
    await retire.get_by_label("Purpose").fill("Neutral bakery 2026")
    await retire.get_by_role("button", name="Retire").click()
    await expect(page.locator("#retirements tr")).to_have_count(1)
    # a bad range is the API's refusal, shown with its code
    await retire.get_by_label("Serial ranges (BLOCK:first-last, one a line)").fill("nonsense")
    await retire.get_by_label("Beneficiary").fill("x")
    await retire.get_by_label("Purpose").fill("y")
    await retire.get_by_role("button", name="Retire").click()
    await expect(page.locator("#retire-result code")).to_have_text("INVALID_ARGS")

    apply = page.locator("#apply")
    await apply.locator('input[name="retirement_ids"]').first.check()
    await apply.get_by_label("Beneficiary").fill("Futian Bakery Co.")
    await apply.get_by_label("Kind of subject").select_option("product_batch")
    await apply.get_by_label("Subject", exact=True).fill("Bread, March 2026")
    await apply.get_by_label("Emissions (t)").fill("25")
    await apply.get_by_label("Purpose", exact=True).fill("Neutral bakery 2026")
    await apply.get_by_role("button", name="Apply").click()
    await expect(page.locator("#applications tr td").nth(4)).to_have_text("Submitted")
    await shoot(page, "retire")

    mine = await exchange.offsets.applications(state="submitted")
    application = next(a for a in mine if a.account_id == account)
    decided = f"/api/v1/regulator/certificate-applications/{application.application_id}/decision"
    ok(await rest.post(decided, {"approve": True}, team.regulator))
    await page.reload()
    await expect(page.locator("#applications tr td").nth(4)).to_have_text("Approved")
    pdf_link = page.locator("#applications a", has_text="PDF")
    async with page.expect_download() as downloading:
        await pdf_link.click()
    pdf = await (await downloading.value).path()
    assert Path(pdf).read_bytes().startswith(b"%PDF")
    # and its public page, which its QR code opens, says valid
    await page.locator("#applications a").first.click()
    await expect(page.locator("p.good")).to_contain_text("valid")
    retired = [h for h in await exchange.ledger.holdings(account) if h.state is TonneState.RETIRED]
    assert sum(h.quantity_t for h in retired) == 30


async def test_the_regulator_records_emissions_from_a_csv_with_a_report_of_each_row(
    browser: Browser, exchange: Exchange, server: TestServer, rest: Rest, team: Staff,
    tmp_path: Path,
) -> None:  # fmt: skip
    year = 2092
    ok(await rest.post("/api/v1/regulator/offset-rules", rules(year), team.regulator))
    entity, _ = await holder(exchange, rest, team, Role.COMPLIANCE_ENTITY)
    upload = tmp_path / "emissions.csv"
    upload.write_text(
        "year,account_id,emissions_t\n"
        f"{year},{entity},4200\n"
        f"{year},999999,10\n"  # no such account
        f"{year},{entity},-5\n"  # not an amount
    )
    _, desk = await person(browser, server, await give_login(exchange, team.regulator_id), "en")
    await desk.goto(str(server.make_url("/console/regulator")))
    await desk.locator("#emissions-file").set_input_files(str(upload))
    await desk.locator("#emissions-csv button").click()
    rows = desk.locator("#csv-report tbody tr")
    await expect(rows).to_have_count(3)
    await expect(rows.nth(0).locator("td").nth(2)).to_have_text("Done")
    await expect(rows.nth(1).locator("td code")).to_have_text("ACCOUNT_NOT_FOUND")
    await expect(rows.nth(2).locator("td code")).to_have_text("INVALID_ARGS")
    await shoot(desk, "regulator-emissions", both=False)
    position = await exchange.offsets.position(year, entity, today())
    assert position.emissions_t == 4200

    # the same file again records nothing twice: the first row's write is the same write
    await desk.locator("#emissions-csv button").click()
    await expect(rows.nth(0).locator("td").nth(2)).to_have_text("Done")
    async with exchange.database.pool.acquire() as conn:
        versions = await conn.fetchval(
            "SELECT count(*) FROM verified_emissions WHERE year = $1 AND account_id = $2",
            year,
            entity,
        )
    assert versions == 1

    # one at a time, from the form the route's own body made
    form = desk.locator("#emissions")
    await form.get_by_label("Year").fill(str(year))
    await form.get_by_label("Account").fill(str(entity))
    await form.get_by_label("Emissions (t)").fill("5000")
    await form.get_by_role("button", name="Record").click()
    await expect(form.locator("#emissions-result")).to_have_text("Done")
    assert (await exchange.offsets.position(year, entity, today())).emissions_t == 5000


async def test_the_operator_halts_resumes_and_deposits_in_yuan(
    browser: Browser, exchange: Exchange, server: TestServer, market: Market, team: Staff
) -> None:
    _, (buyer, _) = market
    before = (await exchange.ledger.balance(buyer)).available_fen
    _, desk = await person(browser, server, await give_login(exchange, team.operator_id))
    await desk.goto(str(server.make_url("/console/operator")))
    row = desk.locator("tr", has_text=SYMBOL)
    await row.get_by_role("button", name="暂停").click()
    await expect(row.locator("td.status")).to_have_text("暂停")
    assert exchange.engine.books[SYMBOL].status.value == "halted"
    await desk.locator("tr", has_text=SYMBOL).get_by_role("button", name="恢复").click()
    await expect(desk.locator("tr", has_text=SYMBOL).locator("td.status")).to_have_text("连续交易")

    await desk.get_by_text("入金", exact=True).first.click()  # open the details
    form = desk.locator("form", has=desk.get_by_role("button", name="入金"))
    await form.get_by_label("账户号").fill(str(buyer))
    await form.get_by_label("金额 · 元").fill("12.34")
    await form.get_by_role("button", name="入金").click()
    await expect(form.locator("p[role=status]")).to_have_text("已完成")
    assert (await exchange.ledger.balance(buyer)).available_fen == before + 1_234
    await shoot(desk, "operator")


async def test_the_public_reads_the_disclosure_with_its_charts_in_both_languages(
    browser: Browser, exchange: Exchange, server: TestServer, rest: Rest, team: Staff
) -> None:
    ok(await rest.post("/api/v1/regulator/offset-rules", rules(2093), team.regulator))
    _, project = await holder(exchange, rest, team)
    for lang, title in (("zh", "信息公开"), ("en", "Public disclosure")):
        _, page = await person(browser, server, None, lang)
        await page.goto(str(server.make_url("/console/disclosure")))
        await expect(page.locator("h1")).to_have_text(title)
        # Chart.js drew into each canvas: a drawn canvas has a size and pixels set
        for chart in ("chart-vintages", "chart-years", "chart-points"):
            drawn = await page.evaluate(
                "id => Chart.getChart(document.getElementById(id)) !== undefined", chart
            )
            assert drawn, chart
        bars = await page.evaluate(
            "() => Chart.getChart(document.getElementById('chart-vintages')).data"
        )
        assert bars["labels"] and sum(bars["datasets"][0]["data"]) >= 1_000  # 500 t a vintage
        await expect(page.locator("#flows")).to_contain_text(f"OM{project[2:]}")
        await shoot(page, "disclosure", both=False)
