"""Every refusal of the offsets package, as a stable code and a message for people.

Codes are part of the wire protocol (REST replies carry them unchanged); add codes, never rename
one. The ledger's own refusals (`settlement.errors.ErrorCode`) pass through as they are.
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
