"""What the hostile-input tests count — frames fuzzed, schemathesis cases, refusals checked — so
that a run ends with the figures (see `pytest_terminal_summary` in conftest.py and
docs/security.md) rather than only a pass."""

from __future__ import annotations

from collections import Counter

FIGURES: Counter[str] = Counter()


def count(name: str, n: int = 1) -> None:
    FIGURES[name] += n
