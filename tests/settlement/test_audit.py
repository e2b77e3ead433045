"""The audit fails when it must: each case corrupts one table behind the ledger's back, checks
that the audit names the damage, and repairs it (the fixture audits again after the test)."""

from __future__ import annotations

import itertools

import asyncpg
import pytest

from settlement.audit import AuditError
from settlement.ledger import Ledger
from settlement.values import ByQuantity, TonneState, TradeToSettle
from tests.settlement import builders
from tests.settlement.builders import World
from tests.settlement.conftest import unique

_orders = itertools.count(500_000)


async def _scene(ledger: Ledger) -> dict[str, int | str]:
    """A block partly sold through settlement, partly retired, with an open buy lock."""
    world = await World.create(ledger)
    block = await world.issue(ledger, 100)
    seller = world.owner.account_id
    buyer = (await builders.account(ledger)).account_id
    await ledger.deposit(unique("d"), buyer, 1_000_000)
    sell, buy = next(_orders), next(_orders)
    await ledger.lock_cers(sell, seller, 30)
    await ledger.lock_cash(buy, buyer, 500_000)
    trade_id = next(_orders)
    await ledger.settle([TradeToSettle(trade_id, buy, sell, buyer, seller, 5_000, 20, 5, 5)])
    await ledger.finish(unique("r"), seller, TonneState.RETIRED, ByQuantity(10))
    return {"block": block.block_id, "buyer": buyer, "buy": buy, "trade": trade_id}


CASES = [
    (
        "a run grows by one serial",
        "UPDATE holdings SET last_serial = 101 WHERE block_id = '{block}' AND last_serial = 100",
        "UPDATE holdings SET last_serial = 100 WHERE block_id = '{block}' AND last_serial = 101",
        "gaps or overlaps",
    ),
    (
        "the buyer's tonnes are handed to another account",
        "UPDATE holdings SET account_id = 2 WHERE block_id = '{block}' AND first_serial = 1",
        "UPDATE holdings SET account_id = {buyer} WHERE block_id = '{block}' AND first_serial = 1",
        "is not what the entries build",
    ),
    (
        "retired tonnes are moved on",
        "INSERT INTO serial_entries (txn_id, block_id, first_serial, last_serial, from_account,"
        " from_state, to_account, to_state) SELECT txn_id, block_id, first_serial, last_serial,"
        " to_account, to_state, to_account, 'free' FROM serial_entries"
        " WHERE block_id = '{block}' AND to_state = 'retired'",
        "DELETE FROM serial_entries WHERE block_id = '{block}' AND from_state = 'retired'",
        "out of the end state retired",
    ),
    (
        "a balance drifts from its journal",
        "UPDATE cash_balances SET balance_fen = balance_fen + 1"
        " WHERE account_id = {buyer} AND bucket = 'available'",
        "UPDATE cash_balances SET balance_fen = balance_fen - 1"
        " WHERE account_id = {buyer} AND bucket = 'available'",
        "journal",
    ),
    (
        "a cash line without its other half",
        "INSERT INTO cash_entries (txn_id, account_id, bucket, amount_fen)"
        " SELECT max(txn_id), {buyer}, 'available', 7 FROM ledger_txns",
        "DELETE FROM cash_entries WHERE account_id = {buyer} AND amount_fen = 7",
        "does not balance",
    ),
    (
        "a journal line is moved to an account that does not exist",
        "UPDATE cash_entries SET account_id = 999999 WHERE entry_id ="
        " (SELECT min(entry_id) FROM cash_entries WHERE account_id = {buyer})",
        "UPDATE cash_entries SET account_id = {buyer} WHERE account_id = 999999",
        "names account 999999, which does not exist",
    ),
    (
        "an open cash lock shrinks",
        "UPDATE cash_locks SET remaining_fen = remaining_fen - 1 WHERE order_id = {buy}",
        "UPDATE cash_locks SET remaining_fen = remaining_fen + 1 WHERE order_id = {buy}",
        "open locks hold",
    ),
    (
        "a settled trade's quantity is rewritten",
        "UPDATE settled_trades SET quantity_t = quantity_t + 1 WHERE trade_id = {trade}",
        "UPDATE settled_trades SET quantity_t = quantity_t - 1 WHERE trade_id = {trade}",
        "delivered",
    ),
]


@pytest.mark.parametrize(
    ("damage", "undo", "named"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
async def test_the_audit_names_the_damage(
    ledger: Ledger, database_url: str, damage: str, undo: str, named: str
) -> None:
    scene = await _scene(ledger)
    assert (await ledger.audit()).ok
    await _run(database_url, damage.format(**scene))
    try:
        with pytest.raises(AuditError) as caught:
            await ledger.check()
        problems = caught.value.report.problems
        assert any(named in problem for problem in problems), problems
    finally:
        await _run(database_url, undo.format(**scene))
    assert (await ledger.audit()).ok


async def _run(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        status = await conn.execute(sql)
        assert not status.endswith(" 0"), f"{sql!r} changed nothing"
    finally:
        await conn.close()
