"""The platform's Ed25519 key; signing certificates and verifying them offline.

The signed message is `SIGNING_CONTEXT` followed by the certificate's canonical bytes
(`offsets.certificate.canonical_bytes`). The prefix keeps a certificate signature from ever being
taken for the key's signature over anything else the platform may sign later.

The private key lives in DATA_DIR/platform-key.pem (PKCS#8 PEM, unencrypted, mode 0600), created
on first use: written to a temporary file and then linked into place, so a crash never leaves half
a key and two processes starting together end up with the same one. A key file that others may
read is refused, as ssh refuses one. No message, repr or exception carries the key's bytes.

The public key is published as PEM and named by its key id: the first 16 hex digits of the
SHA-256 of its 32 raw bytes. A verifier needs only that PEM and the certificate file.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import secrets
import stat
from pathlib import Path
from typing import Final

import msgspec
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from offsets.certificate import (
    CERTIFICATE_VERSION,
    Certificate,
    SignedCertificate,
    broken_rule,
    canonical_bytes,
    load_signed,
    with_checked_fields,
)
from offsets.errors import CertificateCode, CertificateError

KEY_FILE_NAME: Final = "platform-key.pem"
SIGNING_CONTEXT: Final = b"CERX carbon-neutrality certificate\n"


class KeyFileError(Exception):
    """The platform key file cannot be used; the message says why and never shows the key."""


def key_id(public_key: Ed25519PublicKey) -> str:
    """The first 16 hex digits of the SHA-256 of the raw public key."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    """Read a published public key; raise `ValueError` unless it is an Ed25519 key in PEM."""
    try:
        key = load_pem_public_key(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError("not a public key in PEM form") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"a {type(key).__name__}, not an Ed25519 public key")
    return key


class PlatformKey:
    """The platform's signing key."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private_key = private_key
        self.public_key = private_key.public_key()
        self.key_id = key_id(self.public_key)

    def __repr__(self) -> str:
        return f"PlatformKey(key_id={self.key_id!r})"

    @classmethod
    def open(cls, data_dir: Path) -> PlatformKey:
        """The key in `data_dir`, created there first if there is none."""
        path = data_dir / KEY_FILE_NAME
        if not path.exists():
            _create(path)
        return cls.load(path)

    @classmethod
    def load(cls, path: Path) -> PlatformKey:
        """The key in `path`; raise `KeyFileError` if it is missing, exposed or not Ed25519."""
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
            pem = path.read_bytes()
        except OSError as e:
            raise KeyFileError(f"cannot read the platform key {path}: {e.strerror}") from None
        if mode & 0o077:
            raise KeyFileError(f"{path} is open to group or others (mode {mode:o}); chmod 600 it")
        try:
            key = load_pem_private_key(pem, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise KeyFileError(f"{path} is not an unencrypted private key in PEM") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
        return cls(key)

    def public_pem(self) -> bytes:
        return public_key_pem(self.public_key)

    def sign_message(self, message: bytes) -> bytes:
        """The Ed25519 signature of raw bytes; certificates go through `sign`, which checks
        them and adds `SIGNING_CONTEXT`."""
        return self._private_key.sign(message)


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(descriptor, 0o600)  # whatever the umask
        with os.fdopen(descriptor, "wb") as file:
            file.write(pem)
            file.flush()
            os.fsync(file.fileno())
        # If another process created the key first, theirs is kept.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink()


def sign(certificate: Certificate, key: PlatformKey) -> SignedCertificate:
    """Sign `certificate`; raise `CertificateError` with the rule it breaks, if any.

    The certificate is first rebuilt through the decoder, so the platform never signs anything a
    verifier would refuse to read.
    """
    checked = with_checked_fields(certificate)
    if checked.version != CERTIFICATE_VERSION:
        raise CertificateError(
            CertificateCode.VERSION_UNSUPPORTED,
            f"this platform signs version {CERTIFICATE_VERSION}",
        )
    if (broken := broken_rule(checked)) is not None:
        raise broken
    signature = key.sign_message(SIGNING_CONTEXT + canonical_bytes(checked))
    return SignedCertificate(checked, key.key_id, base64.b64encode(signature).decode("ascii"))


class Verdict(msgspec.Struct, frozen=True):
    valid: bool
    reason: CertificateCode
    message: str


def verify(signed: SignedCertificate, public_key: Ed25519PublicKey) -> Verdict:
    """Whether `signed` is a certificate the holder of `public_key` issued, and if not, why.

    Checks in this order: fields (MALFORMED), format version, key id, signature, then the
    document's own rules. Never raises.
    """
    try:
        checked = with_checked_fields(signed)
    except CertificateError as e:
        return Verdict(False, e.code, e.message)
    certificate = checked.certificate
    if certificate.version != CERTIFICATE_VERSION:
        message = f"format version {certificate.version}; this verifier reads {CERTIFICATE_VERSION}"
        return Verdict(False, CertificateCode.VERSION_UNSUPPORTED, message)
    if checked.key_id != (expected := key_id(public_key)):
        message = f"signed with key {checked.key_id}; the public key given is {expected}"
        return Verdict(False, CertificateCode.KEY_MISMATCH, message)
    try:
        signed_message = SIGNING_CONTEXT + canonical_bytes(certificate)
        public_key.verify(base64.b64decode(checked.signature, validate=True), signed_message)
    except InvalidSignature:
        message = "the signature does not match: the certificate was changed after signing"
        return Verdict(False, CertificateCode.SIGNATURE_INVALID, message)
    if (broken := broken_rule(certificate)) is not None:
        return Verdict(False, broken.code, broken.message)
    return Verdict(True, CertificateCode.VALID, f"signed by platform key {checked.key_id}")


def verify_bytes(data: bytes, public_key: Ed25519PublicKey) -> Verdict:
    """`verify` for a certificate file's bytes, read strictly by `load_signed`. Never raises."""
    try:
        signed = load_signed(data)
    except CertificateError as e:
        return Verdict(False, e.code, e.message)
    return verify(signed, public_key)
