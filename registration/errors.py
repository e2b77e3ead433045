"""Every refusal of the registration package, as a stable code and a message for people.

Codes are part of the public interface: REST replies carry them unchanged and
docs/registration.md lists them. Add codes; never rename one. The ledger's own refusals
(`settlement.errors.ErrorCode`) pass through as they are: among them the scheme's rules this
package applies through the ledger's checks (`METHODOLOGY_NOT_REGISTERED`, Art. 9;
`PROJECT_REGISTERED_UNDER_OTHER_SCHEME`, Art. 22) and `ROLE_NOT_ALLOWED`.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    # input
    TEXT_INVALID = "TEXT_INVALID"
    CODE_INVALID = "CODE_INVALID"
    CODE_TAKEN = "CODE_TAKEN"
    PERIOD_INVALID = "PERIOD_INVALID"
    QUANTITY_INVALID = "QUANTITY_INVALID"
    FIELDS_INVALID = "FIELDS_INVALID"
    REASON_REQUIRED = "REASON_REQUIRED"
    # the expert pool
    EXPERT_ALREADY_IN_POOL = "EXPERT_ALREADY_IN_POOL"
    EXPERT_NOT_IN_POOL = "EXPERT_NOT_IN_POOL"
    # applications and their states
    APPLICATION_NOT_FOUND = "APPLICATION_NOT_FOUND"
    APPLICATION_KIND_MISMATCH = "APPLICATION_KIND_MISMATCH"
    APPLICATION_MUST_BE_SUBMITTED = "APPLICATION_MUST_BE_SUBMITTED"
    APPLICATION_MUST_BE_UNDER_REVIEW = "APPLICATION_MUST_BE_UNDER_REVIEW"
    APPLICATION_MUST_BE_APPROVED = "APPLICATION_MUST_BE_APPROVED"
    APPLICATION_MUST_BE_REJECTED = "APPLICATION_MUST_BE_REJECTED"
    APPLICATION_MUST_BE_OPEN = "APPLICATION_MUST_BE_OPEN"
    # review
    NOT_THE_SECTOR_AUTHORITY = "NOT_THE_SECTOR_AUTHORITY"
    PANEL_SIZE_INVALID = "PANEL_SIZE_INVALID"
    NOT_ENOUGH_EXPERTS = "NOT_ENOUGH_EXPERTS"
    NOT_DRAWN = "NOT_DRAWN"
    OPINION_ALREADY_GIVEN = "OPINION_ALREADY_GIVEN"
    OPINIONS_PENDING = "OPINIONS_PENDING"
    # projects (Art. 21)
    NOT_A_PROJECT_APPLICATION = "NOT_A_PROJECT_APPLICATION"
    REPORT_INVALID = "REPORT_INVALID"
    THIRD_PARTY_REPORTS_REQUIRED = "THIRD_PARTY_REPORTS_REQUIRED"
    VERIFIER_REQUIRED = "VERIFIER_REQUIRED"
    VERIFIER_NOT_APPLICABLE = "VERIFIER_NOT_APPLICABLE"
    # scenarios (Arts. 13-15)
    NO_EVALUATION_SPECIFICATION = "NO_EVALUATION_SPECIFICATION"
    SECTOR_OF_ANOTHER_AUTHORITY = "SECTOR_OF_ANOTHER_AUTHORITY"
    LABEL_NOT_FOUND = "LABEL_NOT_FOUND"
    LABEL_MUST_BE_ACTIVE = "LABEL_MUST_BE_ACTIVE"
    LABEL_MUST_BE_SUSPENDED = "LABEL_MUST_BE_SUSPENDED"
    LABEL_MUST_NOT_BE_WITHDRAWN = "LABEL_MUST_NOT_BE_WITHDRAWN"


class RegistrationError(Exception):
    """A refused registration write: nothing it would have written was written."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
