"""Moving free tonnes: to another holder, or to an end (retired, surrendered, cancelled).

Offsets builds compliance surrender and voluntary retirement on `finish`, inside its own
transactions, after its own checks.
"""

from __future__ import annotations

from settlement.accounts import lock_accounts, require_role
from settlement.connection import Connection
from settlement.errors import ErrorCode, LedgerError
from settlement.holdings import apply, moved_ranges, select
from settlement.serials import Place, plan, to
from settlement.values import HOLDER_ROLES, Moved, Role, Selection, TonneState

FINISHERS = {
    TonneState.RETIRED: (HOLDER_ROLES, "retire CERs"),
    TonneState.SURRENDERED: (frozenset({Role.COMPLIANCE_ENTITY}), "surrender CERs"),
}


async def transfer(
    conn: Connection, txn_id: int, source_id: int, target_id: int, selection: Selection
) -> Moved:
    if source_id == target_id:
        raise LedgerError(ErrorCode.SAME_ACCOUNT, "a transfer needs two different accounts")
    roles = await lock_accounts(conn, [source_id, target_id])
    require_role(roles, source_id, HOLDER_ROLES, "transfer CERs")
    require_role(roles, target_id, HOLDER_ROLES, "receive CERs")
    moving = plan(to(Place(target_id, "free", None), await select(conn, source_id, selection)))
    await apply(conn, txn_id, moving)
    ranges = moved_ranges(moving)
    return Moved(txn_id, ranges, sum(r.quantity_t for r in ranges))


async def finish(
    conn: Connection,
    txn_id: int,
    account_id: int,
    state: TonneState,
    selection: Selection,
    actor_id: int | None = None,
) -> Moved:
    """Move the account's selected free tonnes to the end state `state`, for good.

    Retiring is for any holder, surrendering for compliance entities; cancelling is the
    regulator's (`actor_id`), acting on a holder's tonnes.
    """
    ids = [account_id] if actor_id is None else [account_id, actor_id]
    roles = await lock_accounts(conn, ids)
    if state is TonneState.CANCELLED:
        if actor_id is None:
            raise LedgerError(ErrorCode.ROLE_NOT_ALLOWED, "only the regulator cancels CERs")
        require_role(roles, actor_id, [Role.REGULATOR], "cancel CERs")
    elif state in FINISHERS:
        require_role(roles, account_id, *FINISHERS[state])
    else:
        raise AssertionError(f"{state} is not an end state")
    moving = plan(
        to(Place(account_id, state.value, None), await select(conn, account_id, selection))
    )
    await apply(conn, txn_id, moving)
    ranges = moved_ranges(moving)
    return Moved(txn_id, ranges, sum(r.quantity_t for r in ranges))
