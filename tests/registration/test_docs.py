"""docs/registration.md stays true: it lists every code of the package, with the HTTP status the
REST API answers it with, and every registration route."""

from __future__ import annotations

import re
from pathlib import Path

from exchange.endpoint import status_of
from exchange.rest import ROUTES
from registration.errors import ErrorCode

DOC = (Path(__file__).parents[2] / "docs" / "registration.md").read_text(encoding="utf-8")


def test_every_code_is_documented_with_its_status() -> None:
    rows = dict(re.findall(r"^\| `([A-Z_]+)` \| (\d{3}) \|", DOC, flags=re.MULTILINE))
    assert {code: int(status) for code, status in rows.items()} == {
        str(code): status_of(code) for code in ErrorCode
    }


def test_every_registration_route_is_documented() -> None:
    documented = set(re.findall(r"^\| `(GET|POST) (/api/v1/[^`? ]+)", DOC, flags=re.MULTILINE))
    routes = {
        (route.method, route.path.replace("{application_id}", "{id}"))
        for route in ROUTES
        if route.handler.__module__ == "exchange.rest_registration"
    }
    assert routes == documented
