"""Fixtures for every test package: `database_url`, a fresh database per module."""

from __future__ import annotations

from tests.postgres import database_url

__all__ = ["database_url"]
