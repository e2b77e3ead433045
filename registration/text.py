"""Text as the registers keep it: trimmed, within its length, and free of control characters
(line breaks and tabs allowed in long texts), so what is published reads as it was meant."""

from __future__ import annotations

import unicodedata

from registration.errors import ErrorCode, RegistrationError

SHORT = 200
LONG = 20_000


def check_text(what: str, text: str, max_length: int = SHORT) -> str:
    """The text trimmed; refused (`TEXT_INVALID`) if empty, too long or with control characters.

    >>> check_text("name", "  Rooftop PV ")
    'Rooftop PV'
    >>> check_text("text", "line one\\nline two", LONG)
    'line one\\nline two'
    >>> check_text("name", "a\\nb")
    Traceback (most recent call last):
    registration.errors.RegistrationError: TEXT_INVALID: name: no control characters
    """
    trimmed = text.strip()
    if not trimmed or len(trimmed) > max_length:
        raise RegistrationError(ErrorCode.TEXT_INVALID, f"{what}: 1-{max_length} characters")
    allowed = "\n\t" if max_length > SHORT else ""
    if any(unicodedata.category(c) == "Cc" and c not in allowed for c in trimmed):
        raise RegistrationError(ErrorCode.TEXT_INVALID, f"{what}: no control characters")
    return trimmed


def check_reason(reason: str | None, doing: str) -> str:
    """A reason that must be given (`REASON_REQUIRED`) and be good text."""
    if reason is None or not reason.strip():
        raise RegistrationError(ErrorCode.REASON_REQUIRED, f"give a reason to {doing}")
    return check_text("reason", reason, LONG)
