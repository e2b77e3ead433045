"""The wire protocol: JSON frames decoded strictly into msgspec structs, and the replies.

A request is `{"op": ..., "req_id": ..., "args": {...}}`; its reply is `{"req_id": ..., "ok":
true, "result": ...}` or `{"req_id": ..., "ok": false, "error": {"code": ..., "msg": ...}}`.
`decode` never raises: a frame that is not a request becomes a `ProtocolError` to send back, and
the session carries on. Unknown fields are refused, not ignored, so a client's typo is an error
it sees rather than an option silently dropped.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from exchange.errors import ErrorCode
from matching import OrderType, Side, StpMode, TimeInForce

END = r"$(?!\n)"
"""Where a pattern ends: Python's `$` (msgspec checks patterns with `re.search`) also matches
before a final line break, which would let `"SZCER-2025\n"` through; the look-ahead refuses it,
and never fails at the end in JSON Schema's regexes, which the OpenAPI document hands on."""
ClientId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.:-]{1,64}" + END)]
Symbol = Annotated[str, msgspec.Meta(pattern=r"^[A-Z0-9-]{1,32}" + END)]
Tonnes = Annotated[int, msgspec.Meta(ge=1, le=1_000_000_000)]
Fen = Annotated[int, msgspec.Meta(ge=1, le=1_000_000_000_000)]
OrderId = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]
"""Bounded as every id is: past 64 bits the journal could not write the command at all."""
RequestId = str | int


class Login(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    api_key: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    timestamp_ms: int
    nonce: str
    signature: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-fA-F]{64}" + END)]


class NewOrder(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    symbol: Symbol
    cl_ord_id: ClientId
    side: Side
    quantity: Tonnes
    price: Fen | None = None
    type: OrderType = OrderType.LIMIT
    tif: TimeInForce = TimeInForce.GTC
    post_only: bool = False
    stp: StpMode = StpMode.CANCEL_NEWEST


class Cancel(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    symbol: Symbol
    order_id: OrderId | None = None
    cl_ord_id: ClientId | None = None


class Amend(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """New total quantity (filled included) and, optionally, a new price."""

    symbol: Symbol
    quantity: Tonnes
    price: Fen | None = None
    order_id: OrderId | None = None
    cl_ord_id: ClientId | None = None


class CancelAll(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    symbol: Symbol


class Subscribe(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    channels: Annotated[list[str], msgspec.Meta(min_length=1, max_length=32)]


class Unsubscribe(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    channels: Annotated[list[str], msgspec.Meta(min_length=1, max_length=32)]


class Ping(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pass


Args = Login | NewOrder | Cancel | Amend | CancelAll | Subscribe | Unsubscribe | Ping

OPS: dict[str, type[Args]] = {
    "login": Login,
    "new_order": NewOrder,
    "cancel": Cancel,
    "amend": Amend,
    "cancel_all": CancelAll,
    "subscribe": Subscribe,
    "unsubscribe": Unsubscribe,
    "ping": Ping,
}


class _Envelope(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    op: str
    req_id: RequestId | None = None
    args: msgspec.Raw = msgspec.Raw(b"{}")


class Request(msgspec.Struct, frozen=True):
    op: str
    req_id: RequestId | None
    args: Args


class Heartbeat(msgspec.Struct, frozen=True, tag="heartbeat"):
    """Pushed to a session that has been sent nothing for a second."""

    ts_ns: int


class ErrorBody(msgspec.Struct, frozen=True, omit_defaults=True):
    code: str
    msg: str
    retry_after_ms: int | None = None


class ProtocolError(msgspec.Struct, frozen=True):
    """A frame that is not a valid request: what to answer, and to which request id."""

    req_id: RequestId | None
    error: ErrorBody


class Reply(msgspec.Struct, frozen=True, omit_defaults=True):
    req_id: RequestId | None
    ok: bool
    result: Any = None
    error: ErrorBody | None = None


class _NewOrderRequest(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="op", tag="new_order"
):
    args: NewOrder
    req_id: RequestId | None = None


class _CancelRequest(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="op", tag="cancel"
):
    args: Cancel
    req_id: RequestId | None = None


_envelope = msgspec.json.Decoder(_Envelope)
_args = {op: msgspec.json.Decoder(kind) for op, kind in OPS.items()}
# the most frequent requests in one pass, op, req_id and args together; anything it does not
# take goes the general way below, which says what is wrong
_frequent = msgspec.json.Decoder(_NewOrderRequest | _CancelRequest)
_encoder = msgspec.json.Encoder()


def decode(frame: bytes | str) -> Request | ProtocolError:
    try:
        frequent = _frequent.decode(frame)
    except (msgspec.DecodeError, RecursionError):
        pass
    else:
        if isinstance(frequent, _NewOrderRequest):
            return Request("new_order", frequent.req_id, frequent.args)
        cancel = frequent.args
        if (cancel.order_id is None) != (cancel.cl_ord_id is None):
            return Request("cancel", frequent.req_id, cancel)
    try:
        envelope = _envelope.decode(frame)
    except msgspec.ValidationError as error:
        return ProtocolError(None, ErrorBody(ErrorCode.MALFORMED_REQUEST, str(error)))
    except msgspec.DecodeError as error:
        return ProtocolError(None, ErrorBody(ErrorCode.MALFORMED_JSON, str(error)))
    except RecursionError:
        # skipping over `args` recurses per level of nesting, and a frame has room for thousands
        # (the typed decoders refuse a wrong nesting at its first level)
        return ProtocolError(None, ErrorBody(ErrorCode.MALFORMED_JSON, "JSON is nested too deeply"))
    decoder = _args.get(envelope.op)
    if decoder is None:
        known = ", ".join(sorted(OPS))
        return ProtocolError(
            envelope.req_id, ErrorBody(ErrorCode.UNKNOWN_OP, f"no op {envelope.op!r}; ops: {known}")
        )
    try:
        args = decoder.decode(envelope.args)
    except msgspec.ValidationError as error:
        return ProtocolError(envelope.req_id, ErrorBody(ErrorCode.INVALID_ARGS, str(error)))
    if isinstance(args, Cancel | Amend) and (args.order_id is None) == (args.cl_ord_id is None):
        return ProtocolError(
            envelope.req_id,
            ErrorBody(
                ErrorCode.INVALID_ARGS, "name the order by exactly one of order_id or cl_ord_id"
            ),
        )
    return Request(envelope.op, envelope.req_id, args)


def ok(req_id: RequestId | None, result: Any = None) -> Reply:
    return Reply(req_id, True, result)


def refused(
    req_id: RequestId | None, code: str, msg: str, retry_after_ms: int | None = None
) -> Reply:
    return Reply(req_id, False, error=ErrorBody(code, msg, retry_after_ms))


def encode(reply: Reply) -> bytes:
    return _encoder.encode(reply)
