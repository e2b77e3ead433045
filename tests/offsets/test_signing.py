"""Signing and verifying certificates: every tampering fails with its code, hostile files are
MALFORMED and never raise, and the platform key file is private and stable."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from offsets import signing
from offsets.certificate import (
    MAX_FILE_BYTES,
    Certificate,
    SignedCertificate,
    canonical_bytes,
    dump_signed,
    load_signed,
)
from offsets.errors import CertificateCode
from offsets.signing import (
    KEY_FILE_NAME,
    SIGNING_CONTEXT,
    KeyFileError,
    PlatformKey,
    key_id,
    load_public_key,
    sign,
    verify,
    verify_bytes,
)
from tests.offsets.builders import OTHER, PLATFORM, SAMPLE, certificates, edited, sample
from tests.offsets.test_certificate import BROKEN_RULES, GOLDEN

PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)
SIGNED = sign(SAMPLE, PLATFORM)
FILE = dump_signed(SIGNED)


def verdict_of(data: bytes) -> CertificateCode:
    return verify_bytes(data, PLATFORM.public_key).reason


def test_the_signature_is_ed25519_over_the_context_and_the_canonical_bytes() -> None:
    assert SIGNED.key_id == "34750f98bd59fcfc"
    assert SIGNED.signature == (
        "oFgiITCtUKWbChtWUL2ZWXJ0k7dSBDaCQw/Kh4nh56bK+lCUjhJkxoRM5bYjZ/F2A7ldeVpKVScSTt2RjNLXDQ=="
    )
    PLATFORM.public_key.verify(base64.b64decode(SIGNED.signature), SIGNING_CONTEXT + GOLDEN)


def test_a_signed_certificate_verifies() -> None:
    verdict = verify(SIGNED, PLATFORM.public_key)
    assert verdict.valid
    assert verdict.reason is CertificateCode.VALID
    assert verify_bytes(FILE, PLATFORM.public_key) == verdict


@PROPERTY_SETTINGS
@given(certificates())
def test_any_signed_certificate_verifies_from_its_file(c: Certificate) -> None:
    assert verdict_of(dump_signed(sign(c, PLATFORM))) is CertificateCode.VALID


def _locate(document: dict[str, Any], path: str) -> tuple[Any, Any]:
    """The container and the key or index that `path` ("certificate.ranges.0.first") names."""
    *parents, last = path.split(".")
    node: Any = document
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    return node, int(last) if last.isdigit() else last


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        node, key = _locate(document, f"certificate.{path}")
        node[key] = value

    return edit


# One change of each field, each of which leaves a well-formed certificate.
TAMPERED_FIELDS = {
    "certificate_id": _set("certificate_id", "SZCN-2026-000002"),
    "beneficiary": _set("beneficiary", "深圳市绿色出行协会分会"),
    "subject_kind": _set("subject_kind", "product_batch"),
    "subject": _set("subject", "2027 深圳绿色马拉松 Green Marathon"),
    "emissions_t": _set("emissions_t", 117),
    "retired_t": _set("retired_t", 119),
    "ranges": _set("ranges.1.block_id", "SZCER-P0003-2025-1"),
    "retirement_ids": _set("retirement_ids", [7, 8]),
    "purpose": _set("purpose", "抵消赛事排放"),
    "applied_on": _set("applied_on", "2026-03-01"),
    "approved_on": _set("approved_on", "2026-03-04"),
    "issued_at": _set("issued_at", "2026-03-05T02:00:01Z"),
    "issuer": _set("issuer", "CERX"),
    "verify_url": _set("verify_url", "https://cerx.example.evil/certificates/SZCN-2026-000001"),
}


def test_every_field_has_a_tampering_case() -> None:
    fields = {f.name for f in msgspec.structs.fields(Certificate)} - {"version"}
    assert set(TAMPERED_FIELDS) == fields


@pytest.mark.parametrize("field", sorted(TAMPERED_FIELDS))
def test_a_changed_field_breaks_the_signature(field: str) -> None:
    data = edited(FILE, TAMPERED_FIELDS[field])
    assert load_signed(data).certificate != SAMPLE
    assert verdict_of(data) is CertificateCode.SIGNATURE_INVALID


@pytest.mark.parametrize(
    "edits",
    [
        [_set("ranges.0.last", 101)],
        [_set("ranges.0.last", 101), _set("retired_t", 121)],
        [_set("ranges.1.first", 40), _set("retired_t", 121), _set("emissions_t", 121)],
        [_set("ranges", [{"block_id": "SZCER-P0001-2025-1", "first": 1, "last": 120}])],
    ],
    ids=["last", "last-and-total", "first-total-and-emissions", "one-range"],
)
def test_widened_ranges_break_the_signature(edits: list[Any]) -> None:
    def edit(document: dict[str, Any]) -> None:
        for one in edits:
            one(document)

    assert verdict_of(edited(FILE, edit)) is CertificateCode.SIGNATURE_INVALID


def test_a_new_format_version_is_unsupported() -> None:
    data = edited(FILE, _set("version", 2))
    assert verdict_of(data) is CertificateCode.VERSION_UNSUPPORTED
    data = edited(FILE, _set("carbon_intensity_g", 3))
    data = edited(data, _set("version", 2))
    assert verdict_of(data) is CertificateCode.VERSION_UNSUPPORTED


def _flip(signature: str, bit: int) -> str:
    raw = bytearray(base64.b64decode(signature))
    raw[bit // 8] ^= 1 << (bit % 8)
    return base64.b64encode(raw).decode()


@PROPERTY_SETTINGS
@given(st.integers(0, 511))
def test_a_flipped_signature_bit_breaks_the_signature(bit: int) -> None:
    def edit(document: dict[str, Any]) -> None:
        document["signature"] = _flip(document["signature"], bit)

    assert verdict_of(edited(FILE, edit)) is CertificateCode.SIGNATURE_INVALID


def test_a_swapped_key_id_is_a_key_mismatch() -> None:
    def edit(document: dict[str, Any]) -> None:
        document["key_id"] = OTHER.key_id

    assert verdict_of(edited(FILE, edit)) is CertificateCode.KEY_MISMATCH


def test_a_certificate_signed_by_another_key_is_a_key_mismatch() -> None:
    forged = dump_signed(sign(SAMPLE, OTHER))
    assert verdict_of(forged) is CertificateCode.KEY_MISMATCH
    assert verify_bytes(forged, OTHER.public_key).valid


def test_another_keys_signature_under_the_platforms_key_id_is_invalid() -> None:
    def edit(document: dict[str, Any]) -> None:
        document["key_id"] = PLATFORM.key_id

    forged = edited(dump_signed(sign(SAMPLE, OTHER)), edit)
    assert verdict_of(forged) is CertificateCode.SIGNATURE_INVALID


def _signed_without_checks(c: Certificate) -> SignedCertificate:
    signature = PLATFORM.sign_message(SIGNING_CONTEXT + canonical_bytes(c))
    return SignedCertificate(c, PLATFORM.key_id, base64.b64encode(signature).decode())


@pytest.mark.parametrize(("changes", "code"), BROKEN_RULES)
def test_a_signed_certificate_breaking_a_rule_is_refused_with_the_rule(
    changes: dict[str, Any], code: CertificateCode
) -> None:
    signed = _signed_without_checks(sample(**changes))
    assert verify(signed, PLATFORM.public_key).reason is code
    assert verdict_of(dump_signed(signed)) is code


# Hostile files: each is MALFORMED, and nothing raises.


def test_every_truncation_of_a_file_is_malformed() -> None:
    document = FILE.rstrip()
    for end in range(len(document)):
        assert verdict_of(document[:end]) is CertificateCode.MALFORMED, end


@PROPERTY_SETTINGS
@given(st.binary(max_size=2_000))
def test_random_bytes_are_malformed(data: bytes) -> None:
    assert verdict_of(data) is CertificateCode.MALFORMED


DEPTH = 100_000
DEEP = [
    b"[" * DEPTH,
    b"[" * DEPTH + b"]" * DEPTH,
    b'{"certificate":' + b"[" * DEPTH + b"]" * DEPTH + b"}",
    b'{"certificate":{"version":1,"x":' + b'{"a":' * DEPTH + b"1" + b"}" * DEPTH + b"}}",
    FILE.replace(b'"key_id"', b'"x":' + b"[" * DEPTH + b"]" * DEPTH + b',"key_id"'),
]


@pytest.mark.parametrize("data", DEEP, ids=range(len(DEEP)))
def test_deep_nesting_is_malformed(data: bytes) -> None:
    assert verdict_of(data) is CertificateCode.MALFORMED


@pytest.mark.parametrize(
    "number",
    [b"10" * 200, b"18446744073709551616", b"9007199254740992", b"-1", b"0", b"1.5", b"1e3"],
)
def test_numbers_out_of_bounds_or_not_integers_are_malformed(number: bytes) -> None:
    data = FILE.replace(b'"emissions_t": 118', b'"emissions_t": ' + number)
    assert data != FILE
    assert verdict_of(data) is CertificateCode.MALFORMED


INTEGER_PATHS = [
    "certificate.emissions_t",
    "certificate.retired_t",
    "certificate.ranges.0.first",
    "certificate.ranges.1.last",
    "certificate.retirement_ids.0",
]
out_of_bounds = st.one_of(
    st.integers(max_value=0),
    st.integers(min_value=2**53, max_value=2**64 + 1),
    st.integers(min_value=2**64, max_value=10**400),
)


@PROPERTY_SETTINGS
@given(st.sampled_from(INTEGER_PATHS), out_of_bounds)
def test_an_integer_out_of_bounds_is_malformed(path: str, number: int) -> None:
    document = json.loads(FILE)
    node, key = _locate(document, path)
    node[key] = number
    assert (
        verdict_of(json.dumps(document, ensure_ascii=False).encode()) is CertificateCode.MALFORMED
    )


def _kind(value: Any) -> str:
    return "bool" if isinstance(value, bool) else type(value).__name__


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(), children),
    max_leaves=8,
)
PATHS = [f"certificate.{name}" for name in TAMPERED_FIELDS] + [
    "certificate.version",
    "certificate.ranges.0",
    "certificate.ranges.0.first",
    "certificate.ranges.0.block_id",
    "key_id",
    "signature",
    "certificate",
]


@PROPERTY_SETTINGS
@given(st.sampled_from(PATHS), json_values)
def test_a_value_of_the_wrong_type_is_malformed(path: str, value: Any) -> None:
    document = json.loads(FILE)
    node, key = _locate(document, path)
    assume(_kind(node[key]) != _kind(value))
    node[key] = value
    assert (
        verdict_of(json.dumps(document, ensure_ascii=False).encode()) is CertificateCode.MALFORMED
    )


@pytest.mark.parametrize("where", ["", "certificate", "certificate.ranges.1"])
def test_an_unknown_field_is_malformed(where: str) -> None:
    def edit(document: dict[str, Any]) -> None:
        node, key = _locate(document, f"{where}.note".lstrip("."))
        node[key] = "not signed"

    assert verdict_of(edited(FILE, edit)) is CertificateCode.MALFORMED


@pytest.mark.parametrize(
    ("old", "new"),
    [
        # two values for one key: parsers disagree which one counts
        (b'"beneficiary": ', b'"beneficiary": "someone else", "beneficiary": '),
        (b'"first": 41', b'"first": 1, "first": 41'),
        # spellings that mean the same value but are not canonical
        (b'"2026-03-05T02:00:00Z"', b'"2026-03-05T02:00:00+00:00"'),
        (b'"2026-03-05T02:00:00Z"', b'"2026-03-05T02:00:00.000Z"'),
        (b'"2026-03-05T02:00:00Z"', b'"2026-03-05 02:00:00z"'),
        (b'DQ=="', b'DR=="'),
        # characters that no field may hold
        ("深圳市绿色出行协会".encode(), b"\\u202e\\u4f1a"),
        ("深圳市绿色出行协会".encode(), b"\\ud800"),
        ("深圳市绿色出行协会".encode(), "深圳市\\t绿色出行协会".encode()),
    ],
)
def test_a_file_not_in_canonical_form_is_malformed(old: bytes, new: bytes) -> None:
    data = FILE.replace(old, new, 1)
    assert data != FILE
    assert verdict_of(data) is CertificateCode.MALFORMED


def test_a_file_too_large_is_malformed() -> None:
    padded = FILE.rstrip() + b" " * MAX_FILE_BYTES
    assert verdict_of(padded) is CertificateCode.MALFORMED


@PROPERTY_SETTINGS
@given(st.data())
def test_a_mutated_file_verifies_only_if_it_still_says_the_same(data: st.DataObject) -> None:
    mutated = bytearray(FILE)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(mutated) - 1))
        match data.draw(st.sampled_from(["flip", "insert", "delete"])):
            case "flip":
                mutated[at] ^= 1 << data.draw(st.integers(0, 7))
            case "insert":
                mutated.insert(at, data.draw(st.integers(0, 255)))
            case _:
                del mutated[at]
    verdict = verify_bytes(bytes(mutated), PLATFORM.public_key)
    if verdict.valid:
        assert load_signed(bytes(mutated)) == SIGNED


@pytest.mark.parametrize(
    "signed",
    [
        SignedCertificate(sample(emissions_t=10**100), PLATFORM.key_id, SIGNED.signature),
        SignedCertificate(sample(beneficiary="\udc00"), PLATFORM.key_id, SIGNED.signature),
        SignedCertificate(sample(ranges=(object(),)), PLATFORM.key_id, SIGNED.signature),
        SignedCertificate(sample(issued_at=None), PLATFORM.key_id, SIGNED.signature),
        SignedCertificate(SAMPLE, PLATFORM.key_id, "not base64"),
        SignedCertificate(SAMPLE, "KEY", SIGNED.signature),
    ],
    ids=["huge", "surrogate", "object", "none", "signature", "key-id"],
)
def test_a_hostile_object_is_malformed_and_does_not_raise(signed: SignedCertificate) -> None:
    assert verify(signed, PLATFORM.public_key).reason is CertificateCode.MALFORMED


# The platform key file


def test_the_key_file_is_created_private_and_reloaded_identically(tmp_path: Path) -> None:
    old_umask = os.umask(0)
    try:
        created = PlatformKey.open(tmp_path / "var")
    finally:
        os.umask(old_umask)
    path = tmp_path / "var" / KEY_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    pem = path.read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    again = PlatformKey.open(tmp_path / "var")
    assert again.key_id == created.key_id
    assert again.public_pem() == created.public_pem()
    assert path.read_bytes() == pem
    assert verify(sign(SAMPLE, created), again.public_key).valid
    assert os.listdir(tmp_path / "var") == [KEY_FILE_NAME]


def test_creating_a_key_where_one_exists_keeps_the_first(tmp_path: Path) -> None:
    first = PlatformKey.open(tmp_path)
    signing._create(tmp_path / KEY_FILE_NAME)
    assert PlatformKey.open(tmp_path).key_id == first.key_id


def test_the_key_never_shows_in_its_repr(tmp_path: Path) -> None:
    key = PlatformKey.open(tmp_path)
    secret = (tmp_path / KEY_FILE_NAME).read_bytes()
    assert repr(key) == f"PlatformKey(key_id={key.key_id!r})"
    assert secret.decode() not in repr(key)


def _write_key(path: Path, pem: bytes, mode: int = 0o600) -> None:
    path.write_bytes(pem)
    path.chmod(mode)


def test_a_key_file_others_may_read_is_refused(tmp_path: Path) -> None:
    PlatformKey.open(tmp_path)
    (tmp_path / KEY_FILE_NAME).chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        PlatformKey.open(tmp_path)


def test_a_key_file_that_is_not_an_ed25519_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE_NAME
    _write_key(path, b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(KeyFileError, match="not an unencrypted private key"):
        PlatformKey.open(tmp_path)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    _write_key(path, ec_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    with pytest.raises(KeyFileError, match="not an Ed25519 key"):
        PlatformKey.open(tmp_path)


def test_the_key_id_is_the_start_of_the_sha256_of_the_raw_public_key() -> None:
    raw = PLATFORM.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert key_id(PLATFORM.public_key) == hashlib.sha256(raw).hexdigest()[:16]


def test_load_public_key_reads_the_published_pem_and_nothing_else() -> None:
    assert key_id(load_public_key(PLATFORM.public_pem())) == PLATFORM.key_id
    ec_public = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(ValueError, match="not an Ed25519 public key"):
        load_public_key(ec_public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    with pytest.raises(ValueError, match="not a public key"):
        load_public_key(FILE)
