"""The certificate document: its canonical bytes, its rules, and strict loading of its file."""

from __future__ import annotations

import datetime as dt
import json
import random
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offsets.certificate import (
    SHANGHAI,
    Certificate,
    CertifiedRange,
    broken_rule,
    canonical_bytes,
    certified_ranges,
    dump_signed,
    load_signed,
    with_checked_fields,
)
from offsets.errors import CertificateCode, CertificateError
from offsets.signing import sign
from settlement.values import SerialRange
from tests.offsets.builders import PLATFORM, SAMPLE, certificates, sample

PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)

GOLDEN = (
    '{"applied_on":"2026-03-02","approved_on":"2026-03-05","beneficiary":"深圳市绿色出行协会",'
    '"certificate_id":"SZCN-2026-000001","emissions_t":118,"issued_at":"2026-03-05T02:00:00Z",'
    '"issuer":"深圳碳普惠统一平台 CERX","purpose":"抵消赛事排放 Offsetting the event\'s emissions",'
    '"ranges":[{"block_id":"SZCER-P0001-2025-1","first":1,"last":100},'
    '{"block_id":"SZCER-P0002-2025-1","first":41,"last":60}],"retired_t":120,'
    '"retirement_ids":[7,9],"subject":"2026 深圳绿色马拉松 Green Marathon","subject_kind":"event",'
    '"verify_url":"https://cerx.example/certificates/SZCN-2026-000001","version":1}'
).encode()


def test_canonical_bytes_of_the_sample_are_the_golden_bytes() -> None:
    assert canonical_bytes(SAMPLE) == GOLDEN


def test_canonical_bytes_do_not_depend_on_the_order_fields_are_given_in() -> None:
    fields = {f.name: getattr(SAMPLE, f.name) for f in msgspec.structs.fields(Certificate)}
    backwards = Certificate(**dict(reversed(fields.items())))
    assert canonical_bytes(backwards) == GOLDEN


@PROPERTY_SETTINGS
@given(st.randoms(use_true_random=False))
def test_canonical_bytes_do_not_depend_on_the_key_order_of_the_json_read(
    rnd: random.Random,
) -> None:
    def shuffled(value: Any) -> Any:
        if isinstance(value, dict):
            items = list(value.items())
            rnd.shuffle(items)
            return {k: shuffled(v) for k, v in items}
        if isinstance(value, list):
            return [shuffled(v) for v in value]
        return value

    document = shuffled(json.loads(GOLDEN))
    read = msgspec.json.decode(json.dumps(document, ensure_ascii=False), type=Certificate)
    assert canonical_bytes(read) == GOLDEN


@PROPERTY_SETTINGS
@given(certificates())
def test_canonical_bytes_are_what_the_documented_json_recipe_writes(c: Certificate) -> None:
    recipe = json.dumps(
        msgspec.to_builtins(c), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()
    assert canonical_bytes(c) == recipe


@PROPERTY_SETTINGS
@given(certificates())
def test_a_valid_certificate_survives_the_file_round_trip(c: Certificate) -> None:
    signed = sign(c, PLATFORM)
    assert load_signed(dump_signed(signed)) == signed
    assert broken_rule(c) is None


def test_certified_ranges_converts_the_ledgers_ranges_and_orders_them() -> None:
    ledger = [SerialRange("SZCER-B-2025-1", 5, 9), SerialRange("SZCER-A-2025-1", 1, 3)]
    ranges = certified_ranges(ledger)
    assert ranges == (
        CertifiedRange("SZCER-A-2025-1", 1, 3),
        CertifiedRange("SZCER-B-2025-1", 5, 9),
    )
    assert all(isinstance(r, SerialRange) for r in ranges)
    assert sum(r.quantity_t for r in ranges) == 8
    assert CertifiedRange.of(ledger[0]) == ranges[1]


SHANGHAI_MIDNIGHT = dt.datetime(2026, 3, 5, tzinfo=SHANGHAI).astimezone(dt.UTC)
A, B = "SZCER-A-2025-1", "SZCER-B-2025-1"

# (the change, the rule it breaks): one row per rule, in the checks' order of precedence
BROKEN_RULES = [
    (
        {"ranges": (CertifiedRange(A, 10, 9),), "retired_t": 1},
        CertificateCode.RANGE_FIRST_MUST_NOT_EXCEED_LAST,
    ),
    (
        {"ranges": (CertifiedRange(B, 1, 10), CertifiedRange(A, 1, 10)), "retired_t": 20},
        CertificateCode.RANGES_MUST_BE_ORDERED_AND_DISJOINT,
    ),
    (
        {"ranges": (CertifiedRange(A, 1, 10), CertifiedRange(A, 10, 19)), "retired_t": 20},
        CertificateCode.RANGES_MUST_BE_ORDERED_AND_DISJOINT,
    ),
    (
        {"ranges": (CertifiedRange(A, 11, 20), CertifiedRange(A, 1, 10)), "retired_t": 20},
        CertificateCode.RANGES_MUST_BE_ORDERED_AND_DISJOINT,
    ),
    ({"retired_t": 121}, CertificateCode.RANGES_MUST_SUM_TO_RETIRED),
    ({"emissions_t": 121}, CertificateCode.RETIRED_MUST_COVER_EMISSIONS),
    ({"retirement_ids": (9, 7)}, CertificateCode.RETIREMENT_IDS_MUST_ASCEND),
    ({"retirement_ids": (7, 7)}, CertificateCode.RETIREMENT_IDS_MUST_ASCEND),
    (
        {"issued_at": SAMPLE.issued_at.astimezone(SHANGHAI)},
        CertificateCode.ISSUED_AT_MUST_BE_WHOLE_SECONDS_UTC,
    ),
    (
        {"issued_at": SAMPLE.issued_at.replace(microsecond=1)},
        CertificateCode.ISSUED_AT_MUST_BE_WHOLE_SECONDS_UTC,
    ),
    ({"applied_on": dt.date(2026, 3, 6)}, CertificateCode.APPROVAL_MUST_NOT_PRECEDE_APPLICATION),
    (
        {"issued_at": SHANGHAI_MIDNIGHT - dt.timedelta(seconds=1)},
        CertificateCode.ISSUE_MUST_NOT_PRECEDE_APPROVAL,
    ),
]


@pytest.mark.parametrize(("changes", "code"), BROKEN_RULES)
def test_a_certificate_breaking_a_rule_is_not_signed(
    changes: dict[str, Any], code: CertificateCode
) -> None:
    with pytest.raises(CertificateError) as refused:
        sign(sample(**changes), PLATFORM)
    assert refused.value.code is code


def test_issue_on_the_day_of_approval_in_shanghai_is_allowed() -> None:
    sign(sample(issued_at=SHANGHAI_MIDNIGHT), PLATFORM)


@pytest.mark.parametrize(
    "changes",
    [
        {"emissions_t": 0},
        {"retired_t": 2**53},
        {"ranges": ()},
        {"ranges": (CertifiedRange(A, 0, 119),)},
        {"retirement_ids": ()},
        {"beneficiary": ""},
        {"beneficiary": " 深圳市绿色出行协会"},
        {"beneficiary": "深圳市\n绿色出行协会"},
        {"beneficiary": "深圳市\u202e会协行出色绿"},
        {"beneficiary": "x" * 201},
        {"certificate_id": "szcn-2026-000001"},
        {"verify_url": "javascript:alert(1)"},
        {"verify_url": "https://cerx.example/有"},
        {"issued_at": SAMPLE.issued_at.replace(tzinfo=None)},
        {"subject_kind": "party"},
    ],
)
def test_a_certificate_outside_its_field_bounds_is_not_signed(changes: dict[str, Any]) -> None:
    with pytest.raises(CertificateError) as refused:
        sign(sample(**changes), PLATFORM)
    assert refused.value.code is CertificateCode.MALFORMED


def test_with_checked_fields_refuses_values_msgspec_cannot_encode() -> None:
    with pytest.raises(CertificateError) as refused:
        with_checked_fields(sample(beneficiary="\ud800"))
    assert refused.value.code is CertificateCode.MALFORMED
