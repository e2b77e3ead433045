"""Every refusal of the offsets package, and every outcome of checking a certificate, as stable
codes with a message for people.

Codes are part of the public interface: REST replies carry `ErrorCode`s unchanged, and verifiers
outside the platform see `CertificateCode`s (`cerx verify-certificate` prints them,
docs/certificates.md lists them). Add codes; never rename one. The ledger's own refusals
(`settlement.errors.ErrorCode`) pass through as they are. The certificate rule codes say what must
hold; `sign` refuses with them, and `verify` returns them for a document that carries a good
signature and still breaks a rule.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    # rules and records
    RULES_INVALID = "RULES_INVALID"
    RULES_VERSION_EXISTS = "RULES_VERSION_EXISTS"
    NO_OFFSET_RULES = "NO_OFFSET_RULES"
    EMISSIONS_INVALID = "EMISSIONS_INVALID"
    NO_VERIFIED_EMISSIONS = "NO_VERIFIED_EMISSIONS"
    NOT_A_COMPLIANCE_ENTITY = "NOT_A_COMPLIANCE_ENTITY"
    # surrender
    OUTSIDE_SURRENDER_WINDOW = "OUTSIDE_SURRENDER_WINDOW"
    OUT_OF_SCOPE = "OUT_OF_SCOPE"
    ENTITY_CAP_EXCEEDED = "ENTITY_CAP_EXCEEDED"
    TOTAL_CAP_EXCEEDED = "TOTAL_CAP_EXCEEDED"
    # retirement and certificates
    TEXT_INVALID = "TEXT_INVALID"
    RETIREMENT_NOT_FOUND = "RETIREMENT_NOT_FOUND"
    RETIREMENT_ALREADY_CLAIMED = "RETIREMENT_ALREADY_CLAIMED"
    COVERAGE_INCOMPLETE = "COVERAGE_INCOMPLETE"
    APPLICATION_NOT_FOUND = "APPLICATION_NOT_FOUND"
    APPLICATION_ALREADY_DECIDED = "APPLICATION_ALREADY_DECIDED"
    CERTIFICATE_NOT_FOUND = "CERTIFICATE_NOT_FOUND"


class OffsetError(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class CertificateCode(StrEnum):
    VALID = "VALID"
    # the file
    MALFORMED = "MALFORMED"
    VERSION_UNSUPPORTED = "VERSION_UNSUPPORTED"
    # the signature
    KEY_MISMATCH = "KEY_MISMATCH"
    SIGNATURE_INVALID = "SIGNATURE_INVALID"
    # the document's own rules
    RANGE_FIRST_MUST_NOT_EXCEED_LAST = "RANGE_FIRST_MUST_NOT_EXCEED_LAST"
    RANGES_MUST_BE_ORDERED_AND_DISJOINT = "RANGES_MUST_BE_ORDERED_AND_DISJOINT"
    RANGES_MUST_SUM_TO_RETIRED = "RANGES_MUST_SUM_TO_RETIRED"
    RETIRED_MUST_COVER_EMISSIONS = "RETIRED_MUST_COVER_EMISSIONS"
    RETIREMENT_IDS_MUST_ASCEND = "RETIREMENT_IDS_MUST_ASCEND"
    APPROVAL_MUST_NOT_PRECEDE_APPLICATION = "APPROVAL_MUST_NOT_PRECEDE_APPLICATION"
    ISSUE_MUST_NOT_PRECEDE_APPROVAL = "ISSUE_MUST_NOT_PRECEDE_APPROVAL"
    ISSUED_AT_MUST_BE_WHOLE_SECONDS_UTC = "ISSUED_AT_MUST_BE_WHOLE_SECONDS_UTC"


class CertificateError(Exception):
    """A certificate that cannot be signed, or a file that is not a signed certificate."""

    def __init__(self, code: CertificateCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
