"""Schemathesis against the real server's own `/openapi.json`: every operation, with data that
fits the document (positive) and data that does not (negative), each request sent over a real
socket and signed with the exchange's HMAC scheme by a key of the role the route admits, so that
the fuzz reaches past the signature and the role check into decoding and the handlers. Public
routes go unsigned.

Every response must be no server error, carry a status the document lists for the operation,
be JSON, and match the document's schema for that status (a refusal's `error.code` among the
codes of its status); a negative case must be refused. Writes really happen (instruments
listed, books halted, cash moved, CERs issued): the ledger's and the registration audits at the
end (the `database` fixture) check that nothing the fuzz did broke them.

Schemathesis calls the server with `requests`, so it runs in a worker thread while the event loop
serves. `CERX_OPENAPI_EXAMPLES` sets the examples per operation and mode (default 5: about 600
cases in all); the figures are printed at the end of the session.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections import Counter
from typing import Any

import msgspec
import requests
import schemathesis
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from exchange.auth import HttpRequest, sign_request
from exchange.endpoint import SIGNATURE_HEADERS
from exchange.keys import ApiKey
from exchange.service import Exchange
from tests.exchange.conftest import Market
from tests.exchange.figures import count
from tests.exchange.rest_client import Rest, Staff
from tests.exchange.test_security import keys_by_access

EXAMPLES = int(os.environ.get("CERX_OPENAPI_EXAMPLES", "5"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
_nonces = itertools.count(1)


class Signed(requests.auth.AuthBase):
    """Sign each request as it will be sent: its method, target and body bytes."""

    def __init__(self, key: ApiKey) -> None:
        self.key = key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        sent = HttpRequest(str(request.method), request.path_url, _bytes(body))
        ts, nonce = time.time_ns() // 1_000_000, f"openapi-{next(_nonces)}-{time.time_ns()}"
        request.headers["X-CERX-Key"] = self.key.key_id
        request.headers["X-CERX-Timestamp"] = str(ts)
        request.headers["X-CERX-Nonce"] = nonce
        request.headers["X-CERX-Signature"] = sign_request(
            self.key.secret, ts, nonce, self.key.key_id, sent
        )
        return request


def _bytes(body: bytes | str) -> bytes:
    return body.encode() if isinstance(body, str) else body


def fuzz(
    operation: schemathesis.APIOperation,
    mode: schemathesis.GenerationMode,
    base_url: str,
    key: ApiKey | None,
    statuses: Counter[int],
) -> None:
    """Run one operation's examples of one mode (in a worker thread)."""
    signer = None if key is None else Signed(key)
    session = requests.Session()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        # schemathesis fills the signature headers with junk, which the signer replaces; a
        # negative case may leave some out, and goes as it is
        complete = set(SIGNATURE_HEADERS) <= set(case.headers or {})
        auth = signer if complete else None
        response = case.call(base_url=base_url, session=session, auth=auth)
        case.validate_response(response, checks=CHECKS)
        statuses[response.status_code] += 1

    try:
        run()
    except Unsatisfiable:
        # nothing to make wrong: the operation has no parameter and no body
        raw = operation.definition.raw
        assert mode is schemathesis.GenerationMode.NEGATIVE, operation.label
        assert not raw["parameters"] and "requestBody" not in raw, operation.label
        count("openapi fuzz: operations with nothing to make wrong")
    finally:
        session.close()


async def test_every_operation_answers_as_its_document_says(
    exchange: Exchange, server: TestServer, rest: Rest, market: Market, team: Staff
) -> None:
    (_, trader), _ = market
    keys = await keys_by_access(exchange, rest, team, trader)
    async with rest.http.get(server.make_url("/openapi.json")) as response:
        document: dict[str, Any] = msgspec.json.decode(await response.read())
    schema = schemathesis.openapi.from_dict(document)
    base_url = str(server.make_url(""))
    statuses: Counter[int] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == sum(len(item) for item in document["paths"].values())

    def run_all() -> None:
        for operation in operations:
            access = operation.definition.raw["x-cerx-access"]
            key = None if access == "public" else keys[_access(access, keys)]
            for mode in MODES:
                fuzz(operation, mode, base_url, key, statuses)

    await asyncio.to_thread(run_all)
    await exchange.engine.drain()
    exchange.engine.check_invariants()
    await exchange.settler.drain()
    assert (exchange.settler.lag, exchange.settler.error) == (0, None)
    count("openapi fuzz: operations", len(operations))
    count("openapi fuzz: cases", sum(statuses.values()))
    for status, n in statuses.items():
        count(f"openapi fuzz: responses {status}", n)


def _access(name: str, keys: dict[Any, ApiKey]) -> Any:
    """The key of `keys_by_access` for the document's `x-cerx-access` value."""
    return next(access for access in keys if str(access) == name)
