"""The offsets package's front door: rules, verified emissions, surrenders and retirements.

Each write is one ledger transaction under an idempotency key (`Ledger.keyed`), so it is all or
nothing, a repeat returns the first result, and its tonnes' moves sit in the ledger's history
beside every other move. Dates are the exchange's local dates (Asia/Shanghai), passed in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from offsets import applications, retirement, rules, surrender
from offsets.applications import Application, IssuedCertificate
from offsets.certificate import SignedCertificate, SubjectKind
from offsets.retirement import Retired
from offsets.rules import OffsetRules, Published
from offsets.signing import PlatformKey
from offsets.surrender import BlockEligibility, Position, Surrendered, VerifiedEmissions
from settlement.accounts import lock_accounts, require_role
from settlement.connection import Connection
from settlement.ledger import Ledger
from settlement.values import Role, Selection


class OffsetRegistry:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._pool = ledger.database.pool

    async def publish_rules(
        self, key: str, regulator_id: int, offset_rules: OffsetRules
    ) -> Published:
        async def action(conn: Connection, txn_id: int) -> Published:
            await _regulator(conn, regulator_id, "publish offset rules")
            return await rules.publish(conn, txn_id, offset_rules)

        return await self.ledger.keyed(
            "publish_offset_rules", key, (regulator_id, offset_rules), Published, action
        )

    async def record_emissions(
        self,
        key: str,
        regulator_id: int,
        year: int,
        account_id: int,
        emissions_t: int,
        allocation_t: int | None = None,
    ) -> VerifiedEmissions:
        async def action(conn: Connection, txn_id: int) -> VerifiedEmissions:
            await _regulator(conn, regulator_id, "record verified emissions")
            return await surrender.record_emissions(
                conn, txn_id, year, account_id, emissions_t, allocation_t
            )

        return await self.ledger.keyed(
            "record_emissions",
            key,
            (regulator_id, year, account_id, emissions_t, allocation_t),
            VerifiedEmissions,
            action,
        )

    async def surrender(
        self,
        key: str,
        account_id: int,
        year: int,
        selection: Selection,
        on: dt.date,
        take: Selection | None = None,
    ) -> Surrendered:
        """Surrender `selection`; `take`, if given, names the same tonnes as the caller chose
        them (block by block), while the request a repeat must match stays `selection`."""
        taken = take or selection
        return await self.ledger.keyed(
            "surrender",
            key,
            (account_id, year, selection),
            Surrendered,
            lambda conn, txn: surrender.surrender(conn, txn, year, account_id, taken, on),
        )

    async def retire(
        self,
        key: str,
        account_id: int,
        selection: Selection,
        beneficiary: str,
        purpose: str,
        take: Selection | None = None,
    ) -> Retired:
        """Retire `selection` (named as `take`, if given: see `surrender`)."""
        taken = take or selection
        return await self.ledger.keyed(
            "retire",
            key,
            (account_id, selection, beneficiary, purpose),
            Retired,
            lambda conn, txn: retirement.retire(conn, txn, account_id, taken, beneficiary, purpose),
        )

    async def eligible_blocks(self, year: int, on: dt.date, block_ids: list[str]) -> set[str]:
        """Which of these blocks the year's rules in effect admit for surrender."""
        async with self._pool.acquire() as conn:
            published = await rules.in_effect(conn, year, on)
            found = await rules.scopes(conn, block_ids)
        return {b for b, scope in found.items() if published.rules.admits(scope) is None}

    async def submit_application(
        self,
        key: str,
        account_id: int,
        beneficiary: str,
        subject_kind: SubjectKind,
        subject: str,
        emissions_t: int,
        purpose: str,
        retirement_ids: Sequence[int],
        on: dt.date,
    ) -> Application:
        """Apply for carbon-neutrality certification of `subject` on the caller's retirements."""
        ids = tuple(retirement_ids)
        return await self.ledger.keyed(
            "apply_for_certificate",
            key,
            (account_id, beneficiary, subject_kind, subject, emissions_t, purpose, ids),
            Application,
            lambda conn, txn: applications.submit(
                conn,
                txn,
                account_id,
                beneficiary,
                subject_kind,
                subject,
                emissions_t,
                purpose,
                ids,
                on,
            ),
        )

    async def decide_application(
        self,
        key: str,
        regulator_id: int,
        application_id: int,
        approve: bool,
        reason: str | None,
        platform_key: PlatformKey,
        verify_base_url: str,
        now: dt.datetime,
    ) -> Application:
        """The regulator's decision; an approval issues the signed certificate."""

        async def action(conn: Connection, txn_id: int) -> Application:
            await _regulator(conn, regulator_id, "decide certificate applications")
            return await applications.decide(
                conn,
                txn_id,
                application_id,
                regulator_id,
                approve,
                reason,
                platform_key,
                verify_base_url,
                now,
            )

        return await self.ledger.keyed(
            "decide_certificate",
            key,
            (regulator_id, application_id, approve, reason),
            Application,
            action,
        )

    # -- reads ---------------------------------------------------------------------------------

    async def rules_history(self, year: int | None = None) -> list[Published]:
        async with self._pool.acquire() as conn:
            return await rules.history(conn, year)

    async def rules_in_effect(self, year: int, on: dt.date) -> Published:
        async with self._pool.acquire() as conn:
            return await rules.in_effect(conn, year, on)

    async def position(self, year: int, account_id: int, on: dt.date) -> Position:
        async with self._pool.acquire() as conn:
            return await surrender.position(conn, year, account_id, on)

    async def preview(
        self, year: int, account_id: int, on: dt.date
    ) -> tuple[Position, list[BlockEligibility]]:
        async with self._pool.acquire() as conn:
            return await surrender.preview(conn, year, account_id, on)

    async def surrenders(self, account_id: int, year: int | None = None) -> list[Surrendered]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT surrender_id, txn_id, year, quantity_t, rules_version FROM surrenders"
                " WHERE account_id = $1 AND ($2::int IS NULL OR year = $2) ORDER BY surrender_id",
                account_id,
                year,
            )
            ranges = await retirement.ranges_of(conn, [row["txn_id"] for row in rows])
        return [
            Surrendered(
                row["surrender_id"],
                row["year"],
                account_id,
                row["quantity_t"],
                ranges[row["txn_id"]],
                row["rules_version"],
            )
            for row in rows
        ]

    async def applications(
        self, account_id: int | None = None, state: str | None = None
    ) -> list[Application]:
        async with self._pool.acquire() as conn:
            return await applications.applications(conn, account_id=account_id, state=state)

    async def application(self, application_id: int) -> Application:
        async with self._pool.acquire() as conn:
            return await applications.application(conn, application_id)

    async def certificate(self, certificate_id: str) -> SignedCertificate:
        async with self._pool.acquire() as conn:
            return await applications.certificate(conn, certificate_id)

    async def certificates(self) -> list[IssuedCertificate]:
        async with self._pool.acquire() as conn:
            return await applications.register(conn)

    async def retirements(self, account_id: int) -> list[Retired]:
        async with self._pool.acquire() as conn:
            return await retirement.retirements_of(conn, account_id)


async def _regulator(conn: Connection, actor_id: int, doing: str) -> None:
    roles = await lock_accounts(conn, [actor_id])
    require_role(roles, actor_id, [Role.REGULATOR], doing)
