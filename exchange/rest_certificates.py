"""REST for carbon-neutrality certification (Art. 26): applications, the regulator's decisions,
and public verification of issued certificates.

A holder applies on its retirements; the regulator sees the queue and approves (the certificate is
signed with the platform key and issued) or rejects with a reason; anyone verifies a certificate
by id against the platform's public key, or lists those issued. The certificate file, its PDF and
a verification page for people are served beside the API (`exchange.public_pages`).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec

from exchange.endpoint import Call
from exchange.errors import ErrorCode, ExchangeError
from exchange.protocol import END
from exchange.rest_fields import Id, Text
from exchange.rest_offsets import today
from exchange.service import Certifier
from offsets.applications import Application, IssuedCertificate
from offsets.certificate import SignedCertificate, SubjectKind
from offsets.signing import Verdict, public_key_pem, verify

CertificateId = Annotated[
    str, msgspec.Meta(pattern=r"^[A-Z0-9]+(-[A-Z0-9]+)*" + END, max_length=64)
]
Emissions = Annotated[int, msgspec.Meta(ge=1, le=10**12)]


class ApplicationBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    beneficiary: Text
    subject_kind: SubjectKind
    subject: Text
    emissions_t: Emissions
    purpose: Text
    retirement_ids: Annotated[list[Id], msgspec.Meta(min_length=1, max_length=1_000)]


class Decision(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    approve: bool
    reason: Text | None = None  # required to reject


class ApplicationPath(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    application_id: Id


class StateQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    state: Literal["submitted", "approved", "rejected"] | None = None


class CertificatePath(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    certificate_id: CertificateId


class Checked(msgspec.Struct, frozen=True):
    """A certificate as issued, and the verdict of checking it against the platform key now."""

    certificate: SignedCertificate
    verdict: Verdict


class PublicKey(msgspec.Struct, frozen=True):
    key_id: str
    public_key_pem: str


def certifier(call: Call) -> Certifier:
    found = call.exchange.certifier
    if found is None:
        raise ExchangeError(
            ErrorCode.EXCHANGE_NOT_READY, "this exchange has no platform key to sign with"
        )
    return found


async def apply(call: Call, body: ApplicationBody) -> Application:
    """Apply for carbon-neutrality certification on the caller's retirements."""
    return await call.exchange.offsets.submit_application(
        call.key,
        call.caller,
        body.beneficiary,
        body.subject_kind,
        body.subject,
        body.emissions_t,
        body.purpose,
        body.retirement_ids,
        today(),
    )


async def my_applications(call: Call) -> list[Application]:
    """The caller's applications and where each stands."""
    return await call.exchange.offsets.applications(account_id=call.caller)


async def queue(call: Call, query: StateQuery) -> list[Application]:
    """Applications (submitted ones: the regulator's queue), oldest first."""
    return await call.exchange.offsets.applications(state=query.state)


async def decide(call: Call, path: ApplicationPath, body: Decision) -> Application:
    """Approve (the signed certificate is issued) or reject with a reason."""
    signer = certifier(call)
    return await call.exchange.offsets.decide_application(
        call.key,
        call.caller,
        path.application_id,
        body.approve,
        body.reason,
        signer.key,
        signer.public_url,
        dt.datetime.now(dt.UTC),
    )


async def issued(call: Call) -> list[IssuedCertificate]:
    """Every certificate issued, newest first."""
    return await call.exchange.offsets.certificates()


async def check(call: Call, path: CertificatePath) -> Checked:
    """A certificate by id, and whether it verifies against the platform key."""
    signed = await call.exchange.offsets.certificate(path.certificate_id)
    return Checked(signed, verify(signed, certifier(call).key.public_key))


async def platform_key(call: Call) -> PublicKey:
    """The key certificates are signed with: what offline verifiers need."""
    key = certifier(call).key
    return PublicKey(key.key_id, public_key_pem(key.public_key).decode("ascii"))
