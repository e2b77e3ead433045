"""A fixed certificate, random valid ones, fixed keys, and edits of a certificate file."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import strategies as st

from offsets.certificate import SHANGHAI, Certificate, CertifiedRange, SubjectKind
from offsets.signing import PlatformKey

SAMPLE = Certificate(
    certificate_id="SZCN-2026-000001",
    beneficiary="深圳市绿色出行协会",
    subject_kind=SubjectKind.EVENT,
    subject="2026 深圳绿色马拉松 Green Marathon",
    emissions_t=118,
    retired_t=120,
    ranges=(
        CertifiedRange("SZCER-P0001-2025-1", 1, 100),
        CertifiedRange("SZCER-P0002-2025-1", 41, 60),
    ),
    retirement_ids=(7, 9),
    purpose="抵消赛事排放 Offsetting the event's emissions",
    applied_on=dt.date(2026, 3, 2),
    approved_on=dt.date(2026, 3, 5),
    issued_at=dt.datetime(2026, 3, 5, 2, 0, 0, tzinfo=dt.UTC),
    issuer="深圳碳普惠统一平台 CERX",
    verify_url="https://cerx.example/certificates/SZCN-2026-000001",
)


def sample(**changes: Any) -> Certificate:
    return msgspec.structs.replace(SAMPLE, **changes)


def fixed_key(seed: int) -> PlatformKey:
    """A platform key from a fixed seed, so signatures are the same on every run."""
    return PlatformKey(Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32))


PLATFORM = fixed_key(1)
OTHER = fixed_key(2)


def edited(data: bytes, edit: Callable[[dict[str, Any]], None]) -> bytes:
    """The certificate file `data` after `edit` changed its JSON object in place; written as a
    generic JSON library writes it, so only the edit differs from a canonical file."""
    document = json.loads(data)
    edit(document)
    return json.dumps(document, ensure_ascii=False, indent=1).encode()


_text = (
    st.text(
        st.characters(codec="utf-8", exclude_categories=("Cc", "Cf", "Cs", "Zl", "Zp")),
        min_size=1,
        max_size=30,
    )
    .map(str.strip)
    .filter(bool)
)
_ids = st.from_regex(r"[A-Z0-9]{1,8}(-[A-Z0-9]{1,8}){0,3}", fullmatch=True)


@st.composite
def certificates(draw: st.DrawFn) -> Certificate:
    """Certificates that keep every rule, with any text and any bounded integer."""
    blocks = draw(st.lists(_ids, min_size=1, max_size=6, unique=True))
    ranges = []
    for block in sorted(blocks):
        first = draw(st.integers(1, 2**40))
        last = draw(st.integers(first, first + 2**20))
        ranges.append(CertifiedRange(block, first, last))
    retired_t = sum(r.quantity_t for r in ranges)
    applied_on = draw(st.dates(dt.date(2024, 1, 1), dt.date(2035, 12, 31)))
    approved_on = applied_on + dt.timedelta(days=draw(st.integers(0, 90)))
    midnight = dt.datetime.combine(approved_on, dt.time(), SHANGHAI).astimezone(dt.UTC)
    return Certificate(
        certificate_id=draw(_ids),
        beneficiary=draw(_text),
        subject_kind=draw(st.sampled_from(SubjectKind)),
        subject=draw(_text),
        emissions_t=draw(st.integers(1, retired_t)),
        retired_t=retired_t,
        ranges=tuple(ranges),
        retirement_ids=tuple(
            sorted(draw(st.lists(st.integers(1, 2**53 - 1), min_size=1, max_size=5, unique=True)))
        ),
        purpose=draw(_text),
        applied_on=applied_on,
        approved_on=approved_on,
        issued_at=midnight + dt.timedelta(seconds=draw(st.integers(0, 30 * 86_400))),
        issuer=draw(_text),
        verify_url="https://cerx.example/c/" + draw(st.from_regex(r"[!-~]{1,40}", fullmatch=True)),
    )
