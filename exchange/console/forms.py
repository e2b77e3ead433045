"""Forms for the REST API's writes, made from the routes' own body structs, so that a staff
desk offers exactly what the API accepts and a new field cannot be forgotten by one of them.

A field's kind tells the page how to read it (`static/console.js`): `int`, `fen` (typed in
yuan with at most two decimals, sent as integer fen), `text`, `date`, `bool`, `enum`,
`text-list` and `int-list` (comma-separated). A nested struct's fields are named with dots
(`period.start`) and sent nested. The API checks everything again; a page only helps.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any, NamedTuple

import msgspec

from exchange.endpoint import Route


class Field(NamedTuple):
    name: str  # dotted for a nested struct's field
    kind: str
    required: bool
    options: tuple[str, ...] = ()

    @property
    def label_key(self) -> str:
        return f"field.{self.name}"

    @property
    def dom_id(self) -> str:
        return self.name.replace(".", "-")


class NoFormError(Exception):
    """A required part of the body has no form field (a list of objects, say)."""


def forms(routes: Iterable[Route]) -> dict[str, list[Field]]:
    """The form of each write a person can fill in (not the batch uploads of programs)."""
    found = {}
    for route in routes:
        if route.method == "POST":
            with contextlib.suppress(NoFormError):
                found[route.name] = fields_of(route)
    return found


def fields_of(route: Route) -> list[Field]:
    if route.body is None:
        return []
    schema = msgspec.json.schema(route.body)
    definitions: dict[str, Any] = schema.get("$defs", {})
    return _fields(_resolve(schema, definitions), definitions, "")


def _resolve(node: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = definitions[node["$ref"].split("/")[-1]]
    return node


def _fields(
    struct: dict[str, Any], definitions: dict[str, Any], prefix: str, needed: bool = True
) -> list[Field]:
    """`needed`: whether the struct itself must be given (a nested one may have a default)."""
    required = set(struct.get("required", ()))
    fields: list[Field] = []
    for name, node in struct.get("properties", {}).items():
        fields.extend(_field(prefix + name, node, needed and name in required, definitions))
    return fields


def _field(
    name: str, node: dict[str, Any], required: bool, definitions: dict[str, Any]
) -> list[Field]:
    options = [n for n in node.get("anyOf", [node]) if n.get("type") != "null"]
    node = _resolve(options[0], definitions) if len(options) == 1 else node
    kind = _kind(name, node, definitions)
    if kind == "struct":
        return _fields(node, definitions, f"{name}.", required)
    if kind is None:
        if required:
            raise NoFormError(name)
        return []
    return [Field(name, kind, required, tuple(str(v) for v in node.get("enum", ())))]


def _kind(name: str, node: dict[str, Any], definitions: dict[str, Any]) -> str | None:
    match node.get("type"):
        case "integer":
            return "fen" if name.endswith("_fen") else "int"
        case "boolean":
            return "bool"
        case "string":
            if "enum" in node:
                return "enum"
            return "date" if node.get("format") == "date" else "text"
        case "object":
            return "struct"
        case "array":
            items = _resolve(node.get("items", {}), definitions)
            if items.get("type") == "integer":
                return "int-list"
            if items.get("type") == "string" or "enum" in items:
                return "text-list"
            return None
    if "enum" in node:
        return "enum"
    return None
