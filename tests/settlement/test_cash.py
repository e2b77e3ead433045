"""Cash: deposits and withdrawals balance against the external account, refusals write
nothing, and a repeated key is answered, not repeated."""

from __future__ import annotations

import pytest

from settlement.errors import ErrorCode
from settlement.ledger import Ledger
from settlement.values import EXTERNAL_ACCOUNT_ID, CashBalance, Role
from tests.settlement import builders
from tests.settlement.conftest import unique
from tests.settlement.refusals import refused


async def test_deposit_and_withdraw_move_available_cash(ledger: Ledger) -> None:
    trader = await builders.account(ledger, Role.TRADER)
    outside_before = (await ledger.balance(EXTERNAL_ACCOUNT_ID)).available_fen
    deposited = await ledger.deposit(unique("d"), trader.account_id, 100_000)
    assert deposited.balance == CashBalance(trader.account_id, 100_000, 0)
    withdrawn = await ledger.withdraw(unique("w"), trader.account_id, 30_001)
    assert withdrawn.balance == CashBalance(trader.account_id, 69_999, 0)
    outside_after = (await ledger.balance(EXTERNAL_ACCOUNT_ID)).available_fen
    assert outside_before - outside_after == 69_999


async def test_a_repeated_deposit_key_deposits_once(ledger: Ledger) -> None:
    trader = await builders.account(ledger, Role.TRADER)
    key = unique("d")
    first = await ledger.deposit(key, trader.account_id, 500)
    again = await ledger.deposit(key, trader.account_id, 500)
    assert again == first
    assert await ledger.balance(trader.account_id) == CashBalance(trader.account_id, 500, 0)
    await refused(ErrorCode.IDEMPOTENCY_KEY_REUSED, ledger.deposit(key, trader.account_id, 501))


async def test_withdrawing_more_than_available_is_refused(ledger: Ledger) -> None:
    trader = await builders.account(ledger, Role.TRADER)
    await ledger.deposit(unique("d"), trader.account_id, 1_000)
    await ledger.lock_cash(order_id=_order(), account_id=trader.account_id, amount_fen=400)
    error = await refused(
        ErrorCode.INSUFFICIENT_CASH, ledger.withdraw(unique("w"), trader.account_id, 601)
    )
    assert "600 fen available" in error.message
    assert await ledger.balance(trader.account_id) == CashBalance(trader.account_id, 600, 400)


@pytest.mark.parametrize("amount", [0, -1])
async def test_amounts_must_be_positive(ledger: Ledger, amount: int) -> None:
    trader = await builders.account(ledger, Role.TRADER)
    await refused(
        ErrorCode.AMOUNT_MUST_BE_POSITIVE, ledger.deposit(unique("d"), trader.account_id, amount)
    )
    await refused(
        ErrorCode.AMOUNT_MUST_BE_POSITIVE, ledger.withdraw(unique("w"), trader.account_id, amount)
    )


async def test_unknown_accounts_and_non_holders_are_refused(ledger: Ledger) -> None:
    regulator = await builders.regulator(ledger)
    await refused(ErrorCode.ACCOUNT_NOT_FOUND, ledger.deposit(unique("d"), 999_999, 5))
    await refused(ErrorCode.ACCOUNT_NOT_FOUND, ledger.balance(999_999))
    await refused(ErrorCode.ROLE_NOT_ALLOWED, ledger.deposit(unique("d"), regulator.account_id, 5))


async def test_account_names_are_unique_and_roles_are_checked(ledger: Ledger) -> None:
    name = unique("name")
    opened = await ledger.open_account(unique("o"), name, [Role.TRADER, Role.COMPLIANCE_ENTITY])
    assert opened.roles == (Role.COMPLIANCE_ENTITY, Role.TRADER)
    assert await ledger.account(opened.account_id) == opened
    await refused(
        ErrorCode.ACCOUNT_NAME_TAKEN, ledger.open_account(unique("o"), name, [Role.TRADER])
    )
    await refused(ErrorCode.ROLE_NOT_ALLOWED, ledger.open_account(unique("o"), unique("n"), []))
    await refused(
        ErrorCode.ROLE_NOT_ALLOWED, ledger.open_account(unique("o"), unique("n"), [Role.FEES])
    )
    await refused(ErrorCode.MALFORMED_ID, ledger.open_account(unique("o"), " ", [Role.TRADER]))
    await refused(ErrorCode.MALFORMED_ID, ledger.open_account("", unique("n"), [Role.TRADER]))


_orders = iter(range(10_000_000, 20_000_000))


def _order() -> int:
    return next(_orders)
