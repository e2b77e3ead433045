"""The OpenAPI document served at /openapi.json describes exactly the routes the server has: the
same paths and methods, each schema it refers to present, signed routes marked as signed and
writes as needing an idempotency key."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import aiohttp
import msgspec
from aiohttp.test_utils import TestServer

from exchange.rest import ROUTES


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for name, value in node.items():
            if name == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part]
    return node


async def test_the_document_describes_the_registered_routes(server: TestServer) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(server.make_url("/openapi.json")) as response,
    ):
        assert response.status == 200
        assert response.content_type == "application/json"
        document = msgspec.json.decode(await response.read())
    assert document["openapi"].startswith("3.1")

    registered = {
        (route.method, route.resource.canonical)
        for route in server.app.router.routes()
        if route.resource is not None and route.resource.canonical.startswith("/api/")
    }
    registered.remove(("*", "/api/{anything}"))  # the refusal of every other path and method
    described = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    assert described == registered
    assert len(registered) == len(ROUTES)

    for ref in set(refs(document)):
        assert resolve(document, ref) is not None, ref
    operations = [op for item in document["paths"].values() for op in item.values()]
    ids = [op["operationId"] for op in operations]
    assert len(ids) == len(set(ids))
    for path, item in document["paths"].items():
        for method, op in item.items():
            public = op["x-cerx-access"] == "public"
            assert (op["security"] == []) == public, path
            header = {"$ref": "#/components/parameters/IdempotencyKey"}
            assert (header in op["parameters"]) == (method == "post"), path
            named = {p["name"] for p in op["parameters"] if p.get("in") == "path"}
            assert named == {part[1:-1] for part in path.split("/") if part.startswith("{")}
    trades = document["paths"]["/api/v1/trades"]["get"]["parameters"]
    assert {p["name"] for p in trades} == {"symbol", "limit", "before"}
