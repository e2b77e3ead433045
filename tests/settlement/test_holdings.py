"""Holdings as serial ranges: transfers by quantity (oldest vintage first) and by named ranges,
splitting, listing, and the end states from which tonnes never move again."""

from __future__ import annotations

from settlement.errors import ErrorCode
from settlement.ledger import Ledger
from settlement.values import (
    ByBlocks,
    ByQuantity,
    ByRanges,
    CerFilter,
    Role,
    SerialRange,
    TonneState,
)
from tests.settlement import builders
from tests.settlement.builders import World
from tests.settlement.conftest import unique
from tests.settlement.refusals import refused


def free(holdings: list) -> list[tuple[str, int, int]]:  # type: ignore[type-arg]
    return [(h.block_id, h.first, h.last) for h in holdings if h.state is TonneState.FREE]


async def test_transfer_by_quantity_takes_the_oldest_vintage_first(ledger: Ledger) -> None:
    world = await World.create(ledger)
    new = await world.issue(ledger, 100, vintage=2025)
    old = await world.issue(ledger, 30, vintage=2023)
    buyer = await builders.account(ledger, Role.TRADER)
    moved = await ledger.transfer(
        unique("t"), world.owner.account_id, buyer.account_id, ByQuantity(40)
    )
    assert moved.ranges == (SerialRange(old.block_id, 1, 30), SerialRange(new.block_id, 1, 10))
    assert moved.quantity_t == 40
    assert free(await ledger.holdings(buyer.account_id)) == [
        (old.block_id, 1, 30),
        (new.block_id, 1, 10),
    ]
    assert free(await ledger.holdings(world.owner.account_id)) == [(new.block_id, 11, 100)]


async def test_transfer_by_quantity_honours_a_filter(ledger: Ledger) -> None:
    world = await World.create(ledger)
    await world.issue(ledger, 30, vintage=2023)
    wanted = await world.issue(ledger, 50, vintage=2025)
    buyer = await builders.account(ledger, Role.TRADER)
    moved = await ledger.transfer(
        unique("t"),
        world.owner.account_id,
        buyer.account_id,
        ByQuantity(20, CerFilter(vintages=(2025,), projects=(world.project.code,))),
    )
    assert moved.ranges == (SerialRange(wanted.block_id, 1, 20),)
    await refused(
        ErrorCode.INSUFFICIENT_HOLDINGS,
        ledger.transfer(
            unique("t"),
            world.owner.account_id,
            buyer.account_id,
            ByQuantity(1, CerFilter(methodologies=("NOSUCH",))),
        ),
    )


async def test_named_ranges_split_runs_and_list_back_joined(ledger: Ledger) -> None:
    world = await World.create(ledger)
    block = await world.issue(ledger, 100)
    buyer = await builders.account(ledger, Role.TRADER)
    owner = world.owner.account_id
    ranges = (SerialRange(block.block_id, 11, 20), SerialRange(block.block_id, 41, 45))
    moved = await ledger.transfer(unique("t"), owner, buyer.account_id, ByRanges(ranges))
    assert moved.quantity_t == 15
    assert free(await ledger.holdings(owner)) == [
        (block.block_id, 1, 10),
        (block.block_id, 21, 40),
        (block.block_id, 46, 100),
    ]
    # handing back the piece in between makes the runs touch: they list as one
    await ledger.transfer(
        unique("t"), buyer.account_id, owner, ByRanges((SerialRange(block.block_id, 11, 20),))
    )
    assert free(await ledger.holdings(owner)) == [
        (block.block_id, 1, 40),
        (block.block_id, 46, 100),
    ]


async def test_ranges_not_held_free_are_refused_and_nothing_moves(ledger: Ledger) -> None:
    world = await World.create(ledger)
    block = await world.issue(ledger, 10)
    buyer = await builders.account(ledger, Role.TRADER)
    owner = world.owner.account_id
    before = await ledger.holdings(owner)
    for ranges in [
        (SerialRange(block.block_id, 5, 11),),  # runs past the block
        (SerialRange(block.block_id, 1, 2), SerialRange("SZCER-NOSUCH-2025-1", 1, 1)),
    ]:
        await refused(
            ErrorCode.RANGE_NOT_HELD,
            ledger.transfer(unique("t"), owner, buyer.account_id, ByRanges(ranges)),
        )
    for ranges in [
        (),
        (SerialRange(block.block_id, 0, 3),),
        (SerialRange(block.block_id, 4, 3),),
        (SerialRange(block.block_id, 1, 5), SerialRange(block.block_id, 5, 6)),
    ]:
        await refused(
            ErrorCode.MALFORMED_RANGE,
            ledger.transfer(unique("t"), owner, buyer.account_id, ByRanges(ranges)),
        )
    assert await ledger.holdings(owner) == before
    assert await ledger.holdings(buyer.account_id) == []


async def test_transfer_refusals(ledger: Ledger) -> None:
    world = await World.create(ledger)
    await world.issue(ledger, 10)
    buyer = await builders.account(ledger, Role.TRADER)
    regulator = world.regulator.account_id
    owner = world.owner.account_id
    cases = [
        (ErrorCode.INSUFFICIENT_HOLDINGS, owner, buyer.account_id, ByQuantity(11)),
        (ErrorCode.QUANTITY_MUST_BE_POSITIVE, owner, buyer.account_id, ByQuantity(0)),
        (ErrorCode.SAME_ACCOUNT, owner, owner, ByQuantity(1)),
        (ErrorCode.ACCOUNT_NOT_FOUND, owner, 987_654, ByQuantity(1)),
        (ErrorCode.ROLE_NOT_ALLOWED, owner, regulator, ByQuantity(1)),
    ]
    for code, source, target, selection in cases:
        await refused(code, ledger.transfer(unique("t"), source, target, selection))
    assert free(await ledger.holdings(owner))[0][1:] == (1, 10)


async def test_retired_tonnes_never_move_again(ledger: Ledger) -> None:
    world = await World.create(ledger)
    block = await world.issue(ledger, 10)
    owner = world.owner.account_id
    buyer = await builders.account(ledger, Role.TRADER)
    retired = await ledger.finish(unique("r"), owner, TonneState.RETIRED, ByQuantity(4))
    assert retired.ranges == (SerialRange(block.block_id, 1, 4),)
    await refused(
        ErrorCode.RANGE_NOT_HELD,
        ledger.transfer(
            unique("t"), owner, buyer.account_id, ByRanges((SerialRange(block.block_id, 1, 1),))
        ),
    )
    await refused(
        ErrorCode.RANGE_NOT_HELD,
        ledger.finish(
            unique("r"),
            owner,
            TonneState.RETIRED,
            ByRanges((SerialRange(block.block_id, 4, 5),)),
        ),
    )
    states = {(h.state, h.first, h.last) for h in await ledger.holdings(owner)}
    assert states == {(TonneState.RETIRED, 1, 4), (TonneState.FREE, 5, 10)}


async def test_surrender_is_for_compliance_entities_and_cancel_for_the_regulator(
    ledger: Ledger,
) -> None:
    world = await World.create(ledger)
    await world.issue(ledger, 20)
    entity = await builders.account(ledger, Role.COMPLIANCE_ENTITY)
    owner = world.owner.account_id
    await ledger.transfer(unique("t"), owner, entity.account_id, ByQuantity(10))
    await refused(
        ErrorCode.ROLE_NOT_ALLOWED,
        ledger.finish(unique("s"), owner, TonneState.SURRENDERED, ByQuantity(1)),
    )
    surrendered = await ledger.finish(
        unique("s"), entity.account_id, TonneState.SURRENDERED, ByQuantity(3)
    )
    assert surrendered.quantity_t == 3
    await refused(
        ErrorCode.ROLE_NOT_ALLOWED,
        ledger.finish(unique("c"), owner, TonneState.CANCELLED, ByQuantity(1)),
    )
    await refused(
        ErrorCode.ROLE_NOT_ALLOWED,
        ledger.finish(unique("c"), owner, TonneState.CANCELLED, ByQuantity(1), actor_id=owner),
    )
    cancelled = await ledger.finish(
        unique("c"),
        owner,
        TonneState.CANCELLED,
        ByQuantity(2),
        actor_id=world.regulator.account_id,
    )
    assert cancelled.quantity_t == 2
    report = await ledger.check()
    assert report.tonnes_by_state[TonneState.SURRENDERED] >= 3
    assert report.tonnes_by_state[TonneState.CANCELLED] >= 2


async def test_transfer_by_blocks_takes_so_many_of_each_named_block(ledger: Ledger) -> None:
    world = await World.create(ledger)
    new = await world.issue(ledger, 100, vintage=2025)
    old = await world.issue(ledger, 30, vintage=2023)
    buyer = await builders.account(ledger, Role.TRADER)
    owner = world.owner.account_id
    picks = ByBlocks(((new.block_id, 10), (old.block_id, 5)))
    moved = await ledger.transfer(unique("t"), owner, buyer.account_id, picks)
    assert moved.quantity_t == 15
    assert sorted(free(await ledger.holdings(buyer.account_id))) == sorted(
        [(new.block_id, 1, 10), (old.block_id, 1, 5)]
    )
    before = await ledger.holdings(owner)
    for code, selection in (
        (ErrorCode.INSUFFICIENT_HOLDINGS, ByBlocks(((old.block_id, 26),))),
        (ErrorCode.QUANTITY_MUST_BE_POSITIVE, ByBlocks(((old.block_id, 0),))),
        (ErrorCode.MALFORMED_RANGE, ByBlocks(((old.block_id, 1), (old.block_id, 1)))),
        (ErrorCode.MALFORMED_RANGE, ByBlocks(())),
        (ErrorCode.INSUFFICIENT_HOLDINGS, ByBlocks(((new.block_id, 1), ("SZCER-NONE-2025-1", 1)))),
    ):
        await refused(code, ledger.transfer(unique("t"), owner, buyer.account_id, selection))
    assert await ledger.holdings(owner) == before
