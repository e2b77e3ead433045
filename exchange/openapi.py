"""The OpenAPI 3.1 document of the REST routes, generated from the same table that registers them.

Schemas come from msgspec (`msgspec.json.schema_components`, JSON Schema 2020-12 as OpenAPI 3.1
takes it); each route's path and query structs become its parameters, its body struct its request
body, and its result type the `result` of the `{"ok": true, "result": ...}` envelope. Refusals
are `{"ok": false, "error": {"code", "msg", "retry_after_ms"}}`, one response per HTTP status,
each naming the codes answered with that status (`exchange.endpoint.status_of`), so a client
can tell what a status may mean and a checker can hold the server to it. Each operation lists
the statuses it may answer: any route 400, 413, 500 and 503; a route with path parameters 404;
a signed route also 401, 403, 404, 409 and 429.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from exchange.endpoint import (
    IDEMPOTENCY_HEADER,
    IDEMPOTENCY_KEY,
    PUBLIC,
    SIGNATURE_HEADERS,
    Refusal,
    Route,
    status_of,
)
from exchange.errors import ErrorCode
from matching import RejectCode
from offsets.errors import ErrorCode as OffsetCode
from registration.errors import ErrorCode as RegistrationCode
from settlement.errors import ErrorCode as LedgerCode

REF = "#/components/schemas/{name}"
CODES = (ErrorCode, LedgerCode, RejectCode, OffsetCode, RegistrationCode)  # every refusal's code
MEANINGS = {
    400: "The request is not valid",
    401: "Not authenticated: no signature, or one that does not hold",
    403: "Signed, but the caller may not do this",
    404: "No such thing",
    409: "Not now: the state of things refuses it",
    413: "The body is over 1 MiB",
    429: "Too many requests: wait `retry_after_ms`",
    500: "The exchange failed to serve it: a bug, logged",
    503: "The exchange cannot serve it for now: try again after `retry_after_ms`",
}
ANY_ROUTE = (400, 413, 500, 503)
SIGNED_ROUTE = (401, 403, 404, 409, 429)

DESCRIPTION = """\
CERX, the exchange of carbon-inclusion CERs. Prices are fen per tonne, money fen, quantities
whole tonnes: integers everywhere.

A signed request carries four headers: `X-CERX-Key` (the key id), `X-CERX-Timestamp` (Unix
milliseconds, within 5 s of the server's clock), `X-CERX-Nonce` (8-64 of `A-Z a-z 0-9 _ -`, never
reused with the key) and `X-CERX-Signature`, the lower-case hex HMAC-SHA256, under the key's
secret, of

    f"{timestamp}{nonce}{key_id}\\n{METHOD}\\n{path_qs}\\n{sha256hex(body)}"

where `path_qs` is the request target as sent (path, then `?` and the query if any) and the body
hash is of the bytes sent (of no bytes for none). A POST writes and needs an `Idempotency-Key`:
a repeat with the same key and request returns the first result and changes nothing.
"""


def document(routes: Sequence[Route]) -> dict[str, Any]:
    types: list[Any] = [Refusal]
    for route in routes:
        types.extend(_types(route))
    schemas, components = msgspec.json.schema_components(types, ref_template=REF)
    found = iter(schemas[1:])
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        mine = {kind: next(found) for kind in _types(route)}
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, mine, components)
    return {
        "openapi": "3.1.0",
        "info": {"title": "CERX exchange", "version": "1", "description": DESCRIPTION},
        "paths": paths,
        "components": {
            "schemas": components,
            "responses": _refusals(schemas[0]),
            "parameters": {
                "IdempotencyKey": {
                    "name": IDEMPOTENCY_HEADER,
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string", "pattern": f"^{IDEMPOTENCY_KEY.pattern}$"},
                }
            },
            "securitySchemes": {
                _scheme(header): {"type": "apiKey", "in": "header", "name": header}
                for header in SIGNATURE_HEADERS
            },
        },
    }


def _types(route: Route) -> list[Any]:
    """The types a route's document names, each once, result first."""
    kinds = [route.result, route.params, route.query, route.body]
    return [kind for kind in kinds if kind is not None]


def _operation(
    route: Route, schemas: dict[Any, dict[str, Any]], components: dict[str, Any]
) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = []
    if route.params is not None:
        parameters += _parameters("path", schemas[route.params], components)
    if route.query is not None:
        parameters += _parameters("query", schemas[route.query], components)
    if route.method == "POST":
        parameters.append({"$ref": "#/components/parameters/IdempotencyKey"})
    statuses = set(ANY_ROUTE)
    if route.params is not None:
        statuses.add(404)
    if route.access != PUBLIC:
        statuses.update(SIGNED_ROUTE)
    operation: dict[str, Any] = {
        "operationId": route.handler.__name__,
        "summary": route.summary,
        "tags": [str(route.access)],
        "x-cerx-access": str(route.access),
        "parameters": parameters,
        "responses": {
            "200": {
                "description": "Done",
                "content": {"application/json": {"schema": _ok(schemas[route.result])}},
            },
        }
        | {
            str(status): {"$ref": f"#/components/responses/Refused{status}"}
            for status in sorted(statuses)
        },
        "security": []
        if route.access == PUBLIC
        else [{_scheme(header): [] for header in SIGNATURE_HEADERS}],
    }
    if route.handler.__doc__:
        operation["description"] = " ".join(route.handler.__doc__.split())
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schemas[route.body]}},
        }
    return operation


def _refusals(refusal: dict[str, Any]) -> dict[str, Any]:
    """A refusal response per status, its `error.code` one of the codes of that status."""
    codes: dict[int, list[str]] = {status: [] for status in MEANINGS}
    for code in sorted({str(code) for kind in CODES for code in kind}):
        codes[status_of(code)].append(code)
    return {
        f"Refused{status}": {
            "description": f"{MEANINGS[status]}: `error.code` says why (docs/exchange.md)",
            "content": {
                "application/json": {
                    "schema": {
                        "allOf": [
                            refusal,
                            {"properties": {"error": {"properties": {"code": {"enum": named}}}}},
                        ]
                    }
                }
            },
        }
        for status, named in codes.items()
    }


def _parameters(
    where: str, schema: dict[str, Any], components: dict[str, Any]
) -> list[dict[str, Any]]:
    struct = components[schema["$ref"].rsplit("/", 1)[1]]
    required = set(struct.get("required", ()))
    return [
        {"name": name, "in": where, "required": name in required, "schema": field}
        for name, field in struct["properties"].items()
    ]


def _ok(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"ok": {"const": True}, "result": result},
        "required": ["ok", "result"],
    }


def _scheme(header: str) -> str:
    """
    >>> _scheme("X-CERX-Signature")
    'CerxSignature'
    """
    return "Cerx" + header.rsplit("-", 1)[1]
