"""Decoding frames: every request kind decodes strictly; every bad frame becomes an error reply
with a stable code (never an exception), keeping the request id when it could be read."""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.protocol import (
    Amend,
    Cancel,
    Login,
    NewOrder,
    Ping,
    ProtocolError,
    Request,
    Subscribe,
    decode,
    encode,
    ok,
    refused,
)
from matching import OrderType, Side, TimeInForce


def frame(op: str, args: object = None, req_id: object = 7) -> bytes:
    body: dict[str, object] = {"op": op, "req_id": req_id}
    if args is not None:
        body["args"] = args
    return json.dumps(body).encode()


def test_each_op_decodes_into_its_struct() -> None:
    order = decode(
        frame(
            "new_order",
            {
                "symbol": "SZCER-2025",
                "cl_ord_id": "c-1",
                "side": "buy",
                "quantity": 10,
                "price": 5_001,
                "tif": "ioc",
            },
        )
    )
    assert order == Request(
        "new_order",
        7,
        NewOrder("SZCER-2025", "c-1", Side.BUY, 10, 5_001, OrderType.LIMIT, TimeInForce.IOC),
    )
    assert decode(frame("ping", req_id="r-1")) == Request("ping", "r-1", Ping())
    login = {"api_key": "k", "timestamp_ms": 1, "nonce": "n" * 8, "signature": "a" * 64}
    assert decode(frame("login", login)) == Request("login", 7, Login("k", 1, "n" * 8, "a" * 64))
    assert decode(frame("cancel", {"symbol": "S", "cl_ord_id": "x"})) == Request(
        "cancel", 7, Cancel("S", None, "x")
    )
    assert decode(frame("amend", {"symbol": "S", "order_id": 4, "quantity": 9})) == Request(
        "amend", 7, Amend("S", 9, None, 4)
    )
    assert decode(frame("subscribe", {"channels": ["book:S"]})) == Request(
        "subscribe", 7, Subscribe(["book:S"])
    )


@pytest.mark.parametrize(
    ("raw", "code", "req_id"),
    [
        (b"not json", "MALFORMED_JSON", None),
        # nesting deep enough to exhaust msgspec's recursion: it raised out of decode, unanswered
        (
            b'{"op": "ping", "args": {"a": ' + b"[" * 5_000 + b"]" * 5_000 + b"}}",
            "MALFORMED_JSON",
            None,
        ),
        (
            b'{"op": "ping", "req_id": 1, "args": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
            "MALFORMED_JSON",
            None,
        ),
        (b"[1, 2]", "MALFORMED_REQUEST", None),
        (b'{"req_id": 3}', "MALFORMED_REQUEST", None),
        (frame("fly"), "UNKNOWN_OP", 7),
        (frame("ping", {"extra": 1}), "INVALID_ARGS", 7),
        (frame("new_order", {"symbol": "S", "cl_ord_id": "c", "side": "buy"}), "INVALID_ARGS", 7),
        (
            frame("new_order", {"symbol": "S", "cl_ord_id": "c", "side": "buy", "quantity": 1.5}),
            "INVALID_ARGS",
            7,
        ),
        (
            frame("new_order", {"symbol": "S", "cl_ord_id": "c", "side": "up", "quantity": 1}),
            "INVALID_ARGS",
            7,
        ),
        (
            frame("new_order", {"symbol": "S", "cl_ord_id": "c", "side": "buy", "quantity": 0}),
            "INVALID_ARGS",
            7,
        ),
        (
            frame(
                "new_order",
                {"symbol": "S", "cl_ord_id": "c", "side": "buy", "quantity": 10**30},
            ),
            "INVALID_ARGS",
            7,
        ),
        (frame("cancel", {"symbol": "S"}), "INVALID_ARGS", 7),
        # past 64 bits the journal cannot write the command: refused here, not as an outage
        (frame("cancel", {"symbol": "S", "order_id": 2**63}), "INVALID_ARGS", 7),
        (frame("amend", {"symbol": "S", "order_id": 10**30, "quantity": 5}), "INVALID_ARGS", 7),
        (frame("cancel", {"symbol": "S", "order_id": 1, "cl_ord_id": "x"}), "INVALID_ARGS", 7),
        (frame("amend", {"symbol": "S", "quantity": 5}), "INVALID_ARGS", 7),
        (frame("amend", {"symbol": "S", "order_id": 1}), "INVALID_ARGS", 7),
        (
            frame("amend", {"symbol": "S", "order_id": 1, "quantity": 5, "price": 0}),
            "INVALID_ARGS",
            7,
        ),
        (
            frame("login", {"api_key": "k", "timestamp_ms": 1, "nonce": "n", "signature": "zz"}),
            "INVALID_ARGS",
            7,
        ),
    ],
)
def test_bad_frames_become_error_replies(raw: bytes, code: str, req_id: object) -> None:
    result = decode(raw)
    assert isinstance(result, ProtocolError)
    assert (result.error.code, result.req_id) == (code, req_id)
    assert result.error.msg


@given(st.binary(max_size=200) | st.text(max_size=200))
def test_no_frame_makes_decode_raise(raw: bytes | str) -> None:
    assert isinstance(decode(raw), Request | ProtocolError)


def test_replies_follow_the_wire_convention() -> None:
    assert msgspec.json.decode(encode(ok(3, {"order_id": 9}))) == {
        "req_id": 3,
        "ok": True,
        "result": {"order_id": 9},
    }
    assert msgspec.json.decode(encode(refused("a", "INSUFFICIENT_CASH", "short", 50))) == {
        "req_id": "a",
        "ok": False,
        "error": {"code": "INSUFFICIENT_CASH", "msg": "short", "retry_after_ms": 50},
    }
