"""The carbon-neutrality certificate (Art. 26): the document, its rules, its canonical bytes.

A `Certificate` says that `beneficiary` retired `retired_t` tonnes (the serials in `ranges`, by
the retirements `retirement_ids`) to neutralise `emissions_t` tonnes of `subject`. The platform
signs its canonical bytes; a `SignedCertificate` (the certificate, the key id, the signature) is
what the holder downloads, and its JSON is the certificate file.

Canonical bytes (version 1), which a third party can rebuild from the file with any JSON library:
the certificate object as JSON with keys sorted by code point at every level, no whitespace,
UTF-8, no character escaped but `"`, `\\` and the control characters (which no field may hold
anyway) — exactly Python's
`json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()`. Integers
are decimal, dates `YYYY-MM-DD`, `issued_at` `YYYY-MM-DDTHH:MM:SSZ`, lists keep their order.

Loading a file is strict, so that every verifier that follows that recipe reaches the same verdict
as this module: unknown or duplicate keys, wrong types, values out of bounds, and a certificate
not written exactly as its canonical form would write it (say `+00:00` for `Z`) are all refused
as `MALFORMED`. The bounds keep every integer below 2**53, so JavaScript reads them exactly too.

Rules beyond types (`broken_rule`, in precedence order): each range is first <= last; ranges are
in ascending (block, first) order and share no serial; they add up to `retired_t`; `retired_t`
covers `emissions_t`; retirement ids ascend; `issued_at` is UTC in whole seconds; application <=
approval <= the day of issue in Shanghai.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from enum import StrEnum
from itertools import pairwise
from typing import Annotated, Any, Final, TypeVar
from zoneinfo import ZoneInfo

import msgspec

from offsets.errors import CertificateCode, CertificateError
from settlement.values import SerialRange

CERTIFICATE_VERSION: Final = 1
SHANGHAI: Final = ZoneInfo("Asia/Shanghai")
MAX_FILE_BYTES: Final = 2 * 1024 * 1024
MAX_RANGES: Final = 5_000
MAX_RETIREMENTS: Final = 5_000

_MAX_SAFE_INTEGER = 2**53 - 1
# Line breaks, bidirectional overrides and other invisible controls would let a name print
# differently from what was signed.
_HIDDEN = r"\x00-\x1f\x7f-\x9f\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff"
TEXT = rf"^[^\s{_HIDDEN}](?:[^{_HIDDEN}]*[^\s{_HIDDEN}])?\Z"
"""What a name or a text a certificate holds may be: no invisible controls, no outer space."""
_ID = r"^[A-Z0-9]+(?:-[A-Z0-9]+)*\Z"

Positive = Annotated[int, msgspec.Meta(ge=1, le=_MAX_SAFE_INTEGER)]
Identifier = Annotated[str, msgspec.Meta(max_length=64, pattern=_ID)]
Url = Annotated[str, msgspec.Meta(max_length=512, pattern=r"^https?://[!-~]+\Z")]
Name = Annotated[str, msgspec.Meta(max_length=200, pattern=TEXT)]
LongText = Annotated[str, msgspec.Meta(max_length=500, pattern=TEXT)]
UtcTime = Annotated[dt.datetime, msgspec.Meta(tz=True)]


class SubjectKind(StrEnum):
    EVENT = "event"
    ORGANISATION_YEAR = "organisation_year"
    PRODUCT_BATCH = "product_batch"


class CertifiedRange(SerialRange, frozen=True, forbid_unknown_fields=True):
    """A ledger `SerialRange` as a certificate holds it: strict on load, serials from 1."""

    block_id: Identifier
    first: Positive
    last: Positive

    @classmethod
    def of(cls, serials: SerialRange) -> CertifiedRange:
        return cls(serials.block_id, serials.first, serials.last)


class Certificate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What the platform certifies; each field's meaning and bounds: docs/certificates.md."""

    certificate_id: Identifier
    beneficiary: Name
    subject_kind: SubjectKind
    subject: Name
    emissions_t: Positive
    retired_t: Positive
    ranges: Annotated[tuple[CertifiedRange, ...], msgspec.Meta(min_length=1, max_length=MAX_RANGES)]
    retirement_ids: Annotated[
        tuple[Positive, ...], msgspec.Meta(min_length=1, max_length=MAX_RETIREMENTS)
    ]
    purpose: LongText
    applied_on: dt.date
    approved_on: dt.date
    issued_at: UtcTime
    issuer: Name
    verify_url: Url
    version: Positive = CERTIFICATE_VERSION


class SignedCertificate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The certificate file: `signature` is the standard base64 (with padding) of the 64-byte
    Ed25519 signature; the pattern admits only the one canonical spelling of each signature."""

    certificate: Certificate
    key_id: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{16}\Z")]
    signature: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9+/]{85}[AQgw]==\Z")]


class _Version(msgspec.Struct):
    version: int


class _Envelope(msgspec.Struct):
    certificate: _Version


StructT = TypeVar("StructT", bound=msgspec.Struct)

_ENCODER = msgspec.json.Encoder(order="sorted")
_SIGNED_DECODER = msgspec.json.Decoder(SignedCertificate)
_ENVELOPE_DECODER = msgspec.json.Decoder(_Envelope)


def certified_ranges(ranges: Iterable[SerialRange]) -> tuple[CertifiedRange, ...]:
    """The ledger's ranges as a certificate lists them: ascending by block, then first serial.

    >>> ledger = [SerialRange("SZCER-B-2025-1", 5, 9), SerialRange("SZCER-A-2025-1", 7, 7)]
    >>> certified_ranges(ledger)  # doctest: +NORMALIZE_WHITESPACE
    (CertifiedRange(block_id='SZCER-A-2025-1', first=7, last=7),
     CertifiedRange(block_id='SZCER-B-2025-1', first=5, last=9))
    """
    return tuple(sorted(CertifiedRange.of(r) for r in ranges))


def canonical_bytes(certificate: Certificate) -> bytes:
    """The bytes the signature covers (see the module docstring)."""
    return _ENCODER.encode(certificate)


def broken_rule(c: Certificate) -> CertificateError | None:
    """The first rule beyond types that `c` breaks, in precedence order; None if it keeps all.

    `c` must satisfy its field types and bounds, as everything `load_signed` returns does.
    """
    backwards = next((r for r in c.ranges if r.first > r.last), None)
    clash = next(((a, b) for a, b in pairwise(c.ranges) if not _in_order(a, b)), None)
    in_ranges = sum(r.quantity_t for r in c.ranges)
    unsorted = next(((a, b) for a, b in pairwise(c.retirement_ids) if a >= b), None)
    issue_day = c.issued_at.astimezone(SHANGHAI).date()
    if backwards is not None:
        return CertificateError(CertificateCode.RANGE_FIRST_MUST_NOT_EXCEED_LAST, _show(backwards))
    if clash is not None:
        message = f"{_show(clash[0])} then {_show(clash[1])}"
        return CertificateError(CertificateCode.RANGES_MUST_BE_ORDERED_AND_DISJOINT, message)
    if in_ranges != c.retired_t:
        message = f"{in_ranges} t in the ranges, {c.retired_t} t retired"
        return CertificateError(CertificateCode.RANGES_MUST_SUM_TO_RETIRED, message)
    if c.retired_t < c.emissions_t:
        message = f"{c.retired_t} t retired for {c.emissions_t} t emitted"
        return CertificateError(CertificateCode.RETIRED_MUST_COVER_EMISSIONS, message)
    if unsorted is not None:
        message = f"retirement {unsorted[0]} then {unsorted[1]}"
        return CertificateError(CertificateCode.RETIREMENT_IDS_MUST_ASCEND, message)
    if c.issued_at.utcoffset() != dt.timedelta(0) or c.issued_at.microsecond:
        return CertificateError(
            CertificateCode.ISSUED_AT_MUST_BE_WHOLE_SECONDS_UTC, c.issued_at.isoformat()
        )
    if c.approved_on < c.applied_on:
        message = f"approved on {c.approved_on}, applied on {c.applied_on}"
        return CertificateError(CertificateCode.APPROVAL_MUST_NOT_PRECEDE_APPLICATION, message)
    if issue_day < c.approved_on:
        message = f"issued on {issue_day} (Shanghai), approved on {c.approved_on}"
        return CertificateError(CertificateCode.ISSUE_MUST_NOT_PRECEDE_APPROVAL, message)
    return None


def load_signed(data: bytes) -> SignedCertificate:
    """Read a certificate file strictly.

    Raise `CertificateError` with `VERSION_UNSUPPORTED` for another format version and
    `MALFORMED` for anything else that is not a signed certificate written in canonical form.
    The rules of `broken_rule` and the signature are `verify`'s to check.
    """
    if len(data) > MAX_FILE_BYTES:
        raise _malformed(f"the file is larger than {MAX_FILE_BYTES} bytes")
    try:
        version = _ENVELOPE_DECODER.decode(data).certificate.version
    except (msgspec.DecodeError, RecursionError) as e:
        raise _malformed(str(e)) from None
    if version != CERTIFICATE_VERSION:
        message = f"format version {version}; this verifier reads version {CERTIFICATE_VERSION}"
        raise CertificateError(CertificateCode.VERSION_UNSUPPORTED, message)
    try:
        signed = _SIGNED_DECODER.decode(data)
        # Safe to parse generically now: the typed decode bounded the nesting and the size.
        written = json.loads(data, object_pairs_hook=_refuse_duplicate_keys)["certificate"]
    except (msgspec.DecodeError, RecursionError, ValueError) as e:
        raise _malformed(str(e)) from None
    if _ENCODER.encode(written) != canonical_bytes(signed.certificate):
        raise _malformed("not in canonical form: issued_at must read YYYY-MM-DDTHH:MM:SSZ")
    return signed


def dump_signed(signed: SignedCertificate) -> bytes:
    """The certificate file: `signed` as indented UTF-8 JSON, keys sorted, ending in a newline."""
    return msgspec.json.format(_ENCODER.encode(signed), indent=2) + b"\n"


def with_checked_fields(value: StructT) -> StructT:
    """`value` rebuilt through the decoder, its types and bounds checked as a file's are.

    msgspec checks them only when decoding, so a struct built in Python may break them; raise
    `CertificateError(MALFORMED)` if it does.
    """
    try:
        return msgspec.json.decode(_ENCODER.encode(value), type=type(value))
    except (msgspec.MsgspecError, TypeError, ValueError) as e:
        raise _malformed(str(e)) from None


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Parsers disagree on which of two equal keys wins; a signed document must mean one thing.
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("an object repeats a key")
    return result


def _malformed(message: str) -> CertificateError:
    return CertificateError(CertificateCode.MALFORMED, message)


def _in_order(a: SerialRange, b: SerialRange) -> bool:
    """`b` starts after `a` ends: in a later block, or in the same block past `a.last`."""
    return (a.block_id, a.last) < (b.block_id, b.first)


def _show(r: SerialRange) -> str:
    return f"{r.block_id} {r.first}-{r.last}"
