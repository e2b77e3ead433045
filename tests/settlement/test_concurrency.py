"""No double spend under concurrency: many connections racing for the same tonnes and cash.

Each test starts a crowd of writes at once on a ledger with a wide connection pool (so dozens of
transactions really are open together, queueing on the same account locks) and then checks the
outcome exactly, not statistically:

- transfers racing for a seller's last tonnes succeed exactly as often as the tonnes allow, never
  deliver a serial twice, and refuse the rest with INSUFFICIENT_HOLDINGS;
- transfers in both directions between the same accounts never deadlock and conserve tonnes;
- one idempotency key used by many callers at once makes exactly one write, and every caller
  with that request gets the same result (the others are refused as a reused key);
- settlement batches sharing trade ids, sent at once, settle each trade exactly once, and the
  balances are as if each had been settled once;
- CER locks (and transfers) of one seller racing for limited tonnes never lock more than it holds;
- withdrawals and cash locks racing for the last cash never overdraw;
- settlements both ways between two accounts, racing releases of the same orders, never deadlock
  and never let a tonne or a fen go two ways (delivered and released).

Nothing here measures time: a generous deadline only turns a hang into a failure. Every refusal
must be a `LedgerError` with the expected code; anything else (a deadlock detected by PostgreSQL,
a unique violation) fails the test at once. The ledger fixture audits the database after each
test.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Iterable, Sequence
from typing import Any, TypeVar

import pytest

from settlement.database import Database
from settlement.dvp import fees
from settlement.errors import ErrorCode, LedgerError
from settlement.ledger import Ledger
from settlement.values import (
    FEE_ACCOUNT_ID,
    ByQuantity,
    CashMoved,
    Holding,
    Moved,
    Released,
    Role,
    SerialRange,
    SettlementReport,
    TonneState,
    TradeToSettle,
)
from tests.settlement import builders
from tests.settlement.builders import World
from tests.settlement.conftest import unique

T = TypeVar("T")

POOL_SIZE = 24  # connections of the racing ledger: well above the cores, well below the server
DEADLINE_S = 60.0  # only for turning a deadlock into a failure; the races take well under 1 s

_ids = itertools.count(1)  # order and trade ids, unique in the module's database


@pytest.fixture
async def wide(database_url: str) -> AsyncIterator[Ledger]:
    """A second ledger on the module's database with a wide pool, for the crowd of writers."""
    database = await Database.open(database_url, min_size=1, max_size=POOL_SIZE)
    try:
        yield Ledger(database)
    finally:
        await database.close()


async def race(writes: Iterable[Awaitable[T]]) -> list[T | LedgerError]:
    """Start every write at once; their results or refusals, in order. Any other exception (a
    deadlock PostgreSQL broke, a unique violation) cancels the rest and fails the test at once,
    as does the deadline."""

    async def one(write: Awaitable[T]) -> T | LedgerError:
        try:
            return await write
        except LedgerError as refusal:
            return refusal

    async with asyncio.timeout(DEADLINE_S), asyncio.TaskGroup() as group:
        tasks = [group.create_task(one(write)) for write in writes]
    return [task.result() for task in tasks]


def sort_out(
    outcomes: Sequence[T | LedgerError], kind: type[T]
) -> tuple[list[tuple[int, T]], list[tuple[int, ErrorCode]]]:
    """(index, result) of the writes that succeeded and (index, code) of the refused ones."""
    done: list[tuple[int, T]] = []
    refused: list[tuple[int, ErrorCode]] = []
    for index, outcome in enumerate(outcomes):
        if isinstance(outcome, LedgerError):
            refused.append((index, outcome.code))
        else:
            assert isinstance(outcome, kind), outcome
            done.append((index, outcome))
    return done, refused


def serials(ranges: Iterable[SerialRange]) -> list[tuple[str, int]]:
    return [(r.block_id, n) for r in ranges for n in range(r.first, r.last + 1)]


def tonnes(holdings: Iterable[Holding], state: TonneState = TonneState.FREE) -> int:
    return sum(h.quantity_t for h in holdings if h.state is state)


def held_serials(holdings: Iterable[Holding], state: TonneState = TonneState.FREE) -> set[Any]:
    return {
        (h.block_id, n) for h in holdings if h.state is state for n in range(h.first, h.last + 1)
    }


async def holders(ledger: Ledger, world: World, stocks: Sequence[int]) -> list[int]:
    """Fresh trader accounts holding `stocks` tonnes each, issued to the world's owner and
    handed over (by distinct transfers, so their runs come from several rows)."""
    await world.issue(ledger, sum(stocks) // 2 + 1, vintage=2022)
    await world.issue(ledger, sum(stocks) - sum(stocks) // 2 + 1, vintage=2024)
    accounts = []
    for stock in stocks:
        account = (await builders.account(ledger, Role.TRADER)).account_id
        half = stock // 2
        for part in (half, stock - half):
            if part:
                await ledger.transfer(
                    unique("give"), world.owner.account_id, account, ByQuantity(part)
                )
        accounts.append(account)
    return accounts


# -- (a) the last tonnes ------------------------------------------------------------------------


async def test_transfers_racing_for_the_last_tonnes_take_exactly_what_there_is(
    ledger: Ledger, wide: Ledger
) -> None:
    world = await World.create(ledger)
    stocks = (30, 45, 60)  # multiples of the quantity, so every tonne can go
    quantity = 3
    sellers = await holders(ledger, world, stocks)
    buyers = [(await builders.account(ledger)).account_id for _ in range(4)]
    before = {seller: held_serials(await ledger.holdings(seller)) for seller in sellers}

    tasks = 200  # asking for 600 t of the 135 t there are
    plan = [(sellers[i % len(sellers)], buyers[i % len(buyers)]) for i in range(tasks)]
    outcomes = await race(
        wide.transfer(unique("race"), seller, buyer, ByQuantity(quantity)) for seller, buyer in plan
    )
    done, refused = sort_out(outcomes, Moved)

    assert {code for _, code in refused} <= {ErrorCode.INSUFFICIENT_HOLDINGS}
    assert len(done) * quantity == sum(stocks)
    assert all(moved.quantity_t == quantity for _, moved in done)
    for seller, stock in zip(sellers, stocks, strict=True):
        from_seller = [moved for index, moved in done if plan[index][0] == seller]
        assert len(from_seller) * quantity == stock
        # every serial the seller had went out exactly once, and it has none left
        sent = serials(r for moved in from_seller for r in moved.ranges)
        assert sorted(sent) == sorted(before[seller])
        assert tonnes(await ledger.holdings(seller)) == 0
    # and arrived: each buyer holds exactly the serials sent to it
    for buyer in buyers:
        sent = serials(r for index, moved in done if plan[index][1] == buyer for r in moved.ranges)
        assert len(sent) == len(set(sent))
        assert held_serials(await ledger.holdings(buyer)) == set(sent)
    await wide.check()


# -- (b) both directions ------------------------------------------------------------------------


async def test_transfers_both_ways_between_the_same_accounts_neither_deadlock_nor_leak(
    ledger: Ledger, wide: Ledger
) -> None:
    world = await World.create(ledger)
    stocks = (12, 12, 12, 12)
    accounts = await holders(ledger, world, stocks)
    a, b, c, d = accounts
    # A<->B and C<->D at once, in both directions, and across (A->D, D->A, B->C, C->B) so that
    # the lock sets overlap every way; quantities 1..4 from small stocks, so that now and then a
    # side runs short and is refused
    pairs = [(a, b), (b, a), (c, d), (d, c), (a, d), (d, a), (b, c), (c, b)]
    rng = random.Random(7)
    plan = [(*pairs[i % len(pairs)], rng.randint(1, 4)) for i in range(240)]
    outcomes = await race(
        wide.transfer(unique("both"), source, target, ByQuantity(quantity))
        for source, target, quantity in plan
    )
    done, refused = sort_out(outcomes, Moved)

    assert {code for _, code in refused} <= {ErrorCode.INSUFFICIENT_HOLDINGS}
    assert done  # the first to run, at least, had enough
    net: Counter[int] = Counter(dict(zip(accounts, stocks, strict=True)))
    for index, moved in done:
        source, target, quantity = plan[index]
        assert moved.quantity_t == quantity
        net[source] -= quantity
        net[target] += quantity
    held = {account: tonnes(await ledger.holdings(account)) for account in accounts}
    assert held == dict(net)
    assert sum(held.values()) == sum(stocks)
    await wide.check()


# -- (c) one idempotency key, many callers ---------------------------------------------------------


async def test_one_key_used_by_many_callers_at_once_writes_once(
    ledger: Ledger, wide: Ledger
) -> None:
    world = await World.create(ledger)
    (seller,) = await holders(ledger, world, (50,))
    buyer = (await builders.account(ledger)).account_id
    other = (await builders.account(ledger)).account_id
    key = unique("once")
    # forty callers send the same request; ten send another one under the same key
    requests = [(buyer, 7)] * 40 + [(other, 9)] * 10
    random.Random(3).shuffle(requests)
    outcomes = await race(
        wide.transfer(key, seller, target, ByQuantity(quantity)) for target, quantity in requests
    )
    done, refused = sort_out(outcomes, Moved)

    winner = requests[done[0][0]]
    assert len({moved for _, moved in done}) == 1  # one result, txn id and all
    assert {requests[index] for index, _ in done} == {winner}
    assert len(done) == requests.count(winner)
    assert refused == [
        (index, ErrorCode.IDEMPOTENCY_KEY_REUSED)
        for index, request in enumerate(requests)
        if request != winner
    ]
    target, quantity = winner
    assert tonnes(await ledger.holdings(target)) == quantity
    assert tonnes(await ledger.holdings(seller)) == 50 - quantity
    loser = other if target == buyer else buyer
    assert await ledger.holdings(loser) == []


async def test_one_deposit_key_and_one_lock_order_used_at_once_move_cash_and_tonnes_once(
    ledger: Ledger, wide: Ledger
) -> None:
    world = await World.create(ledger)
    (seller,) = await holders(ledger, world, (20,))
    buyer = (await builders.account(ledger)).account_id
    key, order = unique("deposit"), next(_ids)
    deposits = await race(wide.deposit(key, buyer, 12_345) for _ in range(40))
    locks = await race(wide.lock_cers(order, seller, 8) for _ in range(40))
    deposited, refused_deposits = sort_out(deposits, CashMoved)
    locked, refused_locks = sort_out(locks, Moved)

    assert refused_deposits == [] and refused_locks == []
    assert len({result for _, result in deposited}) == 1
    assert len({result for _, result in locked}) == 1
    balance = await ledger.balance(buyer)
    assert (balance.available_fen, balance.locked_fen) == (12_345, 0)
    held = await ledger.holdings(seller)
    assert (tonnes(held), tonnes(held, TonneState.LOCKED)) == (12, 8)


# -- (d) overlapping settlement batches ----------------------------------------------------------


async def test_overlapping_settlement_batches_at_once_settle_each_trade_once(
    ledger: Ledger, wide: Ledger
) -> None:
    # Two markets, so batches lock different sets of accounts: one market's, the other's, both.
    markets = []
    for _ in range(2):
        world = await World.create(ledger)
        (seller,) = await holders(ledger, world, (100,))
        buyer = (await builders.account(ledger)).account_id
        await ledger.deposit(unique("d"), buyer, 50_000_000)
        sell_order, buy_order = next(_ids), next(_ids)
        await ledger.lock_cers(sell_order, seller, 100)
        await ledger.lock_cash(buy_order, buyer, 40_000_000)
        markets.append((seller, buyer, sell_order, buy_order))
    rng = random.Random(11)
    trades = []
    for i in range(40):
        seller, buyer, sell_order, buy_order = markets[i % 2]
        trades.append(
            TradeToSettle(
                next(_ids),
                buy_order,
                sell_order,
                buyer,
                seller,
                rng.randint(3_000, 9_000),
                rng.randint(1, 4),
                25,
                30,
            )
        )
    # 60 batches: sliding windows (every trade is in several) and random handfuls, shuffled
    batches = [trades[i : i + 8] for i in range(0, len(trades), 4)]
    batches += [rng.sample(trades, rng.randint(1, 10)) for _ in range(60 - len(batches))]
    for batch in batches:
        rng.shuffle(batch)
    fees_before = await ledger.balance(FEE_ACCOUNT_ID)

    reports, refused = sort_out(
        await race(wide.settle(batch) for batch in batches), SettlementReport
    )

    assert refused == []
    settled = [trade_id for _, report in reports for trade_id in report.settled]
    assert len(settled) == len(set(settled))  # no trade settled twice
    assert set(settled) == {trade.trade_id for trade in trades}  # and none left out
    for index, report in reports:
        # each report accounts for its whole batch, each trade once
        named = [*report.settled, *report.already_settled]
        assert sorted(named) == sorted({trade.trade_id for trade in batches[index]})
        assert (report.txn_id is None) == (report.settled == ())

    fee_total = 0
    for seller, buyer, sell_order, _ in markets:
        mine = [trade for trade in trades if trade.sell_order_id == sell_order]
        quantity = sum(trade.quantity_t for trade in mine)
        paid = sum(t.price_fen * t.quantity_t + fees(t)[0] for t in mine)
        earned = sum(t.price_fen * t.quantity_t - fees(t)[1] for t in mine)
        fee_total += sum(sum(fees(t)) for t in mine)
        assert tonnes(await ledger.holdings(buyer)) == quantity
        assert tonnes(await ledger.holdings(seller), TonneState.LOCKED) == 100 - quantity
        buyer_cash, seller_cash = await ledger.balance(buyer), await ledger.balance(seller)
        assert (buyer_cash.available_fen, buyer_cash.locked_fen) == (10_000_000, 40_000_000 - paid)
        assert (seller_cash.available_fen, seller_cash.locked_fen) == (earned, 0)
    fees_after = await ledger.balance(FEE_ACCOUNT_ID)
    assert fees_after.available_fen - fees_before.available_fen == fee_total
    await wide.check()


# -- (e) locks racing for limited tonnes ---------------------------------------------------------


async def test_cer_locks_racing_for_limited_tonnes_never_lock_more_than_is_held(
    ledger: Ledger, wide: Ledger
) -> None:
    world = await World.create(ledger)
    stock = 50
    (seller,) = await holders(ledger, world, (stock,))
    buyer = (await builders.account(ledger)).account_id
    rng = random.Random(5)
    # forty orders of 3..5 t and ten transfers of 2 t, interleaved, all want the same 50 t
    requests: list[tuple[int, int] | str] = [(next(_ids), rng.randint(3, 5)) for _ in range(40)]
    requests += [unique("grab") for _ in range(10)]
    rng.shuffle(requests)

    def write(request: tuple[int, int] | str) -> Awaitable[Moved]:
        if isinstance(request, tuple):
            return wide.lock_cers(request[0], seller, request[1])
        return wide.transfer(request, seller, buyer, ByQuantity(2))

    done, refused = sort_out(await race(write(request) for request in requests), Moved)
    orders = {request for request in requests if isinstance(request, tuple)}

    assert {code for _, code in refused} <= {ErrorCode.INSUFFICIENT_HOLDINGS}
    locked: dict[int, Moved] = {}
    sent: list[Moved] = []
    for index, moved in done:
        request = requests[index]
        if isinstance(request, tuple):
            assert moved.quantity_t == request[1]
            locked[request[0]] = moved
        else:
            assert moved.quantity_t == 2
            sent.append(moved)
    # no serial locked to two orders, or both locked and sent
    taken = serials(r for moved in [*locked.values(), *sent] for r in moved.ranges)
    assert len(taken) == len(set(taken))
    held = await ledger.holdings(seller)
    locked_t = sum(moved.quantity_t for moved in locked.values())
    sent_t = sum(moved.quantity_t for moved in sent)
    assert tonnes(held, TonneState.LOCKED) == locked_t
    assert tonnes(held) == stock - locked_t - sent_t >= 0
    assert {h.order_id for h in held if h.state is TonneState.LOCKED} == set(locked)
    assert set(locked) <= {order for order, _ in orders}
    # a refused request wanted more than was left when it ran, and what is left only shrank
    wanted = [request[1] if isinstance(request, tuple) else 2 for request in requests]
    assert all(tonnes(held) < wanted[index] for index, _ in refused)
    assert tonnes(await ledger.holdings(buyer)) == sent_t
    await wide.check()


# -- (f) the last cash ---------------------------------------------------------------------------


async def test_withdrawals_and_cash_locks_racing_for_the_last_cash_never_overdraw(
    ledger: Ledger, wide: Ledger
) -> None:
    account = (await builders.account(ledger)).account_id
    await ledger.deposit(unique("d"), account, 1_000_000)
    amount = 30_000  # 33 fit, 10,000 fen are left over
    kinds = ["withdraw", "lock"] * 50
    writes = [
        wide.withdraw(unique("w"), account, amount)
        if kind == "withdraw"
        else wide.lock_cash(next(_ids), account, amount)
        for kind in kinds
    ]
    done, refused = sort_out(await race(writes), CashMoved)

    assert {code for _, code in refused} <= {ErrorCode.INSUFFICIENT_CASH}
    assert len(done) == 1_000_000 // amount
    locks = sum(1 for index, _ in done if kinds[index] == "lock")
    balance = await ledger.balance(account)
    assert (balance.available_fen, balance.locked_fen) == (1_000_000 % amount, locks * amount)
    # each success saw the balance its own write left, and no two saw the same one
    seen = sorted(moved.balance.available_fen for _, moved in done)
    assert seen == [1_000_000 % amount + amount * k for k in range(len(done))]
    await wide.check()


# -- (g) settlement both ways, racing releases ---------------------------------------------------


async def test_settlements_both_ways_racing_releases_neither_deadlock_nor_double_spend(
    ledger: Ledger, wide: Ledger
) -> None:
    world = await World.create(ledger)
    a, b = await holders(ledger, world, (60, 60))
    fees_before = await ledger.balance(FEE_ACCOUNT_ID)
    # each side: six sell orders of 10 t and six buy orders of 200,000 fen
    orders: dict[int, tuple[list[int], list[int]]] = {}
    for account in (a, b):
        await ledger.deposit(unique("d"), account, 10_000_000)
        sells, buys = [next(_ids) for _ in range(6)], [next(_ids) for _ in range(6)]
        for sell, buy in zip(sells, buys, strict=True):
            await ledger.lock_cers(sell, account, 10)
            await ledger.lock_cash(buy, account, 200_000)
        orders[account] = (sells, buys)
    rng = random.Random(13)
    trades: list[TradeToSettle] = []
    for seller, buyer in ((a, b), (b, a)):
        for sell, buy in zip(orders[seller][0], orders[buyer][1], strict=True):
            quantity = rng.randint(1, 10)
            price = rng.randint(1_000, 19_000)  # at most 190,000 fen, plus a fee under 0.5 %
            trades.append(
                TradeToSettle(next(_ids), buy, sell, buyer, seller, price, quantity, 40, 40)
            )
    # each trade alone, each A->B trade with its B->A twin, and a release of every other order
    batches = [[trade] for trade in trades] + [[trades[i], trades[i + 6]] for i in range(6)]
    releases = [
        order
        for account in (a, b)
        for order in [*orders[account][0][::2], *orders[account][1][1::2]]
    ]
    writes: list[Awaitable[Any]] = [wide.settle(batch) for batch in batches]
    writes += [wide.release(order) for order in releases]
    outcomes = await race(writes)
    reports, refused = sort_out(outcomes[: len(batches)], SettlementReport)
    released, refused_releases = sort_out(outcomes[len(batches) :], Released)

    # a batch is refused only because a release went first and took its lock away
    assert {code for _, code in refused} <= {ErrorCode.LOCK_INSUFFICIENT}
    assert refused_releases == []
    settled_ids = [trade_id for _, report in reports for trade_id in report.settled]
    assert len(settled_ids) == len(set(settled_ids))
    settled = [trade for trade in trades if trade.trade_id in set(settled_ids)]
    by_order = {result.order_id: result for _, result in released}

    for account in (a, b):
        held = await ledger.holdings(account)
        sells, buys = orders[account]
        for sell in sells:
            delivered = sum(t.quantity_t for t in settled if t.sell_order_id == sell)
            freed = by_order[sell].quantity_t if sell in by_order else 0
            still = sum(h.quantity_t for h in held if h.order_id == sell)
            # every tonne of the order went exactly one way
            assert delivered + freed + still == 10, sell
        locked_cash = 0
        for buy in buys:
            spent = sum(
                t.price_fen * t.quantity_t + fees(t)[0] for t in settled if t.buy_order_id == buy
            )
            if buy in by_order:
                # released: what the trades before it did not spend came back, all of it
                assert by_order[buy].cash_fen == 200_000 - spent
            else:
                locked_cash += 200_000 - spent
        assert (await ledger.balance(account)).locked_fen == locked_cash
    # nothing created or lost between the two and the fee account
    totals = [await ledger.balance(account) for account in (a, b)]
    fees_after = await ledger.balance(FEE_ACCOUNT_ID)
    cash = sum(t.available_fen + t.locked_fen for t in totals)
    assert cash + fees_after.available_fen - fees_before.available_fen == 20_000_000
    assert fees_after.available_fen - fees_before.available_fen == sum(
        sum(fees(t)) for t in settled
    )
    tonnes_held = [await ledger.holdings(account) for account in (a, b)]
    assert sum(h.quantity_t for held in tonnes_held for h in held) == 120
    await wide.check()
