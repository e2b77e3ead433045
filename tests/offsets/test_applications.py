"""Carbon-neutrality certification on the real ledger: an application rests on the applicant's
retirements with complete coverage; the regulator approves (the signed certificate is issued and
verifies) or rejects (the retirements are free again); no retirement backs two applications, even
when two race for it; every refusal has its code and changes nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import msgspec
import pytest

from offsets.certificate import SubjectKind, load_signed
from offsets.errors import CertificateCode, ErrorCode, OffsetError
from offsets.registry import OffsetRegistry
from offsets.signing import PlatformKey, verify
from settlement.errors import ErrorCode as LedgerCode
from settlement.errors import LedgerError
from settlement.ledger import Ledger
from settlement.values import ByQuantity, Role
from tests.offsets.market import World
from tests.settlement import builders
from tests.settlement.conftest import unique

ON = dt.date(2026, 11, 20)
NOW = dt.datetime(2026, 11, 25, 2, 30, 15, 123_456, tzinfo=dt.UTC)
BASE = "https://cerx.example/"


@pytest.fixture
def key(tmp_path: Path) -> PlatformKey:
    return PlatformKey.open(tmp_path)


async def retiring_holder(
    ledger: Ledger, registry: OffsetRegistry, *quantities: int
) -> tuple[int, list[int], World]:
    world = await World.create(ledger)
    holder = (await builders.account(ledger, Role.TRADER)).account_id
    await ledger.transfer(unique("t"), world.owner, holder, ByQuantity(sum(quantities)))
    ids = []
    for quantity in quantities:
        retired = await registry.retire(
            unique("r"), holder, ByQuantity(quantity), "深圳某公司", "年会碳中和"
        )
        ids.append(retired.retirement_id)
    return holder, ids, world


async def apply(registry: OffsetRegistry, holder: int, ids: list[int], emissions_t: int) -> int:
    application = await registry.submit_application(
        unique("a"),
        holder,
        "深圳某公司",
        SubjectKind.EVENT,
        "2026 年会",
        emissions_t,
        "年会碳中和",
        ids,
        ON,
    )
    assert application.state == "submitted"
    return application.application_id


async def test_an_approved_application_issues_a_certificate_that_verifies(
    ledger: Ledger, registry: OffsetRegistry, key: PlatformKey
) -> None:
    holder, ids, world = await retiring_holder(ledger, registry, 25, 35)
    application_id = await apply(registry, holder, ids, 50)
    decided = await registry.decide_application(
        unique("d"), world.regulator, application_id, True, None, key, BASE, NOW
    )
    assert decided.state == "approved" and decided.retired_t == 60
    signed = await registry.certificate(decided.certificate_id or "")
    certificate = signed.certificate
    assert certificate.certificate_id == decided.certificate_id
    assert certificate.certificate_id.startswith("SZCN-2026-")
    assert certificate.verify_url == f"https://cerx.example/certificates/{decided.certificate_id}"
    assert (certificate.emissions_t, certificate.retired_t) == (50, 60)
    assert certificate.retirement_ids == tuple(ids)
    assert certificate.issued_at == NOW.replace(microsecond=0)
    retired = [r for rs in [x.ranges for x in await registry.retirements(holder)] for r in rs]
    assert sum(r.last - r.first + 1 for r in certificate.ranges) == 60
    assert {r.block_id for r in certificate.ranges} == {r.block_id for r in retired}
    assert verify(signed, key.public_key).valid
    # tampered after issue: the signature fails
    forged = msgspec.json.decode(msgspec.json.encode(signed))
    forged["certificate"]["emissions_t"] = 5
    tampered = load_signed(msgspec.json.encode(forged))
    assert verify(tampered, key.public_key).reason is CertificateCode.SIGNATURE_INVALID
    register = await registry.certificates()
    assert decided.certificate_id in {c.certificate_id for c in register}
    # decided once only
    await refused_offset(
        ErrorCode.APPLICATION_ALREADY_DECIDED,
        registry.decide_application(
            unique("d"), world.regulator, application_id, False, "late", key, BASE, NOW
        ),
    )


async def test_a_rejection_frees_the_retirements_for_a_new_application(
    ledger: Ledger, registry: OffsetRegistry, key: PlatformKey
) -> None:
    holder, ids, world = await retiring_holder(ledger, registry, 40)
    first = await apply(registry, holder, ids, 40)
    await refused_offset(ErrorCode.RETIREMENT_ALREADY_CLAIMED, apply(registry, holder, ids, 40))
    await refused_offset(
        ErrorCode.TEXT_INVALID,
        registry.decide_application(unique("d"), world.regulator, first, False, "", key, BASE, NOW),
    )
    with pytest.raises(LedgerError) as not_regulator:
        await registry.decide_application(unique("d"), holder, first, True, None, key, BASE, NOW)
    assert not_regulator.value.code is LedgerCode.ROLE_NOT_ALLOWED
    rejected = await registry.decide_application(
        unique("d"), world.regulator, first, False, "emissions not evidenced", key, BASE, NOW
    )
    assert (rejected.state, rejected.reason) == ("rejected", "emissions not evidenced")
    second = await apply(registry, holder, ids, 40)
    assert second != first
    assert [a.state for a in await registry.applications(holder)] == ["rejected", "submitted"]


async def test_application_refusals(
    ledger: Ledger, registry: OffsetRegistry, key: PlatformKey
) -> None:
    holder, ids, world = await retiring_holder(ledger, registry, 10)
    other, other_ids, _ = await retiring_holder(ledger, registry, 10)
    await refused_offset(ErrorCode.COVERAGE_INCOMPLETE, apply(registry, holder, ids, 11))
    await refused_offset(ErrorCode.RETIREMENT_NOT_FOUND, apply(registry, holder, other_ids, 5))
    await refused_offset(ErrorCode.COVERAGE_INCOMPLETE, apply(registry, holder, [], 5))
    await refused_offset(
        ErrorCode.APPLICATION_NOT_FOUND,
        registry.decide_application(
            unique("d"), world.regulator, 10**9, True, None, key, BASE, NOW
        ),
    )
    assert await registry.applications(holder) == []
    del other


async def test_two_applications_racing_for_one_retirement(
    ledger: Ledger, registry: OffsetRegistry
) -> None:
    holder, ids, _ = await retiring_holder(ledger, registry, 30)
    outcomes = await asyncio.gather(
        *(apply(registry, holder, ids, 30) for _ in range(6)), return_exceptions=True
    )
    won = [o for o in outcomes if isinstance(o, int)]
    lost = [o for o in outcomes if isinstance(o, OffsetError)]
    assert len(won) == 1 and len(lost) == 5
    assert {e.code for e in lost} == {ErrorCode.RETIREMENT_ALREADY_CLAIMED}


async def refused_offset(code: ErrorCode, awaitable: object) -> None:
    with pytest.raises(OffsetError) as caught:
        await awaitable  # type: ignore[misc]
    assert caught.value.code is code, caught.value


@pytest.mark.parametrize("text", ["b\u202ed", "\ufeffb", "p\x7f", "a\u2066b"])
async def test_text_a_certificate_could_not_hold_is_refused_when_applying(
    ledger: Ledger, registry: OffsetRegistry, text: str
) -> None:
    """Once such an application was accepted, its approval failed on the certificate's own rule
    and it stayed submitted for good, its retirements claimed."""
    holder, ids, _ = await retiring_holder(ledger, registry, 10)
    for beneficiary, subject, purpose in [(text, "s", "p"), ("b", text, "p"), ("b", "s", text)]:
        await refused_offset(
            ErrorCode.TEXT_INVALID,
            registry.submit_application(
                unique("a"), holder, beneficiary, SubjectKind.EVENT, subject, 10, purpose, ids, ON
            ),
        )
    await apply(registry, holder, ids, 10)  # the retirements were never claimed
