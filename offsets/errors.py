"""Every outcome of checking a carbon-neutrality certificate, as a stable code and a message.

Verifiers outside the platform see these codes (the `cerx verify-certificate` command prints them,
docs/certificates.md lists them), so they are part of the public interface: add codes; never
rename one. The rule codes say what must hold; `sign` refuses with them, and `verify` returns them
for a document that carries a good signature and still breaks a rule.
"""

from __future__ import annotations

from enum import StrEnum


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
